"""HTTP endpoints of the org domain: regions, stations, units."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.core.db import SessionDep
from app.core.deps import AdminPrincipal, OptionalPrincipal, SettingsDep, StaffPrincipal
from app.core.errors import ValidationFailed, problem_responses
from app.core.pagination import Page, PageDep
from app.core.types import Id
from app.org import service
from app.org.deps import (
    IfMatch,
    RegionOr404,
    StationInScope,
    StationOr404,
    etag,
    expected_version,
)
from app.org.models import Region, RegionLevel, Station, StationKind
from app.org.schemas import (
    RegionCreate,
    RegionList,
    RegionNode,
    RegionPublic,
    RegionUpdate,
    StationCreate,
    StationDeputy,
    StationDetail,
    StationPublic,
    StationUpdate,
    UnitCreate,
    UnitPublic,
)
from app.presence import service as presence_service

router = APIRouter(tags=["organisation"])


def _region_public(region: Region) -> RegionPublic:
    return RegionPublic(
        id=region.id,  # type: ignore[arg-type]
        name=region.name,
        level=region.level,
        parent_id=region.parent_id,
        path=region.path,
        depth=service.region_depth(region.path),
    )


# Regions ------------------------------------------------------------------------------------


@router.get("/regions", response_model=RegionList, summary="List regions (flat, tree order)")
async def list_regions(
    session: SessionDep,
    parent_id: Annotated[Id | None, Query(description="Only direct children")] = None,
    root_id: Annotated[Id | None, Query(description="This region and everything below it")] = None,
    level: RegionLevel | None = None,
) -> RegionList:
    """The region tree (district → street/town → community/village) as a flat list in tree
    order (a parent before its children, siblings in pinyin order of their names), each with
    `parent_id`, `path` and `depth`. Public. Not paginated (`{items, total}` with every
    matching region): a district's tree is a few hundred rows at most."""
    regions = await service.list_regions(session, parent_id=parent_id, root_id=root_id, level=level)
    items = [_region_public(r) for r in regions]
    return RegionList(items=items, total=len(items))


@router.get("/regions/tree", response_model=list[RegionNode], summary="The region tree, nested")
async def region_tree(
    session: SessionDep,
    root_id: Annotated[Id | None, Query(description="Start from this region")] = None,
) -> list[RegionNode]:
    """The same regions nested (`children`), for a cascading picker; siblings in pinyin order.
    Public. A bare JSON array of the top regions (not `{items, total}`)."""
    regions = await service.list_regions(session, root_id=root_id)
    nodes = {
        r.id: RegionNode(id=r.id, name=r.name, level=r.level, parent_id=r.parent_id, path=r.path)  # type: ignore[arg-type]
        for r in regions
    }
    roots: list[RegionNode] = []
    for node in nodes.values():  # tree order: a parent is always seen before its children
        parent = nodes.get(node.parent_id) if node.parent_id is not None else None
        if parent is not None:
            parent.children.append(node)
        else:
            roots.append(node)
    return roots


@router.post(
    "/regions",
    response_model=RegionPublic,
    status_code=201,
    summary="Create a region",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_region(
    session: SessionDep, _admin: AdminPrincipal, body: RegionCreate
) -> RegionPublic:
    """Admin only. The level must be below the parent's (city > district > street >
    community); a sibling with the same name answers 409 `region_name_taken`."""
    return _region_public(await service.create_region(session, body))


@router.patch(
    "/regions/{region_id}",
    response_model=RegionPublic,
    summary="Rename, re-level or move a region",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_region(
    session: SessionDep, _admin: AdminPrincipal, region: RegionOr404, body: RegionUpdate
) -> RegionPublic:
    """Admin only. Moving (`parent_id`) carries the whole subtree along; a move under the
    region itself or one of its descendants answers 422."""
    return _region_public(await service.update_region(session, region, body))


# Stations -----------------------------------------------------------------------------------


def _station_public(hit: service.StationHit) -> StationPublic:
    out = StationPublic.model_validate(hit.station)
    out.region_name = hit.region_name
    out.distance_m = hit.distance_m
    return out


@router.get(
    "/stations",
    response_model=Page[StationPublic],
    summary="Find stations (nearest first when lat/lng are given)",
    responses=problem_responses(422),
)
async def list_stations(
    session: SessionDep,
    settings: SettingsDep,
    page: PageDep,
    principal: OptionalPrincipal,
    kind: StationKind | None = None,
    region_id: Annotated[Id | None, Query(description="Region and its subtree")] = None,
    q: Annotated[str | None, Query(max_length=50, description="In name or address")] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90, description="Caller's latitude")] = None,
    lng: Annotated[float | None, Query(ge=-180, le=180, description="Caller's longitude")] = None,
    radius_m: Annotated[
        int | None,
        Query(ge=1, le=500_000, description="Search radius around lat/lng (default 50 km)"),
    ] = None,
    include_inactive: Annotated[
        bool, Query(description="Staff only: list deactivated stations too")
    ] = False,
) -> Page[StationPublic]:
    """Public. Without a position: in pinyin order of the names (拼音排序). With `lat` and
    `lng` (GCJ-02, as wx.getLocation gives them) only stations within `radius_m` are listed,
    nearest first, each with `distance_m`."""
    if (lat is None) != (lng is None):
        raise ValidationFailed(
            "lat 与 lng 需同时提供",
            errors=[
                {"field": "query.lng", "message": "lat and lng go together", "type": "value_error"}
            ],
        )
    filters = service.StationFilters(
        kind=kind,
        region_id=region_id,
        q=q.strip() if q else None,
        include_inactive=include_inactive and principal is not None and principal.is_staff,
    )
    hits, total = await service.search_stations(
        session,
        filters,
        limit=page.limit,
        offset=page.offset,
        lat=lat,
        lng=lng,
        radius_m=radius_m or settings.station_search_radius_m,
    )
    return Page[StationPublic](items=[_station_public(h) for h in hits], total=total)


