"""Benchmark: 1,000 deputies check in at once, against a bare one-insert endpoint.

    .venv/bin/python scripts/bench_checkin.py [--rounds 6] [--connections 64]

Creates (or recreates) the PostgreSQL database `bench_checkin`, builds the schema from the
models, seeds one station and 1,000 bound deputies, and then, one server at a time (uvicorn,
one process, LOG_LEVEL=WARNING):

1. the service (`app.main:create_app`): every deputy posts `POST /api/v1/checkins` with the
   station's printed scene, all at once over `--connections` HTTP connections. The repeat
   window is set to 0, so round 1 checks everyone in (INSERT), round 2 checks them out
   (UPDATE), round 3 in again, and so on;
2. a bare Starlette app (`bare_app` below, not part of the product): `POST /bare-insert`
   parses the same JSON body and does one INSERT through an asyncpg pool of the same size.

It prints throughput and p50/p99 latency of each, and the ratio (target: check-in >= 0.5x).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "bench_checkin"
JWT_SECRET = "bench-secret-" + "z" * 40


def pg_url(driver: str = "postgresql") -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base.replace('postgresql', driver, 1)}/{DB_NAME}"


# The bare endpoint ---------------------------------------------------------------------------


def bare_app() -> Any:
    """A minimal Starlette app doing one INSERT per request: the yardstick."""
    import asyncpg
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    state: dict[str, Any] = {}

    async def insert(request: Request) -> JSONResponse:
        body = await request.json()
        async with state["pool"].acquire() as conn:
            row_id = await conn.fetchval(
                "INSERT INTO bench_insert (deputy_id, latitude, longitude, created_at) "
                "VALUES ($1, $2, $3, now()) RETURNING id",
                int(body["deputy_id"]),
                float(body["latitude"]),
                float(body["longitude"]),
            )
        return JSONResponse({"id": row_id}, status_code=201)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        size = int(os.environ.get("DB_POOL_SIZE", "32"))
        state["pool"] = await asyncpg.create_pool(pg_url(), min_size=size, max_size=size)
        yield
        await state["pool"].close()

    return Starlette(routes=[Route("/bare-insert", insert, methods=["POST"])], lifespan=lifespan)


# Setup ---------------------------------------------------------------------------------------


async def create_database(deputies: int) -> tuple[list[str], str]:
    """Recreates the database, seeds it, and answers the deputies' tokens and the scene."""
    import asyncpg
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlmodel import SQLModel

    import app.models  # noqa: F401
    from app.core.config import Settings
    from app.core.security import Principal, Role, create_access_token
    from app.presence.scene import printed_scene

    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {DB_NAME}")
    await admin.close()

    engine = create_async_engine(pg_url("postgresql+asyncpg"))
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    await engine.dispose()

    conn = await asyncpg.connect(pg_url())
    await conn.execute(
        "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, deputy_id int NOT NULL, "
        "latitude double precision, longitude double precision, created_at timestamptz NOT NULL)"
    )
    region_id = await conn.fetchval(
        "INSERT INTO region (name, level, path, created_at) VALUES ('基准区', 'district', '/', now()) "
        "RETURNING id"
    )
    await conn.execute("UPDATE region SET path = $1 WHERE id = $2", f"/{region_id}/", region_id)
    station_id = await conn.fetchval(
        "INSERT INTO station (kind, name, region_id, latitude, longitude, radius_m, qr_mode, "
        "qr_version, is_active, version, created_at) VALUES ('station', '基准联络站', $1, "
        "31.2304, 121.4737, 300, 'printed', 1, true, 1, now()) RETURNING id",
        region_id,
    )
    deputy_ids = [
        r["id"]
        for r in await conn.fetch(
            "INSERT INTO deputy (name, level, region_id, is_active, version, created_at) "
            "SELECT '代表' || g, 'district', $1, true, 1, now() FROM generate_series(1, $2) g "
            "RETURNING id",
            region_id,
            deputies,
        )
    ]
    users = await conn.fetch(
        'INSERT INTO "user" (role, openid, deputy_id, is_active, failed_login_count, created_at) '
        "SELECT 'deputy', 'bench-openid-' || d, d, true, 0, now() FROM unnest($1::int[]) d "
        "RETURNING id, deputy_id",
        deputy_ids,
    )
    await conn.execute(
        "INSERT INTO deputy_station (deputy_id, station_id) SELECT d, $1 FROM unnest($2::int[]) d",
        station_id,
        deputy_ids,
    )
    await conn.execute("ANALYZE")
    await conn.close()

    settings = Settings(_env_file=None, jwt_secret=JWT_SECRET, access_token_ttl_seconds=86400)  # type: ignore[call-arg]
    tokens = [
        create_access_token(
            Principal(user_id=u["id"], role=Role.deputy, deputy_id=u["deputy_id"]), settings
        )
        for u in users
    ]
    return tokens, printed_scene(settings, station_id, 1)


# Load ----------------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(target: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [
        str(ROOT / ".venv/bin/uvicorn"),
        *target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        "1",
        # Longer than any round, so an idle keep-alive connection is never closed under
        # the client while it sends.
        "--timeout-keep-alive",
        "120",
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


