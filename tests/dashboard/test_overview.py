"""GET /stats/overview: every figure checked against rows the test made, in each scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.cases.models import CaseStatus, Satisfaction
from app.core.clock import clock
from app.wishes.models import WishStatus
from tests.dashboard.helpers import Rows, sh
from tests.factories import Actor, District, Factory

JUNE = {"from": "2026-06-01", "to": "2026-06-30"}
S = CaseStatus


@dataclass
class World:
    d: District
    district_staff: Actor
    street_a_staff: Actor
    admin: Actor


@pytest.fixture
async def world(factory: Factory, rows: Rows) -> World:
    clock.freeze(sh(2026, 6, 30, 12))
    d = await factory.district()
    other = await factory.district("别的区")
    cat = await rows.category("市容环境")
    a, b = d.community_a, d.community_b
    # community A (street A)
    await rows.case(
        a,
        cat,
        created=sh(2026, 6, 2),
        status=S.resolved,
        deadline_at=sh(2026, 6, 10),
        fed_back_at=sh(2026, 6, 8),
        satisfaction=Satisfaction.satisfied,
        resolved_at=sh(2026, 6, 9),
    )
    await rows.case(
        a,
        cat,
        created=sh(2026, 6, 3),
        status=S.fed_back,
        deadline_at=sh(2026, 6, 12),
        fed_back_at=sh(2026, 6, 14),
        satisfaction=Satisfaction.dissatisfied,
    )
    await rows.case(
        a,
        cat,
        created=sh(2026, 6, 5),
        status=S.handling,
        deadline_at=sh(2026, 6, 20),
        supervised_count=1,
    )
    await rows.case(a, cat, created=sh(2026, 6, 25), status=S.handling, deadline_at=sh(2026, 7, 5))
    await rows.case(a, cat, created=sh(2026, 6, 6), status=S.rejected)
    # community B (street B)
    await rows.case(
        b,
        cat,
        created=sh(2026, 6, 10),
        status=S.resolved,
        deadline_at=sh(2026, 6, 15, 18),
        fed_back_at=sh(2026, 6, 15, 9),
        satisfaction=Satisfaction.basically_satisfied,
        resolved_at=sh(2026, 6, 16),
    )
    await rows.case(
        b, cat, created=sh(2026, 6, 12), status=S.handling, deadline_at=sh(2026, 6, 30, 18)
    )
    # before the range: due in it and never answered
    await rows.case(a, cat, created=sh(2026, 5, 20), status=S.handling, deadline_at=sh(2026, 6, 5))
    await rows.case(a, cat, created=sh(2026, 5, 1), status=S.resolved, resolved_at=sh(2026, 5, 9))
    # another district
    await rows.case(other.community_a, cat, created=sh(2026, 6, 10), status=S.registered)

    await rows.wish(a, created=sh(2026, 6, 3))
    await rows.wish(a, created=sh(2026, 6, 4), status=WishStatus.claimed, claimed_at=sh(2026, 6, 5))
    await rows.wish(
        a,
        created=sh(2026, 6, 1),
        status=WishStatus.completed,
        claimed_at=sh(2026, 6, 2),
        fulfilled_at=sh(2026, 6, 7),
        completed_at=sh(2026, 6, 8),
    )
    await rows.wish(b, created=sh(2026, 6, 20), status=WishStatus.published)
    await rows.wish(
        b,
        created=sh(2026, 5, 10),
        status=WishStatus.fulfilled,
        claimed_at=sh(2026, 5, 11),
        fulfilled_at=sh(2026, 6, 2),
    )
    await rows.wish(other.community_a, created=sh(2026, 6, 10))

    station_a = await factory.station(a)
    station_b = await factory.station(b)
    station_x = await factory.station(other.community_a)
    dep1 = await factory.deputy(d.street_a, station_a)
    dep2 = await factory.deputy(d.street_b, station_b)
    dep3 = await factory.deputy(other.street_a, station_x)
    slot1 = await rows.slot(station_a, sh(2026, 6, 10, 9), 3, dep1.id, dep2.id)
    slot2 = await rows.slot(station_b, sh(2026, 6, 12, 9), 3, dep2.id)
    await rows.checkin(dep1.id, station_a, sh(2026, 6, 10, 9, 5), 2.5, slot=slot1)
    await rows.checkin(dep1.id, station_a, sh(2026, 6, 11, 14), 8, auto=True)
    await rows.checkin(dep2.id, station_b, sh(2026, 6, 12, 10), 1.0, slot=slot2)
    await rows.checkin(dep1.id, station_a, sh(2026, 5, 30, 10), 1.0)
    await rows.checkin(dep3.id, station_x, sh(2026, 6, 12, 10), 1.0)
    recorder = (await factory.resident()).id
    await rows.reception(dep1.id, station_a, sh(2026, 6, 10, 10), recorder)
    await rows.reception(dep2.id, station_b, sh(2026, 6, 12, 10), recorder)
    await rows.reception(dep1.id, station_a, sh(2026, 5, 1, 10), recorder)
    await rows.reception(dep3.id, station_x, sh(2026, 6, 12, 10), recorder)
    return World(
        d=d,
        district_staff=await factory.staff(d.district),
        street_a_staff=await factory.staff(d.street_a),
        admin=await factory.admin(),
    )


async def _overview(client: httpx.AsyncClient, actor: Actor, **params: Any) -> dict[str, Any]:
    r = await client.get("/stats/overview", params={**JUNE, **params}, headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _statuses(**counts: int) -> dict[str, int]:
    out = {s.value: 0 for s in CaseStatus}
    out.update(counts)
    return out


async def test_district_overview(client: httpx.AsyncClient, world: World) -> None:
    body = await _overview(client, world.district_staff)
    assert body["region_id"] == world.d.district.id
    assert body["from"] == "2026-06-01" and body["to"] == "2026-06-30"
    assert body["cases"] == {
        "new": 7,
        "by_status": _statuses(handling=3, fed_back=1, resolved=2, rejected=1),
        "overdue": 1,
        "under_supervision": 1,
        "open_now": 5,
        "overdue_now": 2,
        "under_supervision_now": 1,
    }
    assert body["rates"] == {
        "response": {"rate": 0.4, "numerator": 2, "denominator": 5},
        "resolution": {"rate": 0.3333, "numerator": 2, "denominator": 6},
        "satisfaction": {"rate": 0.6667, "numerator": 2, "denominator": 3},
    }
    wishes = body["wishes"]
    assert wishes["new"] == 4 and wishes["claimed"] == 2 and wishes["fulfilled"] == 2
    assert wishes["by_status"] == {
        "pending_review": 1,
        "published": 1,
        "claimed": 1,
        "fulfilled": 0,
        "completed": 1,
        "rejected": 0,
        "withdrawn": 0,
        "expired": 0,
    }
    assert body["presence"] == {
        "checkins": 3,
        "deputies_checked_in": 2,
        "duty_hours": 3.5,
        "auto_closed": 1,
        "checkins_on_duty": 2,
        "duty_assignments": 3,
        "duty_assignments_attended": 2,
        "attendance_rate": 0.6667,
        "receptions": 2,
    }


async def test_street_scope(client: httpx.AsyncClient, world: World) -> None:
    body = await _overview(client, world.street_a_staff)
    assert body["region_id"] == world.d.street_a.id
    assert body["cases"]["new"] == 5
    assert body["cases"]["by_status"] == _statuses(handling=2, fed_back=1, resolved=1, rejected=1)
    assert (body["cases"]["overdue"], body["cases"]["open_now"], body["cases"]["overdue_now"]) == (
        1,
        4,
        2,
    )
    assert body["rates"]["response"] == {"rate": 0.25, "numerator": 1, "denominator": 4}
    assert body["rates"]["resolution"] == {"rate": 0.25, "numerator": 1, "denominator": 4}
    assert body["rates"]["satisfaction"] == {"rate": 0.5, "numerator": 1, "denominator": 2}
    assert body["wishes"]["new"] == 3 and body["wishes"]["fulfilled"] == 1
    p = body["presence"]
    assert (
        p["checkins"],
        p["duty_hours"],
        p["duty_assignments"],
        p["duty_assignments_attended"],
    ) == (2, 2.5, 2, 1)
    assert p["attendance_rate"] == 0.5 and p["receptions"] == 1

    # district staff narrowing to street B
    body = await _overview(client, world.district_staff, region_id=world.d.street_b.id)
    assert body["cases"]["new"] == 2
    assert body["rates"]["response"] == {"rate": 1.0, "numerator": 1, "denominator": 1}
    assert body["rates"]["satisfaction"]["rate"] == 1.0
    assert body["presence"]["checkins"] == 1 and body["presence"]["duty_hours"] == 1.0


async def test_region_outside_scope_is_forbidden(client: httpx.AsyncClient, world: World) -> None:
    for region in (world.d.street_b, world.d.district):
        r = await client.get(
            "/stats/overview", params={"region_id": region.id}, headers=world.street_a_staff.headers
        )
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = await client.get(
        "/stats/overview", params={"region_id": 999999}, headers=world.admin.headers
    )
    assert r.status_code == 404


async def test_admin_sees_everything(client: httpx.AsyncClient, world: World) -> None:
    body = await _overview(client, world.admin)
    assert body["region_id"] is None
    assert body["cases"]["new"] == 8 and body["cases"]["by_status"]["registered"] == 1
    assert body["wishes"]["new"] == 5
    assert body["presence"]["checkins"] == 4 and body["presence"]["receptions"] == 3
    body = await _overview(client, world.admin, region_id=world.d.street_a.id)
    assert body["cases"]["new"] == 5


async def test_day_boundaries_are_shanghai_days(client: httpx.AsyncClient, world: World) -> None:
    # 2026-06-02 10:00 in Shanghai is 02:00 UTC: a one-day range of June 2nd holds that case.
    body = await _overview(
        client, world.district_staff, **{"from": "2026-06-02", "to": "2026-06-02"}
    )
    assert body["cases"]["new"] == 1
    body = await _overview(
        client, world.district_staff, **{"from": "2026-06-01", "to": "2026-06-01"}
    )
    assert body["cases"]["new"] == 0 and body["wishes"]["new"] == 1


async def test_roles(client: httpx.AsyncClient, factory: Factory, world: World) -> None:
    assert (await client.get("/stats/overview")).status_code == 401
    for actor in (
        await factory.resident(),
        await factory.deputy_actor(),
        await factory.unit_handler(await factory.unit()),
    ):
        r = await client.get("/stats/overview", headers=actor.headers)
        assert r.status_code == 403 and r.json()["code"] == "forbidden"


async def test_bad_range(client: httpx.AsyncClient, world: World) -> None:
    h = world.district_staff.headers
    r = await client.get(
        "/stats/overview", params={"from": "2026-07-01", "to": "2026-06-01"}, headers=h
    )
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = await client.get("/stats/overview", params={"from": "yesterday"}, headers=h)
    assert r.status_code == 422
    r = await client.get(
        "/stats/overview", params={"from": "2020-01-01", "to": "2026-01-01"}, headers=h
    )
    assert r.status_code == 422


async def test_default_range_is_last_30_days(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get("/stats/overview", headers=world.district_staff.headers)
    body = r.json()
    assert body["to"] == "2026-06-30" and body["from"] == "2026-06-01"
    assert body["cases"]["new"] == 7


async def test_no_rated_cases_gives_null_rates(
    client: httpx.AsyncClient, factory: Factory, rows: Rows
) -> None:
    clock.freeze(sh(2026, 6, 30, 12))
    d = await factory.district()
    staff = await factory.staff(d.district)
    body = await _overview(client, staff)
    assert body["rates"] == {
        "response": {"rate": None, "numerator": 0, "denominator": 0},
        "resolution": {"rate": None, "numerator": 0, "denominator": 0},
        "satisfaction": {"rate": None, "numerator": 0, "denominator": 0},
    }
    assert body["presence"]["attendance_rate"] is None
    cat = await rows.category()
    await rows.case(
        d.community_a,
        cat,
        created=sh(2026, 6, 3),
        status=S.fed_back,
        deadline_at=sh(2026, 6, 10),
        fed_back_at=sh(2026, 6, 9),
    )
    body = await _overview(client, staff)
    assert body["rates"]["satisfaction"] == {"rate": None, "numerator": 0, "denominator": 0}
    assert body["rates"]["response"]["rate"] == 1.0
    assert body["rates"]["resolution"] == {"rate": 0.0, "numerator": 0, "denominator": 1}


async def test_all_overdue(client: httpx.AsyncClient, factory: Factory, rows: Rows) -> None:
    clock.freeze(sh(2026, 6, 30, 12))
    d = await factory.district()
    staff = await factory.staff(d.district)
    cat = await rows.category()
    for day in (2, 5, 9):
        await rows.case(
            d.community_b,
            cat,
            created=sh(2026, 6, day),
            status=S.handling,
            deadline_at=sh(2026, 6, day + 7),
            overdue=True,
        )
    # one answered, but after its deadline
    await rows.case(
        d.community_b,
        cat,
        created=sh(2026, 6, 1),
        status=S.fed_back,
        deadline_at=sh(2026, 6, 8),
        fed_back_at=sh(2026, 6, 8) + timedelta(minutes=1),
    )
    body = await _overview(client, staff)
    assert body["cases"]["overdue"] == 3 and body["cases"]["overdue_now"] == 3
    assert body["rates"]["response"] == {"rate": 0.0, "numerator": 0, "denominator": 4}
    assert body["rates"]["resolution"] == {"rate": 0.0, "numerator": 0, "denominator": 4}
    assert body["rates"]["satisfaction"]["rate"] is None


async def test_out_of_range_parameters_are_refused(client: httpx.AsyncClient, world: World) -> None:
    h = world.admin.headers
    for params in ({"from": "0001-01-01"}, {"to": "9999-12-31"}, {"region_id": 2**40}):
        r = await client.get("/stats/overview", params=params, headers=h)
        assert r.status_code == 422, params
    r = await client.get("/exports/cases", params={"q": "a\x00"}, headers=h)
    assert r.status_code == 422
