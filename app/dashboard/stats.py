"""Statistics for the staff dashboard, computed by the database.

Every figure is an aggregate query (COUNT … FILTER, SUM, GROUP BY, percentiles) over the
tables the other domains write; nothing walks rows in Python. A figure counts what lies in
the caller's region scope: cases and wishes by their `region_id`, check-ins, duty slots and
receptions by their station's region.

The three rates (三率), each a fraction in [0, 1], or null when its denominator is zero:

- response rate (按期答复率): of the cases whose deadline (`deadline_at`) falls in the date
  range and has either passed or been met by a reply, the share whose unit replied
  (`fed_back_at`) on or before the deadline. Cases whose deadline is still ahead and are not
  answered yet are not counted either way.
- resolution rate (办结率): of the cases registered in the range and accepted (not rejected,
  not merged into another), the share now resolved (办结).
- satisfaction rate (满意率): of the cases registered in the range that the resident rated,
  the share rated satisfied (满意) or basically satisfied (基本满意).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement
from sqlmodel import col

from app.cases.models import Case, CaseAction, CaseCategory, CaseEvent, CaseStatus, Satisfaction
from app.core.clock import utcnow
from app.dashboard.deps import DateRange, RegionScope
from app.dashboard.schemas import (
    CaseFigures,
    CaseGroup,
    CaseStats,
    OverviewStats,
    PresenceFigures,
    Rate,
    Rates,
    UnitRank,
    WishFigures,
)
from app.dashboard.sql import (
    Bucket,
    as_date,
    dialect_of,
    hours_between,
    local_bucket,
    percentile_by_group,
    ratio,
    rounded,
    tune_report_queries,
)
from app.org.models import Region, Station, Unit
from app.presence.models import CheckIn, DutyAssignment, DutySlot, Reception
from app.wishes.models import Wish, WishStatus

SATISFIED = (Satisfaction.satisfied.value, Satisfaction.basically_satisfied.value)
NOT_ACCEPTED = (CaseStatus.rejected.value, CaseStatus.merged.value)
# A case waiting for its unit: registered (not routed yet, or sent back) or handling.
AWAITING_REPLY = (CaseStatus.registered.value, CaseStatus.handling.value)
OPEN = (CaseStatus.registered.value, CaseStatus.handling.value, CaseStatus.fed_back.value)
FULFILLED = (WishStatus.fulfilled.value, WishStatus.completed.value)


# --- Scope conditions ------------------------------------------------------------------------


def in_scope(region_column: Any, scope: RegionScope) -> ColumnElement[bool]:
    if scope.path is None:
        return true()
    return col(region_column).in_(select(Region.id).where(col(Region.path).startswith(scope.path)))


def station_in_scope(station_column: Any, scope: RegionScope) -> ColumnElement[bool]:
    if scope.path is None:
        return true()
    return col(station_column).in_(
        select(Station.id)
        .join(Region, col(Region.id) == Station.region_id)
        .where(col(Region.path).startswith(scope.path))
    )


def between(column: Any, period: DateRange) -> ColumnElement[bool]:
    return and_(col(column) >= period.since, col(column) < period.until)


def overdue_now(now: datetime) -> ColumnElement[bool]:
    """Waiting for the unit's reply with the deadline passed (live, not the sweep's flag)."""
    return and_(
        col(Case.status).in_(AWAITING_REPLY),
        col(Case.deadline_at).is_not(None),
        col(Case.deadline_at) < now,
    )


# --- Overview --------------------------------------------------------------------------------


async def overview(session: AsyncSession, scope: RegionScope, period: DateRange) -> OverviewStats:
    await tune_report_queries(session)
    now = utcnow()
    cases, n_rated, n_satisfied = await _case_figures(session, scope, period, now)
    rates = await _rates(session, scope, period, now, cases, n_rated, n_satisfied)
    wishes = await _wish_figures(session, scope, period)
    presence = await _presence_figures(session, scope, period)
    return OverviewStats(
        region_id=scope.region_id,
        from_=period.start,
        to=period.end,
        cases=cases,
        wishes=wishes,
        presence=presence,
        rates=rates,
    )


async def _case_figures(
    session: AsyncSession, scope: RegionScope, period: DateRange, now: datetime
) -> tuple[CaseFigures, int, int]:
    """The cohort registered in the range (one scan), the backlog now (another), and the
    cohort's rated and satisfied counts."""
    stmt = (
        select(
            Case.status,
            func.count(),
            func.count().filter(overdue_now(now)),
            func.count().filter(col(Case.supervised_count) > 0),
            func.count().filter(col(Case.satisfaction).is_not(None)),
            func.count().filter(col(Case.satisfaction).in_(SATISFIED)),
        )
        .where(between(Case.created_at, period), in_scope(Case.region_id, scope))
        .group_by(Case.status)
    )
    by_status = {s.value: 0 for s in CaseStatus}
    overdue = supervised = rated = satisfied = 0
    for status, count, n_overdue, n_supervised, n_rated, n_satisfied in await session.execute(stmt):
        by_status[status] = int(count)
        overdue += int(n_overdue)
        supervised += int(n_supervised)
        rated += int(n_rated)
        satisfied += int(n_satisfied)

    backlog = (
        select(
            func.count(),
            func.count().filter(overdue_now(now)),
            func.count().filter(col(Case.supervised_count) > 0),
        )
        .select_from(Case)
        .where(col(Case.status).in_(OPEN), in_scope(Case.region_id, scope))
    )
    open_now, overdue_open, supervised_open = (await session.execute(backlog)).one()
    figures = CaseFigures(
        new=sum(by_status.values()),
        by_status=by_status,
        overdue=overdue,
        under_supervision=supervised,
        open_now=int(open_now),
        overdue_now=int(overdue_open),
        under_supervision_now=int(supervised_open),
    )
    return figures, rated, satisfied