async def _station_detail(session: SessionDep, station: Station) -> StationDetail:
    base = StationPublic.model_validate(station)
    base.region_name = await service.region_name(session, station.region_id)
    deputies = await service.station_deputies(session, station.id)  # type: ignore[arg-type]
    return StationDetail(
        **base.model_dump(),
        deputies=[
            StationDeputy(
                id=d.id,  # type: ignore[arg-type]
                name=d.name,
                level=d.level,
                title=d.title,
                photo_url=d.photo_url,
            )
            for d in deputies
        ],
        on_duty_now=await presence_service.on_duty_now(session, station.id),  # type: ignore[arg-type]
    )


@router.get(
    "/stations/{station_id}",
    response_model=StationDetail,
    summary="A station's page",
    responses=problem_responses(404),
)
async def get_station(
    session: SessionDep, station: StationOr404, response: Response
) -> StationDetail:
    """Public: details, the deputies attached to it (public profiles, no phone) and who is on
    duty now. The `ETag` header carries the version for a later `If-Match` edit."""
    response.headers["ETag"] = etag(station.version)
    return await _station_detail(session, station)


@router.post(
    "/stations",
    response_model=StationDetail,
    status_code=201,
    summary="Create a station",
    responses=problem_responses(401, 403, 422),
)
async def create_station(
    session: SessionDep, principal: StaffPrincipal, body: StationCreate, response: Response
) -> StationDetail:
    """Staff, in a region of their subtree (403 outside it)."""
    station = await service.create_station(session, principal, body)
    response.headers["ETag"] = etag(station.version)
    return await _station_detail(session, station)


@router.patch(
    "/stations/{station_id}",
    response_model=StationDetail,
    summary="Edit a station",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_station(
    session: SessionDep,
    principal: StaffPrincipal,
    station: StationInScope,
    body: StationUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> StationDetail:
    """Staff of the station's subtree. Must carry the version you read (`version` in the body
    or `If-Match: W/"3"`; 422 without either); if someone saved in between the answer is 409
    `version_conflict` and nothing changes. Set `is_active: false` to take a station off the
    public map."""
    version = expected_version(body.version, if_match)
    station = await service.update_station(session, principal, station, body, version)
    response.headers["ETag"] = etag(station.version)
    return await _station_detail(session, station)


# Units --------------------------------------------------------------------------------------


@router.get(
    "/units",
    response_model=Page[UnitPublic],
    summary="Responsible units",
    responses=problem_responses(401, 403, 422),
)
async def list_units(
    session: SessionDep,
    principal: StaffPrincipal,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=50)] = None,
    region_id: Annotated[Id | None, Query()] = None,
    include_inactive: bool = False,
) -> Page[UnitPublic]:
    """Staff: the units (承办单位) they can hand cases to: those of their subtree, of the
    regions above them and those without a region; in pinyin order of the names."""
    units, total = await service.list_units(
        session,
        principal,
        q=q.strip() if q else None,
        region_id=region_id,
        include_inactive=include_inactive,
        limit=page.limit,
        offset=page.offset,
    )
    return Page[UnitPublic](items=[UnitPublic.model_validate(u) for u in units], total=total)


@router.post(
    "/units",
    response_model=UnitPublic,
    status_code=201,
    summary="Create a responsible unit",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_unit(
    session: SessionDep, principal: StaffPrincipal, body: UnitCreate
) -> UnitPublic:
    """Staff (in their subtree; their own region when `region_id` is omitted) or admin.
    `kind` defaults to `government`. Names are unique: 409 `unit_name_taken`."""
    return UnitPublic.model_validate(await service.create_unit(session, principal, body))
