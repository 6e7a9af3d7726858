"""Shared setup for the wish tests: a district with a station, people in every role, and
wishes put straight into any status (the flows themselves are exercised over HTTP)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from app.core.clock import utcnow
from app.core.db import Database
from app.identity.models import Deputy
from app.notify.models import Notification
from app.org.models import Station
from app.wishes.models import ContentCheck, Wish, WishEvent, WishStatus
from tests.factories import Actor, District, Factory


@dataclass
class World:
    district: District
    station: Station  # in community_a
    station_b: Station  # in community_b
    resident: Actor
    other_resident: Actor
    deputy: Actor
    other_deputy: Actor
    staff: Actor  # covers the whole district
    staff_a: Actor  # covers street_a (and community_a)
    staff_b: Actor  # covers street_b only
    admin: Actor
    unit: Actor


@pytest.fixture
async def world(factory: Factory) -> World:
    district = await factory.district()
    station = await factory.station(district.community_a, name="甲社区代表联络站")
    station_b = await factory.station(district.community_b, name="乙社区代表联络站")
    unit = await factory.unit(region=district.district)
    return World(
        district=district,
        station=station,
        station_b=station_b,
        resident=await factory.resident(),
        other_resident=await factory.resident(),
        deputy=await factory.deputy_actor(await factory.deputy(name="李代表")),
        other_deputy=await factory.deputy_actor(await factory.deputy(name="张代表")),
        staff=await factory.staff(district.district),
        staff_a=await factory.staff(district.street_a),
        staff_b=await factory.staff(district.street_b),
        admin=await factory.admin(),
        unit=await factory.unit_handler(unit),
    )


async def make_wish(
    factory: Factory,
    owner: Actor,
    station: Station,
    *,
    status: WishStatus = WishStatus.published,
    claimer: Actor | None = None,
    title: str = "想要一个新书包",
    published_at: datetime | None = None,
    fulfilled_at: datetime | None = None,
    **fields: Any,
) -> Wish:
    """A wish in `status`, written straight to the database."""
    now = utcnow()
    values: dict[str, Any] = {
        "resident_id": owner.id,
        "title": title,
        "content": "孩子的书包背了三年已经破了，开学前想换一个新的。",
        "beneficiary_name": "王小明",
        "beneficiary_phone": "13812345678",
        "beneficiary_address": "幸福路12号3栋201",
        "beneficiary_description": "8岁，和奶奶一起生活",
        "region_id": station.region_id,
        "station_id": station.id,
        "status": status,
        "content_check": ContentCheck.passed,
    }
    if status not in (WishStatus.pending_review, WishStatus.rejected):
        values["published_at"] = published_at or now
    if status in (WishStatus.claimed, WishStatus.fulfilled, WishStatus.completed):
        assert claimer is not None
        values.update(
            claimed_by_deputy_id=claimer.deputy_id,
            claimed_by_user_id=claimer.id,
            claimed_at=now,
        )
    if status in (WishStatus.fulfilled, WishStatus.completed):
        values.update(fulfilled_at=fulfilled_at or now, fulfil_note="已送达")
    if status == WishStatus.completed:
        values["completed_at"] = now
    values.update(fields)
    return await factory.add(Wish(**values))  # type: ignore[no-any-return]


async def wish_row(db: Database, wish_id: int) -> Wish:
    async with db.transaction(write=False) as session:
        return (await session.execute(select(Wish).where(Wish.id == wish_id))).scalar_one()


async def events_of(db: Database, wish_id: int) -> list[WishEvent]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            select(WishEvent).where(WishEvent.wish_id == wish_id).order_by(WishEvent.id)
        )
        return list(rows.scalars())


async def notifications_for(db: Database, recipient_id: int) -> list[Notification]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            select(Notification)
            .where(Notification.recipient_id == recipient_id)
            .order_by(Notification.id)
        )
        return list(rows.scalars())


async def deputy_named(db: Database, deputy_id: int) -> Deputy:
    async with db.transaction(write=False) as session:
        deputy = await session.get(Deputy, deputy_id)
        assert deputy is not None
        return deputy
