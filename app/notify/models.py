"""The outbox (one row per message to deliver) and the in-app inbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.core.models import created_at_field, enum_field, timestamp_field


class NotificationStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"


class Notification(SQLModel, table=True):
    """An outbox row, written in the same transaction as the state change it announces.

    `dedupe_key` makes at most one message per (recipient, event) possible.
    """

    __table_args__ = (
        UniqueConstraint("recipient_id", "dedupe_key"),
        Index("ix_notification_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    recipient_id: int = Field(foreign_key="user.id", index=True)
    event: str = Field(max_length=50)
    dedupe_key: str = Field(max_length=120)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: NotificationStatus = enum_field(NotificationStatus.pending, length=20)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = created_at_field()
    locked_until: datetime | None = timestamp_field()
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()
    sent_at: datetime | None = timestamp_field()


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
