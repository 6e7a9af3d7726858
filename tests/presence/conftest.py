"""A small world for the presence tests: a district, stations, deputies and staff."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from app.core.db import Database
from app.org.models import QrMode, Station
from app.presence.models import CheckIn
from tests.factories import Actor, District, Factory


@dataclass
class World:
    district: District
    station: Station  # in community_a, printed codes
    other_station: Station  # in community_a too, without coordinates
    far_station: Station  # in community_b (street_b)
    deputy: Actor  # attached to `station`
    colleague: Actor  # attached to `station` too
    outsider: Actor  # a deputy of street_b's station
    staff_a: Actor  # street_a: sees station and other_station
    staff_b: Actor  # street_b: sees far_station only
    district_staff: Actor
    admin: Actor
    resident: Actor
    unit: Actor


@pytest.fixture
async def world(factory: Factory) -> World:
    d = await factory.district()
    station = await factory.station(d.community_a, name="甲社区联络站")
    other = await factory.station(
        d.community_a, name="甲社区第二联络站", latitude=None, longitude=None
    )
    far = await factory.station(d.community_b, name="乙社区联络站", qr_mode=QrMode.both)
    deputy = await factory.deputy_actor(await factory.deputy(d.district, station, name="王芳"))
    colleague = await factory.deputy_actor(await factory.deputy(d.district, station, name="李明"))
    outsider = await factory.deputy_actor(await factory.deputy(d.district, far, name="赵强"))
    return World(
        district=d,
        station=station,
        other_station=other,
        far_station=far,
        deputy=deputy,
        colleague=colleague,
        outsider=outsider,
        staff_a=await factory.staff(d.street_a),
        staff_b=await factory.staff(d.street_b),
        district_staff=await factory.staff(d.district),
        admin=await factory.admin(),
        resident=await factory.resident(),
        unit=await factory.unit_handler(await factory.unit()),
    )


async def count_checkins(db: Database, **where: object) -> int:
    async with db.transaction(write=False) as session:
        stmt = select(func.count()).select_from(CheckIn)
        for key, value in where.items():
            column = getattr(CheckIn, key)
            stmt = stmt.where(column.is_(None) if value is None else column == value)
        return int((await session.execute(stmt)).scalar_one())
