"""Working days in China's official calendar (法定节假日与调休), Asia/Shanghai.

The `chinese_calendar` package knows each year's public holidays and make-up working days
(调休上班) once the State Council has published them. For a year it does not know yet we
fall back to "Monday to Friday" and say so, so a deadline is never refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import chinese_calendar

from app.core.clock import SHANGHAI


@dataclass(frozen=True, slots=True)
class Deadline:
    """The last working day (inclusive) and the instant it ends, 23:59:59 Shanghai time."""

    day: date
    at: datetime
    calendar_fallback: bool


def is_workday(day: date) -> tuple[bool, bool]:
    """(is it a working day, was the weekend fallback used)."""
    try:
        return chinese_calendar.is_workday(day), False
    except NotImplementedError:
        return day.weekday() < 5, True


def add_workdays(start: datetime, days: int) -> Deadline:
    """The deadline `days` working days after `start`: the day of `start` does not count,
    the deadline is the end of the last counted day in Shanghai time."""
    if days < 1:
        raise ValueError("days must be at least 1")
    day = start.astimezone(SHANGHAI).date()
    fallback = False
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        working, used_fallback = is_workday(day)
        fallback = fallback or used_fallback
        if working:
            counted += 1
    end = datetime.combine(day, time(23, 59, 59), tzinfo=SHANGHAI)
    return Deadline(day=day, at=end, calendar_fallback=fallback)


def end_of_local_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=SHANGHAI)
