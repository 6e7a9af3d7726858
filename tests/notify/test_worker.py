"""The worker loop: one pass, running until stopped, in-process in development, sweeps."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import clock, utcnow
from app.core.config import Settings
from app.core.db import Database
from app.main import create_app
from app.notify.models import NotificationStatus, WorkerLease
from app.notify.templates import CASE_PROGRESS
from app.notify.worker import SWEEPS, Sweep, run_worker_forever
from app.wechat.fake_server import FakeWeChat
from app.wechat.gateway import WeChatGateway
from tests.conftest import make_settings
from tests.factories import Factory
from tests.notify.conftest import Harness


async def _wait_for_status(harness: Harness, nid: int, status: NotificationStatus) -> None:
    for _ in range(400):  # bounded: at most ~20 s
        if (await harness.row(nid)).status == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"notification {nid} never became {status}")


async def test_sweeps_run_once_per_interval_across_workers(harness: Harness) -> None:
    clock.freeze(utcnow())
    runs: list[datetime] = []

    async def sweep(session: AsyncSession, now: datetime, settings: Settings) -> int:
        runs.append(now)
        return len(runs)

    sweeps = [Sweep("test.sweep", sweep, 600)]
    first, second = harness.worker(sweeps), harness.worker(sweeps)
    ran = await asyncio.gather(first.run_due_sweeps(), second.run_due_sweeps())
    assert sorted(ran) == [[], ["test.sweep"]]
    assert await first.run_due_sweeps() == []
    clock.advance(timedelta(seconds=599))
    assert await second.run_due_sweeps() == []
    clock.advance(timedelta(seconds=2))
    assert await second.run_due_sweeps() == ["test.sweep"]
    assert len(runs) == 2


async def test_a_failing_sweep_rolls_back_and_is_tried_again_soon(
    harness: Harness, factory: Factory, db: Database
) -> None:
    clock.freeze(utcnow())
    resident = await factory.resident()
    calls: list[int] = []

    async def broken(session: AsyncSession, now: datetime, settings: Settings) -> Any:
        from app.notify import service

        calls.append(1)
        await service.enqueue(
            session,
            recipient_id=resident.id,
            event="case.due_soon",
            dedupe_key=f"broken:{len(calls)}",
            title="t",
            body="b",
        )
        raise RuntimeError("boom")

    worker = harness.worker([Sweep("test.broken", broken, 3600)])
    assert await worker.run_due_sweeps() == []
    assert await harness.rows() == []  # its transaction rolled back
    clock.advance(timedelta(seconds=30))
    await worker.run_due_sweeps()
    assert len(calls) == 1
    clock.advance(timedelta(seconds=31))
    await worker.run_due_sweeps()
    assert len(calls) == 2


def test_domain_sweeps_are_registered() -> None:
    names = {s.name for s in SWEEPS}
    assert names == {
        "cases.mark_overdue",
        "cases.auto_resolve_unrated",
        "wishes.expire_unclaimed",
        "wishes.auto_complete_fulfilled",
        "presence.close_stale_checkins",
        "activities.remind_day_before",
        "attachments.purge_unlinked",
        "cases.purge_submission_keys",
        "identity.purge_refresh_tokens",
        "integrations.purge_key_windows",
        "hotspots.group_new_cases",
    }
    assert all(s.interval_seconds > 0 for s in SWEEPS)


async def test_one_pass_delivers_everything_due(
    harness: Harness, factory: Factory, db: Database, fake_wechat: FakeWeChat
) -> None:
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS, count=5)
    ids = [await harness.enqueue(resident.id, "case.handling", key=f"k{i}") for i in range(5)]
    settings = harness.settings(notify_batch_size=2)
    gateway = WeChatGateway(settings, db)
    try:
        totals = await run_worker_forever(db, settings, once=True, gateway=gateway)
    finally:
        await gateway.close()
    assert totals is not None and totals["sent"] == 5 and totals["claimed"] == 5
    # every domain sweep ran, and ran cleanly (on an empty district: nothing to do)
    assert totals["sweeps"] == len(SWEEPS)
    async with db.transaction(write=False) as session:
        leases = (await session.execute(select(WorkerLease))).scalars().all()
    assert {lease.name: lease.last_result for lease in leases} == {s.name: "ok: 0" for s in SWEEPS}
    assert [(await harness.row(i)).status for i in ids] == [NotificationStatus.sent] * 5
    assert len(fake_wechat.messages(resident.user.openid)) == 5


async def test_worker_runs_until_stopped(
    harness: Harness, factory: Factory, db: Database, fake_wechat: FakeWeChat
) -> None:
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS, count=2)
    settings = harness.settings(notify_poll_seconds=0.05)
    gateway = WeChatGateway(settings, db)
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker_forever(db, settings, gateway=gateway, stop=stop))
    try:
        first = await harness.enqueue(resident.id, "case.handling", key="a")
        await _wait_for_status(harness, first, NotificationStatus.sent)
        second = await harness.enqueue(resident.id, "case.fed_back", key="b")
        await _wait_for_status(harness, second, NotificationStatus.sent)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        await gateway.close()
    assert task.done() and task.exception() is None
    assert len(fake_wechat.messages(resident.user.openid)) == 2


async def test_development_server_runs_the_worker_in_process(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS)
    settings = make_settings(run_worker_in_process=True, notify_poll_seconds=0.05)
    assert settings.worker_in_process
    assert not make_settings().worker_in_process  # the tests turn it off
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        nid = await harness.enqueue(resident.id, "case.handling", key="dev")
        await _wait_for_status(harness, nid, NotificationStatus.sent)
    assert len(fake_wechat.messages(resident.user.openid)) == 1


def test_production_does_not_run_the_worker_in_process() -> None:
    settings = make_settings(app_env="development")
    assert settings.model_copy(update={"app_env": "production"}).worker_in_process is False
    assert (
        settings.model_copy(update={"app_env": "production", "run_worker_in_process": True})
    ).worker_in_process is True
