"""GET /stats/deputies: per-deputy activity against rows the test made, and 约谈 candidates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest

from app.cases.models import CaseStatus
from app.core.clock import clock
from app.dashboard.models import ManualAct
from app.identity.models import Deputy
from app.wishes.models import WishStatus
from tests.dashboard.helpers import Rows, sh
from tests.factories import Actor, District, Factory

JUNE = {"from": "2026-06-01", "to": "2026-06-30"}


@dataclass
class World:
    d: District
    deputies: dict[str, Deputy]
    district_staff: Actor
    street_a_staff: Actor
    street_b_staff: Actor


@pytest.fixture
async def world(factory: Factory, rows: Rows) -> World:
    clock.freeze(sh(2026, 6, 30, 12))
    d = await factory.district()
    other = await factory.district("别的区")
    station_a = await factory.station(d.community_a)
    station_b = await factory.station(d.community_b)
    dep1 = await factory.deputy(d.street_a, station_a, name="A代表")
    dep2 = await factory.deputy(None, station_b, name="B代表")
    dep3 = await factory.deputy(d.street_b, name="C代表")
    dep4 = await factory.deputy(d.street_a, name="D代表")
    dep5 = await factory.deputy(d.street_a, name="E代表")
    await factory.deputy(d.street_a, name="F代表", is_active=False)
    await factory.deputy(other.street_a, name="G代表")
    dep1_user = await factory.deputy_actor(dep1)
    staff = await factory.staff(d.district)

    slot1 = await rows.slot(station_a, sh(2026, 6, 10, 9), 3, dep1.id, dep2.id)
    slot2 = await rows.slot(station_b, sh(2026, 6, 12, 9), 3, dep2.id)
    await rows.slot(station_a, sh(2026, 6, 20, 9), 3, dep1.id)
    await rows.slot(station_a, sh(2026, 7, 2, 9), 3, dep1.id)  # next month
    await rows.checkin(dep1.id, station_a, sh(2026, 6, 10, 9, 5), 2.5, slot=slot1)
    await rows.checkin(dep1.id, station_a, sh(2026, 6, 11, 14), 8, auto=True)
    await rows.checkin(dep2.id, station_b, sh(2026, 6, 12, 10), 1.0, slot=slot2)
    await rows.checkin(dep3.id, station_b, sh(2026, 3, 1, 10), 1.0)
    for day in (10, 11):
        await rows.reception(dep1.id, station_a, sh(2026, 6, day), staff.id)
    await rows.reception(dep1.id, station_a, sh(2026, 5, 1), staff.id)
    cat = await rows.category()
    for created in (sh(2026, 6, 3), sh(2026, 6, 4), sh(2026, 5, 3)):
        await rows.case(d.community_a, cat, created=created, submitter_id=dep1_user.id)
    followed = await rows.case(
        d.community_b, cat, created=sh(2026, 5, 1), status=CaseStatus.handling
    )
    await rows.follow(followed, dep1_user.id, dep1.id, sh(2026, 6, 20))
    await rows.wish(
        d.community_a,
        created=sh(2026, 6, 4),
        status=WishStatus.claimed,
        claimed_by_deputy_id=dep1.id,
        claimed_at=sh(2026, 6, 5),
    )
    await rows.wish(
        d.community_a,
        created=sh(2026, 6, 1),
        status=WishStatus.completed,
        claimed_by_deputy_id=dep1.id,
        claimed_at=sh(2026, 6, 2),
        fulfilled_at=sh(2026, 6, 7),
    )
    await factory.add(
        ManualAct(deputy_id=dep1.id, kind="inspection", title="视察", occurred_on=date(2026, 6, 15))
    )
    await factory.add(
        ManualAct(deputy_id=dep1.id, kind="meeting", title="会议", occurred_on=date(2025, 6, 15))
    )
    await factory.add(
        ManualAct(deputy_id=dep4.id, kind="training", title="培训", occurred_on=date(2025, 11, 1))
    )
    return World(
        d=d,
        deputies={"A": dep1, "B": dep2, "C": dep3, "D": dep4, "E": dep5},
        district_staff=staff,
        street_a_staff=await factory.staff(d.street_a),
        street_b_staff=await factory.staff(d.street_b),
    )


async def _stats(client: httpx.AsyncClient, actor: Actor, **params: Any) -> dict[str, Any]:
    r = await client.get("/stats/deputies", params={**JUNE, **params}, headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_per_deputy_figures(client: httpx.AsyncClient, world: World) -> None:
    body = await _stats(client, world.district_staff)
    assert body["total"] == 5 and body["inactive_total"] == 2
    assert body["inactive_months"] == 6 and body["inactive_since"] == "2025-12-30"
    items = {i["name"]: i for i in body["items"]}
    assert [i["name"] for i in body["items"]] == ["A代表", "B代表", "C代表", "D代表", "E代表"]
    a = items["A代表"]
    assert {
        k: a[k] for k in a if k not in ("deputy_id", "name", "level", "region_id", "last_active_at")
    } == {
        "checkins": 2,
        "checkins_on_duty": 1,
        "duty_hours": 2.5,
        "duty_assignments": 2,
        "duty_assignments_attended": 1,
        "attendance_rate": 0.5,
        "receptions": 2,
        "cases_submitted": 2,
        "cases_followed": 1,
        "wishes_claimed": 2,
        "wishes_fulfilled": 1,
        "manual_acts": 1,
        "activities_attended": 0,
        "activities_absent": 0,
        "reported_this_term": False,
        "suggestions_led": 0,
        "suggestions_cosigned": 0,
        "inactive": False,
    }
    assert a["last_active_at"] == "2026-06-20T10:00:00+08:00"  # the follow, 10:00 in Shanghai
    b = items["B代表"]
    assert (
        b["checkins"],
        b["duty_hours"],
        b["duty_assignments"],
        b["duty_assignments_attended"],
    ) == (1, 1.0, 2, 1)
    assert b["region_id"] is None and b["inactive"] is False
    c = items["C代表"]
    assert c["checkins"] == 0 and c["inactive"] is False and c["attendance_rate"] is None
    assert (
        items["D代表"]["inactive"] is True
        and items["D代表"]["last_active_at"] == "2025-11-01T00:00:00+08:00"
    )
    assert items["E代表"]["inactive"] is True and items["E代表"]["last_active_at"] is None


async def test_inactive_only_and_setting(
    client: httpx.AsyncClient, world: World, settings: Any
) -> None:
    body = await _stats(client, world.district_staff, inactive_only="true")
    assert [i["name"] for i in body["items"]] == ["D代表", "E代表"] and body["total"] == 2
    original = settings.inactive_deputy_months
    settings.inactive_deputy_months = 3  # cut-off 2026-03-30: C's check-in of March 1st is older
    try:
        body = await _stats(client, world.district_staff, inactive_only="true")
        assert [i["name"] for i in body["items"]] == ["C代表", "D代表", "E代表"]
        assert body["inactive_since"] == "2026-03-30"
    finally:
        settings.inactive_deputy_months = original


async def test_scope(client: httpx.AsyncClient, factory: Factory, world: World) -> None:
    body = await _stats(client, world.street_a_staff)
    assert [i["name"] for i in body["items"]] == ["A代表", "D代表", "E代表"]
    body = await _stats(client, world.street_b_staff)
    assert [i["name"] for i in body["items"]] == ["B代表", "C代表"] and body["inactive_total"] == 0
    body = await _stats(client, world.district_staff, region_id=world.d.street_b.id)
    assert body["total"] == 2
    r = await client.get(
        "/stats/deputies",
        params={"region_id": world.d.street_a.id},
        headers=world.street_b_staff.headers,
    )
    assert r.status_code == 403
    admin = await factory.admin()
    assert (await _stats(client, admin))["total"] == 6


async def test_paging_and_roles(client: httpx.AsyncClient, factory: Factory, world: World) -> None:
    body = await _stats(client, world.district_staff, limit=2, offset=2)
    assert [i["name"] for i in body["items"]] == ["C代表", "D代表"] and body["total"] == 5
    assert (await client.get("/stats/deputies")).status_code == 401
    for actor in (
        await factory.resident(),
        await factory.deputy_actor(),
        await factory.unit_handler(await factory.unit()),
    ):
        assert (await client.get("/stats/deputies", headers=actor.headers)).status_code == 403
    r = await client.get(
        "/stats/deputies", params={"limit": 0}, headers=world.district_staff.headers
    )
    assert r.status_code == 422
