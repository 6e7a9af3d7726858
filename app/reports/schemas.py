"""Request and response bodies of reports and evaluations."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app.attachments.schemas import AttachmentPublic
from app.core.times import Timestamp
from app.core.types import MAX_ID, Id
from app.org.schemas import _Body
from app.reports.models import Rating, ReportStatus


class ReportCreate(_Body):
    """`deputy_id` is the caller's own when a deputy writes it; staff name the deputy. The
    constituency defaults to the deputy's region."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "deputy_id": 3,
                    "year": 2026,
                    "title": "王建国代表2026年度述职报告",
                    "content": "一年来，本人参加视察调研6次，接待选民42人次……",
                    "region_id": 4,
                    "station_ids": [12],
                    "activity_id": 9,
                    "attachment_ids": [51],
                    "publish": True,
                    "evaluation_closes_at": "2026-12-31T23:59:59+08:00",
                }
            ]
        }
    )

    deputy_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    year: int = Field(ge=2000, le=2199)
    title: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1, max_length=20000)
    region_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    station_ids: list[Id] = Field(default_factory=list, max_length=50)
    activity_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    attachment_ids: list[Id] = Field(default_factory=list, max_length=20)
    publish: bool = False
    evaluation_closes_at: AwareDatetime | None = None

    @field_validator("station_ids", "attachment_ids")
    @classmethod
    def _ids(cls, value: list[int]) -> list[int]:
        return list(dict.fromkeys(value))


class ReportUpdate(_Body):
    """Only the fields sent change; `status: published` publishes a draft (once)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "published"}, {"content": "修订后的报告全文"}]}
    )

    title: str | None = Field(default=None, min_length=1, max_length=100)
    content: str | None = Field(default=None, min_length=1, max_length=20000)
    station_ids: list[Id] | None = Field(default=None, max_length=50)
    activity_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    status: ReportStatus | None = None
    evaluation_closes_at: AwareDatetime | None = None

    @field_validator("station_ids")
    @classmethod
    def _ids(cls, value: list[int] | None) -> list[int] | None:
        return None if value is None else list(dict.fromkeys(value))


class ReportResults(BaseModel):
    total: int
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    satisfaction_rate: float | None = Field(
        description="(satisfied + basically satisfied) / total; null without evaluations"
    )


class ReportPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 5,
                    "deputy_id": 3,
                    "deputy_name": "王建国",
                    "year": 2026,
                    "term": "第十八届",
                    "title": "王建国代表2026年度述职报告",
                    "region_id": 4,
                    "station_ids": [12],
                    "activity_id": 9,
                    "status": "published",
                    "published_at": "2026-12-03T10:00:00+08:00",
                    "evaluation_closes_at": "2026-12-31T23:59:59+08:00",
                }
            ]
        }
    )

    id: int
    deputy_id: int
    deputy_name: str
    year: int
    term: str | None
    title: str
    region_id: int
    station_ids: list[int]
    activity_id: int | None
    status: ReportStatus
    published_at: Timestamp | None
    evaluation_closes_at: Timestamp | None


class MyEvaluation(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rating": "basically_satisfied",
                    "comment": "希望多关注老旧小区停车问题",
                    "created_at": "2026-12-03T11:10:00+08:00",
                }
            ]
        }
    )

    rating: Rating
    comment: str | None
    created_at: Timestamp


class ReportDetail(ReportPublic):
    content: str
    attachments: list[AttachmentPublic] = Field(default_factory=list)
    can_manage: bool = False
    my_evaluation: MyEvaluation | None = None
    results: ReportResults | None = Field(
        default=None, description="For staff and the deputy: counts and the satisfaction rate"
    )


class EvaluationCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"rating": "satisfied"},
                {"rating": "basically_satisfied", "comment": "希望多关注老旧小区停车问题"},
            ]
        }
    )

    rating: Rating
    comment: str | None = Field(default=None, max_length=500)


class EvaluationPublic(BaseModel):
    id: int
    rating: Rating
    comment: str | None
    content_flag: str | None
    resident: str | None = Field(description="The resident's nickname, masked")
    created_at: Timestamp


class EvaluationSheet(BaseModel):
    """Results and comments, for staff."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "report_id": 5,
                    "results": {
                        "total": 40,
                        "satisfied": 31,
                        "basically_satisfied": 7,
                        "dissatisfied": 2,
                        "satisfaction_rate": 0.95,
                    },
                    "items": [
                        {
                            "id": 88,
                            "rating": "basically_satisfied",
                            "comment": "希望多关注停车问题",
                            "content_flag": None,
                            "resident": "张**",
                            "created_at": "2026-12-03T11:10:00+08:00",
                        }
                    ],
                    "total": 40,
                }
            ]
        }
    )

    report_id: int
    results: ReportResults
    items: list[EvaluationPublic]
    total: int
