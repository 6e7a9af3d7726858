"""Delivering outbox rows through WeChat: claim, send after commit, record the outcome.

One batch goes through three steps:

1. **Claim**, in one short transaction: take up to `notify_batch_size` due rows (pending and
   due, or `sending` with an expired lease), mark them `sending` with this worker's id and a
   lease, and reserve one accepted subscription for each (a conditional decrement). On
   PostgreSQL the rows are locked with `FOR UPDATE SKIP LOCKED`, so concurrent workers take
   disjoint batches; everywhere the claim itself is a conditional UPDATE that only succeeds
   on rows still due, which is what settles races on SQLite.
2. **Send**, after commit, with at most `notify_concurrency` requests in flight. A row whose
   lease has run out by the time its turn comes is not sent (another worker may own it).
3. **Record** every outcome in one transaction: `sent`; back to `pending` with exponential
   backoff and jitter (network, 5xx, busy, rate limit) until `notify_max_attempts`, then
   `failed`; `skipped` (43101: no subscription, the count is zeroed); `failed` (47003 and
   other refusals). A reservation not used by WeChat is given back.

Delivery guarantee: a message is never lost (a worker that dies leaves `sending` rows whose
lease expires, and another worker claims them), and duplicates are bounded to the one
window nobody can observe: a worker that dies *after* WeChat accepted a message and
*before* its outcome committed. That message is sent again after the lease (at-least-once
there). Everything detectable is guarded: a reclaimed row never spends a second
subscription; a worker whose lease ran out does not send; a `sent` outcome is recorded even
if another worker reclaimed the row meanwhile; recording is retried before giving up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import Database
from app.identity.models import User
from app.notify.models import Notification, NotificationStatus, Subscription
from app.notify.templates import TemplateRegistry, TemplateSpec, render_data, render_page
from app.wechat import types as wx
from app.wechat.gateway import WeChatGateway

logger = logging.getLogger("app.notify.delivery")

N = Notification.__table__  # type: ignore[attr-defined]
S = Subscription.__table__  # type: ignore[attr-defined]
U = User.__table__  # type: ignore[attr-defined]

MAX_BACKOFF_SECONDS = 3600.0

# Reasons recorded in `last_error` (stable, documented for staff).
NO_SUBSCRIPTION = "no_subscription"
INBOX_ONLY = "inbox_only"
NO_OPENID = "no_openid"
BAD_DATA = "bad_data"
LEASE_EXHAUSTED = "lease_expired_after_last_attempt"


class Outcome(StrEnum):
    sent = "sent"
    retry = "retry"
    failed = "failed"
    not_subscribed = "not_subscribed"  # WeChat answered 43101
    lease_lost = "lease_lost"  # our lease ran out before the send: leave the row alone


@dataclass
class Claimed:
    id: int
    recipient_id: int
    openid: str | None
    event: str
    title: str
    body: str
    page: str | None
    params: dict[str, Any]
    created_at: datetime
    attempts: int  # including this one
    template_id: str | None
    subscription_spent: bool
    locked_until: datetime
    spec: TemplateSpec | None = None


@dataclass
class Result:
    claimed: Claimed
    outcome: Outcome
    reason: str | None = None


@dataclass
class BatchStats:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def backoff_seconds(attempts: int, base: float) -> float:
    """Retry n waits base * 2**(n-1), jittered to 50–150 %, at most an hour."""
    delay = min(base * (2 ** max(attempts - 1, 0)), MAX_BACKOFF_SECONDS)
    return delay * random.uniform(0.5, 1.5)


def _due(now: datetime) -> Any:
    return or_(
        and_(
            N.c.status == NotificationStatus.pending.value,
            N.c.next_attempt_at <= now,
        ),
        and_(
            N.c.status == NotificationStatus.sending.value,
            N.c.locked_until < now,
        ),
    )


class Deliverer:
    """Claims, sends and records batches of outbox rows for one worker."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        gateway: WeChatGateway,
        *,
        worker_id: str | None = None,
        templates: TemplateRegistry | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.gateway = gateway
        self.worker_id = worker_id or new_worker_id()
        self.templates = templates or TemplateRegistry.from_settings(settings)
        self._semaphore = asyncio.Semaphore(settings.notify_concurrency)

    # --- 1. claim ----------------------------------------------------------------------

    async def claim(self, limit: int | None = None) -> list[Claimed]:
        """Claim a batch of due rows and reserve their subscriptions; returns those to send.

        Rows that will not go to WeChat (inbox-only events, no openid, no accepted
        subscription, attempts used up) are settled as `skipped`/`failed` right here.
        """
        limit = limit or self.settings.notify_batch_size
        now = utcnow()
        lease_until = now + timedelta(seconds=self.settings.notify_lease_seconds)
        async with self.db.transaction() as session:
            rows = await self._select_due(session, now, limit)
            if not rows:
                return []
            claimed_ids = await self._mark_sending(session, [r.id for r in rows], now, lease_until)
            rows = [r for r in rows if r.id in claimed_ids]
            to_send, settled = self._classify(rows)
            spent_ids = await self._reserve_subscriptions(
                session, [c for c in to_send if not c.subscription_spent], now
            )
            sendable: list[Claimed] = []
            for c in to_send:
                if c.subscription_spent or c.id in spent_ids:
                    c.subscription_spent = True
                    c.locked_until = lease_until
                    sendable.append(c)
                else:
                    settled.append((c, NotificationStatus.skipped, NO_SUBSCRIPTION))
            await self._write_claim(session, sendable, settled, now)
        return sendable

    async def _select_due(self, session: AsyncSession, now: datetime, limit: int) -> list[Claimed]:
        statement = (
            select(
                N.c.id,
                N.c.recipient_id,
                U.c.openid,
                N.c.event,
                N.c.title,
                N.c.body,
                N.c.page,
                N.c.params,
                N.c.created_at,
                N.c.attempts,
                N.c.template_id,
                N.c.subscription_spent,
                N.c.locked_until,
            )
            .select_from(N.join(U, U.c.id == N.c.recipient_id))
            .where(_due(now))
            .order_by(N.c.next_attempt_at, N.c.id)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            statement = statement.with_for_update(skip_locked=True, of=N)
        result = await session.execute(statement)
        return [
            Claimed(
                id=r.id,
                recipient_id=r.recipient_id,
                openid=r.openid,
                event=r.event,
                title=r.title or "",
                body=r.body or "",
                page=r.page,
                params=dict(r.params or {}),
                created_at=r.created_at,
                attempts=r.attempts + 1,
                template_id=r.template_id,
                subscription_spent=bool(r.subscription_spent),
                locked_until=r.locked_until or now,
            )
            for r in result.all()
        ]

    async def _mark_sending(
        self, session: AsyncSession, ids: list[int], now: datetime, lease_until: datetime
    ) -> set[int]:
        # Conditional: only rows that are still due are taken. On PostgreSQL they are
        # locked by us already; on SQLite this is what makes two workers' claims disjoint.
        result = await session.execute(
            update(N)
            .where(N.c.id.in_(ids), _due(now))
            .values(
                status=NotificationStatus.sending.value,
                worker_id=self.worker_id,
                locked_until=lease_until,
                attempts=N.c.attempts + 1,
                updated_at=now,
            )
            .returning(N.c.id)
        )
        return set(result.scalars().all())

    def _classify(
        self, rows: list[Claimed]
    ) -> tuple[list[Claimed], list[tuple[Claimed, NotificationStatus, str]]]:
        to_send: list[Claimed] = []
        settled: list[tuple[Claimed, NotificationStatus, str]] = []
        max_attempts = self.settings.notify_max_attempts
        for c in rows:
            c.spec = self.templates.get(c.event)
            if c.attempts > max_attempts:
                # Only a reclaimed row gets here: its worker died during its last attempt.
                settled.append((c, NotificationStatus.failed, LEASE_EXHAUSTED))
            elif c.spec is None or c.spec.inbox_only:
                settled.append((c, NotificationStatus.skipped, INBOX_ONLY))
            elif not c.openid:
                settled.append((c, NotificationStatus.skipped, NO_OPENID))
            else:
                if not c.subscription_spent or not c.template_id:
                    c.template_id = c.spec.template_id
                to_send.append(c)
        return to_send, settled

    async def _reserve_subscriptions(
        self, session: AsyncSession, rows: list[Claimed], now: datetime
    ) -> set[int]:
        """Spend one accepted subscription per row where the user has one left.

        The subscription rows are locked in (user, template) order so that workers
        reserving for overlapping users never deadlock; the decrement is conditional
        (`accepted_count >= n`), so a count never goes below zero.
        """
        if not rows:
            return set()
        wanted: dict[tuple[int, str], list[Claimed]] = defaultdict(list)
        for c in sorted(rows, key=lambda c: (c.recipient_id, c.template_id or "", c.id)):
            assert c.template_id is not None
            wanted[(c.recipient_id, c.template_id)].append(c)
        users = sorted({u for u, _ in wanted})
        statement = (
            select(S.c.id, S.c.user_id, S.c.template_id, S.c.accepted_count)
            .where(
                S.c.user_id.in_(users),
                S.c.template_id.in_(sorted({t for _, t in wanted})),
                S.c.accepted_count > 0,
            )
            .order_by(S.c.user_id, S.c.template_id)
        )
        if not self.db.is_sqlite:
            statement = statement.with_for_update()
        available = {
            (r.user_id, r.template_id): (r.id, r.accepted_count)
            for r in (await session.execute(statement)).all()
        }
        spends: list[dict[str, Any]] = []
        spent_ids: set[int] = set()
        for key, claims in wanted.items():
            if key not in available:
                continue
            sub_id, count = available[key]
            taken = claims[:count]
            spends.append({"sid": sub_id, "n": len(taken)})
            spent_ids.update(c.id for c in taken)
        if spends:
            await session.execute(
                update(S)
                .where(S.c.id == bindparam("sid"), S.c.accepted_count >= bindparam("n"))
                .values(accepted_count=S.c.accepted_count - bindparam("n"), updated_at=now),
                spends,
            )
        return spent_ids

    async def _write_claim(
        self,
        session: AsyncSession,
        sendable: list[Claimed],
        settled: list[tuple[Claimed, NotificationStatus, str]],
        now: datetime,
    ) -> None:
        if sendable:
            await session.execute(
                update(N)
                .where(N.c.id == bindparam("nid"))
                .values(template_id=bindparam("tid"), subscription_spent=True),
                [{"nid": c.id, "tid": c.template_id} for c in sendable],
            )
        by_outcome: dict[tuple[str, str], list[int]] = defaultdict(list)
        for c, status, reason in settled:
            by_outcome[(status.value, reason)].append(c.id)
        for (new_status, reason), ids in by_outcome.items():
            await session.execute(
                update(N)
                .where(N.c.id.in_(ids))
                .values(
                    status=new_status,
                    last_error=reason,
                    locked_until=None,
                    worker_id=None,
                    subscription_spent=False,
                    updated_at=now,
                )
            )
        # A reclaimed row settled here may hold a reservation from an earlier claim: give it
        # back, since this row will not be sent.
        held = sorted(
            ((c.recipient_id, c.template_id) for c, _, _ in settled if c.subscription_spent),
            key=lambda key: (key[0], key[1] or ""),
        )
        for user_id, template_id in held:
            await session.execute(
                update(S)
                .where(S.c.user_id == user_id, S.c.template_id == template_id)
                .values(accepted_count=S.c.accepted_count + 1, updated_at=now)
            )

    # --- 2. send -----------------------------------------------------------------------

    async def send_all(self, batch: Sequence[Claimed]) -> list[Result]:
        return list(await asyncio.gather(*(self._send_one(c) for c in batch)))

    async def _send_one(self, c: Claimed) -> Result:
        async with self._semaphore:
            # Leave a margin so that a send started now finishes inside the lease.
            margin = timedelta(seconds=min(self.settings.notify_lease_seconds / 4, 30))
            if utcnow() >= c.locked_until - margin:
                return Result(c, Outcome.lease_lost, "lease expired before sending")
            assert c.spec is not None and c.template_id is not None and c.openid
            data = render_data(
                c.spec, params=c.params, title=c.title, body=c.body, created_at=c.created_at
            )
            page = render_page(c.spec, c.params, c.page)
            try:
                await self.gateway.send_subscribe_message(
                    openid=c.openid,
                    template_id=c.template_id,
                    data=data,
                    page=page,
                    miniprogram_state=self.settings.wechat_miniprogram_state,
                )
            except wx.WeChatRateLimited as exc:
                return Result(c, Outcome.retry, f"rate_limited: {exc.errcode}")
            except wx.WeChatUnavailable as exc:
                return Result(c, Outcome.retry, f"unavailable: {exc.errcode} {exc.errmsg}")
            except wx.WeChatAPIError as exc:
                if exc.errcode == wx.NOT_SUBSCRIBED:
                    return Result(c, Outcome.not_subscribed, NO_SUBSCRIPTION)
                if exc.errcode == wx.BAD_TEMPLATE_DATA:
                    return Result(c, Outcome.failed, f"{BAD_DATA}: {exc.errmsg}")
                if exc.errcode in (wx.INVALID_TOKEN, wx.EXPIRED_TOKEN, wx.BUSY, wx.RATE_LIMIT):
                    return Result(c, Outcome.retry, f"wechat_{exc.errcode}: {exc.errmsg}")
                return Result(c, Outcome.failed, f"wechat_{exc.errcode}: {exc.errmsg}")
            except wx.WeChatError as exc:
                return Result(c, Outcome.retry, f"wechat_{exc.errcode}: {exc.errmsg}")
            except Exception as exc:  # a bug or an unexpected transport error: retry later
                logger.exception("sending notification %s failed unexpectedly", c.id)
                return Result(c, Outcome.retry, f"error: {type(exc).__name__}")
            return Result(c, Outcome.sent)

    # --- 3. record ---------------------------------------------------------------------

    async def record(self, results: Sequence[Result]) -> None:
        """Write the outcomes; retried a few times, since losing them means resending."""
        for attempt in range(4):
            try:
                async with self.db.transaction() as session:
                    await self._record(session, results)
                return
            except Exception:
                if attempt == 3:
                    logger.exception(
                        "recording %d outcomes failed; rows will be reclaimed", len(results)
                    )
                    raise
                await asyncio.sleep(0.2 * 2**attempt)

    async def _record(self, session: AsyncSession, results: Sequence[Result]) -> None:
        now = utcnow()
        mine = and_(N.c.status == NotificationStatus.sending.value, N.c.worker_id == self.worker_id)
        sent = [r.claimed.id for r in results if r.outcome == Outcome.sent]
        if sent:
            # WeChat accepted these: that is true whoever holds the row now.
            result = await session.execute(
                update(N)
                .where(N.c.id.in_(sent), N.c.status != NotificationStatus.sent.value)
                .values(
                    status=NotificationStatus.sent.value,
                    sent_at=now,
                    locked_until=None,
                    last_error=None,
                    updated_at=now,
                )
            )
            if (result.rowcount or 0) < len(sent):  # type: ignore[attr-defined]
                logger.warning("some sent notifications were already recorded as sent")
        refunds: list[Claimed] = []
        zeroed: list[Claimed] = []
        lost = [r.claimed.id for r in results if r.outcome == Outcome.lease_lost]
        if lost:
            # Not sent and, if nobody took them over yet, free again at once (no attempt spent).
            await session.execute(
                update(N)
                .where(N.c.id.in_(lost), mine)
                .values(
                    status=NotificationStatus.pending.value,
                    attempts=N.c.attempts - 1,
                    next_attempt_at=now,
                    locked_until=None,
                    updated_at=now,
                )
            )
        for r in results:
            c = r.claimed
            if r.outcome in (Outcome.sent, Outcome.lease_lost):
                continue
            values: dict[str, Any] = {"locked_until": None, "updated_at": now}
            refund = False
            if r.outcome == Outcome.retry and c.attempts < self.settings.notify_max_attempts:
                delay = backoff_seconds(c.attempts, self.settings.notify_backoff_base_seconds)
                values |= {
                    "status": NotificationStatus.pending.value,
                    "next_attempt_at": now + timedelta(seconds=delay),
                    "last_error": (r.reason or "")[:500],
                }
            elif r.outcome == Outcome.retry:
                values |= {
                    "status": NotificationStatus.failed.value,
                    "last_error": f"retries_exhausted: {r.reason}"[:500],
                    "subscription_spent": False,
                }
                refund = True
            elif r.outcome == Outcome.not_subscribed:
                values |= {
                    "status": NotificationStatus.skipped.value,
                    "last_error": NO_SUBSCRIPTION,
                    "subscription_spent": False,
                }
            else:
                values |= {
                    "status": NotificationStatus.failed.value,
                    "last_error": (r.reason or "failed")[:500],
                    "subscription_spent": False,
                }
                refund = True
            result = await session.execute(update(N).where(N.c.id == c.id, mine).values(**values))
            if not result.rowcount:  # type: ignore[attr-defined]
                continue  # another worker reclaimed it; its outcome wins
            if r.outcome == Outcome.not_subscribed:
                zeroed.append(c)
            elif refund:
                refunds.append(c)
        # Subscription rows last and in (user, template) order, like the claim: no deadlock.
        changes = [(c, True) for c in zeroed] + [(c, False) for c in refunds]
        for c, zero in sorted(changes, key=lambda x: (x[0].recipient_id, x[0].template_id or "")):
            which = update(S).where(S.c.user_id == c.recipient_id, S.c.template_id == c.template_id)
            if zero:
                # WeChat knows better than our count: the user has none left.
                await session.execute(which.values(accepted_count=0, updated_at=now))
            else:
                # WeChat did not use the user's subscription: give it back.
                await session.execute(
                    which.values(accepted_count=S.c.accepted_count + 1, updated_at=now)
                )

    # --- together ----------------------------------------------------------------------

    async def deliver_batch(self, limit: int | None = None) -> BatchStats:
        """Claim one batch, send it, record it."""
        batch = await self.claim(limit)
        stats = BatchStats(claimed=len(batch))
        if not batch:
            return stats
        results = await self.send_all(batch)
        await self.record(results)
        stats.outcomes.update(r.outcome.value for r in results)
        return stats

    async def drain(self, max_batches: int = 10_000) -> Counter[str]:
        """Deliver until nothing is due (or `max_batches`); the totals by outcome."""
        totals: Counter[str] = Counter()
        for _ in range(max_batches):
            stats = await self.deliver_batch()
            if stats.claimed == 0:
                break
            totals.update(stats.outcomes)
            totals["claimed"] += stats.claimed
        return totals
