"""The periodic sweeps the worker runs: overdue flags and due-soon warnings, and
auto-resolving cases left unrated.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.cases.models import Case, CaseAction, CaseStatus, Resolution
from app.cases.notifications import notify_resident, notify_users, region_staff, unit_handlers
from app.cases.timeline import record_event, transition
from app.core.clock import SHANGHAI
from app.core.config import Settings
from app.core.errors import InvalidTransition, VersionConflict
from app.core.times import api_time
from app.org.models import Region


async def mark_overdue_cases(
    session: AsyncSession, now: datetime, settings: Settings | None = None
) -> int:
    """Flag handling cases past their deadline (timeline entry, inbox messages to the lead
    unit and the region's staff) and warn about those due within `case_due_soon_hours`.
    Answers how many cases were newly flagged overdue. Safe to run from several workers:
    each flag is a conditional UPDATE."""
    from app.core.config import get_settings

    settings = settings or get_settings()
    flagged = 0
    overdue_rows = (
        await session.execute(
            select(Case, Region.path)
            .join(Region, Region.id == Case.region_id)
            .where(
                Case.status == CaseStatus.handling,
                Case.overdue.is_(False),  # type: ignore[attr-defined]
                Case.deadline_at < now,  # type: ignore[operator]
            )
            .limit(500)
        )
    ).all()
    for case, region_path in overdue_rows:
        result = await session.execute(
            update(Case)
            .where(Case.id == case.id, Case.overdue.is_(False))  # type: ignore[arg-type, attr-defined]
            .values(overdue=True, overdue_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue
        flagged += 1
        set_committed_value(case, "overdue", True)
        set_committed_value(case, "overdue_at", now)
        await record_event(
            session,
            case,
            CaseAction.mark_overdue,
            None,
            None,
            None,
            internal_note="已超过办理期限",
            data={"deadline": api_time(case.deadline_at) if case.deadline_at else None},
            now=now,
        )
        users = await unit_handlers(session, [case.lead_unit_id] if case.lead_unit_id else [])
        users += await region_staff(session, region_path)
        await notify_users(
            session,
            users,
            case,
            event="case.overdue",
            dedupe=f"overdue:{case.reopen_count}:{case.version}",
            title="事项已逾期",
            body=f"{case.number}「{case.title}」已超过办理期限",
            now=now,
        )

    soon = now + timedelta(hours=settings.case_due_soon_hours)
    due_rows = (
        await session.execute(
            select(Case, Region.path)
            .join(Region, Region.id == Case.region_id)
            .where(
                Case.status == CaseStatus.handling,
                Case.overdue.is_(False),  # type: ignore[attr-defined]
                Case.due_soon_notified_at.is_(None),  # type: ignore[union-attr]
                Case.deadline_at >= now,  # type: ignore[operator]
                Case.deadline_at < soon,  # type: ignore[operator]
            )
            .limit(500)
        )
    ).all()
    for case, region_path in due_rows:
        result = await session.execute(
            update(Case)
            .where(Case.id == case.id, Case.due_soon_notified_at.is_(None))  # type: ignore[arg-type, union-attr]
            .values(due_soon_notified_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue
        set_committed_value(case, "due_soon_notified_at", now)
        await record_event(
            session, case, "due_soon", None, None, None, internal_note="即将到期提醒", now=now
        )
        deadline = case.deadline_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")  # type: ignore[union-attr]
        users = await unit_handlers(session, [case.lead_unit_id] if case.lead_unit_id else [])
        users += await region_staff(session, region_path)
        await notify_users(
            session,
            users,
            case,
            event="case.due_soon",
            dedupe=f"due_soon:{case.reopen_count}:{case.version}",
            title="事项即将到期",
            body=f"{case.number}「{case.title}」将于 {deadline} 到期",
            now=now,
        )
    await session.flush()
    return flagged


async def auto_resolve_unrated(
    session: AsyncSession, now: datetime, settings: Settings | None = None
) -> int:
    """Resolve fed-back cases the resident has not rated within `case_auto_resolve_days`
    (resolution "auto"; satisfaction stays unset). Answers how many were resolved."""
    from app.core.config import get_settings

    settings = settings or get_settings()
    cutoff = now - timedelta(days=settings.case_auto_resolve_days)
    cases = (
        (
            await session.execute(
                select(Case)
                .where(
                    Case.status == CaseStatus.fed_back,
                    Case.satisfaction.is_(None),  # type: ignore[union-attr]
                    Case.fed_back_at < cutoff,  # type: ignore[operator]
                )
                .order_by(Case.id)  # type: ignore[arg-type]
                .limit(500)
            )
        )
        .scalars()
        .all()
    )
    resolved = 0
    for case in cases:
        try:
            await transition(
                session,
                None,
                case,
                CaseAction.auto_resolve,
                values={"resolved_at": now, "resolution": Resolution.auto.value},
                public_note=f"答复后 {settings.case_auto_resolve_days} 天未评价，系统自动办结",
                now=now,
            )
        except (InvalidTransition, VersionConflict):
            continue  # someone rated or reopened it meanwhile
        resolved += 1
        await notify_resident(session, case, CaseStatus.resolved, note="系统自动办结", now=now)
    await session.flush()
    return resolved
