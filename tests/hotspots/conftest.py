"""Hotspot tests stand on the case world (a district, stations, units, one actor per role)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from app.cases.models import Case
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import Database
from app.hotspots import service as hotspot_service
from tests.cases.conftest import World, submit
from tests.cases.conftest import world as world  # noqa: F401  (the cases' fixture)
from tests.factories import Actor, Factory

STREETLIGHT = [
    ("翠苑一区东门路灯不亮", "小区东门路灯坏了一个多月，晚上老人出行很不方便，希望尽快修复。"),
    ("东门路灯坏了", "翠苑一区东门的路灯晚上黑漆漆的全不亮，我叫张三丰，电话13812345678。"),
    ("翠苑一区东门路登不亮", "翠苑一区东门的路灯坏了好久了，晚上走路看不见，请修一下。"),
]
GARBAGE = ("文华路垃圾堆积没人清运", "文华路口的生活垃圾好几天没人清理，发臭了，苍蝇很多。")


async def group(db: Database, settings: Settings) -> int:
    """Run the worker's grouping sweep until nothing is left; answers how many it grouped."""
    grouped = 0
    while True:
        async with db.transaction() as session:
            n = await hotspot_service.group_pending(session, utcnow(), settings)
        if not n:
            return grouped
        grouped += n


async def submit_as(
    client: httpx.AsyncClient, factory: Factory, world: World, **body: Any
) -> dict[str, Any]:
    """A case from a new resident (the submission limits are per resident)."""
    resident: Actor = await factory.resident()
    return await submit(client, resident, world, **body)


async def insert_case(db: Database, place: World, **fields: Any) -> int:
    """A case row written straight to the database (setup for the larger sets)."""
    fields.setdefault("category_id", place.cat())
    fields.setdefault("region_id", place.d.community_a.id)
    fields.setdefault("submitter_id", place.resident.id)
    fields.setdefault("owner_id", place.resident.id)
    created: datetime = fields.setdefault("created_at", utcnow())
    async with db.transaction() as session:
        case = Case(**fields)
        session.add(case)
        await session.flush()
        case.number = f"{created:%Y%m%d}-{case.id:04d}"
        await session.flush()
        assert case.id is not None
        return case.id


async def hotspot_of(client: httpx.AsyncClient, actor: Actor, case_id: int) -> dict[str, Any]:
    listing = await client.get(
        "/hotspots", params={"min_cases": 1, "limit": 100}, headers=actor.headers
    )
    assert listing.status_code == 200, listing.text
    for item in listing.json()["items"]:
        detail = (await client.get(f"/hotspots/{item['id']}", headers=actor.headers)).json()
        if case_id in [c["id"] for c in detail["cases"]]:
            return detail  # type: ignore[no-any-return]
    raise AssertionError(f"case {case_id} is in no hotspot")
