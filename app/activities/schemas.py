"""Request and response bodies of activities."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app.activities.models import (
    ActivityQrMode,
    ActivityStatus,
    AttendanceSource,
    AttendanceStatus,
    LeaveStatus,
    RsvpAnswer,
)
from app.attachments.schemas import AttachmentPublic
from app.core.times import Timestamp
from app.core.types import MAX_ID, Id
from app.org.schemas import _Body

# 视察, 调研, 集中学习培训, 选民接待日, 走访慰问, 代表小组活动, 述职评议; other kinds may be
# used (lower-case identifiers), these are the ones the mini-program names.
ACTIVITY_KINDS: dict[str, str] = {
    "inspection": "视察",
    "research": "调研",
    "training": "集中学习培训",
    "reception_day": "选民接待日",
    "visit": "走访慰问",
    "group_activity": "代表小组活动",
    "report_meeting": "述职评议",
}
KIND_PATTERN = r"^[a-z][a-z_]{1,29}$"
MAX_INVITEES = 2000
# Dates the service accepts (a typo like year 20266 is a 422, not a server error).
MIN_AT = datetime(2000, 1, 1).astimezone()
MAX_AT = datetime(2199, 12, 31).astimezone()


class Invite(_Body):
    """Deputies to invite: whole groups, every deputy attached to stations, or one by one."""

    group_ids: list[Id] = Field(default_factory=list, max_length=100)
    station_ids: list[Id] = Field(default_factory=list, max_length=100)
    deputy_ids: list[Id] = Field(default_factory=list, max_length=MAX_INVITEES)


def _check_times(starts_at: datetime | None, ends_at: datetime | None) -> None:
    for at in (starts_at, ends_at):
        if at is not None and not MIN_AT <= at <= MAX_AT:
            raise ValueError("times are between 2000 and 2199")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValueError("ends_at must be after starts_at")


_CREATE_EXAMPLE: dict[str, Any] = {
    "kind": "inspection",
    "title": "江城街道老旧小区加装电梯视察",
    "content": "实地查看加装电梯进展，听取居民意见",
    "starts_at": "2026-12-03T09:30:00+08:00",
    "ends_at": "2026-12-03T12:00:00+08:00",
    "station_id": 12,
    "organiser": "江城街道人大工委",
    "group_id": 2,
    "invite": {"group_ids": [2], "deputy_ids": [15]},
    "is_public": True,
    "signup_enabled": True,
    "capacity": 30,
    "signup_deadline": "2026-12-02T18:00:00+08:00",
    "qr_mode": "printed",
}


class ActivityCreate(_Body):
    """Where: a `station_id` (its place and geofence), or an `address` with coordinates and
    a `radius_m`, in `region_id`. A group's leader plans only for their own `group_id`."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CREATE_EXAMPLE]})

    kind: str = Field(pattern=KIND_PATTERN, description="inspection, research, training, …")
    title: str = Field(min_length=1, max_length=100)
    content: str | None = Field(default=None, max_length=5000)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    station_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    region_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    address: str | None = Field(default=None, max_length=255)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    radius_m: int = Field(default=300, ge=20, le=5000)
    organiser: str | None = Field(default=None, max_length=100)
    group_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    invite: Invite = Field(default_factory=Invite)
    is_public: bool = False
    signup_enabled: bool = False
    capacity: int | None = Field(default=None, ge=1, le=100_000)
    signup_deadline: AwareDatetime | None = None
    qr_mode: ActivityQrMode = ActivityQrMode.printed

    @model_validator(mode="after")
    def _consistent(self) -> ActivityCreate:
        _check_times(self.starts_at, self.ends_at)
        if self.station_id is None:
            if self.region_id is None or self.address is None:
                raise ValueError("give station_id, or region_id with an address")
            if (self.latitude is None) != (self.longitude is None):
                raise ValueError("give both latitude and longitude, or neither")
        if self.signup_enabled:
            if not self.is_public:
                raise ValueError("only public activities take sign-ups")
            if self.capacity is None or self.signup_deadline is None:
                raise ValueError("sign-ups need a capacity and a signup_deadline")
            _check_times(self.signup_deadline, None)
            if self.signup_deadline > self.starts_at:
                raise ValueError("signup_deadline must not be after starts_at")
        return self


