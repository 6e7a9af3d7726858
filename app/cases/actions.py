"""The workflow actions on a case (assign, transfer, reject, merge, supervise, send back,
reply, rate, reopen, resolve, edit, follow): each checks the caller, moves the case through
`timeline.transition` and tells those concerned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases.access import CaseAccess, in_scope, load_access
from app.cases.flows import STATUS_TEXT, Decision, Relation, decide
from app.cases.models import (
    OPEN_STATUSES,
    Case,
    CaseAction,
    CaseCategory,
    CaseCoUnit,
    CaseFollow,
    CaseStatus,
    Resolution,
    Satisfaction,
)
from app.cases.notifications import (
    followers,
    notify_resident,
    notify_users,
    region_staff,
    unit_handlers,
)
from app.cases.timeline import record_event, transition
from app.cases.workdays import add_workdays
from app.core.clock import SHANGHAI, utcnow
from app.core.config import Settings
from app.core.errors import (
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
    VersionConflict,
)
from app.core.security import Role
from app.core.times import api_time
from app.org.models import Region, Unit


async def _default_deadline(
    session: AsyncSession, case: Case, settings: Settings, start: datetime
) -> tuple[datetime, bool, int]:
    days = (
        await session.execute(
            select(CaseCategory.default_deadline_days).where(CaseCategory.id == case.category_id)
        )
    ).scalar_one_or_none() or settings.case_default_deadline_days
    deadline = add_workdays(start, days)
    return deadline.at, deadline.calendar_fallback, days


async def _deadline(
    session: AsyncSession,
    case: Case,
    settings: Settings,
    given: datetime | None,
    now: datetime,
) -> tuple[datetime, bool, dict[str, Any]]:
    if given is not None:
        if given.tzinfo is None:
            given = given.replace(tzinfo=SHANGHAI)
        if given <= now:
            raise ValidationFailed("办理期限应晚于当前时间", code="invalid_deadline")
        return given, False, {"deadline": api_time(given)}
    at, fallback, days = await _default_deadline(session, case, settings, now)
    data: dict[str, Any] = {"deadline": api_time(at), "working_days": days}
    if fallback:
        data["calendar_fallback"] = True
    return at, fallback, data


_FALLBACK_NOTE = "该年度法定节假日安排尚未公布，办理期限暂按周末休息计算"


async def _active_unit(session: AsyncSession, unit_id: int) -> str:
    row = (
        await session.execute(select(Unit.name, Unit.is_active).where(Unit.id == unit_id))
    ).first()
    if row is None or not row.is_active:
        raise ValidationFailed("承办单位不存在", code="unknown_unit")
    return str(row.name)


async def _set_co_units(
    session: AsyncSession, case_id: int, lead: int, co_unit_ids: list[int]
) -> list[int]:
    co = [u for u in dict.fromkeys(co_unit_ids) if u != lead]
    for unit_id in co:
        await _active_unit(session, unit_id)
    existing = set(
        (
            await session.execute(select(CaseCoUnit.unit_id).where(CaseCoUnit.case_id == case_id))
        ).scalars()
    )
    from sqlalchemy import delete

    stale = existing - set(co)
    if stale:
        await session.execute(
            delete(CaseCoUnit).where(
                CaseCoUnit.case_id == case_id,
                CaseCoUnit.unit_id.in_(stale),  # type: ignore[attr-defined]
            )
        )
    for unit_id in co:
        if unit_id not in existing:
            session.add(CaseCoUnit(case_id=case_id, unit_id=unit_id))
    return [u for u in co if u not in existing]


async def assign_case(
    session: AsyncSession,
    access: CaseAccess,
    settings: Settings,
    *,
    unit_id: int,
    deadline: datetime | None,
    co_unit_ids: list[int],
    note: str | None,
    internal_note: str | None,
    version: int | None,
) -> Case:
    """交办: registered → handling, with a lead unit, co-handling units and a deadline."""
    case, now = access.case, utcnow()
    _pre_check(access, CaseAction.assign, version)
    unit_name = await _active_unit(session, unit_id)
    at, fallback, data = await _deadline(session, case, settings, deadline, now)
    data["unit_id"] = unit_id
    notes = [internal_note] if internal_note else []
    if fallback:
        notes.append(_FALLBACK_NOTE)
    await transition(
        session,
        access,
        case,
        CaseAction.assign,
        expected_version=version,
        values={
            "lead_unit_id": unit_id,
            "assigned_at": now,
            "deadline_at": at,
            "calendar_fallback": fallback,
            "overdue": False,
            "overdue_at": None,
            "due_soon_notified_at": None,
        },
        public_note=note or f"已交办{unit_name}办理",
        internal_note="；".join(notes) or None,
        data=data,
        now=now,
    )
    assert case.id is not None
    new_co = await _set_co_units(session, case.id, unit_id, co_unit_ids)
    await notify_resident(
        session,
        case,
        CaseStatus.handling,
        note=f"已交办{unit_name}",
        known_followers=access.followers,
        now=now,
    )
    await _notify_assignment(session, case, [unit_id], new_co, now)
    await session.flush()
    return case


async def _notify_assignment(
    session: AsyncSession, case: Case, leads: list[int], co: list[int], now: datetime
) -> None:
    """Inbox messages for the handlers of newly assigned units (lead or co-handling)."""
    deadline = (
        case.deadline_at.astimezone(SHANGHAI).strftime("%Y-%m-%d") if case.deadline_at else ""
    )
    stamp = f"{case.reopen_count}:{case.version}"
    await notify_users(
        session,
        await unit_handlers(session, leads),
        case,
        event="case.assigned",
        dedupe=f"assigned:{stamp}",
        title="新交办事项",
        body=f"{case.number}「{case.title}」已交办贵单位主办，办理期限 {deadline}",
        now=now,
    )
    await notify_users(
        session,
        await unit_handlers(session, co),
        case,
        event="case.assigned",
        dedupe=f"co_assigned:{stamp}",
        title="新协办事项",
        body=f"{case.number}「{case.title}」请贵单位协助办理，办理期限 {deadline}",
        now=now,
    )


def _pre_check(access: CaseAccess, action: CaseAction, version: int | None) -> None:
    """Refuse early (before validating references) what the table refuses anyway."""
    decision = decide(CaseStatus(access.case.status), action, access.relations)
    if decision is Decision.forbidden:
        raise Forbidden("没有权限对该件执行此操作", code="forbidden")
    if decision is Decision.invalid:
        current = CaseStatus(access.case.status)
        raise InvalidTransition(
            f"该件当前状态为「{STATUS_TEXT[current]}」，不能执行此操作",
            status_name=current.value,
            action=action.value,
        )
    if version is not None and version != access.case.version:
        raise VersionConflict(current_version=access.case.version)


async def transfer_case(
    session: AsyncSession,
    access: CaseAccess,
    settings: Settings,
    *,
    unit_id: int,
    deadline: datetime | None,
    co_unit_ids: list[int] | None,
    note: str | None,
    internal_note: str | None,
    version: int | None,
) -> Case:
    """转办: the case goes to another lead unit; the deadline stays unless a new one is
    given."""
    case, now = access.case, utcnow()
    _pre_check(access, CaseAction.transfer, version)
    if unit_id == case.lead_unit_id:
        raise ValidationFailed("已由该单位办理", code="same_unit")
    unit_name = await _active_unit(session, unit_id)
    values: dict[str, Any] = {"lead_unit_id": unit_id}
    data: dict[str, Any] = {"unit_id": unit_id, "from_unit_id": case.lead_unit_id}
    if deadline is not None:
        at, fallback, extra = await _deadline(session, case, settings, deadline, now)
        values.update(
            deadline_at=at, calendar_fallback=fallback, overdue=False, due_soon_notified_at=None
        )
        data.update(extra)
    await transition(
        session,
        access,
        case,
        CaseAction.transfer,
        expected_version=version,
        values=values,
        public_note=note or f"已转交{unit_name}办理",
        internal_note=internal_note,
        data=data,
        now=now,
    )
    assert case.id is not None
    new_co: list[int] = []
    if co_unit_ids is not None:
        new_co = await _set_co_units(session, case.id, unit_id, co_unit_ids)
    else:
        from sqlalchemy import delete

        await session.execute(
            delete(CaseCoUnit).where(CaseCoUnit.case_id == case.id, CaseCoUnit.unit_id == unit_id)
        )
    await _notify_assignment(session, case, [unit_id], new_co, now)
    await session.flush()
    return case


async def reject_case(
    session: AsyncSession,
    access: CaseAccess,
    *,
    reason_code: str,
    note: str,
    internal_note: str | None,
    version: int | None,
) -> Case:
    """不予受理, always with a structured reason and a note the resident reads."""
    case, now = access.case, utcnow()
    await transition(
        session,
        access,
        case,
        CaseAction.reject,
        expected_version=version,
        values={"reject_reason_code": reason_code, "reject_note": note},
        public_note=note,
        internal_note=internal_note,
        data={"reason_code": reason_code},
        now=now,
    )
    await notify_resident(
        session, case, CaseStatus.rejected, note=note, known_followers=access.followers, now=now
    )
    await session.flush()
    return case


async def merge_case(
    session: AsyncSession,
    access: CaseAccess,
    *,
    into_case_id: int,
    note: str | None,
    version: int | None,
) -> Case:
    """合并: a duplicate follows its target; its resident (and followers) read the target
    and hear its news from now on."""
    case, now = access.case, utcnow()
    _pre_check(access, CaseAction.merge, version)
    if into_case_id == case.id:
        raise ValidationFailed("不能合并到自身", code="invalid_merge_target")
    try:
        target_access = await load_access(session, access.principal, into_case_id)
    except NotFound as exc:
        raise ValidationFailed("合并目标不存在", code="invalid_merge_target") from exc
    target = target_access.case
    if target.status not in OPEN_STATUSES:
        raise ValidationFailed("只能合并到尚未办结的件", code="invalid_merge_target")
    await transition(
        session,
        access,
        case,
        CaseAction.merge,
        expected_version=version,
        values={"merged_into_id": target.id},
        public_note=note or f"与 {target.number} 为同一问题，已合并办理",
        data={"into_case_id": target.id, "into_case_number": target.number},
        now=now,
    )
    assert case.id is not None and target.id is not None
    movers = ([case.owner_id] if case.owner_id else []) + await followers(session, case.id)
    already = set(await followers(session, target.id)) | (
        {target.owner_id} if target.owner_id else set()
    )
    deputy_of: dict[int, int | None] = dict(
        (
            await session.execute(
                select(CaseFollow.user_id, CaseFollow.deputy_id).where(
                    CaseFollow.case_id == case.id
                )
            )
        ).all()
    )
    for user_id in dict.fromkeys(movers):
        if user_id in already:
            continue
        session.add(
            CaseFollow(
                case_id=target.id,
                user_id=user_id,
                deputy_id=deputy_of.get(user_id),
                source="merged",
                created_at=now,
            )
        )
    await record_event(
        session,
        target,
        "merged_in",
        access.principal,
        None,
        None,
        internal_note=f"{case.number} 合并入本件",
        data={"from_case_id": case.id},
        now=now,
    )
    await notify_resident(
        session, case, CaseStatus.merged, note=f"已并入 {target.number} 办理", now=now
    )
    await session.flush()
    return case


async def supervise_case(
    session: AsyncSession, access: CaseAccess, *, note: str, version: int | None
) -> Case:
    """督办: recorded, counted, and the lead unit hears it."""
    case, now = access.case, utcnow()
    await transition(
        session,
        access,
        case,
        CaseAction.supervise,
        expected_version=version,
        values={"supervised_count": case.supervised_count + 1, "last_supervised_at": now},
        internal_note=note,
        data={"supervised_count": case.supervised_count + 1},
        now=now,
    )
    units = [case.lead_unit_id] if case.lead_unit_id else []
    await notify_users(
        session,
        await unit_handlers(session, units),
        case,
        event="case.supervised",
        dedupe=f"supervised:{case.supervised_count}",
        title="督办提醒",
        body=f"{case.number}「{case.title}」被督办：{note}",
        now=now,
    )
    await session.flush()
    return case


async def send_back_case(
    session: AsyncSession, access: CaseAccess, *, reason: str, version: int | None
) -> Case:
    """退回: the lead unit says "not ours"; staff route it again."""
    case, now = access.case, utcnow()
    unit_id = case.lead_unit_id
    await transition(
        session,
        access,
        case,
        CaseAction.send_back,
        expected_version=version,
        values={
            "lead_unit_id": None,
            "deadline_at": None,
            "calendar_fallback": False,
            "overdue": False,
            "due_soon_notified_at": None,
            "sent_back_count": case.sent_back_count + 1,
        },
        public_note="承办单位退回，正在重新分办",
        internal_note=reason,
        data={"unit_id": unit_id, "reason": reason},
        now=now,
    )
    assert case.id is not None
    from sqlalchemy import delete

    await session.execute(delete(CaseCoUnit).where(CaseCoUnit.case_id == case.id))
    await notify_users(
        session,
        await region_staff(session, access.region_path),
        case,
        event="case.sent_back",
        dedupe=f"sent_back:{case.sent_back_count}",
        title="承办单位退回",
        body=f"{case.number}「{case.title}」被退回：{reason}",
        now=now,
    )
    await session.flush()
    return case


async def reply_case(
    session: AsyncSession,
    access: CaseAccess,
    *,
    public_answer: str,
    internal_note: str | None,
    version: int | None,
) -> Case:
    """答复: the lead unit's public answer reaches the resident (`fed_back`)."""
    case, now = access.case, utcnow()
    await transition(
        session,
        access,
        case,
        CaseAction.reply,
        expected_version=version,
        values={
            "public_answer": public_answer,
            "fed_back_at": now,
            "satisfaction": None,
            "rating_comment": None,
            "rated_at": None,
        },
        public_note=public_answer,
        internal_note=internal_note,
        now=now,
    )
    await notify_resident(
        session,
        case,
        CaseStatus.fed_back,
        note=public_answer,
        known_followers=access.followers,
        now=now,
    )
    await session.flush()
    return case


