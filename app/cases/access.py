"""Who the caller is to a case: loading a case with the caller's relations to it, and the
staff scope (the region subtree a staff member sees) as a check and as a query filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    String,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.attachments import service as attachment_service
from app.cases.flows import Relation
from app.cases.models import Case, CaseCoUnit, CaseFollow
from app.core.errors import NotFound
from app.core.security import Principal, Role
from app.org.models import Region

if TYPE_CHECKING:
    from app.cases.queries import CaseView


@dataclass(slots=True)
class CaseAccess:
    """A loaded case and what the caller is to it."""

    case: Case
    region_path: str
    principal: Principal
    staff_path: str | None = None
    relations: set[Relation] = field(default_factory=set)
    visible: bool = False
    is_co_unit: bool = False
    is_follower: bool = False
    # Who follows the case (read with it, for the step's notifications), and the case's view
    # as loaded (`queries.load_case_view`): a step that changes no unit, category or follow
    # answers with it instead of reading the decorations again.
    followers: list[int] | None = None
    view: CaseView | None = None

    @property
    def sees_internal(self) -> bool:
        return Relation.staff in self.relations or self.principal.role is Role.unit

    @property
    def sees_phone(self) -> bool:
        return bool(self.relations & {Relation.staff, Relation.lead_unit, Relation.owner})


async def staff_region_path(session: AsyncSession, principal: Principal) -> str | None:
    """The region path a staff member works in; "/" for admins (everything)."""
    if principal.role is Role.admin:
        return "/"
    if principal.role is not Role.staff or principal.region_id is None:
        return None
    path = (
        await session.execute(select(Region.path).where(Region.id == principal.region_id))
    ).scalar_one_or_none()
    return path


def staff_path_query(principal: Principal) -> ScalarSelect[str] | None:
    """`staff_region_path` as a subquery, for filters that need no round trip of their own."""
    if principal.role is not Role.staff or principal.region_id is None:
        return None
    return select(Region.path).where(Region.id == principal.region_id).scalar_subquery()


def in_scope(staff_path: str | None, region_path: str) -> bool:
    return staff_path is not None and region_path.startswith(staff_path)


# The case's own query may join case_co_unit already; built once (aliasing costs CPU).
_MINE = aliased(CaseCoUnit, name="mine")
_FOLLOWS = aliased(CaseFollow, name="follows")
_FOLLOWERS = (
    select(func.aggregate_strings(cast(_FOLLOWS.user_id, String), ","))
    .where(_FOLLOWS.case_id == Case.id)
    .scalar_subquery()
    .label("followers")
)


def relation_columns(principal: Principal) -> tuple[Any, Any, Any, Any]:
    """What decides the caller's relations to a case, as columns of the case's own query:
    the staff region path, whether the caller's unit co-handles it or the caller follows
    it, and who follows it. No round trip of its own."""
    staff_path: Any = literal(None, String)
    if principal.role is Role.admin:
        staff_path = literal("/", String)
    else:
        path = staff_path_query(principal)
        if path is not None:
            staff_path = path
    co_unit = (
        exists().where(_MINE.case_id == Case.id, _MINE.unit_id == principal.unit_id)
        if principal.role is Role.unit and principal.unit_id is not None
        else literal(False)
    )
    follower = exists().where(
        CaseFollow.case_id == Case.id, CaseFollow.user_id == principal.user_id
    )
    return (
        staff_path.label("staff_path"),
        co_unit.label("is_co_unit"),
        follower.label("is_follower"),
        _FOLLOWERS,
    )


def access_of(
    principal: Principal,
    case: Case,
    region_path: str,
    staff_path: str | None,
    is_co_unit: bool,
    is_follower: bool,
    followers: str | None,
) -> CaseAccess:
    """The caller's relations to a case, from what `relation_columns` answered."""
    access = CaseAccess(case=case, region_path=region_path, principal=principal)
    access.followers = [int(f) for f in followers.split(",")] if followers else []
    if principal.is_staff:
        access.staff_path = staff_path
        if in_scope(staff_path, region_path):
            access.relations.add(Relation.staff)
            if case.owner_id is None:
                access.relations.add(Relation.staff_for_ownerless)
            access.visible = True
        return access
    if principal.role is Role.unit:
        if principal.unit_id is not None and principal.unit_id == case.lead_unit_id:
            access.relations.add(Relation.lead_unit)
            access.visible = True
        elif principal.unit_id is not None:
            access.is_co_unit = bool(is_co_unit)
            access.visible = access.is_co_unit
        return access
    if case.owner_id == principal.user_id:
        access.relations.add(Relation.owner)
        access.visible = True
    access.is_follower = bool(is_follower)
    if access.is_follower:
        access.visible = True
    if principal.role is Role.deputy and (
        case.submitter_id == principal.user_id
        or (principal.deputy_id is not None and case.deputy_id == principal.deputy_id)
    ):
        access.visible = True
    return access


async def load_access(session: AsyncSession, principal: Principal, case_id: int) -> CaseAccess:
    """The case and the caller's relations to it, in one query; 404 if the caller may not
    see it."""
    row = (
        await session.execute(
            select(Case, Region.path, *relation_columns(principal))
            .join(Region, Region.id == Case.region_id)  # type: ignore[arg-type]
            .where(Case.id == case_id)  # type: ignore[arg-type]
        )
    ).first()
    if row is None:
        raise NotFound("未找到该件", code="not_found")
    access = access_of(principal, *row)
    if not access.visible:
        raise NotFound("未找到该件", code="not_found")
    return access


async def can_view_case(session: AsyncSession, principal: Principal | None, case_id: int) -> bool:
    """Visibility of a case's photos: whoever may read the case."""
    if principal is None:
        return False
    try:
        await load_access(session, principal, case_id)
    except NotFound:
        return False
    return True


attachment_service.register_visibility("case", can_view_case)


def scope_filter(
    principal: Principal, staff_path: str | ScalarSelect[str] | None
) -> ColumnElement[bool]:
    """The cases a caller may list (`staff_path` as a value or as `staff_path_query`)."""
    followed = exists().where(
        CaseFollow.case_id == Case.id, CaseFollow.user_id == principal.user_id
    )
    if principal.role is Role.admin:
        return literal(True)
    if principal.role is Role.staff:
        if staff_path is None:
            return literal(False)
        return col(Case.region_id).in_(
            select(Region.id).where(col(Region.path).startswith(staff_path))
        )
    if principal.role is Role.unit:
        if principal.unit_id is None:
            return literal(False)
        co = exists().where(CaseCoUnit.case_id == Case.id, CaseCoUnit.unit_id == principal.unit_id)
        return or_(Case.lead_unit_id == principal.unit_id, co)
    if principal.role is Role.deputy:
        mine: list[ColumnElement[bool]] = [
            col(Case.owner_id) == principal.user_id,
            col(Case.submitter_id) == principal.user_id,
            followed,
        ]
        if principal.deputy_id is not None:
            mine.append(Case.deputy_id == principal.deputy_id)
        return or_(*mine)
    return or_(Case.owner_id == principal.user_id, followed)