async def _rates(
    session: AsyncSession,
    scope: RegionScope,
    period: DateRange,
    now: datetime,
    cases: CaseFigures,
    n_rated: int,
    n_satisfied: int,
) -> Rates:
    answered_in_time = and_(
        col(Case.fed_back_at).is_not(None), col(Case.fed_back_at) <= col(Case.deadline_at)
    )
    response = (
        select(func.count(), func.count().filter(answered_in_time))
        .select_from(Case)
        .where(
            between(Case.deadline_at, period),
            col(Case.status) != CaseStatus.merged.value,
            # counted once the deadline has passed or the case was answered
            (col(Case.deadline_at) < now) | col(Case.fed_back_at).is_not(None),
            in_scope(Case.region_id, scope),
        )
    )
    due, in_time = (await session.execute(response)).one()

    accepted = cases.new - sum(cases.by_status[s] for s in NOT_ACCEPTED)
    resolved = cases.by_status[CaseStatus.resolved.value]
    return Rates(
        response=Rate(
            rate=ratio(int(in_time), int(due)), numerator=int(in_time), denominator=int(due)
        ),
        resolution=Rate(rate=ratio(resolved, accepted), numerator=resolved, denominator=accepted),
        satisfaction=Rate(
            rate=ratio(n_satisfied, n_rated), numerator=n_satisfied, denominator=n_rated
        ),
    )


async def _wish_figures(
    session: AsyncSession, scope: RegionScope, period: DateRange
) -> WishFigures:
    stmt = (
        select(Wish.status, func.count())
        .where(between(Wish.created_at, period), in_scope(Wish.region_id, scope))
        .group_by(Wish.status)
    )
    by_status = {s.value: 0 for s in WishStatus}
    for status, count in await session.execute(stmt):
        by_status[status] = int(count)
    claimed = (
        select(func.count())
        .select_from(Wish)
        .where(between(Wish.claimed_at, period), in_scope(Wish.region_id, scope))
    )
    # (status, fulfilled_at) is indexed on the wish table
    fulfilled = (
        select(func.count())
        .select_from(Wish)
        .where(
            col(Wish.status).in_(FULFILLED),
            between(Wish.fulfilled_at, period),
            in_scope(Wish.region_id, scope),
        )
    )
    return WishFigures(
        new=sum(by_status.values()),
        by_status=by_status,
        claimed=int((await session.execute(claimed)).scalar_one()),
        fulfilled=int((await session.execute(fulfilled)).scalar_one()),
    )


