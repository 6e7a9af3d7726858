"""The few SQL expressions that PostgreSQL and SQLite spell differently.

Every figure is computed by the database (aggregates, GROUP BY, window functions); these
helpers only give the same answer on both dialects:

- hours between two timestamps: `extract(epoch ...)` on PostgreSQL, `julianday` on SQLite
  (where timestamps are stored as naive UTC text);
- the Asia/Shanghai day, ISO week (from Monday) or month a timestamp falls in (China has one
  fixed offset, +08:00, without daylight saving since 1991);
- a continuous percentile per group (linear interpolation between the two nearest ranks, as
  PostgreSQL's `percentile_cont`): `percentile_cont` on PostgreSQL, `row_number()` and
  `count()` windows with an ordered-offset pick on SQLite.
"""

from __future__ import annotations

import math
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Date,
    Float,
    Integer,
    Subquery,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement


class Bucket(StrEnum):
    day = "day"
    week = "week"
    month = "month"


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


REPORT_SETTINGS = (
    text("SET LOCAL plan_cache_mode = force_custom_plan"),
    text("SET LOCAL jit = off"),
)


async def tune_report_queries(session: AsyncSession) -> None:
    """Transaction-scoped planner settings for the report queries (PostgreSQL).

    - Plan each query for its actual date range: asyncpg runs prepared statements, and after
      five executions PostgreSQL may switch to a generic plan that cannot know how many rows
      `created_at BETWEEN $1 AND $2` selects; the benchmark's overview went from about 0.3 s
      to over 1 s.
    - No JIT: these queries read tens of thousands of index entries; compiling them cost
      1.3 s of a 1.5 s percentile query in the benchmark."""
    if dialect_of(session) == "postgresql":
        for statement in REPORT_SETTINGS:
            await session.execute(statement)


def hours_between(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return cast(func.extract("epoch", end - start), Float) / 3600.0
    return (func.julianday(end) - func.julianday(start)) * 24.0


def local_bucket(dialect: str, ts: Any, bucket: Bucket) -> ColumnElement[Any]:
    """The first Asia/Shanghai day of the day/week/month `ts` falls in."""
    if dialect == "postgresql":
        local = func.timezone("Asia/Shanghai", ts)
        return cast(func.date_trunc(bucket.value, local), Date)
    if bucket is Bucket.day:
        return func.date(ts, "+8 hours")
    if bucket is Bucket.week:
        return func.date(ts, "+8 hours", "weekday 0", "-6 days")
    return func.date(ts, "+8 hours", "start of month")


def as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


async def percentile_by_group(
    session: AsyncSession, values: Subquery, fraction: float
) -> dict[Any, float]:
    """`fraction` percentile of `values.c.v` per `values.c.g` (NULL values ignored)."""
    dialect = dialect_of(session)
    g, v = values.c.g, values.c.v
    if dialect == "postgresql":
        stmt = (
            select(g, func.percentile_cont(fraction).within_group(v))
            .where(v.is_not(None))
            .group_by(g)
        )
        return {row[0]: float(row[1]) for row in await session.execute(stmt)}
    ranked = (
        select(
            g.label("g"),
            v.label("v"),
            (func.row_number().over(partition_by=g, order_by=v) - 1).label("idx"),
            func.count().over(partition_by=g).label("n"),
        )
        .where(v.is_not(None))
        .subquery()
    )
    # SQLite's CAST of a non-negative REAL to INTEGER truncates: floor(fraction * (n - 1)).
    lower = cast(literal(fraction) * (ranked.c.n - 1), Integer)
    picked = (
        select(
            ranked.c.g,
            func.max(ranked.c.n).label("n"),
            func.max(case((ranked.c.idx == lower, ranked.c.v))).label("lo"),
            func.max(case((ranked.c.idx == lower + 1, ranked.c.v))).label("hi"),
        )
        .where(or_(ranked.c.idx == lower, ranked.c.idx == lower + 1))
        .group_by(ranked.c.g)
    )
    out: dict[Any, float] = {}
    for group, n, lo, hi in await session.execute(picked):
        position = fraction * (n - 1)
        weight = position - math.floor(position)
        out[group] = float(lo) + weight * (float(hi if hi is not None else lo) - float(lo))
    return out


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def ratio(numerator: int, denominator: int) -> float | None:
    """A rate as a fraction in [0, 1], or None when nothing was counted (never 0/0)."""
    return None if denominator == 0 else round(numerator / denominator, 4)
