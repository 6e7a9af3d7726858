"""The duplicate hint uses the text: "someone already reported this" for the same problem
worded differently, before submission (residents) and for a case (staff)."""

from __future__ import annotations

import httpx

from app.core.config import Settings
from app.core.db import Database
from tests.cases.conftest import act, count_cases
from tests.factories import Factory
from tests.hotspots.conftest import STREETLIGHT, World, group, submit_as
from tests.hotspots.conftest import world as world  # noqa: F401  (the cases' fixture)

DRAFT = {
    "title": "东门路灯坏了没人修",
    "content": "翠苑一区东门那边的路灯一直不亮，晚上很黑，老人不敢出门。电话13900001111",
}


async def test_residents_see_open_cases_worded_differently(
    client: httpx.AsyncClient, factory: Factory, world: World, db: Database, settings: Settings
) -> None:
    cases = []
    for title, content in STREETLIGHT[:2]:
        cases.append(await submit_as(client, factory, world, title=title, content=content))
    await group(db, settings)
    before = await count_cases(db)

    body = {**DRAFT, "category_id": world.cat(), "station_id": world.station_a.id}
    response = await client.post("/cases/similar", json=body, headers=world.resident.headers)
    assert response.status_code == 200, response.text
    hints = response.json()
    assert sorted(h["number"] for h in hints) == sorted(c["number"] for c in cases)
    assert all(h["similarity"] >= settings.hotspot_threshold for h in hints)
    assert all(h["status_text"] == "已登记" for h in hints)
    assert "id" not in hints[0] and "13800001111" not in response.text
    # Nothing was stored.
    assert await count_cases(db) == before

    unrelated = {
        **body,
        "title": "建议开设书法班",
        "content": "希望老年大学能开设书法班，现在报名太难了。",
    }
    response = await client.post("/cases/similar", json=unrelated, headers=world.resident.headers)
    assert response.json() == []

    # A resolved case is no longer hinted.
    await act(
        client, world.staff, cases[0]["id"], "reject", {"reason_code": "duplicate", "note": "重复"}
    )
    response = await client.post("/cases/similar", json=body, headers=world.deputy.headers)
    assert [h["number"] for h in response.json()] == [cases[1]["number"]]


async def test_staff_similar_cases_include_text_matches_far_away(
    client: httpx.AsyncClient, factory: Factory, world: World, db: Database, settings: Settings
) -> None:
    first = await submit_as(
        client, factory, world, title=STREETLIGHT[0][0], content=STREETLIGHT[0][1]
    )
    # The same problem, reported under another category and without coordinates.
    other = await submit_as(
        client,
        factory,
        world,
        title=STREETLIGHT[2][0],
        content=STREETLIGHT[2][1],
        category_id=world.cat("safety"),
        latitude=None,
        longitude=None,
        station_id=None,
        region_id=world.d.community_a.id,
    )
    await group(db, settings)
    found = await client.get(f"/cases/{other['id']}/similar", headers=world.staff.headers)
    assert found.status_code == 200, found.text
    (match,) = [s for s in found.json() if s["id"] == first["id"]]
    assert match["similarity"] is not None and match["similarity"] > 0
    assert (
        await client.get(f"/cases/{other['id']}/similar", headers=world.resident.headers)
    ).status_code in (403, 404)


async def test_roles_and_bad_input(client: httpx.AsyncClient, world: World, db: Database) -> None:
    body = {**DRAFT, "category_id": world.cat(), "station_id": world.station_a.id}
    assert (await client.post("/cases/similar", json=body)).status_code == 401
    assert (
        await client.post("/cases/similar", json=body, headers=world.handler.headers)
    ).status_code == 403
    for bad in (
        {**DRAFT, "category_id": world.cat()},
        {**body, "station_id": 999999},
        {**body, "title": "x"},
        {**body, "latitude": 91},
        {**body, "extra": 1},
    ):
        response = await client.post("/cases/similar", json=bad, headers=world.resident.headers)
        assert response.status_code == 422, (bad, response.text)
