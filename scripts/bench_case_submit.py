"""Benchmark: case submission (POST /cases) against a bare one-row insert, on PostgreSQL.

    .venv/bin/python scripts/bench_case_submit.py [--residents 1000] [--rounds 3] [--connections 64]

Creates (or recreates) the PostgreSQL database `bench_case_submit`, builds the schema from the
models, seeds a district, a station, the case categories and `--residents` resident accounts,
starts the fake WeChat server in its own process (the content check calls it on every
submission, as in production), and serves, with uvicorn (one process):

1. the service with one extra route, `POST /bench/bare-insert`: the same FastAPI app, the same
   middleware, auth dependency and request transaction, doing one INSERT (the yardstick the
   target is measured against: "a bare one-row insert in the same run");
2. `POST /api/v1/cases`: every resident submits a case with an `Idempotency-Key`; each one
   is content-checked through the fake WeChat, writes the case, its number, the key row, its
   timeline entry, the resident's outbox and inbox rows, and answers the case with its timeline;
3. for context, a bare Starlette + asyncpg endpoint doing the same one INSERT (no framework).

It prints throughput and p50/p99 of each, in `--passes` alternating pairs (bare, then
submission, back to back, so load from other processes affects both alike), the ratio of
each pair and their median (target: submission >= 0.4x of 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Module level: the bare route's annotations are resolved from these globals.
from fastapi import Request  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app.core.db import SessionDep  # noqa: E402
from app.core.deps import CurrentPrincipal  # noqa: E402

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "bench_case_submit"
JWT_SECRET = "bench-secret-" + "c" * 40


def pg_url(driver: str = "postgresql") -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base.replace('postgresql', driver, 1)}/{DB_NAME}"


# The yardsticks ------------------------------------------------------------------------------


class BareBody(BaseModel):
    title: str
    content: str


def service_with_bare_insert() -> Any:
    """The real app plus `POST /bench/bare-insert`: one INSERT through the same stack."""
    from app.main import create_app

    app = create_app()

    @app.post("/bench/bare-insert", status_code=201, include_in_schema=False)
    async def bare_insert(
        body: BareBody, session: SessionDep, principal: CurrentPrincipal, request: Request
    ) -> dict[str, int]:
        row_id = (
            await session.execute(
                text(
                    "INSERT INTO bench_insert (user_id, title, content, created_at) "
                    "VALUES (:u, :t, :c, now()) RETURNING id"
                ),
                {"u": principal.user_id, "t": body.title, "c": body.content},
            )
        ).scalar_one()
        return {"id": int(row_id)}

    return app


def bare_starlette_app() -> Any:
    """No framework at all: Starlette and an asyncpg pool, one INSERT per request."""
    import asyncpg
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    state: dict[str, Any] = {}

    async def insert(request: Request) -> JSONResponse:
        body = await request.json()
        async with state["pool"].acquire() as conn:
            row_id = await conn.fetchval(
                "INSERT INTO bench_insert (user_id, title, content, created_at) "
                "VALUES (0, $1, $2, now()) RETURNING id",
                str(body["title"]),
                str(body["content"]),
            )
        return JSONResponse({"id": row_id}, status_code=201)

    async def lifespan(_app: Starlette) -> Any:
        size = int(os.environ.get("DB_POOL_SIZE", "32"))
        state["pool"] = await asyncpg.create_pool(pg_url(), min_size=size, max_size=size)
        yield
        await state["pool"].close()

    return Starlette(routes=[Route("/bare-insert", insert, methods=["POST"])], lifespan=lifespan)


# Setup ---------------------------------------------------------------------------------------


async def create_database(residents: int) -> tuple[list[str], int, int]:
    """Recreate and seed the database; answer the residents' tokens, station and category."""
    import asyncpg
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlmodel import SQLModel

    import app.models  # noqa: F401
    from app.cases.seed import seed_case_categories
    from app.core.config import Settings
    from app.core.security import Principal, Role, create_access_token
    from app.wechat.fake_server import DEV_APPID  # noqa: F401  (the fake must know it)

    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {DB_NAME}")
    await admin.close()

    engine = create_async_engine(pg_url("postgresql+asyncpg"))
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    from sqlalchemy.ext.asyncio import AsyncSession

    async with AsyncSession(engine) as session:
        await seed_case_categories(session)
        await session.commit()
    await engine.dispose()

    conn = await asyncpg.connect(pg_url())
    await conn.execute(
        "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, user_id int NOT NULL, "
        "title varchar(100) NOT NULL, content varchar(5000) NOT NULL, "
        "created_at timestamptz NOT NULL)"
    )
    region_id = await conn.fetchval(
        "INSERT INTO region (name, level, path, created_at) "
        "VALUES ('基准区', 'district', '/', now()) RETURNING id"
    )
    await conn.execute("UPDATE region SET path = $1 WHERE id = $2", f"/{region_id}/", region_id)
    station_id = await conn.fetchval(
        "INSERT INTO station (kind, name, region_id, latitude, longitude, radius_m, qr_mode, "
        "qr_version, is_active, version, created_at) VALUES ('station', '基准联络站', $1, "
        "31.2304, 121.4737, 300, 'printed', 1, true, 1, now()) RETURNING id",
        region_id,
    )
    category_id = await conn.fetchval("SELECT id FROM case_category WHERE code = 'municipal'")
    users = await conn.fetch(
        'INSERT INTO "user" (role, openid, is_active, failed_login_count, created_at) '
        "SELECT 'resident', 'bench-resident-' || g, true, 0, now() "
        "FROM generate_series(1, $1) g RETURNING id",
        residents,
    )
    await conn.execute("ANALYZE")
    await conn.close()

    settings = Settings(_env_file=None, jwt_secret=JWT_SECRET, access_token_ttl_seconds=86400)  # type: ignore[call-arg]
    tokens = [
        create_access_token(Principal(user_id=u["id"], role=Role.resident), settings) for u in users
    ]
    return tokens, station_id, category_id


# Processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_fake(port: int) -> None:
    """Run the fake WeChat server in this process until interrupted (`--serve-fake`)."""
    from app.wechat.fake_server import DEV_APPID, DEV_SECRET, FakeWeChat, FakeWeChatServer

    server = FakeWeChatServer(FakeWeChat({DEV_APPID: DEV_SECRET}), port=port)
    server.start()
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        server.stop()


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})


def uvicorn_cmd(target: str, port: int, factory: bool) -> list[str]:
    cmd = [str(ROOT / ".venv/bin/uvicorn"), target, "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--log-level", "warning", "--no-access-log", "--workers", "1"]
    cmd += ["--timeout-keep-alive", "60"]
    return cmd + (["--factory"] if factory else [])


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


# Load ----------------------------------------------------------------------------------------


Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def run(
    base_url: str, sends: list[Send], connections: int
) -> tuple[float, list[float], Counter[int]]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as client:
        # Warm the connections without counting it.
        await asyncio.gather(*(client.get("/healthz") for _ in range(connections * 2)))
        queue: asyncio.Queue[Send] = asyncio.Queue()
        for send in sends:
            queue.put_nowait(send)

        async def worker() -> None:
            while not queue.empty():
                send = queue.get_nowait()
                began = time.perf_counter()
                try:
                    response = await send(client)
                except httpx.TransportError:
                    statuses[0] += 1  # shown as status 0: a dropped connection
                    continue
                latencies.append(time.perf_counter() - began)
                statuses[response.status_code] += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    return elapsed, latencies, statuses


def summary(name: str, elapsed: float, latencies: list[float], statuses: Counter[int]) -> float:
    ordered = sorted(latencies)
    rate = len(ordered) / elapsed
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(
        f"  {name:<34} {len(ordered):>6} req  {rate:>7.0f} req/s  "
        f"p50 {p50:>7.1f} ms  p99 {p99:>7.1f} ms  statuses {dict(statuses)}"
    )
    return rate


