"""The service's notion of "now", in UTC.

Tests and demos can freeze or advance it; production code always asks `utcnow()` instead of
`datetime.now()`, so that expiry, deadlines and sweeps can be tested without sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        if self._frozen is not None:
            return self._frozen
        return datetime.now(UTC) + self._offset

    def freeze(self, at: datetime) -> None:
        self._frozen = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        if self._frozen is not None:
            self._frozen += delta
        else:
            self._offset += delta

    def reset(self) -> None:
        self._offset = timedelta(0)
        self._frozen = None


clock = Clock()


def utcnow() -> datetime:
    return clock.now()


def local_now() -> datetime:
    """Now in Asia/Shanghai, where business days and duty slots are counted."""
    return clock.now().astimezone(SHANGHAI)
