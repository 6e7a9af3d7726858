"""Round-trip budgets of the hot paths: how many SQL statements one request sends.

Every write the mini-program and the console make most (claim, release, fulfil and confirm of
a wish; case submission, assign, reply, rate, resolve; check-in) sends at most
`WRITE_BUDGET` statements in one transaction; every read they make most (case list and detail,
wish wall, nearest stations, my messages, check-in list) at most `READ_BUDGET` per page. The
answers are built from what those statements returned. A regression fails here: a count is
deterministic where a time is not (scripts/bench_hot_paths.py measures the time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.cases.models import CaseCategory
from app.cases.seed import seed_case_categories
from app.core.config import Settings
from app.core.db import Database
from app.org.models import Station
from app.wishes.models import WishStatus
from tests.attachments.images import upload_id
from tests.conftest import database_url_for_tests
from tests.factories import Actor, District, Factory
from tests.presence.helpers import printed, scan
from tests.statements import Tally, counting
from tests.wishes.conftest import make_wish

WRITE_BUDGET = 4
READ_BUDGET = 2

# The paths not yet within budget, with the most statements they may send today, on SQLite
# and on PostgreSQL: a ceiling that only ever comes down (a regression above it fails), until
# each reaches its budget. SQLite sends one statement more per batch of notifications: it
# has no data-modifying CTE to write the outbox rows and their inbox copies at once.
# Every write that integrators hear of also sends one look-up of the webhook endpoints
# (app.integrations.webhooks.publish), once per step whatever the number of its events.
CEILINGS: dict[str, tuple[int, int]] = {
    "claim": (9, 8),
    "release": (7, 6),
    "fulfil": (10, 9),
    "confirm": (8, 7),
    "case submission": (9, 8),
    "assign": (13, 11),
    "reply": (6, 5),
    "rate": (6, 5),
    "resolve": (6, 5),
}
# Submission reads the caller's openid and idempotency key in a transaction of its own, closed
# before WeChat's content check, then writes in a second one.
TRANSACTION_CEILINGS: dict[str, int] = {"case submission": 2}


@dataclass
class World:
    d: District
    station: Station
    category_id: int
    resident: Actor
    deputy: Actor
    other_deputy: Actor
    staff: Actor
    handler: Actor
    unit_id: int


@pytest.fixture
async def world(factory: Factory, db: Database) -> World:
    d = await factory.district()
    station = await factory.station(d.community_a, name="甲社区联络站")
    async with db.transaction() as session:
        await seed_case_categories(session)
        category = (await session.execute(select(CaseCategory).limit(1))).scalar_one()
    unit = await factory.unit("区城市管理局", d.district)
    deputy = await factory.deputy(d.district, station, name="王芳")
    assert category.id is not None and unit.id is not None
    return World(
        d=d,
        station=station,
        category_id=category.id,
        resident=await factory.resident(phone="13800001111"),
        deputy=await factory.deputy_actor(deputy),
        other_deputy=await factory.deputy_actor(await factory.deputy(d.district, station)),
        staff=await factory.staff(d.district),
        handler=await factory.unit_handler(unit),
        unit_id=unit.id,
    )


def case_body(world: World, **extra: Any) -> dict[str, Any]:
    return {
        "title": "翠苑一区东门路灯不亮",
        "content": "小区东门路灯坏了一个多月，晚上老人出行很不方便，希望尽快修复。",
        "category_id": world.category_id,
        "station_id": world.station.id,
        "latitude": 31.2305,
        "longitude": 121.4738,
        "address": "翠苑一区东门",
        **extra,
    }


async def measured(db: Database, call: Any, expect: int = 200) -> tuple[httpx.Response, Tally]:
    with counting(db) as tally:
        response = await call
    assert response.status_code == expect, response.text
    return response, tally


def within(tally: Tally, path: str, budget: int = WRITE_BUDGET) -> None:
    """At most the path's budget (or today's ceiling) of statements, in one transaction."""
    on_sqlite = database_url_for_tests().startswith("sqlite")
    limit = CEILINGS[path][0 if on_sqlite else 1] if path in CEILINGS else budget
    assert tally.round_trips <= limit, f"{path}: {tally.describe()}"
    assert tally.transactions <= TRANSACTION_CEILINGS.get(path, 1), f"{path}: {tally.describe()}"


async def test_wish_claim_release_fulfil_confirm(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database
) -> None:
    wish = await make_wish(factory, world.resident, world.station)
    claim, tally = await measured(
        db, client.post(f"/wishes/{wish.id}/claim", headers=world.deputy.headers)
    )
    assert claim.json()["status"] == "claimed"
    within(tally, "claim")

    release, tally = await measured(
        db,
        client.post(
            f"/wishes/{wish.id}/release", json={"reason": "临时出差"}, headers=world.deputy.headers
        ),
    )
    assert release.json()["status"] == "published"
    within(tally, "release")

    await client.post(f"/wishes/{wish.id}/claim", headers=world.deputy.headers)
    photo = await upload_id(client, world.deputy)
    fulfil, tally = await measured(
        db,
        client.post(
            f"/wishes/{wish.id}/fulfil",
            headers=world.deputy.headers,
            json={"note": "已送达", "attachment_ids": [photo]},
        ),
    )
    assert fulfil.json()["status"] == "fulfilled"
    within(tally, "fulfil")

    confirm, tally = await measured(
        db,
        client.post(
            f"/wishes/{wish.id}/confirm",
            headers=world.resident.headers,
            json={"thanks": "谢谢", "rating": 5},
        ),
    )
    assert confirm.json()["status"] == "completed"
    within(tally, "confirm")


async def test_lost_claim_stays_within_budget(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database
) -> None:
    wish = await make_wish(
        factory, world.resident, world.station, status=WishStatus.claimed, claimer=world.deputy
    )
    _, tally = await measured(
        db,
        client.post(f"/wishes/{wish.id}/claim", headers=world.other_deputy.headers),
        expect=409,
    )
    within(tally, "claim")


async def test_case_workflow(client: httpx.AsyncClient, world: World, db: Database) -> None:
    # The first submission of the process fetches WeChat's access token; the next ones reuse it.
    await client.post("/cases", json=case_body(world), headers=world.resident.headers)
    submitted, tally = await measured(
        db, client.post("/cases", json=case_body(world), headers=world.resident.headers), 201
    )
    within(tally, "case submission")
    case = submitted.json()

    assigned, tally = await measured(
        db,
        client.post(
            f"/cases/{case['id']}/assign",
            json={"unit_id": world.unit_id, "version": case["version"]},
            headers=world.staff.headers,
        ),
    )
    assert assigned.json()["status"] == "handling"
    within(tally, "assign")

    replied, tally = await measured(
        db,
        client.post(
            f"/cases/{case['id']}/reply",
            json={"public_answer": "已更换灯具，恢复照明。"},
            headers=world.handler.headers,
        ),
    )
    assert replied.json()["status"] == "fed_back"
    within(tally, "reply")

    rated, tally = await measured(
        db,
        client.post(
            f"/cases/{case['id']}/rate",
            json={"satisfaction": "satisfied"},
            headers=world.resident.headers,
        ),
    )
    assert rated.json()["status"] == "resolved"
    within(tally, "rate")


async def test_case_resolve(client: httpx.AsyncClient, world: World, db: Database) -> None:
    case = (
        await client.post("/cases", json=case_body(world), headers=world.resident.headers)
    ).json()
    await client.post(
        f"/cases/{case['id']}/assign",
        json={"unit_id": world.unit_id},
        headers=world.staff.headers,
    )
    await client.post(
        f"/cases/{case['id']}/reply",
        json={"public_answer": "已处理。"},
        headers=world.handler.headers,
    )
    resolved, tally = await measured(
        db, client.post(f"/cases/{case['id']}/resolve", json={}, headers=world.staff.headers)
    )
    assert resolved.json()["status"] == "resolved"
    within(tally, "resolve")


async def test_check_in(
    client: httpx.AsyncClient, world: World, db: Database, settings: Settings
) -> None:
    with counting(db) as tally:
        response = await scan(client, world.deputy.headers, printed(settings, world.station))
    assert response.status_code in (200, 201), response.text
    within(tally, "check-in")


async def test_reads_of_a_full_page(
    client: httpx.AsyncClient,
    world: World,
    factory: Factory,
    db: Database,
    settings: Settings,
) -> None:
    for n in range(22):
        await client.post(
            "/cases", json=case_body(world, title=f"路灯不亮{n}"), headers=world.resident.headers
        )
        await make_wish(factory, world.resident, world.station, title=f"心愿{n}")
    await scan(client, world.deputy.headers, printed(settings, world.station))
    case_id = (await client.get("/cases", headers=world.staff.headers)).json()["items"][0]["id"]

    reads = {
        "staff case list": client.get("/cases", headers=world.staff.headers),
        "resident case list": client.get("/cases", headers=world.resident.headers),
        "case detail": client.get(f"/cases/{case_id}", headers=world.staff.headers),
        "wish wall": client.get("/wishes"),
        "nearest stations": client.get("/stations", params={"lat": 31.23, "lng": 121.47}),
        "my messages": client.get("/me/messages", headers=world.resident.headers),
        "my check-ins": client.get("/checkins", headers=world.deputy.headers),
        "staff check-ins": client.get("/checkins", headers=world.staff.headers),
    }
    for name, call in reads.items():
        response, tally = await measured(db, call)
        assert response.json(), name
        within(tally, name, READ_BUDGET)
