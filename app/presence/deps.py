"""Load-and-check dependencies of the presence routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from app.core.db import SessionDep
from app.core.deps import CurrentPrincipal, DeputyPrincipal, StaffPrincipal
from app.core.errors import Forbidden, NotFound
from app.org.models import Region, Station
from app.presence import service
from app.presence.models import CheckIn, Reception


async def station_or_404(session: SessionDep, station_id: Annotated[int, Path(ge=1)]) -> Station:
    station = await session.get(Station, station_id)
    if station is None:
        raise NotFound("站点不存在")
    return station


async def staff_station(
    session: SessionDep, principal: StaffPrincipal, station_id: Annotated[int, Path(ge=1)]
) -> Station:
    """A station in the calling staff member's region subtree."""
    station, path = await service.station_with_path(session, station_id)
    scope = await service.staff_region_path(session, principal)
    if not service.in_scope(scope, path):
        raise Forbidden("该站点不在您的管辖范围内")
    return station


async def staff_region(
    session: SessionDep, principal: StaffPrincipal, region_id: Annotated[int, Path(ge=1)]
) -> Region:
    region = await session.get(Region, region_id)
    if region is None:
        raise NotFound("区域不存在")
    scope = await service.staff_region_path(session, principal)
    if not service.in_scope(scope, region.path):
        raise Forbidden("该区域不在您的管辖范围内")
    return region


async def own_checkin(
    session: SessionDep, principal: DeputyPrincipal, checkin_id: Annotated[int, Path(ge=1)]
) -> CheckIn:
    checkin = await service.get_checkin(session, checkin_id)
    if checkin.deputy_id != principal.deputy_id:
        raise Forbidden("只能签退本人的签到")
    return checkin


async def visible_reception(
    session: SessionDep, principal: CurrentPrincipal, reception_id: Annotated[int, Path(ge=1)]
) -> Reception:
    return await service.reception_visible(session, principal, reception_id)


StationOr404 = Annotated[Station, Depends(station_or_404)]
StaffStation = Annotated[Station, Depends(staff_station)]
StaffRegion = Annotated[Region, Depends(staff_region)]
OwnCheckIn = Annotated[CheckIn, Depends(own_checkin)]
VisibleReception = Annotated[Reception, Depends(visible_reception)]
