"""Request and response bodies of the deputy roster (代表名册).

Public profiles (亮身份: `DeputyPublic`, `DeputyDetail`) never carry a phone number; the
staff view (`DeputyRosterEntry`) does.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.times import Timestamp
from app.core.types import Id, Version
from app.identity.models import DeputyLevel
from app.org.models import StationKind
from app.org.schemas import edit_version
from app.presence.schemas import DeputyDutySlot

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_SEPARATORS = re.compile(r"[\s\-()（）]")


def normalize_mobile(value: str) -> str:
    """A mainland China mobile number as 11 digits: `+86 138-0013-8000` → `13800138000`.
    Raises ValueError when it is not one."""
    digits = _SEPARATORS.sub("", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not _MOBILE.match(digits):
        raise ValueError("not a mainland China mobile number (11 digits starting with 1)")
    return digits


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _DeputyFields(_Body):
    @field_validator("phone", check_fields=False)
    @classmethod
    def _mobile(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        return normalize_mobile(value)

    @field_validator("title", "gender", "photo_url", "bio", "term", check_fields=False)
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("station_ids", check_fields=False)
    @classmethod
    def _distinct(cls, value: list[int] | None) -> list[int] | None:
        return None if value is None else list(dict.fromkeys(value))


class DeputyCreate(_DeputyFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "李明",
                    "level": "district",
                    "title": "江城街道社区卫生服务中心主任",
                    "gender": "男",
                    "phone": "13800138000",
                    "region_id": 4,
                    "term": "第十八届",
                    "photo_url": "https://example.com/media/deputy7.jpg",
                    "bio": "长期关注社区医疗与养老服务",
                    "station_ids": [12],
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=50)
    level: DeputyLevel
    title: str | None = Field(default=None, max_length=100, description="职务 / 工作单位")
    gender: str | None = Field(default=None, max_length=10)
    phone: str | None = Field(default=None, description="Mainland mobile number (staff only)")
    region_id: Id | None = Field(
        default=None, description="Defaults to the staff member's own region"
    )
    photo_url: str | None = Field(default=None, max_length=500)
    bio: str | None = Field(default=None, max_length=2000)
    term: str | None = Field(default=None, max_length=50, description="届次")
    station_ids: list[Id] = Field(
        default_factory=list, max_length=50, description="Stations the deputy is attached to"
    )


class DeputyUpdate(_DeputyFields):
    """Only the fields sent change; `station_ids` replaces the attachments. Carry `version`
    (or `If-Match`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"version": 2, "title": "江城街道党工委书记", "station_ids": [12, 15]}]
        }
    )

    version: Version | None = edit_version()
    name: str | None = Field(default=None, min_length=1, max_length=50)
    level: DeputyLevel | None = None
    title: str | None = Field(default=None, max_length=100)
    gender: str | None = Field(default=None, max_length=10)
    phone: str | None = None
    region_id: Id | None = None
    photo_url: str | None = Field(default=None, max_length=500)
    bio: str | None = Field(default=None, max_length=2000)
    term: str | None = Field(default=None, max_length=50)
    is_active: bool | None = None
    station_ids: list[Id] | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _required_not_null(self) -> DeputyUpdate:
        for name in ("name", "level", "is_active", "station_ids"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class DeputyStationRef(BaseModel):
    id: int
    name: str
    kind: StationKind


_PUBLIC_EXAMPLE: dict[str, Any] = {
    "id": 7,
    "name": "李明",
    "level": "district",
    "title": "江城街道社区卫生服务中心主任",
    "gender": "男",
    "term": "第十八届",
    "region_id": 4,
    "photo_url": "https://example.com/media/deputy7.jpg",
    "bio": "长期关注社区医疗与养老服务",
    "stations": [{"id": 12, "name": "江城街道代表联络站", "kind": "station"}],
}


class DeputyPublic(BaseModel):
    """A deputy's public profile (亮身份). Never a phone number."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PUBLIC_EXAMPLE]})

    id: int
    name: str
    level: DeputyLevel
    title: str | None
    gender: str | None
    term: str | None
    region_id: int | None
    photo_url: str | None
    bio: str | None
    stations: list[DeputyStationRef]


class DeputyDetail(DeputyPublic):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_PUBLIC_EXAMPLE,
                    "coming_duty": [
                        {
                            "id": 31,
                            "station_id": 12,
                            "station_name": "江城街道代表联络站",
                            "date": "2026-11-25",
                            "start_time": "09:00:00",
                            "end_time": "12:00:00",
                            "starts_at": "2026-11-25T09:00:00+08:00",
                            "ends_at": "2026-11-25T12:00:00+08:00",
                            "note": None,
                        }
                    ],
                }
            ]
        }
    )

    coming_duty: list[DeputyDutySlot] = Field(
        default_factory=list, description="Duty slots of the next 7 days, soonest first"
    )


class DeputyRosterEntry(DeputyPublic):
    """The staff view of a roster entry: the phone in full, the version to edit with, and
    whether a WeChat account is bound to it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_PUBLIC_EXAMPLE,
                    "phone": "13800138000",
                    "is_active": True,
                    "version": 2,
                    "bound": False,
                    "created_at": "2026-03-01T16:00:00+08:00",
                    "updated_at": "2026-03-02T16:00:00+08:00",
                }
            ]
        }
    )

    phone: str | None
    is_active: bool
    version: int
    bound: bool = Field(description="A WeChat account is bound to this deputy")
    created_at: Timestamp
    updated_at: Timestamp | None


class BindingCodeIssued(BaseModel):
    """A one-time binding code, shown once: only its hash is stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "deputy_id": 7,
                    "code": "K7MQ4TXP",
                    "expires_at": "2026-11-25T16:00:00+08:00",
                }
            ]
        }
    )

    deputy_id: int
    code: str = Field(description="8 characters without 0/O/1/I/L; case-insensitive")
    expires_at: Timestamp


# Roster import ------------------------------------------------------------------------------


class ImportRowStatus(StrEnum):
    created = "created"
    updated = "updated"
    rejected = "rejected"


class ImportRowResult(BaseModel):
    row: int = Field(description="Row number in the file (the header is row 1)")
    status: ImportRowStatus
    deputy_id: int | None = None
    name: str | None = None
    reasons: list[str] = Field(default_factory=list, description="Why the row was rejected")
    changed: list[str] = Field(
        default_factory=list, description="Fields an update changed (empty: no difference)"
    )


class ImportReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "applied": True,
                    "strict": False,
                    "dry_run": False,
                    "created": 1,
                    "updated": 1,
                    "rejected": 1,
                    "rows": [
                        {
                            "row": 2,
                            "status": "created",
                            "deputy_id": 21,
                            "name": "王芳",
                            "reasons": [],
                            "changed": [],
                        },
                        {
                            "row": 3,
                            "status": "updated",
                            "deputy_id": 7,
                            "name": "李明",
                            "reasons": [],
                            "changed": ["title"],
                        },
                        {
                            "row": 4,
                            "status": "rejected",
                            "deputy_id": None,
                            "name": "赵强",
                            "reasons": ["联络站不存在：东湖联络站"],
                            "changed": [],
                        },
                    ],
                }
            ]
        }
    )

    applied: bool = Field(description="Whether the created/updated rows were saved")
    strict: bool
    dry_run: bool
    created: int
    updated: int
    rejected: int
    rows: list[ImportRowResult]
