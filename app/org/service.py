"""The organisation's rules: the region tree, who may see which part of it, stations, units.

Scope helpers (every domain uses these to keep staff inside their region subtree)
--------------------------------------------------------------------------------
- `in_scope(principal, column)`: a SQL condition to put in a `where()`; admin: no restriction,
  staff: `column` is a region of their subtree, anyone else: nothing matches.
- `region_subtree_select(region_id)`: a `SELECT region.id` of a region and its descendants,
  for `column.in_(...)` in any statement.
- `region_subtree_ids(session, region_id)`: the same ids, loaded.
- `staff_can_see_region(session, principal, region_id)`: one region, yes or no.
- `ensure_region_in_scope(session, principal, region_id)`: raises `Forbidden` when not.

A staff member's reach is read from the region tree at request time (through the region id in
their token), so moving a region moves the reach of its staff with it.

Out-of-scope resources answer 403 `forbidden`, not 404: stations and deputies are public, so
hiding their existence from staff would hide nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.clock import utcnow
from app.core.errors import Conflict, Forbidden, ValidationFailed, VersionConflict
from app.core.security import Principal, Role
from app.core.sorting import name_order, region_tree_key, with_name_sort
from app.identity.models import Deputy, DeputyStation
from app.org.models import Region, RegionLevel, Station, StationKind, Unit
from app.org.schemas import RegionCreate, RegionUpdate, StationCreate, StationUpdate, UnitCreate

LEVEL_RANK = {
    RegionLevel.city: 1,
    RegionLevel.district: 2,
    RegionLevel.street: 3,
    RegionLevel.community: 4,
}

EARTH_RADIUS_M = 6_371_008.8
METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180


def field_error(field: str, message: str, detail: str | None = None) -> ValidationFailed:
    """A 422 `validation_error` naming one field, as FastAPI's own validation answers."""
    return ValidationFailed(
        detail, errors=[{"field": field, "message": message, "type": "value_error"}]
    )


def out_of_scope() -> Forbidden:
    return Forbidden("该对象不在您管辖的区域内")


# Scope --------------------------------------------------------------------------------------


def region_subtree_select(region_id: int) -> Select[Any]:
    """`SELECT id FROM region` for the region `region_id` and all its descendants.

    Use it inside other statements: `Case.region_id.in_(region_subtree_select(7))`. An unknown
    region selects nothing.
    """
    root_path = select(Region.path).where(Region.id == region_id).scalar_subquery()
    return select(Region.id).where(col(Region.path).startswith(root_path))


async def region_subtree_ids(session: AsyncSession, region_id: int) -> list[int]:
    """Ids of the region `region_id` and its descendants (empty when it does not exist)."""
    result = await session.execute(region_subtree_select(region_id))
    return list(result.scalars().all())


def in_scope(principal: Principal, region_id_column: Any) -> ColumnElement[bool]:
    """The where-clause that keeps a query inside what `principal` may manage.

    `region_id_column` is the column naming the row's region (e.g. `Station.region_id`).
    Admin: no restriction (`true()`). Staff: the region is in their subtree (rows with no
    region are excluded). Any other role, or staff without a region: nothing (`false()`).

        stmt = select(Station).where(in_scope(principal, Station.region_id))
    """
    if principal.role == Role.admin:
        return true()
    if principal.role == Role.staff and principal.region_id is not None:
        return region_id_column.in_(region_subtree_select(principal.region_id))
    return false()


async def staff_can_see_region(
    session: AsyncSession, principal: Principal, region_id: int | None
) -> bool:
    """May `principal` manage things of region `region_id`? Admin: always; staff: when the
    region is in their subtree; `None` (no region) only for admin; other roles: never."""
    if principal.role == Role.admin:
        return True
    if principal.role != Role.staff or principal.region_id is None or region_id is None:
        return False
    staff_path = (
        await session.execute(select(Region.path).where(Region.id == principal.region_id))
    ).scalar_one_or_none()
    target_path = (
        await session.execute(select(Region.path).where(Region.id == region_id))
    ).scalar_one_or_none()
    return bool(staff_path and target_path and target_path.startswith(staff_path))


