"""Benchmark: the hot paths against a plain FastAPI + SQLModel app and bare Starlette + asyncpg.

    .venv/bin/python scripts/bench_hot_paths.py [--duration 5] [--rounds 3] [--mode all]

Needs wrk (a compiled HTTP load generator; a Python client saturates before the server does):
`apt-get update && apt-get install -y wrk` on Debian/Ubuntu, `brew install wrk` on macOS.

What it does, all on one PostgreSQL (`BENCH_DATABASE_URL`, default
postgresql+asyncpg://postgres@127.0.0.1:5432/bench_hot, created afresh and dropped at the end
unless --keep-database):

1. Seeds a district: 1,000 residents, 1,000 deputies bound to a station, 100 staff, 5 unit
   handlers, 2,000 stations around it, wishes and cases in every state the write paths need
   (each request of a write path consumes its own row), inbox messages and check-ins.
2. Starts, each with one uvicorn worker: the service (`app.main:create_app`); a plain
   FastAPI + SQLModel async app (`plain_app` below: a one-row insert, a 20-row read); a bare
   Starlette + asyncpg app (`bare_app` below: the same two). A fake WeChat runs in a process of
   its own, so the content check of a submission is a real HTTP call.
3. For 8 and then 64 connections, alternates in rounds: every path of the service, then the
   plain insert and read, then the bare ones, `--duration` seconds each, driven by wrk with a
   generated Lua script that rotates the seeded users' tokens (and the rows a write consumes).
4. Prints per path: req/s, p50/p99, errors (non-2xx and socket errors), the server's CPU per
   request (from /proc/<pid>/stat), and the ratios to the plain and bare app of the same
   round (median and range over the rounds), and p99 against the plain insert's p99.

Every server process gets `--pool` PostgreSQL connections (default 10: the database is shared
with whatever else runs, and its max_connections, 100 by default, bounds them all).
`--mode workers` runs the service with 4 uvicorn workers (half the pool each), `--mode
replicas` two single-worker replicas (the pool each) with wrk's connections split between
them, both at 64 connections against the single worker in the same rounds, on check-in,
claim, submission, the case list and nearest stations; `--mode all` (default) does all.
Client, servers and PostgreSQL share the machine: read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel
from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_hot"
)
JWT_SECRET = "bench-secret-" + "z" * 40
WECHAT_APPID, WECHAT_SECRET = "wx-bench-appid", "wx-bench-secret-0123456789"
LAT, LNG = 31.2304, 121.4737
RESIDENTS = DEPUTIES = 1000
STAFF = 100
HANDLERS = 5  # of the one unit: an assignment tells each of them


def asyncpg_dsn(url: str = DATABASE_URL) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def database_name() -> str:
    return urlsplit(DATABASE_URL).path.lstrip("/")


def admin_dsn() -> str:
    parts = urlsplit(asyncpg_dsn())
    return urlunsplit(parts._replace(path="/postgres"))


# The yardsticks: not part of the product ------------------------------------------------


class PlainItem(SQLModel, table=True):
    """The row both yardstick apps insert and read."""

    __tablename__ = "bench_plain_item"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    n: int = 0
    created_at: datetime = Field(sa_type=DateTime(timezone=True))


class ItemIn(BaseModel):
    name: str
    n: int = 0


def plain_app() -> Any:
    """FastAPI + SQLModel on SQLAlchemy's async engine, as its tutorial writes it: a session
    per request, a one-row insert, a 20-row read."""
    from fastapi import Depends, FastAPI
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

    size = int(os.environ.get("DB_POOL_SIZE", "32"))
    engine = create_async_engine(DATABASE_URL, pool_size=size, max_overflow=0)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def session() -> AsyncIterator[AsyncSession]:
        async with sessions() as s:
            yield s

    app = FastAPI()

    @app.post("/plain/items", status_code=201)
    async def insert(body: ItemIn, s: AsyncSession = Depends(session)) -> PlainItem:  # noqa: B008
        item = PlainItem(name=body.name, n=body.n, created_at=datetime.now().astimezone())
        s.add(item)
        await s.commit()
        return item

    @app.get("/plain/items")
    async def read(s: AsyncSession = Depends(session)) -> list[PlainItem]:  # noqa: B008
        rows = await s.execute(select(PlainItem).order_by(PlainItem.id.desc()).limit(20))  # type: ignore[union-attr]
        return list(rows.scalars())

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def bare_app() -> Any:
    """Starlette and an asyncpg pool: the same insert and read with nothing in between."""
    import asyncpg
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    state: dict[str, Any] = {}

    def as_json(row: Any) -> dict[str, Any]:
        return {**dict(row), "created_at": row["created_at"].isoformat()}

    async def insert(request: Request) -> JSONResponse:
        body = await request.json()
        async with state["pool"].acquire() as conn:
            row = await conn.fetchrow(
                "INSERT INTO bench_plain_item (name, n, created_at) VALUES ($1, $2, now()) "
                "RETURNING id, name, n, created_at",
                str(body["name"]),
                int(body.get("n", 0)),
            )
        return JSONResponse(as_json(row), status_code=201)

    async def read(_request: Request) -> JSONResponse:
        async with state["pool"].acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, name, n, created_at FROM bench_plain_item ORDER BY id DESC LIMIT 20"
            )
        return JSONResponse([as_json(r) for r in rows])

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        size = int(os.environ.get("DB_POOL_SIZE", "32"))
        state["pool"] = await asyncpg.create_pool(asyncpg_dsn(), min_size=1, max_size=size)
        yield
        await state["pool"].close()

    return Starlette(
        routes=[
            Route("/bare/items", insert, methods=["POST"]),
            Route("/bare/items", read, methods=["GET"]),
            Route("/healthz", health),
        ],
        lifespan=lifespan,
    )


# Seeding -------------------------------------------------------------------------------------


@dataclass
class Seeded:
    tokens: dict[str, list[str]]  # role -> tokens, in user-id order
    ranges: dict[str, tuple[int, int]]  # what a write path consumes: first id, count
    scene: str
    unit_id: int
    category_id: int
    station_id: int
    some_case_id: int


async def _clone(conn: Any, table: str, template: int, n: int, overrides: dict[str, str]) -> int:
    """Copies row `template` of `table` n times (g = 1..n names the copy in `overrides`), in
    one statement; answers the first new id (ids of one INSERT are consecutive here)."""
    columns = [
        r["column_name"]
        for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = $1 AND column_name <> 'id' ORDER BY ordinal_position",
            table,
        )
    ]
    values = [overrides.get(c, f't."{c}"') for c in columns]
    names = ", ".join(f'"{c}"' for c in columns)
    first = await conn.fetchval(
        f'INSERT INTO "{table}" ({names}) '
        f'SELECT {", ".join(values)} FROM "{table}" t, generate_series(1, $2) g '
        "WHERE t.id = $1 ORDER BY g RETURNING id",
        template,
        n,
    )
    return int(first)


async def drop_database() -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_dsn())
    await admin.execute(f'DROP DATABASE IF EXISTS "{database_name()}" WITH (FORCE)')
    await admin.close()


async def seed(rows_per_write_path: int) -> Seeded:
    import asyncpg
    from sqlalchemy import insert
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    import app.models  # noqa: F401  (every table)
    from app.cases.models import Case
    from app.cases.seed import seed_case_categories
    from app.core.clock import utcnow
    from app.core.config import Settings
    from app.core.security import Principal, Role, create_access_token
    from app.org.models import Station, Unit
    from app.presence.scene import printed_scene
    from app.wishes.models import Wish

    admin = await asyncpg.connect(admin_dsn())
    await admin.execute(f'DROP DATABASE IF EXISTS "{database_name()}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{database_name()}"')
    await admin.close()
    engine = create_async_engine(DATABASE_URL)
    async with engine.begin() as c:
        await c.run_sync(SQLModel.metadata.create_all)
    await engine.dispose()

    conn = await asyncpg.connect(asyncpg_dsn())
    n = rows_per_write_path
    fetchval = conn.fetchval
    district = await fetchval(
        "INSERT INTO region (name, level, path, created_at) "
        "VALUES ('基准区', 'district', '/', now()) RETURNING id"
    )
    await conn.execute("UPDATE region SET path = $1 WHERE id = $2", f"/{district}/", district)
    community = await fetchval(
        "INSERT INTO region (name, level, parent_id, path, created_at) "
        "VALUES ('基准社区', 'community', $1, '/', now()) RETURNING id",
        district,
    )
    await conn.execute(
        "UPDATE region SET path = $1 WHERE id = $2", f"/{district}/{community}/", community
    )
    engine = create_async_engine(DATABASE_URL)

    async def add(model: Any, **values: Any) -> int:
        """One row through the model, so every column default applies."""
        async with engine.begin() as c:
            table = model.__table__
            return int(
                (await c.execute(insert(table).values(**values).returning(table.c.id))).scalar_one()
            )

    station = await add(
        Station,
        kind="station",
        name="基准联络站",
        region_id=community,
        latitude=LAT,
        longitude=LNG,
        radius_m=300,
        qr_mode="printed",
        qr_version=1,
        created_at=utcnow(),
    )
    # 2,000 more stations within about 30 km, for the nearest-station search.
    await _clone(
        conn,
        "station",
        station,
        2000,
        {
            "name": "'联络站' || g",
            "latitude": f"{LAT} + ((g * 7919) % 600 - 300) / 1000.0",
            "longitude": f"{LNG} + ((g * 104729) % 600 - 300) / 1000.0",
        },
    )
    unit = await add(Unit, name="区城市管理局", region_id=district, created_at=utcnow())
    async with AsyncSession(engine) as session, session.begin():
        await seed_case_categories(session)
    category = await fetchval("SELECT min(id) FROM case_category WHERE is_active")

    deputies = [
        r["id"]
        for r in await conn.fetch(
            "INSERT INTO deputy (name, level, region_id, is_active, version, created_at) "
            "SELECT '代表' || g, 'district', $1, true, 1, now() FROM generate_series(1, $2) g "
            "ORDER BY g RETURNING id",
            district,
            DEPUTIES,
        )
    ]
    await conn.execute(
        "INSERT INTO deputy_station (deputy_id, station_id) SELECT d, $1 FROM unnest($2::int[]) d",
        station,
        deputies,
    )

    async def users(role: str, count: int, extra: str, arg: Any) -> list[asyncpg.Record]:
        return await conn.fetch(
            f'INSERT INTO "user" (role, openid, username, nickname, region_id, unit_id, '
            f"deputy_id, is_active, failed_login_count, created_at) SELECT '{role}', "
            f"{extra}, true, 0, now() FROM generate_series(1, $1) g ORDER BY g "
            "RETURNING id, region_id, unit_id, deputy_id",
            count,
            arg,
        )

    residents = await users(
        "resident", RESIDENTS, "'bench-r-' || g, NULL, '居民' || g, NULL, NULL, $2::int", None
    )
    deputy_users = await conn.fetch(
        'INSERT INTO "user" (role, openid, nickname, deputy_id, is_active, failed_login_count, '
        "created_at) SELECT 'deputy', 'bench-d-' || d, '代表', d, true, 0, now() "
        "FROM unnest($1::int[]) d ORDER BY d RETURNING id, region_id, unit_id, deputy_id",
        deputies,
    )
    staff = await users(
        "staff", STAFF, "NULL, 'bench-staff-' || g, '工作人员', $2::int, NULL, NULL", district
    )
    handlers = await users(
        "unit", HANDLERS, "NULL, 'bench-unit-' || g, '承办人', NULL, $2::int, NULL", unit
    )
    first_resident = residents[0]["id"]
    first_deputy_user = deputy_users[0]["id"]

    # Wishes: published ones to claim; fulfilled ones to confirm, owned in turn by each
    # resident (row g belongs to resident g mod 1,000) and claimed by deputy g mod 1,000.
    now = utcnow()
    wish = await add(
        Wish,
        resident_id=first_resident,
        title="想要一个新书包",
        content="孩子的书包背了三年已经破了。",
        beneficiary_name="王小明",
        beneficiary_phone="13812345678",
        beneficiary_address="幸福路12号",
        region_id=community,
        station_id=station,
        status="published",
        content_check="passed",
        published_at=now,
        created_at=now,
    )
    owner = f"{first_resident} + (g % {RESIDENTS})"
    claimable = await _clone(conn, "wish", wish, n, {"resident_id": owner})
    confirmable = await _clone(
        conn,
        "wish",
        wish,
        n,
        {
            "resident_id": owner,
            "status": "'fulfilled'",
            "claimed_by_deputy_id": f"{deputies[0]} + (g % {DEPUTIES})",
            "claimed_by_user_id": f"{first_deputy_user} + (g % {DEPUTIES})",
            "claimed_at": "now()",
            "fulfilled_at": "now()",
            "fulfil_note": "'已送达'",
        },
    )
    # A wall of 2,000 published wishes stays put (claims take the ones above).
    await _clone(conn, "wish", wish, 2000, {"resident_id": owner})

    # Cases: registered ones to assign, handling ones to reply to, fed-back ones to rate
    # (owned like the wishes), and history for the lists.
    case = await add(
        Case,
        title="翠苑一区东门路灯不亮",
        content="小区东门路灯坏了一个多月。",
        category_id=category,
        region_id=community,
        station_id=station,
        latitude=LAT,
        longitude=LNG,
        address="翠苑一区东门",
        attachment_ids=[],
        status="registered",
        channel="miniprogram",
        submitter_id=first_resident,
        owner_id=first_resident,
        created_at=now,
        updated_at=now,
    )
    whose = {"owner_id": owner, "submitter_id": owner}
    assignable = await _clone(conn, "case", case, n, whose)
    handling = {
        **whose,
        "status": "'handling'",
        "lead_unit_id": str(unit),
        "assigned_at": "now()",
        "deadline_at": "now() + interval '10 days'",
    }
    repliable = await _clone(conn, "case", case, n, handling)
    ratable = await _clone(
        conn,
        "case",
        case,
        n,
        {**handling, "status": "'fed_back'", "public_answer": "'已处理'", "fed_back_at": "now()"},
    )
    await conn.execute("UPDATE \"case\" SET number = to_char(created_at, 'YYYYMMDD') || '-' || id")
    # Every resident has 30 messages; every deputy 10 closed check-ins.
    await conn.execute(
        "INSERT INTO inbox_message (user_id, event, title, body, page, created_at) "
        "SELECT u, 'case.handling', '您关注的事项办理中', '路灯不亮 办理中', "
        "'pages/case/detail?id=1', now() - g * interval '1 hour' "
        "FROM unnest($1::int[]) u, generate_series(1, 30) g",
        [r["id"] for r in residents],
    )
    await conn.execute(
        "INSERT INTO check_in (deputy_id, station_id, checked_in_at, checked_out_at, "
        "close_reason, auto_closed, latitude, longitude, accuracy_m, distance_m) "
        "SELECT d, $2, now() - g * interval '1 day', now() - g * interval '1 day' "
        "+ interval '2 hours', 'scan', false, $3, $4, 15, 10 "
        "FROM unnest($1::int[]) d, generate_series(1, 10) g",
        deputies,
        station,
        LAT,
        LNG,
    )
    await conn.execute(
        "INSERT INTO bench_plain_item (name, n, created_at) "
        "SELECT 'item ' || g, g, now() FROM generate_series(1, 1000) g"
    )
    await conn.execute("VACUUM ANALYZE")
    await conn.close()
    await engine.dispose()

    settings = Settings(_env_file=None, jwt_secret=JWT_SECRET, access_token_ttl_seconds=86400)  # type: ignore[call-arg]

    def tokens(rows: list[Any], role: Role) -> list[str]:
        return [
            create_access_token(
                Principal(
                    user_id=r["id"],
                    role=role,
                    region_id=r["region_id"],
                    unit_id=r["unit_id"],
                    deputy_id=r["deputy_id"],
                ),
                settings,
            )
            for r in rows
        ]

    return Seeded(
        tokens={
            "resident": tokens(residents, Role.resident),
            "deputy": tokens(deputy_users, Role.deputy),
            "staff": tokens(staff, Role.staff),
            "unit": tokens(handlers, Role.unit),
        },
        ranges={
            "claim": (claimable, n),
            "confirm": (confirmable, n),
            "assign": (assignable, n),
            "reply": (repliable, n),
            "rate": (ratable, n),
        },
        scene=printed_scene(settings, station, 1),
        unit_id=unit,
        category_id=category,
        station_id=station,
        some_case_id=ratable + n - 1,
    )


# Load ----------------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One path: how wrk builds each request."""

    name: str
    method: str
    path: str  # "{id}" is replaced by the row the request takes
    role: str | None  # whose tokens rotate (None: public)
    body: dict[str, Any] | None = None
    consumes: str | None = None  # a seeded range: each request takes the next row
    owner_token: bool = False  # the token of the row's owner (row g -> user g mod N)
    kind: str = "write"  # write (vs the plain insert) or read (vs the plain read)


