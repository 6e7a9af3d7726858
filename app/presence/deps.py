"""Load-and-check dependencies of the presence routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials

from app.core.config import Settings
from app.core.db import SessionDep
from app.core.deps import CurrentPrincipal, DeputyPrincipal, StaffPrincipal, _bearer
from app.core.errors import Forbidden, NotFound, Unauthenticated
from app.core.security import Principal, Role, decode_access_token
from app.core.types import Id
from app.org.models import Region, Station
from app.presence import service
from app.presence.models import CheckIn, Reception


async def station_or_404(session: SessionDep, station_id: Annotated[Id, Path()]) -> Station:
    station = await session.get(Station, station_id)
    if station is None:
        raise NotFound("站点不存在")
    return station


async def staff_station(
    session: SessionDep,
    principal: StaffPrincipal,
    station_id: Annotated[Id, Path()],
) -> Station:
    """A station in the calling staff member's region subtree."""
    station, path = await service.station_with_path(session, station_id)
    scope = await service.staff_region_path(session, principal)
    if not service.in_scope(scope, path):
        raise Forbidden("该站点不在您的管辖范围内")
    return station


async def staff_region(
    session: SessionDep, principal: StaffPrincipal, region_id: Annotated[Id, Path()]
) -> Region:
    region = await session.get(Region, region_id)
    if region is None:
        raise NotFound("区域不存在")
    scope = await service.staff_region_path(session, principal)
    if not service.in_scope(scope, region.path):
        raise Forbidden("该区域不在您的管辖范围内")
    return region


async def own_checkin(
    session: SessionDep,
    principal: DeputyPrincipal,
    checkin_id: Annotated[Id, Path()],
) -> CheckIn:
    checkin = await service.get_checkin(session, checkin_id)
    if checkin.deputy_id != principal.deputy_id:
        raise Forbidden("只能签退本人的签到")
    return checkin


async def visible_reception(
    session: SessionDep,
    principal: CurrentPrincipal,
    reception_id: Annotated[Id, Path()],
) -> Reception:
    return await service.reception_visible(session, principal, reception_id)


StationOr404 = Annotated[Station, Depends(station_or_404)]
StaffStation = Annotated[Station, Depends(staff_station)]
StaffRegion = Annotated[Region, Depends(staff_region)]
OwnCheckIn = Annotated[CheckIn, Depends(own_checkin)]
VisibleReception = Annotated[Reception, Depends(visible_reception)]


# The check-in hot path resolves its caller without FastAPI's threadpool: app.core.deps'
# dependencies are plain `def`, and each runs in a worker thread (a hop per dependency).
async def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _scanning_deputy(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(headers={"WWW-Authenticate": "Bearer"})
    principal = decode_access_token(credentials.credentials, request.app.state.settings)
    if principal.role != Role.deputy or principal.deputy_id is None:
        raise Forbidden("仅限已绑定身份的人大代表", code="forbidden")
    return principal


ScanSettings = Annotated[Settings, Depends(_settings)]
ScanningDeputy = Annotated[Principal, Depends(_scanning_deputy)]
