"""The case list's total: exact near the page asked for, capped beyond it."""

from __future__ import annotations

import httpx
from sqlalchemy import insert

from app.cases.models import Case
from app.core.clock import utcnow
from app.core.db import Database
from app.core.pagination import COUNT_LOOKAHEAD
from tests.cases.conftest import World


async def _many_cases(db: Database, world: World, n: int) -> None:
    now = utcnow()
    rows = [
        {
            "number": f"BULK-{i}",
            "title": f"路灯不亮{i}",
            "content": "小区东门路灯坏了。",
            "category_id": world.cat(),
            "region_id": world.d.community_a.id,
            "submitter_id": world.resident.id,
            "owner_id": world.resident.id,
            "attachment_ids": [],
            "status": "registered",
            "channel": "miniprogram",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]
    async with db.transaction() as session:
        await session.execute(insert(Case), rows)


async def test_total_is_capped_past_the_lookahead(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    many = COUNT_LOOKAHEAD + 30
    await _many_cases(db, world, many)

    first = (await client.get("/cases", headers=world.staff.headers)).json()
    assert len(first["items"]) == 20
    assert first["total"] == 20 + COUNT_LOOKAHEAD and first["total_capped"] is True
    assert [c["id"] for c in first["items"]] == sorted(
        (c["id"] for c in first["items"]), reverse=True
    )

    # Near the end the count reaches every row: exact again.
    late = await client.get(
        "/cases", params={"offset": 1000, "limit": 20}, headers=world.staff.headers
    )
    assert late.json()["total"] == many and late.json()["total_capped"] is False

    # The resident owns them all; staff of the other street see none.
    mine = (await client.get("/cases", params={"limit": 10}, headers=world.resident.headers)).json()
    assert mine["total"] == 10 + COUNT_LOOKAHEAD and mine["total_capped"] is True
    other = (await client.get("/cases", headers=world.staff_b.headers)).json()
    assert other == {"items": [], "total": 0, "total_capped": False}