async def rate_case(
    session: AsyncSession, access: CaseAccess, *, satisfaction: Satisfaction, comment: str | None
) -> Case:
    """评价: satisfied or basically satisfied resolves the case; dissatisfied leaves it
    answered, and the owner or staff may reopen it. One rating per round."""
    case, now = access.case, utcnow()
    _pre_check(access, CaseAction.rate, None)
    if case.satisfaction is not None:
        raise InvalidTransition("本轮办理已评价", code="already_rated")
    resolves = satisfaction is not Satisfaction.dissatisfied
    values: dict[str, Any] = {
        "satisfaction": satisfaction.value,
        "rating_comment": comment,
        "rated_at": now,
    }
    if resolves:
        values.update(resolved_at=now, resolution=Resolution.rated.value)
    await transition(
        session,
        access,
        case,
        CaseAction.rate,
        to=CaseStatus.resolved if resolves else CaseStatus.fed_back,
        values=values,
        public_note=comment,
        data={"satisfaction": satisfaction.value},
        now=now,
    )
    if resolves:
        await notify_resident(
            session,
            case,
            CaseStatus.resolved,
            note="感谢您的评价",
            known_followers=access.followers,
            now=now,
        )
    else:
        await notify_users(
            session,
            await region_staff(session, access.region_path),
            case,
            event="case.dissatisfied",
            dedupe=f"dissatisfied:{case.reopen_count}",
            title="群众不满意",
            body=f"{case.number}「{case.title}」群众评价不满意"
            + (f"：{comment}" if comment else ""),
            now=now,
        )
    await session.flush()
    return case


