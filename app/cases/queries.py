"""Reading cases: the list and detail views with unit names and masking, and the timeline
as each caller may see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases.access import in_scope
from app.cases.models import Case, CaseAction, CaseCategory, CaseCoUnit, CaseEvent, CaseFollow
from app.core.security import Principal, Role
from app.identity.models import User
from app.org.models import Region, Unit


@dataclass(slots=True)
class CaseView:
    """What the routers render, decided once: masking and staff-only fields."""

    case: Case
    category_name: str | None
    lead_unit: tuple[int, str] | None
    co_units: list[tuple[int, str]]
    suggested_unit: tuple[int, str] | None
    sees_phone: bool
    sees_internal: bool
    is_owner: bool
    following: bool
    timeline: list[dict[str, Any]] | None = None


async def _unit_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(ids)))  # type: ignore[union-attr]
    return {i: n for i, n in rows.all()}


async def case_views(
    session: AsyncSession,
    principal: Principal,
    cases: list[Case],
    *,
    staff_path: str | None,
    region_paths: dict[int, str] | None = None,
) -> list[CaseView]:
    """Render rules for a page of cases in a few queries."""
    if not cases:
        return []
    ids = [c.id for c in cases if c.id is not None]
    categories: dict[int, str] = dict(
        (
            await session.execute(
                select(CaseCategory.id, CaseCategory.name).where(
                    CaseCategory.id.in_({c.category_id for c in cases})  # type: ignore[union-attr]
                )
            )
        ).all()
    )
    co_rows = (
        await session.execute(
            select(CaseCoUnit.case_id, CaseCoUnit.unit_id).where(CaseCoUnit.case_id.in_(ids))  # type: ignore[attr-defined]
        )
    ).all()
    co_by_case: dict[int, list[int]] = {}
    for case_id, unit_id in co_rows:
        co_by_case.setdefault(case_id, []).append(unit_id)
    unit_ids = {u for c in cases for u in (c.lead_unit_id, c.suggested_unit_id) if u}
    unit_ids |= {u for units in co_by_case.values() for u in units}
    names = await _unit_names(session, unit_ids)
    followed = set(
        (
            await session.execute(
                select(CaseFollow.case_id).where(
                    CaseFollow.case_id.in_(ids),  # type: ignore[attr-defined]
                    CaseFollow.user_id == principal.user_id,
                )
            )
        ).scalars()
    )
    if principal.is_staff and region_paths is None:
        region_paths = dict(
            (
                await session.execute(
                    select(Region.id, Region.path).where(
                        Region.id.in_({c.region_id for c in cases})  # type: ignore[union-attr]
                    )
                )
            ).all()
        )
    views = []
    for case in cases:
        staff = principal.is_staff and in_scope(
            staff_path, (region_paths or {}).get(case.region_id, "")
        )
        lead = principal.role is Role.unit and principal.unit_id == case.lead_unit_id
        owner = case.owner_id == principal.user_id and not principal.is_staff
        unit_ref = lambda u: (u, names.get(u, "")) if u else None  # noqa: E731
        views.append(
            CaseView(
                case=case,
                category_name=categories.get(case.category_id),
                lead_unit=unit_ref(case.lead_unit_id),
                co_units=[(u, names.get(u, "")) for u in co_by_case.get(case.id or 0, [])],
                suggested_unit=unit_ref(case.suggested_unit_id) if staff else None,
                sees_phone=staff or lead or owner,
                sees_internal=staff or principal.role is Role.unit,
                is_owner=owner,
                following=case.id in followed,
            )
        )
    return views


async def timeline_of(
    session: AsyncSession, case_id: int, *, internal: bool
) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(CaseEvent, User.nickname)
            .outerjoin(User, User.id == CaseEvent.actor_id)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.id)  # type: ignore[arg-type]
        )
    ).all()
    out = []
    for event, nickname in rows:
        if not internal and event.public_note is None and event.action in _INTERNAL_ONLY:
            continue
        # Residents see who acted by role; staff see names.
        name = nickname if internal else None
        out.append(
            {
                "id": event.id,
                "action": event.action,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "actor_role": event.actor_role,
                "actor_name": name,
                "round": event.round,
                "public_note": event.public_note,
                "internal_note": event.internal_note if internal else None,
                "data": event.data if internal else public_event_data(event.data),
                "created_at": event.created_at,
            }
        )
    return out


# Entries that mean nothing to a resident unless they carry a public note.
_INTERNAL_ONLY = {
    CaseAction.edit.value,
    CaseAction.mark_overdue.value,
    "due_soon",
    "merged_in",
}


def public_event_data(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k in _PUBLIC_DATA_KEYS}


_PUBLIC_DATA_KEYS = {"deadline", "satisfaction", "into_case_number", "reason_code", "round"}
