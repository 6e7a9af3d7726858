"""Request and response bodies of the integrations routes."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.core.times import Timestamp
from app.core.types import MAX_ID
from app.integrations.models import DeliveryStatus, Scope, WebhookStatus


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError as exc:
        raise ValueError("not an IP address or CIDR range") from exc


Cidr = Annotated[str, Field(max_length=50, examples=["10.20.0.0/16"]), AfterValidator(_cidr)]


class IntegratorCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "12345 市民服务热线",
                    "contact_name": "王工",
                    "contact_phone": "13800001111",
                    "contact_email": "ops@12345.example.gov.cn",
                    "allowed_ips": ["10.20.0.0/16"],
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=100)
    contact_name: str | None = Field(default=None, max_length=50)
    contact_phone: str | None = Field(default=None, max_length=20, pattern=r"^[0-9+\- ]{5,20}$")
    contact_email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    allowed_ips: list[Cidr] = Field(default_factory=list, max_length=50)


class IntegratorUpdate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"allowed_ips": ["10.20.0.0/16"], "is_active": True}]}
    )

    name: str | None = Field(default=None, min_length=1, max_length=100)
    contact_name: str | None = Field(default=None, max_length=50)
    contact_phone: str | None = Field(default=None, max_length=20, pattern=r"^[0-9+\- ]{5,20}$")
    contact_email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    allowed_ips: list[Cidr] | None = Field(default=None, max_length=50)
    is_active: bool | None = None


class ApiKeyPublic(BaseModel):
    """A key as listed: never the key itself, only its prefix."""

    id: int
    name: str
    prefix: str = Field(examples=["k3m9x2ab"])
    scopes: list[str]
    region_id: int
    rate_limit_per_minute: int
    expires_at: Timestamp | None
    revoked_at: Timestamp | None
    last_used_at: Timestamp | None
    created_at: Timestamp


class IntegratorPublic(BaseModel):
    id: int
    name: str
    contact_name: str | None
    contact_phone: str | None = Field(description="Masked: 138****1111")
    contact_email: str | None
    allowed_ips: list[str]
    is_active: bool
    created_at: Timestamp
    keys: list[ApiKeyPublic] = Field(default_factory=list)


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "生产环境",
                    "scopes": ["cases:submit", "cases:read", "webhooks:manage"],
                    "region_id": 1,
                    "rate_limit_per_minute": 120,
                }
            ]
        }
    )

    name: str = Field(default="", max_length=100)
    scopes: list[Scope] = Field(min_length=1, max_length=10)
    region_id: int = Field(ge=1, le=MAX_ID, description="Region subtree the key works in")
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    expires_at: Timestamp | None = None


class ApiKeyIssued(ApiKeyPublic):
    """Answered once, when issued: `key` is never shown again."""

    key: str = Field(examples=["lsk_k3m9x2ab_4mJw0Yw9vQ2u6c1H8sQj3pXk7LrTzNbVfGdEaC5yUoI"])


class AuditLogEntryPublic(BaseModel):
    id: int
    actor_user_id: int | None
    integrator_id: int | None
    api_key_id: int | None
    key_prefix: str | None
    action: str = Field(examples=["api_call"])
    method: str | None
    path: str | None = Field(examples=["/api/v1/cases"])
    outcome: str = Field(examples=["ok"])
    client_ip: str | None
    target: str | None
    created_at: Timestamp


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://grid.example.gov.cn/hooks/liaison",
                    "events": ["case.created", "case.status_changed", "case.replied"],
                }
            ]
        }
    )

    url: str = Field(min_length=8, max_length=500)
    events: list[str] = Field(min_length=1, max_length=30)
    integrator_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Admins name the integrator; keys omit it"
    )
    region_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Only events of cases in this subtree"
    )


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "active"}]})

    url: str | None = Field(default=None, min_length=8, max_length=500)
    events: list[str] | None = Field(default=None, min_length=1, max_length=30)
    status: WebhookStatus | None = None


class WebhookPublic(BaseModel):
    id: int
    integrator_id: int
    url: str
    events: list[str]
    region_id: int | None
    status: WebhookStatus
    consecutive_failures: int
    paused_at: Timestamp | None
    pause_reason: str | None
    created_at: Timestamp


class WebhookCreated(WebhookPublic):
    """Answered once, when created: `secret` signs every delivery and is never shown again."""

    secret: str = Field(examples=["whsec_9fK2m0Qe7yVb1tHc4nRz8uLp3wXs6aJd"])


class WebhookAttemptPublic(BaseModel):
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    created_at: Timestamp


class WebhookDeliveryPublic(BaseModel):
    id: int
    webhook_id: int
    event_id: str
    event: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: Timestamp
    last_status_code: int | None
    last_error: str | None
    created_at: Timestamp
    delivered_at: Timestamp | None
    attempt_log: list[WebhookAttemptPublic] = Field(default_factory=list)
