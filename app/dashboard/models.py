"""Acts of a deputy that happen outside the system, added to the duty archive by staff."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from app.core.models import created_at_field, enum_field, timestamp_field


class ManualActKind(StrEnum):
    inspection = "inspection"  # 视察
    training = "training"  # 培训
    meeting = "meeting"  # 会议
    research = "research"  # 调研
    other = "other"  # 其他


MANUAL_ACT_LABELS: dict[str, str] = {
    ManualActKind.inspection: "视察",
    ManualActKind.training: "培训",
    ManualActKind.meeting: "会议",
    ManualActKind.research: "调研",
    ManualActKind.other: "其他",
}


class ManualAct(SQLModel, table=True):
    """An act recorded by staff in a deputy's duty archive (履职档案): an inspection, a
    training, a meeting or a research visit that left no trace in the system itself.
    The deputy sees it in their archive; it counts towards the yearly score."""

    __tablename__ = "manual_act"
    __table_args__ = (Index("ix_manual_act_deputy_occurred", "deputy_id", "occurred_on"),)

    id: int | None = Field(default=None, primary_key=True)
    deputy_id: int = Field(foreign_key="deputy.id")
    kind: ManualActKind = enum_field(length=20)
    title: str = Field(max_length=200)
    # The day it happened, in Asia/Shanghai: the archive year is taken from it.
    occurred_on: date
    hours: float | None = Field(default=None)
    location: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)
    created_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()
    version: int = Field(default=1)
