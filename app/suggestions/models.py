"""Deputies' suggestions (代表建议): the suggestion, the cases it carries, its co-signers,
the units handling it, its timeline, face-to-face consultations and the yearly numbering."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.core.models import created_at_field, enum_field, timestamp_field


class SuggestionStatus(StrEnum):
    draft = "draft"  # 草稿: the deputy is still writing
    submitted = "submitted"  # 已提交
    registered = "registered"  # 已登记 (numbered for the year)
    assigned = "assigned"  # 已交办 (lead unit and co-units, a deadline)
    replied = "replied"  # 已答复
    evaluated = "evaluated"  # 已评价


class SuggestionAction(StrEnum):
    create = "create"
    edit = "edit"
    submit = "submit"  # 提交
    register = "register"  # 登记
    assign = "assign"  # 交办
    supervise = "supervise"  # 督办
    reply = "reply"  # 答复
    evaluate = "evaluate"  # 评价
    rehandle = "rehandle"  # 要求重新办理
    consult = "consult"  # 面商


class Suggestion(SQLModel, table=True):
    __table_args__ = (Index("ix_suggestion_status_deadline", "status", "deadline_at"),)

    id: int | None = Field(default=None, primary_key=True)
    # "2026-0001": the year of registration and its sequence (see SuggestionCounter).
    number: str | None = Field(default=None, max_length=20, unique=True)
    year: int | None = Field(default=None, index=True)
    title: str = Field(max_length=100)
    content: str = Field(max_length=10_000)
    status: SuggestionStatus = enum_field(SuggestionStatus.draft, length=20, index=True)
    deputy_id: int = Field(foreign_key="deputy.id", index=True)
    author_id: int = Field(foreign_key="user.id")
    hotspot_id: int | None = Field(default=None, foreign_key="hotspot.id", index=True)
    # Where it is about (the cases' common region): staff of that subtree handle it.
    region_id: int = Field(foreign_key="region.id", index=True)
    lead_unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    assigned_at: datetime | None = timestamp_field()
    # Working days given at assignment; a rehandle gives as many again.
    deadline_days: int | None = None
    deadline_at: datetime | None = timestamp_field()
    calendar_fallback: bool = Field(default=False)
    supervised_count: int = Field(default=0)
    reply: str | None = Field(default=None, max_length=5000)
    first_replied_at: datetime | None = timestamp_field()
    replied_at: datetime | None = timestamp_field()
    evaluation: str | None = Field(default=None, max_length=30)  # a Satisfaction value
    evaluation_comment: str | None = Field(default=None, max_length=1000)
    evaluated_at: datetime | None = timestamp_field()
    rehandle_count: int = Field(default=0)
    submitted_at: datetime | None = timestamp_field()
    registered_at: datetime | None = timestamp_field()
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class SuggestionCase(SQLModel, table=True):
    """A resident's case the suggestion carries: its resident hears the answer."""

    __tablename__ = "suggestion_case"
    __table_args__ = (UniqueConstraint("suggestion_id", "case_id"),)

    id: int | None = Field(default=None, primary_key=True)
    suggestion_id: int = Field(foreign_key="suggestion.id", index=True)
    case_id: int = Field(foreign_key="case.id", index=True)


class SuggestionCoSigner(SQLModel, table=True):
    """A deputy who signs the suggestion with its author (附议代表)."""

    __tablename__ = "suggestion_co_signer"
    __table_args__ = (UniqueConstraint("suggestion_id", "deputy_id"),)

    id: int | None = Field(default=None, primary_key=True)
    suggestion_id: int = Field(foreign_key="suggestion.id", index=True)
    deputy_id: int = Field(foreign_key="deputy.id", index=True)


class SuggestionCoUnit(SQLModel, table=True):
    """A unit handling it besides the lead one (协办单位)."""

    __tablename__ = "suggestion_co_unit"
    __table_args__ = (UniqueConstraint("suggestion_id", "unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    suggestion_id: int = Field(foreign_key="suggestion.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)


class SuggestionEvent(SQLModel, table=True):
    """One line of a suggestion's timeline."""

    __tablename__ = "suggestion_event"

    id: int | None = Field(default=None, primary_key=True)
    suggestion_id: int = Field(foreign_key="suggestion.id", index=True)
    action: str = Field(max_length=30)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str | None = Field(default=None, max_length=20)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    actor_role: str = Field(max_length=20)
    note: str | None = Field(default=None, max_length=5000)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = created_at_field()


class SuggestionConsultation(SQLModel, table=True):
    """面商: a face-to-face consultation between a handling unit and the deputy."""

    __tablename__ = "suggestion_consultation"

    id: int | None = Field(default=None, primary_key=True)
    suggestion_id: int = Field(foreign_key="suggestion.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")
    held_at: datetime = timestamp_field(nullable=False)
    place: str | None = Field(default=None, max_length=200)
    participants: str | None = Field(default=None, max_length=500)
    summary: str = Field(max_length=5000)
    recorded_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = created_at_field()


class SuggestionCounter(SQLModel, table=True):
    """The last number given in a year: registration takes the next one with one
    conditional UPDATE ... RETURNING, so two registrations never share a number."""

    __tablename__ = "suggestion_counter"

    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    last: int = Field(default=0)


class UnitAssessmentPublication(SQLModel, table=True):
    """A year's assessment published by staff (通报): the flag, when and by whom."""

    __tablename__ = "unit_assessment_publication"

    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    published_at: datetime = timestamp_field(nullable=False)
    published_by_id: int = Field(foreign_key="user.id")
