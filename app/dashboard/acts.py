"""Manual acts (视察、培训、会议、调研) that staff add to a deputy's duty archive."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.clock import utcnow
from app.core.errors import NotFound, VersionConflict
from app.core.pagination import PageParams
from app.core.security import Principal
from app.dashboard.models import ManualAct
from app.dashboard.schemas import ManualActCreate, ManualActUpdate


async def add_act(
    session: AsyncSession, principal: Principal, deputy_id: int, data: ManualActCreate
) -> ManualAct:
    act = ManualAct(deputy_id=deputy_id, created_by_user_id=principal.user_id, **data.model_dump())
    session.add(act)
    await session.flush()
    await session.refresh(act)
    return act


async def list_acts(
    session: AsyncSession, deputy_id: int, year: int | None, page: PageParams
) -> tuple[list[ManualAct], int]:
    conditions = [ManualAct.deputy_id == deputy_id]
    if year is not None:
        conditions += [
            ManualAct.occurred_on >= date(year, 1, 1),
            ManualAct.occurred_on <= date(year, 12, 31),
        ]
    total = (
        await session.execute(select(func.count()).select_from(ManualAct).where(*conditions))
    ).scalar_one()
    rows = await session.execute(
        select(ManualAct)
        .where(*conditions)
        .order_by(col(ManualAct.occurred_on).desc(), col(ManualAct.id).desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows.scalars()), int(total)


async def act_of_deputy(session: AsyncSession, deputy_id: int, act_id: int) -> ManualAct:
    act = await session.get(ManualAct, act_id)
    if act is None or act.deputy_id != deputy_id:
        raise NotFound("未找到该履职记录", code="not_found")
    return act


async def update_act(session: AsyncSession, act: ManualAct, data: ManualActUpdate) -> ManualAct:
    """A conditional UPDATE on the version: a stale edit gets `version_conflict`."""
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    expected = data.version if data.version is not None else act.version
    stmt = (
        update(ManualAct)
        .where(ManualAct.id == act.id, ManualAct.version == expected)
        .values(**changes, version=ManualAct.version + 1, updated_at=utcnow())
    )
    result = await session.execute(stmt)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise VersionConflict()
    await session.refresh(act)
    return act


async def delete_act(session: AsyncSession, act: ManualAct) -> None:
    await session.delete(act)
    await session.flush()
