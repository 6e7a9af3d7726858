"""Request and response bodies of the cases API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.cases.models import CaseChannel, CaseStatus, RejectReason, Satisfaction
from app.core.times import TimedJSON, Timestamp
from app.core.types import Id, Version

_TEXT_EXAMPLE = "小区东门路灯坏了一个多月，晚上老人出行很不方便，希望尽快修复。"


class CaseCategoryPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "code": "municipal",
                    "name": "市政设施",
                    "description": "道路、路灯、井盖、排水",
                    "default_deadline_days": 10,
                }
            ]
        },
    )

    id: int
    code: str
    name: str
    description: str | None = None
    default_deadline_days: int


class CaseCreate(BaseModel):
    """A new case. Residents and deputies write for themselves; a deputy may name the
    reception it came from; staff register calls and counter visits with the resident's
    name and phone."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "翠苑一区东门路灯不亮",
                    "content": _TEXT_EXAMPLE,
                    "category_id": 3,
                    "station_id": 2,
                    "latitude": 30.2802,
                    "longitude": 120.132,
                    "address": "翠苑一区东门",
                    "attachment_ids": [41, 42],
                    "deputy_id": 1,
                }
            ]
        },
    )

    title: str = Field(min_length=2, max_length=100)
    content: str = Field(min_length=5, max_length=5000)
    category_id: Id
    region_id: Id | None = Field(default=None, description="Where; or give station_id")
    station_id: Id | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, max_length=255)
    attachment_ids: list[Id] = Field(default_factory=list, max_length=9)
    deputy_id: Id | None = Field(
        default=None, description="The deputy written to (from that deputy's code)"
    )
    deputy_scene: str | None = Field(
        default=None, max_length=32, description="The scanned deputy code's scene, instead"
    )
    reception_id: Id | None = Field(
        default=None, description="Deputies: the reception this case came from"
    )
    activity_id: Id | None = Field(
        default=None, description="The activity (代表活动) where it was raised"
    )
    channel: CaseChannel | None = Field(
        default=None, description="Staff: phone or counter (set by the server otherwise)"
    )
    contact_name: str | None = Field(default=None, max_length=50)
    contact_phone: str | None = Field(default=None, pattern=r"^[0-9+\-]{5,20}$")

    @model_validator(mode="after")
    def _where(self) -> CaseCreate:
        if self.region_id is None and self.station_id is None:
            raise ValueError("region_id or station_id is required")
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together")
        if len(set(self.attachment_ids)) != len(self.attachment_ids):
            raise ValueError("attachment_ids must not repeat")
        return self


class CaseUnitRef(BaseModel):
    id: int
    name: str


class CaseEventPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "action": "assign",
                    "from_status": "registered",
                    "to_status": "handling",
                    "actor_role": "staff",
                    "actor_name": "示范区人大工作人员",
                    "round": 0,
                    "public_note": "已交办区城市管理局办理",
                    "internal_note": "请一周内现场查看",
                    "data": {"unit_id": 2, "deadline": "2026-10-10T23:59:59+08:00"},
                    "created_at": "2026-09-30T10:00:00+08:00",
                }
            ]
        }
    )

    id: int
    action: str
    from_status: str | None
    to_status: str | None
    actor_role: str
    actor_name: str | None = None
    round: int
    public_note: str | None
    internal_note: str | None = Field(default=None, description="Staff and units only")
    data: TimedJSON = Field(
        default_factory=dict,
        description="What the step set (`deadline`, `unit_id`, ...); times as everywhere",
    )
    created_at: Timestamp


