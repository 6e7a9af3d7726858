"""The worker: delivers the outbox and runs the domains' periodic sweeps.

`python -m app.cli worker` runs it standalone (Ctrl-C or SIGTERM stop it after the batch in
hand); in development the API process runs one in the background too (app/runtime.py).
Any number of workers may run at once against PostgreSQL: outbox rows are claimed with
`FOR UPDATE SKIP LOCKED`, and each sweep runs under a lease row (`worker_lease`), so of
several workers one runs it per interval. The sweeps themselves are written to be safe
anyway (conditional UPDATEs), so a lease that expires mid-sweep costs time, not correctness.

A sweep is `async fn(session, now, settings) -> object` running in one transaction; add one
to `SWEEPS` (or call `register_sweep`) to have every worker run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import Database
from app.notify.delivery import Deliverer, new_worker_id
from app.notify.models import WorkerLease
from app.wechat.gateway import WeChatGateway

logger = logging.getLogger("app.notify.worker")

SweepFn = Callable[[AsyncSession, datetime, Settings], Awaitable[Any]]

# A sweep that failed is tried again after this long, not after its full interval.
SWEEP_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Sweep:
    name: str
    fn: SweepFn
    interval_seconds: float


# The domains' sweeps. Imported when run, so the worker does not load every domain up front.


async def _close_stale_checkins(session: AsyncSession, now: datetime, settings: Settings) -> int:
    from app.presence import service as presence_service

    return await presence_service.close_stale_checkins(session, now, settings=settings)


async def _expire_wishes(session: AsyncSession, now: datetime, settings: Settings) -> int:
    from app.wishes import service as wish_service

    return await wish_service.expire_due_wishes(session, now, settings)


async def _auto_complete_wishes(session: AsyncSession, now: datetime, settings: Settings) -> int:
    from app.wishes import service as wish_service

    return await wish_service.auto_complete_due_wishes(session, now, settings)


async def _mark_overdue_cases(session: AsyncSession, now: datetime, settings: Settings) -> int:
    from app.cases.sweeps import mark_overdue_cases

    return await mark_overdue_cases(session, now, settings)


async def _auto_resolve_cases(session: AsyncSession, now: datetime, settings: Settings) -> int:
    from app.cases.sweeps import auto_resolve_unrated

    return await auto_resolve_unrated(session, now, settings)


async def _purge_unlinked_uploads(session: AsyncSession, now: datetime, settings: Settings) -> int:
    from app.attachments import service as attachment_service

    return await attachment_service.purge_unlinked_uploads(session, now, settings)


async def _purge_submission_keys(session: AsyncSession, now: datetime, settings: Settings) -> int:
    from app.cases import idempotency

    return await idempotency.purge_submission_keys(session, now)


async def _purge_refresh_tokens(session: AsyncSession, now: datetime, settings: Settings) -> int:
    from app.identity import service as identity_service

    return await identity_service.purge_refresh_tokens(session)


async def _remind_activities(session: AsyncSession, now: datetime, settings: Settings) -> int:
    from app.activities import service as activity_service

    return await activity_service.send_due_reminders(session, now, settings)


async def _purge_key_windows(session: AsyncSession, now: datetime, settings: Settings) -> int:
    from app.integrations import service as integrations_service

    return await integrations_service.purge_key_windows(session, now)


async def _group_hotspots(session: AsyncSession, now: datetime, settings: Settings) -> int:
    from app.hotspots import service as hotspot_service

    return await hotspot_service.group_pending(session, now, settings)


# Intervals: overdue flags and due-soon warnings are time-critical for the units; the rest
# moves whole days, so hourly is plenty. Each sweep handles a bounded batch per run.
SWEEPS: list[Sweep] = [
    Sweep("cases.mark_overdue", _mark_overdue_cases, 300),
    # New cases join their hotspots within seconds, outside the submission's transaction.
    Sweep("hotspots.group_new_cases", _group_hotspots, 5),
    Sweep("cases.auto_resolve_unrated", _auto_resolve_cases, 3600),
    Sweep("wishes.expire_unclaimed", _expire_wishes, 3600),
    Sweep("wishes.auto_complete_fulfilled", _auto_complete_wishes, 3600),
    Sweep("presence.close_stale_checkins", _close_stale_checkins, 600),
    Sweep("activities.remind_day_before", _remind_activities, 600),
    Sweep("attachments.purge_unlinked", _purge_unlinked_uploads, 3600),
    Sweep("cases.purge_submission_keys", _purge_submission_keys, 86400),
    Sweep("identity.purge_refresh_tokens", _purge_refresh_tokens, 86400),
    Sweep("integrations.purge_key_windows", _purge_key_windows, 3600),
]


def register_sweep(name: str, fn: SweepFn, interval_seconds: float) -> None:
    """Add (or replace) a sweep every worker runs."""
    SWEEPS[:] = [s for s in SWEEPS if s.name != name]
    SWEEPS.append(Sweep(name, fn, interval_seconds))


class Worker:
    """One worker: a Deliverer for the outbox and the sweep scheduler."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        gateway: WeChatGateway,
        *,
        worker_id: str | None = None,
        sweeps: list[Sweep] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.deliverer = Deliverer(db, settings, gateway, worker_id=self.worker_id)
        # Webhooks: their own client and concurrency budget, run in a task of their own
        # (run_forever), so a receiver that hangs never holds up a WeChat message.
        from app.integrations.delivery import WebhookDeliverer

        self.webhooks = WebhookDeliverer(db, settings, worker_id=self.worker_id)
        self.sweeps = SWEEPS if sweeps is None else sweeps

    async def run_once(self) -> Counter[str]:
        """One pass: deliver everything due (WeChat and webhooks side by side), then every
        sweep that is due."""
        totals, webhooks = await asyncio.gather(self.deliverer.drain(), self.webhooks.drain())
        totals["webhooks"] += webhooks
        ran = await self.run_due_sweeps()
        totals["sweeps"] += len(ran)
        return totals

    async def close(self) -> None:
        await self.webhooks.close()

    async def _webhook_loop(self, stop: asyncio.Event) -> None:
        poll = self.settings.notify_poll_seconds
        while not stop.is_set():
            claimed = 0
            try:
                claimed = await self.webhooks.deliver_batch()
            except Exception:
                logger.exception("webhook pass failed; trying again in %.1fs", poll)
            if claimed < self.settings.webhook_batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=poll)

    async def run_due_sweeps(self) -> list[str]:
        """Run each sweep whose lease this worker takes; answers the names of those run."""
        ran = []
        for sweep in list(self.sweeps):
            now = utcnow()
            if not await self._take_lease(sweep, now):
                continue
            try:
                async with self.db.transaction() as session:
                    result = await sweep.fn(session, now, self.settings)
            except Exception as exc:
                logger.exception("sweep %s failed", sweep.name)
                await self._finish(
                    sweep, now, f"error: {type(exc).__name__}", retry_in=SWEEP_RETRY_SECONDS
                )
                continue
            await self._finish(sweep, now, f"ok: {result}")
            ran.append(sweep.name)
        return ran

    async def _take_lease(self, sweep: Sweep, now: datetime) -> bool:
        table = WorkerLease.__table__  # type: ignore[attr-defined]
        async with self.db.transaction() as session:
            insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            await session.execute(
                insert(table)
                .values(name=sweep.name)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            # `locked_until` is also "not before": taken, it holds for the whole interval.
            result = await session.execute(
                update(table)
                .where(
                    table.c.name == sweep.name,
                    or_(table.c.locked_until.is_(None), table.c.locked_until <= now),
                )
                .values(
                    holder=self.worker_id,
                    locked_until=now + timedelta(seconds=sweep.interval_seconds),
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _finish(
        self, sweep: Sweep, started: datetime, result: str, *, retry_in: float | None = None
    ) -> None:
        table = WorkerLease.__table__  # type: ignore[attr-defined]
        values: dict[str, Any] = {"last_run_at": started, "last_result": result[:500]}
        if retry_in is not None:
            values["locked_until"] = started + timedelta(seconds=retry_in)
        with contextlib.suppress(Exception):
            async with self.db.transaction() as session:
                await session.execute(
                    update(table)
                    .where(table.c.name == sweep.name, table.c.holder == self.worker_id)
                    .values(**values)
                )

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver and sweep until `stop` is set; sleeps only when nothing was due."""
        logger.info("notification worker %s started", self.worker_id)
        webhook_task = asyncio.create_task(self._webhook_loop(stop), name="webhook-delivery")
        try:
            await self._wechat_loop(stop)
        finally:
            stop.set()
            await webhook_task
        logger.info("notification worker %s stopped", self.worker_id)

    async def _wechat_loop(self, stop: asyncio.Event) -> None:
        poll = self.settings.notify_poll_seconds
        while not stop.is_set():
            busy = False
            try:
                stats = await self.deliverer.deliver_batch()
                busy = stats.claimed >= self.settings.notify_batch_size
                if not busy:
                    await self.run_due_sweeps()
            except Exception:
                logger.exception("worker pass failed; trying again in %.1fs", poll)
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=poll)


async def run_worker_forever(
    db: Database,
    settings: Settings,
    once: bool = False,
    *,
    gateway: WeChatGateway | None = None,
    stop: asyncio.Event | None = None,
) -> Counter[str] | None:
    """Run a worker until stopped (SIGINT/SIGTERM when standalone, `stop` when embedded),
    or for one pass with `once`. Creates its own gateway unless given one."""
    own_gateway = gateway is None
    fake = None
    if gateway is None:
        from app.runtime import wechat_settings

        gateway_settings, fake = wechat_settings(settings)
        if fake is not None:
            # Development without credentials nor WECHAT_API_BASE_URL: messages go to a fake
            # of our own (point WECHAT_API_BASE_URL at the API's fake to see them there).
            base_url = fake.start()
            gateway_settings = gateway_settings.model_copy(update={"wechat_api_base_url": base_url})
            logger.warning("no WeChat credentials: sending to a fake WeChat at %s", base_url)
        gateway = WeChatGateway(gateway_settings, db)
    worker = Worker(db, settings, gateway)
    handled: list[signal.Signals] = []
    try:
        if once:
            totals = await worker.run_once()
            logger.info("worker pass done: %s", dict(totals))
            return totals
        if stop is None:
            stop = asyncio.Event()
            if threading.current_thread() is threading.main_thread():
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.add_signal_handler(sig, stop.set)
                        handled.append(sig)
        await worker.run_forever(stop)
        return None
    finally:
        if handled:
            loop = asyncio.get_running_loop()
            for sig in handled:
                loop.remove_signal_handler(sig)
        await worker.close()
        if own_gateway:
            await gateway.close()
        if fake is not None:
            fake.stop()


@contextlib.asynccontextmanager
async def in_process_worker(
    db: Database, settings: Settings, gateway: WeChatGateway
) -> AsyncIterator[asyncio.Task[Any]]:
    """A worker in the background of the API process (development): started on entry,
    asked to stop on exit and given a few seconds to finish its batch."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_worker_forever(db, settings, gateway=gateway, stop=stop), name="notify-worker"
    )
    try:
        yield task
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=10)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
        except Exception:
            logger.exception("the in-process worker ended with an error")
