"""Cases raised at an activity link to it."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select

from app.cases.models import CaseCategory
from app.cases.seed import seed_case_categories
from app.core.clock import clock
from app.core.db import Database
from tests.activities.conftest import T0, World, create, plan


async def test_a_case_raised_at_an_activity_names_it(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    async with db.transaction() as session:
        await seed_case_categories(session)
        category = (await session.execute(select(CaseCategory.id).limit(1))).scalar_one()
    clock.freeze(T0)
    activity = await create(client, world.staff_a, plan(world, is_public=True))
    body = {
        "title": "电梯加装进度慢",
        "content": "视察中居民反映加装电梯审批进度慢，希望加快。",
        "category_id": category,
        "station_id": world.station.id,
        "activity_id": activity["id"],
    }
    early = await client.post("/cases", json=body, headers=world.member.headers)
    assert early.status_code == 409 and early.json()["code"] == "activity_not_held"
    clock.freeze(T0 + timedelta(days=1, hours=1))
    made = await client.post("/cases", json=body, headers=world.member.headers)
    assert made.status_code == 201, made.text
    assert made.json()["activity_id"] == activity["id"]
    detail = await client.get(f"/activities/{activity['id']}", headers=world.staff_a.headers)
    assert detail.json()["case_ids"] == [made.json()["id"]]
    assert (await client.get(f"/activities/{activity['id']}")).json()["case_ids"] is None
    hidden = await create(client, world.staff_a, plan(world, title="内部活动", invite={}))
    refused = await client.post(
        "/cases", json={**body, "activity_id": hidden["id"]}, headers=world.resident.headers
    )
    assert refused.status_code == 422 and refused.json()["code"] == "unknown_activity"
