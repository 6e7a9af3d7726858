"""HTTP endpoints of the integrations domain: integrators and their keys, webhooks and their
deliveries, the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import AwareDatetime

from app.core.db import SessionDep
from app.core.deps import AdminPrincipal, SettingsDep
from app.core.errors import problem_responses
from app.core.masking import mask_phone
from app.core.pagination import Page, PageDep, fetch_page
from app.core.types import MAX_ID
from app.integrations import service, webhooks
from app.integrations.deps import AdminOrKey, TargetIntegrator
from app.integrations.models import ApiKey, DeliveryStatus, Integrator, Webhook
from app.integrations.schemas import (
    ApiKeyCreate,
    ApiKeyIssued,
    ApiKeyPublic,
    AuditLogEntryPublic,
    IntegratorCreate,
    IntegratorPublic,
    IntegratorUpdate,
    WebhookAttemptPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhookUpdate,
)

router = APIRouter(tags=["integrators"])

_ADMIN_ERRORS = problem_responses(401, 403, 404, 422)


def _key_public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(key, from_attributes=True)


def _integrator_public(integrator: Integrator, keys: list[ApiKey]) -> IntegratorPublic:
    assert integrator.id is not None
    return IntegratorPublic(
        id=integrator.id,
        name=integrator.name,
        contact_name=integrator.contact_name,
        contact_phone=mask_phone(integrator.contact_phone),
        contact_email=integrator.contact_email,
        allowed_ips=list(integrator.allowed_ips),
        is_active=integrator.is_active,
        created_at=integrator.created_at,
        keys=[_key_public(k) for k in keys],
    )


def _webhook_public(webhook: Webhook) -> WebhookPublic:
    return WebhookPublic.model_validate(webhook, from_attributes=True)


# Integrators and keys ------------------------------------------------------------------


@router.get("/integrators", response_model=list[IntegratorPublic], responses=_ADMIN_ERRORS)
async def list_integrators(session: SessionDep, admin: AdminPrincipal) -> list[IntegratorPublic]:
    """Systems that call the API (接入系统), each with its keys (prefixes only)."""
    return [_integrator_public(i, k) for i, k in await service.list_integrators(session)]


@router.post(
    "/integrators",
    status_code=201,
    response_model=IntegratorPublic,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_integrator(
    body: IntegratorCreate, session: SessionDep, admin: AdminPrincipal
) -> IntegratorPublic:
    """Register a system. `allowed_ips` (CIDR ranges) limits where its keys may call from;
    empty means anywhere. 409 `integrator_name_taken` for a name in use."""
    integrator = await service.create_integrator(session, body, admin)
    return _integrator_public(integrator, [])


@router.patch(
    "/integrators/{integrator_id}",
    response_model=IntegratorPublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_integrator(
    body: IntegratorUpdate,
    integrator: TargetIntegrator,
    session: SessionDep,
    admin: AdminPrincipal,
) -> IntegratorPublic:
    """Change contact data or IP ranges; `is_active: false` stops all its keys at once."""
    integrator = await service.update_integrator(session, integrator, body, admin)
    assert integrator.id is not None
    return _integrator_public(integrator, await service.keys_of(session, integrator.id))


@router.post(
    "/integrators/{integrator_id}/keys",
    status_code=201,
    response_model=ApiKeyIssued,
    responses=_ADMIN_ERRORS,
)
async def issue_key(
    body: ApiKeyCreate,
    integrator: TargetIntegrator,
    session: SessionDep,
    admin: AdminPrincipal,
    settings: SettingsDep,
) -> ApiKeyIssued:
    """Issue a key with its scopes, region subtree and calls per minute. The answer's `key`
    is shown this once (only its sha256 is kept); issue a second key to rotate without
    downtime, then revoke the first."""
    key, clear = await service.issue_key(
        session, integrator, body, admin, settings.api_key_default_rate_per_minute
    )
    return ApiKeyIssued(**_key_public(key).model_dump(), key=clear)


@router.delete(
    "/integrators/{integrator_id}/keys/{key_id}",
    response_model=ApiKeyPublic,
    responses=_ADMIN_ERRORS,
)
async def revoke_key(
    integrator: TargetIntegrator,
    key_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: SessionDep,
    admin: AdminPrincipal,
) -> ApiKeyPublic:
    """Revoke a key: its next call is 401 `invalid_api_key`. Revoking twice is harmless."""
    return _key_public(await service.revoke_key(session, integrator, key_id, admin))


# Webhooks ---------------------------------------------------------------------------------


async def _webhook_or_404(
    session: SessionDep, principal: AdminOrKey, webhook_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Webhook:
    return await webhooks.webhook_or_404(session, principal, webhook_id)


TargetWebhook = Annotated[Webhook, Depends(_webhook_or_404)]


@router.get("/webhooks", response_model=list[WebhookPublic], responses=_ADMIN_ERRORS)
async def list_webhooks(
    session: SessionDep,
    principal: AdminOrKey,
    integrator_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[WebhookPublic]:
    """Admins: every endpoint (or one integrator's); a key: its integrator's own."""
    return [
        _webhook_public(w) for w in await webhooks.list_webhooks(session, principal, integrator_id)
    ]


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    responses=_ADMIN_ERRORS,
)
async def create_webhook(
    body: WebhookCreate, session: SessionDep, principal: AdminOrKey, settings: SettingsDep
) -> WebhookCreated:
    """Register an endpoint (https) for some events (`case.created`, `case.*`, …). The
    answer's `secret` signs every delivery and is shown this once."""
    webhook = await webhooks.create_webhook(session, principal, body, settings)
    return WebhookCreated(**_webhook_public(webhook).model_dump(), secret=webhook.secret)


@router.patch(
    "/webhooks/{webhook_id}",
    response_model=WebhookPublic,
    responses=_ADMIN_ERRORS,
)
async def update_webhook(
    body: WebhookUpdate,
    webhook: TargetWebhook,
    session: SessionDep,
    principal: AdminOrKey,
    settings: SettingsDep,
) -> WebhookPublic:
    """Change the URL or events; `status: active` resumes a paused endpoint (what was held
    while paused is sent), `status: paused` pauses it."""
    return _webhook_public(
        await webhooks.update_webhook(session, principal, webhook, body, settings)
    )


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses=_ADMIN_ERRORS,
)
async def delete_webhook(
    webhook: TargetWebhook, session: SessionDep, principal: AdminOrKey
) -> None:
    """Remove an endpoint and its delivery records."""
    await webhooks.delete_webhook(session, principal, webhook)


