"""Regions: the public tree, admin management, materialized paths, and the scope helpers."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from app.core.security import Principal, Role
from app.org import service as org_service
from app.org.models import Region, Station
from tests.factories import Factory


async def _paths(factory: Factory) -> dict[str, str]:
    async with factory.db.transaction() as session:
        rows = (await session.execute(select(Region.name, Region.path))).all()
    return {name: path for name, path in rows}


async def test_public_list_is_flat_tree_order_with_filters(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district("东城区")
    other = await factory.district("西城区")
    response = await client.get("/regions")
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 10
    paths = [r["path"] for r in body["items"]]
    assert paths == sorted(paths)
    first = body["items"][0]
    assert first == {
        "id": d.district.id,
        "name": "东城区",
        "level": "district",
        "parent_id": None,
        "path": f"/{d.district.id}/",
        "depth": 1,
    }

    children = (await client.get("/regions", params={"parent_id": d.district.id})).json()
    assert {r["id"] for r in children["items"]} == {d.street_a.id, d.street_b.id}

    subtree = (await client.get("/regions", params={"root_id": d.street_a.id})).json()
    assert [r["id"] for r in subtree["items"]] == [d.street_a.id, d.community_a.id]
    assert subtree["items"][1]["depth"] == 3

    communities = (await client.get("/regions", params={"level": "community"})).json()
    assert communities["total"] == 4
    assert other.district.id not in [r["id"] for r in subtree["items"]]


async def test_nested_tree(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    tree = (await client.get("/regions/tree")).json()
    assert len(tree) == 1 and tree[0]["id"] == d.district.id
    streets = {s["id"]: s for s in tree[0]["children"]}
    assert set(streets) == {d.street_a.id, d.street_b.id}
    assert [c["id"] for c in streets[d.street_a.id]["children"]] == [d.community_a.id]
    sub = (await client.get("/regions/tree", params={"root_id": d.street_b.id})).json()
    assert [n["id"] for n in sub] == [d.street_b.id]
    assert [c["id"] for c in sub[0]["children"]] == [d.community_b.id]


async def test_admin_creates_regions_with_paths(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.admin()
    city = await client.post(
        "/regions", json={"name": "江城市", "level": "city"}, headers=admin.headers
    )
    assert city.status_code == 201, city.text
    city_id = city.json()["id"]
    assert city.json()["path"] == f"/{city_id}/" and city.json()["parent_id"] is None
    district = await client.post(
        "/regions",
        json={"name": "江城区", "level": "district", "parent_id": city_id},
        headers=admin.headers,
    )
    assert district.status_code == 201
    assert district.json()["path"] == f"/{city_id}/{district.json()['id']}/"
    assert district.json()["depth"] == 2


async def test_create_region_refusals_change_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    admin = await factory.admin()
    staff = await factory.staff(d.district)
    resident = await factory.resident()
    body = {"name": "新街道", "level": "street", "parent_id": d.district.id}
    assert (await client.post("/regions", json=body)).status_code == 401
    for actor in (staff, resident):
        refused = await client.post("/regions", json=body, headers=actor.headers)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    # Level not below the parent's.
    same_level = await client.post(
        "/regions",
        json={"name": "平级", "level": "district", "parent_id": d.district.id},
        headers=admin.headers,
    )
    assert same_level.status_code == 422
    assert same_level.json()["errors"][0]["field"] == "body.level"
    above = await client.post(
        "/regions",
        json={"name": "更高", "level": "city", "parent_id": d.street_a.id},
        headers=admin.headers,
    )
    assert above.status_code == 422
    unknown_parent = await client.post(
        "/regions", json={**body, "parent_id": 999999}, headers=admin.headers
    )
    assert unknown_parent.status_code == 422
    assert unknown_parent.json()["errors"][0]["field"] == "body.parent_id"
    bad_level = await client.post(
        "/regions", json={**body, "level": "province"}, headers=admin.headers
    )
    assert bad_level.status_code == 422
    empty_name = await client.post("/regions", json={**body, "name": " "}, headers=admin.headers)
    assert empty_name.status_code == 422
    twin = await client.post(
        "/regions",
        json={"name": d.street_a.name, "level": "street", "parent_id": d.district.id},
        headers=admin.headers,
    )
    assert twin.status_code == 409 and twin.json()["code"] == "region_name_taken"
    assert (await client.get("/regions")).json()["total"] == 5


async def test_move_rewrites_the_subtree_paths(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    admin = await factory.admin()
    # Community A moves from street A to street B.
    moved = await client.patch(
        f"/regions/{d.community_a.id}",
        json={"parent_id": d.street_b.id},
        headers=admin.headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["path"] == f"/{d.district.id}/{d.street_b.id}/{d.community_a.id}/"
    # Street B (with both communities) moves to the top as its own tree.
    root = await client.patch(
        f"/regions/{d.street_b.id}", json={"parent_id": None}, headers=admin.headers
    )
    assert root.status_code == 200
    paths = await _paths(factory)
    assert paths[d.street_b.name] == f"/{d.street_b.id}/"
    assert paths[d.community_a.name] == f"/{d.street_b.id}/{d.community_a.id}/"
    assert paths[d.community_b.name] == f"/{d.street_b.id}/{d.community_b.id}/"
    assert paths[d.street_a.name] == f"/{d.district.id}/{d.street_a.id}/"
    # Rename only.
    renamed = await client.patch(
        f"/regions/{d.street_a.id}", json={"name": "改名街道"}, headers=admin.headers
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "改名街道"
    assert renamed.json()["path"] == f"/{d.district.id}/{d.street_a.id}/"


async def test_move_under_own_subtree_and_bad_levels_are_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    admin = await factory.admin()
    staff = await factory.staff(d.district)
    before = await _paths(factory)
    for parent in (d.district.id, d.street_a.id, d.community_a.id):
        refused = await client.patch(
            f"/regions/{d.district.id}",
            json={"parent_id": parent},
            headers=admin.headers,
        )
        assert refused.status_code == 422, (parent, refused.text)
        assert refused.json()["errors"][0]["field"] == "body.parent_id"
    under_child = await client.patch(
        f"/regions/{d.street_a.id}", json={"parent_id": d.community_a.id}, headers=admin.headers
    )
    assert under_child.status_code == 422
    # A street cannot become a community while it has a community below it.
    relevel = await client.patch(
        f"/regions/{d.street_a.id}", json={"level": "community"}, headers=admin.headers
    )
    assert relevel.status_code == 422
    # A community cannot move under another community (same level).
    flat = await client.patch(
        f"/regions/{d.community_a.id}", json={"parent_id": d.community_b.id}, headers=admin.headers
    )
    assert flat.status_code == 422
    null_name = await client.patch(
        f"/regions/{d.street_a.id}", json={"name": None}, headers=admin.headers
    )
    assert null_name.status_code == 422
    forbidden = await client.patch(
        f"/regions/{d.street_a.id}", json={"name": "x"}, headers=staff.headers
    )
    assert forbidden.status_code == 403
    missing = await client.patch("/regions/999999", json={"name": "x"}, headers=admin.headers)
    assert missing.status_code == 404
    assert await _paths(factory) == before


async def test_scope_helpers(factory: Factory) -> None:
    d = await factory.district()
    other = await factory.district("西城区")
    station_a = await factory.station(d.community_a)
    station_b = await factory.station(d.community_b)
    station_other = await factory.station(other.community_a)
    admin = Principal(user_id=1, role=Role.admin)
    street_staff = Principal(user_id=2, role=Role.staff, region_id=d.street_a.id)
    district_staff = Principal(user_id=3, role=Role.staff, region_id=d.district.id)
    resident = Principal(user_id=4, role=Role.resident)
    regionless_staff = Principal(user_id=5, role=Role.staff)
    async with factory.db.transaction(write=False) as session:
        assert set(await org_service.region_subtree_ids(session, d.street_a.id)) == {
            d.street_a.id,
            d.community_a.id,
        }
        assert await org_service.region_subtree_ids(session, 999999) == []

        async def visible(principal: Principal) -> set[int]:
            rows = await session.execute(
                select(Station.id).where(org_service.in_scope(principal, Station.region_id))
            )
            return set(rows.scalars().all())

        assert await visible(admin) == {station_a.id, station_b.id, station_other.id}
        assert await visible(street_staff) == {station_a.id}
        assert await visible(district_staff) == {station_a.id, station_b.id}
        assert await visible(resident) == set()
        assert await visible(regionless_staff) == set()

        can = org_service.staff_can_see_region
        assert await can(session, street_staff, d.community_a.id)
        assert await can(session, street_staff, d.street_a.id)
        assert not await can(session, street_staff, d.district.id)
        assert not await can(session, street_staff, d.community_b.id)
        assert not await can(session, street_staff, None)
        assert await can(session, admin, None)
        assert not await can(session, resident, d.community_a.id)
        assert not await can(session, district_staff, other.district.id)