class ActivityUpdate(_Body):
    """Only the fields sent change. `invite` adds invitees (nobody is uninvited);
    `status: cancelled` cancels the activity and tells everyone invited or signed up."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "江城街道加装电梯视察（改期）",
                    "starts_at": "2026-12-04T09:30:00+08:00",
                    "ends_at": "2026-12-04T12:00:00+08:00",
                },
                {"capacity": 40, "invite": {"deputy_ids": [21]}},
                {"status": "cancelled"},
            ]
        }
    )

    kind: str | None = Field(default=None, pattern=KIND_PATTERN)
    title: str | None = Field(default=None, min_length=1, max_length=100)
    content: str | None = Field(default=None, max_length=5000)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    address: str | None = Field(default=None, max_length=255)
    organiser: str | None = Field(default=None, max_length=100)
    invite: Invite | None = None
    is_public: bool | None = None
    capacity: int | None = Field(default=None, ge=1, le=100_000)
    signup_deadline: AwareDatetime | None = None
    qr_mode: ActivityQrMode | None = None
    status: ActivityStatus | None = None
    # Bump to revoke every printed copy of the activity's code.
    renew_code: bool = False

    @model_validator(mode="after")
    def _times(self) -> ActivityUpdate:
        _check_times(self.starts_at, self.ends_at)
        _check_times(self.signup_deadline, None)
        return self


class ActivityPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    **{k: v for k, v in _CREATE_EXAMPLE.items() if k != "invite"},
                    "id": 7,
                    "kind_label": "视察",
                    "region_id": 4,
                    "address": "江城街道代表联络站",
                    "latitude": 31.2304,
                    "longitude": 121.4737,
                    "radius_m": 300,
                    "status": "planned",
                    "signed_up": 12,
                    "distance_m": 820.5,
                    "has_minutes": False,
                }
            ]
        },
    )

    id: int
    kind: str
    kind_label: str | None
    title: str
    content: str | None
    starts_at: Timestamp
    ends_at: Timestamp
    region_id: int
    station_id: int | None
    group_id: int | None
    address: str | None
    latitude: float | None
    longitude: float | None
    radius_m: int
    organiser: str | None
    status: ActivityStatus
    is_public: bool
    signup_enabled: bool
    capacity: int | None
    signup_deadline: Timestamp | None
    signed_up: int
    distance_m: float | None = None
    has_minutes: bool = False


class MyInvitation(BaseModel):
    answer: RsvpAnswer
    reason: str | None
    leave_status: LeaveStatus | None
    attendance: AttendanceStatus | None


class ActivityDetail(ActivityPublic):
    """With what concerns the caller: their invitation, their sign-up; for staff and the
    organising group's leader the invitation counts; minutes once written."""

    qr_mode: ActivityQrMode
    my_invitation: MyInvitation | None = None
    signed_up_by_me: bool = False
    can_manage: bool = False
    invited: int | None = None
    answered_yes: int | None = None
    leave_requests: int | None = None
    case_ids: list[int] | None = Field(
        default=None, description="For who manages it: cases raised at the activity"
    )
    minutes: str | None = None
    minutes_at: Timestamp | None = None
    minutes_photos: list[AttachmentPublic] = Field(default_factory=list)


class RsvpBody(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"answer": "yes"}, {"answer": "leave", "reason": "出差在外地"}]
        }
    )

    answer: RsvpAnswer
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _reason(self) -> RsvpBody:
        if self.answer is RsvpAnswer.pending:
            raise ValueError("answer is yes, no or leave")
        if self.answer is RsvpAnswer.leave and not self.reason:
            raise ValueError("a leave request needs a reason")
        return self


class RsvpPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "activity_id": 7,
                    "deputy_id": 5,
                    "answer": "leave",
                    "reason": "出差在外地",
                    "leave_status": "pending",
                    "answered_at": "2026-12-01T10:00:00+08:00",
                }
            ]
        }
    )

    activity_id: int
    deputy_id: int
    answer: RsvpAnswer
    reason: str | None
    leave_status: LeaveStatus | None
    answered_at: Timestamp | None


