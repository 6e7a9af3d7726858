"""HTTP endpoints of deputy groups (代表小组)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.core.db import SessionDep
from app.core.deps import CurrentPrincipal, StaffPrincipal
from app.core.errors import Forbidden, problem_responses
from app.core.pagination import Page, PageDep
from app.core.security import Role
from app.core.types import MAX_ID
from app.groups import service
from app.groups.models import GroupKind
from app.groups.schemas import GroupCreate, GroupPublic, GroupUpdate

router = APIRouter(tags=["activities"])


@router.get(
    "/deputy-groups",
    response_model=Page[GroupPublic],
    summary="List deputy groups (staff, deputies)",
    responses=problem_responses(401, 403),
)
async def list_groups(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    region_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="This region's subtree")
    ] = None,
    deputy_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Groups of this deputy")
    ] = None,
    kind: GroupKind | None = None,
) -> Page[GroupPublic]:
    """Staff see the groups of their region subtree (admins all); deputies see every group
    (`deputy_id` = their own id lists their groups). Leaders first in each member list."""
    if not principal.is_staff and principal.role != Role.deputy:
        raise Forbidden()
    return await service.list_groups(
        session, principal, page, region_id=region_id, deputy_id=deputy_id, kind=kind
    )


@router.post(
    "/deputy-groups",
    response_model=GroupPublic,
    status_code=201,
    summary="Create a deputy group (staff)",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_group(
    session: SessionDep, principal: StaffPrincipal, body: GroupCreate
) -> GroupPublic:
    """In a region of the caller's subtree. At most one `leader`; members must be active
    deputies (422 `unknown_deputies`); a group of the same name in the region is 409
    `group_name_taken`."""
    group_id = await service.create_group(session, principal, body)
    return await service.group_public(session, group_id)


@router.patch(
    "/deputy-groups/{group_id}",
    response_model=GroupPublic,
    summary="Rename a group or replace its members (staff)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_group(
    session: SessionDep,
    principal: StaffPrincipal,
    body: GroupUpdate,
    group_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> GroupPublic:
    """Only the fields sent change; `members` replaces the whole member list."""
    group = await service.group_in_scope(session, principal, group_id)
    await service.update_group(session, group, body)
    return await service.group_public(session, group_id)