async def ensure_region_in_scope(
    session: AsyncSession, principal: Principal, region_id: int | None
) -> None:
    """Raise 403 `forbidden` unless `principal` may manage things of `region_id`."""
    if not await staff_can_see_region(session, principal, region_id):
        raise out_of_scope()


async def staff_region_path(session: AsyncSession, principal: Principal) -> str | None:
    """The materialized path of a staff member's region (None for admin or no region)."""
    if principal.region_id is None:
        return None
    return (
        await session.execute(select(Region.path).where(Region.id == principal.region_id))
    ).scalar_one_or_none()


# Regions ------------------------------------------------------------------------------------


def region_depth(path: str) -> int:
    return path.count("/") - 1


async def get_region(session: AsyncSession, region_id: int) -> Region | None:
    return await session.get(Region, region_id)


async def list_regions(
    session: AsyncSession,
    *,
    parent_id: int | None = None,
    root_id: int | None = None,
    level: RegionLevel | None = None,
) -> Sequence[Region]:
    """Regions in tree order: a parent before its children, siblings in pinyin order of
    their names. `parent_id`: its direct children; `root_id`: that region and everything
    below it."""
    stmt = select(Region)
    if parent_id is not None:
        stmt = stmt.where(Region.parent_id == parent_id)
    if root_id is not None:
        stmt = stmt.where(col(Region.id).in_(region_subtree_select(root_id)))
    if level is not None:
        stmt = stmt.where(Region.level == level)
    regions = (await session.execute(stmt)).scalars().all()
    keys = {r.id: (r.name_sort, r.name, r.id) for r in regions}
    missing = {
        int(part) for r in regions for part in r.path.strip("/").split("/") if part
    } - keys.keys()
    if missing:  # ancestors outside the filter still place their subtrees
        rows = await session.execute(
            select(Region.id, Region.name_sort, Region.name).where(col(Region.id).in_(missing))
        )
        keys.update({rid: (key, name, rid) for rid, key, name in rows.all()})
    return sorted(regions, key=lambda r: region_tree_key(r.path, keys))  # type: ignore[arg-type]


async def _parent_for(session: AsyncSession, parent_id: int | None) -> Region | None:
    if parent_id is None:
        return None
    parent = await session.get(Region, parent_id)
    if parent is None:
        raise field_error("body.parent_id", "parent region does not exist", "上级区域不存在")
    return parent


def _check_level_below(level: RegionLevel, parent: Region | None) -> None:
    if parent is not None and LEVEL_RANK[RegionLevel(level)] <= LEVEL_RANK[parent.level]:
        raise field_error(
            "body.level",
            f"level must be below the parent's level ({parent.level})",
            "区域层级必须低于上级区域",
        )


async def _ensure_sibling_name_free(
    session: AsyncSession, name: str, parent_id: int | None, exclude_id: int | None = None
) -> None:
    stmt = select(Region.id).where(Region.name == name)
    stmt = stmt.where(
        Region.parent_id == parent_id if parent_id is not None else col(Region.parent_id).is_(None)
    )
    if exclude_id is not None:
        stmt = stmt.where(Region.id != exclude_id)
    if (await session.execute(stmt.limit(1))).first() is not None:
        raise Conflict("同一上级区域下已有同名区域", code="region_name_taken")


async def create_region(session: AsyncSession, data: RegionCreate) -> Region:
    parent = await _parent_for(session, data.parent_id)
    _check_level_below(data.level, parent)
    await _ensure_sibling_name_free(session, data.name, data.parent_id)
    region = Region(name=data.name, level=data.level, parent_id=data.parent_id, path="/")
    session.add(region)
    await session.flush()
    region.path = f"{parent.path if parent else '/'}{region.id}/"
    await session.flush()
    return region


