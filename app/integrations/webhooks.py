"""Webhook endpoints and the events written for them.

`publish` is what other domains call, inside their own transaction: it writes one
`WebhookDelivery` row per subscribed endpoint, so the change and the news of it commit
together or not at all. The worker delivers them (app.integrations.delivery).
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.core.pagination import PageParams, fetch_page
from app.core.security import Principal
from app.integrations import service
from app.integrations.errors import WebhookUrlRejected
from app.integrations.models import (
    DeliveryStatus,
    Integrator,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookStatus,
)
from app.integrations.schemas import WebhookCreate, WebhookUpdate
from app.org.models import Region

# The events an endpoint may subscribe to; "case.*" and "wish.*" take a whole family.
EVENTS: dict[str, str] = {
    "case.created": "A case was registered (any channel)",
    "case.status_changed": "A case moved to another status",
    "case.replied": "The responsible unit answered (status fed_back)",
    "case.resolved": "A case was closed (办结)",
    "wish.published": "A micro-wish was published",
    "wish.claimed": "A deputy claimed a micro-wish",
    "wish.fulfilled": "A claimed micro-wish was reported fulfilled",
    "wish.completed": "A micro-wish was confirmed complete",
}
FAMILIES = ("case.*", "wish.*")


def check_events(events: list[str]) -> list[str]:
    unknown = [e for e in events if e not in EVENTS and e not in FAMILIES]
    if unknown:
        raise ValidationFailed(f"未知的事件类型：{', '.join(unknown)[:200]}", code="unknown_event")
    return sorted(set(events))


def wants(webhook_events: list[str], event: str) -> bool:
    family = event.split(".", 1)[0] + ".*"
    return event in webhook_events or family in webhook_events


# ---------------------------------------------------------------------------------------
# Receiver addresses: https, and never this service's own network


def check_url_form(url: str, settings: Settings) -> str:
    """An absolute http(s) URL without credentials; https unless the setting allows http."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise WebhookUrlRejected("回调地址应为完整的 https 地址")
    if parts.scheme == "http" and not settings.webhook_allow_http:
        raise WebhookUrlRejected("回调地址必须使用 https")
    if parts.username or parts.password:
        raise WebhookUrlRejected("回调地址不能包含用户名或密码")
    return url.strip()


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


async def resolve_public(host: str, port: int, settings: Settings) -> None:
    """Refuse a host any of whose addresses is private, loopback, link-local or otherwise
    not public (unless WEBHOOK_ALLOW_PRIVATE_TARGETS). Every address is checked: a name
    with one public and one internal address is refused."""
    if settings.webhook_allow_private_targets:
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookUrlRejected("无法解析回调地址的主机名") from exc
    addresses = {info[4][0] for info in infos}
    if not addresses or not all(is_public_address(str(a)) for a in addresses):
        raise WebhookUrlRejected("回调地址指向内部网络地址")


# ---------------------------------------------------------------------------------------
# Endpoints (admins, or the integrator's own key)


async def _owner_for(
    session: AsyncSession, principal: Principal, integrator_id: int | None
) -> Integrator:
    if principal.is_api_key:
        if integrator_id is not None and integrator_id != principal.integrator_id:
            raise Forbidden("只能管理本系统的回调地址", code="forbidden")
        assert principal.integrator_id is not None
        return await service.integrator_or_404(session, principal.integrator_id)
    if integrator_id is None:
        raise ValidationFailed("请指定接入系统 integrator_id", code="validation_error")
    return await service.integrator_or_404(session, integrator_id)


async def create_webhook(
    session: AsyncSession, principal: Principal, body: WebhookCreate, settings: Settings
) -> Webhook:
    owner = await _owner_for(session, principal, body.integrator_id)
    url = check_url_form(body.url, settings)
    events = check_events(body.events)
    if body.region_id is not None and (await session.get(Region, body.region_id)) is None:
        raise ValidationFailed("区域不存在", code="unknown_region")
    assert owner.id is not None
    webhook = Webhook(
        integrator_id=owner.id,
        url=url,
        events=events,
        secret="whsec_" + secrets.token_urlsafe(24),
        region_id=body.region_id,
    )
    session.add(webhook)
    await session.flush()
    await service.audit(session, principal, "webhook.create", target=f"webhook:{webhook.id}")
    return webhook


async def list_webhooks(
    session: AsyncSession, principal: Principal, integrator_id: int | None
) -> list[Webhook]:
    statement = select(Webhook).order_by(col(Webhook.id))
    if principal.is_api_key:
        statement = statement.where(Webhook.integrator_id == principal.integrator_id)
    elif integrator_id is not None:
        statement = statement.where(Webhook.integrator_id == integrator_id)
    return list((await session.execute(statement)).scalars())


async def webhook_or_404(session: AsyncSession, principal: Principal, webhook_id: int) -> Webhook:
    webhook = await session.get(Webhook, webhook_id)
    # Another integrator's endpoint answers exactly what a missing one does.
    if webhook is None or (
        principal.is_api_key and webhook.integrator_id != principal.integrator_id
    ):
        raise NotFound("未找到该回调地址", code="not_found")
    return webhook


