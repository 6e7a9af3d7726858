"""Request and response bodies of the dashboard: manual acts, statistics, the duty archive."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.times import Timestamp
from app.core.types import Version
from app.dashboard.models import ManualActKind

# --- Manual acts -----------------------------------------------------------------------------


def _in_years(value: date | None) -> date | None:
    if value is not None and not (2000 <= value.year <= 2100):
        raise ValueError("must be between 2000 and 2100")
    return value


class ManualActCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "inspection",
                    "title": "视察区老旧小区加装电梯工作",
                    "occurred_on": "2026-04-18",
                    "hours": 3,
                    "location": "示例区甲街道",
                    "note": "区人大常委会组织",
                }
            ]
        },
    )

    kind: ManualActKind = Field(
        description="inspection 视察, training 培训, meeting 会议, research 调研, other 其他"
    )
    title: str = Field(min_length=1, max_length=200)
    occurred_on: date = Field(description="The day it happened (Asia/Shanghai)")
    hours: float | None = Field(default=None, ge=0, le=24 * 31)
    location: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)

    _day = field_validator("occurred_on")(_in_years)


class ManualActUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"title": "视察加装电梯工作（补记）", "version": 1}]},
    )

    kind: ManualActKind | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    occurred_on: date | None = None
    hours: float | None = Field(default=None, ge=0, le=24 * 31)
    location: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)
    version: Version | None = Field(
        default=None,
        description="The version read; a stale one gets 409 version_conflict",
    )

    _day = field_validator("occurred_on")(_in_years)

    @model_validator(mode="after")
    def _required_stay_set(self) -> ManualActUpdate:
        for name in ("kind", "title", "occurred_on"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ManualActPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "deputy_id": 12,
                    "kind": "inspection",
                    "title": "视察区老旧小区加装电梯工作",
                    "occurred_on": "2026-04-18",
                    "hours": 3.0,
                    "location": "示例区甲街道",
                    "note": "区人大常委会组织",
                    "created_by_user_id": 3,
                    "created_at": "2026-04-19T17:12:00+08:00",
                    "updated_at": None,
                    "version": 1,
                }
            ]
        },
    )

    id: int
    deputy_id: int
    kind: ManualActKind
    title: str
    occurred_on: date
    hours: float | None
    location: str | None
    note: str | None
    created_by_user_id: int | None
    created_at: Timestamp
    updated_at: Timestamp | None
    version: int


# --- Statistics ------------------------------------------------------------------------------

RATE_DOCS = {
    "response": (
        "按期答复率 Response rate: of the cases whose deadline falls in the range and has "
        "passed or been met by a reply, the share answered (fed back) on or before the deadline."
    ),
    "resolution": (
        "办结率 Resolution rate: of the cases registered in the range and accepted (not rejected, "
        "not merged), the share now resolved."
    ),
    "satisfaction": (
        "满意率 Satisfaction rate: of the cases registered in the range that were rated, the "
        "share rated satisfied or basically satisfied."
    ),
}


class Rate(BaseModel):
    rate: float | None = Field(
        description="numerator / denominator in [0, 1]; null when the denominator is 0",
        examples=[0.8],
    )
    numerator: int
    denominator: int


class Rates(BaseModel):
    response: Rate = Field(description=RATE_DOCS["response"])
    resolution: Rate = Field(description=RATE_DOCS["resolution"])
    satisfaction: Rate = Field(description=RATE_DOCS["satisfaction"])


class CaseFigures(BaseModel):
    new: int = Field(description="Cases registered in the range")
    by_status: dict[str, int] = Field(
        description="The cases registered in the range, by their status now"
    )
    overdue: int = Field(
        description="Of the cases registered in the range, those waiting for the unit's reply "
        "(registered or handling) with their deadline passed"
    )
    under_supervision: int = Field(
        description="Of the cases registered in the range, those marked for supervision (督办)"
    )
    open_now: int = Field(
        description="All open cases in scope now (registered, handling, fed back), any date"
    )
    overdue_now: int = Field(description="All cases in scope overdue now, any date")
    under_supervision_now: int = Field(description="Open cases in scope under supervision now")


class WishFigures(BaseModel):
    new: int = Field(description="Wishes posted in the range")
    by_status: dict[str, int] = Field(description="The wishes posted in the range, by status now")
    claimed: int = Field(description="Wishes claimed in the range (still held by the claimer)")
    fulfilled: int = Field(description="Wishes reported fulfilled in the range")


class PresenceFigures(BaseModel):
    checkins: int = Field(description="Check-ins made in the range at stations in scope")
    deputies_checked_in: int = Field(description="Distinct deputies among them")
    duty_hours: float = Field(
        description="Hours between check-in and check-out; check-ins closed automatically "
        "(the deputy never checked out) are not counted"
    )
    auto_closed: int = Field(description="Check-ins closed automatically")
    checkins_on_duty: int = Field(description="Check-ins that matched a duty slot")
    duty_assignments: int = Field(
        description="Deputy duty slots on the roster starting in the range"
    )
    duty_assignments_attended: int = Field(
        description="Of those, the ones the deputy checked in for"
    )
    attendance_rate: float | None = Field(description="attended / assignments, null if none")
    receptions: int = Field(description="Residents received in the range")


class OverviewStats(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "region_id": 1,
                    "from": "2026-11-01",
                    "to": "2026-11-30",
                    "cases": {
                        "new": 120,
                        "by_status": {
                            "registered": 10,
                            "handling": 30,
                            "fed_back": 15,
                            "resolved": 60,
                            "rejected": 4,
                            "merged": 1,
                        },
                        "overdue": 6,
                        "under_supervision": 3,
                        "open_now": 80,
                        "overdue_now": 9,
                        "under_supervision_now": 4,
                    },
                    "wishes": {
                        "new": 25,
                        "by_status": {
                            "pending_review": 2,
                            "published": 5,
                            "claimed": 6,
                            "fulfilled": 4,
                            "completed": 7,
                            "rejected": 1,
                            "withdrawn": 0,
                            "expired": 0,
                        },
                        "claimed": 12,
                        "fulfilled": 11,
                    },
                    "presence": {
                        "checkins": 340,
                        "deputies_checked_in": 58,
                        "duty_hours": 812.5,
                        "auto_closed": 7,
                        "checkins_on_duty": 290,
                        "duty_assignments": 300,
                        "duty_assignments_attended": 281,
                        "attendance_rate": 0.9367,
                        "receptions": 415,
                    },
                    "rates": {
                        "response": {"rate": 0.9, "numerator": 54, "denominator": 60},
                        "resolution": {"rate": 0.5128, "numerator": 60, "denominator": 117},
                        "satisfaction": {"rate": 0.95, "numerator": 57, "denominator": 60},
                    },
                }
            ]
        },
    )

    region_id: int | None = Field(description="The region counted (null: everything, admins)")
    from_: date = Field(alias="from")
    to: date
    cases: CaseFigures
    wishes: WishFigures
    presence: PresenceFigures
    rates: Rates


class CaseGroup(BaseModel):
    key: int | str | None = Field(
        description="Category, unit, region or station id (null: none, e.g. not yet assigned), "
        "or the first day of the day/week/month"
    )
    label: str | None = Field(default=None, description="Its name")
    total: int = 0
    open: int = 0
    resolved: int = 0
    overdue: int = 0
    rated: int = 0
    satisfied: int = Field(default=0, description="Rated satisfied or basically satisfied")
    resolution_rate: float | None = None
    satisfaction_rate: float | None = None
    avg_response_hours: float | None = Field(
        default=None, description="Mean hours from registration to the unit's reply"
    )
    p90_response_hours: float | None = Field(
        default=None, description="90th percentile (continuous) of the same"
    )
    avg_resolution_hours: float | None = Field(
        default=None, description="Mean hours from registration to resolution"
    )
    p90_resolution_hours: float | None = None


class UnitRank(BaseModel):
    rank: int
    unit_id: int
    name: str | None
    total: int
    overdue: int
    rated: int
    satisfaction_rate: float | None


class CaseStats(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "region_id": 1,
                    "from": "2026-11-01",
                    "to": "2026-11-30",
                    "group_by": "unit",
                    "groups": [
                        {
                            "key": 3,
                            "label": "区住建委",
                            "total": 40,
                            "open": 12,
                            "resolved": 26,
                            "overdue": 2,
                            "rated": 20,
                            "satisfied": 19,
                            "resolution_rate": 0.65,
                            "satisfaction_rate": 0.95,
                            "avg_response_hours": 51.2,
                            "p90_response_hours": 120.0,
                            "avg_resolution_hours": 160.4,
                            "p90_resolution_hours": 300.5,
                        }
                    ],
                    "units_by_overdue": [
                        {
                            "rank": 1,
                            "unit_id": 3,
                            "name": "区住建委",
                            "total": 40,
                            "overdue": 2,
                            "rated": 20,
                            "satisfaction_rate": 0.95,
                        }
                    ],
                    "units_by_satisfaction": [],
                }
            ]
        },
    )

    region_id: int | None
    from_: date = Field(alias="from")
    to: date
    group_by: str
    groups: list[CaseGroup]
    units_by_overdue: list[UnitRank] = Field(
        description="Units leading cases registered in the range, most overdue first"
    )
    units_by_satisfaction: list[UnitRank] = Field(
        description="Units with rated cases, highest satisfaction rate first"
    )


# --- Deputies --------------------------------------------------------------------------------


class DeputyActivity(BaseModel):
    deputy_id: int
    name: str
    level: str
    region_id: int | None
    checkins: int = Field(description="Check-ins in the range, at any station")
    checkins_on_duty: int = Field(description="Of those, matched to one of their duty slots")
    duty_hours: float = Field(description="Hours checked in (automatically closed not counted)")
    duty_assignments: int = Field(description="Their duty slots on the roster in the range")
    duty_assignments_attended: int = Field(description="Of those, attended (checked in)")
    attendance_rate: float | None = Field(description="attended / assignments; null if none")
    receptions: int
    cases_submitted: int = Field(description="Cases the deputy's account submitted")
    cases_followed: int = Field(description="Cases the deputy started following")
    wishes_claimed: int
    wishes_fulfilled: int
    manual_acts: int = Field(description="Inspections, trainings, meetings, research (staff)")
    activities_attended: int = Field(
        default=0, description="Activities (代表活动) attended, as recorded at the activity"
    )
    activities_absent: int = Field(
        default=0, description="Activities over and missed without approved leave"
    )
    reported_this_term: bool = Field(
        default=False, description="Has published a report to the voters in the current term"
    )
    suggestions_led: int = Field(default=0, description="Deputies' suggestions submitted as author")
    suggestions_cosigned: int = Field(default=0, description="Deputies' suggestions co-signed")
    last_active_at: Timestamp | None = Field(description="Latest recorded act, any date")
    inactive: bool = Field(
        description="No recorded act since `inactive_since`: a candidate for a talk (约谈)"
    )


class DeputyStats(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "region_id": 1,
                    "from": "2026-11-01",
                    "to": "2026-11-30",
                    "inactive_months": 6,
                    "inactive_since": "2026-05-22",
                    "inactive_total": 3,
                    "total": 42,
                    "items": [
                        {
                            "deputy_id": 12,
                            "name": "王芳",
                            "level": "district",
                            "region_id": 2,
                            "checkins": 6,
                            "checkins_on_duty": 5,
                            "duty_hours": 17.5,
                            "duty_assignments": 5,
                            "duty_assignments_attended": 5,
                            "attendance_rate": 1.0,
                            "receptions": 14,
                            "cases_submitted": 3,
                            "cases_followed": 2,
                            "wishes_claimed": 1,
                            "wishes_fulfilled": 1,
                            "manual_acts": 2,
                            "last_active_at": "2026-11-28T10:10:00+08:00",
                            "inactive": False,
                        }
                    ],
                }
            ]
        },
    )

    region_id: int | None
    from_: date = Field(alias="from")
    to: date
    inactive_months: int = Field(description="settings.inactive_deputy_months")
    inactive_since: date = Field(description="Cut-off: no act on or after this day → inactive")
    inactive_total: int = Field(description="Inactive deputies in scope (约谈 candidates)")
    items: list[DeputyActivity]
    total: int


# --- Duty archive ----------------------------------------------------------------------------


class ArchiveCheckIn(BaseModel):
    id: int
    station_id: int
    station_name: str
    checked_in_at: Timestamp
    checked_out_at: Timestamp | None
    hours: float | None = Field(description="null while open or when closed automatically")
    auto_closed: bool
    duty_slot_id: int | None = Field(description="The duty slot it attended, if any")


class ArchiveDutySlot(BaseModel):
    slot_id: int
    station_id: int
    station_name: str
    starts_at: Timestamp
    ends_at: Timestamp
    attended: bool


class ArchiveReception(BaseModel):
    id: int
    station_id: int
    station_name: str
    received_at: Timestamp
    topic: str
    case_id: int | None = Field(description="The case the reception became, if any")


class ArchiveCase(BaseModel):
    id: int
    number: str | None
    title: str
    status: str
    created_at: Timestamp
    fed_back_at: Timestamp | None
    resolved_at: Timestamp | None
    satisfaction: str | None = Field(
        description="satisfied / basically_satisfied / dissatisfied, null if not rated"
    )
    followed_at: Timestamp | None = Field(default=None, description="Followed cases only")


class ArchiveWish(BaseModel):
    id: int
    title: str
    status: str
    claimed_at: Timestamp | None
    fulfilled_at: Timestamp | None
    completed_at: Timestamp | None
    rating: int | None
    claimed_in_year: bool
    fulfilled_in_year: bool


class ArchiveSuggestion(BaseModel):
    """A deputy's suggestion (代表建议) submitted in the year, led or co-signed."""

    id: int
    number: str | None
    title: str
    status: str
    role: str = Field(description="lead (领衔) or co_signer (附议)")
    submitted_at: Timestamp
    evaluation: str | None


