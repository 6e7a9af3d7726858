"""A district with stations, deputies in a group, staff, residents, for the activity tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from app.core.db import Database
from app.groups.models import DeputyGroup, DeputyGroupMember, GroupRole
from app.identity.models import Deputy
from app.org.models import Station
from tests.factories import Actor, District, Factory

# Monday 2 March 2026, 09:00 in Shanghai.
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
LAT, LNG = 31.2304, 121.4737


@dataclass
class World:
    district: District
    station: Station  # in street A, at (LAT, LNG)
    station_b: Station  # in street B
    group: DeputyGroup  # street A's group: leader, member
    leader: Actor
    member: Actor
    outsider: Actor  # a deputy of street B, in no group
    admin: Actor
    staff_a: Actor  # street A
    staff_b: Actor  # street B
    resident: Actor
    deputies: dict[str, Deputy]


@pytest.fixture
async def world(factory: Factory, db: Database) -> World:
    d = await factory.district()
    station = await factory.station(d.community_a, name="甲社区联络站", latitude=LAT, longitude=LNG)
    station_b = await factory.station(
        d.community_b, name="乙社区联络站", latitude=31.6, longitude=121.5
    )
    leader_d = await factory.deputy(d.street_a, station, name="王组长")
    member_d = await factory.deputy(d.street_a, station, name="李代表")
    outsider_d = await factory.deputy(d.street_b, station_b, name="赵代表")
    group = await factory.add(DeputyGroup(name="甲街道代表小组", region_id=d.street_a.id))
    await factory.add(
        DeputyGroupMember(group_id=group.id, deputy_id=leader_d.id, role=GroupRole.leader)
    )
    await factory.add(
        DeputyGroupMember(group_id=group.id, deputy_id=member_d.id, role=GroupRole.member)
    )
    return World(
        district=d,
        station=station,
        station_b=station_b,
        group=group,
        leader=await factory.deputy_actor(leader_d),
        member=await factory.deputy_actor(member_d),
        outsider=await factory.deputy_actor(outsider_d),
        admin=await factory.admin(),
        staff_a=await factory.staff(d.street_a),
        staff_b=await factory.staff(d.street_b),
        resident=await factory.resident(),
        deputies={"leader": leader_d, "member": member_d, "outsider": outsider_d},
    )


# Metres per degree of latitude, for "n metres north of the station".
METRES_PER_DEGREE_LAT = 111_195.0


def plan(world: World, **overrides: object) -> dict[str, object]:
    """An activity at street A's station on 3 March 2026, 09:30-12:00 Shanghai, inviting
    street A's group."""
    body: dict[str, object] = {
        "kind": "inspection",
        "title": "加装电梯视察",
        "content": "实地查看",
        "starts_at": "2026-03-03T01:30:00Z",
        "ends_at": "2026-03-03T04:00:00Z",
        "station_id": world.station.id,
        "organiser": "甲街道人大工委",
        "group_id": world.group.id,
        "invite": {"group_ids": [world.group.id]},
    }
    body.update(overrides)
    return body


def public_plan(world: World, capacity: int = 10, **overrides: object) -> dict[str, object]:
    return plan(
        world,
        is_public=True,
        signup_enabled=True,
        capacity=capacity,
        signup_deadline="2026-03-02T12:00:00Z",
        **overrides,
    )


async def create(client, actor: Actor, body: dict[str, object]) -> dict:  # type: ignore[no-untyped-def]
    response = await client.post("/activities", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def code_scene(client, world: World, activity_id: int) -> str:  # type: ignore[no-untyped-def]
    response = await client.get(
        f"/activities/{activity_id}/qrcode",
        params={"format": "json"},
        headers=world.staff_a.headers,
    )
    assert response.status_code == 200, response.text
    return response.json()["scene"]  # type: ignore[no-any-return]


async def scan(  # type: ignore[no-untyped-def]
    client,
    actor: Actor,
    activity_id: int,
    scene: str,
    *,
    metres_away: float = 10.0,
    accuracy: float = 15.0,
):
    return await client.post(
        f"/activities/{activity_id}/checkins",
        json={
            "scene": scene,
            "latitude": LAT + metres_away / METRES_PER_DEGREE_LAT,
            "longitude": LNG,
            "accuracy": accuracy,
        },
        headers=actor.headers,
    )