async def update_webhook(
    session: AsyncSession,
    principal: Principal,
    webhook: Webhook,
    body: WebhookUpdate,
    settings: Settings,
) -> Webhook:
    now = utcnow()
    if body.url is not None:
        webhook.url = check_url_form(body.url, settings)
    if body.events is not None:
        webhook.events = check_events(body.events)
    if body.status is not None and body.status != webhook.status:
        webhook.status = body.status
        if body.status is WebhookStatus.active:
            webhook.consecutive_failures = 0
            webhook.first_failure_at = None
            webhook.paused_at = None
            webhook.pause_reason = None
            # What waited while the endpoint was paused goes out now.
            await session.execute(
                update(WebhookDelivery)
                .where(
                    col(WebhookDelivery.webhook_id) == webhook.id,
                    col(WebhookDelivery.status) == DeliveryStatus.held.value,
                )
                .values(status=DeliveryStatus.pending.value, next_attempt_at=now, updated_at=now)
            )
        else:
            webhook.paused_at = now
            webhook.pause_reason = "paused_by_user"
    webhook.updated_at = now
    session.add(webhook)
    await session.flush()
    await service.audit(session, principal, "webhook.update", target=f"webhook:{webhook.id}")
    return webhook


async def delete_webhook(session: AsyncSession, principal: Principal, webhook: Webhook) -> None:
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.webhook_id == webhook.id)
    await session.execute(
        delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(deliveries))
    )
    await session.execute(
        delete(WebhookDelivery).where(col(WebhookDelivery.webhook_id) == webhook.id)
    )
    await service.audit(session, principal, "webhook.delete", target=f"webhook:{webhook.id}")
    await session.delete(webhook)
    await session.flush()


async def list_deliveries(
    session: AsyncSession, webhook: Webhook, page: PageParams, status: DeliveryStatus | None
) -> tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], int]:
    statement = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
    if status is not None:
        statement = statement.where(WebhookDelivery.status == status.value)
    rows, total = await fetch_page(
        session, statement.order_by(col(WebhookDelivery.id).desc()), page
    )
    deliveries = [r[0] for r in rows]
    attempts: dict[int, list[WebhookAttempt]] = {}
    if deliveries:
        found = await session.execute(
            select(WebhookAttempt)
            .where(col(WebhookAttempt.delivery_id).in_([d.id for d in deliveries]))
            .order_by(col(WebhookAttempt.id))
        )
        for attempt in found.scalars():
            attempts.setdefault(attempt.delivery_id, []).append(attempt)
    return [(d, attempts.get(d.id or 0, [])) for d in deliveries], total


async def retry_delivery(
    session: AsyncSession, principal: Principal, webhook: Webhook, delivery_id: int
) -> WebhookDelivery:
    """A failed delivery goes out again now, with a fresh set of attempts. Conditional on
    its status, so two admins retrying at once queue it once."""
    now = utcnow()
    result = await session.execute(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id) == delivery_id,
            col(WebhookDelivery.webhook_id) == webhook.id,
            col(WebhookDelivery.status) == DeliveryStatus.failed.value,
        )
        .values(
            status=DeliveryStatus.pending.value,
            attempts=0,
            next_attempt_at=now,
            locked_until=None,
            worker_id=None,
            updated_at=now,
        )
    )
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook.id:
        raise NotFound("未找到该投递记录", code="not_found")
    if not result.rowcount:  # type: ignore[attr-defined]
        raise Conflict("只有失败的投递可以重试", code="invalid_transition")
    await session.refresh(delivery)
    await service.audit(session, principal, "webhook.retry", target=f"delivery:{delivery_id}")
    return delivery


# ---------------------------------------------------------------------------------------
# Publishing events


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


async def publish(
    session: AsyncSession,
    events: str | list[str],
    data: dict[str, Any],
    *,
    region_id: int | None = None,
    occurred_at: datetime | None = None,
) -> int:
    """Queue each of `events` (the events of one step) for every endpoint that wants it
    (and whose region holds `region_id`). Paused endpoints get it `held`. One look-up of the
    endpoints serves all the step's events. Answers the number of rows written."""
    names = [events] if isinstance(events, str) else events
    webhooks = list(
        (
            await session.execute(select(Webhook).join(Integrator).where(col(Integrator.is_active)))
        ).scalars()
    )
    targets = [w for w in webhooks if any(wants(w.events, name) for name in names)]
    if not targets:
        return 0
    region_paths: dict[int, str] = {}
    region_path: str | None = None
    scoped = {w.region_id for w in targets if w.region_id is not None}
    if scoped and region_id is not None:
        rows = await session.execute(
            select(Region.id, Region.path).where(col(Region.id).in_(scoped | {region_id}))
        )
        region_paths = {r.id: r.path for r in rows}
        region_path = region_paths.get(region_id)
    now = occurred_at or utcnow()
    written = 0
    for event in names:
        event_id = new_event_id()
        payload = {"id": event_id, "type": event, "created_at": now.isoformat(), "data": data}
        for webhook in targets:
            if not wants(webhook.events, event):
                continue
            if webhook.region_id is not None:
                path = region_paths.get(webhook.region_id)
                if region_path is None or path is None or not region_path.startswith(path):
                    continue
            assert webhook.id is not None
            session.add(
                WebhookDelivery(
                    webhook_id=webhook.id,
                    event_id=event_id,
                    event=event,
                    payload=payload,
                    status=(
                        DeliveryStatus.held
                        if webhook.status is WebhookStatus.paused
                        else DeliveryStatus.pending
                    ),
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            written += 1
    if written:
        await session.flush()
    return written