async def update_region(session: AsyncSession, region: Region, data: RegionUpdate) -> Region:
    """Rename, change level or move a region. Moving rewrites the path of its whole subtree
    in one statement; a move under itself or its own descendants is refused (422)."""
    sent = data.model_fields_set
    if "name" in sent and data.name is None:
        raise field_error("body.name", "name cannot be null")
    if "level" in sent and data.level is None:
        raise field_error("body.level", "level cannot be null")
    new_parent_id = data.parent_id if "parent_id" in sent else region.parent_id
    moving = new_parent_id != region.parent_id
    parent = await _parent_for(session, new_parent_id)
    if moving and parent is not None and parent.path.startswith(region.path):
        raise field_error(
            "body.parent_id",
            "a region cannot move under itself or its own descendants",
            "不能把区域移动到它自己或它的下级区域之下",
        )
    new_level = RegionLevel(data.level) if data.level is not None else region.level
    _check_level_below(new_level, parent)
    if new_level != region.level:
        child_levels = (
            (await session.execute(select(Region.level).where(Region.parent_id == region.id)))
            .scalars()
            .all()
        )
        if any(LEVEL_RANK[RegionLevel(c)] <= LEVEL_RANK[new_level] for c in child_levels):
            raise field_error(
                "body.level",
                "level must stay above the levels of the region's children",
                "区域层级必须高于其下级区域",
            )
    new_name = data.name if data.name is not None else region.name
    if new_name != region.name or moving:
        await _ensure_sibling_name_free(session, new_name, new_parent_id, exclude_id=region.id)

    region.name = new_name
    region.level = new_level
    if moving:
        old_path = region.path
        new_path = f"{parent.path if parent else '/'}{region.id}/"
        region.parent_id = new_parent_id
        await session.flush()
        await session.execute(
            update(Region)
            .where(col(Region.path).startswith(old_path))
            .values(path=literal(new_path, String) + func.substr(Region.path, len(old_path) + 1))
            .execution_options(synchronize_session=False)
        )
        await session.refresh(region)
    else:
        await session.flush()
    return region