class ActivityCheckInBody(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "scene": "a.7.1.Zp0c3Qe8kLmN",
                    "latitude": 31.23041,
                    "longitude": 121.47372,
                    "accuracy": 25.0,
                }
            ]
        }
    )

    scene: str = Field(min_length=1, max_length=128)
    latitude: float = Field(ge=-90, le=90, description="GCJ-02, from wx.getLocation")
    longitude: float = Field(ge=-180, le=180, description="GCJ-02, from wx.getLocation")
    accuracy: float | None = Field(default=None, ge=0, le=100_000)


class AttendancePublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "deputy_id": 3,
                    "deputy_name": "王建国",
                    "invited": True,
                    "answer": "yes",
                    "leave_status": None,
                    "leave_reason": None,
                    "status": "present",
                    "source": "scan",
                    "checked_in_at": "2026-12-03T09:25:10+08:00",
                    "distance_m": 42.3,
                }
            ]
        }
    )

    deputy_id: int
    deputy_name: str
    invited: bool
    answer: RsvpAnswer | None
    leave_status: LeaveStatus | None
    leave_reason: str | None
    # None: nothing recorded (yet); after the activity it counts as absent.
    status: AttendanceStatus | None
    source: AttendanceSource | None
    checked_in_at: Timestamp | None
    distance_m: float | None


class CorrectionPublic(BaseModel):
    deputy_id: int
    from_status: AttendanceStatus | None
    to_status: AttendanceStatus
    reason: str
    by_user_id: int
    created_at: Timestamp


class AttendanceSheet(BaseModel):
    """Everyone invited or recorded, and the history of staff corrections."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "activity_id": 7,
                    "items": [
                        {
                            "deputy_id": 3,
                            "deputy_name": "王建国",
                            "invited": True,
                            "answer": "yes",
                            "leave_status": None,
                            "leave_reason": None,
                            "status": "present",
                            "source": "scan",
                            "checked_in_at": "2026-12-03T09:25:10+08:00",
                            "distance_m": 42.3,
                        }
                    ],
                    "corrections": [
                        {
                            "deputy_id": 9,
                            "from_status": None,
                            "to_status": "present",
                            "reason": "手机没电，现场签到表为证",
                            "by_user_id": 4,
                            "created_at": "2026-12-03T13:00:00+08:00",
                        }
                    ],
                    "present": 6,
                    "excused": 1,
                    "absent": 2,
                }
            ]
        }
    )

    activity_id: int
    items: list[AttendancePublic]
    corrections: list[CorrectionPublic]
    present: int
    excused: int
    absent: int


class AttendanceCorrect(_Body):
    """Record or correct one deputy's attendance. On a pending leave request, `excused`
    approves the leave and `absent` or `present` rejects it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"deputy_id": 3, "status": "present", "reason": "手机没电，现场签到表为证"},
                {"deputy_id": 5, "status": "excused", "reason": "同意请假"},
            ]
        }
    )

    deputy_id: int = Field(ge=1, le=MAX_ID)
    status: AttendanceStatus
    reason: str = Field(min_length=1, max_length=500)


class CheckInResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "activity_id": 7,
                    "title": "江城街道加装电梯视察",
                    "deputy_id": 3,
                    "status": "present",
                    "checked_in_at": "2026-12-03T09:25:10+08:00",
                    "distance_m": 42.3,
                    "repeat": False,
                }
            ]
        }
    )

    activity_id: int
    title: str
    deputy_id: int
    status: AttendanceStatus
    checked_in_at: Timestamp | None
    distance_m: float | None
    # True when this deputy's attendance was already recorded (a second scan).
    repeat: bool


class SignupPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "activity_id": 7,
                    "signed_up": 13,
                    "capacity": 30,
                    "created_at": "2026-11-30T10:00:00+08:00",
                }
            ]
        }
    )

    activity_id: int
    signed_up: int
    capacity: int | None
    created_at: Timestamp


class MinutesBody(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "minutes": "12 名代表参加视察，收集意见 5 条，现场转办 2 件。",
                    "attachment_ids": [41, 42],
                }
            ]
        }
    )

    minutes: str = Field(min_length=1, max_length=20000)
    attachment_ids: list[Id] = Field(default_factory=list, max_length=30)
