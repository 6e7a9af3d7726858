"""Outbox delivery benchmark: 20,000 WeChat messages drained against the fake WeChat over
HTTP, and alongside them 20,000 webhook calls to a local receiver.

    .venv/bin/python scripts/bench_outbox.py [--database-url URL] [--messages 20000]
        [--webhooks 20000]

Uses PostgreSQL (default: the `bench_notify` database on 127.0.0.1, created if missing; its
tables are dropped and rebuilt). The fake WeChat runs in a process of its own, and each
worker in a process of its own, as in production. For each of one and two workers it fills
the outbox (every recipient has accepted enough subscriptions), drains it, checks that every
message reached the fake exactly once, and prints messages per second. Target: ≥ 300/s with
one worker. Each worker delivers the webhook outbox at the same time, as the worker does
(its own task, client and concurrency budget), to a receiver in a process of its own that
counts the calls and their distinct event ids; it prints webhook calls per second.
Target: ≥ 300/s with one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

APPID = "wx-bench-appid"
SECRET = "wx-bench-secret"
DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_notify"
USERS = 2000
EVENTS = ["case.registered", "case.handling", "case.fed_back", "case.resolved", "wish.claimed"]


def _settings(url: str, base_url: str, **extra: Any) -> Any:
    from app.core.config import Settings

    values: dict[str, Any] = {
        "app_env": "development",
        "database_url": url,
        "jwt_secret": "bench-" + "x" * 40,
        "wechat_appid": APPID,
        "wechat_secret": SECRET,
        "wechat_api_base_url": base_url,
        "run_worker_in_process": False,
        "db_pool_size": 40,
        "log_level": "WARNING",
        # The receiver is a plain-HTTP server on 127.0.0.1.
        "webhook_allow_http": True,
        "webhook_allow_private_targets": True,
    }
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _serve_fake(port: int) -> None:
    from app.wechat.fake_server import FakeWeChat, FakeWeChatServer

    FakeWeChatServer(FakeWeChat({APPID: SECRET}), port=port).start()
    while True:
        time.sleep(3600)


def _serve_receiver(port: int) -> None:
    """A webhook receiver: answers 204 to every POST, counts calls and distinct event ids."""
    import uvicorn

    calls = {"n": 0}
    ids: set[str] = set()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            more = True
            while more:
                message = await receive()
                more = message.get("more_body", False)
            calls["n"] += 1
            for name, value in scope["headers"]:
                if name == b"x-webhook-id":
                    ids.add(value.decode())
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["path"] == "/_reset":
            calls["n"] = 0
            ids.clear()
        body = json.dumps({"calls": calls["n"], "distinct": len(ids)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fake(base_url: str, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(
        f"{base_url}{path}", method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


async def _ensure_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0].replace("postgresql+asyncpg", "postgresql") + "/postgres"
    conn = await asyncpg.connect(admin)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _fill(url: str, base_url: str, messages: int) -> None:
    """Fresh tables, USERS residents with accepted subscriptions, `messages` outbox rows."""
    from sqlalchemy import insert
    from sqlmodel import SQLModel

    import app.models  # noqa: F401
    from app.core.clock import utcnow
    from app.core.db import Database
    from app.identity.models import User
    from app.notify.models import InboxMessage, Notification, Subscription
    from app.notify.templates import TemplateRegistry

    db = Database(_settings(url, base_url))
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.drop_all)
            await conn.run_sync(SQLModel.metadata.create_all)
        registry = TemplateRegistry()
        per_user = -(-messages // USERS)
        now = utcnow()
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(User.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "id": i,
                        "role": "resident",
                        "openid": f"o-bench-{i:06d}",
                        "is_active": True,
                        "failed_login_count": 0,
                        "created_at": now,
                    }
                    for i in range(1, USERS + 1)
                ],
            )
            templates = sorted(registry.template_ids())
            await conn.execute(
                insert(Subscription.__table__),  # type: ignore[attr-defined]
                [
                    {"user_id": i, "template_id": t, "accepted_count": per_user, "updated_at": now}
                    for i in range(1, USERS + 1)
                    for t in templates
                ],
            )
            rows = []
            for n in range(messages):
                user = n % USERS + 1
                event = EVENTS[(n // USERS) % len(EVENTS)]
                rows.append(
                    {
                        "id": n + 1,
                        "recipient_id": user,
                        "event": event,
                        "dedupe_key": f"bench:{n}",
                        "title": "您反映的问题有新进展",
                        "body": "请点击查看详情",
                        "page": f"pages/case/detail?id={n}",
                        "params": {
                            "case_id": n,
                            "number": f"BENCH-{n:06d}",
                            "title": "小区路灯不亮",
                            "wish_id": n,
                            "time": now.isoformat(),
                        },
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "subscription_spent": False,
                        "created_at": now,
                    }
                )
            for start in range(0, len(rows), 5000):
                await conn.execute(insert(Notification.__table__), rows[start : start + 5000])  # type: ignore[attr-defined]
                await conn.execute(
                    insert(InboxMessage.__table__),  # type: ignore[attr-defined]
                    [
                        {
                            "user_id": r["recipient_id"],
                            "notification_id": r["id"],
                            "event": r["event"],
                            "title": r["title"],
                            "body": r["body"],
                            "page": r["page"],
                            "created_at": now,
                        }
                        for r in rows[start : start + 5000]
                    ],
                )
    finally:
        await db.dispose()


async def _fill_webhooks(url: str, base_url: str, receiver_url: str, calls: int) -> None:
    """One integrator with one endpoint on the local receiver, and `calls` due deliveries."""
    from sqlalchemy import insert

    from app.core.clock import utcnow
    from app.core.db import Database
    from app.identity.models import User
    from app.integrations.models import Integrator, Webhook, WebhookDelivery

    db = Database(_settings(url, base_url))
    now = utcnow()
    try:
        async with db.engine.begin() as conn:
            account = USERS + 1
            await conn.execute(
                insert(User.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "id": account,
                        "role": "staff",
                        "username": "integrator-bench",
                        "is_active": True,
                        "failed_login_count": 0,
                        "created_at": now,
                    }
                ],
            )
            await conn.execute(
                insert(Integrator.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "id": 1,
                        "name": "bench",
                        "allowed_ips": [],
                        "user_id": account,
                        "is_active": True,
                        "created_at": now,
                    }
                ],
            )
            await conn.execute(
                insert(Webhook.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "id": 1,
                        "integrator_id": 1,
                        "url": f"{receiver_url}/hook",
                        "events": ["case.*"],
                        "secret": "whsec_bench",
                        "status": "active",
                        "consecutive_failures": 0,
                        "created_at": now,
                    }
                ],
            )
            rows = [
                {
                    "webhook_id": 1,
                    "event_id": f"evt_bench_{n:08d}",
                    "event": "case.status_changed",
                    "payload": {
                        "id": f"evt_bench_{n:08d}",
                        "type": "case.status_changed",
                        "created_at": now.isoformat(),
                        "data": {"case_id": n, "status": "handling"},
                    },
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for n in range(calls)
            ]
            for start in range(0, len(rows), 5000):
                await conn.execute(insert(WebhookDelivery.__table__), rows[start : start + 5000])  # type: ignore[attr-defined]
    finally:
        await db.dispose()


async def _drain(url: str, base_url: str, worker_id: str) -> dict[str, Any]:
    """WeChat and webhooks side by side in one process, as the worker runs them; the time
    each channel took to drain."""
    from app.core.db import Database
    from app.integrations.delivery import WebhookDeliverer
    from app.notify.delivery import Deliverer
    from app.wechat.gateway import WeChatGateway

    settings = _settings(url, base_url)
    db = Database(settings)
    gateway = WeChatGateway(settings, db)
    webhooks = WebhookDeliverer(db, settings, worker_id=worker_id)
    started = time.perf_counter()

    async def timed(coro: Any) -> tuple[Any, float]:
        result = await coro
        return result, time.perf_counter() - started

    try:
        (totals, wechat_s), (delivered, webhook_s) = await asyncio.gather(
            timed(Deliverer(db, settings, gateway, worker_id=worker_id).drain()),
            timed(webhooks.drain()),
        )
        return {**dict(totals), "webhooks": delivered, "wechat_s": wechat_s, "webhook_s": webhook_s}
    finally:
        await webhooks.close()
        await gateway.close()
        await db.dispose()


def _worker_process(url: str, base_url: str, worker_id: str, out: Any) -> None:
    out.put((worker_id, asyncio.run(_drain(url, base_url, worker_id))))


async def _outcome(url: str, base_url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from app.core.db import Database
    from app.notify.models import Notification

    db = Database(_settings(url, base_url))
    try:
        async with db.transaction(write=False) as session:
            rows = await session.execute(
                select(Notification.status, func.count()).group_by(Notification.status)
            )
            return {str(status): int(count) for status, count in rows.all()}
    finally:
        await db.dispose()


async def _webhook_outcome(url: str, base_url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from app.core.db import Database
    from app.integrations.models import WebhookDelivery

    db = Database(_settings(url, base_url))
    try:
        async with db.transaction(write=False) as session:
            rows = await session.execute(
                select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
            )
            return {str(status): int(count) for status, count in rows.all()}
    finally:
        await db.dispose()


def run(
    url: str, messages: int, workers: int, base_url: str, receiver_url: str, calls: int
) -> tuple[float, float]:
    asyncio.run(_fill(url, base_url, messages))
    asyncio.run(_fill_webhooks(url, base_url, receiver_url, calls))
    _fake(base_url, "/_fake/reset", "POST")
    _fake(receiver_url, "/_reset")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_worker_process, args=(url, base_url, f"bench-{i}", out))
        for i in range(workers)
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join()
    statuses = asyncio.run(_outcome(url, base_url))
    received = _fake(base_url, "/_fake/messages")
    numbers = [
        m["data"]["character_string1"]["value"]
        for m in received
        if "character_string1" in m["data"]
    ]
    sent = statuses.get("sent", 0)
    per_worker = ", ".join(f"{wid}: {r.get('sent', 0)}" for wid, r in sorted(results))
    print(
        f"{workers} worker(s): {messages} messages in {elapsed:.1f} s = {messages / elapsed:,.0f} msg/s"
        f"  (sent {sent}; received by WeChat {len(received)}; per worker {per_worker})"
    )
    duplicates = len(received) - len({m["touser"] + m["page"] for m in received})
    if sent != messages or len(received) != messages or duplicates:
        print(
            f"  CHECK FAILED: statuses {statuses}, duplicates {duplicates}, numbers {len(set(numbers))}"
        )
    webhook_s = max(r["webhook_s"] for _, r in results)
    wechat_s = max(r["wechat_s"] for _, r in results)
    got = _fake(receiver_url, "/_stats")
    print(
        f"{workers} worker(s): {calls} webhook calls in {webhook_s:.1f} s = {calls / webhook_s:,.0f} calls/s"
        f" alongside WeChat ({messages / wechat_s:,.0f} msg/s while both ran)"
        f"  (receiver got {got['calls']} calls, {got['distinct']} distinct events)"
    )
    if got["distinct"] != calls:
        hooks = asyncio.run(_webhook_outcome(url, base_url))
        print(
            f"  CHECK FAILED: {got['distinct']} distinct webhook events of {calls}"
            f" (deliveries by status: {hooks}; pending ones wait for their retry)"
        )
    return messages / elapsed, calls / webhook_s


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--webhooks", type=int, default=20_000)
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("the benchmark runs on PostgreSQL")
    asyncio.run(_ensure_database(args.database_url))
    port = _free_port()
    ctx = mp.get_context("spawn")
    fake = ctx.Process(target=_serve_fake, args=(port,), daemon=True)
    fake.start()
    base_url = f"http://127.0.0.1:{port}"
    receiver_port = _free_port()
    receiver = ctx.Process(target=_serve_receiver, args=(receiver_port,), daemon=True)
    receiver.start()
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    for _ in range(100):
        try:
            _fake(base_url, "/_fake/openid?code=x")
            _fake(receiver_url, "/_stats")
            break
        except OSError:
            time.sleep(0.1)
    try:
        one, hooks_one = run(
            args.database_url, args.messages, 1, base_url, receiver_url, args.webhooks
        )
        two, hooks_two = run(
            args.database_url, args.messages, 2, base_url, receiver_url, args.webhooks
        )
    finally:
        fake.terminate()
        fake.join()
        receiver.terminate()
        receiver.join()
    print(
        f"target ≥ 300 msg/s with one worker: {'met' if one >= 300 else 'NOT met'} ({one:,.0f}); two workers {two:,.0f}"
    )
    print(
        f"target ≥ 300 webhook calls/s with one worker: {'met' if hooks_one >= 300 else 'NOT met'}"
        f" ({hooks_one:,.0f}); two workers {hooks_two:,.0f}"
    )
    return 0 if one >= 300 and hooks_one >= 300 else 1


if __name__ == "__main__":
    sys.exit(main())
