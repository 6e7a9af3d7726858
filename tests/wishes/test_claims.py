"""Claims under concurrency: one winner per wish, and the per-deputy limit holds."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from app.core.config import Settings
from app.core.db import Database
from app.wishes.models import WishStatus
from tests.factories import Factory
from tests.wishes.conftest import World, events_of, make_wish, notifications_for, wish_row

STORM = 60


async def test_claim_storm_has_exactly_one_winner(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database
) -> None:
    wish = await make_wish(factory, world.resident, world.station)
    assert wish.id is not None
    deputies = [await factory.deputy_actor() for _ in range(STORM)]

    responses = await asyncio.gather(
        *(client.post(f"/wishes/{wish.id}/claim", headers=d.headers) for d in deputies)
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: STORM - 1}, statuses
    losers = [r.json()["code"] for r in responses if r.status_code == 409]
    assert set(losers) == {"wish_already_claimed"}
    (winner,) = [d for d, r in zip(deputies, responses, strict=True) if r.status_code == 200]
    row = await wish_row(db, wish.id)
    assert row.status == WishStatus.claimed and row.claimed_by_deputy_id == winner.deputy_id
    assert row.claimed_by_user_id == winner.id and row.version == wish.version + 1
    events = await events_of(db, wish.id)
    assert [(e.action, e.actor_id) for e in events] == [("claim", winner.id)]
    news = await notifications_for(db, world.resident.id)
    assert [n.event for n in news] == ["wish.claimed"]


async def test_claiming_a_claimed_wish_again_is_409(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    wish = await make_wish(factory, world.resident, world.station)
    first = await client.post(f"/wishes/{wish.id}/claim", headers=world.deputy.headers)
    assert first.status_code == 200
    for deputy in (world.other_deputy, world.deputy):
        again = await client.post(f"/wishes/{wish.id}/claim", headers=deputy.headers)
        assert again.status_code == 409 and again.json()["code"] == "wish_already_claimed"
        assert again.json()["detail"] == "该心愿已被其他代表认领"


async def test_open_claims_are_limited_per_deputy(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database, settings: Settings
) -> None:
    limit = settings.wish_max_open_claims
    wishes = [await make_wish(factory, world.resident, world.station) for _ in range(limit + 1)]
    for wish in wishes[:limit]:
        ok = await client.post(f"/wishes/{wish.id}/claim", headers=world.deputy.headers)
        assert ok.status_code == 200
    over = await client.post(f"/wishes/{wishes[-1].id}/claim", headers=world.deputy.headers)
    assert over.status_code == 409 and over.json()["code"] == "claim_limit_reached"
    assert over.json()["limit"] == limit
    assert (await wish_row(db, wishes[-1].id or 0)).status == WishStatus.published
    # Another deputy is not affected.
    other = await client.post(f"/wishes/{wishes[-1].id}/claim", headers=world.other_deputy.headers)
    assert other.status_code == 200

    # A fulfilled claim no longer counts; a released one neither.
    more = [await make_wish(factory, world.resident, world.station) for _ in range(2)]
    done = await client.post(
        f"/wishes/{wishes[0].id}/fulfil", headers=world.deputy.headers, json={"note": "已送达"}
    )
    assert done.status_code == 200
    assert (
        await client.post(f"/wishes/{more[0].id}/claim", headers=world.deputy.headers)
    ).status_code == 200
    refused = await client.post(f"/wishes/{more[1].id}/claim", headers=world.deputy.headers)
    assert refused.json()["code"] == "claim_limit_reached"
    released = await client.post(
        f"/wishes/{wishes[1].id}/release", headers=world.deputy.headers, json={"reason": "出差"}
    )
    assert released.status_code == 200
    assert (
        await client.post(f"/wishes/{more[1].id}/claim", headers=world.deputy.headers)
    ).status_code == 200


async def test_claim_limit_holds_under_concurrent_claims_by_one_deputy(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database, settings: Settings
) -> None:
    limit = settings.wish_max_open_claims
    wishes = [await make_wish(factory, world.resident, world.station) for _ in range(limit + 5)]

    responses = await asyncio.gather(
        *(client.post(f"/wishes/{w.id}/claim", headers=world.deputy.headers) for w in wishes)
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: limit, 409: 5}, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"claim_limit_reached"}
    mine = await client.get("/wishes?mine=true&status=claimed", headers=world.deputy.headers)
    assert mine.json()["total"] == limit


async def test_an_inactive_deputy_cannot_claim(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database
) -> None:
    retired = await factory.deputy_actor(await factory.deputy(is_active=False))
    wish = await make_wish(factory, world.resident, world.station)
    response = await client.post(f"/wishes/{wish.id}/claim", headers=retired.headers)
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert (await wish_row(db, wish.id or 0)).status == WishStatus.published
