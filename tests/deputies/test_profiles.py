"""Deputy roster: public profiles (亮身份), staff management, versions, binding codes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from app.core.clock import clock
from app.core.security import sha256_hex
from app.identity.models import Deputy, DeputyBindingCode, DeputyLevel, DeputyStation
from app.presence.models import DutyAssignment, DutySlot
from tests.factories import Factory


async def _deputies(factory: Factory) -> list[Deputy]:
    async with factory.db.transaction(write=False) as session:
        return list((await session.execute(select(Deputy).order_by(Deputy.id))).scalars().all())


async def _attachments(factory: Factory, deputy_id: int) -> set[int]:
    async with factory.db.transaction(write=False) as session:
        rows = await session.execute(
            select(DeputyStation.station_id).where(DeputyStation.deputy_id == deputy_id)
        )
        return set(rows.scalars().all())


async def test_public_list_filters_and_never_shows_phone(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    other = await factory.district("西城区")
    station_a = await factory.station(d.community_a, name="甲站")
    station_b = await factory.station(d.community_b, name="乙站")
    wang = await factory.deputy(
        d.community_a,
        station=station_a,
        name="王芳",
        phone="13800138001",
        title="社区书记",
        term="第十八届",
        photo_url="https://example.com/w.jpg",
    )
    li = await factory.deputy(
        d.community_b, station=station_b, name="李明", phone="13800138002", level=DeputyLevel.city
    )
    zhao = await factory.deputy(other.community_a, name="赵强", phone="13800138003")
    await factory.deputy(d.community_a, name="离任", phone="13800138004", is_active=False)

    response = await client.get("/deputies")
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3
    assert "1380013800" not in response.text
    for item in body["items"]:
        assert "phone" not in item
    first = next(i for i in body["items"] if i["id"] == wang.id)
    assert first == {
        "id": wang.id,
        "name": "王芳",
        "level": "district",
        "title": "社区书记",
        "gender": None,
        "term": "第十八届",
        "region_id": d.community_a.id,
        "photo_url": "https://example.com/w.jpg",
        "bio": None,
        "stations": [{"id": station_a.id, "name": "甲站", "kind": "station"}],
    }

    async def ids(**params: object) -> list[int]:
        page = (await client.get("/deputies", params=params)).json()
        return sorted(i["id"] for i in page["items"])

    assert await ids(level="city") == [li.id]
    assert await ids(station_id=station_b.id) == [li.id]
    assert await ids(region_id=d.district.id) == sorted([wang.id, li.id])
    assert await ids(region_id=other.district.id) == [zhao.id]
    assert await ids(q="书记") == [wang.id]
    assert await ids(q="赵") == [zhao.id]
    page = (await client.get("/deputies", params={"limit": 1, "offset": 2})).json()
    assert page["total"] == 3 and len(page["items"]) == 1
    assert (await client.get("/deputies", params={"level": "king"})).status_code == 422


async def test_public_profile_with_coming_duty(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    station = await factory.station(d.community_a, name="甲站")
    deputy = await factory.deputy(d.community_a, station=station, name="王芳", phone="13800138001")
    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    clock.freeze(now)
    soon = await factory.add(
        DutySlot(
            station_id=station.id,
            day=(now + timedelta(days=1)).date(),
            starts_at=now + timedelta(days=1),
            ends_at=now + timedelta(days=1, hours=3),
        )
    )
    past = await factory.add(
        DutySlot(
            station_id=station.id,
            day=(now - timedelta(days=1)).date(),
            starts_at=now - timedelta(days=1),
            ends_at=now - timedelta(days=1) + timedelta(hours=3),
        )
    )
    for slot in (soon, past):
        await factory.add(DutyAssignment(slot_id=slot.id, deputy_id=deputy.id))

    response = await client.get(f"/deputies/{deputy.id}")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "王芳" and "phone" not in body and "13800138001" not in response.text
    assert body["stations"] == [{"id": station.id, "name": "甲站", "kind": "station"}]
    assert [s["id"] for s in body["coming_duty"]] == [soon.id]
    assert body["coming_duty"][0]["station_name"] == "甲站"

    inactive = await factory.deputy(d.community_a, is_active=False)
    assert (await client.get(f"/deputies/{inactive.id}")).status_code == 404
    assert (await client.get("/deputies/999999")).status_code == 404


async def test_roster_for_staff_in_scope(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    mine = await factory.deputy(d.community_a, name="甲代表", phone="13800138001")
    theirs = await factory.deputy(d.community_b, name="乙代表", phone="13800138002")
    gone = await factory.deputy(d.community_a, name="离任", is_active=False)
    await factory.deputy_actor(mine)
    staff = await factory.staff(d.street_a)
    response = await client.get("/deputies/roster", headers=staff.headers)
    assert response.status_code == 200
    body = response.json()
    assert {i["id"] for i in body["items"]} == {mine.id, gone.id}
    entry = next(i for i in body["items"] if i["id"] == mine.id)
    assert entry["phone"] == "13800138001" and entry["version"] == 1 and entry["bound"] is True
    assert next(i for i in body["items"] if i["id"] == gone.id)["bound"] is False
    active_only = (
        await client.get(
            "/deputies/roster", params={"include_inactive": False}, headers=staff.headers
        )
    ).json()
    assert [i["id"] for i in active_only["items"]] == [mine.id]

    one = await client.get(f"/deputies/{mine.id}/roster-entry", headers=staff.headers)
    assert one.status_code == 200 and one.json()["phone"] == "13800138001"
    assert one.headers["etag"] == 'W/"1"'
    out = await client.get(f"/deputies/{theirs.id}/roster-entry", headers=staff.headers)
    assert out.status_code == 403

    unit = await factory.unit()
    assert (await client.get("/deputies/roster")).status_code == 401
    for actor in (
        await factory.resident(),
        await factory.deputy_actor(),
        await factory.unit_handler(unit),
    ):
        assert (await client.get("/deputies/roster", headers=actor.headers)).status_code == 403
        assert (
            await client.get(f"/deputies/{mine.id}/roster-entry", headers=actor.headers)
        ).status_code == 403


async def test_staff_create_deputy(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    station = await factory.station(d.community_a, name="甲站")
    staff = await factory.staff(d.street_a)
    response = await client.post(
        "/deputies",
        json={
            "name": "王芳",
            "level": "district",
            "title": "社区书记",
            "phone": "+86 138-0013-8000",
            "term": "第十八届",
            "station_ids": [station.id, station.id],
        },
        headers=staff.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["phone"] == "13800138000" and body["region_id"] == d.street_a.id
    assert body["stations"] == [{"id": station.id, "name": "甲站", "kind": "station"}]
    assert body["version"] == 1 and body["bound"] is False
    public = (await client.get(f"/deputies/{body['id']}")).json()
    assert public["name"] == "王芳" and "phone" not in public
    assert await _attachments(factory, body["id"]) == {station.id}


async def test_create_deputy_refusals_change_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    station_a = await factory.station(d.community_a)
    station_b = await factory.station(d.community_b)
    await factory.deputy(d.community_a, name="已有", phone="13800138000")
    staff = await factory.staff(d.street_a)
    unit = await factory.unit()
    body = {"name": "新代表", "level": "district", "phone": "13900139000"}
    wrong_roles = [
        await factory.resident(),
        await factory.deputy_actor(),
        await factory.unit_handler(unit),
    ]
    before = len(await _deputies(factory))
    assert (await client.post("/deputies", json=body)).status_code == 401
    for actor in wrong_roles:
        assert (await client.post("/deputies", json=body, headers=actor.headers)).status_code == 403
    taken = await client.post(
        "/deputies", json={**body, "phone": "138 0013 8000"}, headers=staff.headers
    )
    assert taken.status_code == 409 and taken.json()["code"] == "deputy_phone_taken"
    other_station = await client.post(
        "/deputies",
        json={**body, "station_ids": [station_a.id, station_b.id]},
        headers=staff.headers,
    )
    assert other_station.status_code == 403
    other_region = await client.post(
        "/deputies", json={**body, "region_id": d.community_b.id}, headers=staff.headers
    )
    assert other_region.status_code == 403
    for payload in (
        {**body, "phone": "12345"},
        {**body, "phone": "23800138000"},
        {**body, "phone": "021-12345678"},
        {**body, "level": "mayor"},
        {**body, "name": ""},
        {**body, "station_ids": [999999]},
        {**body, "station_ids": [2**31]},
        {**body, "title": "书\x00记"},
        {**body, "region_id": 999999},
        {"level": "district"},
    ):
        response = await client.post("/deputies", json=payload, headers=staff.headers)
        assert response.status_code == 422, payload
        assert response.json()["code"] == "validation_error"
    assert len(await _deputies(factory)) == before


async def test_patch_deputy(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    station_a = await factory.station(d.community_a, name="甲站")
    station_a2 = await factory.station(d.community_a, name="甲二站")
    deputy = await factory.deputy(
        d.community_a, station=station_a, name="王芳", phone="13800138001"
    )
    staff = await factory.staff(d.street_a)
    first = await client.patch(
        f"/deputies/{deputy.id}",
        json={"version": 1, "title": "街道工委书记", "station_ids": [station_a2.id]},
        headers=staff.headers,
    )
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 2 and first.json()["title"] == "街道工委书记"
    assert await _attachments(factory, deputy.id) == {station_a2.id}
    second = await client.patch(
        f"/deputies/{deputy.id}",
        json={"phone": "13900139000", "is_active": False},
        headers={**staff.headers, "If-Match": 'W/"2"'},
    )
    assert second.status_code == 200 and second.json()["phone"] == "13900139000"
    assert (await client.get(f"/deputies/{deputy.id}")).status_code == 404  # off the roster
    stale = await client.patch(
        f"/deputies/{deputy.id}", json={"version": 2, "name": "过时"}, headers=staff.headers
    )
    assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"
    [row] = await _deputies(factory)
    assert row.name == "王芳" and row.version == 3 and row.is_active is False


async def test_patch_deputy_refusals_change_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    station_a = await factory.station(d.community_a)
    station_b = await factory.station(d.community_b)
    deputy = await factory.deputy(
        d.community_a, station=station_a, name="王芳", phone="13800138001"
    )
    await factory.deputy(d.community_a, name="李明", phone="13800138002")
    staff = await factory.staff(d.street_a)
    other_staff = await factory.staff(d.street_b)
    unit = await factory.unit()
    body = {"version": 1, "name": "改名"}
    assert (await client.patch(f"/deputies/{deputy.id}", json=body)).status_code == 401
    for actor in (
        await factory.resident(),
        await factory.deputy_actor(deputy),
        await factory.unit_handler(unit),
        other_staff,
    ):
        response = await client.patch(f"/deputies/{deputy.id}", json=body, headers=actor.headers)
        assert response.status_code == 403
    taken = await client.patch(
        f"/deputies/{deputy.id}", json={"version": 1, "phone": "13800138002"}, headers=staff.headers
    )
    assert taken.status_code == 409 and taken.json()["code"] == "deputy_phone_taken"
    outside = await client.patch(
        f"/deputies/{deputy.id}",
        json={"version": 1, "station_ids": [station_b.id]},
        headers=staff.headers,
    )
    assert outside.status_code == 403
    for payload in (
        {"name": "无版本"},
        {"version": 1, "phone": "110"},
        {"version": 1, "name": None},
        {"version": 1, "station_ids": None},
        {"version": 1, "level": "emperor"},
        {"version": 1, "region_id": 999999},
    ):
        response = await client.patch(f"/deputies/{deputy.id}", json=payload, headers=staff.headers)
        assert response.status_code == 422, payload
    assert (
        await client.patch("/deputies/999999", json=body, headers=staff.headers)
    ).status_code == 404
    rows = {r.id: r for r in await _deputies(factory)}
    assert rows[deputy.id].name == "王芳" and rows[deputy.id].version == 1
    assert rows[deputy.id].phone == "13800138001"
    assert await _attachments(factory, deputy.id) == {station_a.id}


async def test_concurrent_deputy_edits_one_wins(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    deputy = await factory.deputy(d.community_a, name="王芳")
    staff = await factory.staff(d.district)
    responses = await asyncio.gather(
        *(
            client.patch(
                f"/deputies/{deputy.id}",
                json={"version": 1, "title": f"职务{i}"},
                headers=staff.headers,
            )
            for i in range(10)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 9
    [row] = await _deputies(factory)
    assert row.version == 2


async def test_binding_code(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    deputy = await factory.deputy(d.community_a)
    staff = await factory.staff(d.street_a)
    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    clock.freeze(now)
    first = await client.post(f"/deputies/{deputy.id}/binding-code", headers=staff.headers)
    assert first.status_code == 201, first.text
    code = first.json()["code"]
    assert len(code) == 8 and set(code) <= set("ABCDEFGHJKMNPQRSTUVWXYZ23456789")
    assert datetime.fromisoformat(first.json()["expires_at"]) == now + timedelta(hours=72)
    async with factory.db.transaction(write=False) as session:
        stored = (await session.execute(select(DeputyBindingCode))).scalars().all()
    assert [c.code_hash for c in stored] == [sha256_hex(code)]
    assert code not in {c.code_hash for c in stored}
    assert stored[0].deputy_id == deputy.id and stored[0].created_by_user_id == staff.id

    # A used code stays on record; a second issue voids the unused one.
    async with factory.db.transaction() as session:
        used = DeputyBindingCode(
            deputy_id=deputy.id, code_hash=sha256_hex("USEDCODE"), expires_at=now, used_at=now
        )
        session.add(used)
    second = await client.post(f"/deputies/{deputy.id}/binding-code", headers=staff.headers)
    assert second.status_code == 201 and second.json()["code"] != code
    async with factory.db.transaction(write=False) as session:
        hashes = set((await session.execute(select(DeputyBindingCode.code_hash))).scalars().all())
    assert hashes == {sha256_hex(second.json()["code"]), sha256_hex("USEDCODE")}


async def test_binding_code_refusals(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    deputy = await factory.deputy(d.community_a)
    other_staff = await factory.staff(d.street_b)
    unit = await factory.unit()
    path = f"/deputies/{deputy.id}/binding-code"
    assert (await client.post(path)).status_code == 401
    for actor in (
        await factory.resident(),
        await factory.deputy_actor(deputy),
        await factory.unit_handler(unit),
        other_staff,
    ):
        assert (await client.post(path, headers=actor.headers)).status_code == 403
    admin = await factory.admin()
    assert (
        await client.post("/deputies/999999/binding-code", headers=admin.headers)
    ).status_code == 404
    async with factory.db.transaction(write=False) as session:
        count = (
            await session.execute(select(func.count()).select_from(DeputyBindingCode))
        ).scalar_one()
    assert count == 0
