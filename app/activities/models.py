"""Activities (代表活动), their invitations, attendance, corrections and resident sign-ups."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.core.models import created_at_field, enum_field, timestamp_field


class ActivityStatus(StrEnum):
    planned = "planned"
    cancelled = "cancelled"


class ActivityQrMode(StrEnum):
    printed = "printed"  # one code, valid until staff bump qr_version
    rotating = "rotating"  # shown on a screen, changes every QR_ROTATION_STEP_SECONDS


class RsvpAnswer(StrEnum):
    pending = "pending"
    yes = "yes"
    no = "no"
    leave = "leave"  # 请假, with a reason, for staff to decide


class LeaveStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class AttendanceStatus(StrEnum):
    present = "present"  # 出席
    excused = "excused"  # 请假 (approved leave)
    absent = "absent"  # 缺席 (without leave: counts against the deputy)


class AttendanceSource(StrEnum):
    scan = "scan"
    staff = "staff"


class Activity(SQLModel, table=True):
    """A planned deputy activity. `region_id` decides which staff manage it; `group_id` lets
    that group's leader manage it too. Coordinates and radius are the geofence for scans
    (copied from the station when the activity is held at one)."""

    __table_args__ = (
        sa.Index("ix_activity_region_starts", "region_id", "starts_at"),
        sa.CheckConstraint(
            "capacity IS NULL OR signed_up <= capacity", name="signups_within_capacity"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30, index=True)
    title: str = Field(max_length=100)
    content: str | None = Field(default=None, max_length=5000)
    starts_at: datetime = timestamp_field(nullable=False, index=True)
    ends_at: datetime = timestamp_field(nullable=False)
    region_id: int = Field(foreign_key="region.id")
    station_id: int | None = Field(default=None, foreign_key="station.id", index=True)
    group_id: int | None = Field(default=None, foreign_key="deputy_group.id", index=True)
    address: str | None = Field(default=None, max_length=255)
    latitude: float | None = None
    longitude: float | None = None
    radius_m: int = Field(default=300)
    organiser: str | None = Field(default=None, max_length=100)
    status: ActivityStatus = enum_field(ActivityStatus.planned, length=20)
    # Residents may see it and sign up (报名) while `signed_up < capacity` and before the deadline.
    is_public: bool = Field(default=False)
    signup_enabled: bool = Field(default=False)
    capacity: int | None = None
    signup_deadline: datetime | None = timestamp_field()
    signed_up: int = Field(default=0)
    qr_mode: ActivityQrMode = enum_field(ActivityQrMode.printed, length=20)
    qr_version: int = Field(default=1)
    minutes: str | None = Field(default=None, max_length=20000)
    minutes_at: datetime | None = timestamp_field()
    # Set once by the reminder sweep (the day before).
    reminded_at: datetime | None = timestamp_field()
    created_by_user_id: int = Field(foreign_key="user.id")
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class ActivityInvitation(SQLModel, table=True):
    """A deputy invited to an activity, with their answer and leave request."""

    __tablename__ = "activity_invitation"
    __table_args__ = (UniqueConstraint("activity_id", "deputy_id"),)

    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="activity.id")
    deputy_id: int = Field(foreign_key="deputy.id", index=True)
    answer: RsvpAnswer = enum_field(RsvpAnswer.pending, length=20)
    reason: str | None = Field(default=None, max_length=500)
    leave_status: LeaveStatus | None = Field(default=None, sa_type=sa.String(20))
    answered_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()


class ActivityAttendance(SQLModel, table=True):
    """A deputy's attendance at an activity: one row per deputy, settled by the unique key."""

    __tablename__ = "activity_attendance"
    __table_args__ = (UniqueConstraint("activity_id", "deputy_id"),)

    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="activity.id")
    deputy_id: int = Field(foreign_key="deputy.id", index=True)
    status: AttendanceStatus = enum_field(length=20)
    source: AttendanceSource = enum_field(length=20)
    checked_in_at: datetime | None = timestamp_field()
    latitude: float | None = None
    longitude: float | None = None
    accuracy_m: float | None = None
    distance_m: float | None = None
    recorded_at: datetime = created_at_field()


class AttendanceCorrection(SQLModel, table=True):
    """Every change staff made to an attendance, with its reason (the activity's history)."""

    __tablename__ = "attendance_correction"

    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="activity.id", index=True)
    deputy_id: int = Field(foreign_key="deputy.id")
    from_status: AttendanceStatus | None = Field(default=None, sa_type=sa.String(20))
    to_status: AttendanceStatus = enum_field(length=20)
    reason: str = Field(max_length=500)
    by_user_id: int = Field(foreign_key="user.id")
    created_at: datetime = created_at_field()


class ActivitySignup(SQLModel, table=True):
    """A resident signed up (报名) for a public activity. Cancelling deletes the row."""

    __tablename__ = "activity_signup"
    __table_args__ = (UniqueConstraint("activity_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(foreign_key="activity.id")
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = created_at_field()


__all__ = [
    "Activity",
    "ActivityAttendance",
    "ActivityInvitation",
    "ActivitySignup",
    "AttendanceCorrection",
]
