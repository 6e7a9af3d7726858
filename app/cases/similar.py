"""Similar open cases: nearby, of the same category in the same region, or described the
same way (the hotspot grouping's text score, so "someone already reported this" holds for
the same problem worded differently)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.cases.access import CaseAccess, scope_filter
from app.cases.models import OPEN_STATUSES, Case
from app.core.config import Settings
from app.hotspots import service as hotspot_service
from app.hotspots.grouping import distance_m


@dataclass(frozen=True, slots=True)
class Similar:
    case: Case
    distance_m: float | None
    similarity: float | None  # the text score when the wording matched


async def similar_cases(
    session: AsyncSession, access: CaseAccess, settings: Settings, limit: int = 20
) -> list[Similar]:
    """Open cases that may be the same problem: described the same way, within the radius
    when both have coordinates, or of the same category in the same region. Staff scope
    applies. The best text matches first, then the nearest."""
    case = access.case
    radius = settings.case_similar_radius_m
    conditions: list[ColumnElement[bool]] = [
        and_(Case.category_id == case.category_id, Case.region_id == case.region_id)
    ]
    if case.latitude is not None and case.longitude is not None:
        dlat = radius / 111_320.0
        dlng = radius / (111_320.0 * max(0.01, math.cos(math.radians(case.latitude))))
        conditions.append(
            and_(
                Case.latitude.between(case.latitude - dlat, case.latitude + dlat),  # type: ignore[union-attr]
                Case.longitude.between(case.longitude - dlng, case.longitude + dlng),  # type: ignore[union-attr]
            )
        )
    matches = await hotspot_service.text_matches(
        session,
        title=case.title,
        content=case.content,
        category_id=case.category_id,
        region_id=case.region_id,
        latitude=case.latitude,
        longitude=case.longitude,
        at=case.created_at,
        settings=settings,
        exclude_case_id=case.id,
    )
    scores = {m.case_id: m.score for m in matches}
    if scores:
        conditions.append(col(Case.id).in_(list(scores)))
    stmt: Select[Any] = (
        select(Case)
        .where(
            Case.id != case.id,
            Case.status.in_(OPEN_STATUSES),  # type: ignore[attr-defined]
            or_(*conditions),
            scope_filter(access.principal, access.staff_path),
        )
        .order_by(Case.id.desc())  # type: ignore[union-attr]
        .limit(200)
    )
    found: list[Similar] = []
    for other in (await session.execute(stmt)).scalars():
        dist = None
        if None not in (case.latitude, case.longitude, other.latitude, other.longitude):
            dist = distance_m(case.latitude, case.longitude, other.latitude, other.longitude)  # type: ignore[arg-type]
        same_kind = other.category_id == case.category_id and other.region_id == case.region_id
        similarity = scores.get(other.id)  # type: ignore[arg-type]
        if similarity is not None or same_kind or (dist is not None and dist <= radius):
            found.append(Similar(other, dist, similarity))
    found.sort(
        key=lambda s: (
            -(s.similarity or 0.0),
            s.distance_m is None,
            s.distance_m or 0.0,
            -(s.case.id or 0),
        )
    )
    return found[:limit]