class ArchiveTotals(BaseModel):
    checkins: int
    duty_hours: float
    duty_slots: int = Field(description="Duty slots on the roster in the year")
    duty_slots_attended: int
    receptions: int
    cases_submitted: int
    cases_followed: int
    cases_resolved: int = Field(description="Of the cases submitted or followed, resolved now")
    wishes_claimed: int
    wishes_fulfilled: int
    manual_acts: dict[str, int] = Field(
        description="By kind: inspection, training, meeting, research, other"
    )
    suggestions_led: int = Field(default=0, description="Suggestions submitted as the author")
    suggestions_cosigned: int = Field(default=0, description="Suggestions co-signed")
    activities_present: int = Field(default=0, description="Activities attended (出席)")
    activities_excused: int = Field(default=0, description="Activities on approved leave (请假)")
    activities_absent: int = Field(
        default=0, description="Activities over and missed without approved leave (缺席)"
    )
    reports: int = Field(default=0, description="Published reports to the voters (述职)")
    consultation_comments: int = Field(default=0, description="Comments on draft laws")


class ArchiveActivity(BaseModel):
    """An activity (代表活动) the deputy was invited to or recorded at, as the system recorded it."""

    activity_id: int
    kind: str
    kind_label: str | None
    title: str
    starts_at: Timestamp
    status: str = Field(description="present, excused or absent")
    source: str | None = Field(description="scan, staff, or null when derived (leave, absence)")


