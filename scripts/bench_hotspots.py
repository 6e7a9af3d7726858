"""Benchmark of the hotspot grouping: its quality on a labelled set, and its speed at scale.

1. Quality. A labelled set of realistic reports (app/hotspots/corpus.py: 520 reports over 41
   problems, with paraphrases, synonyms, typos, places named several ways, missing
   coordinates, and 40 one-off noise reports) is written as cases and grouped by the
   worker's own sweep (`group_pending`) on the database. Printed: precision and recall of
   "same problem" pairs, for several seeds.
2. Speed. The tables are filled with 1,000,000 grouped cases over about 900 days (cases,
   their index rows and term statistics, made with INSERT ... SELECT generate_series from a
   pool of generated reports), then 200 new reports are grouped by the sweep: time per case.
3. Regroup. `regroup` decides again every case of the 90-day window (about 100,000 of the
   1,000,000): its time.

    .venv/bin/python scripts/bench_hotspots.py [--cases 1000000] [--database bench_hotspots]

PostgreSQL from BENCH_PG (default postgresql://postgres@127.0.0.1:5432); the database is
created when missing, and its tables are dropped and created afresh.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

import app.models  # noqa: E402, F401
from app.cases.models import CaseCategory  # noqa: E402
from app.cases.seed import seed_case_categories  # noqa: E402
from app.core.config import Settings  # noqa: E402
from app.core.db import Database  # noqa: E402
from app.hotspots import corpus, text  # noqa: E402
from app.hotspots import service as hotspot_service  # noqa: E402
from app.hotspots.grouping import precision_recall  # noqa: E402
from app.hotspots.models import HotspotCase  # noqa: E402

SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
POOL = 20_000
DAYS = 900
NEW_CASES = 200


def log(message: str) -> None:
    print(message, flush=True)


async def ensure_database(name: str) -> None:
    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def fresh_schema(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.drop_all)
        await conn.run_sync(SQLModel.metadata.create_all)


async def base_rows(raw: asyncpg.Connection, db: Database) -> tuple[dict[str, int], list[int]]:
    """Categories, a district with one community per place of the corpus, a submitter."""
    async with db.transaction() as session:
        await seed_case_categories(session)
        categories = {c.code: c.id for c in (await session.execute(select(CaseCategory))).scalars()}
    district = await raw.fetchval(
        "INSERT INTO region (name, level, path, created_at) VALUES ('测试区', 'district', '/', now())"
        " RETURNING id"
    )
    await raw.execute("UPDATE region SET path = $1 WHERE id = $2", f"/{district}/", district)
    regions = []
    for name, *_ in corpus.PLACES:
        rid = await raw.fetchval(
            "INSERT INTO region (name, level, parent_id, path, created_at)"
            " VALUES ($1, 'community', $2, '/', now()) RETURNING id",
            name,
            district,
        )
        await raw.execute("UPDATE region SET path = $1 WHERE id = $2", f"/{district}/{rid}/", rid)
        regions.append(rid)
    await raw.execute(
        'INSERT INTO "user" (id, role, openid, is_active, failed_login_count, created_at)'
        " VALUES (1, 'resident', 'bench', true, 0, now())"
    )
    return categories, regions  # type: ignore[return-value]


async def insert_reports(
    raw: asyncpg.Connection,
    reports: list[corpus.Report],
    categories: dict[str, int],
    regions: list[int],
    created: list[datetime] | None = None,
) -> list[int]:
    rows = [
        (
            r.title,
            r.content,
            categories[r.category],
            regions[r.area],
            r.latitude,
            r.longitude,
            (created[i] if created else r.created_at),
        )
        for i, r in enumerate(reports)
    ]
    ids = []
    for row in rows:
        ids.append(
            await raw.fetchval(
                """INSERT INTO "case" (title, content, category_id, region_id, latitude, longitude,
                   attachment_ids, status, channel, submitter_id, calendar_fallback, overdue,
                   supervised_count, reopen_count, sent_back_count, version, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, '[]', 'registered', 'miniprogram', 1, false,
                   false, 0, 0, 0, 1, $7) RETURNING id""",
                *row,
            )
        )
    return ids


async def group_all(db: Database, settings: Settings) -> tuple[int, float]:
    grouped, started = 0, time.perf_counter()
    while True:
        async with db.transaction() as session:
            n = await hotspot_service.group_pending(session, datetime.now(UTC), settings)
        if not n:
            return grouped, time.perf_counter() - started
        grouped += n


async def assignment(db: Database) -> dict[int, int]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(select(HotspotCase.case_id, HotspotCase.hotspot_id))
        return {int(c): int(h) for c, h in rows.all()}


async def quality(db: Database, url: str, settings: Settings, seeds: list[int]) -> None:
    log("== Quality: labelled reports grouped by the worker's sweep ==")
    results = []
    for seed in seeds:
        await fresh_schema(db)
        raw = await asyncpg.connect(url)
        try:
            categories, regions = await base_rows(raw, db)
            reports = corpus.generate(520, seed)
            ids = await insert_reports(raw, reports, categories, regions)
        finally:
            await raw.close()
        n, seconds = await group_all(db, settings)
        got = await assignment(db)
        truth = {cid: r.problem for cid, r in zip(ids, reports, strict=True)}
        p, r, true_pairs, found_pairs = precision_recall(truth, {c: got[c] for c in ids})
        problems = len({x.problem for x in reports if x.problem})
        noise = sum(1 for x in reports if x.problem is None)
        results.append((p, r))
        log(
            f"seed {seed}: {n} reports, {problems} problems, {noise} noise; "
            f"pairs true {true_pairs}, found {found_pairs}; precision {p:.3f}, recall {r:.3f}; "
            f"{1000 * seconds / n:.1f} ms per case (small database)"
        )
    mean_p = sum(p for p, _ in results) / len(results)
    mean_r = sum(r for _, r in results) / len(results)
    log(f"mean over {len(results)} seeds: precision {mean_p:.3f}, recall {mean_r:.3f}")


def pool_rows(
    size: int,
) -> tuple[list[tuple[int, str, str, str, float | None, float | None, int]], Counter[int]]:
    """Generated reports with their vectors (weighted with the pool's own IDF)."""
    reports: list[corpus.Report] = []
    seed = 10_000
    while len(reports) < size:
        reports.extend(corpus.generate(520, seed))
        seed += 1
    reports = reports[:size]
    counts = [text.term_counts(r.title, r.content) for r in reports]
    df: Counter[int] = Counter()
    for c in counts:
        df.update(c.keys())
    rows = []
    for i, (r, c) in enumerate(zip(reports, counts, strict=True)):
        vector = text.weigh(c, df, len(reports))
        rows.append(
            (
                i,
                r.title,
                r.content,
                json.dumps({str(t): w for t, w in vector.weights.items()}),
                r.latitude,
                r.longitude,
                r.area,
            )
        )
    return rows, df


async def fill(
    raw: asyncpg.Connection, total: int, categories: dict[str, int], regions: list[int]
) -> None:
    log(f"building the pool of {POOL} generated reports ...")
    rows, df = pool_rows(POOL)
    started = time.perf_counter()
    await raw.execute(
        "CREATE TEMP TABLE pool (i int primary key, title text, content text, terms json,"
        " lat float, lng float, area int)"
    )
    await raw.copy_records_to_table("pool", records=rows)
    signatures = []
    for i, *_rest in rows:
        terms = json.loads(rows[i][3])
        ranked = sorted(((int(t), w) for t, w in terms.items()), key=lambda kv: (-kv[1], kv[0]))
        signatures.extend((i, t, w) for t, w in ranked[: text.SIGNATURE_TERMS])
    await raw.execute("CREATE TEMP TABLE pool_sig (i int, term bigint, weight float)")
    await raw.copy_records_to_table("pool_sig", records=signatures)
    await raw.execute("CREATE INDEX ON pool_sig (i)")
    region_array = "ARRAY[" + ",".join(str(r) for r in regions) + "]"
    category = categories["municipal"]
    log(f"inserting {total:,} cases ...")
    # Case ids 1..total, spread over DAYS days ending yesterday.
    await raw.execute(
        f"""INSERT INTO "case" (id, title, content, category_id, region_id, latitude, longitude,
            attachment_ids, status, channel, submitter_id, calendar_fallback, overdue,
            supervised_count, reopen_count, sent_back_count, version, created_at)
            SELECT g, p.title, p.content, {category}, ({region_array})[p.area + 1], p.lat, p.lng,
                   '[]', 'resolved', 'miniprogram', 1, false, false, 0, 0, 0, 1,
                   now() - interval '1 day' - (({total} - g) * interval '{DAYS * 86400 // total} seconds')
            FROM generate_series(1, {total}) g JOIN pool p ON p.i = g % {POOL}"""
    )
    await raw.execute(f"SELECT setval(pg_get_serial_sequence('\"case\"', 'id'), {total})")
    log("inserting their hotspots (one per 25 cases) and grouping rows ...")
    hotspots = total // 25
    await raw.execute(
        f"""INSERT INTO hotspot (id, title, status, category_id, region_id, case_count, terms,
            lat_sum, lng_sum, points, created_at)
            SELECT h, '热点' || h, 'active', {category}, {regions[0]}, 25, '{{}}', 0, 0, 0, now()
            FROM generate_series(1, {hotspots}) h"""
    )
    await raw.execute(f"SELECT setval(pg_get_serial_sequence('hotspot', 'id'), {hotspots})")
    await raw.execute(
        f"""INSERT INTO hotspot_case (case_id, hotspot_id, terms, category_id, region_id,
            region_path, latitude, longitude, created_at, pinned, grouped_at)
            SELECT c.id, 1 + (c.id % {hotspots}), p.terms, c.category_id, c.region_id,
                   '/', c.latitude, c.longitude, c.created_at, false, now()
            FROM "case" c JOIN pool p ON p.i = c.id % {POOL}"""
    )
    await raw.execute(
        f"""INSERT INTO hotspot_signature (term, day, case_id, weight)
            SELECT s.term, (c.created_at::date - date '1970-01-01'), c.id, s.weight
            FROM "case" c JOIN pool_sig s ON s.i = c.id % {POOL}"""
    )
    scale = total / POOL
    df_rows = [(t, max(1, int(n * scale))) for t, n in df.items()] + [(0, total)]
    await raw.copy_records_to_table("hotspot_term", records=df_rows, columns=["term", "df"])
    await raw.execute("ANALYZE")
    log(f"filled in {time.perf_counter() - started:.0f} s")


async def speed(db: Database, url: str, settings: Settings, total: int, reuse: bool) -> None:
    log(f"== Speed: grouping new reports with {total:,} cases stored ==")
    raw = await asyncpg.connect(url)
    try:
        if reuse:
            categories = {
                r["code"]: r["id"] for r in await raw.fetch("SELECT code, id FROM case_category")
            }
            regions = [
                r["id"]
                for r in await raw.fetch(
                    "SELECT id FROM region WHERE level = 'community' ORDER BY id"
                )
            ]
            log(
                f"reusing the {await raw.fetchval('SELECT count(*) FROM hotspot_case'):,} grouped cases stored"
            )
        else:
            await raw.close()
            await fresh_schema(db)
            raw = await asyncpg.connect(url)
            categories, regions = await base_rows(raw, db)
            await fill(raw, total, categories, regions)
        fresh = corpus.generate(2 * NEW_CASES + 40, 77)[: 2 * NEW_CASES]
        now = datetime.now(UTC)
        await insert_reports(raw, fresh, categories, regions, [now] * len(fresh))
    finally:
        await raw.close()
    # Warm the caches the way a running worker has them.
    async with db.transaction() as session:
        await session.execute(select(HotspotCase.case_id).limit(1))
    timings = []
    settings_one = settings.model_copy(update={"hotspot_batch_size": 1})
    for _ in range(NEW_CASES):
        started = time.perf_counter()
        async with db.transaction() as session:
            n = await hotspot_service.group_pending(session, datetime.now(UTC), settings_one)
        if not n:
            break
        timings.append(1000 * (time.perf_counter() - started))
    timings.sort()
    mean = sum(timings) / len(timings)
    p95 = timings[int(0.95 * (len(timings) - 1))]
    log(
        f"{len(timings)} new cases, each in its own transaction: mean {mean:.1f} ms, "
        f"median {timings[len(timings) // 2]:.1f} ms, p95 {p95:.1f} ms per case"
    )
    started = time.perf_counter()
    batch = settings.model_copy(update={"hotspot_batch_size": NEW_CASES})
    async with db.transaction() as session:
        n = await hotspot_service.group_pending(session, datetime.now(UTC), batch)
    seconds = time.perf_counter() - started
    log(f"{n} new cases in one sweep (as the worker runs it): {1000 * seconds / n:.1f} ms per case")
    started = time.perf_counter()
    log("== Regroup: the 90-day window ==")
    async with db.transaction() as session:
        result = await hotspot_service.regroup(session, settings, datetime.now(UTC))
    log(
        f"regrouped {result.cases:,} cases into {result.hotspots:,} groups, {result.moved:,} "
        f"moved: {result.seconds:.1f} s in the function, "
        f"{time.perf_counter() - started:.1f} s with the commit"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--database", default="bench_hotspots")
    parser.add_argument("--seeds", default="2026,2,3,4,5")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the cases a previous run stored (no refill)"
    )
    args = parser.parse_args()
    await ensure_database(args.database)
    url = f"{SERVER}/{args.database}"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url.replace("postgresql://", "postgresql+asyncpg://"),
        db_pool_size=4,
        run_worker_in_process=False,
    )
    db = Database(settings)
    try:
        if not args.skip_quality:
            await quality(db, url, settings, [int(s) for s in args.seeds.split(",")])
        if not args.skip_speed:
            await speed(db, url, settings, args.cases, args.reuse)
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