def duty_seconds_expr(dialect: str) -> ColumnElement[float]:
    """Hours of a check-in that was checked out by the deputy (scan, checkout or moving on);
    check-ins closed automatically after the maximum duration are not counted as hours."""
    return func.coalesce(
        func.sum(hours_between(dialect, CheckIn.checked_in_at, CheckIn.checked_out_at)).filter(
            col(CheckIn.checked_out_at).is_not(None), col(CheckIn.auto_closed).is_(False)
        ),
        0.0,
    )


async def _presence_figures(
    session: AsyncSession, scope: RegionScope, period: DateRange
) -> PresenceFigures:
    dialect = dialect_of(session)
    checkins = (
        select(
            func.count(),
            func.count(func.distinct(CheckIn.deputy_id)),
            duty_seconds_expr(dialect),
            func.count().filter(col(CheckIn.auto_closed).is_(True)),
            func.count().filter(col(CheckIn.duty_slot_id).is_not(None)),
        )
        .select_from(CheckIn)
        .where(between(CheckIn.checked_in_at, period), station_in_scope(CheckIn.station_id, scope))
    )
    n, deputies, hours, auto_closed, on_duty = (await session.execute(checkins)).one()

    attended = (
        select(CheckIn.id)
        .where(
            CheckIn.duty_slot_id == DutyAssignment.slot_id,
            CheckIn.deputy_id == DutyAssignment.deputy_id,
        )
        .exists()
    )
    roster = (
        select(func.count(), func.count().filter(attended))
        .select_from(DutyAssignment)
        .join(DutySlot, col(DutySlot.id) == DutyAssignment.slot_id)
        .where(between(DutySlot.starts_at, period), station_in_scope(DutySlot.station_id, scope))
    )
    rostered, present = (await session.execute(roster)).one()

    receptions = (
        select(func.count())
        .select_from(Reception)
        .where(
            between(Reception.received_at, period), station_in_scope(Reception.station_id, scope)
        )
    )
    n_receptions = (await session.execute(receptions)).scalar_one()
    return PresenceFigures(
        checkins=int(n),
        deputies_checked_in=int(deputies),
        duty_hours=round(float(hours or 0), 2),
        auto_closed=int(auto_closed),
        checkins_on_duty=int(on_duty),
        duty_assignments=int(rostered),
        duty_assignments_attended=int(present),
        attendance_rate=ratio(int(present), int(rostered)),
        receptions=int(n_receptions),
    )


def first_reply_at() -> ColumnElement[Any]:
    """When the unit first answered. `fed_back_at` holds the latest reply, which is the first
    one unless the case was reopened; for reopened cases the timeline has the first."""
    first_event = (
        select(func.min(CaseEvent.created_at))
        .where(CaseEvent.case_id == Case.id, CaseEvent.action == CaseAction.reply.value)
        .scalar_subquery()
    )
    return case((col(Case.reopen_count) == 0, col(Case.fed_back_at)), else_=first_event)


# --- Cases grouped ---------------------------------------------------------------------------

GROUPINGS = ("category", "unit", "region", "station", "day", "week", "month")
PERCENTILE = 0.9