class ArchiveReport(BaseModel):
    """The deputy's published report to the voters (述职报告) of the year and its evaluation."""

    report_id: int
    year: int
    title: str
    published_at: Timestamp | None
    total: int = Field(description="Evaluations")
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    satisfaction_rate: float | None


class ArchiveConsultationComment(BaseModel):
    """A comment the deputy made on a draft law (立法意见征集) and what became of it."""

    comment_id: int
    consultation_id: int
    title: str
    article_no: int | None
    created_at: Timestamp
    outcome: str | None


class ScoreLine(BaseModel):
    kind: str
    label: str
    count: float
    weight: float
    points: float


class Score(BaseModel):
    total: float
    breakdown: list[ScoreLine]


class Archive(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "deputy_id": 12,
                    "name": "王芳",
                    "level": "district",
                    "year": 2026,
                    "checkins": [
                        {
                            "id": 301,
                            "station_id": 4,
                            "station_name": "甲社区代表联络站",
                            "checked_in_at": "2026-06-10T09:05:00+08:00",
                            "checked_out_at": "2026-06-10T11:35:00+08:00",
                            "hours": 2.5,
                            "auto_closed": False,
                            "duty_slot_id": 88,
                        }
                    ],
                    "duty_slots": [
                        {
                            "slot_id": 88,
                            "station_id": 4,
                            "station_name": "甲社区代表联络站",
                            "starts_at": "2026-06-10T09:00:00+08:00",
                            "ends_at": "2026-06-10T12:00:00+08:00",
                            "attended": True,
                        }
                    ],
                    "receptions": [
                        {
                            "id": 51,
                            "station_id": 4,
                            "station_name": "甲社区代表联络站",
                            "received_at": "2026-06-10T10:00:00+08:00",
                            "topic": "停车难",
                            "case_id": 1024,
                        }
                    ],
                    "cases_submitted": [
                        {
                            "id": 1024,
                            "number": "20260610-1024",
                            "title": "小区停车难",
                            "status": "resolved",
                            "created_at": "2026-06-10T10:10:00+08:00",
                            "fed_back_at": "2026-06-15T16:00:00+08:00",
                            "resolved_at": "2026-06-16T09:00:00+08:00",
                            "satisfaction": "satisfied",
                            "followed_at": None,
                        }
                    ],
                    "cases_followed": [],
                    "wishes": [],
                    "manual_acts": [],
                    "totals": {
                        "checkins": 1,
                        "duty_hours": 2.5,
                        "duty_slots": 1,
                        "duty_slots_attended": 1,
                        "receptions": 1,
                        "cases_submitted": 1,
                        "cases_followed": 0,
                        "cases_resolved": 1,
                        "wishes_claimed": 0,
                        "wishes_fulfilled": 0,
                        "manual_acts": {
                            "inspection": 0,
                            "training": 0,
                            "meeting": 0,
                            "research": 0,
                            "other": 0,
                        },
                    },
                    "score": {
                        "total": 19.25,
                        "breakdown": [
                            {
                                "kind": "checkin",
                                "label": "进站签到",
                                "count": 1,
                                "weight": 1.0,
                                "points": 1.0,
                            }
                        ],
                    },
                }
            ]
        }
    )

    deputy_id: int
    name: str
    level: str
    year: int
    checkins: list[ArchiveCheckIn]
    duty_slots: list[ArchiveDutySlot]
    receptions: list[ArchiveReception]
    cases_submitted: list[ArchiveCase]
    cases_followed: list[ArchiveCase]
    wishes: list[ArchiveWish] = Field(description="Wishes claimed or fulfilled in the year")
    manual_acts: list[ManualActPublic]
    activities: list[ArchiveActivity] = Field(
        default_factory=list, description="Activities of the year, recorded where they happened"
    )
    reports: list[ArchiveReport] = Field(
        default_factory=list, description="The year's published report to the voters, evaluated"
    )
    consultation_comments: list[ArchiveConsultationComment] = Field(
        default_factory=list, description="Comments on draft laws made in the year"
    )
    suggestions: list[ArchiveSuggestion] = Field(
        default_factory=list, description="Deputies' suggestions submitted in the year"
    )
    totals: ArchiveTotals
    score: Score = Field(
        description="Σ count × weight; weights from settings.dashboard_score_weights"
    )
