"""Planning activities: who may, whom they invite, who sees them, bad input."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from app.activities.models import Activity, ActivityInvitation
from app.core.clock import clock
from app.core.db import Database
from app.notify.models import Notification
from tests.activities.conftest import T0, World, create, plan
from tests.factories import Factory


async def _count(db: Database, model: type) -> int:
    async with db.transaction(write=False) as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _events(db: Database, event: str) -> list[int]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            select(Notification.recipient_id).where(Notification.event == event)
        )
        return sorted(rows.scalars())


async def test_staff_plan_an_activity_and_the_invited_hear_of_it(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    clock.freeze(T0)
    activity = await create(
        client,
        world.staff_a,
        plan(
            world,
            invite={"group_ids": [world.group.id], "deputy_ids": [world.deputies["outsider"].id]},
        ),
    )
    assert activity["region_id"] == world.station.region_id
    assert activity["latitude"] == pytest.approx(31.2304) and activity["radius_m"] == 300
    assert activity["kind_label"] == "视察" and activity["status"] == "planned"
    assert activity["can_manage"] is True and activity["invited"] == 3
    assert await _events(db, "activity.invited") == sorted(
        [world.leader.id, world.member.id, world.outsider.id]
    )
    # The invited see it with their own invitation; others do not see a non-public one.
    seen = await client.get(f"/activities/{activity['id']}", headers=world.member.headers)
    assert seen.status_code == 200
    assert seen.json()["my_invitation"]["answer"] == "pending"
    assert seen.json()["can_manage"] is False and seen.json()["invited"] is None
    for headers in (world.resident.headers, {}):
        hidden = await client.get(f"/activities/{activity['id']}", headers=headers)
        assert hidden.status_code == 404
    listed = await client.get("/activities", params={"mine": True}, headers=world.outsider.headers)
    assert [a["id"] for a in listed.json()["items"]] == [activity["id"]]
    assert (await client.get("/activities")).json()["total"] == 0
    # Inviting again adds nobody twice and tells nobody twice.
    again = await client.patch(
        f"/activities/{activity['id']}",
        json={"invite": {"group_ids": [world.group.id]}},
        headers=world.staff_a.headers,
    )
    assert again.status_code == 200 and again.json()["invited"] == 3
    assert len(await _events(db, "activity.invited")) == 3


async def test_a_group_leader_plans_for_the_own_group_only(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory
) -> None:
    clock.freeze(T0)
    activity = await create(client, world.leader, plan(world))
    assert activity["can_manage"] is True
    # The leader may change it; a mere member may not.
    changed = await client.patch(
        f"/activities/{activity['id']}", json={"title": "改题"}, headers=world.leader.headers
    )
    assert changed.status_code == 200 and changed.json()["title"] == "改题"
    refused = await client.patch(
        f"/activities/{activity['id']}", json={"title": "再改"}, headers=world.member.headers
    )
    assert refused.status_code == 403
    before = await _count(db, Activity)
    for actor, body in (
        (world.member, plan(world)),  # not the leader
        (world.leader, plan(world, group_id=None)),  # no group
        (world.leader, plan(world, invite={"deputy_ids": [world.deputies["outsider"].id]})),
        (world.leader, plan(world, invite={"station_ids": [world.station.id]})),
        (world.resident, plan(world)),
        (world.staff_b, plan(world)),  # street A's station is outside street B's scope
    ):
        response = await client.post("/activities", json=body, headers=actor.headers)
        assert response.status_code == 403, (
            actor.user.username or actor.user.nickname,
            response.text,
        )
    assert await _count(db, Activity) == before
    # Inviting someone outside the group later is refused for the leader too.
    outside = await client.patch(
        f"/activities/{activity['id']}",
        json={"invite": {"deputy_ids": [world.deputies["outsider"].id]}},
        headers=world.leader.headers,
    )
    assert outside.status_code == 403


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"ends_at": "2026-03-03T01:00:00Z"}, id="ends-before-start"),
        pytest.param({"starts_at": "2026-03-03T01:30:00"}, id="naive-time"),
        pytest.param({"kind": "Party!"}, id="bad-kind"),
        pytest.param({"station_id": None}, id="nowhere"),
        pytest.param(
            {"station_id": None, "region_id": 1, "address": "某路1号", "latitude": 31.0},
            id="half-coordinates",
        ),
        pytest.param({"signup_enabled": True, "is_public": True}, id="signups-without-capacity"),
        pytest.param(
            {"signup_enabled": True, "capacity": 5, "signup_deadline": "2026-03-02T00:00:00Z"},
            id="signups-not-public",
        ),
        pytest.param(
            {
                "is_public": True,
                "signup_enabled": True,
                "capacity": 5,
                "signup_deadline": "2026-03-04T00:00:00Z",
            },
            id="deadline-after-start",
        ),
        pytest.param({"capacity": 0}, id="zero-capacity"),
        pytest.param({"station_id": 999999}, id="unknown-station"),
        pytest.param({"invite": {"group_ids": [999999]}}, id="unknown-group"),
        pytest.param({"invite": {"deputy_ids": [999999]}}, id="unknown-deputy"),
        pytest.param({"starts_at": "20266-03-03T01:30:00Z"}, id="year-20266"),
        pytest.param({"title": "x" * 101}, id="long-title"),
        pytest.param({"extra": 1}, id="unknown-field"),
    ],
)
async def test_bad_plans_are_422_and_change_nothing(
    client: httpx.AsyncClient, world: World, db: Database, change: dict
) -> None:
    response = await client.post(
        "/activities", json=plan(world, **change), headers=world.admin.headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await _count(db, Activity) == 0
    assert await _count(db, ActivityInvitation) == 0
    assert await _count(db, Notification) == 0


async def test_a_new_time_and_a_cancellation_are_told(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    clock.freeze(T0)
    activity = await create(client, world.staff_a, plan(world))
    url = f"/activities/{activity['id']}"
    bad = await client.patch(
        url, json={"ends_at": "2026-03-03T01:00:00Z"}, headers=world.staff_a.headers
    )
    assert bad.status_code == 422
    moved = await client.patch(
        url,
        json={"starts_at": "2026-03-04T01:30:00Z", "ends_at": "2026-03-04T04:00:00Z"},
        headers=world.staff_a.headers,
    )
    assert moved.status_code == 200, moved.text
    assert await _events(db, "activity.changed") == sorted([world.leader.id, world.member.id])
    cancelled = await client.patch(url, json={"status": "cancelled"}, headers=world.staff_a.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert await _events(db, "activity.cancelled") == sorted([world.leader.id, world.member.id])
    after = await client.patch(url, json={"title": "x"}, headers=world.staff_a.headers)
    assert after.status_code == 409 and after.json()["code"] == "activity_cancelled"
    wrong = await client.patch(url, json={"title": "x"}, headers=world.staff_b.headers)
    assert wrong.status_code in (403, 404)


async def test_residents_find_public_activities_near_them(
    client: httpx.AsyncClient, world: World
) -> None:
    clock.freeze(T0)
    near = await create(client, world.staff_a, plan(world, is_public=True, title="近处"))
    await create(
        client,
        world.admin,
        plan(
            world,
            is_public=True,
            title="远处",
            station_id=world.station_b.id,
            group_id=None,
            invite={},
        ),
    )
    await create(client, world.staff_a, plan(world, title="内部"))
    listed = await client.get(
        "/activities", params={"latitude": 31.2310, "longitude": 121.4737, "upcoming": True}
    )
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [a["title"] for a in items] == ["近处"]
    assert items[0]["id"] == near["id"] and 60 < items[0]["distance_m"] < 75
    everything = await client.get("/activities", headers=world.resident.headers)
    assert {a["title"] for a in everything.json()["items"]} == {"近处", "远处"}
    staff = await client.get("/activities", params={"year": 2026}, headers=world.staff_a.headers)
    assert {a["title"] for a in staff.json()["items"]} == {"近处", "内部"}
    half = await client.get("/activities", params={"latitude": 31.2})
    assert half.status_code == 422
