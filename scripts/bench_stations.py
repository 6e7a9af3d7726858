"""Benchmark: nearest-station search over thousands of stations.

    .venv/bin/python scripts/bench_stations.py [--stations 5000] [--requests 300]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench_stations]

Builds the schema in a fresh database (a temporary SQLite file by default; the PostgreSQL
database named in --database-url is emptied first), seeds `--stations` stations: 80 % spread
over a 100 km square around Shanghai, 20 % over the rest of China. Then calls
`GET /api/v1/stations?lat=…&lng=…` in process (httpx ASGI transport) from random points in the
square with several radii, and prints latency (mean, p50, p99) and the average number of
stations answered. It also prints the database's plan for the bounding-box query, to show that
the (latitude, longitude) index is used.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

import app.models  # noqa: E402,F401
from app.core.config import Settings  # noqa: E402
from app.core.sorting import pinyin_key  # noqa: E402
from app.main import create_app  # noqa: E402
from app.org.models import Region, RegionLevel, Station, StationKind  # noqa: E402

CENTRE = (31.2304, 121.4737)


async def seed(app_db: object, count: int, rng: random.Random) -> None:
    db = app_db
    async with db.engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.run_sync(SQLModel.metadata.drop_all)
        await conn.run_sync(SQLModel.metadata.create_all)
    async with db.transaction() as session:  # type: ignore[attr-defined]
        region = Region(name="基准区", level=RegionLevel.district, path="/")
        session.add(region)
        await session.flush()
        region.path = f"/{region.id}/"
        rows = []
        kinds = list(StationKind)
        for i in range(count):
            if rng.random() < 0.8:
                lat = CENTRE[0] + rng.uniform(-0.45, 0.45)
                lng = CENTRE[1] + rng.uniform(-0.52, 0.52)
            else:
                lat, lng = rng.uniform(20, 45), rng.uniform(100, 125)
            rows.append(
                {
                    "kind": kinds[i % len(kinds)],
                    "name": f"联络站{i:05d}",
                    "name_sort": pinyin_key(f"联络站{i:05d}"),
                    "region_id": region.id,
                    "latitude": lat,
                    "longitude": lng,
                    "radius_m": 300,
                    "qr_mode": "printed",
                    "qr_version": 1,
                    "is_active": True,
                    "version": 1,
                }
            )
        for start in range(0, len(rows), 1000):
            await session.execute(insert(Station), rows[start : start + 1000])


async def explain(app_db: object, is_sqlite: bool) -> str:
    sql = (
        "SELECT id, latitude, longitude FROM station WHERE is_active "
        "AND latitude BETWEEN 31.18 AND 31.28 AND longitude BETWEEN 121.41 AND 121.53"
    )
    prefix = "EXPLAIN QUERY PLAN " if is_sqlite else "EXPLAIN "
    async with app_db.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = (await conn.execute(text(prefix + sql))).all()
    return "\n".join("    " + " ".join(str(c) for c in row) for row in rows)


async def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    url = args.database_url or (
        f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='bench-stations-')) / 'b.db'}"
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=url,
        jwt_secret="bench-" + "x" * 40,
        wechat_appid="wx-bench",
        wechat_secret="wx-bench-secret",
        log_level="WARNING",
        run_worker_in_process=False,
    )
    application = create_app(settings)
    rng = random.Random(7)
    async with application.router.lifespan_context(application):
        db = application.state.db
        started = time.perf_counter()
        await seed(db, args.stations, rng)
        print(
            f"database: {url.split('://')[0]}; seeded {args.stations} stations "
            f"in {time.perf_counter() - started:.1f}s"
        )
        print("plan of the bounding-box prefilter:")
        print(await explain(db, settings.is_sqlite))
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://b/api/v1") as client:
            for radius in (2_000, 10_000, 50_000, 500_000):
                timings: list[float] = []
                totals: list[int] = []
                for _ in range(args.requests):
                    lat = CENTRE[0] + rng.uniform(-0.4, 0.4)
                    lng = CENTRE[1] + rng.uniform(-0.45, 0.45)
                    t0 = time.perf_counter()
                    response = await client.get(
                        "/stations", params={"lat": lat, "lng": lng, "radius_m": radius}
                    )
                    timings.append((time.perf_counter() - t0) * 1000)
                    response.raise_for_status()
                    body = response.json()
                    totals.append(body["total"])
                    distances = [s["distance_m"] for s in body["items"]]
                    assert distances == sorted(distances)
                timings.sort()
                print(
                    f"radius {radius / 1000:>5.0f} km: mean {statistics.mean(timings):6.1f} ms, "
                    f"p50 {timings[len(timings) // 2]:6.1f} ms, "
                    f"p99 {timings[int(len(timings) * 0.99) - 1]:6.1f} ms, "
                    f"stations within radius (avg) {statistics.mean(totals):7.0f}"
                )


if __name__ == "__main__":
    asyncio.run(main())
