"""Small steps the cross-domain tests of tests/core share."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from app.cases.models import CaseCategory
from app.cases.seed import seed_case_categories
from app.org.models import Station
from tests.factories import Actor, Factory


async def submit_case(
    client: httpx.AsyncClient, factory: Factory, resident: Actor, station: Station
) -> httpx.Response:
    """A resident's case at `station`, in the first seeded category (seeded here)."""
    async with factory.db.transaction() as session:
        await seed_case_categories(session)
        category = (await session.execute(select(CaseCategory).limit(1))).scalars().one()
    return await client.post(
        "/cases",
        json={
            "title": "翠苑一区东门路灯不亮",
            "content": "小区东门路灯坏了一个多月，晚上老人出行很不方便，希望尽快修复。",
            "category_id": category.id,
            "station_id": station.id,
        },
        headers=resident.headers,
    )
