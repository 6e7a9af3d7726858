"""Delivering webhook events: claim, send after commit, record every attempt.

The same three steps as WeChat messages (app.notify.delivery): claim a batch of due rows in
one short transaction (PostgreSQL `FOR UPDATE SKIP LOCKED`, and everywhere a conditional
UPDATE that only takes rows still due), send them after commit, record the outcomes. A
worker that dies leaves `sending` rows whose lease expires and another worker takes them:
nothing is lost, and a receiver may see an event twice (dedupe on `X-Webhook-Id`).

It has a concurrency budget and an HTTP client of its own, and the worker runs it in its own
task, so a receiver that hangs never slows WeChat delivery. Every call is bounded: one
overall deadline, no redirects followed, at most `webhook_max_response_bytes` of the answer
read, and (unless WEBHOOK_ALLOW_PRIVATE_TARGETS) the host is resolved, every address must
be public, and the connection goes to the address that was checked (TLS still verifies
the host name), so a DNS answer cannot change between the check and the call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import Database
from app.core.security import Role
from app.identity.models import User
from app.integrations import signing
from app.integrations.errors import WebhookUrlRejected
from app.integrations.models import (
    DeliveryStatus,
    Integrator,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookStatus,
)
from app.integrations.webhooks import check_url_form, resolve_public
from app.notify import service as notify_service
from app.notify.delivery import backoff_seconds, new_worker_id

logger = logging.getLogger("app.integrations.delivery")

D = WebhookDelivery.__table__  # type: ignore[attr-defined]
W = Webhook.__table__  # type: ignore[attr-defined]
A = WebhookAttempt.__table__  # type: ignore[attr-defined]

USER_AGENT = "liaison-webhooks/1"


@dataclass
class Claimed:
    id: int
    webhook_id: int
    url: str
    secret: str
    event_id: str
    event: str
    payload: dict[str, Any]
    attempts: int  # including this one
    locked_until: datetime


@dataclass
class Result:
    claimed: Claimed
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    lease_lost: bool = False


def _due(now: datetime) -> Any:
    return or_(
        and_(D.c.status == DeliveryStatus.pending.value, D.c.next_attempt_at <= now),
        and_(D.c.status == DeliveryStatus.sending.value, D.c.locked_until < now),
    )


class WebhookDeliverer:
    """Claims, sends and records batches of webhook deliveries for one worker."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        worker_id: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self._semaphore = asyncio.Semaphore(settings.webhook_concurrency)
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(settings.webhook_timeout_seconds),
            limits=httpx.Limits(
                max_connections=settings.webhook_concurrency,
                max_keepalive_connections=settings.webhook_concurrency,
            ),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,
        )

    async def close(self) -> None:
        if self._own_client:
            await self.client.aclose()

    # --- 1. claim ----------------------------------------------------------------------

    async def claim(self, limit: int | None = None) -> list[Claimed]:
        limit = limit or self.settings.webhook_batch_size
        now = utcnow()
        lease_until = now + timedelta(seconds=self.settings.webhook_lease_seconds)
        async with self.db.transaction() as session:
            statement = (
                select(
                    D.c.id,
                    D.c.webhook_id,
                    W.c.url,
                    W.c.secret,
                    D.c.event_id,
                    D.c.event,
                    D.c.payload,
                    D.c.attempts,
                )
                .select_from(D.join(W, W.c.id == D.c.webhook_id))
                .where(_due(now), W.c.status == WebhookStatus.active.value)
                .order_by(D.c.next_attempt_at, D.c.id)
                .limit(limit)
            )
            if not self.db.is_sqlite:
                statement = statement.with_for_update(skip_locked=True, of=D)
            rows = (await session.execute(statement)).all()
            if not rows:
                return []
            taken = await session.execute(
                update(D)
                .where(D.c.id.in_([r.id for r in rows]), _due(now))
                .values(
                    status=DeliveryStatus.sending.value,
                    worker_id=self.worker_id,
                    locked_until=lease_until,
                    attempts=D.c.attempts + 1,
                    updated_at=now,
                )
                .returning(D.c.id)
            )
            ids = set(taken.scalars().all())
        return [
            Claimed(
                id=r.id,
                webhook_id=r.webhook_id,
                url=r.url,
                secret=r.secret,
                event_id=r.event_id,
                event=r.event,
                payload=dict(r.payload or {}),
                attempts=r.attempts + 1,
                locked_until=lease_until,
            )
            for r in rows
            if r.id in ids
        ]

    # --- 2. send -----------------------------------------------------------------------

    async def send_all(self, batch: Sequence[Claimed]) -> list[Result]:
        return list(await asyncio.gather(*(self._send_one(c) for c in batch)))

    async def _target(self, url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The URL to connect to, extra headers and request extensions: pinned to the checked
        address unless private targets are allowed."""
        check_url_form(url, self.settings)
        if self.settings.webhook_allow_private_targets:
            return url, {}, {}
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        loop = asyncio.get_running_loop()
        await resolve_public(host, port, self.settings)
        infos = await loop.getaddrinfo(host, port)
        address = str(infos[0][4][0])
        netloc = f"[{address}]" if ":" in address else address
        if parts.port:
            netloc += f":{parts.port}"
        pinned = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        return pinned, {"Host": parts.netloc}, {"sni_hostname": host}

    async def _send_one(self, c: Claimed) -> Result:
        async with self._semaphore:
            margin = timedelta(seconds=min(self.settings.webhook_lease_seconds / 4, 30))
            if utcnow() >= c.locked_until - margin:
                return Result(c, False, None, "lease expired before sending", 0, lease_lost=True)
            body = json.dumps(c.payload, ensure_ascii=False, separators=(",", ":")).encode()
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "X-Webhook-Id": c.event_id,
                "X-Webhook-Event": c.event,
                "X-Webhook-Timestamp": str(timestamp),
                "X-Webhook-Signature": signing.sign(c.secret, timestamp, body),
            }
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(
                    self._post(c.url, body, headers), timeout=self.settings.webhook_timeout_seconds
                )
            except WebhookUrlRejected as exc:
                return Result(c, False, None, f"url_rejected: {exc.detail}", _ms(started))
            except TimeoutError:
                return Result(c, False, None, "timeout", _ms(started))
            except httpx.HTTPError as exc:
                return Result(c, False, None, f"network: {type(exc).__name__}", _ms(started))
            except Exception as exc:  # a bug or an unexpected transport error: retry later
                logger.exception("webhook delivery %s failed unexpectedly", c.id)
                return Result(c, False, None, f"error: {type(exc).__name__}", _ms(started))
            ok = 200 <= status < 300
            error = (
                None if ok else ("redirect_not_followed" if 300 <= status < 400 else "http_status")
            )
            return Result(c, ok, status, error, _ms(started))

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        target, extra, extensions = await self._target(url)
        request = self.client.build_request(
            "POST", target, content=body, headers=headers | extra, extensions=extensions
        )
        response = await self.client.send(request, stream=True)
        try:
            # Read at most the cap, then drop the connection: a huge answer costs nothing.
            remaining = self.settings.webhook_max_response_bytes
            async for chunk in response.aiter_raw():
                remaining -= len(chunk)
                if remaining <= 0:
                    break
        finally:
            await response.aclose()
        return response.status_code

    # --- 3. record ---------------------------------------------------------------------

    async def record(self, results: Sequence[Result]) -> None:
        for attempt in range(4):
            try:
                async with self.db.transaction() as session:
                    await self._record(session, results)
                return
            except Exception:
                if attempt == 3:
                    logger.exception("recording %d webhook outcomes failed", len(results))
                    raise
                await asyncio.sleep(0.2 * 2**attempt)

    async def _record(self, session: AsyncSession, results: Sequence[Result]) -> None:
        now = utcnow()
        mine = and_(D.c.status == DeliveryStatus.sending.value, D.c.worker_id == self.worker_id)
        attempts = [
            {
                "delivery_id": r.claimed.id,
                "attempt": r.claimed.attempts,
                "status_code": r.status_code,
                "error": (r.error or None) and r.error[:500],
                "duration_ms": r.duration_ms,
                "created_at": now,
            }
            for r in results
            if not r.lease_lost
        ]
        if attempts:
            await session.execute(insert(A), attempts)
        delivered = [r for r in results if r.ok]
        if delivered:
            await session.execute(
                update(D)
                .where(D.c.id == bindparam("did"))
                .values(
                    status=DeliveryStatus.delivered.value,
                    delivered_at=now,
                    locked_until=None,
                    last_status_code=bindparam("code"),
                    last_error=None,
                    updated_at=now,
                ),
                [{"did": r.claimed.id, "code": r.status_code} for r in delivered],
            )
        lost = [r.claimed.id for r in results if r.lease_lost]
        if lost:
            await session.execute(
                update(D)
                .where(D.c.id.in_(lost), mine)
                .values(
                    status=DeliveryStatus.pending.value,
                    attempts=D.c.attempts - 1,
                    next_attempt_at=now,
                    locked_until=None,
                    updated_at=now,
                )
            )
        failures: Counter[int] = Counter()
        for r in results:
            if r.ok or r.lease_lost:
                continue
            failures[r.claimed.webhook_id] += 1
            c = r.claimed
            values: dict[str, Any] = {
                "locked_until": None,
                "updated_at": now,
                "last_status_code": r.status_code,
                "last_error": (r.error or "failed")[:500],
            }
            if c.attempts < self.settings.webhook_max_attempts:
                delay = backoff_seconds(c.attempts, self.settings.webhook_backoff_base_seconds)
                values |= {
                    "status": DeliveryStatus.pending.value,
                    "next_attempt_at": now + timedelta(seconds=delay),
                }
            else:
                values["status"] = DeliveryStatus.failed.value
            await session.execute(update(D).where(D.c.id == c.id, mine).values(**values))
        succeeded = {r.claimed.webhook_id for r in delivered}
        if succeeded:
            await session.execute(
                update(W)
                .where(W.c.id.in_(sorted(succeeded)), W.c.consecutive_failures > 0)
                .values(consecutive_failures=0, first_failure_at=None)
            )
        for webhook_id in sorted(failures):
            if webhook_id in succeeded:
                continue
            await self._count_failures(session, webhook_id, failures[webhook_id], now)

    async def _count_failures(
        self, session: AsyncSession, webhook_id: int, count: int, now: datetime
    ) -> None:
        row = (
            await session.execute(
                update(W)
                .where(W.c.id == webhook_id)
                .values(
                    consecutive_failures=W.c.consecutive_failures + count,
                    first_failure_at=func.coalesce(W.c.first_failure_at, now),
                )
                .returning(W.c.consecutive_failures, W.c.first_failure_at, W.c.status)
            )
        ).first()
        if row is None or row.status != WebhookStatus.active.value:
            return
        since = row.first_failure_at or now
        if row.consecutive_failures >= self.settings.webhook_pause_after_failures and (
            now - since >= timedelta(hours=self.settings.webhook_pause_after_hours)
        ):
            await pause_endpoint(session, webhook_id, row.consecutive_failures, now)

    # --- together ----------------------------------------------------------------------

    async def deliver_batch(self, limit: int | None = None) -> int:
        batch = await self.claim(limit)
        if not batch:
            return 0
        results = await self.send_all(batch)
        await self.record(results)
        return len(batch)

    async def drain(self, max_batches: int = 10_000) -> int:
        total = 0
        for _ in range(max_batches):
            claimed = await self.deliver_batch()
            if claimed == 0:
                break
            total += claimed
        return total


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


async def pause_endpoint(
    session: AsyncSession, webhook_id: int, failures: int, now: datetime
) -> None:
    """Pause a failing endpoint (conditional: only once), hold what waits for it, and tell
    the admin who registered its integrator (every admin when that account is gone)."""
    paused = await session.execute(
        update(W)
        .where(W.c.id == webhook_id, W.c.status == WebhookStatus.active.value)
        .values(
            status=WebhookStatus.paused.value,
            paused_at=now,
            pause_reason=f"{failures} consecutive failed attempts",
            updated_at=now,
        )
    )
    if not paused.rowcount:  # type: ignore[attr-defined]
        return
    await session.execute(
        update(D)
        .where(D.c.webhook_id == webhook_id, D.c.status == DeliveryStatus.pending.value)
        .values(status=DeliveryStatus.held.value, updated_at=now)
    )
    row = (
        await session.execute(
            select(Webhook.url, Integrator.name, Integrator.created_by_id)
            .join(Integrator, Integrator.id == Webhook.integrator_id)  # type: ignore[arg-type]
            .where(Webhook.id == webhook_id)
        )
    ).one()
    recipients = [row.created_by_id] if row.created_by_id is not None else []
    if recipients:
        active = await session.execute(
            select(User.id).where(User.id == row.created_by_id, User.is_active.is_(True))  # type: ignore[attr-defined]
        )
        recipients = list(active.scalars())
    if not recipients:
        admins = await session.execute(
            select(User.id).where(User.role == Role.admin, User.is_active.is_(True))  # type: ignore[attr-defined]
        )
        recipients = list(admins.scalars())
    host = urlsplit(row.url).hostname or row.url
    for user_id in recipients:
        await notify_service.enqueue(
            session,
            recipient_id=user_id,
            event="webhook.paused",
            dedupe_key=f"webhook:{webhook_id}:paused:{int(now.timestamp())}",
            title="回调地址已暂停",
            body=f"接入系统“{row.name}”的回调地址 {host} 连续 {failures} 次投递失败，已暂停；"
            "修复后在后台恢复即可补发。",
        )
    logger.warning("webhook %s paused after %d failures", webhook_id, failures)