class CasePublic(BaseModel):
    """A case as the caller may see it: staff-only fields are null for others, phone
    numbers are masked except for staff of the region, the lead unit and the owner."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "number": "20260930-0012",
                    "title": "翠苑一区东门路灯不亮",
                    "content": _TEXT_EXAMPLE,
                    "status": "handling",
                    "status_text": "办理中",
                    "category_id": 3,
                    "category_name": "市政设施",
                    "region_id": 4,
                    "station_id": 2,
                    "latitude": 30.2802,
                    "longitude": 120.132,
                    "address": "翠苑一区东门",
                    "attachment_ids": [41, 42],
                    "channel": "miniprogram",
                    "deputy_id": 1,
                    "contact_name": "张**",
                    "contact_phone": "138****0001",
                    "is_owner": True,
                    "lead_unit": {"id": 2, "name": "区城市管理局"},
                    "co_units": [],
                    "suggested_unit": None,
                    "deadline": "2026-10-10T23:59:59+08:00",
                    "calendar_fallback": False,
                    "overdue": False,
                    "supervised_count": 0,
                    "reopen_count": 0,
                    "merged_into_id": None,
                    "reject_reason_code": None,
                    "reject_note": None,
                    "public_answer": None,
                    "satisfaction": None,
                    "rating_comment": None,
                    "resolution": None,
                    "resolved_at": None,
                    "content_flag": None,
                    "version": 2,
                    "created_at": "2026-09-30T09:12:00+08:00",
                    "updated_at": "2026-09-30T10:00:00+08:00",
                }
            ]
        }
    )

    id: int
    number: str
    title: str
    content: str
    status: CaseStatus
    status_text: str
    category_id: int
    category_name: str | None = None
    region_id: int
    station_id: int | None
    latitude: float | None
    longitude: float | None
    address: str | None
    attachment_ids: list[int]
    channel: CaseChannel
    deputy_id: int | None
    activity_id: int | None = None
    contact_name: str | None
    contact_phone: str | None
    is_owner: bool = False
    lead_unit: CaseUnitRef | None = None
    co_units: list[CaseUnitRef] = Field(default_factory=list)
    suggested_unit: CaseUnitRef | None = Field(default=None, description="Staff only")
    deadline: Timestamp | None
    calendar_fallback: bool
    overdue: bool
    supervised_count: int
    reopen_count: int
    merged_into_id: int | None
    reject_reason_code: str | None
    reject_note: str | None
    public_answer: str | None
    satisfaction: Satisfaction | None
    rating_comment: str | None
    resolution: str | None
    resolved_at: Timestamp | None
    content_flag: str | None = Field(default=None, description="Staff only: review/unchecked")
    following: bool = False
    version: int
    created_at: Timestamp
    updated_at: Timestamp | None


class CaseDetail(CasePublic):
    timeline: list[CaseEventPublic] = Field(default_factory=list)


class SimilarCase(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "number": "20261120-0007",
                    "title": "翠苑社区东门路灯不亮",
                    "status": "handling",
                    "category_id": 3,
                    "region_id": 4,
                    "distance_m": 120.5,
                    "similarity": 0.72,
                    "created_at": "2026-11-20T10:15:00+08:00",
                }
            ]
        }
    )

    id: int
    number: str
    title: str
    status: CaseStatus
    category_id: int
    region_id: int
    distance_m: float | None = Field(default=None, description="When both have coordinates")
    similarity: float | None = Field(
        default=None, description="How alike the wording, place and category are (0–1), when alike"
    )
    created_at: Timestamp


class SimilarQuery(BaseModel):
    """A report being written, before it is submitted: is the same problem already open?"""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "东门的灯坏了",
                    "content": "翠苑一区东门那边路灯一直不亮，晚上很黑",
                    "category_id": 1,
                    "station_id": 2,
                    "latitude": 30.2803,
                    "longitude": 120.1321,
                }
            ]
        },
    )

    title: str = Field(min_length=2, max_length=100)
    content: str = Field(default="", max_length=5000)
    category_id: Id
    region_id: Id | None = Field(default=None, description="Or station_id")
    station_id: Id | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _where(self) -> SimilarQuery:
        if self.region_id is None and self.station_id is None:
            raise ValueError("give region_id or station_id")
        return self


class AlreadyReported(BaseModel):
    """An open case that reads like the report being written; its title is masked and its
    reporter never shown."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "20261120-0007",
                    "title": "翠苑一区东门路灯不亮",
                    "status": "handling",
                    "status_text": "办理中",
                    "similarity": 0.71,
                    "created_at": "2026-11-20T10:15:00+08:00",
                }
            ]
        }
    )

    number: str
    title: str
    status: CaseStatus
    status_text: str
    similarity: float
    created_at: Timestamp


DEADLINE_INPUT = (
    "ISO 8601 date and time, later than now. With an offset (`Z`, `+08:00`, ...) it is that "
    "moment; without one it is Asia/Shanghai time; a date alone is 00:00 of that day, so send "
    "`2026-10-13T23:59:59` for the end of a day. Answered as `2026-10-13T23:59:59+08:00`. "
    "422 `invalid_deadline` when not in the future"
)


class _Versioned(BaseModel):
    version: Version | None = Field(
        default=None,
        description="Optional: the case's version as read (or send If-Match). When sent and "
        "stale: 409 `version_conflict`; when omitted the step applies to the case as it is now "
        "(its status still decides whether the step is allowed)",
    )


