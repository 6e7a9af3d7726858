"""Load-and-check dependencies of the organisation domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path

from app.core.db import SessionDep
from app.core.deps import StaffPrincipal
from app.core.errors import NotFound, ValidationFailed
from app.core.types import MAX_ID, Id
from app.org import service
from app.org.models import Region, Station


async def region_or_404(session: SessionDep, region_id: Annotated[Id, Path()]) -> Region:
    region = await service.get_region(session, region_id)
    if region is None:
        raise NotFound("区域不存在")
    return region


async def station_or_404(session: SessionDep, station_id: Annotated[Id, Path()]) -> Station:
    station = await service.get_station(session, station_id)
    if station is None:
        raise NotFound("联络站不存在")
    return station


async def station_in_scope(
    session: SessionDep,
    principal: StaffPrincipal,
    station: Annotated[Station, Depends(station_or_404)],
) -> Station:
    """A station the calling staff member manages (403 `forbidden` outside their subtree)."""
    await service.ensure_region_in_scope(session, principal, station.region_id)
    return station


RegionOr404 = Annotated[Region, Depends(region_or_404)]
StationOr404 = Annotated[Station, Depends(station_or_404)]
StationInScope = Annotated[Station, Depends(station_in_scope)]


def parse_if_match(value: str | None) -> int | None:
    """The version in an `If-Match` header: `3`, `"3"` or `W/"3"` (the ETag we send)."""
    if value is None:
        return None
    raw = value.strip()
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    if not raw.isdigit() or int(raw) > MAX_ID:
        raise ValidationFailed(
            "If-Match 头格式不正确",
            errors=[
                {"field": "header.If-Match", "message": "not a version", "type": "value_error"}
            ],
        )
    return int(raw)


def expected_version(body_version: int | None, if_match: str | None) -> int:
    """The version an edit was based on, from the body's `version` or `If-Match`; one of them
    is required so that no edit silently overwrites another."""
    header_version = parse_if_match(if_match)
    if body_version is not None and header_version is not None and body_version != header_version:
        raise ValidationFailed(
            "version 与 If-Match 不一致",
            errors=[
                {"field": "body.version", "message": "differs from If-Match", "type": "value_error"}
            ],
        )
    version = body_version if body_version is not None else header_version
    if version is None:
        raise ValidationFailed(
            "请提供修改所依据的版本号（version 或 If-Match）",
            errors=[
                {
                    "field": "body.version",
                    "message": "version or If-Match is required",
                    "type": "missing",
                }
            ],
        )
    return version


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The version read, as sent in ETag: W/"3" (or `version` in the body)',
    ),
]


def etag(version: int) -> str:
    return f'W/"{version}"'
