"""Residents sign up for public activities: the capacity holds under a storm; reminders."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import httpx
from openpyxl import load_workbook
from sqlalchemy import func, select

from app.activities.models import ActivitySignup
from app.activities.service import send_due_reminders
from app.core.clock import clock
from app.core.config import Settings
from app.core.db import Database
from app.notify.models import Notification
from tests.activities.conftest import T0, World, create, plan, public_plan
from tests.attachments.images import png, upload_id
from tests.factories import Factory

START = T0 + timedelta(days=1, minutes=30)


async def _signups(db: Database) -> int:
    async with db.transaction(write=False) as session:
        return int(
            (await session.execute(select(func.count()).select_from(ActivitySignup))).scalar_one()
        )


async def _events(db: Database, event: str) -> list[int]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            select(Notification.recipient_id).where(Notification.event == event)
        )
        return sorted(rows.scalars())


async def test_exactly_capacity_sign_ups_succeed_under_a_storm(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory
) -> None:
    clock.freeze(T0)
    activity = await create(client, world.staff_a, public_plan(world, capacity=10))
    residents = [await factory.resident() for _ in range(50)]
    responses = await asyncio.gather(
        *(
            client.post(f"/activities/{activity['id']}/signups", headers=r.headers)
            for r in residents
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 10 + [409] * 40, [r.text for r in responses if r.status_code >= 500]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"activity_full"}
    assert await _signups(db) == 10
    detail = await client.get(f"/activities/{activity['id']}")
    assert detail.json()["signed_up"] == 10


async def test_sign_up_once_cancel_before_the_deadline(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    clock.freeze(T0)
    activity = await create(client, world.staff_a, public_plan(world, capacity=2))
    url = f"/activities/{activity['id']}/signups"
    first = await client.post(url, headers=world.resident.headers)
    assert first.status_code == 201 and first.json()["signed_up"] == 1
    twice = await client.post(url, headers=world.resident.headers)
    assert twice.status_code == 409 and twice.json()["code"] == "already_signed_up"
    mine = await client.get("/activities", params={"mine": True}, headers=world.resident.headers)
    assert [a["id"] for a in mine.json()["items"]] == [activity["id"]]
    assert (
        await client.get(f"/activities/{activity['id']}", headers=world.resident.headers)
    ).json()["signed_up_by_me"] is True
    # Capacity cannot go below what is taken.
    lower = await client.patch(
        f"/activities/{activity['id']}", json={"capacity": 1}, headers=world.staff_a.headers
    )
    assert lower.status_code == 200
    assert (await client.delete(f"{url}/me", headers=world.resident.headers)).status_code == 204
    assert (await client.delete(f"{url}/me", headers=world.resident.headers)).status_code == 404
    assert (await client.get(f"/activities/{activity['id']}")).json()["signed_up"] == 0
    assert (await client.post(url, headers=world.resident.headers)).status_code == 201
    # After the deadline neither signing up nor cancelling.
    clock.freeze(T0 + timedelta(hours=12))
    closed = await client.delete(f"{url}/me", headers=world.resident.headers)
    assert closed.status_code == 422 and closed.json()["code"] == "signup_closed"
    assert await _signups(db) == 1


async def test_capacity_below_the_sign_ups_is_refused(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    clock.freeze(T0)
    activity = await create(client, world.staff_a, public_plan(world, capacity=5))
    for _ in range(3):
        resident = await factory.resident()
        await client.post(f"/activities/{activity['id']}/signups", headers=resident.headers)
    refused = await client.patch(
        f"/activities/{activity['id']}", json={"capacity": 2}, headers=world.staff_a.headers
    )
    assert refused.status_code == 409 and refused.json()["code"] == "capacity_below_signups"
    assert (await client.get(f"/activities/{activity['id']}")).json()["capacity"] == 5


async def test_who_may_sign_up(client: httpx.AsyncClient, world: World, db: Database) -> None:
    clock.freeze(T0)
    internal = await create(client, world.staff_a, plan(world))
    open_ = await create(client, world.staff_a, plan(world, is_public=True))
    hidden = await client.post(
        f"/activities/{internal['id']}/signups", headers=world.resident.headers
    )
    assert hidden.status_code == 404
    no_signups = await client.post(
        f"/activities/{open_['id']}/signups", headers=world.resident.headers
    )
    assert no_signups.status_code == 422 and no_signups.json()["code"] == "signup_closed"
    public = await create(client, world.staff_a, public_plan(world))
    for actor in (world.member, world.staff_a):
        response = await client.post(f"/activities/{public['id']}/signups", headers=actor.headers)
        assert response.status_code == 403
    assert (await client.post(f"/activities/{public['id']}/signups")).status_code == 401
    assert (
        await client.post("/activities/999999/signups", headers=world.resident.headers)
    ).status_code == 404
    for actor in (world.member, world.staff_a):
        cancel = await client.delete(
            f"/activities/{public['id']}/signups/me", headers=actor.headers
        )
        assert cancel.status_code == 403
    assert await _signups(db) == 0


async def test_the_day_before_the_signed_up_and_the_attending_are_reminded_once(
    client: httpx.AsyncClient, world: World, db: Database, settings: Settings
) -> None:
    clock.freeze(T0 - timedelta(days=2))
    activity = await create(client, world.staff_a, public_plan(world))
    await client.post(f"/activities/{activity['id']}/signups", headers=world.resident.headers)
    await client.post(
        f"/activities/{activity['id']}/rsvp", json={"answer": "no"}, headers=world.leader.headers
    )
    async with db.transaction() as session:
        assert await send_due_reminders(session, clock.now(), settings) == 0
    clock.freeze(START - timedelta(hours=20))
    async with db.transaction() as session:
        assert await send_due_reminders(session, clock.now(), settings) == 2
    async with db.transaction() as session:
        assert await send_due_reminders(session, clock.now(), settings) == 0
    # The resident and the member who has not declined; not the leader who said no.
    assert await _events(db, "activity.reminder") == sorted([world.resident.id, world.member.id])


async def test_minutes_with_photos_after_the_activity(
    client: httpx.AsyncClient, world: World
) -> None:
    clock.freeze(T0)
    activity = await create(client, world.leader, plan(world))
    url = f"/activities/{activity['id']}/minutes"
    photo = await upload_id(client, world.leader, png())
    early = await client.put(url, json={"minutes": "纪要"}, headers=world.leader.headers)
    assert early.status_code == 409 and early.json()["code"] == "activity_not_held"
    clock.freeze(START + timedelta(hours=3))
    for actor in (world.member, world.staff_b, world.resident):
        refused = await client.put(url, json={"minutes": "纪要"}, headers=actor.headers)
        assert refused.status_code in (403, 404)
    someone_elses = await upload_id(client, world.member, png())
    stolen = await client.put(
        url,
        json={"minutes": "纪要", "attachment_ids": [someone_elses]},
        headers=world.leader.headers,
    )
    assert stolen.status_code == 422 and stolen.json()["code"] == "invalid_attachment"
    written = await client.put(
        url,
        json={"minutes": "8 名代表参加视察", "attachment_ids": [photo]},
        headers=world.leader.headers,
    )
    assert written.status_code == 200, written.text
    assert written.json()["minutes"] == "8 名代表参加视察"
    assert [p["id"] for p in written.json()["minutes_photos"]] == [photo]
    # Sending the same photo again keeps it; the invited member sees the minutes and photo.
    again = await client.put(
        url, json={"minutes": "修订", "attachment_ids": [photo]}, headers=world.staff_a.headers
    )
    assert again.status_code == 200 and len(again.json()["minutes_photos"]) == 1
    seen = await client.get(f"/attachments/{photo}", headers=world.member.headers)
    assert seen.status_code == 200
    assert (
        await client.get(f"/attachments/{photo}", headers=world.resident.headers)
    ).status_code in (403, 404)


async def test_the_year_plan_exports_to_xlsx(client: httpx.AsyncClient, world: World) -> None:
    clock.freeze(T0)
    await create(client, world.staff_a, plan(world, title="三月视察"))
    await create(
        client,
        world.staff_a,
        plan(
            world,
            title="明年活动",
            starts_at="2027-03-03T01:30:00Z",
            ends_at="2027-03-03T04:00:00Z",
        ),
    )
    response = await client.get(
        "/activities", params={"year": 2026, "format": "xlsx"}, headers=world.staff_a.headers
    )
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("序号", "类型", "主题")
    assert [r[2] for r in rows[1:]] == ["三月视察"]
    assert rows[1][1] == "视察" and rows[1][5] == "甲社区联络站" and rows[1][7] == 2
    for headers in (world.resident.headers, world.member.headers, {}):
        refused = await client.get("/activities", params={"format": "xlsx"}, headers=headers)
        assert refused.status_code == 403
    empty = await client.get(
        "/activities", params={"year": 2026, "format": "xlsx"}, headers=world.staff_b.headers
    )
    assert len(list(load_workbook(io.BytesIO(empty.content)).active.iter_rows())) == 1


async def test_racing_reminder_sweeps_remind_once(
    client: httpx.AsyncClient, world: World, db: Database, settings: Settings
) -> None:
    clock.freeze(T0 - timedelta(days=2))
    activity = await create(client, world.staff_a, public_plan(world))
    await client.post(f"/activities/{activity['id']}/signups", headers=world.resident.headers)
    clock.freeze(START - timedelta(hours=20))

    async def sweep() -> int:
        async with db.transaction() as session:
            return await send_due_reminders(session, clock.now(), settings)

    results = await asyncio.gather(*(sweep() for _ in range(4)))
    assert sum(results) == 3  # the resident, the leader and the member, by one sweep
    assert await _events(db, "activity.reminder") == sorted(
        [world.resident.id, world.leader.id, world.member.id]
    )
