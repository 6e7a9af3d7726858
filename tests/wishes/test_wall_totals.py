"""The wall's total: exact near the page asked for, capped beyond it."""

from __future__ import annotations

import httpx
from sqlalchemy import insert

from app.core.clock import utcnow
from app.core.db import Database
from app.core.pagination import COUNT_LOOKAHEAD
from app.wishes.models import Wish
from tests.wishes.conftest import World


async def test_wall_total_is_capped_past_the_lookahead(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    many = COUNT_LOOKAHEAD + 30
    now = utcnow()
    rows = [
        {
            "resident_id": world.resident.id,
            "title": f"心愿{i}",
            "content": "想要一个新书包。",
            "beneficiary_name": "王小明",
            "region_id": world.station.region_id,
            "station_id": world.station.id,
            "status": "published",
            "content_check": "passed",
            "published_at": now,
            "created_at": now,
        }
        for i in range(many)
    ]
    async with db.transaction() as session:
        await session.execute(insert(Wish), rows)

    first = (await client.get("/wishes")).json()
    assert len(first["items"]) == 20
    assert first["total"] == 20 + COUNT_LOOKAHEAD and first["total_capped"] is True

    late = (await client.get("/wishes", params={"offset": 1000, "limit": 20})).json()
    assert late["total"] == many and late["total_capped"] is False
    assert len(late["items"]) == 20

    past = (await client.get("/wishes", params={"offset": 2000, "limit": 20})).json()
    assert past == {"items": [], "total": many, "total_capped": False}
