"""Routing rules, similar cases, list scopes and filters, masking, following."""

from __future__ import annotations

import httpx

from app.core.db import Database
from tests.cases.conftest import World, act, assigned_case, submit
from tests.factories import Factory


async def test_routing_rules_suggest_the_unit_deepest_region_first(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    municipal = world.cat()
    district_rule = await client.post(
        "/routing-rules",
        json={"category_id": municipal, "region_id": world.d.district.id, "unit_id": world.unit.id},
        headers=world.staff.headers,
    )
    assert district_rule.status_code == 201
    street_rule = await client.post(
        "/routing-rules",
        json={
            "category_id": municipal,
            "region_id": world.d.street_a.id,
            "unit_id": world.unit2.id,
        },
        headers=world.staff_a.headers,
    )
    assert street_rule.status_code == 201
    # Staff of street B may not write rules for street A or the district.
    for region in (world.d.street_a.id, world.d.district.id):
        refused = await client.post(
            "/routing-rules",
            json={"category_id": municipal, "region_id": region, "unit_id": world.unit3.id},
            headers=world.staff_b.headers,
        )
        assert refused.status_code == 403
    for body in (
        {"category_id": 9999, "region_id": world.d.street_b.id, "unit_id": world.unit.id},
        {"category_id": municipal, "region_id": world.d.street_b.id, "unit_id": 9999},
        {"category_id": municipal, "region_id": 9999, "unit_id": world.unit.id},
    ):
        assert (
            await client.post("/routing-rules", json=body, headers=world.staff.headers)
        ).status_code == 422
    assert (
        await client.post(
            "/routing-rules",
            json={
                "category_id": municipal,
                "region_id": world.d.district.id,
                "unit_id": world.unit.id,
            },
            headers=world.resident.headers,
        )
    ).status_code == 403

    in_a = await submit(client, world.resident, world)  # station A: community under street A
    in_b = await submit(client, world.resident, world, station_id=world.station_b.id)
    view_a = (await client.get(f"/cases/{in_a['id']}", headers=world.staff.headers)).json()
    view_b = (await client.get(f"/cases/{in_b['id']}", headers=world.staff.headers)).json()
    assert view_a["suggested_unit"] == {"id": world.unit2.id, "name": "东湖街道办事处"}
    assert view_b["suggested_unit"] == {"id": world.unit.id, "name": "区城市管理局"}
    # Residents do not see the routing suggestion.
    assert (await client.get(f"/cases/{in_a['id']}", headers=world.resident.headers)).json()[
        "suggested_unit"
    ] is None
    other_category = await submit(client, world.resident, world, category_id=world.cat("education"))
    assert other_category["suggested_unit"] is None

    rules = await client.get("/routing-rules", headers=world.staff_b.headers)
    # Street B staff see the district rule (it applies to them), not street A's.
    assert [r["region_id"] for r in rules.json()] == [world.d.district.id]
    deleted = await client.delete(
        f"/routing-rules/{street_rule.json()['id']}", headers=world.staff_b.headers
    )
    assert deleted.status_code == 404
    deleted = await client.delete(
        f"/routing-rules/{street_rule.json()['id']}", headers=world.staff_a.headers
    )
    assert deleted.status_code == 204
    assert len((await client.get("/routing-rules", headers=world.staff.headers)).json()) == 1


async def test_similar_open_cases_nearby_or_same_kind(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    new = await submit(client, world.resident, world, latitude=30.2803, longitude=120.1321)
    near = await submit(
        client,
        world.resident2,
        world,
        latitude=30.2810,
        longitude=120.1325,
        category_id=world.cat("environment"),
    )
    same_kind = await submit(client, world.resident2, world, latitude=None, longitude=None)
    far = await submit(
        client,
        world.resident2,
        world,
        station_id=world.station_b.id,
        latitude=30.2101,
        longitude=120.0502,
    )
    closed = await submit(client, world.resident2, world)
    await act(
        client, world.staff, closed["id"], "reject", {"reason_code": "duplicate", "note": "重复"}
    )
    response = await client.get(f"/cases/{new['id']}/similar", headers=world.staff.headers)
    assert response.status_code == 200
    found = response.json()
    assert [c["id"] for c in found] == [near["id"], same_kind["id"]]
    assert 50 < found[0]["distance_m"] < 150
    assert found[1]["distance_m"] is None
    assert far["id"] not in [c["id"] for c in found]
    for actor in (world.resident, world.handler):
        assert (
            await client.get(f"/cases/{new['id']}/similar", headers=actor.headers)
        ).status_code in (403, 404)


async def test_list_scopes_for_each_role(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory
) -> None:
    mine = await submit(client, world.resident, world)
    theirs = await submit(client, world.resident2, world, station_id=world.station_b.id)
    to_deputy = await submit(client, world.resident2, world, deputy_id=world.deputy.deputy_id)
    deputy_own = await submit(client, world.deputy, world)
    await act(
        client,
        world.staff,
        mine["id"],
        "assign",
        {"unit_id": world.unit.id, "co_unit_ids": [world.unit3.id]},
    )

    async def ids(actor_headers: dict[str, str], **params: object) -> set[int]:
        response = await client.get("/cases", params=params, headers=actor_headers)
        assert response.status_code == 200
        body = response.json()
        assert body["total"] == len(body["items"])
        return {c["id"] for c in body["items"]}

    everything = {mine["id"], theirs["id"], to_deputy["id"], deputy_own["id"]}
    assert await ids(world.resident.headers) == {mine["id"]}
    assert await ids(world.resident2.headers) == {theirs["id"], to_deputy["id"]}
    assert await ids(world.deputy.headers) == {to_deputy["id"], deputy_own["id"]}
    assert await ids(world.handler.headers) == {mine["id"]}
    assert await ids(world.handler3.headers) == {mine["id"]}  # co-handling
    assert await ids(world.handler2.headers) == set()
    assert await ids(world.staff.headers) == everything
    assert await ids(world.admin.headers) == everything
    assert await ids(world.staff_b.headers) == {theirs["id"]}
    assert await ids(world.staff_a.headers) == everything - {theirs["id"]}
    # Filters.
    assert await ids(world.staff.headers, status="handling") == {mine["id"]}
    assert await ids(world.staff.headers, region_id=world.d.street_b.id) == {theirs["id"]}
    assert await ids(world.staff.headers, station_id=world.station_b.id) == {theirs["id"]}
    assert await ids(world.staff.headers, unit_id=world.unit.id) == {mine["id"]}
    assert await ids(world.staff.headers, category=world.cat("education")) == set()
    assert await ids(world.staff.headers, q=mine["number"]) == {mine["id"]}
    assert len(await ids(world.staff.headers, q="路灯")) == 4
    assert (
        await client.get("/cases", params={"status": "nope"}, headers=world.staff.headers)
    ).status_code == 422
    assert (await client.get("/cases")).status_code == 401
    # Reading one outside one's scope is a 404, not a hint that it exists.
    for actor in (world.resident2, world.handler2, world.staff_b):
        assert (await client.get(f"/cases/{mine['id']}", headers=actor.headers)).status_code == 404
    assert (await client.get("/cases/999999", headers=world.staff.headers)).status_code == 404


async def test_phone_masked_except_staff_of_region_and_lead_unit(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    case = await submit(
        client,
        world.resident,
        world,
        contact_name="张三丰",
        contact_phone="13800001111",
        deputy_id=world.deputy.deputy_id,
    )
    await act(
        client,
        world.staff,
        case["id"],
        "assign",
        {"unit_id": world.unit.id, "co_unit_ids": [world.unit2.id]},
    )
    await act(client, world.deputy, case["id"], "follow")

    async def contact(actor_headers: dict[str, str]) -> tuple[str, str]:
        body = (await client.get(f"/cases/{case['id']}", headers=actor_headers)).json()
        return body["contact_name"], body["contact_phone"]

    assert await contact(world.staff.headers) == ("张三丰", "13800001111")
    assert await contact(world.staff_a.headers) == ("张三丰", "13800001111")
    assert await contact(world.handler.headers) == ("张三丰", "13800001111")
    assert await contact(world.handler2.headers) == ("张**", "138****1111")  # co-handling
    assert await contact(world.deputy.headers) == ("张**", "138****1111")
    listed = (await client.get("/cases", headers=world.handler2.headers)).json()["items"]
    assert listed[0]["contact_phone"] == "138****1111"


async def test_deputy_follows_a_case(client: httpx.AsyncClient, world: World, db: Database) -> None:
    case = await submit(client, world.resident, world, deputy_id=world.deputy.deputy_id)
    followed = await act(client, world.deputy, case["id"], "follow")
    assert followed["following"] is True
    again = await act(client, world.deputy, case["id"], "follow")
    assert again["following"] is True
    from sqlalchemy import func, select

    from app.cases.models import CaseFollow

    async with db.transaction(write=False) as session:
        follows = (await session.execute(select(func.count()).select_from(CaseFollow))).scalar_one()
    assert follows == 1
    # A followed case stays in the deputy's list and its news reaches them.
    await act(client, world.staff, case["id"], "assign", {"unit_id": world.unit.id})
    from tests.cases.conftest import notifications

    assert [n.event for n in await notifications(db, world.deputy.id)] == ["case.handling"]
    # A case the deputy cannot see cannot be followed.
    hidden = await assigned_case(client, world)
    assert (
        await client.post(f"/cases/{hidden['id']}/follow", headers=world.deputy.headers)
    ).status_code == 404
