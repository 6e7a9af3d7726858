"""The outbox (one row per message to deliver), subscriptions, and the in-app inbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.core.models import created_at_field, enum_field, timestamp_field


class NotificationStatus(StrEnum):
    pending = "pending"  # due at next_attempt_at
    sending = "sending"  # claimed by worker_id until locked_until
    sent = "sent"  # WeChat accepted it
    failed = "failed"  # gave up (bad data, or retries exhausted); staff may retry
    skipped = "skipped"  # not for WeChat (no subscription, inbox only); staff may retry


class Notification(SQLModel, table=True):
    """An outbox row, written in the same transaction as the state change it announces.

    `dedupe_key` makes at most one message per (recipient, event occurrence) possible.
    `subscription_spent` records that one accepted subscription was reserved for this row,
    so a retry or a reclaim after a crash never spends a second one.
    """

    __table_args__ = (
        UniqueConstraint("recipient_id", "dedupe_key"),
        Index("ix_notification_due", "status", "next_attempt_at"),
        Index("ix_notification_lease", "status", "locked_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    recipient_id: int = Field(foreign_key="user.id", index=True)
    event: str = Field(max_length=50, index=True)
    dedupe_key: str = Field(max_length=120)
    title: str = Field(default="", max_length=100)
    body: str = Field(default="", max_length=500)
    page: str | None = Field(default=None, max_length=255)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: NotificationStatus = enum_field(NotificationStatus.pending, length=20)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = created_at_field()
    locked_until: datetime | None = timestamp_field()
    worker_id: str | None = Field(default=None, max_length=80)
    template_id: str | None = Field(default=None, max_length=128)
    subscription_spent: bool = Field(default=False)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()
    sent_at: datetime | None = timestamp_field()
    updated_at: datetime | None = timestamp_field()


class Subscription(SQLModel, table=True):
    """How many one-time subscribe messages of a template a user has accepted and not yet
    received (订阅消息授权次数). POST /me/subscriptions adds, the worker spends one per
    message sent."""

    __table_args__ = (UniqueConstraint("user_id", "template_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    template_id: str = Field(max_length=128)
    accepted_count: int = Field(default=0)
    last_result: str | None = Field(default=None, max_length=20)
    updated_at: datetime = created_at_field()


class InboxMessage(SQLModel, table=True):
    """A message in a user's in-app inbox (站内消息)."""

    __tablename__ = "inbox_message"

    __table_args__ = (Index("ix_inbox_message_user_read", "user_id", "read_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    notification_id: int | None = Field(default=None, foreign_key="notification.id")
    event: str = Field(max_length=50)
    title: str = Field(max_length=100)
    body: str = Field(max_length=500)
    page: str | None = Field(default=None, max_length=255)
    read_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()


class WorkerLease(SQLModel, table=True):
    """Who runs a periodic sweep now, and when it last ran: one row per sweep, taken with a
    conditional UPDATE so that of several workers only one runs it per interval."""

    __tablename__ = "worker_lease"

    name: str = Field(primary_key=True, max_length=80)
    holder: str | None = Field(default=None, max_length=80)
    locked_until: datetime | None = timestamp_field()
    last_run_at: datetime | None = timestamp_field()
    last_result: str | None = Field(default=None, max_length=500)
