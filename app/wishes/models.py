"""Micro-wishes (微心愿), their timeline, and the per-deputy claim lock."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from app.core.models import created_at_field, enum_field, timestamp_field


class WishStatus(StrEnum):
    pending_review = "pending_review"  # 待审核
    published = "published"  # 已发布 (on the wall)
    claimed = "claimed"  # 已认领
    fulfilled = "fulfilled"  # 已实现 (the deputy reported it done)
    completed = "completed"  # 已完成 (the resident confirmed, or it completed on its own)
    rejected = "rejected"  # 未通过审核
    withdrawn = "withdrawn"  # 已撤回
    expired = "expired"  # 已过期 (nobody claimed it in time)


class ContentCheck(StrEnum):
    """What WeChat's content security check (msgSecCheck) said about the wish's text."""

    passed = "passed"
    review = "review"  # WeChat was unsure: staff must look closely
    unchecked = "unchecked"  # WeChat could not be asked: staff review it anyway


class Wish(SQLModel, table=True):
    """A small, concrete need a resident posts for a deputy to take on."""

    __table_args__ = (
        Index("ix_wish_status_published_at", "status", "published_at"),
        Index("ix_wish_status_fulfilled_at", "status", "fulfilled_at"),
        Index("ix_wish_claimer_status", "claimed_by_deputy_id", "status"),
        # Dashboard reads by creation and claim date.
        Index("ix_wish_created_at", "created_at", postgresql_include=["region_id", "status"]),
        Index("ix_wish_claimed_at", "claimed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="user.id", index=True)
    title: str = Field(max_length=50)  # what is wished for
    content: str = Field(max_length=1000)  # why
    # For whom: private, shown in full only to the owner, the claiming deputy and staff.
    beneficiary_name: str = Field(max_length=50)
    beneficiary_phone: str | None = Field(default=None, max_length=20)
    beneficiary_address: str | None = Field(default=None, max_length=255)
    beneficiary_description: str | None = Field(default=None, max_length=500)
    region_id: int = Field(foreign_key="region.id", index=True)
    station_id: int | None = Field(default=None, foreign_key="station.id", index=True)
    status: WishStatus = enum_field(WishStatus.pending_review, length=20, index=True)
    content_check: ContentCheck = enum_field(ContentCheck.unchecked, length=20)
    content_check_trace_id: str | None = Field(default=None, max_length=100)
    reviewed_by_id: int | None = Field(default=None, foreign_key="user.id")
    reviewed_at: datetime | None = timestamp_field()
    reject_reason: str | None = Field(default=None, max_length=500)
    # On the wall since (reset when a claim is released); expiry counts from here.
    published_at: datetime | None = timestamp_field()
    claimed_by_deputy_id: int | None = Field(default=None, foreign_key="deputy.id")
    claimed_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    claimed_at: datetime | None = timestamp_field()
    fulfilled_at: datetime | None = timestamp_field()
    fulfil_note: str | None = Field(default=None, max_length=1000)
    completed_at: datetime | None = timestamp_field()
    thanks: str | None = Field(default=None, max_length=500)
    rating: int | None = Field(default=None)
    # Bumped by every transition; names the occurrence in notification dedupe keys.
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class WishEvent(SQLModel, table=True):
    """One step of a wish's timeline (留痕): who did what, when, from which status to which."""

    __tablename__ = "wish_event"

    id: int | None = Field(default=None, primary_key=True)
    wish_id: int = Field(foreign_key="wish.id", index=True)
    action: str = Field(max_length=30)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    actor_id: int | None = Field(default=None, foreign_key="user.id")  # None: the system
    actor_role: str = Field(max_length=20)  # resident / deputy / staff / admin / system
    note: str | None = Field(default=None, max_length=1000)
    created_at: datetime = created_at_field()


class WishClaimLock(SQLModel, table=True):
    """One row per deputy, updated at the start of every claim by that deputy.

    The UPDATE takes the row's lock, so two claims by the same deputy run one after the
    other through the count of open claims: the claim limit holds under concurrency on
    PostgreSQL (and trivially on SQLite, whose writes are serialized).
    """

    __tablename__ = "wish_claim_lock"

    deputy_id: int = Field(foreign_key="deputy.id", primary_key=True)
    claims: int = Field(default=0)  # claim attempts that reached the count, for the record
    updated_at: datetime | None = timestamp_field()
