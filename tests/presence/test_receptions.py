"""Receptions: recorded while on duty, residents' details masked except to staff and the deputy."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.db import Database
from app.core.errors import AppError
from app.presence.models import Reception
from app.presence.service import attach_case
from tests.presence.conftest import World
from tests.presence.helpers import printed, scan

BODY = {
    "topic": "小区加装电梯",
    "content": "居民反映3号楼加装电梯意见不统一。",
    "resident_name": "李建国",
    "resident_phone": "13812345678",
}


async def count_receptions(db: Database) -> int:
    async with db.transaction(write=False) as session:
        return int(
            (await session.execute(select(func.count()).select_from(Reception))).scalar_one()
        )


async def test_deputy_records_while_checked_in(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    refused = await client.post("/receptions", json=BODY, headers=world.deputy.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "not_checked_in"
    checkin = (await scan(client, world.deputy.headers, printed(settings, world.station))).json()
    wrong_station = await client.post(
        "/receptions",
        json={**BODY, "station_id": world.far_station.id},
        headers=world.deputy.headers,
    )
    assert wrong_station.status_code == 409
    for_other = await client.post(
        "/receptions",
        json={**BODY, "deputy_id": world.colleague.deputy_id},
        headers=world.deputy.headers,
    )
    assert for_other.status_code == 403
    assert await count_receptions(db) == 0

    response = await client.post("/receptions", json=BODY, headers=world.deputy.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["station_id"] == world.station.id and body["checkin_id"] == checkin["id"]
    assert body["deputy_id"] == world.deputy.deputy_id and body["deputy_name"] == "王芳"
    assert body["resident_name"] == "李建国" and body["resident_phone"] == "13812345678"
    assert body["case_id"] is None
    # Checked out: no more receptions.
    await client.post(f"/checkins/{checkin['id']}/checkout", headers=world.deputy.headers)
    after = await client.post("/receptions", json=BODY, headers=world.deputy.headers)
    assert after.status_code == 409
    assert await count_receptions(db) == 1


async def test_masking_and_visibility(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    await scan(client, world.deputy.headers, printed(settings, world.station))
    created = (await client.post("/receptions", json=BODY, headers=world.deputy.headers)).json()
    rid = created["id"]

    def only(response: httpx.Response) -> dict:
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert len(items) == 1 and items[0]["id"] == rid
        return items[0]

    for actor in (world.deputy, world.staff_a, world.district_staff, world.admin):
        listed = only(await client.get("/receptions", headers=actor.headers))
        assert listed["resident_phone"] == "13812345678" and listed["resident_name"] == "李建国"
        single = await client.get(f"/receptions/{rid}", headers=actor.headers)
        assert single.status_code == 200 and single.json()["resident_phone"] == "13812345678"
    # A colleague at the same station sees it, masked.
    listed = only(await client.get("/receptions", headers=world.colleague.headers))
    assert listed["resident_phone"] == "138****5678" and listed["resident_name"] == "李**"
    assert listed["content"] == BODY["content"]
    single = (await client.get(f"/receptions/{rid}", headers=world.colleague.headers)).json()
    assert single["resident_phone"] == "138****5678"
    # Others see nothing.
    for actor in (world.outsider, world.staff_b):
        response = await client.get("/receptions", headers=actor.headers)
        assert response.status_code == 200 and response.json() == {"items": [], "total": 0}
        assert (await client.get(f"/receptions/{rid}", headers=actor.headers)).status_code == 403
    for actor in (world.resident, world.unit):
        assert (await client.get("/receptions", headers=actor.headers)).status_code == 403
        assert (await client.get(f"/receptions/{rid}", headers=actor.headers)).status_code == 403
        assert (
            await client.post("/receptions", json=BODY, headers=actor.headers)
        ).status_code == 403
    assert (await client.get("/receptions")).status_code == 401
    assert (await client.get("/receptions/999999", headers=world.admin.headers)).status_code == 404


async def test_staff_record_for_their_stations(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    body = {**BODY, "station_id": world.station.id, "deputy_id": world.deputy.deputy_id}
    response = await client.post("/receptions", json=body, headers=world.staff_a.headers)
    assert response.status_code == 201
    assert (
        response.json()["checkin_id"] is None
        and response.json()["deputy_id"] == world.deputy.deputy_id
    )
    # The deputy named sees it in full.
    listed = (await client.get("/receptions", headers=world.deputy.headers)).json()["items"]
    assert listed[0]["resident_phone"] == "13812345678"
    out_of_scope = await client.post(
        "/receptions", json={**BODY, "station_id": world.station.id}, headers=world.staff_b.headers
    )
    assert out_of_scope.status_code == 403
    no_station = await client.post("/receptions", json=BODY, headers=world.staff_a.headers)
    assert no_station.status_code == 422 and no_station.json()["code"] == "validation_error"
    unknown = await client.post(
        "/receptions", json={**BODY, "station_id": 999999}, headers=world.staff_a.headers
    )
    assert unknown.status_code == 404
    filtered = await client.get(
        f"/receptions?station_id={world.station.id}&from=2000-01-01", headers=world.staff_a.headers
    )
    assert filtered.json()["total"] == 1
    assert (await client.get("/receptions?to=2000-01-01", headers=world.staff_a.headers)).json()[
        "total"
    ] == 0
    assert await count_receptions(db) == 1


@pytest.mark.parametrize(
    "patch",
    [
        {"topic": ""},
        {"content": ""},
        {"resident_phone": "call me"},
        {"topic": "x" * 101},
        {"extra": 1},
    ],
)
async def test_bad_receptions_change_nothing(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World, patch: dict
) -> None:
    await scan(client, world.deputy.headers, printed(settings, world.station))
    response = await client.post(
        "/receptions", json={**BODY, **patch}, headers=world.deputy.headers
    )
    assert response.status_code == 422
    assert await count_receptions(db) == 0


async def test_attach_case_links_once(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    await scan(client, world.deputy.headers, printed(settings, world.station))
    rid = (await client.post("/receptions", json=BODY, headers=world.deputy.headers)).json()["id"]
    async with db.transaction() as session:
        reception = await attach_case(session, rid, 42)
        assert reception.case_id == 42
    async with db.transaction() as session:
        assert (await attach_case(session, rid, 42)).case_id == 42  # the same link again is fine
    with pytest.raises(AppError) as error:
        async with db.transaction() as session:
            await attach_case(session, rid, 43)
    assert error.value.code == "reception_has_case"
    with pytest.raises(AppError) as missing:
        async with db.transaction() as session:
            await attach_case(session, 999999, 43)
    assert missing.value.status == 404
    single = (await client.get(f"/receptions/{rid}", headers=world.deputy.headers)).json()
    assert single["case_id"] == 42
