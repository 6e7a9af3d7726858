"""Benchmark of the dashboard on real volumes, on PostgreSQL.

Builds a database (dropped and created afresh) with one district of 20 streets and 200
communities, 300 stations, 2,000 deputies, 1,000,000 cases over two years, 100,000 wishes,
200,000 check-ins, 60,000 duty slots, 100,000 receptions, then calls the dashboard
endpoints through the app (httpx ASGI transport, the real routers, dependencies and
queries) and prints timings. Two rounds: without the dashboard's covering indexes on the
cases and wishes tables (COVERING_INDEXES, which the models declare), to show what they
buy, and with them, as the migrations build the schema.
Last, the case export streams 100,000 rows as CSV and as XLSX while the process's peak
resident memory is measured.

    .venv/bin/python scripts/bench_stats.py [--cases 1000000] [--keep]

The server is taken from BENCH_PG (default postgresql://postgres@127.0.0.1:5432); the
database is `bench_dashboard`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import SQLModel  # noqa: E402

import app.models  # noqa: E402, F401
from app.core.clock import SHANGHAI  # noqa: E402
from app.core.config import Settings  # noqa: E402
from app.core.security import Principal, Role, create_access_token  # noqa: E402
from app.core.sorting import pinyin_key  # noqa: E402
from app.main import create_app  # noqa: E402

DB_NAME = "bench_dashboard"
SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")

STREETS = 20
COMMUNITIES_PER_STREET = 10
STATIONS = 300
UNITS = 50
CATEGORIES = 12
DEPUTIES = 2000
RESIDENTS = 20000

# The covering indexes the dashboard's queries use, as declared on the Case and Wish models.
COVERING_INDEXES = {
    # the cohort registered in a date range: index-only scan
    "ix_case_created_at_cover": '"case" (created_at) INCLUDE (region_id, status, deadline_at, '
    "supervised_count, satisfaction)",
    # the backlog now (open cases of a region): a small partial index
    "ix_case_open_region": '"case" (region_id) INCLUDE (status, deadline_at, supervised_count) '
    "WHERE status IN ('registered', 'handling', 'fed_back')",
    # the response rate (deadlines falling in a range)
    "ix_case_deadline_at_cover": '"case" (deadline_at) INCLUDE (region_id, status, fed_back_at)',
    "ix_wish_created_at": "wish (created_at) INCLUDE (region_id, status)",
    "ix_wish_claimed_at": "wish (claimed_at)",
}


def log(message: str) -> None:
    print(message, flush=True)


async def recreate_database() -> None:
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DB_NAME}")
    finally:
        await conn.close()


async def create_schema(settings: Settings) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    await engine.dispose()


def load_statements(n_cases: int, now: datetime) -> list[tuple[str, str]]:
    """(label, SQL) in order. Every row is made by the database (generate_series)."""
    n_communities = STREETS * COMMUNITIES_PER_STREET
    first_community = 2 + STREETS  # ids: 1 district, 2..21 streets, then communities
    start = now - timedelta(days=730)
    span_s = int((now - start).total_seconds())
    ts = f"'{start.isoformat()}'::timestamptz"

    def key(prefix: str, number: str) -> str:
        """SQL for the pinyin sort key of `prefix` followed by the number `number`."""
        return f"'{pinyin_key(prefix)} ' || {number}"

    return [
        ("seed", "SELECT setseed(0.42)"),
        (
            "regions",
            f"""
            INSERT INTO region (id, name, name_sort, level, parent_id, path, created_at)
            VALUES (1, '示例区', '{pinyin_key("示例区")}', 'district', NULL, '/1/', now());
            INSERT INTO region (id, name, name_sort, level, parent_id, path, created_at)
            SELECT 1 + s, '街道' || s, {key("街道", "s")}, 'street', 1, '/1/' || (1 + s) || '/', now()
            FROM generate_series(1, {STREETS}) s;
            INSERT INTO region (id, name, name_sort, level, parent_id, path, created_at)
            SELECT {first_community} + c, '社区' || c, {key("社区", "c")}, 'community',
                   2 + c / {COMMUNITIES_PER_STREET},
                   '/1/' || (2 + c / {COMMUNITIES_PER_STREET}) || '/' || ({first_community} + c) || '/',
                   now()
            FROM generate_series(0, {n_communities - 1}) c;
            SELECT setval(pg_get_serial_sequence('region', 'id'), (SELECT max(id) FROM region));
            """,
        ),
        (
            "stations, units, categories",
            f"""
            INSERT INTO station (id, kind, name, name_sort, region_id, latitude, longitude, radius_m,
                                 qr_mode, qr_version, is_active, version, created_at)
            SELECT s, 'station', '联络站' || s, {key("联络站", "s")},
                   {first_community} + (s % {n_communities}),
                   31.2 + s * 0.0001, 121.4, 300, 'printed', 1, true, 1, now()
            FROM generate_series(1, {STATIONS}) s;
            SELECT setval(pg_get_serial_sequence('station', 'id'), {STATIONS});
            INSERT INTO unit (id, name, name_sort, kind, is_active, created_at)
            SELECT u, '承办单位' || u, {key("承办单位", "u")}, 'government', true, now()
            FROM generate_series(1, {UNITS}) u;
            SELECT setval(pg_get_serial_sequence('unit', 'id'), {UNITS});
            INSERT INTO case_category (id, code, name, name_sort, default_deadline_days, sort_order,
                                       is_active)
            SELECT c, 'cat' || c, '类别' || c, {key("类别", "c")}, 10, c, true
            FROM generate_series(1, {CATEGORIES}) c;
            SELECT setval(pg_get_serial_sequence('case_category', 'id'), {CATEGORIES});
            """,
        ),
        (
            "deputies and users",
            f"""
            INSERT INTO deputy (id, name, name_sort, level, region_id, is_active, version, created_at)
            SELECT d, '代表' || d, {key("代表", "d")}, 'district',
                   {first_community} + (d % {n_communities}), true, 1, now()
            FROM generate_series(1, {DEPUTIES}) d;
            SELECT setval(pg_get_serial_sequence('deputy', 'id'), {DEPUTIES});
            INSERT INTO deputy_station (deputy_id, station_id)
            SELECT d, 1 + (d % {STATIONS}) FROM generate_series(1, {DEPUTIES}) d;
            INSERT INTO "user" (id, role, openid, deputy_id, is_active, failed_login_count, created_at)
            SELECT d, 'deputy', 'dep-' || d, d, true, 0, now() FROM generate_series(1, {DEPUTIES}) d;
            INSERT INTO "user" (id, role, openid, phone, is_active, failed_login_count, created_at)
            SELECT {DEPUTIES} + r, 'resident', 'res-' || r, '139' || lpad(r::text, 8, '0'), true, 0, now()
            FROM generate_series(1, {RESIDENTS}) r;
            INSERT INTO "user" (id, role, username, region_id, is_active, failed_login_count, created_at)
            VALUES ({DEPUTIES + RESIDENTS + 1}, 'staff', 'district-staff', 1, true, 0, now()),
                   ({DEPUTIES + RESIDENTS + 2}, 'staff', 'street-staff', 2, true, 0, now()),
                   ({DEPUTIES + RESIDENTS + 3}, 'admin', 'admin', NULL, true, 0, now());
            SELECT setval(pg_get_serial_sequence('user', 'id'), {DEPUTIES + RESIDENTS + 3});
            """,
        ),
        (
            f"{n_cases:,} cases",
            f"""
            INSERT INTO "case" (id, number, title, content, category_id, region_id, station_id,
                attachment_ids, status, channel, submitter_id, owner_id, contact_name, contact_phone,
                lead_unit_id, assigned_at, deadline_at, calendar_fallback, overdue,
                supervised_count, reopen_count, sent_back_count, fed_back_at, satisfaction,
                rated_at, resolved_at, resolution, version, created_at)
            SELECT g, to_char(created, 'YYYYMMDD') || '-' || g, '问题' || g, '内容',
                1 + g % {CATEGORIES}, {first_community} + g % {n_communities},
                CASE WHEN g % 2 = 0 THEN 1 + g % {STATIONS} END,
                '[]', status, CASE WHEN deputy THEN 'deputy' ELSE 'miniprogram' END,
                submitter, submitter, '居民' || g, '138' || lpad((g % 100000000)::text, 8, '0'),
                CASE WHEN assigned THEN 1 + g % {UNITS} END,
                CASE WHEN assigned THEN created + interval '4 hours' END,
                CASE WHEN assigned THEN created + interval '14 days' END,
                false,
                status = 'handling' AND created + interval '14 days' < now(),
                CASE WHEN r3 > 0.9 THEN 1 ELSE 0 END,
                CASE WHEN reopened THEN 1 ELSE 0 END, 0,
                fed_back,
                satisfaction,
                CASE WHEN satisfaction IS NOT NULL THEN fed_back + interval '1 day' END,
                CASE WHEN status = 'resolved' THEN fed_back + r4 * interval '5 days' END,
                CASE WHEN status = 'resolved' THEN 'rated' END,
                1, created
            FROM (
                SELECT g, created, status, r3, r4, deputy, submitter,
                       status NOT IN ('registered', 'rejected', 'merged') AS assigned,
                       status = 'resolved' AND r4 > 0.97 AS reopened,
                       CASE WHEN status IN ('fed_back', 'resolved')
                            THEN created + r3 * interval '20 days' END AS fed_back,
                       CASE WHEN status = 'resolved' AND r4 < 0.7 THEN 'satisfied'
                            WHEN status = 'resolved' AND r4 < 0.95 THEN 'basically_satisfied'
                            WHEN status = 'fed_back' AND r4 < 0.3 THEN 'dissatisfied' END
                            AS satisfaction
                FROM (
                    SELECT g, {ts} + (g::float8 / {n_cases}) * interval '{span_s} seconds'
                                 + r1 * interval '10 minutes' AS created, r3, r4,
                           r5 < 0.02 AS deputy,
                           CASE WHEN r5 < 0.02 THEN 1 + g % {DEPUTIES}
                                ELSE {DEPUTIES} + 1 + g % {RESIDENTS} END AS submitter,
                           -- cases of the last 60 days are often still open; older ones
                           -- are mostly closed, as in a working district
                           CASE WHEN g > {n_cases} * 0.92
                                THEN CASE WHEN r2 < 0.05 THEN 'registered'
                                          WHEN r2 < 0.25 THEN 'handling'
                                          WHEN r2 < 0.40 THEN 'fed_back'
                                          WHEN r2 < 0.95 THEN 'resolved'
                                          WHEN r2 < 0.98 THEN 'rejected' ELSE 'merged' END
                                ELSE CASE WHEN r2 < 0.002 THEN 'registered'
                                          WHEN r2 < 0.012 THEN 'handling'
                                          WHEN r2 < 0.022 THEN 'fed_back'
                                          WHEN r2 < 0.95 THEN 'resolved'
                                          WHEN r2 < 0.98 THEN 'rejected' ELSE 'merged' END
                           END AS status
                    FROM (SELECT g, random() r1, random() r2, random() r3, random() r4, random() r5
                          FROM generate_series(1, {n_cases}) g) raw
                ) shaped
            ) final;
            -- a case registered lately is not resolved yet: keep the newest 3 days open
            UPDATE "case" SET status = 'handling', resolved_at = NULL, satisfaction = NULL,
                   fed_back_at = NULL, resolution = NULL
             WHERE created_at > now() - interval '3 days' AND status IN ('resolved', 'fed_back');
            SELECT setval(pg_get_serial_sequence('case', 'id'), {n_cases});
            INSERT INTO case_event (case_id, action, to_status, actor_role, round, data, created_at)
            SELECT id, 'reply', 'fed_back', 'unit', 0, '{{}}', created_at + interval '2 days'
            FROM "case" WHERE reopen_count > 0;
            INSERT INTO case_follow (case_id, user_id, deputy_id, source, created_at)
            SELECT g * 20, 1 + g % {DEPUTIES}, 1 + g % {DEPUTIES}, 'follow',
                   (SELECT created_at FROM "case" WHERE id = g * 20) + interval '1 day'
            FROM generate_series(1, {n_cases // 20}) g;
            """,
        ),
        (
            "100,000 wishes",
            f"""
            INSERT INTO wish (resident_id, title, content, beneficiary_name, region_id, station_id,
                status, content_check, published_at, claimed_by_deputy_id, claimed_at,
                fulfilled_at, completed_at, version, created_at)
            SELECT {DEPUTIES} + 1 + g % {RESIDENTS}, '心愿' || g, '原因', '小明',
                   {first_community} + g % {n_communities}, 1 + g % {STATIONS}, status, 'passed',
                   created + interval '1 day',
                   CASE WHEN status IN ('claimed', 'fulfilled', 'completed') THEN 1 + g % {DEPUTIES} END,
                   CASE WHEN status IN ('claimed', 'fulfilled', 'completed') THEN created + interval '3 days' END,
                   CASE WHEN status IN ('fulfilled', 'completed') THEN created + interval '10 days' END,
                   CASE WHEN status = 'completed' THEN created + interval '12 days' END,
                   1, created
            FROM (
                SELECT g, {ts} + (g / 100000.0) * interval '{span_s} seconds' AS created,
                       (ARRAY['pending_review', 'published', 'claimed', 'fulfilled', 'completed',
                              'completed', 'completed', 'rejected', 'withdrawn', 'expired'])
                              [1 + floor(random() * 10)::int] AS status
                FROM generate_series(1, 100000) g
            ) w;
            """,
        ),
        (
            "duty slots, 200,000 check-ins, 100,000 receptions",
            f"""
            INSERT INTO duty_slot (id, station_id, day, starts_at, ends_at, created_at)
            SELECT s, 1 + s % {STATIONS}, (starts AT TIME ZONE 'Asia/Shanghai')::date, starts,
                   starts + interval '3 hours', now()
            FROM (SELECT s, date_trunc('day', {ts}) + (s / {STATIONS}) * interval '12 hours'
                            + interval '1 hour' AS starts
                  FROM generate_series(1, 60000) s) x;
            SELECT setval(pg_get_serial_sequence('duty_slot', 'id'), 60000);
            INSERT INTO duty_assignment (slot_id, deputy_id)
            SELECT s, 1 + (s * 7) % {DEPUTIES} FROM generate_series(1, 60000) s;
            INSERT INTO duty_assignment (slot_id, deputy_id)
            SELECT s, 1 + (s * 7 + 1) % {DEPUTIES} FROM generate_series(1, 60000) s;
            INSERT INTO check_in (deputy_id, station_id, checked_in_at, checked_out_at,
                close_reason, auto_closed, latitude, longitude, duty_slot_id)
            SELECT CASE WHEN g <= 60000 THEN 1 + (g * 7) % {DEPUTIES} ELSE 1 + g % {DEPUTIES} END,
                   CASE WHEN g <= 60000 THEN 1 + g % {STATIONS} ELSE 1 + g % {STATIONS} END,
                   at, at + (0.5 + random() * 3) * interval '1 hour',
                   'scan', random() < 0.03, 31.2, 121.4,
                   CASE WHEN g <= 60000 THEN g END
            FROM (SELECT g, CASE WHEN g <= 60000
                                 THEN date_trunc('day', {ts}) + (g / {STATIONS}) * interval '12 hours'
                                      + interval '65 minutes'
                                 ELSE {ts} + ((g - 60000) / 140000.0) * interval '{span_s} seconds'
                                 END AS at
                  FROM generate_series(1, 200000) g) c;
            INSERT INTO reception (station_id, deputy_id, topic, content, received_at,
                                   created_by_user_id, created_at)
            SELECT 1 + g % {STATIONS}, 1 + g % {DEPUTIES}, '话题' || g % 50, '内容', at, 1 + g % {DEPUTIES}, at
            FROM (SELECT g, {ts} + (g / 100000.0) * interval '{span_s} seconds' AS at
                  FROM generate_series(1, 100000) g) r;
            """,
        ),
        ("vacuum analyze", "VACUUM ANALYZE"),
    ]


async def load(n_cases: int, now: datetime) -> None:
    conn = await asyncpg.connect(f"{SERVER}/{DB_NAME}")
    try:
        for label, sql in load_statements(n_cases, now):
            started = time.perf_counter()
            await conn.execute(sql)
            log(f"  loaded {label:<52} {time.perf_counter() - started:7.1f} s")
        counts = await conn.fetchrow(
            'SELECT (SELECT count(*) FROM "case") AS cases, (SELECT count(*) FROM wish) AS wishes,'
            " (SELECT count(*) FROM check_in) AS checkins,"
            " (SELECT count(*) FROM reception) AS receptions"
        )
        log(f"  rows: {dict(counts)}")
    finally:
        await conn.close()


async def add_indexes() -> None:
    conn = await asyncpg.connect(f"{SERVER}/{DB_NAME}")
    try:
        for name, target in COVERING_INDEXES.items():
            sql = f"CREATE INDEX IF NOT EXISTS {name} ON {target}"
            shown = sql if len(sql) < 70 else sql[:67] + "..."
            started = time.perf_counter()
            await conn.execute(sql)
            log(f"  {shown:<72} {time.perf_counter() - started:6.1f} s")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def drop_indexes() -> None:
    conn = await asyncpg.connect(f"{SERVER}/{DB_NAME}")
    try:
        for name in COVERING_INDEXES:
            await conn.execute(f"DROP INDEX IF EXISTS {name}")
    finally:
        await conn.close()


def token(settings: Settings, user_id: int, role: Role, region_id: int | None) -> dict[str, str]:
    principal = Principal(user_id=user_id, role=role, region_id=region_id)
    return {"Authorization": f"Bearer {create_access_token(principal, settings)}"}


async def timed(
    label: str, call: Callable[[], Awaitable[httpx.Response]], runs: int = 7
) -> list[float]:
    first = await call()
    assert first.status_code == 200, first.text[:300]
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await call()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    log(f"  {label:<58} median {statistics.median(samples):7.1f} ms   max {max(samples):7.1f} ms")
    return samples


async def run_endpoints(client: httpx.AsyncClient, settings: Settings, today: date) -> None:
    district = token(settings, DEPUTIES + RESIDENTS + 1, Role.staff, 1)
    street = token(settings, DEPUTIES + RESIDENTS + 2, Role.staff, 2)
    admin = token(settings, DEPUTIES + RESIDENTS + 3, Role.admin, None)
    last30 = {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}
    last365 = {"from": (today - timedelta(days=364)).isoformat(), "to": today.isoformat()}

    def get(path: str, headers: dict[str, str], **params: Any) -> Callable[[], Any]:
        return lambda: client.get(path, params=params, headers=headers)

    await timed("overview, district, last 30 days", get("/stats/overview", district, **last30))
    await timed("overview, district, last 365 days", get("/stats/overview", district, **last365))
    await timed("overview, one street, last 30 days", get("/stats/overview", street, **last30))
    await timed(
        "overview, admin (everything), last 30 days", get("/stats/overview", admin, **last30)
    )
    for group in ("category", "unit", "region", "day"):
        await timed(
            f"stats/cases by {group}, district, last 30 days",
            get("/stats/cases", district, group_by=group, **last30),
            runs=3,
        )
    await timed(
        "stats/cases by month, district, last 365 days",
        get("/stats/cases", district, group_by="month", **last365),
        runs=3,
    )
    await timed(
        "stats/deputies, district, 20 per page", get("/stats/deputies", district, **last30), runs=3
    )
    await timed(
        "stats/deputies?inactive_only, district",
        get("/stats/deputies", district, inactive_only="true", **last30),
        runs=3,
    )
    await timed(
        "deputy archive, one year",
        get("/deputies/7/archive", district, year=str(today.year)),
        runs=3,
    )


def _status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak(pid: int) -> None:
    # Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM).
    with open(f"/proc/{pid}/clear_refs", "w") as handle:
        handle.write("5")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_exports(settings: Settings, today: date) -> None:
    """The export through a real server process (uvicorn), downloaded over HTTP without
    keeping the body, so the server's own peak memory is what is measured."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "JWT_SECRET": settings.jwt_secret,
        "WECHAT_APPID": "bench",
        "WECHAT_SECRET": "bench",
        "WECHAT_API_BASE_URL": "http://127.0.0.1:9",
        "RUN_WORKER_IN_PROCESS": "false",
        "LOG_LEVEL": "WARNING",
        "DB_POOL_SIZE": "4",
    }
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=root, env=env,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=600) as client:
            for _ in range(100):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.2)
            district = token(settings, DEPUTIES + RESIDENTS + 1, Role.staff, 1)
            # about 100,000 rows of the 1,000,000 (the last 75 days)
            params = {"from": (today - timedelta(days=74)).isoformat()}
            for fmt in ("csv", "xlsx"):
                idle = _status_mb(server.pid, "VmRSS")
                _reset_peak(server.pid)
                started = time.perf_counter()
                size = rows = 0
                first_byte = None
                async with client.stream(
                    "GET", "/api/v1/exports/cases", params={**params, "format": fmt},
                    headers=district,
                ) as response:  # fmt: skip
                    assert response.status_code == 200, response.status_code
                    async for chunk in response.aiter_bytes():
                        if first_byte is None:
                            first_byte = time.perf_counter() - started
                        size += len(chunk)
                        if fmt == "csv":
                            rows += chunk.count(b"\n")
                elapsed = time.perf_counter() - started
                peak = _status_mb(server.pid, "VmHWM")
                detail = f"{rows - 1:,} rows, " if fmt == "csv" else ""
                log(
                    f"  export {fmt}: {detail}{size / 1e6:.1f} MB in {elapsed:.1f} s "
                    f"(first byte after {first_byte or 0:.2f} s); server RSS {idle:.0f} MB "
                    f"before, peak {peak:.0f} MB during"
                )
    finally:
        server.terminate()
        server.wait(timeout=20)


