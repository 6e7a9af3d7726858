"""A deputy's report to the voters (述职报告) and the residents' evaluations of it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel, UniqueConstraint

from app.core.models import created_at_field, enum_field, timestamp_field


class ReportStatus(StrEnum):
    draft = "draft"
    published = "published"


class Rating(StrEnum):
    satisfied = "satisfied"  # 满意
    basically_satisfied = "basically_satisfied"  # 基本满意
    dissatisfied = "dissatisfied"  # 不满意


class DeputyReport(SQLModel, table=True):
    """One report per deputy and year, published for a constituency: a region's subtree and
    the regions of `station_ids`."""

    __tablename__ = "deputy_report"
    __table_args__ = (UniqueConstraint("deputy_id", "year"),)

    id: int | None = Field(default=None, primary_key=True)
    deputy_id: int = Field(foreign_key="deputy.id", index=True)
    year: int
    # The deputy's term (届次) when the report was made: "not reported this term" compares it.
    term: str | None = Field(default=None, max_length=50)
    title: str = Field(max_length=100)
    content: str = Field(max_length=20000)
    region_id: int = Field(foreign_key="region.id", index=True)
    station_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    activity_id: int | None = Field(default=None, foreign_key="activity.id")
    status: ReportStatus = enum_field(ReportStatus.draft, length=20)
    published_at: datetime | None = timestamp_field()
    evaluation_closes_at: datetime | None = timestamp_field()
    created_by_user_id: int = Field(foreign_key="user.id")
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class DeputyReportEvaluation(SQLModel, table=True):
    """One evaluation per account and report: the unique key settles double taps and races."""

    __tablename__ = "deputy_report_evaluation"
    __table_args__ = (UniqueConstraint("report_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="deputy_report.id")
    user_id: int = Field(foreign_key="user.id", index=True)
    rating: Rating = enum_field(length=30)
    comment: str | None = Field(default=None, max_length=500)
    # review / unchecked from the content check; None when it passed.
    content_flag: str | None = Field(default=None, sa_type=sa.String(20))
    created_at: datetime = created_at_field()
