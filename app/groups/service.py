"""The rules of deputy groups (代表小组).

Staff manage the groups of their region subtree; deputies read them. Functions other
domains call: `member_ids(session, group_ids)` (invite a whole group) and
`leader_of(session, group_id, deputy_id)` (a group's leader manages its activities).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.core.pagination import Page, PageParams, fetch_page
from app.core.security import Principal
from app.groups.models import DeputyGroup, DeputyGroupMember, GroupKind, GroupRole
from app.groups.schemas import (
    GroupCreate,
    GroupMemberIn,
    GroupMemberPublic,
    GroupPublic,
    GroupUpdate,
)
from app.identity.models import Deputy
from app.org.models import Region
from app.presence import service as presence_service


class GroupNameTaken(Conflict):
    code, detail = "group_name_taken", "该区域已有同名代表小组"


class UnknownDeputies(ValidationFailed):
    code, detail = "unknown_deputies", "成员中有不存在或已停用的代表"


async def _region_in_scope(session: AsyncSession, principal: Principal, region_id: int) -> Region:
    region = await session.get(Region, region_id)
    if region is None:
        raise ValidationFailed("区域不存在", code="unknown_region")
    scope = await presence_service.staff_region_path(session, principal)
    if not presence_service.in_scope(scope, region.path):
        raise Forbidden("该区域不在您的管辖范围内")
    return region


async def group_or_404(session: AsyncSession, group_id: int) -> DeputyGroup:
    group = await session.get(DeputyGroup, group_id)
    if group is None:
        raise NotFound("代表小组不存在")
    return group


async def group_in_scope(session: AsyncSession, principal: Principal, group_id: int) -> DeputyGroup:
    group = await group_or_404(session, group_id)
    region = await session.get(Region, group.region_id)
    scope = await presence_service.staff_region_path(session, principal)
    if region is None or not presence_service.in_scope(scope, region.path):
        raise Forbidden("该代表小组不在您的管辖范围内")
    return group


async def _set_members(
    session: AsyncSession, group_id: int, members: Sequence[GroupMemberIn]
) -> None:
    ids = [m.deputy_id for m in members]
    if ids:
        found = set(
            (
                await session.execute(
                    sa.select(Deputy.id).where(Deputy.id.in_(ids), Deputy.is_active.is_(True))  # type: ignore[union-attr,attr-defined]
                )
            ).scalars()
        )
        missing = [i for i in ids if i not in found]
        if missing:
            raise UnknownDeputies(deputy_ids=missing)
    await session.execute(
        sa.delete(DeputyGroupMember).where(DeputyGroupMember.group_id == group_id)
    )  # type: ignore[arg-type]
    for m in members:
        session.add(DeputyGroupMember(group_id=group_id, deputy_id=m.deputy_id, role=m.role))
    await session.flush()


async def _flush_named(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent create or rename took the name
        raise GroupNameTaken() from exc


async def _name_free(
    session: AsyncSession, region_id: int, name: str, exclude_id: int | None = None
) -> None:
    stmt = sa.select(DeputyGroup.id).where(
        DeputyGroup.region_id == region_id,  # type: ignore[arg-type]
        DeputyGroup.name == name,  # type: ignore[arg-type]
    )
    if exclude_id is not None:
        stmt = stmt.where(DeputyGroup.id != exclude_id)  # type: ignore[arg-type]
    if (await session.execute(stmt.limit(1))).first() is not None:
        raise GroupNameTaken()


async def create_group(session: AsyncSession, principal: Principal, body: GroupCreate) -> int:
    await _region_in_scope(session, principal, body.region_id)
    await _name_free(session, body.region_id, body.name)
    group = DeputyGroup(
        name=body.name, kind=body.kind, region_id=body.region_id, description=body.description
    )
    session.add(group)
    await _flush_named(session)
    assert group.id is not None
    await _set_members(session, group.id, body.members)
    return group.id


async def update_group(session: AsyncSession, group: DeputyGroup, body: GroupUpdate) -> int:
    assert group.id is not None
    fields = body.model_dump(exclude_unset=True)
    if fields.get("name") is not None and fields["name"] != group.name:
        await _name_free(session, group.region_id, fields["name"], exclude_id=group.id)
        group.name = fields["name"]
    if fields.get("kind") is not None:
        group.kind = GroupKind(fields["kind"])
    if "description" in fields:
        group.description = fields["description"]
    group.updated_at = utcnow()
    session.add(group)
    await _flush_named(session)
    if body.members is not None:
        await _set_members(session, group.id, body.members)
    return group.id


async def _publics(session: AsyncSession, groups: Sequence[DeputyGroup]) -> list[GroupPublic]:
    ids = [g.id for g in groups]
    members: dict[int, list[GroupMemberPublic]] = defaultdict(list)
    region_names: dict[int, str] = {}
    if ids:
        rows = await session.execute(
            sa.select(
                DeputyGroupMember.group_id,
                DeputyGroupMember.deputy_id,
                DeputyGroupMember.role,
                Deputy.name,
            )
            .join(Deputy, Deputy.id == DeputyGroupMember.deputy_id)  # type: ignore[arg-type]
            .where(DeputyGroupMember.group_id.in_(ids))  # type: ignore[attr-defined]
            .order_by(DeputyGroupMember.group_id, DeputyGroupMember.id)
        )
        order = {GroupRole.leader: 0, GroupRole.deputy_leader: 1, GroupRole.member: 2}
        for group_id, deputy_id, role, name in rows:
            members[group_id].append(
                GroupMemberPublic(deputy_id=deputy_id, name=name, role=GroupRole(role))
            )
        for group_members in members.values():
            group_members.sort(key=lambda m: order[m.role])
        region_ids = {g.region_id for g in groups}
        region_names = {
            int(k): v
            for k, v in await session.execute(
                sa.select(Region.id, Region.name).where(Region.id.in_(region_ids))
            )
        }
    return [
        GroupPublic(
            id=g.id,  # type: ignore[arg-type]
            name=g.name,
            kind=g.kind,
            region_id=g.region_id,
            region_name=region_names.get(g.region_id, ""),
            description=g.description,
            members=members.get(g.id, []),  # type: ignore[arg-type]
        )
        for g in groups
    ]


async def group_public(session: AsyncSession, group_id: int) -> GroupPublic:
    return (await _publics(session, [await group_or_404(session, group_id)]))[0]


async def list_groups(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    region_id: int | None = None,
    deputy_id: int | None = None,
    kind: GroupKind | None = None,
) -> Page[GroupPublic]:
    """Staff see the groups of their subtree; deputies every group."""
    stmt = sa.select(DeputyGroup).join(Region, Region.id == DeputyGroup.region_id)  # type: ignore[arg-type]
    if principal.is_staff:
        scope = await presence_service.staff_region_path(session, principal)
        if scope is not None:
            stmt = stmt.where(Region.path.startswith(scope))  # type: ignore[attr-defined]
    if region_id is not None:
        path = (
            await session.execute(sa.select(Region.path).where(Region.id == region_id))
        ).scalar_one_or_none()
        stmt = stmt.where(Region.path.startswith(path or "/none/"))  # type: ignore[attr-defined]
    if deputy_id is not None:
        stmt = stmt.where(
            DeputyGroup.id.in_(  # type: ignore[union-attr]
                sa.select(DeputyGroupMember.group_id).where(
                    DeputyGroupMember.deputy_id == deputy_id
                )
            )
        )
    if kind is not None:
        stmt = stmt.where(DeputyGroup.kind == kind.value)  # type: ignore[arg-type]
    rows, total = await fetch_page(session, stmt.order_by(DeputyGroup.id), page)
    return Page(items=await _publics(session, [r[0] for r in rows]), total=total)


async def member_ids(session: AsyncSession, group_ids: Iterable[int]) -> dict[int, list[int]]:
    """The deputies of each group (only groups that exist are keys)."""
    ids = list(set(group_ids))
    out: dict[int, list[int]] = {}
    if not ids:
        return out
    for (gid,) in await session.execute(sa.select(DeputyGroup.id).where(DeputyGroup.id.in_(ids))):  # type: ignore[union-attr]
        out[gid] = []
    rows = await session.execute(
        sa.select(DeputyGroupMember.group_id, DeputyGroupMember.deputy_id).where(
            DeputyGroupMember.group_id.in_(ids)  # type: ignore[attr-defined]
        )
    )
    for gid, did in rows:
        out[gid].append(did)
    return out


async def leader_of(session: AsyncSession, group_id: int, deputy_id: int) -> bool:
    """True when the deputy leads the group (组长)."""
    found = await session.execute(
        sa.select(DeputyGroupMember.id).where(
            DeputyGroupMember.group_id == group_id,  # type: ignore[arg-type]
            DeputyGroupMember.deputy_id == deputy_id,  # type: ignore[arg-type]
            DeputyGroupMember.role == GroupRole.leader.value,  # type: ignore[arg-type]
        )
    )
    return found.first() is not None


async def groups_of(session: AsyncSession, deputy_ids: Sequence[int]) -> dict[int, set[int]]:
    """The groups each deputy is in."""
    out: dict[int, set[int]] = {}
    if not deputy_ids:
        return out
    rows = await session.execute(
        sa.select(DeputyGroupMember.deputy_id, DeputyGroupMember.group_id).where(
            DeputyGroupMember.deputy_id.in_(list(deputy_ids))  # type: ignore[attr-defined]
        )
    )
    for deputy_id, group_id in rows:
        out.setdefault(int(deputy_id), set()).add(int(group_id))
    return out


async def set_memberships(session: AsyncSession, deputy_id: int, group_ids: Sequence[int]) -> None:
    """The roster import's groups column: the deputy is in exactly these groups; the role in
    a group they stay in is kept, new memberships are plain members."""
    wanted = set(group_ids)
    current = (await groups_of(session, [deputy_id])).get(deputy_id, set())
    drop = current - wanted
    if drop:
        await session.execute(
            sa.delete(DeputyGroupMember).where(
                DeputyGroupMember.deputy_id == deputy_id,  # type: ignore[arg-type]
                DeputyGroupMember.group_id.in_(drop),  # type: ignore[attr-defined]
            )
        )
    for group_id in sorted(wanted - current):
        session.add(
            DeputyGroupMember(group_id=group_id, deputy_id=deputy_id, role=GroupRole.member)
        )
    await session.flush()
