"""Similar open cases: nearby or of the same category in the same region."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases.access import CaseAccess, scope_filter
from app.cases.models import OPEN_STATUSES, Case
from app.core.config import Settings


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


async def similar_cases(
    session: AsyncSession, access: CaseAccess, settings: Settings, limit: int = 20
) -> list[tuple[Case, float | None]]:
    """Open cases that may be the same problem: within the radius when both have
    coordinates, or of the same category in the same region. Staff scope applies."""
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
    found: list[tuple[Case, float | None]] = []
    for other in (await session.execute(stmt)).scalars():
        dist = None
        if None not in (case.latitude, case.longitude, other.latitude, other.longitude):
            dist = distance_m(case.latitude, case.longitude, other.latitude, other.longitude)  # type: ignore[arg-type]
        same_kind = other.category_id == case.category_id and other.region_id == case.region_id
        if same_kind or (dist is not None and dist <= radius):
            found.append((other, dist))
    found.sort(key=lambda item: (item[1] is None, item[1] or 0.0, -(item[0].id or 0)))
    return found[:limit]
