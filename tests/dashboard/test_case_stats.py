"""GET /stats/cases: groups, mean and 90th-percentile times, unit rankings, scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.cases.models import CaseStatus, Satisfaction
from app.core.clock import clock
from app.org.models import Station, Unit
from tests.dashboard.helpers import Rows, sh
from tests.factories import Actor, District, Factory

S = CaseStatus
JUNE = {"from": "2026-06-01", "to": "2026-06-30"}


@dataclass
class World:
    d: District
    u1: Unit
    u2: Unit
    station: Station
    cat1: int
    cat2: int
    staff: Actor
    street_staff: Actor


@pytest.fixture
async def world(factory: Factory, rows: Rows) -> World:
    clock.freeze(sh(2026, 6, 30, 12))
    d = await factory.district()
    other = await factory.district("别的区")
    cat1 = await rows.category("市容环境")
    cat2 = await rows.category("交通出行")
    u1 = await factory.unit("区城管局")
    u2 = await factory.unit("区交通委")
    station = await factory.station(d.community_a)
    a, b = d.community_a, d.community_b
    H = timedelta(hours=1)

    async def answered(
        region: Any, cat: Any, created: Any, reply_h: float, unit: Unit, **kw: Any
    ) -> None:
        await rows.case(
            region,
            cat,
            created=created,
            fed_back_at=created + reply_h * H,
            lead_unit_id=unit.id,
            **kw,
        )

    c = sh(2026, 6, 1, 10)
    await answered(
        a,
        cat1,
        c,
        10,
        u1,
        status=S.resolved,
        resolved_at=c + 100 * H,
        satisfaction=Satisfaction.satisfied,
        station_id=station.id,
    )
    c = sh(2026, 6, 2, 1)  # 1 a.m. in Shanghai: still June 1st in UTC
    await answered(
        a,
        cat1,
        c,
        20,
        u1,
        status=S.resolved,
        resolved_at=c + 200 * H,
        satisfaction=Satisfaction.basically_satisfied,
    )
    await answered(
        b, cat1, sh(2026, 6, 3), 30, u2, status=S.fed_back, satisfaction=Satisfaction.dissatisfied
    )
    await answered(b, cat1, sh(2026, 6, 8, 1), 40, u2, status=S.fed_back)  # Monday 1 a.m. Shanghai
    await answered(d.street_a, cat1, sh(2026, 6, 9), 50, u2, status=S.fed_back)
    await rows.case(
        d.district,
        cat2,
        created=sh(2026, 6, 15),
        status=S.handling,
        lead_unit_id=u2.id,
        deadline_at=sh(2026, 6, 20),
    )
    await answered(a, cat2, sh(2026, 6, 16), 5, u1, status=S.fed_back)
    await rows.case(b, cat2, created=sh(2026, 6, 29), status=S.registered)
    # outside the range or the scope
    await answered(a, cat1, sh(2026, 5, 29), 999, u1, status=S.fed_back)
    await answered(other.community_a, cat1, sh(2026, 6, 10), 999, u1, status=S.fed_back)
    return World(
        d,
        u1,
        u2,
        station,
        cat1.id,
        cat2.id,  # type: ignore[arg-type]
        await factory.staff(d.district),
        await factory.staff(d.street_a),
    )


async def _stats(
    client: httpx.AsyncClient, actor: Actor, group_by: str, **params: Any
) -> dict[str, Any]:
    r = await client.get(
        "/stats/cases", params={**JUNE, "group_by": group_by, **params}, headers=actor.headers
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _by_key(body: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {g["key"]: g for g in body["groups"]}


async def test_by_category(client: httpx.AsyncClient, world: World) -> None:
    body = await _stats(client, world.staff, "category")
    assert [g["key"] for g in body["groups"]] == [world.cat1, world.cat2]
    cat1, cat2 = body["groups"]
    assert cat1 == {
        "key": world.cat1,
        "label": "市容环境",
        "total": 5,
        "open": 3,
        "resolved": 2,
        "overdue": 0,
        "rated": 3,
        "satisfied": 2,
        "resolution_rate": 0.4,
        "satisfaction_rate": 0.6667,
        "avg_response_hours": 30.0,
        "p90_response_hours": 46.0,
        "avg_resolution_hours": 150.0,
        "p90_resolution_hours": 190.0,
    }
    assert cat2 == {
        "key": world.cat2,
        "label": "交通出行",
        "total": 3,
        "open": 3,
        "resolved": 0,
        "overdue": 1,
        "rated": 0,
        "satisfied": 0,
        "resolution_rate": 0.0,
        "satisfaction_rate": None,
        "avg_response_hours": 5.0,
        "p90_response_hours": 5.0,
        "avg_resolution_hours": None,
        "p90_resolution_hours": None,
    }


async def test_by_unit_and_rankings(client: httpx.AsyncClient, world: World) -> None:
    body = await _stats(client, world.staff, "unit")
    groups = _by_key(body)
    u1, u2 = groups[world.u1.id], groups[world.u2.id]
    assert (u1["total"], u1["avg_response_hours"], u1["p90_response_hours"]) == (3, 11.67, 18.0)
    assert (u1["rated"], u1["satisfaction_rate"]) == (2, 1.0)
    assert (u2["total"], u2["avg_response_hours"], u2["p90_response_hours"], u2["overdue"]) == (
        4,
        40.0,
        48.0,
        1,
    )
    assert groups[None]["total"] == 1 and groups[None]["label"] is None
    assert [(u["rank"], u["unit_id"], u["overdue"]) for u in body["units_by_overdue"]] == [
        (1, world.u2.id, 1),
        (2, world.u1.id, 0),
    ]
    assert [(u["unit_id"], u["satisfaction_rate"]) for u in body["units_by_satisfaction"]] == [
        (world.u1.id, 1.0),
        (world.u2.id, 0.0),
    ]
    assert body["units_by_overdue"][0]["name"] == "区交通委"
    # rankings come with every grouping
    other = await _stats(client, world.staff, "category")
    assert other["units_by_overdue"] == body["units_by_overdue"]
    assert other["units_by_satisfaction"] == body["units_by_satisfaction"]


async def test_by_region_rolls_up_one_level(client: httpx.AsyncClient, world: World) -> None:
    body = await _stats(client, world.staff, "region")
    groups = _by_key(body)
    assert {k: g["total"] for k, g in groups.items()} == {
        world.d.street_a.id: 4,
        world.d.street_b.id: 3,
        world.d.district.id: 1,
    }
    assert groups[world.d.street_a.id]["label"] == world.d.street_a.name
    body = await _stats(client, world.street_staff, "region")
    assert {g["key"]: g["total"] for g in body["groups"]} == {
        world.d.community_a.id: 3,
        world.d.street_a.id: 1,
    }


async def test_by_station(client: httpx.AsyncClient, world: World) -> None:
    groups = _by_key(await _stats(client, world.staff, "station"))
    assert (
        groups[world.station.id]["total"] == 1
        and groups[world.station.id]["label"] == world.station.name
    )
    assert groups[None]["total"] == 7


async def test_by_day_week_month_in_shanghai_time(client: httpx.AsyncClient, world: World) -> None:
    body = await _stats(client, world.staff, "day")
    assert [(g["key"], g["total"]) for g in body["groups"]] == [
        ("2026-06-01", 1),
        ("2026-06-02", 1),
        ("2026-06-03", 1),
        ("2026-06-08", 1),
        ("2026-06-09", 1),
        ("2026-06-15", 1),
        ("2026-06-16", 1),
        ("2026-06-29", 1),
    ]
    body = await _stats(client, world.staff, "week")
    assert [(g["key"], g["total"]) for g in body["groups"]] == [
        ("2026-06-01", 3),
        ("2026-06-08", 2),
        ("2026-06-15", 2),
        ("2026-06-29", 1),
    ]
    assert body["groups"][0]["p90_response_hours"] == 28.0  # 10, 20, 30 → 20 + 0.8 * 10
    body = await _stats(client, world.staff, "month")
    assert [(g["key"], g["total"]) for g in body["groups"]] == [("2026-06-01", 8)]


async def test_scope_and_roles(client: httpx.AsyncClient, factory: Factory, world: World) -> None:
    body = await _stats(client, world.street_staff, "category")
    assert {g["key"]: g["total"] for g in body["groups"]} == {world.cat1: 3, world.cat2: 1}
    r = await client.get(
        "/stats/cases",
        params={"region_id": world.d.street_b.id},
        headers=world.street_staff.headers,
    )
    assert r.status_code == 403
    admin = await factory.admin()
    body = await _stats(client, admin, "category")
    assert _by_key(body)[world.cat1]["total"] == 6
    assert (await client.get("/stats/cases")).status_code == 401
    for actor in (
        await factory.resident(),
        await factory.deputy_actor(),
        await factory.unit_handler(world.u1),
    ):
        assert (await client.get("/stats/cases", headers=actor.headers)).status_code == 403
    r = await client.get("/stats/cases", params={"group_by": "colour"}, headers=world.staff.headers)
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


async def test_first_response_of_a_reopened_case_comes_from_the_timeline(
    client: httpx.AsyncClient, factory: Factory, rows: Rows
) -> None:
    from app.cases.models import CaseEvent

    clock.freeze(sh(2026, 6, 30, 12))
    d = await factory.district()
    staff = await factory.staff(d.district)
    cat = await rows.category()
    created = sh(2026, 6, 10)
    # first reply after 4 hours; reopened and answered again 100 hours after registration
    case = await rows.case(
        d.community_a,
        cat,
        created=created,
        status=S.fed_back,
        reopen_count=1,
        fed_back_at=created + timedelta(hours=100),
    )
    await factory.add(
        CaseEvent(
            case_id=case.id,
            action="reply",
            actor_role="unit",
            created_at=created + timedelta(hours=4),
        )
    )
    await factory.add(
        CaseEvent(
            case_id=case.id,
            action="reply",
            actor_role="unit",
            round=1,
            created_at=created + timedelta(hours=100),
        )
    )
    await rows.case(
        d.community_a,
        cat,
        created=created,
        status=S.fed_back,
        fed_back_at=created + timedelta(hours=10),
    )
    body = await _stats(client, staff, "category")
    group = body["groups"][0]
    assert group["avg_response_hours"] == 7.0  # (4 + 10) / 2
    assert group["p90_response_hours"] == 9.4  # 4 + 0.9 * 6
