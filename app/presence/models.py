"""Duty rosters (排班), check-ins (进站签到) and receptions (接待记录)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.core.models import created_at_field, timestamp_field


class CloseReason(StrEnum):
    scan = "scan"  # a second scan at the same station
    manual = "manual"  # POST /checkins/{id}/checkout
    moved = "moved"  # the deputy checked in at another station
    auto = "auto"  # left open past the maximum duration


class DutySlot(SQLModel, table=True):
    """One duty period at a station (值班时段), in Asia/Shanghai local date and times."""

    __tablename__ = "duty_slot"
    __table_args__ = (sa.Index("ix_duty_slot_station_starts", "station_id", "starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    station_id: int = Field(foreign_key="station.id")
    day: date = Field(index=True)  # local date in Asia/Shanghai
    starts_at: datetime = timestamp_field(nullable=False, index=True)
    ends_at: datetime = timestamp_field(nullable=False)
    note: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at_field()


class DutyAssignment(SQLModel, table=True):
    """A deputy on a duty slot."""

    __tablename__ = "duty_assignment"
    __table_args__ = (UniqueConstraint("slot_id", "deputy_id"),)

    id: int | None = Field(default=None, primary_key=True)
    slot_id: int = Field(foreign_key="duty_slot.id")
    deputy_id: int = Field(foreign_key="deputy.id", index=True)


OPEN_CHECKIN = sa.text("checked_out_at IS NULL")


class CheckIn(SQLModel, table=True):
    """A deputy's presence at a station, from the first scan to the checkout.

    At most one open check-in per deputy: the partial unique index settles simultaneous
    scans in the database, on SQLite and PostgreSQL alike.
    """

    __tablename__ = "check_in"
    __table_args__ = (
        sa.Index(
            "uq_check_in_open_deputy",
            "deputy_id",
            unique=True,
            postgresql_where=OPEN_CHECKIN,
            sqlite_where=OPEN_CHECKIN,
        ),
        sa.Index("ix_check_in_deputy_checked_in", "deputy_id", "checked_in_at"),
        sa.Index("ix_check_in_station_checked_in", "station_id", "checked_in_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    deputy_id: int = Field(foreign_key="deputy.id")
    station_id: int = Field(foreign_key="station.id")
    checked_in_at: datetime = timestamp_field(nullable=False, index=True)
    checked_out_at: datetime | None = timestamp_field()
    close_reason: CloseReason | None = Field(default=None, sa_type=sa.String(20))
    auto_closed: bool = Field(default=False)
    latitude: float
    longitude: float
    accuracy_m: float | None = None
    # Metres between the phone and the station; None when the station has no coordinates.
    distance_m: float | None = None
    # The duty slot this check-in attended (值班出勤), matched when it was made.
    duty_slot_id: int | None = Field(default=None, foreign_key="duty_slot.id", index=True)


class Reception(SQLModel, table=True):
    """A resident received by a deputy at a station (接待选民)."""

    id: int | None = Field(default=None, primary_key=True)
    station_id: int = Field(foreign_key="station.id", index=True)
    deputy_id: int | None = Field(default=None, foreign_key="deputy.id", index=True)
    checkin_id: int | None = Field(default=None, foreign_key="check_in.id", index=True)
    topic: str = Field(max_length=100)
    content: str = Field(max_length=5000)
    resident_name: str | None = Field(default=None, max_length=50)
    resident_phone: str | None = Field(default=None, max_length=20)
    received_at: datetime = timestamp_field(nullable=False, index=True)
    # The case this reception was turned into (set by app.presence.service.attach_case).
    case_id: int | None = Field(default=None, index=True)
    created_by_user_id: int = Field(foreign_key="user.id")
    created_at: datetime = created_at_field()


__all__ = [
    "CheckIn",
    "CloseReason",
    "DutyAssignment",
    "DutySlot",
    "Reception",
]
