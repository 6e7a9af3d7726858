"""Manual acts of the duty archive: staff of the deputy's region add, correct and remove
them; the deputy reads them; nobody else does."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from app.core.db import Database
from app.dashboard.models import ManualAct
from tests.factories import Factory

ACT = {
    "kind": "inspection",
    "title": "视察老旧小区加装电梯",
    "occurred_on": "2026-04-18",
    "hours": 3,
    "location": "甲街道",
}


async def _count(db: Database) -> int:
    async with db.transaction(write=False) as session:
        return int(
            (await session.execute(select(func.count()).select_from(ManualAct))).scalar_one()
        )


async def test_staff_add_list_update_delete(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    d = await factory.district()
    deputy = await factory.deputy(d.street_a)
    staff = await factory.staff(d.district)
    r = await client.post(f"/deputies/{deputy.id}/acts", json=ACT, headers=staff.headers)
    assert r.status_code == 201, r.text
    act = r.json()
    assert act["kind"] == "inspection" and act["deputy_id"] == deputy.id
    assert act["hours"] == 3.0 and act["version"] == 1 and act["created_by_user_id"] == staff.id

    await client.post(
        f"/deputies/{deputy.id}/acts",
        json={**ACT, "kind": "training", "title": "履职培训", "occurred_on": "2025-12-01"},
        headers=staff.headers,
    )
    r = await client.get(f"/deputies/{deputy.id}/acts", headers=staff.headers)
    assert r.json()["total"] == 2
    r = await client.get(f"/deputies/{deputy.id}/acts?year=2026", headers=staff.headers)
    assert [a["title"] for a in r.json()["items"]] == ["视察老旧小区加装电梯"]

    r = await client.patch(
        f"/deputies/{deputy.id}/acts/{act['id']}",
        json={"title": "视察（补记）", "version": 1},
        headers=staff.headers,
    )
    assert r.status_code == 200 and r.json()["title"] == "视察（补记）" and r.json()["version"] == 2
    # a stale version is refused and changes nothing
    r = await client.patch(
        f"/deputies/{deputy.id}/acts/{act['id']}",
        json={"title": "过期的修改", "version": 1},
        headers=staff.headers,
    )
    assert r.status_code == 409 and r.json()["code"] == "version_conflict"
    r = await client.get(f"/deputies/{deputy.id}/acts?year=2026", headers=staff.headers)
    assert r.json()["items"][0]["title"] == "视察（补记）"

    r = await client.delete(f"/deputies/{deputy.id}/acts/{act['id']}", headers=staff.headers)
    assert r.status_code == 204
    assert await _count(db) == 1
    r = await client.delete(f"/deputies/{deputy.id}/acts/{act['id']}", headers=staff.headers)
    assert r.status_code == 404


async def test_deputy_reads_own_acts_but_cannot_write(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    d = await factory.district()
    deputy = await factory.deputy(d.street_a)
    me = await factory.deputy_actor(deputy)
    other = await factory.deputy_actor(await factory.deputy(d.street_a))
    staff = await factory.staff(d.street_a)
    await client.post(f"/deputies/{deputy.id}/acts", json=ACT, headers=staff.headers)

    r = await client.get(f"/deputies/{deputy.id}/acts", headers=me.headers)
    assert r.status_code == 200 and r.json()["items"][0]["title"] == ACT["title"]
    r = await client.get(f"/deputies/{deputy.id}/acts", headers=other.headers)
    assert r.status_code == 403
    r = await client.post(f"/deputies/{deputy.id}/acts", json=ACT, headers=me.headers)
    assert r.status_code == 403
    assert await _count(db) == 1


async def test_roles_and_scope(client: httpx.AsyncClient, factory: Factory, db: Database) -> None:
    d = await factory.district()
    deputy = await factory.deputy(d.street_a)
    outsider = await factory.staff(d.street_b)
    resident = await factory.resident()
    unit = await factory.unit_handler(await factory.unit())
    admin = await factory.admin()

    assert (await client.post(f"/deputies/{deputy.id}/acts", json=ACT)).status_code == 401
    for actor in (outsider, resident, unit):
        r = await client.post(f"/deputies/{deputy.id}/acts", json=ACT, headers=actor.headers)
        assert r.status_code == 403, actor
        r = await client.get(f"/deputies/{deputy.id}/acts", headers=actor.headers)
        assert r.status_code == 403
    assert await _count(db) == 0
    r = await client.post(f"/deputies/{deputy.id}/acts", json=ACT, headers=admin.headers)
    assert r.status_code == 201
    act_id = r.json()["id"]
    r = await client.patch(
        f"/deputies/{deputy.id}/acts/{act_id}", json={"title": "x"}, headers=outsider.headers
    )
    assert r.status_code == 403
    r = await client.delete(f"/deputies/{deputy.id}/acts/{act_id}", headers=outsider.headers)
    assert r.status_code == 403
    # an act reached through another deputy's path is not found
    other = await factory.deputy(d.street_a)
    r = await client.delete(f"/deputies/{other.id}/acts/{act_id}", headers=admin.headers)
    assert r.status_code == 404
    assert await _count(db) == 1
    r = await client.post("/deputies/999999/acts", json=ACT, headers=admin.headers)
    assert r.status_code == 404


async def test_deputy_attached_by_station_is_in_scope(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    station = await factory.station(d.community_b)
    deputy = await factory.deputy(None, station=station)
    staff_b = await factory.staff(d.street_b)
    staff_a = await factory.staff(d.street_a)
    assert (
        await client.post(f"/deputies/{deputy.id}/acts", json=ACT, headers=staff_b.headers)
    ).status_code == 201
    assert (
        await client.post(f"/deputies/{deputy.id}/acts", json=ACT, headers=staff_a.headers)
    ).status_code == 403


async def test_bad_input_changes_nothing(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    d = await factory.district()
    deputy = await factory.deputy(d.street_a)
    staff = await factory.staff(d.district)
    for body in (
        {**ACT, "kind": "party"},
        {**ACT, "title": ""},
        {**ACT, "hours": -1},
        {**ACT, "occurred_on": "not-a-date"},
        {k: v for k, v in ACT.items() if k != "title"},
        {**ACT, "unknown": 1},
    ):
        r = await client.post(f"/deputies/{deputy.id}/acts", json=body, headers=staff.headers)
        assert r.status_code == 422, body
        assert r.json()["code"] == "validation_error"
    assert await _count(db) == 0
    r = await client.post(f"/deputies/{deputy.id}/acts", json=ACT, headers=staff.headers)
    act_id = r.json()["id"]
    r = await client.patch(
        f"/deputies/{deputy.id}/acts/{act_id}", json={"kind": "party"}, headers=staff.headers
    )
    assert r.status_code == 422
    r = await client.get(f"/deputies/{deputy.id}/acts", headers=staff.headers)
    assert r.json()["items"][0]["kind"] == "inspection"


async def test_values_the_database_cannot_hold_are_refused(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    d = await factory.district()
    deputy = await factory.deputy(d.street_a)
    staff = await factory.staff(d.district)
    for body in ({**ACT, "title": "a\x00b"}, {**ACT, "occurred_on": "1900-01-01"}):
        r = await client.post(f"/deputies/{deputy.id}/acts", json=body, headers=staff.headers)
        assert r.status_code == 422, body
    act_id = (
        await client.post(f"/deputies/{deputy.id}/acts", json=ACT, headers=staff.headers)
    ).json()["id"]
    for body in ({"title": None}, {"kind": None}, {"occurred_on": None}, {"version": 2**40}):
        r = await client.patch(
            f"/deputies/{deputy.id}/acts/{act_id}", json=body, headers=staff.headers
        )
        assert r.status_code == 422, body
    r = await client.delete(f"/deputies/{deputy.id}/acts/{2**40}", headers=staff.headers)
    assert r.status_code == 422
    assert await _count(db) == 1
