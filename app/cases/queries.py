"""Reading cases: the list and detail views with unit names and masking, and the timeline
as each caller may see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.cases.access import CaseAccess, access_of, in_scope, relation_columns
from app.cases.models import Case, CaseAction, CaseCategory, CaseCoUnit, CaseEvent, CaseFollow
from app.core.errors import NotFound
from app.core.pagination import PageParams
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


# Built once: aliasing and adapting columns per request cost more CPU than the query itself.
_LEAD, _SUGGESTED, _CO = (aliased(Unit, name=n) for n in ("lead", "suggested", "co"))
_DECORATED = (
    select(
        Case,
        CaseCategory.name,
        _LEAD.name,
        _SUGGESTED.name,
        Region.path,
        exists()
        .where(CaseFollow.case_id == Case.id, CaseFollow.user_id == bindparam("viewer_id"))
        .label("following"),
        CaseCoUnit.unit_id,
        _CO.name,
    )
    .join(Region, Region.id == Case.region_id)  # type: ignore[arg-type]
    .outerjoin(CaseCategory, CaseCategory.id == Case.category_id)  # type: ignore[arg-type]
    .outerjoin(_LEAD, _LEAD.id == Case.lead_unit_id)  # type: ignore[arg-type]
    .outerjoin(_SUGGESTED, _SUGGESTED.id == Case.suggested_unit_id)  # type: ignore[arg-type]
    .outerjoin(CaseCoUnit, CaseCoUnit.case_id == Case.id)  # type: ignore[arg-type]
    .outerjoin(_CO, _CO.id == CaseCoUnit.unit_id)  # type: ignore[arg-type]
)


def _decorated(principal: Principal) -> Select[Any]:
    """A case with what its view needs, one row per co-handling unit (or one without):
    category name, unit names, region path and whether the caller follows it."""
    return _DECORATED.params(viewer_id=principal.user_id)


def _views(
    principal: Principal,
    rows: Sequence[Row[Any]],
    staff_path: str | None,
    cases: dict[int, Case] | None = None,
) -> list[CaseView]:
    """Views of the decorated rows, in their order; `cases` are the caller's own copies of
    the rows' cases (changed in this transaction), used instead of the rows'."""
    views: dict[int, CaseView] = {}
    for case, category, lead, suggested, region_path, following, co_id, co_name in rows:
        assert case.id is not None
        view = views.get(case.id)
        if view is None:
            case = (cases or {}).get(case.id, case)
            staff = principal.is_staff and in_scope(staff_path, region_path)
            lead_unit = principal.role is Role.unit and principal.unit_id == case.lead_unit_id
            owner = case.owner_id == principal.user_id and not principal.is_staff
            view = views[case.id] = CaseView(
                case=case,
                category_name=category,
                lead_unit=(case.lead_unit_id, lead or "") if case.lead_unit_id else None,
                co_units=[],
                suggested_unit=(
                    (case.suggested_unit_id, suggested or "")
                    if staff and case.suggested_unit_id
                    else None
                ),
                sees_phone=staff or lead_unit or owner,
                sees_internal=staff or principal.role is Role.unit,
                is_owner=owner,
                following=bool(following),
            )
        if co_id is not None:
            view.co_units.append((co_id, co_name or ""))
    return list(views.values())


async def case_views(
    session: AsyncSession,
    principal: Principal,
    cases: list[Case],
    *,
    staff_path: str | None,
) -> list[CaseView]:
    """Render rules for cases already loaded, in one query."""
    if not cases:
        return []
    own = {c.id: c for c in cases if c.id is not None}
    rows = (
        await session.execute(
            _decorated(principal)
            .where(col(Case.id).in_(list(own)))
            .order_by(col(Case.id).desc(), col(CaseCoUnit.id))
        )
    ).all()
    found = {v.case.id: v for v in _views(principal, rows, staff_path, own)}
    return [found[c.id] for c in cases if c.id in found]


async def load_case_view(
    session: AsyncSession, principal: Principal, case_id: int
) -> tuple[CaseAccess, CaseView]:
    """`load_access` and the case's view in one query; 404 if the caller may not see it."""
    rows = (
        await session.execute(
            _decorated(principal)
            .add_columns(*relation_columns(principal))
            .where(col(Case.id) == case_id)
            .order_by(col(CaseCoUnit.id))
        )
    ).all()
    if not rows:
        raise NotFound("未找到该件", code="not_found")
    case, region_path, relations = rows[0][0], rows[0][4], rows[0][8:]
    access = access_of(principal, case, region_path, *relations)
    if not access.visible:
        raise NotFound("未找到该件", code="not_found")
    (view,) = _views(principal, [row[:8] for row in rows], access.staff_path)
    access.view = view
    return access, view


async def page_of_views(
    session: AsyncSession,
    principal: Principal,
    conditions: Sequence[ColumnElement[bool]],
    page: PageParams,
    *,
    staff_path: str | None,
) -> list[CaseView]:
    """One page of the cases matching `conditions`, newest first, with their views: one
    query (the page is picked in a subquery, then decorated)."""
    picked = (
        select(Case.id)
        .where(*conditions)
        .order_by(col(Case.id).desc())
        .limit(page.limit)
        .offset(page.offset)
        .subquery("picked")
    )
    rows = (
        await session.execute(
            _decorated(principal)
            .join(picked, picked.c.id == Case.id)
            .order_by(col(Case.id).desc(), col(CaseCoUnit.id))
        )
    ).all()
    return _views(principal, rows, staff_path)


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