async def run_round(
    requests: list[Callable[[], Awaitable[httpx.Response]]], connections: int
) -> tuple[float, list[float], Counter[int | str]]:
    """Sends every request, `connections` at a time (one worker per connection: a
    thousand tasks queued on httpx's pool would measure the client, not the server)."""
    latencies: list[float] = []
    statuses: Counter[int | str] = Counter()
    queue = list(reversed(requests))

    async def worker() -> None:
        while queue:
            send = queue.pop()
            started = time.perf_counter()
            try:
                response = await send()
            except httpx.TransportError as exc:
                statuses[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started, latencies, statuses


def summary(
    name: str, elapsed: float, latencies: list[float], statuses: Counter[int | str]
) -> float:
    latencies = sorted(latencies)
    rate = len(latencies) / elapsed
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(
        f"  {name:<24} {len(latencies):>6} req  {rate:>8.0f} req/s  "
        f"p50 {p50:>6.1f} ms  p99 {p99:>6.1f} ms  statuses {dict(statuses)}",
        flush=True,
    )
    return rate


async def load(
    pid: int,
    base_url: str,
    path: str,
    bodies: list[tuple[dict[str, str], dict[str, Any]]],
    rounds: int,
    connections: int,
    label: Callable[[int], str],
) -> tuple[float, float]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        # Warm the connections and the server's caches without counting it.
        await run_round(
            [lambda: client.get("/healthz") for _ in range(connections * 4)], connections
        )
        total_elapsed, all_latencies, all_statuses = 0.0, [], Counter[int | str]()
        cpu_before = process_cpu_seconds(pid)
        for n in range(rounds):
            sends = [
                (lambda h=headers, b=body: client.post(path, headers=h, content=json.dumps(b)))
                for headers, body in bodies
            ]
            elapsed, latencies, statuses = await run_round(sends, connections)
            summary(label(n), elapsed, latencies, statuses)
            total_elapsed += elapsed
            all_latencies += latencies
            all_statuses += statuses
        cpu_ms = (process_cpu_seconds(pid) - cpu_before) * 1000 / max(1, len(all_latencies))
        rate = summary("all rounds", total_elapsed, all_latencies, all_statuses)
        print(f"  server CPU per request    {cpu_ms:.2f} ms", flush=True)
        return rate, cpu_ms


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deputies", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--pool-size", type=int, default=32)
    args = parser.parse_args()

    print(f"seeding {args.deputies} deputies in database {DB_NAME} ...")
    tokens, scene = await create_database(args.deputies)
    body = {"scene": scene, "latitude": 31.2305, "longitude": 121.4738, "accuracy": 20.0}
    json_headers = {"Content-Type": "application/json"}
    env = {
        "DATABASE_URL": pg_url("postgresql+asyncpg"),
        "DB_POOL_SIZE": str(args.pool_size),
        "JWT_SECRET": JWT_SECRET,
        "LOG_LEVEL": "WARNING",
        "APP_ENV": "development",
        "RUN_WORKER_IN_PROCESS": "false",
        "CHECKIN_REPEAT_WINDOW_SECONDS": "0",
    }
    print(
        f"{args.deputies} deputies x {args.rounds} rounds, {args.connections} connections, "
        f"pool {args.pool_size}, one uvicorn process each\n"
    )

    port = free_port()
    server = start_server(["--factory", "app.main:create_app"], port, env)
    try:
        await wait_ready(f"http://127.0.0.1:{port}/healthz")
        print("POST /api/v1/checkins (the service)")
        checkin_bodies = [
            ({**json_headers, "Authorization": f"Bearer {token}"}, body) for token in tokens
        ]
        checkin_rate, checkin_cpu = await load(
            server.pid,
            f"http://127.0.0.1:{port}",
            "/api/v1/checkins",
            checkin_bodies,
            args.rounds,
            args.connections,
            lambda n: f"round {n + 1} ({'check in' if n % 2 == 0 else 'check out'})",
        )
    finally:
        stop_server(server)

    port = free_port()
    server = start_server(
        ["--app-dir", str(ROOT / "scripts"), "--factory", "bench_checkin:bare_app"], port, env
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}/healthz")
        print("\nPOST /bare-insert (bare Starlette + asyncpg, one INSERT)")
        bare_bodies = [
            (json_headers, {"deputy_id": i + 1, "latitude": 31.2305, "longitude": 121.4738})
            for i in range(len(tokens))
        ]
        bare_rate, bare_cpu = await load(
            server.pid,
            f"http://127.0.0.1:{port}",
            "/bare-insert",
            bare_bodies,
            args.rounds,
            args.connections,
            lambda n: f"round {n + 1}",
        )
    finally:
        stop_server(server)

    ratio = checkin_rate / bare_rate
    verdict = "meets" if ratio >= 0.5 else "misses"
    print(f"\ncheck-in / bare insert throughput: {ratio:.2f}x ({verdict} the 0.5x target)")
    # The client shares the machine's cores; the server's own CPU per request says what
    # each endpoint would sustain with the cores to itself.
    print(
        f"check-in / bare insert by server CPU per request: {bare_cpu / checkin_cpu:.2f}x "
        f"({checkin_cpu:.2f} ms vs {bare_cpu:.2f} ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
