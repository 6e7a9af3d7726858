"""Who hears about a step of a case: the resident, followers, unit handlers and the region's
staff, through the inbox and subscribe messages (`app.notify`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases.flows import RESIDENT_EVENTS, STATUS_TEXT
from app.cases.models import Case, CaseFollow, CaseStatus
from app.core.clock import SHANGHAI, utcnow
from app.core.security import Role
from app.identity.models import User
from app.notify import service as notify_service
from app.notify.service import Message
from app.org.models import Region

CASE_PAGE = "pages/case/detail?id={id}"


def _params(case: Case, status: CaseStatus, note: str | None, now: datetime) -> dict[str, Any]:
    return {
        "case_id": case.id,
        "number": case.number,
        "title": case.title,
        "status": status.value,
        "status_text": STATUS_TEXT[status],
        "time": now.astimezone(SHANGHAI).isoformat(),
        "note": note or "",
    }


async def followers(session: AsyncSession, case_id: int) -> list[int]:
    rows = await session.execute(select(CaseFollow.user_id).where(CaseFollow.case_id == case_id))
    return list(rows.scalars())


async def notify_resident(
    session: AsyncSession,
    case: Case,
    status: CaseStatus,
    *,
    note: str | None = None,
    recipients: list[int] | None = None,
    known_followers: list[int] | None = None,
    now: datetime | None = None,
) -> None:
    """Tell the owner and followers about a resident-facing step, once per round
    (`known_followers`: as read with the case, saving a query)."""
    assert case.id is not None
    now = now or utcnow()
    if recipients is None:
        recipients = [case.owner_id] if case.owner_id else []
        if status is not CaseStatus.registered:
            if known_followers is None:
                known_followers = await followers(session, case.id)
            recipients += known_followers
    text = STATUS_TEXT[status]
    params = _params(case, status, note, now)
    await notify_service.enqueue_many(
        session,
        [
            Message(
                recipient_id=user_id,
                event=RESIDENT_EVENTS[status],
                dedupe_key=f"case:{case.id}:{status.value}:{case.reopen_count}",
                title=f"您关注的事项{text}",
                body=f"{case.number}「{case.title}」{text}" + (f"：{note}" if note else ""),
                page=CASE_PAGE.format(id=case.id),
                params=params,
            )
            for user_id in dict.fromkeys(recipients)
        ],
    )


async def unit_handlers(session: AsyncSession, unit_ids: list[int]) -> list[int]:
    if not unit_ids:
        return []
    rows = await session.execute(
        select(User.id).where(
            User.role == Role.unit,
            User.unit_id.in_(unit_ids),  # type: ignore[union-attr]
            User.is_active.is_(True),  # type: ignore[attr-defined]
        )
    )
    return list(rows.scalars())


async def region_staff(session: AsyncSession, region_path: str) -> list[int]:
    """Staff whose region holds the case (its region or any region above it)."""
    rows = await session.execute(
        select(User.id)
        .join(Region, Region.id == User.region_id)  # type: ignore[arg-type]
        .where(
            User.role == Role.staff,
            User.is_active.is_(True),  # type: ignore[attr-defined]
            literal(region_path).like(Region.path + "%"),
        )
    )
    return list(rows.scalars())


async def notify_users(
    session: AsyncSession,
    users: list[int],
    case: Case,
    *,
    event: str,
    dedupe: str,
    title: str,
    body: str,
    now: datetime,
) -> None:
    params = _params(case, CaseStatus(case.status), None, now)
    await notify_service.enqueue_many(
        session,
        [
            Message(
                recipient_id=user_id,
                event=event,
                dedupe_key=f"case:{case.id}:{dedupe}",
                title=title,
                body=body,
                page=CASE_PAGE.format(id=case.id),
                params=params,
            )
            for user_id in dict.fromkeys(users)
        ],
    )