async def reopen_case(
    session: AsyncSession,
    access: CaseAccess,
    settings: Settings,
    *,
    reason: str,
    deadline: datetime | None,
    version: int | None,
) -> Case:
    """重新办理: another round with the same lead unit and a new deadline (counted)."""
    case, now = access.case, utcnow()
    _pre_check(access, CaseAction.reopen, version)
    if deadline is not None and Relation.staff not in access.relations:
        raise Forbidden("只有工作人员可以指定办理期限", code="forbidden")
    if case.lead_unit_id is None:
        raise InvalidTransition("该件没有承办单位，不能重新办理")
    at, fallback, data = await _deadline(session, case, settings, deadline, now)
    data["round"] = case.reopen_count + 1
    await transition(
        session,
        access,
        case,
        CaseAction.reopen,
        expected_version=version,
        values={
            "reopen_count": case.reopen_count + 1,
            "deadline_at": at,
            "calendar_fallback": fallback,
            "overdue": False,
            "overdue_at": None,
            "due_soon_notified_at": None,
            "resolved_at": None,
            "resolution": None,
        },
        public_note=reason,
        internal_note=_FALLBACK_NOTE if fallback else None,
        data=data,
        now=now,
    )
    # The timeline entry belongs to the new round.
    await notify_resident(
        session,
        case,
        CaseStatus.handling,
        note="已重新办理",
        known_followers=access.followers,
        now=now,
    )
    await _notify_assignment(session, case, [case.lead_unit_id], [], now)
    await session.flush()
    return case


