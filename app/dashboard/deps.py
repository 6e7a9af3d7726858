"""Parameters shared by the dashboard endpoints: the region scope and the date range, and the
load-and-check of a deputy whose archive is read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import Depends, Path, Query
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import SHANGHAI, local_now
from app.core.db import SessionDep
from app.core.deps import CurrentPrincipal, StaffPrincipal
from app.core.errors import Forbidden, NotFound, ValidationFailed
from app.core.security import Principal, Role
from app.core.types import Id
from app.identity.models import Deputy, DeputyStation
from app.org.models import Region, Station

MAX_RANGE_DAYS = 3 * 366 + 1
# Integer ids are 32-bit on PostgreSQL: a larger one is a 422, never a database error.
# Days the dashboard can count: far enough either way, and never a datetime overflow.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


@dataclass(frozen=True, slots=True)
class RegionScope:
    """The regions a figure counts: the subtree under `path`, or everything when None."""

    region_id: int | None
    path: str | None

    def subtree_ids(self):  # type: ignore[no-untyped-def]
        """A subquery of the ids of the regions in scope (None: no restriction)."""
        if self.path is None:
            return None
        return select(Region.id).where(Region.path.startswith(self.path))

    def covers(self, region_path: str | None) -> bool:
        if self.path is None:
            return True
        return region_path is not None and region_path.startswith(self.path)


@dataclass(frozen=True, slots=True)
class DateRange:
    """Whole Asia/Shanghai days `start`..`end` (both included), and the UTC instants
    [`since`, `until`) that bound them."""

    start: date
    end: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(0), SHANGHAI).astimezone(UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(0), SHANGHAI).astimezone(UTC)


def shanghai_day_bounds(day: date) -> tuple[datetime, datetime]:
    return DateRange(day, day).since, DateRange(day, day).until


async def resolve_scope(
    session: AsyncSession, principal: Principal, region_id: int | None
) -> RegionScope:
    """Staff count their own region subtree, or a region inside it; admins anything."""
    requested: Region | None = None
    if region_id is not None:
        requested = await session.get(Region, region_id)
        if requested is None:
            raise NotFound("未找到该区域", code="not_found")
    if principal.role == Role.admin:
        if requested is None:
            return RegionScope(None, None)
        return RegionScope(requested.id, requested.path)
    own = await session.get(Region, principal.region_id) if principal.region_id else None
    if own is None:
        raise Forbidden("工作人员账号未关联区域", code="forbidden")
    if requested is None:
        return RegionScope(own.id, own.path)
    if not requested.path.startswith(own.path):
        raise Forbidden("只能查看本辖区的数据", code="forbidden")
    return RegionScope(requested.id, requested.path)


async def _staff_scope(
    session: SessionDep,
    principal: StaffPrincipal,
    region_id: Annotated[
        Id | None,
        Query(
            description="Count this region's subtree; must lie inside the caller's own region "
            "(403 otherwise). Default: the caller's region (admins: everything).",
        ),
    ] = None,
) -> RegionScope:
    return await resolve_scope(session, principal, region_id)


StaffScope = Annotated[RegionScope, Depends(_staff_scope)]


def _date_range(
    from_: Annotated[
        date | None,
        Query(
            alias="from",
            ge=FIRST_DAY,
            le=LAST_DAY,
            description="First day counted (Asia/Shanghai, inclusive). Default: 29 days before `to`.",
        ),
    ] = None,
    to: Annotated[
        date | None,
        Query(
            ge=FIRST_DAY,
            le=LAST_DAY,
            description="Last day counted (Asia/Shanghai, inclusive). Default: today.",
        ),
    ] = None,
) -> DateRange:
    end = to or local_now().date()
    start = from_ or end - timedelta(days=29)
    if start > end:
        raise ValidationFailed(
            "开始日期不能晚于结束日期",
            errors=[
                {
                    "field": "query.from",
                    "message": "from must not be after to",
                    "type": "value_error",
                }
            ],
        )
    if (end - start).days > MAX_RANGE_DAYS:
        raise ValidationFailed(
            "统计区间不能超过三年",
            errors=[
                {
                    "field": "query.from",
                    "message": "range longer than 3 years",
                    "type": "value_error",
                }
            ],
        )
    return DateRange(start, end)


DateRangeDep = Annotated[DateRange, Depends(_date_range)]


async def deputy_in_scope(session: AsyncSession, scope: RegionScope, deputy: Deputy) -> bool:
    """A deputy belongs to a scope by their own region or by a station they are attached to."""
    if scope.path is None:
        return True
    if deputy.region_id is not None:
        region = await session.get(Region, deputy.region_id)
        if region is not None and scope.covers(region.path):
            return True
    attached = await session.execute(
        select(
            exists()
            .where(DeputyStation.deputy_id == deputy.id)
            .where(DeputyStation.station_id == Station.id)
            .where(Station.region_id == Region.id)
            .where(Region.path.startswith(scope.path))
        )
    )
    return bool(attached.scalar())


async def _deputy_or_404(session: SessionDep, deputy_id: Annotated[Id, Path()]) -> Deputy:
    deputy = await session.get(Deputy, deputy_id)
    if deputy is None:
        raise NotFound("未找到该代表", code="not_found")
    return deputy


DeputyOr404 = Annotated[Deputy, Depends(_deputy_or_404)]


async def _staff_scope_of(session: AsyncSession, principal: Principal) -> RegionScope:
    return await resolve_scope(session, principal, None)


async def _archive_reader(
    session: SessionDep, principal: CurrentPrincipal, deputy: DeputyOr404
) -> Deputy:
    """The deputy themself, or staff whose region holds the deputy (admins any)."""
    if principal.role == Role.deputy and principal.deputy_id == deputy.id:
        return deputy
    if principal.is_staff:
        scope = await _staff_scope_of(session, principal)
        if await deputy_in_scope(session, scope, deputy):
            return deputy
    raise Forbidden("无权查看该代表的履职档案", code="forbidden")


async def _archive_editor(
    session: SessionDep, principal: StaffPrincipal, deputy: DeputyOr404
) -> Deputy:
    """Staff whose region holds the deputy (admins any)."""
    scope = await _staff_scope_of(session, principal)
    if not await deputy_in_scope(session, scope, deputy):
        raise Forbidden("该代表不在本辖区", code="forbidden")
    return deputy


ArchiveReadable = Annotated[Deputy, Depends(_archive_reader)]
ArchiveEditable = Annotated[Deputy, Depends(_archive_editor)]


def _optional_date_range(
    from_: Annotated[
        date | None,
        Query(
            alias="from",
            ge=FIRST_DAY,
            le=LAST_DAY,
            description="Registered on or after this day (Asia/Shanghai)",
        ),
    ] = None,
    to: Annotated[
        date | None,
        Query(
            ge=FIRST_DAY,
            le=LAST_DAY,
            description="Registered on or before this day (Asia/Shanghai)",
        ),
    ] = None,
) -> DateRange | None:
    if from_ is None and to is None:
        return None
    start, end = from_ or FIRST_DAY, to or local_now().date()
    if start > end:
        raise ValidationFailed(
            "开始日期不能晚于结束日期",
            errors=[
                {
                    "field": "query.from",
                    "message": "from must not be after to",
                    "type": "value_error",
                }
            ],
        )
    return DateRange(start, end)


OptionalDateRange = Annotated[DateRange | None, Depends(_optional_date_range)]