def case_body(station_id: int, category_id: int, n: int) -> dict[str, Any]:
    return {
        "title": f"路灯不亮第{n}处",
        "content": "小区东门路灯坏了一个多月，晚上老人出行很不方便，希望尽快修复。",
        "category_id": category_id,
        "station_id": station_id,
        "latitude": 31.2305,
        "longitude": 121.4738,
        "address": "基准小区东门",
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="submissions per resident")
    parser.add_argument("--passes", type=int, default=6, help="alternating measurement pairs")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pool", type=int, default=32, help="database connections per server")
    parser.add_argument("--serve-fake", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(args.serve_fake)
        return

    print(f"seeding {DB_NAME}: {args.residents} residents ...")
    tokens, station_id, category_id = await create_database(args.residents)

    fake_port = free_port()
    fake = start([sys.executable, __file__, "--serve-fake", str(fake_port)], {})
    await wait_ready(f"http://127.0.0.1:{fake_port}/")
    env = {
        "APP_ENV": "development",
        "DATABASE_URL": pg_url("postgresql+asyncpg"),
        "DB_POOL_SIZE": str(args.pool),
        "JWT_SECRET": JWT_SECRET,
        "WECHAT_APPID": "",
        "WECHAT_SECRET": "",
        "WECHAT_API_BASE_URL": f"http://127.0.0.1:{fake_port}",
        "RUN_WORKER_IN_PROCESS": "false",
        "LOG_LEVEL": "WARNING",
        "CASE_SUBMIT_PER_HOUR": "10000",
        "CASE_SUBMIT_PER_DAY": "100000",
    }
    headers = [{"Authorization": f"Bearer {t}", "Content-Type": "application/json"} for t in tokens]
    results: dict[str, float] = {}
    pairs: list[tuple[float, float]] = []
    per_pass = args.connections * 4
    try:
        port = free_port()
        server = start(
            uvicorn_cmd("scripts.bench_case_submit:service_with_bare_insert", port, True), env
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(f"{base}/healthz")
            print(f"\nservice on PostgreSQL, {args.connections} connections, fake WeChat:")
            n = len(headers) * args.rounds

            def bare(i: int) -> Send:
                body = json.dumps(case_body(station_id, category_id, i))
                h = headers[i % len(headers)]
                return lambda c: c.post("/bench/bare-insert", headers=h, content=body)

            def submit(i: int) -> Send:
                body = json.dumps(case_body(station_id, category_id, i))
                h = {**headers[i % len(headers)], "Idempotency-Key": uuid.uuid4().hex}
                return lambda c: c.post("/api/v1/cases", headers=h, content=body)

            # Warm-up of both paths (first WeChat token, statement caches), not counted.
            await run(base, [bare(i) for i in range(256)], args.connections)
            await run(base, [submit(i) for i in range(256)], args.connections)
            # Alternating pairs: the machine's load drifts (other processes, checkpoints), so
            # each pair is measured back to back and the ratio is taken per pair.
            per_pass = max(per_pass, n // args.passes)
            offset = 0
            for p in range(args.passes):
                sends = [bare(offset + i) for i in range(per_pass)]
                bare_rate = summary(
                    f"pass {p + 1}: bare insert", *await run(base, sends, args.connections)
                )
                sends = [submit(offset + i) for i in range(per_pass)]
                case_rate = summary(
                    f"pass {p + 1}: POST /cases", *await run(base, sends, args.connections)
                )
                pairs.append((bare_rate, case_rate))
                offset += per_pass
        finally:
            stop(server)

        port = free_port()
        starlette = start(
            uvicorn_cmd("scripts.bench_case_submit:bare_starlette_app", port, True), env
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(f"{base}/bare-insert")

            def raw(i: int) -> Send:
                body = json.dumps(case_body(station_id, category_id, i))
                return lambda c: c.post("/bare-insert", content=body)

            print("\nfor context, no framework:")
            results["starlette"] = summary(
                "bare Starlette + asyncpg insert",
                *await run(base, [raw(i) for i in range(per_pass)], args.connections),
            )
        finally:
            stop(starlette)
    finally:
        stop(fake)

    ratios = sorted(case / bare for bare, case in pairs)
    bare_total = statistics.median(b for b, _ in pairs)
    case_total = statistics.median(c for _, c in pairs)
    print(
        "\nPOST /cases / bare insert (same stack), per pair: "
        + ", ".join(f"{r:.2f}" for r in ratios)
    )
    print(
        f"median ratio {statistics.median(ratios):.2f}x (target >= 0.40x); median throughput "
        f"{case_total:.0f} vs {bare_total:.0f} req/s"
    )
    print(
        f"POST /cases / bare Starlette insert: {case_total / results['starlette']:.2f}x "
        f"({results['starlette']:.0f} req/s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