# Stations -----------------------------------------------------------------------------------


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lng: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lng, max_lng) enclosing the circle; longitudes are clamped to
    [-180, 180] (the whole band when the circle reaches a pole or the antimeridian)."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    min_lat, max_lat = lat - dlat, lat + dlat
    if min_lat <= -90 or max_lat >= 90:
        return max(min_lat, -90.0), min(max_lat, 90.0), -180.0, 180.0
    dlng = math.degrees(radius_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    # Widen slightly: the circle's widest longitude is not on the centre's parallel.
    dlng *= 1.01
    if lng - dlng < -180 or lng + dlng > 180:
        return min_lat, max_lat, -180.0, 180.0
    return min_lat, max_lat, lng - dlng, lng + dlng


@dataclass
class StationHit:
    station: Station
    region_name: str | None
    distance_m: int | None


@dataclass
class StationFilters:
    kind: StationKind | None = None
    region_id: int | None = None
    q: str | None = None
    include_inactive: bool = False


def _station_conditions(filters: StationFilters) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if not filters.include_inactive:
        conds.append(col(Station.is_active).is_(True))
    if filters.kind is not None:
        conds.append(Station.kind == filters.kind)
    if filters.region_id is not None:
        conds.append(col(Station.region_id).in_(region_subtree_select(filters.region_id)))
    if filters.q:
        pattern = f"%{_escape_like(filters.q)}%"
        conds.append(
            or_(
                col(Station.name).ilike(pattern, escape="\\"),
                col(Station.address).ilike(pattern, escape="\\"),
            )
        )
    return conds


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def squared_distance_deg(lat: float, lng: float) -> ColumnElement[float | None]:
    """A SQL expression proportional to the squared distance from (lat, lng): the
    equirectangular projection at the midpoint latitude, in squared degrees of latitude.

    Plain arithmetic (the cosine of the midpoint latitude is linearized around `lat`), so it
    runs alike on SQLite and PostgreSQL with no math functions, and the database can order and
    filter on it. Within 50 km it matches the great-circle distance to a metre or so; it is
    meant for the neighbourhood of a point, not across the antimeridian or a pole.
    """
    phi = math.radians(lat)
    dlat = col(Station.latitude) - lat
    # cos(phi + dphi/2) ≈ cos(phi) - sin(phi) * dphi/2
    kx = math.cos(phi) - math.sin(phi) * (math.pi / 360) * dlat
    dx = (col(Station.longitude) - lng) * kx
    return dlat * dlat + dx * dx


async def search_stations(
    session: AsyncSession,
    filters: StationFilters,
    *,
    limit: int,
    offset: int,
    lat: float | None = None,
    lng: float | None = None,
    radius_m: int | None = None,
) -> tuple[list[StationHit], int]:
    """Stations matching `filters`, one page of them and the total.

    Without a position: in pinyin order of the names. With `lat`/`lng`: only stations within
    `radius_m` metres, nearest first, each with `distance_m`. The database narrows the
    candidates with a bounding box on the indexed (latitude, longitude) pair, then filters and
    orders those by `squared_distance_deg` and returns only the page; the exact great-circle
    distance (haversine) is computed for the page's rows. Candidates never travel to Python, so a
    radius holding thousands of stations costs two indexed queries.
    """
    conds = _station_conditions(filters)
    if lat is None or lng is None:
        total = (
            await session.execute(select(func.count()).select_from(Station).where(*conds))
        ).scalar_one()
        rows = (
            await session.execute(
                select(Station, Region.name)
                .join(Region, Region.id == Station.region_id)
                .where(*conds)
                .order_by(*name_order(Station))
                .limit(limit)
                .offset(offset)
            )
        ).all()
        return [StationHit(station, name, None) for station, name in rows], total

    assert radius_m is not None
    min_lat, max_lat, min_lng, max_lng = bounding_box(lat, lng, radius_m)
    d2 = squared_distance_deg(lat, lng)
    conds += [
        col(Station.latitude).between(min_lat, max_lat),
        col(Station.longitude).between(min_lng, max_lng),
        d2 <= (radius_m / METRES_PER_DEGREE) ** 2,
    ]
    total = (
        await session.execute(select(func.count()).select_from(Station).where(*conds))
    ).scalar_one()
    if offset >= total:
        return [], total
    rows = (
        await session.execute(
            select(Station, Region.name)
            .join(Region, Region.id == Station.region_id)
            .where(*conds)
            .order_by(d2, Station.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    hits = [
        StationHit(
            station,
            name,
            round(haversine_m(lat, lng, station.latitude, station.longitude)),  # type: ignore[arg-type]
        )
        for station, name in rows
    ]
    # Within a page the order follows the exact distance.
    hits.sort(key=lambda h: (h.distance_m, h.station.id))
    return hits, total


async def get_station(session: AsyncSession, station_id: int) -> Station | None:
    return await session.get(Station, station_id)


async def region_name(session: AsyncSession, region_id: int) -> str | None:
    return (
        await session.execute(select(Region.name).where(Region.id == region_id))
    ).scalar_one_or_none()


async def station_deputies(session: AsyncSession, station_id: int) -> Sequence[Deputy]:
    """Active deputies attached to the station (进站代表), in pinyin order of their names."""
    stmt = (
        select(Deputy)
        .join(DeputyStation, DeputyStation.deputy_id == Deputy.id)
        .where(DeputyStation.station_id == station_id, col(Deputy.is_active).is_(True))
        .order_by(*name_order(Deputy))
    )
    return (await session.execute(stmt)).scalars().all()


async def region_or_field_error(
    session: AsyncSession, region_id: int, field: str = "body.region_id"
) -> Region:
    """The region `region_id`, or a 422 naming `field` when it does not exist."""
    region = await session.get(Region, region_id)
    if region is None:
        raise field_error(field, "region does not exist", "区域不存在")
    return region


async def create_station(
    session: AsyncSession, principal: Principal, data: StationCreate
) -> Station:
    await region_or_field_error(session, data.region_id)
    await ensure_region_in_scope(session, principal, data.region_id)
    station = Station(**data.model_dump())
    session.add(station)
    await session.flush()
    return station


async def update_station(
    session: AsyncSession,
    principal: Principal,
    station: Station,
    data: StationUpdate,
    expected_version: int,
) -> Station:
    """Apply the sent fields if the station is still at `expected_version`; one conditional
    UPDATE settles concurrent edits (exactly one of several edits of one version wins, the
    others get 409 `version_conflict`)."""
    values = with_name_sort(data.model_dump(exclude_unset=True, exclude={"version"}))
    if "region_id" in values and values["region_id"] != station.region_id:
        await region_or_field_error(session, values["region_id"])
        await ensure_region_in_scope(session, principal, values["region_id"])
    if station.version != expected_version:
        raise VersionConflict(current_version=station.version)
    values["version"] = Station.version + 1
    values["updated_at"] = utcnow()
    result = await session.execute(
        update(Station)
        .where(Station.id == station.id, Station.version == expected_version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise VersionConflict()
    await session.refresh(station)
    return station


# Units --------------------------------------------------------------------------------------


async def list_units(
    session: AsyncSession,
    principal: Principal,
    *,
    q: str | None,
    region_id: int | None,
    include_inactive: bool,
    limit: int,
    offset: int,
) -> tuple[Sequence[Unit], int]:
    """Units a staff member can route work to: those of their subtree, of the regions above
    them (a street's staff hand cases to district departments) and those with no region.
    Admin sees all."""
    conds: list[ColumnElement[bool]] = []
    if principal.role != Role.admin:
        path = await staff_region_path(session, principal)
        if path is None:
            return [], 0
        ancestors = [int(part) for part in path.strip("/").split("/") if part]
        conds.append(
            or_(
                col(Unit.region_id).is_(None),
                col(Unit.region_id).in_(ancestors),
                in_scope(principal, Unit.region_id),
            )
        )
    if not include_inactive:
        conds.append(col(Unit.is_active).is_(True))
    if region_id is not None:
        conds.append(col(Unit.region_id).in_(region_subtree_select(region_id)))
    if q:
        conds.append(col(Unit.name).ilike(f"%{_escape_like(q)}%", escape="\\"))
    where = and_(true(), *conds)
    total = (
        await session.execute(select(func.count()).select_from(Unit).where(where))
    ).scalar_one()
    rows = (
        (
            await session.execute(
                select(Unit).where(where).order_by(*name_order(Unit)).limit(limit).offset(offset)
            )
        )
        .scalars()
        .all()
    )
    return rows, total


async def create_unit(session: AsyncSession, principal: Principal, data: UnitCreate) -> Unit:
    """A new responsible unit. Staff create units of their subtree (their own region when
    none is given); names are unique (409 `unit_name_taken`)."""
    region_id = data.region_id
    if region_id is None and principal.role == Role.staff:
        region_id = principal.region_id
    if region_id is not None:
        await region_or_field_error(session, region_id)
    if principal.role != Role.admin:
        await ensure_region_in_scope(session, principal, region_id)
    taken = await session.execute(select(Unit.id).where(Unit.name == data.name).limit(1))
    if taken.first() is not None:
        raise Conflict("已有同名承办单位", code="unit_name_taken")
    unit = Unit(**data.model_dump(exclude={"region_id"}), region_id=region_id)
    session.add(unit)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent create of the same name won the race
        raise Conflict("已有同名承办单位", code="unit_name_taken") from exc
    return unit
