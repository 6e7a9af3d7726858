"""Request and response bodies of check-ins, duty rosters, receptions and station codes."""

from __future__ import annotations

import datetime as dt
from datetime import date, time
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.times import Timestamp
from app.core.types import Id
from app.identity.models import DeputyLevel
from app.presence.models import CloseReason

MAX_ROSTER_DAYS = 92
# Ids are 32-bit integers in the database.
# Dates the service reasons about (local dates in Asia/Shanghai).
MIN_DATE, MAX_DATE = date(2000, 1, 1), date(2199, 12, 31)
BusinessDate = Annotated[date, Field(ge=MIN_DATE, le=MAX_DATE)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# Check-ins -----------------------------------------------------------------------------------


class CheckInCreate(_Body):
    """What the mini-program posts after scanning a station code (进站签到)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "scene": "p.12.1.Qx3v9_Lk2aZb",
                    "latitude": 31.23041,
                    "longitude": 121.47372,
                    "accuracy": 25.0,
                }
            ]
        }
    )

    scene: str = Field(
        min_length=1,
        max_length=128,
        description="The code's scene, from onLoad(query).scene (decodeURIComponent) "
        "or wx.scanCode's path",
    )
    latitude: float = Field(ge=-90, le=90, description="GCJ-02, from wx.getLocation")
    longitude: float = Field(ge=-180, le=180, description="GCJ-02, from wx.getLocation")
    accuracy: float | None = Field(
        default=None, ge=0, le=100_000, description="Metres, wx.getLocation's accuracy"
    )


class CheckInAction(StrEnum):
    checked_in = "checked_in"  # a new check-in (201)
    repeat = "repeat"  # a repeated scan within the window: the same check-in (200)
    checked_out = "checked_out"  # a later scan at the same station closed it (200)


class CheckInPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 501,
                    "deputy_id": 7,
                    "deputy_name": "王芳",
                    "station_id": 12,
                    "station_name": "江城街道代表联络站",
                    "checked_in_at": "2026-03-02T09:05:12+08:00",
                    "checked_out_at": None,
                    "close_reason": None,
                    "auto_closed": False,
                    "latitude": 31.23041,
                    "longitude": 121.47372,
                    "accuracy_m": 25.0,
                    "distance_m": 38.2,
                    "duty_slot_id": 88,
                    "on_duty": True,
                }
            ]
        },
    )

    id: int
    deputy_id: int
    deputy_name: str | None = None
    station_id: int
    station_name: str | None = None
    checked_in_at: Timestamp
    checked_out_at: Timestamp | None
    close_reason: CloseReason | None = Field(
        description="scan (second scan), manual (checkout), moved (checked in elsewhere), "
        "auto (closed by the sweep after the maximum duration)"
    )
    auto_closed: bool
    latitude: float
    longitude: float
    accuracy_m: float | None
    distance_m: float | None = Field(
        description="Metres from the station; null without coordinates"
    )
    duty_slot_id: int | None = Field(description="The duty slot this check-in attended (值班)")
    on_duty: bool = Field(
        description="True when the check-in fell inside one of the deputy's slots"
    )


class CheckInResult(CheckInPublic):
    """The answer to a scan: the check-in and what the scan did."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **CheckInPublic.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index,dict-item]
                    "action": "checked_in",
                }
            ]
        }
    )

    action: CheckInAction


# Duty rosters --------------------------------------------------------------------------------


class DeputyBrief(BaseModel):
    """A deputy's public fields (亮身份): no phone."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    level: DeputyLevel
    title: str | None = None
    photo_url: str | None = None


class DutySlotIn(_Body):
    date: BusinessDate = Field(description="Local date in Asia/Shanghai")
    start_time: time = Field(description="Local time in Asia/Shanghai, e.g. 09:00")
    end_time: time = Field(description="Local time, after start_time on the same day")
    deputy_ids: list[Id] = Field(default_factory=list, max_length=50)
    note: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _check(self) -> DutySlotIn:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        if len(set(self.deputy_ids)) != len(self.deputy_ids):
            raise ValueError("deputy_ids must not repeat")
        return self


class DutyRosterUpdate(_Body):
    """Replaces the station's roster for every date from `from` to `to` (inclusive):
    slots not given are removed, so an empty `slots` clears the range."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "from": "2026-03-02",
                    "to": "2026-03-08",
                    "slots": [
                        {
                            "date": "2026-03-02",
                            "start_time": "09:00",
                            "end_time": "11:30",
                            "deputy_ids": [7, 9],
                            "note": "第一周接待日",
                        },
                        {
                            "date": "2026-03-04",
                            "start_time": "14:00",
                            "end_time": "17:00",
                            "deputy_ids": [11],
                        },
                    ],
                }
            ]
        },
    )

    date_from: BusinessDate = Field(alias="from")
    date_to: BusinessDate = Field(alias="to")
    slots: list[DutySlotIn] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _check(self) -> DutyRosterUpdate:
        if self.date_to < self.date_from:
            raise ValueError("to must not be before from")
        if (self.date_to - self.date_from).days >= MAX_ROSTER_DAYS:
            raise ValueError(f"at most {MAX_ROSTER_DAYS} days at once")
        seen = set()
        for slot in self.slots:
            if not self.date_from <= slot.date <= self.date_to:
                raise ValueError("every slot's date must lie between from and to")
            key = (slot.date, slot.start_time, slot.end_time)
            if key in seen:
                raise ValueError("two slots with the same date and times")
            seen.add(key)
        return self


class DutySlotPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 88,
                    "station_id": 12,
                    "date": "2026-03-02",
                    "start_time": "09:00:00",
                    "end_time": "11:30:00",
                    "starts_at": "2026-03-02T09:00:00+08:00",
                    "ends_at": "2026-03-02T11:30:00+08:00",
                    "note": "第一周接待日",
                    "deputies": [
                        {
                            "id": 7,
                            "name": "王芳",
                            "level": "district",
                            "title": "江城社区党委书记",
                            "photo_url": None,
                        }
                    ],
                }
            ]
        }
    )

    id: int
    station_id: int
    date: dt.date
    start_time: time
    end_time: time
    starts_at: Timestamp
    ends_at: Timestamp
    note: str | None
    deputies: list[DeputyBrief]


class DutyRoster(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    station_id: int
    date_from: date = Field(alias="from")
    date_to: date = Field(alias="to")
    slots: list[DutySlotPublic]


class DeputyDutySlot(BaseModel):
    """One of a deputy's coming duty slots, for the public deputy profile."""

    id: int
    station_id: int
    station_name: str
    date: dt.date
    start_time: time
    end_time: time
    starts_at: Timestamp
    ends_at: Timestamp
    note: str | None


# Receptions ----------------------------------------------------------------------------------


class ReceptionCreate(_Body):
    """A resident received (接待记录). Deputies record it while checked in (station and
    check-in come from the open check-in); staff name the station and may name the deputy."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "topic": "小区加装电梯",
                    "content": "居民反映3号楼加装电梯意见不统一，希望街道协调。",
                    "resident_name": "李建国",
                    "resident_phone": "13812345678",
                }
            ]
        }
    )

    topic: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1, max_length=5000)
    resident_name: str | None = Field(default=None, max_length=50)
    resident_phone: str | None = Field(
        default=None, max_length=20, pattern=r"^\+?[0-9][0-9-]{4,19}$"
    )
    station_id: Id | None = Field(default=None, description="Staff only (required)")
    deputy_id: Id | None = Field(default=None, description="Staff only (optional)")

    @field_validator("resident_name")
    @classmethod
    def _blank_name(cls, value: str | None) -> str | None:
        return value or None


class ReceptionPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 31,
                    "station_id": 12,
                    "station_name": "江城街道代表联络站",
                    "deputy_id": 7,
                    "deputy_name": "王芳",
                    "checkin_id": 501,
                    "topic": "小区加装电梯",
                    "content": "居民反映3号楼加装电梯意见不统一，希望街道协调。",
                    "resident_name": "李建国",
                    "resident_phone": "13812345678",
                    "received_at": "2026-03-02T09:20:00+08:00",
                    "case_id": None,
                }
            ]
        }
    )

    id: int
    station_id: int
    station_name: str | None = None
    deputy_id: int | None
    deputy_name: str | None = None
    checkin_id: int | None
    topic: str
    content: str
    resident_name: str | None = Field(description="Masked (李**) except to staff and the deputy")
    resident_phone: str | None = Field(
        description="Masked (138****5678) except to staff and the deputy"
    )
    received_at: Timestamp
    case_id: int | None = Field(description="The case this reception was turned into")


# Station codes -------------------------------------------------------------------------------


class QrKind(StrEnum):
    printed = "printed"
    rotating = "rotating"


class StationQrCode(BaseModel):
    """A station code's parts, for printing tools and station screens."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "station_id": 12,
                    "station_name": "江城街道代表联络站",
                    "kind": "printed",
                    "scene": "p.12.1.Qx3v9_Lk2aZb",
                    "page": "pages/checkin/index",
                    "env_version": "release",
                    "expires_at": None,
                    "screen_url": None,
                }
            ]
        }
    )

    station_id: int
    station_name: str
    kind: QrKind
    scene: str
    page: str
    env_version: str
    expires_at: Timestamp | None = Field(
        default=None, description="Rotating codes only: when this scene stops being accepted"
    )
    screen_url: str | None = Field(
        default=None,
        description="Staff answers for stations that accept rotating codes: the URL a "
        "station screen polls for its current code (carries the screen key)",
    )
