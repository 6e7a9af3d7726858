"""Integrators (接入系统), their API keys, the per-key rate windows, the audit log, webhook
endpoints and their deliveries."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.core.models import created_at_field, enum_field, timestamp_field


class Scope(StrEnum):
    cases_submit = "cases:submit"  # POST /cases, Open311 POST requests
    cases_read = "cases:read"  # cases of the key's region subtree, Open311 GET requests
    stats_read = "stats:read"  # GET /stats/* over the key's region subtree
    webhooks_manage = "webhooks:manage"  # the integrator's own webhook endpoints


class Integrator(SQLModel, table=True):
    """A system that calls the API. `user_id` is its service account: the submitter of the
    cases it registers (never able to log in: no password, no openid)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    contact_name: str | None = Field(default=None, max_length=50)
    contact_phone: str | None = Field(default=None, max_length=20)
    contact_email: str | None = Field(default=None, max_length=254)
    # CIDR ranges the integrator calls from; empty means any address.
    allowed_ips: list[str] = Field(default_factory=list, sa_type=JSON)
    user_id: int = Field(foreign_key="user.id", unique=True)
    # The admin who is told when one of its webhook endpoints is paused.
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    is_active: bool = Field(default=True)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class ApiKey(SQLModel, table=True):
    """One key of an integrator: `lsk_<prefix>_<secret>`, stored as the sha256 of the whole
    key. The prefix names the key in logs and lists."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    integrator_id: int = Field(foreign_key="integrator.id", index=True)
    name: str = Field(default="", max_length=100)
    prefix: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=64)
    scopes: list[str] = Field(default_factory=list, sa_type=JSON)
    # Cases and statistics the key reads, and where its submissions may be: this region and
    # below, exactly as a staff member of the region.
    region_id: int = Field(foreign_key="region.id")
    rate_limit_per_minute: int = Field(default=120)
    expires_at: datetime | None = timestamp_field()
    revoked_at: datetime | None = timestamp_field()
    last_used_at: datetime | None = timestamp_field()
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = created_at_field()


class ApiKeyWindow(SQLModel, table=True):
    """Calls of one key in one minute: a fixed window counted with an atomic upsert, so every
    replica sees the same count."""

    __tablename__ = "api_key_window"
    __table_args__ = (UniqueConstraint("api_key_id", "window_start"),)

    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(foreign_key="api_key.id", index=True)
    window_start: datetime = timestamp_field(nullable=False)
    calls: int = Field(default=0)


class AuditLogEntry(SQLModel, table=True):
    """Who (a person or a key) did what, when (操作日志)."""

    __tablename__ = "audit_log_entry"
    __table_args__ = (Index("ix_audit_log_entry_key_at", "api_key_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    actor_user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    integrator_id: int | None = Field(default=None, foreign_key="integrator.id", index=True)
    api_key_id: int | None = Field(default=None, foreign_key="api_key.id")
    key_prefix: str | None = Field(default=None, max_length=16)
    action: str = Field(max_length=60, index=True)
    method: str | None = Field(default=None, max_length=10)
    path: str | None = Field(default=None, max_length=255)
    outcome: str = Field(default="ok", max_length=30)
    client_ip: str | None = Field(default=None, max_length=45)
    target: str | None = Field(default=None, max_length=100)
    created_at: datetime = created_at_field()


class WebhookStatus(StrEnum):
    active = "active"
    paused = "paused"  # kept failing, or paused by an admin; PATCH status=active resumes


class Webhook(SQLModel, table=True):
    """An endpoint of an integrator and the events it wants."""

    id: int | None = Field(default=None, primary_key=True)
    integrator_id: int = Field(foreign_key="integrator.id", index=True)
    url: str = Field(max_length=500)
    events: list[str] = Field(default_factory=list, sa_type=JSON)
    # The HMAC key: needed in clear to sign, shown once when created.
    secret: str = Field(max_length=100)
    # Events about cases outside this region subtree are not sent; None means all.
    region_id: int | None = Field(default=None, foreign_key="region.id")
    status: WebhookStatus = enum_field(WebhookStatus.active, length=20)
    consecutive_failures: int = Field(default=0)
    first_failure_at: datetime | None = timestamp_field()
    paused_at: datetime | None = timestamp_field()
    pause_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class DeliveryStatus(StrEnum):
    pending = "pending"  # due at next_attempt_at
    sending = "sending"  # claimed by worker_id until locked_until
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # retries exhausted; admins may retry
    held = "held"  # the endpoint is paused; sent again when it is resumed


class WebhookDelivery(SQLModel, table=True):
    """An outbox row of the webhook channel: one event for one endpoint, written in the same
    transaction as the change it announces. Delivered by the worker like WeChat messages
    (claim with a lease, backoff, retry) with a concurrency budget of its own."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_lease", "status", "locked_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhook.id", index=True)
    # The event's id, the same for every endpoint and every retry: receivers dedupe on it.
    event_id: str = Field(max_length=40, index=True)
    event: str = Field(max_length=50)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: DeliveryStatus = enum_field(DeliveryStatus.pending, length=20)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = created_at_field()
    locked_until: datetime | None = timestamp_field()
    worker_id: str | None = Field(default=None, max_length=80)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()
    delivered_at: datetime | None = timestamp_field()
    updated_at: datetime | None = timestamp_field()


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt of a delivery, as the receiver answered it."""

    __tablename__ = "webhook_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhook_delivery.id", index=True)
    attempt: int
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int = Field(default=0)
    created_at: datetime = created_at_field()