async def _admin_webhook(
    session: SessionDep, admin: AdminPrincipal, webhook_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Webhook:
    return await webhooks.webhook_or_404(session, admin, webhook_id)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=Page[WebhookDeliveryPublic],
    responses=_ADMIN_ERRORS,
)
async def list_deliveries(
    webhook: Annotated[Webhook, Depends(_admin_webhook)],
    session: SessionDep,
    page: PageDep,
    status: DeliveryStatus | None = None,
) -> Page[WebhookDeliveryPublic]:
    """Deliveries of an endpoint, newest first, each with its attempts (status code or
    error, duration)."""
    rows, total = await webhooks.list_deliveries(session, webhook, page, status)
    items = [
        WebhookDeliveryPublic(
            **WebhookDeliveryPublic.model_validate(d, from_attributes=True).model_dump(
                exclude={"attempt_log"}
            ),
            attempt_log=[WebhookAttemptPublic.model_validate(a, from_attributes=True) for a in log],
        )
        for d, log in rows
    ]
    return Page(items=items, total=total)


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    response_model=WebhookDeliveryPublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def retry_delivery(
    webhook: Annotated[Webhook, Depends(_admin_webhook)],
    delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    session: SessionDep,
    admin: AdminPrincipal,
) -> WebhookDeliveryPublic:
    """Send a `failed` delivery again (409 `invalid_transition` for any other status)."""
    delivery = await webhooks.retry_delivery(session, admin, webhook, delivery_id)
    return WebhookDeliveryPublic.model_validate(delivery, from_attributes=True)


# The audit log ------------------------------------------------------------------------------


@router.get("/audit-log", response_model=Page[AuditLogEntryPublic], responses=_ADMIN_ERRORS)
async def audit_log(
    session: SessionDep,
    admin: AdminPrincipal,
    page: PageDep,
    integrator_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    api_key_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    actor_user_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    action: Annotated[str | None, Query(max_length=60, examples=["api_call"])] = None,
    outcome: Annotated[
        str | None, Query(max_length=30, description="ok, rate_limited, insufficient_scope, …")
    ] = None,
    since: Annotated[AwareDatetime | None, Query(description="ISO 8601 with offset")] = None,
    until: Annotated[AwareDatetime | None, Query(description="ISO 8601 with offset")] = None,
) -> Page[AuditLogEntryPublic]:
    """Who (a person or a key) did what, when: every call made with a key (allowed or
    refused) and every change to integrators, keys and webhooks. Newest first."""
    statement = service.audit_query(
        service.AuditFilter(
            integrator_id=integrator_id,
            api_key_id=api_key_id,
            actor_user_id=actor_user_id,
            action=action,
            outcome=outcome,
            since=since,
            until=until,
        )
    )
    rows, total = await fetch_page(session, statement, page)
    return Page(
        items=[AuditLogEntryPublic.model_validate(r[0], from_attributes=True) for r in rows],
        total=total,
    )
