"""Draft laws put out for comment (立法意见征集) and the comments on them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from app.core.models import created_at_field, enum_field, timestamp_field


class ConsultationStatus(StrEnum):
    draft = "draft"
    published = "published"  # open for comment inside its window
    outcomes_published = "outcomes_published"  # every commenter was told (反馈)


class Outcome(StrEnum):
    adopted = "adopted"  # 采纳
    partly_adopted = "partly_adopted"  # 部分采纳
    not_adopted = "not_adopted"  # 未采纳


class Consultation(SQLModel, table=True):
    """A draft at some legislative contact points (基层立法联系点), or district-wide when
    `station_ids` is empty. `articles` is the list `[{"no": 1, "title": …, "text": …}]`."""

    __table_args__ = (sa.Index("ix_consultation_region_opens", "region_id", "opens_at"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    issuing_body: str = Field(max_length=100)
    summary: str | None = Field(default=None, max_length=5000)
    articles: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    region_id: int = Field(foreign_key="region.id")
    station_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    opens_at: datetime = timestamp_field(nullable=False)
    closes_at: datetime = timestamp_field(nullable=False)
    status: ConsultationStatus = enum_field(ConsultationStatus.draft, length=30)
    published_at: datetime | None = timestamp_field()
    outcomes_published_at: datetime | None = timestamp_field()
    created_by_user_id: int = Field(foreign_key="user.id")
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class ConsultationComment(SQLModel, table=True):
    """A comment on the whole draft (`article_no` null) or on one article, and its outcome."""

    __tablename__ = "consultation_comment"
    __table_args__ = (
        sa.Index("ix_consultation_comment_consultation_article", "consultation_id", "article_no"),
    )

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id")
    user_id: int = Field(foreign_key="user.id", index=True)
    # The deputy who wrote it, when a deputy did (for the duty archive).
    deputy_id: int | None = Field(default=None, foreign_key="deputy.id", index=True)
    # The contact point it came through (one of the consultation's), for the statistics.
    station_id: int | None = Field(default=None, foreign_key="station.id", index=True)
    article_no: int | None = None
    content: str = Field(max_length=2000)
    content_flag: str | None = Field(default=None, sa_type=sa.String(20))
    outcome: Outcome | None = Field(default=None, sa_type=sa.String(20))
    outcome_note: str | None = Field(default=None, max_length=1000)
    outcome_at: datetime | None = timestamp_field()
    outcome_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = created_at_field()