def scenarios(seeded: Seeded) -> list[Scenario]:
    checkin = {"scene": seeded.scene, "latitude": LAT + 0.0001, "longitude": LNG, "accuracy": 15}
    case_body = {
        "title": "翠苑一区东门路灯不亮",
        "content": "小区东门路灯坏了一个多月，晚上老人出行很不方便，希望尽快修复。",
        "category_id": seeded.category_id,
        "station_id": seeded.station_id,
        "latitude": LAT,
        "longitude": LNG,
        "address": "翠苑一区东门",
    }
    return [
        Scenario("check-in", "POST", "/api/v1/checkins", "deputy", checkin),
        Scenario("wish claim", "POST", "/api/v1/wishes/{id}/claim", "deputy", {}, "claim"),
        Scenario("case submission", "POST", "/api/v1/cases", "resident", case_body),
        Scenario(
            "assign",
            "POST",
            "/api/v1/cases/{id}/assign",
            "staff",
            {"unit_id": seeded.unit_id},
            "assign",
        ),
        Scenario(
            "reply",
            "POST",
            "/api/v1/cases/{id}/reply",
            "unit",
            {"public_answer": "已更换灯具，恢复照明。"},
            "reply",
        ),
        Scenario(
            "rate",
            "POST",
            "/api/v1/cases/{id}/rate",
            "resident",
            {"satisfaction": "satisfied"},
            "rate",
            owner_token=True,
        ),
        Scenario(
            "wish confirm",
            "POST",
            "/api/v1/wishes/{id}/confirm",
            "resident",
            {"thanks": "谢谢", "rating": 5},
            "confirm",
            owner_token=True,
        ),
        Scenario("case list (staff)", "GET", "/api/v1/cases", "staff", kind="read"),
        Scenario(
            "case detail", "GET", f"/api/v1/cases/{seeded.some_case_id}", "staff", kind="read"
        ),
        Scenario("wish wall", "GET", "/api/v1/wishes", None, kind="read"),
        Scenario(
            "nearest stations",
            "GET",
            f"/api/v1/stations?lat={LAT}&lng={LNG}",
            None,
            kind="read",
        ),
        Scenario("my messages", "GET", "/api/v1/me/messages", "resident", kind="read"),
        Scenario("check-in list", "GET", "/api/v1/checkins", "deputy", kind="read"),
    ]


