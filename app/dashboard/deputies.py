"""Per-deputy activity (GET /stats/deputies) and the 约谈 candidates.

A deputy's acts are: check-ins, receptions, cases they submitted, cases they follow, wishes
they claimed or fulfilled, activities attended (代表活动), and the manual acts staff recorded. Each figure is one GROUP BY
deputy query restricted to the page's deputies; the inactive filter is one NOT IN over the
union of deputies active since the cut-off.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.activities import service as activity_service
from app.activities.models import ActivityAttendance, AttendanceStatus
from app.cases.models import Case, CaseFollow
from app.core.clock import SHANGHAI, local_now
from app.core.pagination import PageParams
from app.core.sorting import name_order
from app.dashboard.deps import DateRange, RegionScope
from app.dashboard.models import ManualAct
from app.dashboard.schemas import DeputyActivity, DeputyStats
from app.dashboard.sql import dialect_of, ratio, tune_report_queries
from app.dashboard.stats import between, duty_seconds_expr
from app.identity.models import Deputy, DeputyStation, User
from app.org.models import Region, Station
from app.presence.models import CheckIn, DutyAssignment, DutySlot, Reception
from app.reports import service as report_service
from app.suggestions.models import Suggestion, SuggestionCoSigner
from app.wishes.models import Wish, WishStatus

FULFILLED = (WishStatus.fulfilled.value, WishStatus.completed.value)


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (clamped to the month's end)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    return date(year, month, 28)


def deputies_in_scope(scope: RegionScope) -> ColumnElement[bool]:
    """On the active roster, and in scope by their own region or a station they serve."""
    active = col(Deputy.is_active).is_(True)
    if scope.path is None:
        return active
    own = col(Deputy.region_id).in_(
        select(Region.id).where(col(Region.path).startswith(scope.path))
    )
    attached = exists().where(
        DeputyStation.deputy_id == Deputy.id,
        DeputyStation.station_id == Station.id,
        Station.region_id == Region.id,
        col(Region.path).startswith(scope.path),
    )
    return and_(active, or_(own, attached))


def _deputy_users() -> Any:
    return select(User.id).where(col(User.deputy_id).is_not(None))


def active_since(since: datetime, since_day: date) -> Any:
    """Ids of deputies with any recorded act at or after the cut-off."""
    submitted = (
        select(User.deputy_id)
        .join(Case, col(Case.submitter_id) == User.id)
        .where(col(User.deputy_id).is_not(None), col(Case.created_at) >= since)
    )
    return union(
        select(CheckIn.deputy_id).where(col(CheckIn.checked_in_at) >= since),
        select(Reception.deputy_id).where(
            col(Reception.received_at) >= since, col(Reception.deputy_id).is_not(None)
        ),
        submitted,
        select(CaseFollow.deputy_id).where(
            col(CaseFollow.created_at) >= since, col(CaseFollow.deputy_id).is_not(None)
        ),
        select(Wish.claimed_by_deputy_id).where(
            col(Wish.claimed_by_deputy_id).is_not(None),
            or_(col(Wish.claimed_at) >= since, col(Wish.fulfilled_at) >= since),
        ),
        select(ManualAct.deputy_id).where(col(ManualAct.occurred_on) >= since_day),
        _attended().where(col(ActivityAttendance.recorded_at) >= since),
    )


def _attended() -> Any:
    return select(ActivityAttendance.deputy_id).where(
        ActivityAttendance.status == AttendanceStatus.present.value
    )


async def _counts(session: AsyncSession, stmt: Any) -> dict[int, tuple[Any, ...]]:
    return {row[0]: tuple(row[1:]) for row in await session.execute(stmt)}


async def deputy_stats(
    session: AsyncSession,
    scope: RegionScope,
    period: DateRange,
    page: PageParams,
    *,
    inactive_months: int,
    inactive_only: bool,
    not_reported: bool = False,
) -> DeputyStats:
    await tune_report_queries(session)
    dialect = dialect_of(session)
    cutoff_day = months_before(local_now().date(), inactive_months)
    cutoff = datetime.combine(cutoff_day, time(0), SHANGHAI).astimezone(UTC)
    roster = deputies_in_scope(scope)
    inactive = col(Deputy.id).not_in(active_since(cutoff, cutoff_day))
    inactive_total = (
        await session.execute(select(func.count()).select_from(Deputy).where(roster, inactive))
    ).scalar_one()
    conditions = [roster, inactive] if inactive_only else [roster]
    if not_reported:
        conditions.append(~report_service.reported_condition(Deputy.id, col(Deputy.term)))
    total = (
        await session.execute(select(func.count()).select_from(Deputy).where(*conditions))
    ).scalar_one()
    deputies = list(
        (
            await session.execute(
                select(Deputy)
                .where(*conditions)
                .order_by(*name_order(Deputy))
                .limit(page.limit)
                .offset(page.offset)
            )
        ).scalars()
    )
    ids = [d.id for d in deputies]
    items = await activity_of(session, dialect, deputies, ids, period, cutoff)
    return DeputyStats(
        region_id=scope.region_id,
        from_=period.start,
        to=period.end,
        inactive_months=inactive_months,
        inactive_since=cutoff_day,
        inactive_total=int(inactive_total),
        items=items,
        total=int(total),
    )


async def activity_of(
    session: AsyncSession,
    dialect: str,
    deputies: Sequence[Deputy],
    ids: list[Any],
    period: DateRange,
    cutoff: datetime,
) -> list[DeputyActivity]:
    if not ids:
        return []
    checkins = await _counts(
        session,
        select(
            CheckIn.deputy_id,
            func.count(),
            func.count().filter(col(CheckIn.duty_slot_id).is_not(None)),
            duty_seconds_expr(dialect),
        )
        .where(col(CheckIn.deputy_id).in_(ids), between(CheckIn.checked_in_at, period))
        .group_by(CheckIn.deputy_id),
    )
    attended = (
        select(CheckIn.id)
        .where(
            CheckIn.duty_slot_id == DutyAssignment.slot_id,
            CheckIn.deputy_id == DutyAssignment.deputy_id,
        )
        .exists()
    )
    duty = await _counts(
        session,
        select(DutyAssignment.deputy_id, func.count(), func.count().filter(attended))
        .join(DutySlot, col(DutySlot.id) == DutyAssignment.slot_id)
        .where(col(DutyAssignment.deputy_id).in_(ids), between(DutySlot.starts_at, period))
        .group_by(DutyAssignment.deputy_id),
    )
    receptions = await _counts(
        session,
        select(Reception.deputy_id, func.count())
        .where(col(Reception.deputy_id).in_(ids), between(Reception.received_at, period))
        .group_by(Reception.deputy_id),
    )
    submitted = await _counts(
        session,
        select(User.deputy_id, func.count())
        .join(Case, col(Case.submitter_id) == User.id)
        .where(col(User.deputy_id).in_(ids), between(Case.created_at, period))
        .group_by(User.deputy_id),
    )
    followed = await _counts(
        session,
        select(CaseFollow.deputy_id, func.count())
        .where(col(CaseFollow.deputy_id).in_(ids), between(CaseFollow.created_at, period))
        .group_by(CaseFollow.deputy_id),
    )
    wishes = await _counts(
        session,
        select(
            Wish.claimed_by_deputy_id,
            func.count().filter(between(Wish.claimed_at, period)),
            func.count().filter(
                between(Wish.fulfilled_at, period), col(Wish.status).in_(FULFILLED)
            ),
        )
        .where(col(Wish.claimed_by_deputy_id).in_(ids))
        .group_by(Wish.claimed_by_deputy_id),
    )
    manual = await _counts(
        session,
        select(ManualAct.deputy_id, func.count())
        .where(
            col(ManualAct.deputy_id).in_(ids),
            col(ManualAct.occurred_on) >= period.start,
            col(ManualAct.occurred_on) <= period.end,
        )
        .group_by(ManualAct.deputy_id),
    )
    activities = await activity_service.attendance_counts(session, ids, period.since, period.until)
    reported = set(
        (
            await session.execute(
                select(Deputy.id).where(
                    col(Deputy.id).in_(ids),
                    report_service.reported_condition(Deputy.id, col(Deputy.term)),
                )
            )
        ).scalars()
    )
    led = await _counts(
        session,
        select(Suggestion.deputy_id, func.count())
        .where(col(Suggestion.deputy_id).in_(ids), between(Suggestion.submitted_at, period))
        .group_by(Suggestion.deputy_id),
    )
    cosigned = await _counts(
        session,
        select(SuggestionCoSigner.deputy_id, func.count())
        .join(Suggestion, col(Suggestion.id) == SuggestionCoSigner.suggestion_id)
        .where(col(SuggestionCoSigner.deputy_id).in_(ids), between(Suggestion.submitted_at, period))
        .group_by(SuggestionCoSigner.deputy_id),
    )
    last = await last_active(session, ids)
    out = []
    for deputy in deputies:
        n_checkins, on_duty, hours = checkins.get(deputy.id, (0, 0, 0.0))
        rostered, present = duty.get(deputy.id, (0, 0))
        last_at = last.get(deputy.id)
        out.append(
            DeputyActivity(
                deputy_id=deputy.id,  # type: ignore[arg-type]
                name=deputy.name,
                level=deputy.level,
                region_id=deputy.region_id,
                checkins=int(n_checkins),
                checkins_on_duty=int(on_duty),
                duty_hours=round(float(hours or 0), 2),
                duty_assignments=int(rostered),
                duty_assignments_attended=int(present),
                attendance_rate=ratio(int(present), int(rostered)),
                receptions=int(receptions.get(deputy.id, (0,))[0]),
                cases_submitted=int(submitted.get(deputy.id, (0,))[0]),
                cases_followed=int(followed.get(deputy.id, (0,))[0]),
                wishes_claimed=int(wishes.get(deputy.id, (0, 0))[0]),
                wishes_fulfilled=int(wishes.get(deputy.id, (0, 0))[1]),
                manual_acts=int(manual.get(deputy.id, (0,))[0]),
                activities_attended=activities.get(deputy.id, (0, 0))[0],  # type: ignore[arg-type]
                activities_absent=activities.get(deputy.id, (0, 0))[1],  # type: ignore[arg-type]
                reported_this_term=deputy.id in reported,
                suggestions_led=int(led.get(deputy.id, (0,))[0]),
                suggestions_cosigned=int(cosigned.get(deputy.id, (0,))[0]),
                last_active_at=last_at,
                inactive=last_at is None or last_at < cutoff,
            )
        )
    return out


async def last_active(session: AsyncSession, ids: list[Any]) -> dict[int, datetime]:
    """The latest recorded act of each deputy, any time."""
    sources = [
        select(CheckIn.deputy_id, func.max(CheckIn.checked_in_at))
        .where(col(CheckIn.deputy_id).in_(ids))
        .group_by(CheckIn.deputy_id),
        select(Reception.deputy_id, func.max(Reception.received_at))
        .where(col(Reception.deputy_id).in_(ids))
        .group_by(Reception.deputy_id),
        select(User.deputy_id, func.max(Case.created_at))
        .join(Case, col(Case.submitter_id) == User.id)
        .where(col(User.deputy_id).in_(ids))
        .group_by(User.deputy_id),
        select(CaseFollow.deputy_id, func.max(CaseFollow.created_at))
        .where(col(CaseFollow.deputy_id).in_(ids))
        .group_by(CaseFollow.deputy_id),
        select(Wish.claimed_by_deputy_id, func.max(Wish.claimed_at), func.max(Wish.fulfilled_at))
        .where(col(Wish.claimed_by_deputy_id).in_(ids))
        .group_by(Wish.claimed_by_deputy_id),
        select(ActivityAttendance.deputy_id, func.max(ActivityAttendance.recorded_at))
        .where(
            col(ActivityAttendance.deputy_id).in_(ids),
            ActivityAttendance.status == AttendanceStatus.present.value,
        )
        .group_by(ActivityAttendance.deputy_id),
    ]
    latest: dict[int, datetime] = {}

    def keep(deputy_id: int, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, str):  # SQLite answers max() of a timestamp as text
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if deputy_id not in latest or value > latest[deputy_id]:
            latest[deputy_id] = value

    for stmt in sources:
        for row in await session.execute(stmt):
            for value in row[1:]:
                keep(row[0], value)
    manual = select(ManualAct.deputy_id, func.max(ManualAct.occurred_on)).where(
        col(ManualAct.deputy_id).in_(ids)
    )
    for deputy_id, day in await session.execute(manual.group_by(ManualAct.deputy_id)):
        if day is not None:
            if isinstance(day, str):
                day = date.fromisoformat(day)
            keep(deputy_id, datetime.combine(day, time(0), SHANGHAI).astimezone(UTC))
    return latest
