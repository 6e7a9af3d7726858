"""Working-day deadlines in China's official calendar, the unknown-year fallback, sweeps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import chinese_calendar
import httpx

from app.cases import sweeps
from app.cases.workdays import add_workdays
from app.core.clock import SHANGHAI, clock
from app.core.config import Settings
from app.core.db import Database
from tests.cases.conftest import World, act, case_row, notifications, retoken, submit
from tests.factories import Factory


def test_calendar_data_around_national_day_2026() -> None:
    # The facts the deadline test stands on, from chinese_calendar's own data.
    assert chinese_calendar.is_workday(date(2026, 9, 30))
    assert all(chinese_calendar.is_holiday(date(2026, 10, d)) for d in range(1, 8))
    assert chinese_calendar.is_workday(date(2026, 10, 10))  # a Saturday make-up day
    assert date(2026, 10, 10).weekday() == 5


def test_add_workdays_skips_holidays_and_counts_make_up_days() -> None:
    start = datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI)
    three = add_workdays(start, 3)
    # 10-01..10-07 holiday; 10-08 (1), 10-09 (2), 10-10 Saturday make-up day (3).
    assert three.day == date(2026, 10, 10)
    assert three.at == datetime(2026, 10, 10, 23, 59, 59, tzinfo=SHANGHAI)
    assert not three.calendar_fallback
    assert add_workdays(start, 4).day == date(2026, 10, 12)  # Sunday 10-11 is a rest day
    # Late evening UTC is already the next day in Shanghai.
    late = datetime(2026, 9, 29, 17, 0, tzinfo=UTC)  # 2026-09-30 01:00 Shanghai
    assert add_workdays(late, 3).day == date(2026, 10, 10)


def test_unknown_year_falls_back_to_weekends() -> None:
    deadline = add_workdays(datetime(2031, 1, 2, 9, 0, tzinfo=SHANGHAI), 3)  # a Thursday
    assert deadline.calendar_fallback
    assert deadline.day == date(2031, 1, 7)  # Fri 3, (Sat, Sun), Mon 6, Tue 7


async def test_assign_across_national_day_counts_working_days(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory
) -> None:
    clock.freeze(datetime(2026, 9, 30, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai
    retoken(factory, world)
    case = await submit(client, world.resident, world, category_id=world.cat("safety"))
    # The category gives 5 working days: 10-08, 09, 10, 12, 13.
    assigned = await act(client, world.staff, case["id"], "assign", {"unit_id": world.unit.id})
    assert datetime.fromisoformat(assigned["deadline"]) == datetime(
        2026, 10, 13, 23, 59, 59, tzinfo=SHANGHAI
    )
    assert assigned["calendar_fallback"] is False
    timeline = (await client.get(f"/cases/{case['id']}", headers=world.staff.headers)).json()[
        "timeline"
    ]
    assert timeline[-1]["data"]["working_days"] == 5


async def test_assign_in_an_unknown_year_says_so(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory
) -> None:
    clock.freeze(datetime(2031, 1, 2, 1, 0, tzinfo=UTC))
    retoken(factory, world)
    case = await submit(client, world.resident, world)
    assigned = await act(client, world.staff, case["id"], "assign", {"unit_id": world.unit.id})
    assert assigned["calendar_fallback"] is True
    # 10 working days Mon–Fri from Thursday 2031-01-02: 3, 6..10, 13..16.
    assert datetime.fromisoformat(assigned["deadline"]).date() == date(2031, 1, 16)
    timeline = (await client.get(f"/cases/{case['id']}", headers=world.staff.headers)).json()[
        "timeline"
    ]
    assert "尚未公布" in timeline[-1]["internal_note"]
    assert timeline[-1]["data"]["calendar_fallback"] is True


async def test_explicit_deadline_must_be_in_the_future(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory
) -> None:
    clock.freeze(datetime(2026, 11, 22, 2, 0, tzinfo=UTC))
    retoken(factory, world)
    case = await submit(client, world.resident, world)
    past = await client.post(
        f"/cases/{case['id']}/assign",
        json={"unit_id": world.unit.id, "deadline": "2026-11-01T18:00:00+08:00"},
        headers=world.staff.headers,
    )
    assert past.status_code == 422
    assert (await case_row(db, case["id"])).status == "registered"
    given = await act(
        client,
        world.staff,
        case["id"],
        "assign",
        {"unit_id": world.unit.id, "deadline": "2026-11-30T18:00:00+08:00"},
    )
    assert datetime.fromisoformat(given["deadline"]) == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


async def test_overdue_sweep_flags_and_warns(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory, settings: Settings
) -> None:
    clock.freeze(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))  # Monday 09:00 Shanghai
    retoken(factory, world)
    case = await submit(client, world.resident, world, category_id=world.cat("safety"))
    assigned = await act(client, world.staff, case["id"], "assign", {"unit_id": world.unit.id})
    deadline = datetime.fromisoformat(assigned["deadline"])
    assert deadline.date() == date(2026, 11, 30)

    async def sweep(at: datetime) -> int:
        async with db.transaction() as session:
            return await sweeps.mark_overdue_cases(session, at, settings)

    assert await sweep(deadline - timedelta(days=3)) == 0
    assert [n.event for n in await notifications(db, world.handler.id)] == ["case.assigned"]
    # Within 24 hours of the deadline: one warning to the unit and the region's staff.
    assert await sweep(deadline - timedelta(hours=5)) == 0
    assert await sweep(deadline - timedelta(hours=4)) == 0
    assert [n.event for n in await notifications(db, world.handler.id)] == [
        "case.assigned",
        "case.due_soon",
    ]
    assert [n.event for n in await notifications(db, world.staff.id)] == ["case.due_soon"]
    assert await notifications(db, world.staff_b.id) == []
    # Past it: flagged once, however often the sweep runs.
    assert await sweep(deadline + timedelta(minutes=1)) == 1
    assert await sweep(deadline + timedelta(hours=2)) == 0
    listed = await client.get("/cases", params={"overdue": "true"}, headers=world.staff.headers)
    assert [c["id"] for c in listed.json()["items"]] == [case["id"]]
    assert listed.json()["items"][0]["overdue"] is True
    assert [n.event for n in await notifications(db, world.handler.id)][-1] == "case.overdue"
    assert (
        await client.get("/cases", params={"overdue": "false"}, headers=world.staff.headers)
    ).json()["total"] == 0
    # The resident's timeline does not show internal sweep entries.
    resident_view = (
        await client.get(f"/cases/{case['id']}", headers=world.resident.headers)
    ).json()
    assert "mark_overdue" not in [e["action"] for e in resident_view["timeline"]]
    staff_view = (await client.get(f"/cases/{case['id']}", headers=world.staff.headers)).json()
    assert [e["action"] for e in staff_view["timeline"]][-2:] == ["due_soon", "mark_overdue"]


async def test_auto_resolve_unrated_after_set_days(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory, settings: Settings
) -> None:
    clock.freeze(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    retoken(factory, world)
    unrated = await submit(client, world.resident, world)
    rated = await submit(client, world.resident2, world)
    for case in (unrated, rated):
        await act(client, world.staff, case["id"], "assign", {"unit_id": world.unit.id})
        await act(client, world.handler, case["id"], "reply", {"public_answer": "已处理完毕"})
    await act(client, world.resident2, rated["id"], "rate", {"satisfaction": "dissatisfied"})

    async def sweep(at: datetime) -> int:
        async with db.transaction() as session:
            return await sweeps.auto_resolve_unrated(session, at, settings)

    now = clock.now()
    assert (
        await sweep(now + timedelta(days=settings.case_auto_resolve_days) - timedelta(minutes=1))
        == 0
    )
    assert await sweep(now + timedelta(days=settings.case_auto_resolve_days, minutes=1)) == 1
    assert await sweep(now + timedelta(days=30)) == 0
    row = await case_row(db, unrated["id"])
    assert row.status == "resolved"
    assert row.resolution == "auto"
    assert row.satisfaction is None
    # The dissatisfied one waits for a reopen.
    assert (await case_row(db, rated["id"])).status == "fed_back"
    assert [n.event for n in await notifications(db, world.resident.id)][-1] == "case.resolved"