async def bench(client: httpx.AsyncClient, settings: Settings, today: date) -> None:
    await run_endpoints(client, settings, today)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the data of a previous run")
    parser.add_argument("--exports-only", action="store_true", help="only time the exports")
    args = parser.parse_args()

    url = SERVER.replace("postgresql://", "postgresql+asyncpg://") + f"/{DB_NAME}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        jwt_secret="bench-" + "x" * 40,
        wechat_appid="bench",
        wechat_secret="bench",
        wechat_api_base_url="http://127.0.0.1:9",
        run_worker_in_process=False,
        log_level="WARNING",
        db_pool_size=8,
    )
    now = datetime.now(UTC)
    if not args.keep:
        log(f"building {DB_NAME} with {args.cases:,} cases")
        await recreate_database()
        await create_schema(settings)
        await load(args.cases, now)

    if args.exports_only:
        await run_exports(settings, datetime.now(SHANGHAI).date())
        return
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench/api/v1", timeout=600
        ) as client:
            today = datetime.now(SHANGHAI).date()
            log("\nround 1: without the covering indexes on cases and wishes")
            await drop_indexes()
            await bench(client, settings, today)
            log("\nround 2: the schema as the models declare it (with the covering indexes)")
            await add_indexes()
            await bench(client, settings, today)
    log("\nexports (a uvicorn server process streaming to an HTTP client)")
    await run_exports(settings, today)


if __name__ == "__main__":
    asyncio.run(main())
