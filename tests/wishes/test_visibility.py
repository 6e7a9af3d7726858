"""Who sees which wishes, and whose beneficiary details are masked."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from app.core.clock import utcnow
from app.wishes.models import WishStatus
from tests.factories import Factory
from tests.wishes.conftest import World, make_wish

FULL = {
    "name": "王小明",
    "phone": "13812345678",
    "address": "幸福路12号3栋201",
    "description": "8岁，和奶奶一起生活",
    "masked": False,
}
MASKED = {
    "name": "王**",
    "phone": "138****5678",
    "address": "幸福路12号****",
    "description": None,
    "masked": True,
}


async def test_the_wall_lists_published_wishes_newest_first(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    now = utcnow()
    old = await make_wish(
        factory, world.resident, world.station, published_at=now - timedelta(days=2)
    )
    new = await make_wish(factory, world.other_resident, world.station_b, published_at=now)
    for status in (
        WishStatus.pending_review,
        WishStatus.rejected,
        WishStatus.withdrawn,
        WishStatus.expired,
    ):
        await make_wish(factory, world.resident, world.station, status=status)
    await make_wish(
        factory, world.resident, world.station, status=WishStatus.claimed, claimer=world.deputy
    )

    for headers in ({}, world.resident.headers, world.deputy.headers):
        wall = await client.get("/wishes", headers=headers)
        assert wall.status_code == 200
        assert [w["id"] for w in wall.json()["items"]] == [new.id, old.id]
        assert wall.json()["total"] == 2
    anonymous = (await client.get("/wishes")).json()["items"]
    assert all(w["beneficiary"] == MASKED for w in anonymous)
    assert all(w["reject_reason"] is None and w["content_check"] is None for w in anonymous)
    # The owner sees their own in full even on the wall.
    own = (await client.get("/wishes", headers=world.resident.headers)).json()["items"]
    assert {w["id"]: w["beneficiary"]["masked"] for w in own} == {new.id: True, old.id: False}

    page = await client.get("/wishes?limit=1&offset=1")
    assert [w["id"] for w in page.json()["items"]] == [old.id] and page.json()["total"] == 2


async def test_wall_filters_by_station_and_region_subtree(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    a = await make_wish(factory, world.resident, world.station)
    b = await make_wish(factory, world.resident, world.station_b)
    d = world.district

    async def ids(query: str) -> set[int]:
        response = await client.get(f"/wishes?{query}")
        assert response.status_code == 200
        return {w["id"] for w in response.json()["items"]}

    assert await ids(f"station_id={world.station.id}") == {a.id}
    assert await ids(f"region_id={d.street_a.id}") == {a.id}
    assert await ids(f"region_id={d.community_b.id}") == {b.id}
    assert await ids(f"region_id={d.district.id}") == {a.id, b.id}
    assert await ids("region_id=999999") == set()
    assert await ids("status=published") == {a.id, b.id}


async def test_status_filter_on_the_wall_is_for_staff(
    client: httpx.AsyncClient, world: World
) -> None:
    for headers in ({}, world.resident.headers, world.deputy.headers):
        response = await client.get("/wishes?status=pending_review", headers=headers)
        assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert (await client.get("/wishes?status=nonsense")).status_code == 422


async def test_mine_lists_own_wishes_and_own_claims(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    pending = await make_wish(
        factory, world.resident, world.station, status=WishStatus.pending_review
    )
    rejected = await make_wish(
        factory,
        world.resident,
        world.station,
        status=WishStatus.rejected,
        reject_reason="请写具体物品",
    )
    claimed = await make_wish(
        factory,
        world.other_resident,
        world.station,
        status=WishStatus.claimed,
        claimer=world.deputy,
    )
    await make_wish(factory, world.other_resident, world.station)

    mine = (await client.get("/wishes?mine=true", headers=world.resident.headers)).json()
    assert {w["id"] for w in mine["items"]} == {pending.id, rejected.id} and mine["total"] == 2
    assert all(w["beneficiary"] == FULL for w in mine["items"])
    by_id = {w["id"]: w for w in mine["items"]}
    assert by_id[rejected.id]["reject_reason"] == "请写具体物品"

    only_rejected = await client.get(
        "/wishes?mine=true&status=rejected", headers=world.resident.headers
    )
    assert [w["id"] for w in only_rejected.json()["items"]] == [rejected.id]

    claims = (await client.get("/wishes?mine=true", headers=world.deputy.headers)).json()
    assert [w["id"] for w in claims["items"]] == [claimed.id]
    assert claims["items"][0]["beneficiary"] == FULL
    assert (await client.get("/wishes?mine=true", headers=world.other_deputy.headers)).json()[
        "total"
    ] == 0

    assert (await client.get("/wishes?mine=true")).status_code == 401


async def test_staff_list_everything_in_their_region_only(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    in_a = await make_wish(factory, world.resident, world.station, status=WishStatus.pending_review)
    in_a_done = await make_wish(
        factory, world.resident, world.station, status=WishStatus.completed, claimer=world.deputy
    )
    in_b = await make_wish(
        factory, world.resident, world.station_b, status=WishStatus.pending_review
    )

    async def listed(headers: dict[str, str], query: str = "") -> set[int]:
        response = await client.get(f"/wishes{query}", headers=headers)
        assert response.status_code == 200
        return {w["id"] for w in response.json()["items"]}

    assert await listed(world.staff.headers) == {in_a.id, in_a_done.id, in_b.id}
    assert await listed(world.admin.headers) == {in_a.id, in_a_done.id, in_b.id}
    assert await listed(world.staff_a.headers) == {in_a.id, in_a_done.id}
    assert await listed(world.staff_b.headers) == {in_b.id}
    assert await listed(world.staff_a.headers, "?status=pending_review") == {in_a.id}
    items = (await client.get("/wishes", headers=world.staff_a.headers)).json()["items"]
    assert all(w["beneficiary"] == FULL and w["content_check"] == "passed" for w in items)


async def test_detail_of_a_published_wish_is_public_but_masked(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    wish = await make_wish(factory, world.resident, world.station)
    public = await client.get(f"/wishes/{wish.id}")
    assert public.status_code == 200
    body = public.json()
    assert body["beneficiary"] == MASKED and body["timeline"] is None
    assert body["actions"] == []
    for viewer in (world.other_resident, world.deputy, world.unit, world.staff_b):
        seen = (await client.get(f"/wishes/{wish.id}", headers=viewer.headers)).json()
        assert seen["beneficiary"] == MASKED, viewer.user.role
    assert (await client.get(f"/wishes/{wish.id}", headers=world.deputy.headers)).json()[
        "actions"
    ] == ["claim"]
    for viewer in (world.resident, world.staff, world.staff_a, world.admin):
        seen = (await client.get(f"/wishes/{wish.id}", headers=viewer.headers)).json()
        assert seen["beneficiary"] == FULL and seen["timeline"] == [], viewer.user.role


@pytest.mark.parametrize(
    "status",
    [
        WishStatus.pending_review,
        WishStatus.rejected,
        WishStatus.withdrawn,
        WishStatus.expired,
        WishStatus.claimed,
        WishStatus.fulfilled,
        WishStatus.completed,
    ],
)
async def test_unpublished_wishes_are_404_to_outsiders(
    client: httpx.AsyncClient, world: World, factory: Factory, status: WishStatus
) -> None:
    claimer = (
        world.deputy
        if status in (WishStatus.claimed, WishStatus.fulfilled, WishStatus.completed)
        else None
    )
    wish = await make_wish(factory, world.resident, world.station, status=status, claimer=claimer)
    for headers in (
        {},
        world.other_resident.headers,
        world.other_deputy.headers,
        world.staff_b.headers,
        world.unit.headers,
    ):
        response = await client.get(f"/wishes/{wish.id}", headers=headers)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    insiders = [world.resident, world.staff, world.staff_a, world.admin] + (
        [claimer] if claimer else []
    )
    for actor in insiders:
        response = await client.get(f"/wishes/{wish.id}", headers=actor.headers)
        assert response.status_code == 200 and response.json()["beneficiary"] == FULL


async def test_released_deputy_no_longer_sees_private_fields(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    wish = await make_wish(
        factory, world.resident, world.station, status=WishStatus.claimed, claimer=world.deputy
    )
    assert (await client.get(f"/wishes/{wish.id}", headers=world.deputy.headers)).json()[
        "beneficiary"
    ] == FULL
    released = await client.post(
        f"/wishes/{wish.id}/release", headers=world.deputy.headers, json={"reason": "临时出差"}
    )
    assert released.status_code == 200
    assert released.json()["beneficiary"] == MASKED and released.json()["claimed_by"] is None


async def test_unknown_wish_is_404(client: httpx.AsyncClient, world: World) -> None:
    assert (await client.get("/wishes/424242", headers=world.staff.headers)).status_code == 404
    assert (await client.get("/wishes/0")).status_code == 422
