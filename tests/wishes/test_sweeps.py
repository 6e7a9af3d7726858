"""The worker's sweeps: expiry of unclaimed wishes and auto-completion of fulfilled ones."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from app.core.clock import clock, utcnow
from app.core.config import Settings
from app.core.db import Database
from app.wishes.models import WishStatus
from app.wishes.service import (
    auto_complete_due_wishes,
    auto_complete_fulfilled_wishes,
    expire_due_wishes,
    expire_unclaimed_wishes,
)
from tests.factories import Actor, Factory
from tests.wishes.conftest import World, events_of, make_wish, notifications_for

S = WishStatus


def fresh(factory: Factory, actor: Actor) -> dict[str, str]:
    """Headers with a token minted at the (advanced) service clock."""
    return {"Authorization": f"Bearer {factory.token_for(actor.user)}"}


async def test_unclaimed_wishes_expire_after_the_set_days(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database, settings: Settings
) -> None:
    clock.freeze(utcnow())
    days = settings.wish_expire_days
    stale = await make_wish(factory, world.resident, world.station)
    pending = await make_wish(factory, world.resident, world.station, status=S.pending_review)
    claimed = await make_wish(
        factory, world.resident, world.station, status=S.claimed, claimer=world.deputy
    )
    clock.advance(timedelta(days=2))
    recent = await make_wish(factory, world.resident, world.station)

    clock.advance(timedelta(days=days - 2) - timedelta(seconds=1))
    assert await expire_unclaimed_wishes(db, settings) == 0
    clock.advance(timedelta(seconds=1))
    assert await expire_unclaimed_wishes(db, settings) == 1
    assert await expire_unclaimed_wishes(db, settings) == 0  # idempotent

    headers = fresh(factory, world.resident)
    mine = (await client.get("/wishes?mine=true", headers=headers)).json()["items"]
    assert {w["id"]: w["status"] for w in mine} == {
        stale.id: "expired",
        pending.id: "pending_review",
        claimed.id: "claimed",
        recent.id: "published",
    }
    wall = (await client.get("/wishes")).json()
    assert [w["id"] for w in wall["items"]] == [recent.id]
    assert (await client.get(f"/wishes/{stale.id}")).status_code == 404
    detail = (await client.get(f"/wishes/{stale.id}", headers=headers)).json()
    (event,) = detail["timeline"]
    assert (event["action"], event["actor_id"], event["actor_role"]) == ("expire", None, "system")
    news = await notifications_for(db, world.resident.id)
    assert [(n.event, n.params["wish_id"]) for n in news] == [("wish.expired", stale.id)]

    # The resident can no longer withdraw it, and no deputy can claim it.
    refused = await client.post(f"/wishes/{stale.id}/withdraw", headers=headers, json={})
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_transition"
    late = await client.post(f"/wishes/{stale.id}/claim", headers=fresh(factory, world.deputy))
    assert late.status_code == 409 and late.json()["code"] == "invalid_transition"


async def test_a_released_wish_gets_a_new_expiry_period(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database, settings: Settings
) -> None:
    clock.freeze(utcnow())
    days = settings.wish_expire_days
    wish = await make_wish(
        factory, world.resident, world.station, status=S.claimed, claimer=world.deputy
    )
    clock.advance(timedelta(days=days - 1))
    released = await client.post(
        f"/wishes/{wish.id}/release", headers=fresh(factory, world.deputy), json={"reason": "出差"}
    )
    assert released.status_code == 200
    clock.advance(timedelta(days=2))
    assert await expire_unclaimed_wishes(db, settings) == 0
    clock.advance(timedelta(days=days))
    assert await expire_unclaimed_wishes(db, settings) == 1
    assert (await client.get(f"/wishes/{wish.id}", headers=fresh(factory, world.resident))).json()[
        "status"
    ] == "expired"


async def test_fulfilled_wishes_complete_on_their_own(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database, settings: Settings
) -> None:
    clock.freeze(utcnow())
    days = settings.wish_auto_complete_days
    old = await make_wish(
        factory, world.resident, world.station, status=S.fulfilled, claimer=world.deputy
    )
    clock.advance(timedelta(days=1))
    newer = await make_wish(
        factory, world.resident, world.station, status=S.fulfilled, claimer=world.deputy
    )
    clock.advance(timedelta(days=days - 1))

    assert await auto_complete_fulfilled_wishes(db, settings) == 1
    assert await auto_complete_fulfilled_wishes(db, settings) == 0

    headers = fresh(factory, world.resident)
    done = (await client.get(f"/wishes/{old.id}", headers=headers)).json()
    assert done["status"] == "completed" and done["completed_at"] is not None
    assert done["rating"] is None
    assert [(e["action"], e["actor_role"]) for e in done["timeline"]] == [
        ("auto_complete", "system")
    ]
    assert (await client.get(f"/wishes/{newer.id}", headers=headers)).json()[
        "status"
    ] == "fulfilled"
    # Both sides hear of it.
    for user in (world.resident, world.deputy):
        assert [n.event for n in await notifications_for(db, user.id)] == ["wish.completed"]

    # Confirming after the sweep completed it is refused; the one still open can be confirmed.
    late = await client.post(f"/wishes/{old.id}/confirm", headers=headers, json={"rating": 5})
    assert late.status_code == 409 and late.json()["code"] == "invalid_transition"
    ok = await client.post(f"/wishes/{newer.id}/confirm", headers=headers, json={"rating": 5})
    assert ok.status_code == 200
    clock.advance(timedelta(days=30))
    assert await auto_complete_fulfilled_wishes(db, settings) == 0


async def test_concurrent_sweeps_apply_each_step_once(
    world: World, factory: Factory, db: Database, settings: Settings
) -> None:
    clock.freeze(utcnow())
    published = [await make_wish(factory, world.resident, world.station) for _ in range(12)]
    fulfilled = [
        await make_wish(
            factory, world.resident, world.station, status=S.fulfilled, claimer=world.deputy
        )
        for _ in range(12)
    ]
    clock.advance(
        timedelta(days=max(settings.wish_expire_days, settings.wish_auto_complete_days) + 1)
    )

    expired = await asyncio.gather(
        *(expire_unclaimed_wishes(db, settings, batch_size=5) for _ in range(4))
    )
    completed = await asyncio.gather(
        *(auto_complete_fulfilled_wishes(db, settings, batch_size=5) for _ in range(4))
    )

    assert sum(expired) == 12 and sum(completed) == 12
    for wish in published + fulfilled:
        assert len(await events_of(db, wish.id or 0)) == 1
    assert len(await notifications_for(db, world.resident.id)) == 24
    assert len(await notifications_for(db, world.deputy.id)) == 12


async def test_worker_signature_sweeps_run_one_batch_in_the_given_transaction(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database, settings: Settings
) -> None:
    clock.freeze(utcnow())
    published = [await make_wish(factory, world.resident, world.station) for _ in range(3)]
    fulfilled = await make_wish(
        factory, world.resident, world.station, status=S.fulfilled, claimer=world.deputy
    )
    clock.advance(timedelta(days=settings.wish_expire_days))
    async with db.transaction() as session:
        assert await expire_due_wishes(session, utcnow(), settings, limit=2) == 2
        assert await auto_complete_due_wishes(session, utcnow(), settings) == 1
    async with db.transaction() as session:
        assert await expire_due_wishes(session, utcnow(), settings) == 1
        assert await expire_due_wishes(session, utcnow(), settings) == 0
    headers = fresh(factory, world.resident)
    statuses = [
        (await client.get(f"/wishes/{w.id}", headers=headers)).json()["status"]
        for w in [*published, fulfilled]
    ]
    assert statuses == ["expired", "expired", "expired", "completed"]