class CaseAssign(_Versioned):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "unit_id": 2,
                    "co_unit_ids": [5],
                    "note": "请尽快现场查看并答复群众",
                    "internal_note": "居民多次反映",
                    "version": 1,
                }
            ]
        },
    )

    unit_id: Id
    deadline: Timestamp | None = Field(
        default=None,
        description="Default: the category's working days, official calendar, to 23:59:59 "
        "Shanghai time. " + DEADLINE_INPUT,
    )
    co_unit_ids: list[Id] = Field(default_factory=list, max_length=10)
    note: str | None = Field(default=None, max_length=1000, description="Public")
    internal_note: str | None = Field(default=None, max_length=2000)


class CaseTransfer(_Versioned):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"unit_id": 5, "note": "属街道职责，转东湖街道办事处", "version": 2}]
        },
    )

    unit_id: Id
    deadline: Timestamp | None = Field(
        default=None, description="Default: the deadline stays. " + DEADLINE_INPUT
    )
    co_unit_ids: list[Id] | None = Field(default=None, max_length=10)
    note: str | None = Field(default=None, max_length=1000)
    internal_note: str | None = Field(default=None, max_length=2000)


class CaseReject(_Versioned):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reason_code": "not_in_remit",
                    "note": "该事项属于司法程序，请通过法院诉讼途径解决",
                    "version": 1,
                }
            ]
        },
    )

    reason_code: RejectReason
    note: str = Field(min_length=2, max_length=1000, description="The resident reads this")
    internal_note: str | None = Field(default=None, max_length=2000)


class CaseMerge(_Versioned):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"into_case_id": 10, "note": "同一问题", "version": 1}]},
    )

    into_case_id: Id
    note: str | None = Field(default=None, max_length=1000)


class CaseSupervise(_Versioned):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "请于本周内答复", "version": 2}]},
    )

    note: str = Field(min_length=2, max_length=1000)


class CaseSendBack(_Versioned):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "该路段属市政公司管养，不属本单位职责"}]},
    )

    reason: str = Field(min_length=2, max_length=1000)


class CaseReply(_Versioned):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "public_answer": "已于10月9日更换灯具，恢复照明。感谢您的反映！",
                    "internal_note": "维修工单 LD-2026-118",
                }
            ]
        },
    )

    public_answer: str = Field(min_length=2, max_length=5000)
    internal_note: str | None = Field(default=None, max_length=2000)


class CaseRate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"satisfaction": "satisfied", "comment": "修得很快"}]},
    )

    satisfaction: Satisfaction
    comment: str | None = Field(default=None, max_length=1000)


class CaseReopen(_Versioned):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "灯又坏了", "deadline": None}]},
    )

    reason: str = Field(min_length=2, max_length=1000)
    deadline: Timestamp | None = Field(
        default=None,
        description="Staff only. Default: the category's working days. " + DEADLINE_INPUT,
    )


class CaseResolve(_Versioned):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "电话回访，群众表示认可", "version": 4}]},
    )

    note: str | None = Field(default=None, max_length=1000)


class CaseUpdate(_Versioned):
    """Staff corrections while the case is registered or handling."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"category_id": 4, "title": "东门路灯不亮", "version": 1}]},
    )

    title: str | None = Field(default=None, min_length=2, max_length=100)
    category_id: Id | None = None
    region_id: Id | None = None
    deadline: Timestamp | None = Field(default=None, description=DEADLINE_INPUT)
    note: str | None = Field(default=None, max_length=1000, description="Internal")


class RoutingRuleCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"category_id": 3, "region_id": 2, "unit_id": 2}]},
    )

    category_id: Id
    region_id: Id
    unit_id: Id


class RoutingRulePublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "category_id": 3,
                    "region_id": 2,
                    "unit_id": 2,
                    "created_at": "2026-11-22T09:00:00+08:00",
                }
            ]
        },
    )

    id: int
    category_id: int
    region_id: int
    unit_id: int
    created_at: Timestamp


class DeputyCode(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"deputy_id": 1, "scene": "d.1.Xc9aQ2LmZp0w", "page": "pages/case/new"}]
        }
    )

    deputy_id: int
    scene: str
    page: str


class DeputyCard(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"deputy_id": 1, "name": "王建国", "level": "district"}]}
    )

    deputy_id: int
    name: str
    level: str


QrFormat = Literal["png", "json"]