def _group_key(group_by: str, scope: RegionScope, dialect: str) -> tuple[Any, list[Any]]:
    """The grouping expression, and the joins it needs."""
    if group_by == "category":
        return col(Case.category_id), []
    if group_by == "unit":
        return col(Case.lead_unit_id), []
    if group_by == "station":
        return col(Case.station_id), []
    if group_by == "region":
        # Roll up to the regions one level below the scope's region (e.g. a district's
        # streets); cases registered at the scope's region itself form its own group.
        child = Region.__table__.alias("child")  # type: ignore[attr-defined]
        leaf = Region.__table__.alias("leaf")  # type: ignore[attr-defined]
        if scope.region_id is None:
            top = child.c.parent_id.is_(None)
        else:
            top = child.c.parent_id == scope.region_id
        mapping = (
            select(leaf.c.id.label("region_id"), child.c.id.label("group_id"))
            .join(child, and_(top, leaf.c.path.startswith(child.c.path)))
            .subquery("rollup")
        )
        key = func.coalesce(mapping.c.group_id, Case.region_id)
        return key, [(mapping, mapping.c.region_id == Case.region_id)]
    return local_bucket(dialect, Case.created_at, Bucket(group_by)), []


def _cohort(scope: RegionScope, period: DateRange) -> list[ColumnElement[bool]]:
    return [between(Case.created_at, period), in_scope(Case.region_id, scope)]


async def case_stats(
    session: AsyncSession, scope: RegionScope, period: DateRange, group_by: str
) -> CaseStats:
    await tune_report_queries(session)
    dialect = dialect_of(session)
    now = utcnow()
    key, joins = _group_key(group_by, scope, dialect)
    response_h = hours_between(dialect, Case.created_at, first_reply_at())
    resolution_h = hours_between(dialect, Case.created_at, Case.resolved_at)

    def with_joins(stmt: Select[Any]) -> Select[Any]:
        for target, onclause in joins:
            stmt = stmt.outerjoin(target, onclause)
        return stmt

    # One pass over the cohort: each case's group and hours computed once.
    cohort = (
        with_joins(
            select(
                key.label("g"),
                Case.status.label("status"),  # type: ignore[attr-defined]
                Case.deadline_at.label("deadline_at"),  # type: ignore[union-attr]
                Case.satisfaction.label("satisfaction"),  # type: ignore[union-attr]
                response_h.label("rh"),
                resolution_h.label("zh"),
            ).select_from(Case)
        )
        .where(*_cohort(scope, period))
        .subquery("cohort")
    )
    c = cohort.c
    late = and_(c.status.in_(AWAITING_REPLY), c.deadline_at.is_not(None), c.deadline_at < now)
    columns = [
        c.g,
        func.count().label("total"),
        func.count().filter(c.status.in_(OPEN)).label("open"),
        func.count().filter(c.status == CaseStatus.resolved.value).label("resolved"),
        func.count().filter(c.status.in_(NOT_ACCEPTED)).label("not_accepted"),
        func.count().filter(late).label("overdue"),
        func.count().filter(c.satisfaction.is_not(None)).label("rated"),
        func.count().filter(c.satisfaction.in_(SATISFIED)).label("satisfied"),
        func.avg(c.rh).label("avg_response"),
        func.avg(c.zh).label("avg_resolution"),
    ]
    if dialect == "postgresql":
        # percentile_cont ignores NULLs: cases not answered / not resolved drop out
        columns += [
            func.percentile_cont(PERCENTILE).within_group(c.rh).label("p90_response"),
            func.percentile_cont(PERCENTILE).within_group(c.zh).label("p90_resolution"),
        ]
    rows = (await session.execute(select(*columns).group_by(c.g))).all()
    if dialect == "postgresql":
        p90_response = {r.g: r.p90_response for r in rows if r.p90_response is not None}
        p90_resolution = {r.g: r.p90_resolution for r in rows if r.p90_resolution is not None}
    else:
        p90_response = await percentile_by_group(
            session, select(c.g.label("g"), c.rh.label("v")).subquery(), PERCENTILE
        )
        p90_resolution = await percentile_by_group(
            session, select(c.g.label("g"), c.zh.label("v")).subquery(), PERCENTILE
        )
    labels = await _labels(session, group_by, [r.g for r in rows])
    groups = [
        CaseGroup(
            key=_key_out(r.g, group_by),
            label=labels.get(r.g),
            total=int(r.total),
            open=int(r.open),
            resolved=int(r.resolved),
            overdue=int(r.overdue),
            rated=int(r.rated),
            satisfied=int(r.satisfied),
            resolution_rate=ratio(int(r.resolved), int(r.total) - int(r.not_accepted)),
            satisfaction_rate=ratio(int(r.satisfied), int(r.rated)),
            avg_response_hours=rounded(r.avg_response),
            p90_response_hours=rounded(p90_response.get(r.g)),
            avg_resolution_hours=rounded(r.avg_resolution),
            p90_resolution_hours=rounded(p90_resolution.get(r.g)),
        )
        for r in rows
    ]
    groups.sort(key=_sort_key(group_by))
    units = groups if group_by == "unit" else await _unit_groups(session, scope, period, now)
    assigned = [g for g in units if g.key is not None]
    by_overdue = sorted(assigned, key=lambda g: (-g.overdue, -g.total, str(g.key)))
    by_satisfaction = sorted(
        (g for g in assigned if g.satisfaction_rate is not None),
        key=lambda g: (-(g.satisfaction_rate or 0), -g.rated, str(g.key)),
    )
    return CaseStats(
        region_id=scope.region_id,
        from_=period.start,
        to=period.end,
        group_by=group_by,
        groups=groups,
        units_by_overdue=[_rank(g, i) for i, g in enumerate(by_overdue, 1)],
        units_by_satisfaction=[_rank(g, i) for i, g in enumerate(by_satisfaction, 1)],
    )


