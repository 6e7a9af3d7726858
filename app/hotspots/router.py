"""HTTP endpoints of hotspots (热点): list, one hotspot, and the staff's split and merge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from app.core.clock import utcnow
from app.core.db import SessionDep
from app.core.deps import CurrentPrincipal, SettingsDep, StaffPrincipal
from app.core.errors import problem_responses
from app.core.pagination import Page, PageDep
from app.core.security import Principal
from app.core.types import MAX_ID
from app.hotspots import service
from app.hotspots.models import Hotspot
from app.hotspots.schemas import (
    HotspotCaseRef,
    HotspotDetail,
    HotspotMerge,
    HotspotPublic,
    HotspotSort,
    HotspotSplit,
    MapPoint,
    Named,
    Representative,
    WeekCount,
)

router = APIRouter(tags=["hotspots"])


@dataclass(slots=True)
class VisibleHotspot:
    hotspot: Hotspot
    paths: list[str] | None
    principal: Principal


async def _visible_hotspot(
    session: SessionDep,
    principal: CurrentPrincipal,
    hotspot_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> VisibleHotspot:
    hotspot, paths = await service.load_visible(session, principal, hotspot_id)
    return VisibleHotspot(hotspot, paths, principal)


async def _staff_hotspot(
    principal: StaffPrincipal, found: Annotated[VisibleHotspot, Depends(_visible_hotspot)]
) -> VisibleHotspot:
    return found


VisibleDep = Annotated[VisibleHotspot, Depends(_visible_hotspot)]
StaffHotspotDep = Annotated[VisibleHotspot, Depends(_staff_hotspot)]


def _public(hotspot: Hotspot, category: str | None, recent: int) -> HotspotPublic:
    assert hotspot.id is not None
    return HotspotPublic(
        id=hotspot.id,
        title=hotspot.title,
        status=hotspot.status,
        merged_into_id=hotspot.merged_into_id,
        category=Named(id=hotspot.category_id, name=category or "", cases=hotspot.case_count)
        if hotspot.category_id
        else None,
        case_count=hotspot.case_count,
        cases_last_14_days=recent,
        first_case_at=hotspot.first_case_at,
        last_case_at=hotspot.last_case_at,
    )


async def _detail(session: SessionDep, found: VisibleHotspot) -> HotspotDetail:
    d = await service.detail(session, found.hotspot, found.paths, utcnow())
    h = d.hotspot
    category = next((c for c in d.categories if c[0] == h.category_id), None)
    recent = sum(n for week, n in d.weekly[-2:])
    base = _public(h, category[1] if category else None, recent)
    return HotspotDetail(
        **base.model_dump(),
        split_from_id=h.split_from_id,
        weekly=[WeekCount(week_start=w, cases=n) for w, n in d.weekly],
        points=[MapPoint(case_id=c, latitude=la, longitude=lo) for c, la, lo in d.points],
        categories=[Named(id=i, name=n, cases=c) for i, n, c in d.categories],
        units=[Named(id=i, name=n, cases=c) for i, n, c in d.units],
        regions=[Named(id=i, name=n, cases=c) for i, n, c in d.regions],
        representatives=[Representative(**r) for r in d.representatives],
        cases=[HotspotCaseRef(**c) for c in d.cases],
    )


@router.get("/hotspots", response_model=Page[HotspotPublic], responses=problem_responses(401, 403))
async def list_hotspots(
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    page: PageDep,
    min_cases: Annotated[
        int | None,
        Query(ge=1, le=1000, description="At least this many cases (default: the setting)"),
    ] = None,
    category_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    region_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="With cases in this region's subtree")
    ] = None,
    sort: HotspotSort = HotspotSort.size,
) -> Page[HotspotPublic]:
    """Hotspots (热点) with a case in the caller's scope: staff their region subtree, deputies
    their own and their stations' regions, admins all. `sort=growth` puts the hotspots with
    most cases in the last 14 days first."""
    listings, total = await service.list_hotspots(
        session,
        principal,
        min_cases=min_cases or settings.hotspot_min_cases,
        category_id=category_id,
        region_id=region_id,
        sort=sort.value,
        limit=page.limit,
        offset=page.offset,
        now=utcnow(),
    )
    return Page(
        items=[_public(x.hotspot, x.category_name, x.recent) for x in listings], total=total
    )


@router.get(
    "/hotspots/{hotspot_id}",
    response_model=HotspotDetail,
    responses=problem_responses(401, 403, 404),
)
async def get_hotspot(session: SessionDep, found: VisibleDep) -> HotspotDetail:
    """One hotspot: size, cases per week (8 weeks), the places as map points, categories,
    lead units and regions involved, up to 3 representative reports with personal data
    masked, and its cases within the caller's scope. A merged hotspot answers
    `status=merged` and `merged_into_id`: follow it."""
    return await _detail(session, found)


@router.post(
    "/hotspots/{hotspot_id}/split",
    response_model=HotspotDetail,
    status_code=201,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def split_hotspot(
    session: SessionDep, found: StaffHotspotDep, body: HotspotSplit
) -> HotspotDetail:
    """拆分 (staff): the named cases leave this hotspot for a new one; answers the new one.
    The grouping remembers it: those cases never return to this hotspot and the two are
    never merged again automatically."""
    fresh = await service.split(
        session, found.principal, found.hotspot, found.paths, body.distinct_ids(), utcnow()
    )
    return await _detail(session, VisibleHotspot(fresh, found.paths, found.principal))


@router.post(
    "/hotspots/{hotspot_id}/merge",
    response_model=HotspotDetail,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def merge_hotspot(
    session: SessionDep, found: StaffHotspotDep, body: HotspotMerge
) -> HotspotDetail:
    """合并 (staff): every case of this hotspot moves into `into_hotspot_id`; answers that
    one. This hotspot then answers `status=merged` with `merged_into_id`."""
    target = await service.merge(
        session, found.principal, found.hotspot, body.into_hotspot_id, found.paths, utcnow()
    )
    return await _detail(session, VisibleHotspot(target, found.paths, found.principal))
