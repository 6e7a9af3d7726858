"""Duty rosters: staff set them, everyone reads them, check-ins count as attendance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from app.core.clock import clock
from app.core.config import Settings
from app.core.db import Database
from app.presence.models import DutyAssignment, DutySlot
from app.presence.service import on_duty_now, upcoming_slots_for_deputy
from tests.presence.conftest import World
from tests.presence.helpers import printed, scan

# 2026-03-02 08:00 in Shanghai.
MONDAY_8AM = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def roster(world: World, **extra: Any) -> dict[str, Any]:
    body = {
        "from": "2026-03-02",
        "to": "2026-03-08",
        "slots": [
            {
                "date": "2026-03-02",
                "start_time": "09:00",
                "end_time": "11:30",
                "deputy_ids": [world.deputy.deputy_id, world.colleague.deputy_id],
                "note": "接待日",
            },
            {
                "date": "2026-03-04",
                "start_time": "14:00",
                "end_time": "17:00",
                "deputy_ids": [world.colleague.deputy_id],
            },
        ],
    }
    body.update(extra)
    return body


async def counts(db: Database) -> tuple[int, int]:
    async with db.transaction(write=False) as session:
        slots = (await session.execute(select(func.count()).select_from(DutySlot))).scalar_one()
        assignments = (
            await session.execute(select(func.count()).select_from(DutyAssignment))
        ).scalar_one()
    return int(slots), int(assignments)


async def test_staff_sets_roster_and_public_reads_it(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    url = f"/stations/{world.station.id}/duty-roster"
    response = await client.put(url, json=roster(world), headers=world.staff_a.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["from"] == "2026-03-02" and body["to"] == "2026-03-08"
    first = body["slots"][0]
    assert first["date"] == "2026-03-02" and first["start_time"] == "09:00:00"
    assert first["end_time"] == "11:30:00" and first["note"] == "接待日"
    assert datetime.fromisoformat(first["starts_at"]) == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert datetime.fromisoformat(first["ends_at"]) == datetime(2026, 3, 2, 3, 30, tzinfo=UTC)
    assert [d["name"] for d in first["deputies"]] == ["王芳", "李明"]
    assert set(first["deputies"][0]) == {"id", "name", "level", "title", "photo_url"}

    public = await client.get(f"{url}?from=2026-03-01&to=2026-03-10")
    assert public.status_code == 200
    assert [s["date"] for s in public.json()["slots"]] == ["2026-03-02", "2026-03-04"]
    narrow = await client.get(f"{url}?from=2026-03-03&to=2026-03-04")
    assert [s["date"] for s in narrow.json()["slots"]] == ["2026-03-04"]
    clock.freeze(MONDAY_8AM)
    default = await client.get(url)  # today and the six days after
    assert default.json()["from"] == "2026-03-02" and default.json()["to"] == "2026-03-08"
    assert len(default.json()["slots"]) == 2
    assert await counts(db) == (2, 3)


async def test_put_replaces_the_range_and_keeps_unchanged_slots(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    url = f"/stations/{world.station.id}/duty-roster"
    first = (await client.put(url, json=roster(world), headers=world.staff_a.headers)).json()
    kept_id = first["slots"][0]["id"]
    changed = roster(world)
    changed["slots"] = [
        {**changed["slots"][0], "deputy_ids": [world.outsider.deputy_id]},
        {"date": "2026-03-05", "start_time": "09:00", "end_time": "10:00", "deputy_ids": []},
    ]
    second = await client.put(url, json=changed, headers=world.staff_a.headers)
    assert second.status_code == 200
    slots = second.json()["slots"]
    assert [s["date"] for s in slots] == ["2026-03-02", "2026-03-05"]
    assert slots[0]["id"] == kept_id
    assert [d["name"] for d in slots[0]["deputies"]] == ["赵强"]
    assert await counts(db) == (2, 1)
    # Dates outside the range are untouched; an empty slot list clears the range.
    cleared = await client.put(
        url,
        json={"from": "2026-03-05", "to": "2026-03-05", "slots": []},
        headers=world.staff_a.headers,
    )
    assert cleared.status_code == 200 and cleared.json()["slots"] == []
    assert await counts(db) == (1, 1)


async def test_roster_access(client: httpx.AsyncClient, db: Database, world: World) -> None:
    url = f"/stations/{world.station.id}/duty-roster"
    for actor in (world.staff_b, world.deputy, world.resident, world.unit):
        response = await client.put(url, json=roster(world), headers=actor.headers)
        assert response.status_code == 403, actor
    assert (await client.put(url, json=roster(world))).status_code == 401
    assert (
        await client.put(
            "/stations/999999/duty-roster", json=roster(world), headers=world.admin.headers
        )
    ).status_code == 404
    assert (await client.get("/stations/999999/duty-roster")).status_code == 404
    assert await counts(db) == (0, 0)
    for actor in (world.district_staff, world.admin):
        assert (await client.put(url, json=roster(world), headers=actor.headers)).status_code == 200


async def test_bad_rosters_change_nothing(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    url = f"/stations/{world.station.id}/duty-roster"
    assert (
        await client.put(url, json=roster(world), headers=world.staff_a.headers)
    ).status_code == 200
    before = (await client.get(f"{url}?from=2026-03-02&to=2026-03-08")).json()
    slot = roster(world)["slots"][0]
    bad_bodies = [
        roster(world, slots=[{**slot, "end_time": "08:00"}]),
        roster(world, slots=[{**slot, "date": "2026-03-20"}]),
        roster(world, slots=[{**slot, "deputy_ids": [999999]}]),
        roster(world, slots=[{**slot, "deputy_ids": [world.deputy.deputy_id] * 2}]),
        roster(world, slots=[slot, slot]),
        roster(world, **{"from": "2026-03-09", "to": "2026-03-02"}),
        roster(world, **{"from": "2026-01-01", "to": "2026-06-01"}),
        roster(world, slots=[{**slot, "start_time": "25:00"}]),
    ]
    for body in bad_bodies:
        response = await client.put(url, json=body, headers=world.staff_a.headers)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
    assert (await client.get(f"{url}?from=2026-03-02&to=2026-03-08")).json() == before
    assert (await client.get(f"{url}?from=2026-03-09&to=2026-03-02")).status_code == 422


async def test_check_in_inside_a_slot_counts_as_duty(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    url = f"/stations/{world.station.id}/duty-roster"
    slots = (await client.put(url, json=roster(world), headers=world.staff_a.headers)).json()[
        "slots"
    ]
    monday = slots[0]["id"]
    scene = printed(settings, world.station)
    # 08:40, within the early allowance of the 09:00 slot.
    clock.freeze(MONDAY_8AM + timedelta(minutes=40))
    deputy = (await scan(client, world.deputy.headers, scene)).json()
    assert deputy["duty_slot_id"] == monday and deputy["on_duty"] is True
    # Not on that slot's list: no attendance.
    outsider = (await scan(client, world.outsider.headers, scene)).json()
    assert outsider["duty_slot_id"] is None and outsider["on_duty"] is False
    # On the list, but at another station: no attendance.
    clock.freeze(MONDAY_8AM + timedelta(hours=2))
    elsewhere = (
        await scan(client, world.colleague.headers, printed(settings, world.other_station))
    ).json()
    assert elsewhere["duty_slot_id"] is None
    # After the slot ended: no attendance.
    clock.freeze(MONDAY_8AM + timedelta(hours=3, minutes=31))
    late = (await scan(client, world.colleague.headers, scene)).json()
    assert late["action"] == "checked_in" and late["duty_slot_id"] is None
    # Too early (more than 30 minutes before): none either.
    clock.freeze(datetime(2026, 3, 4, 5, 20, tzinfo=UTC))  # 13:20 local, slot at 14:00
    early = (await scan(client, world.colleague.headers, scene)).json()
    assert early["duty_slot_id"] is None
    clock.freeze(datetime(2026, 3, 4, 6, 5, tzinfo=UTC))  # 14:05 local, in the slot
    scene_far = printed(settings, world.other_station)
    await scan(client, world.colleague.headers, scene_far)  # move away, then back
    on_time = (await scan(client, world.colleague.headers, scene)).json()
    assert on_time["duty_slot_id"] == slots[1]["id"]


async def test_on_duty_now_and_upcoming_slots(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    url = f"/stations/{world.station.id}/duty-roster"
    slots = (await client.put(url, json=roster(world), headers=world.staff_a.headers)).json()[
        "slots"
    ]
    assert world.station.id is not None and world.colleague.deputy_id is not None
    async with db.transaction(write=False) as session:
        now = MONDAY_8AM + timedelta(hours=1, minutes=30)  # 09:30 local
        on_duty = await on_duty_now(session, world.station.id, now)
        assert [s.id for s in on_duty] == [slots[0]["id"]]
        assert [d.name for d in on_duty[0].deputies] == ["王芳", "李明"]
        assert await on_duty_now(session, world.station.id, MONDAY_8AM) == []
        assert await on_duty_now(session, world.other_station.id, now) == []
        upcoming = await upcoming_slots_for_deputy(session, world.colleague.deputy_id, 7, now)
        assert [(s.id, s.station_name) for s in upcoming] == [
            (slots[0]["id"], "甲社区联络站"),
            (slots[1]["id"], "甲社区联络站"),
        ]
        later = await upcoming_slots_for_deputy(
            session, world.colleague.deputy_id, 1, MONDAY_8AM + timedelta(hours=4)
        )
        assert later == []
        assert (
            await upcoming_slots_for_deputy(
                session, world.colleague.deputy_id, 3, MONDAY_8AM + timedelta(hours=4)
            )
        )[0].id == slots[1]["id"]