async def _unit_groups(
    session: AsyncSession, scope: RegionScope, period: DateRange, now: datetime
) -> list[CaseGroup]:
    stmt = (
        select(
            Case.lead_unit_id,
            func.count(),
            func.count().filter(overdue_now(now)),
            func.count().filter(col(Case.satisfaction).is_not(None)),
            func.count().filter(col(Case.satisfaction).in_(SATISFIED)),
        )
        .where(*_cohort(scope, period), col(Case.lead_unit_id).is_not(None))
        .group_by(Case.lead_unit_id)
    )
    rows = (await session.execute(stmt)).all()
    labels = await _labels(session, "unit", [r[0] for r in rows])
    return [
        CaseGroup(
            key=unit_id,
            label=labels.get(unit_id),
            total=int(total),
            overdue=int(overdue),
            rated=int(rated),
            satisfied=int(satisfied),
            satisfaction_rate=ratio(int(satisfied), int(rated)),
        )
        for unit_id, total, overdue, rated, satisfied in rows
    ]


def _rank(group: CaseGroup, position: int) -> UnitRank:
    return UnitRank(
        rank=position,
        unit_id=int(group.key) if group.key is not None else 0,
        name=group.label,
        total=group.total,
        overdue=group.overdue,
        rated=group.rated,
        satisfaction_rate=group.satisfaction_rate,
    )


def _key_out(value: Any, group_by: str) -> int | str | None:
    if value is None:
        return None
    if group_by in ("day", "week", "month"):
        found = as_date(value)
        return found.isoformat() if found else None
    return int(value)


def _sort_key(group_by: str):  # type: ignore[no-untyped-def]
    if group_by in ("day", "week", "month"):
        return lambda g: str(g.key)
    return lambda g: (-g.total, g.key is None, g.key if g.key is not None else 0)


async def _labels(session: AsyncSession, group_by: str, keys: Sequence[Any]) -> dict[Any, str]:
    ids = [k for k in keys if k is not None]
    table: Any = {
        "category": CaseCategory,
        "unit": Unit,
        "region": Region,
        "station": Station,
    }.get(group_by)
    if table is None:
        return {}
    if not ids:
        return {}
    rows = await session.execute(select(table.id, table.name).where(col(table.id).in_(ids)))
    return {row[0]: row[1] for row in rows}


__all__ = ["overview", "case_stats", "GROUPINGS"]