# The paths the scaling modes (4 workers, 2 replicas) measure: a write of each kind and reads.
SCALING_PATHS = {
    "check-in",
    "wish claim",
    "case submission",
    "case list (staff)",
    "nearest stations",
}

YARDSTICKS = [
    ("plain insert", "POST", "/plain/items"),
    ("plain read", "GET", "/plain/items"),
    ("bare insert", "POST", "/bare/items"),
    ("bare read", "GET", "/bare/items"),
]

LUA = r"""
local tokens = {%(tokens)s}
local method, template, body = %(method)s, %(path)s, %(body)s
local first, span, owner_token, owner_base = %(first)d, %(span)d, %(owner_token)s, %(owner_base)d
local slot_base, slots = %(slot_base)d, %(slots)d
local threads = 0
local counter = 0

function setup(thread)
  thread:set("slot", slot_base + threads)
  threads = threads + 1
end

function request()
  local k = slot + counter * slots
  counter = counter + 1
  local id = first + (k %% span)
  local path = string.gsub(template, "{id}", tostring(id))
  local headers = {["Content-Type"] = "application/json"}
  if #tokens > 0 then
    local t
    if owner_token then
      t = tokens[((id - owner_base + 1) %% #tokens) + 1]
    else
      t = tokens[(k %% #tokens) + 1]
    end
    headers["Authorization"] = "Bearer " .. t
  end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT {\"requests\": %%d, \"duration_us\": %%d, \"non2xx\": %%d, "
    .. "\"socket_errors\": %%d, \"p50_us\": %%d, \"p99_us\": %%d}\n",
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass
class Result:
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    cpu_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Server:
    name: str
    processes: list[subprocess.Popen[bytes]]
    ports: list[int]

    def cpu_seconds(self) -> float:
        return sum(_tree_cpu(p.pid) for p in self.processes)


def _tree_cpu(pid: int) -> float:
    """User + system CPU of a process and its live children (uvicorn's workers)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            total += sum(_tree_cpu(int(c)) for c in children)
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


@dataclass
class Runner:
    workdir: Path
    duration: int
    offsets: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seeded: Seeded | None = None

    def script(
        self, scenario: Scenario | None, method: str, path: str, slot: int, slots: int
    ) -> Path:
        assert self.seeded is not None
        tokens: list[str] = []
        body: str | None = None
        first, span, owner, owner_base = 0, 1 << 30, False, 0
        if scenario is not None:
            tokens = self.seeded.tokens[scenario.role] if scenario.role else []
            body = (
                json.dumps(scenario.body, ensure_ascii=False) if scenario.body is not None else None
            )
            if scenario.consumes:
                start, count = self.seeded.ranges[scenario.consumes]
                first = start + self.offsets[scenario.consumes]
                span = max(1, count - self.offsets[scenario.consumes])
                # Row g of the seed belongs to user g mod N: the owner's token follows the row.
                owner, owner_base = scenario.owner_token, start
        elif method == "POST":
            body = json.dumps({"name": "bench item", "n": 1})
        text = LUA % {
            "tokens": ", ".join(lua_string(t) for t in tokens),
            "method": lua_string(method),
            "path": lua_string(path),
            "body": lua_string(body) if body is not None else "nil",
            "first": first,
            "span": span,
            "owner_token": "true" if owner else "false",
            "owner_base": owner_base,
            "slot_base": slot,
            "slots": slots,
        }
        out = self.workdir / f"s{len(list(self.workdir.iterdir()))}.lua"
        out.write_text(text)
        return out

    def run(
        self,
        server: Server,
        scenario: Scenario | None,
        method: str,
        path: str,
        connections: int,
        duration: int | None = None,
    ) -> Result:
        """wrk against every replica of `server` at once, connections split between them."""
        replicas = len(server.ports)
        threads = max(1, min(2, connections // replicas))
        slots = threads * replicas
        commands = []
        for i, port in enumerate(server.ports):
            script = self.script(scenario, method, path, i * threads, slots)
            commands.append(
                [
                    "wrk",
                    "-t",
                    str(threads),
                    "-c",
                    str(max(threads, connections // replicas)),
                    "-d",
                    f"{duration or self.duration}s",
                    "--latency",
                    "--timeout",
                    "10s",
                    "-s",
                    str(script),
                    f"http://127.0.0.1:{port}",
                ]
            )
        cpu_before = server.cpu_seconds()
        procs = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True) for c in commands]
        outputs = [p.communicate()[0] for p in procs]
        cpu = server.cpu_seconds() - cpu_before
        parsed = []
        for out in outputs:
            line = next((x for x in out.splitlines() if x.startswith("WRK_RESULT ")), None)
            if line is None:
                raise RuntimeError(f"wrk printed no result:\n{out}")
            parsed.append(json.loads(line.removeprefix("WRK_RESULT ")))
        requests = sum(p["requests"] for p in parsed)
        if scenario is not None and scenario.consumes:
            # wrk counts the requests that completed in time; the ones still in flight (one
            # per connection at most) took their rows too.
            self.offsets[scenario.consumes] += requests + connections + slots
        return Result(
            requests=requests,
            seconds=max(p["duration_us"] for p in parsed) / 1e6,
            non2xx=sum(p["non2xx"] for p in parsed),
            socket_errors=sum(p["socket_errors"] for p in parsed),
            p50_ms=max(p["p50_us"] for p in parsed) / 1000,
            p99_ms=max(p["p99_us"] for p in parsed) / 1000,
            cpu_ms=cpu * 1000 / max(1, requests),
        )


# Servers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LOGS = Path(tempfile.gettempdir()) / "bench-hot-paths-logs"


def start(
    target: list[str], port: int, env: dict[str, str], workers: int = 1
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        *target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
        "--timeout-keep-alive",
        "120",
    ]
    LOGS.mkdir(exist_ok=True)
    log = (LOGS / f"{target[-1].replace(':', '.')}-{port}.log").open("wb")
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_port(port: int) -> None:
    for _ in range(300):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def wait_ready(port: int, path: str = "/healthz") -> None:
    import urllib.request

    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def service_env(pool: int, wechat_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": DATABASE_URL,
        "DB_POOL_SIZE": str(pool),
        "JWT_SECRET": JWT_SECRET,
        "LOG_LEVEL": "WARNING",
        "APP_ENV": "development",
        "RUN_WORKER_IN_PROCESS": "false",
        "WECHAT_APPID": WECHAT_APPID,
        "WECHAT_SECRET": WECHAT_SECRET,
        "WECHAT_API_BASE_URL": wechat_url,
        "CHECKIN_REPEAT_WINDOW_SECONDS": "0",
        "CASE_SUBMIT_PER_HOUR": "10000",
        "CASE_SUBMIT_PER_DAY": "100000",
        "WISH_MAX_OPEN_CLAIMS": "100",
    }


# Report --------------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def report(
    title: str, results: dict[str, list[Result]], kinds: dict[str, str], yardsticks: bool = True
) -> None:
    print(f"\n{title}")
    print(
        f"  {'path':<20} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>8} {'errors':>7} "
        f"{'CPU ms/req':>10}  {'÷ plain':>17}  {'÷ bare':>17}  {'p99 ÷ plain insert p99':>22}"
    )
    for name, rounds in results.items():
        rate = statistics.median(r.rate for r in rounds)
        p50 = statistics.median(r.p50_ms for r in rounds)
        p99 = statistics.median(r.p99_ms for r in rounds)
        errors = sum(r.non2xx + r.socket_errors for r in rounds)
        cpu = statistics.median(r.cpu_ms for r in rounds)
        line = f"  {name:<20} {rate:>7.0f} {p50:>7.1f} {p99:>8.1f} {errors:>7} {cpu:>10.2f}"
        if yardsticks and name not in {y[0] for y in YARDSTICKS}:
            kind = "insert" if kinds.get(name) == "write" else "read"
            plain, bare = results[f"plain {kind}"], results[f"bare {kind}"]
            ratio_plain = [r.rate / p.rate for r, p in zip(rounds, plain, strict=False) if p.rate]
            ratio_bare = [r.rate / b.rate for r, b in zip(rounds, bare, strict=False) if b.rate]
            p99s = [
                r.p99_ms / p.p99_ms
                for r, p in zip(rounds, results["plain insert"], strict=False)
                if p.p99_ms
            ]
            line += f"  {spread(ratio_plain):>17}  {spread(ratio_bare):>17}  {spread(p99s):>22}"
        print(line, flush=True)


# Main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per path per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="8,64")
    parser.add_argument("--mode", choices=["single", "workers", "replicas", "all"], default="all")
    parser.add_argument("--rows", type=int, default=60_000, help="rows per write path")
    parser.add_argument("--only", default="", help="comma-separated path names (default all)")
    parser.add_argument(
        "--keep-database", action="store_true", help="keep the seeded database afterwards"
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=10,
        help="PostgreSQL connections per server process (4 workers get half each); keep the "
        "sum under the server's max_connections, shared with whatever else uses it",
    )
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        sys.exit(
            "wrk is not installed. Install it: `apt-get update && apt-get install -y wrk` "
            "(Debian/Ubuntu) or `brew install wrk` (macOS), then run this again."
        )
    shutil.rmtree(LOGS, ignore_errors=True)
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[:3]
    print(f"seeding {database_name()} ...", flush=True)
    seeded = asyncio.run(seed(args.rows))
    runner = Runner(Path(tempfile.mkdtemp(prefix="bench-hot-")), args.duration, seeded=seeded)
    paths = scenarios(seeded)
    if args.only:
        wanted = {x.strip() for x in args.only.split(",")}
        paths = [p for p in paths if p.name in wanted]
    kinds = {p.name: p.kind for p in paths}

    wechat_port = free_port()
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.wechat.fake_server",
            "--port",
            str(wechat_port),
            "--appid",
            WECHAT_APPID,
            "--secret",
            WECHAT_SECRET,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started: list[subprocess.Popen[Any]] = [fake]
    try:
        wait_port(wechat_port)
        wechat_url = f"http://127.0.0.1:{wechat_port}"
        yard_env = {"DB_POOL_SIZE": str(args.pool)}
        here = ["--app-dir", str(ROOT / "scripts"), "--factory"]
        servers: dict[str, Server] = {}
        for name, target, env in [
            ("service", ["--factory", "app.main:create_app"], service_env(args.pool, wechat_url)),
            ("plain", [*here, "bench_hot_paths:plain_app"], yard_env),
            ("bare", [*here, "bench_hot_paths:bare_app"], yard_env),
        ]:
            port = free_port()
            process = start(target, port, env)
            started.append(process)
            servers[name] = Server(name, [process], [port])
        for server in servers.values():
            wait_ready(server.ports[0])

        def one_round(
            service: Server,
            conns: int,
            results: dict[str, list[Result]],
            with_yardsticks: bool,
            only: list[Scenario] = paths,
        ) -> None:
            for p in only:
                results[p.name].append(runner.run(service, p, p.method, p.path, conns))
            if with_yardsticks:
                for name, method, path in YARDSTICKS:
                    server = servers["plain" if name.startswith("plain") else "bare"]
                    results[name].append(runner.run(server, None, method, path, conns))

        # Warm every server (connections, caches, the WeChat token) without counting it.
        for p in paths:
            runner.run(servers["service"], p, p.method, p.path, 8, duration=1)
        for name, method, path in YARDSTICKS:
            server = servers["plain" if name.startswith("plain") else "bare"]
            runner.run(server, None, method, path, 8, duration=1)

        if args.mode in ("single", "all"):
            for conns in [int(c) for c in args.connections.split(",")]:
                results: dict[str, list[Result]] = defaultdict(list)
                for _ in range(args.rounds):
                    one_round(servers["service"], conns, results, True)
                report(
                    f"one uvicorn worker each, {conns} connections, {args.rounds} rounds of "
                    f"{args.duration} s (median; ratios: median (min-max) of the rounds)",
                    results,
                    kinds,
                )

        if args.mode in ("workers", "replicas", "all"):
            # The yardsticks are done: give their connections back to PostgreSQL.
            for name in ("plain", "bare"):
                for process in servers[name].processes:
                    stop(process)
            scaling = [p for p in paths if p.name in SCALING_PATHS]
            modes = []
            if args.mode in ("workers", "all"):
                modes.append(("workers", f"4 workers, pool {args.pool // 2} each"))
            if args.mode in ("replicas", "all"):
                modes.append(("replicas", f"2 replicas, 1 worker and pool {args.pool} each"))
            for kind, label in modes:
                if kind == "workers":
                    port = free_port()
                    env = service_env(args.pool // 2, wechat_url)
                    processes = [start(["--factory", "app.main:create_app"], port, env, workers=4)]
                    ports = [port]
                else:
                    ports = [free_port(), free_port()]
                    env = service_env(args.pool, wechat_url)
                    processes = [start(["--factory", "app.main:create_app"], p, env) for p in ports]
                started.extend(processes)
                for port in ports:
                    wait_ready(port)
                server = Server(kind, processes, ports)
                for p in scaling:
                    runner.run(server, p, p.method, p.path, 8, duration=1)
                single: dict[str, list[Result]] = defaultdict(list)
                multi: dict[str, list[Result]] = defaultdict(list)
                for _ in range(max(1, args.rounds - 1)):
                    one_round(servers["service"], 64, single, False, scaling)
                    one_round(server, 64, multi, False, scaling)
                for process in processes:
                    stop(process)
                print(f"\n{label}, 64 connections, against one worker in the same rounds")
                print(
                    f"  {'path':<20} {'1 worker':>9} {'scaled':>9} {'÷':>6} {'errors':>7} "
                    f"{'CPU ms/req':>10}"
                )
                for name in multi:
                    one = statistics.median(r.rate for r in single[name])
                    many = statistics.median(r.rate for r in multi[name])
                    errors = sum(r.non2xx + r.socket_errors for r in multi[name])
                    cpu = statistics.median(r.cpu_ms for r in multi[name])
                    print(
                        f"  {name:<20} {one:>9.0f} {many:>9.0f} {many / one if one else 0:>6.2f} "
                        f"{errors:>7} {cpu:>10.2f}",
                        flush=True,
                    )
    finally:
        for process in reversed(started):
            stop(process)
        shutil.rmtree(runner.workdir, ignore_errors=True)
        if not args.keep_database:
            asyncio.run(drop_database())
    with open("/proc/loadavg") as f:
        load_after = f.read().split()[:3]
    print(f"\nserver logs (errors, if any): {LOGS}")
    print(
        f"\nload average before / after: {' '.join(load_before)} / {' '.join(load_after)}; "
        f"{os.cpu_count()} cores; {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    )


if __name__ == "__main__":
    main()