async def resolve_case(
    session: AsyncSession, access: CaseAccess, *, note: str | None, version: int | None
) -> Case:
    """办结 by staff (e.g. after calling the resident back)."""
    case, now = access.case, utcnow()
    await transition(
        session,
        access,
        case,
        CaseAction.resolve,
        expected_version=version,
        values={"resolved_at": now, "resolution": Resolution.staff.value},
        public_note=note or "已办结",
        now=now,
    )
    await notify_resident(
        session, case, CaseStatus.resolved, note=note, known_followers=access.followers, now=now
    )
    await session.flush()
    return case


async def edit_case(
    session: AsyncSession,
    access: CaseAccess,
    settings: Settings,
    *,
    changes: dict[str, Any],
    note: str | None,
    version: int | None,
) -> Case:
    """Staff corrections (category, region, title, deadline) carrying the version."""
    case, now = access.case, utcnow()
    _pre_check(access, CaseAction.edit, version)
    values: dict[str, Any] = {}
    if "title" in changes and changes["title"] is not None:
        values["title"] = changes["title"].strip()
    if changes.get("category_id") is not None:
        found = (
            await session.execute(
                select(CaseCategory.id).where(CaseCategory.id == changes["category_id"])
            )
        ).first()
        if found is None:
            raise ValidationFailed("问题类别不存在", code="unknown_category")
        values["category_id"] = changes["category_id"]
    if changes.get("region_id") is not None:
        path = (
            await session.execute(select(Region.path).where(Region.id == changes["region_id"]))
        ).scalar_one_or_none()
        if path is None or not in_scope(access.staff_path, path):
            raise ValidationFailed("所在区域不存在或不在您的管辖范围", code="unknown_region")
        values["region_id"] = changes["region_id"]
    if changes.get("deadline") is not None:
        if case.status != CaseStatus.handling:
            raise InvalidTransition("只有办理中的件可以调整期限")
        at, _fallback, _data = await _deadline(session, case, settings, changes["deadline"], now)
        values.update(deadline_at=at, calendar_fallback=False, overdue=False)
    if not values:
        raise ValidationFailed("没有需要修改的内容", code="nothing_to_change")
    await transition(
        session,
        access,
        case,
        CaseAction.edit,
        to=CaseStatus(case.status),
        expected_version=version,
        values=values,
        internal_note=note,
        data={k: (api_time(v) if isinstance(v, datetime) else v) for k, v in values.items()},
        now=now,
    )
    await session.flush()
    return case


async def follow_case(session: AsyncSession, access: CaseAccess) -> Case:
    """A deputy follows a case; it enters their duty archive. Following twice is a no-op."""
    case, principal, now = access.case, access.principal, utcnow()
    if principal.role is not Role.deputy or principal.deputy_id is None:
        raise Forbidden("仅限代表关注", code="forbidden")
    assert case.id is not None
    if access.is_follower:
        return case
    session.add(
        CaseFollow(
            case_id=case.id,
            user_id=principal.user_id,
            deputy_id=principal.deputy_id,
            source="follow",
            created_at=now,
        )
    )
    await record_event(
        session,
        case,
        CaseAction.follow,
        principal,
        None,
        None,
        public_note="人大代表关注了此件",
        data={"deputy_id": principal.deputy_id},
        now=now,
    )
    await session.flush()
    access.is_follower = True
    return case
