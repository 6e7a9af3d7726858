"""A small world for the case tests: a district, categories, units, and one actor per role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.cases.models import Case, CaseCategory, CaseEvent
from app.cases.seed import seed_case_categories
from app.core.db import Database
from app.notify.models import Notification
from app.org.models import Station, Unit
from tests.factories import Actor, District, Factory


@dataclass
class World:
    d: District
    station_a: Station
    station_b: Station
    categories: dict[str, CaseCategory]
    unit: Unit
    unit2: Unit
    unit3: Unit
    resident: Actor
    resident2: Actor
    deputy: Actor
    staff: Actor  # district: sees everything
    staff_a: Actor  # street A only
    staff_b: Actor  # street B only
    handler: Actor  # unit
    handler2: Actor  # unit2
    handler3: Actor  # unit3
    admin: Actor

    def cat(self, code: str = "municipal") -> int:
        category_id = self.categories[code].id
        assert category_id is not None
        return category_id


@pytest.fixture
async def world(factory: Factory, db: Database) -> World:
    d = await factory.district()
    station_a = await factory.station(d.community_a, latitude=30.2802, longitude=120.1320)
    station_b = await factory.station(d.community_b, latitude=30.2101, longitude=120.0502)
    async with db.transaction() as session:
        await seed_case_categories(session)
        rows = await session.execute(select(CaseCategory))
        categories = {c.code: c for c in rows.scalars()}
    unit = await factory.unit("区城市管理局", d.district)
    unit2 = await factory.unit("东湖街道办事处", d.district)
    unit3 = await factory.unit("区住房和城乡建设局", d.district)
    deputy = await factory.deputy(d.community_a, station_a, name="王建国")
    return World(
        d=d,
        station_a=station_a,
        station_b=station_b,
        categories=categories,
        unit=unit,
        unit2=unit2,
        unit3=unit3,
        resident=await factory.resident(phone="13800001111"),
        resident2=await factory.resident(phone="13900002222"),
        deputy=await factory.deputy_actor(deputy),
        staff=await factory.staff(d.district),
        staff_a=await factory.staff(d.street_a),
        staff_b=await factory.staff(d.street_b),
        handler=await factory.unit_handler(unit),
        handler2=await factory.unit_handler(unit2),
        handler3=await factory.unit_handler(unit3),
        admin=await factory.admin(),
    )


def case_body(world: World, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "翠苑一区东门路灯不亮",
        "content": "小区东门路灯坏了一个多月，晚上老人出行很不方便，希望尽快修复。",
        "category_id": world.cat(),
        "station_id": world.station_a.id,
        "latitude": 30.2803,
        "longitude": 120.1321,
        "address": "翠苑一区东门",
    }
    body.update(overrides)
    return body


async def submit(
    client: httpx.AsyncClient, actor: Actor, world: World, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        "/cases", json=case_body(world, **overrides), headers=actor.headers
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def act(
    client: httpx.AsyncClient,
    actor: Actor,
    case_id: int,
    action: str,
    body: dict[str, Any] | None = None,
    expect: int = 200,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        f"/cases/{case_id}/{action}", json=body or {}, headers={**actor.headers, **(headers or {})}
    )
    assert response.status_code == expect, response.text
    return response.json()  # type: ignore[no-any-return]


async def assigned_case(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    case = await submit(client, world.resident, world)
    return await act(client, world.staff, case["id"], "assign", {"unit_id": world.unit.id})


async def fed_back_case(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    case = await assigned_case(client, world)
    return await act(
        client, world.handler, case["id"], "reply", {"public_answer": "已修复路灯，恢复照明。"}
    )


async def count_cases(db: Database) -> int:
    async with db.transaction(write=False) as session:
        return int((await session.execute(select(func.count()).select_from(Case))).scalar_one())


async def count_events(db: Database, case_id: int | None = None) -> int:
    async with db.transaction(write=False) as session:
        stmt = select(func.count()).select_from(CaseEvent)
        if case_id is not None:
            stmt = stmt.where(CaseEvent.case_id == case_id)
        return int((await session.execute(stmt)).scalar_one())


async def notifications(db: Database, recipient_id: int | None = None) -> list[Notification]:
    async with db.transaction(write=False) as session:
        stmt = select(Notification).order_by(Notification.id)  # type: ignore[arg-type]
        if recipient_id is not None:
            stmt = stmt.where(Notification.recipient_id == recipient_id)
        return list((await session.execute(stmt)).scalars())


async def case_row(db: Database, case_id: int) -> Case:
    async with db.transaction(write=False) as session:
        case = await session.get(Case, case_id)
        assert case is not None
        return case


def retoken(factory: Factory, world: World) -> None:
    """Fresh tokens after the test moved the clock (tokens expire on the service clock)."""
    for name, value in vars(world).items():
        if isinstance(value, Actor):
            token = factory.token_for(value.user)
            value.token = token
            value.headers = {"Authorization": f"Bearer {token}"}
            setattr(world, name, value)
