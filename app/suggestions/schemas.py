"""What the suggestion endpoints take and answer."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.cases.models import CaseStatus, Satisfaction
from app.core.times import Timestamp
from app.core.types import MAX_ID
from app.suggestions.models import SuggestionStatus

Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class SuggestionCreate(BaseModel):
    """From a hotspot or from chosen cases (exactly one of them): the answer is a draft
    written from those cases."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"hotspot_id": 12, "co_signer_ids": [5, 8]}, {"case_ids": [101, 102]}]
        },
    )

    hotspot_id: Id | None = None
    case_ids: list[Id] | None = Field(default=None, min_length=1, max_length=500)
    co_signer_ids: list[Id] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _one_source(self) -> SuggestionCreate:
        if (self.hotspot_id is None) == (self.case_ids is None):
            raise ValueError("give either hotspot_id or case_ids")
        return self


class SuggestionUpdate(BaseModel):
    """The deputy's edit of a draft; `version` is the one read (or send If-Match)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"title": "关于翠苑一区路灯长期不亮的建议", "content": "……", "version": 1}]
        },
    )

    title: str | None = Field(default=None, min_length=4, max_length=100)
    content: str | None = Field(default=None, min_length=10, max_length=10_000)
    co_signer_ids: list[Id] | None = Field(default=None, max_length=50)
    version: int | None = Field(default=None, ge=1, le=MAX_ID)


class SuggestionAssign(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lead_unit_id": 3,
                    "co_unit_ids": [4],
                    "deadline_days": 30,
                    "note": "请会同街道办理",
                }
            ]
        },
    )

    lead_unit_id: Id
    co_unit_ids: list[Id] = Field(default_factory=list, max_length=20)
    deadline_days: int | None = Field(
        default=None, ge=1, le=365, description="Working days; default SUGGESTION_DEADLINE_DAYS"
    )
    note: str | None = Field(default=None, max_length=1000)


class SuggestionNote(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"note": "请于本周内答复"}]}
    )

    note: str | None = Field(default=None, max_length=1000)


class SuggestionReply(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"reply": "已完成翠苑一区路灯线路改造，12盏路灯全部恢复照明。"}]
        },
    )

    reply: str = Field(min_length=5, max_length=5000)


class SuggestionEvaluate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"satisfaction": "basically_satisfied", "comment": "已修复，望长效管理"}]
        },
    )

    satisfaction: Satisfaction
    comment: str | None = Field(default=None, max_length=1000)


class SuggestionRehandle(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "只修了两盏，其余仍不亮"}]},
    )

    reason: str = Field(min_length=2, max_length=1000)


class ConsultationCreate(BaseModel):
    """面商: when and where the unit met the deputy, who came, what was agreed. Staff name
    the unit; a unit handler records for their own unit."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "held_at": "2026-11-25T10:00:00+08:00",
                    "place": "翠苑社区代表联络站",
                    "participants": "王建国代表、区城管局李科长",
                    "summary": "商定12月底前完成线路改造",
                }
            ]
        },
    )

    held_at: Timestamp
    place: str | None = Field(default=None, max_length=200)
    participants: str | None = Field(default=None, max_length=500)
    summary: str = Field(min_length=2, max_length=5000)
    unit_id: Id | None = None


class Ref(BaseModel):
    id: int
    name: str


class SuggestionCaseRef(BaseModel):
    id: int
    number: str | None
    title: str = Field(description="Masked")
    status: CaseStatus
    created_at: Timestamp


class SuggestionEventPublic(BaseModel):
    action: str
    from_status: str | None
    to_status: str | None
    actor_role: str
    note: str | None
    data: dict[str, Any]
    created_at: Timestamp


class ConsultationPublic(BaseModel):
    id: int
    unit: Ref
    held_at: Timestamp
    place: str | None
    participants: str | None
    summary: str
    created_at: Timestamp


class SuggestionPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "number": "2026-0003",
                    "title": "关于解决“翠苑一区东门路灯不亮”问题的建议",
                    "status": "assigned",
                    "deputy": {"id": 1, "name": "王建国"},
                    "hotspot_id": 12,
                    "region_id": 4,
                    "case_count": 9,
                    "lead_unit": {"id": 3, "name": "区城市管理局"},
                    "deadline_at": "2027-02-26T23:59:59+08:00",
                    "evaluation": None,
                    "rehandle_count": 0,
                    "version": 4,
                    "created_at": "2026-11-20T16:00:00+08:00",
                }
            ]
        }
    )

    id: int
    number: str | None
    title: str
    status: SuggestionStatus
    deputy: Ref
    hotspot_id: int | None
    region_id: int
    case_count: int
    lead_unit: Ref | None
    deadline_at: Timestamp | None
    evaluation: Satisfaction | None
    rehandle_count: int
    version: int
    created_at: Timestamp


class SuggestionDetail(SuggestionPublic):
    content: str
    co_signers: list[Ref]
    co_units: list[Ref]
    cases: list[SuggestionCaseRef]
    reply: str | None
    replied_at: Timestamp | None
    evaluation_comment: str | None
    submitted_at: Timestamp | None
    registered_at: Timestamp | None
    assigned_at: Timestamp | None
    supervised_count: int
    consultations: list[ConsultationPublic]
    timeline: list[SuggestionEventPublic]
    can: list[str] = Field(description="Workflow actions the caller may take now")


class UnitAssessmentRow(BaseModel):
    rank: int
    unit: Ref
    score: float
    cases_handled: int
    cases_on_time: int
    case_first_reply_hours: float | None
    residents_rated: int
    resident_satisfaction_rate: float | None
    reopened: int
    sent_back: int
    suggestions_handled: int
    suggestions_on_time: int
    suggestion_first_reply_hours: float | None
    deputies_evaluated: int
    deputy_satisfaction_rate: float | None
    on_time_rate: float | None


class UnitAssessment(BaseModel):
    """承办单位考评 of a year: the ranking, and whether staff have published it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "year": 2026,
                    "published": False,
                    "published_at": None,
                    "units": [
                        {
                            "rank": 1,
                            "unit": {"id": 3, "name": "区城市管理局"},
                            "score": 91.5,
                            "cases_handled": 120,
                            "cases_on_time": 111,
                            "case_first_reply_hours": 52.4,
                            "residents_rated": 80,
                            "resident_satisfaction_rate": 0.93,
                            "reopened": 4,
                            "sent_back": 2,
                            "suggestions_handled": 6,
                            "suggestions_on_time": 6,
                            "suggestion_first_reply_hours": 380.0,
                            "deputies_evaluated": 5,
                            "deputy_satisfaction_rate": 1.0,
                            "on_time_rate": 0.93,
                        }
                    ],
                }
            ]
        }
    )

    year: int
    published: bool
    published_at: Timestamp | None
    units: list[UnitAssessmentRow]
