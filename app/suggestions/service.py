"""The rules of deputies' suggestions (代表建议): drafting from cases, who may see and act,
the workflow moves, yearly numbers, consultations, and the news to residents.

Every move goes through `transition`, which asks `flows.decide` and settles races with a
conditional UPDATE on (status, version). Services only flush: a move, its timeline entry,
the carried cases' timeline entries and the outbox rows commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.cases.models import Case, CaseCategory
from app.cases.notifications import unit_handlers
from app.cases.timeline import record_event as record_case_event
from app.cases.workdays import add_workdays
from app.core.clock import SHANGHAI
from app.core.config import Settings
from app.core.errors import (
    AppError,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
    VersionConflict,
)
from app.core.lookup import names_by_id
from app.core.masking import mask_text
from app.core.security import Principal, Role
from app.groups.models import DeputyGroupMember
from app.hotspots import service as hotspot_service
from app.identity.models import Deputy, User
from app.notify import service as notify_service
from app.org.models import Region, Unit
from app.suggestions import drafting
from app.suggestions.flows import (
    REHANDLE_LIMIT,
    STATUS_TEXT,
    TRANSITIONS,
    Decision,
    Relation,
    decide,
)
from app.suggestions.models import (
    Suggestion,
    SuggestionAction,
    SuggestionCase,
    SuggestionConsultation,
    SuggestionCoSigner,
    SuggestionCoUnit,
    SuggestionCounter,
    SuggestionEvent,
    SuggestionStatus,
)

SUGGESTION_PAGE = "pages/suggestion/detail?id={id}"
CASE_PAGE = "pages/case/detail?id={id}"


class RehandleUsed(AppError):
    status, code, detail = 409, "rehandle_used", "该建议已要求重新办理过一次"


def _field_error(field_name: str, message: str) -> list[dict[str, str]]:
    return [{"field": field_name, "message": message, "type": "value_error"}]


# ---------------------------------------------------------------------------------------
# Who the caller is to a suggestion


@dataclass(slots=True)
class SuggestionAccess:
    suggestion: Suggestion
    principal: Principal
    relations: set[Relation] = field(default_factory=set)


async def _staff_path(session: AsyncSession, principal: Principal) -> str | None:
    if principal.role is Role.admin:
        return "/"
    if principal.role is not Role.staff or principal.region_id is None:
        return None
    return (
        await session.execute(select(Region.path).where(Region.id == principal.region_id))
    ).scalar_one_or_none()


async def load_access(
    session: AsyncSession, principal: Principal, suggestion_id: int
) -> SuggestionAccess:
    row = (
        await session.execute(
            select(Suggestion, Region.path)
            .join(Region, col(Region.id) == Suggestion.region_id)
            .where(Suggestion.id == suggestion_id)
        )
    ).first()
    if row is None:
        raise NotFound("未找到该建议", code="not_found")
    suggestion, region_path = row
    access = SuggestionAccess(suggestion, principal)
    draft = suggestion.status == SuggestionStatus.draft
    if principal.role is Role.deputy and principal.deputy_id is not None:
        if suggestion.deputy_id == principal.deputy_id:
            access.relations.add(Relation.author)
        elif await _co_signs(session, suggestion_id, principal.deputy_id):
            access.relations.add(Relation.co_signer)
    elif principal.is_staff and not draft:
        staff_path = await _staff_path(session, principal)
        if staff_path is not None and region_path.startswith(staff_path):
            access.relations.add(Relation.staff)
    elif principal.role is Role.unit and principal.unit_id is not None and not draft:
        if suggestion.lead_unit_id == principal.unit_id:
            access.relations.add(Relation.lead_unit)
        elif principal.unit_id in await co_unit_ids(session, suggestion_id):
            access.relations.add(Relation.co_unit)
    if not access.relations:
        raise NotFound("未找到该建议", code="not_found")
    return access


async def _co_signs(session: AsyncSession, suggestion_id: int, deputy_id: int) -> bool:
    return (
        await session.execute(
            select(SuggestionCoSigner.id).where(
                SuggestionCoSigner.suggestion_id == suggestion_id,
                SuggestionCoSigner.deputy_id == deputy_id,
            )
        )
    ).first() is not None


async def co_unit_ids(session: AsyncSession, suggestion_id: int) -> list[int]:
    rows = await session.execute(
        select(SuggestionCoUnit.unit_id)
        .where(SuggestionCoUnit.suggestion_id == suggestion_id)
        .order_by(col(SuggestionCoUnit.unit_id))
    )
    return list(rows.scalars())


async def list_filter(session: AsyncSession, principal: Principal) -> ColumnElement[bool]:
    """The suggestions a caller may list (drafts only for their deputies)."""
    not_draft = col(Suggestion.status) != SuggestionStatus.draft.value
    if principal.role is Role.deputy and principal.deputy_id is not None:
        co = exists().where(
            SuggestionCoSigner.suggestion_id == Suggestion.id,
            SuggestionCoSigner.deputy_id == principal.deputy_id,
        )
        return or_(col(Suggestion.deputy_id) == principal.deputy_id, co)
    if principal.is_staff:
        staff_path = await _staff_path(session, principal)
        if staff_path is None:
            return false()
        if staff_path == "/":
            return not_draft
        regions = select(Region.id).where(col(Region.path).startswith(staff_path))
        return not_draft & col(Suggestion.region_id).in_(regions)
    if principal.role is Role.unit and principal.unit_id is not None:
        co = exists().where(
            SuggestionCoUnit.suggestion_id == Suggestion.id,
            SuggestionCoUnit.unit_id == principal.unit_id,
        )
        return not_draft & or_(col(Suggestion.lead_unit_id) == principal.unit_id, co)
    raise Forbidden()


def allowed_actions(access: SuggestionAccess) -> list[str]:
    status = access.suggestion.status
    can = [
        action.value
        for (from_status, action), rule in TRANSITIONS.items()
        if from_status == status and rule.who & access.relations
    ]
    if access.suggestion.rehandle_count >= REHANDLE_LIMIT and "rehandle" in can:
        can.remove("rehandle")
    if status in CONSULTABLE and access.relations & {
        Relation.staff,
        Relation.lead_unit,
        Relation.co_unit,
    }:
        can.append(SuggestionAction.consult.value)
    return can


# ---------------------------------------------------------------------------------------
# Drafting


async def _deputy_paths(session: AsyncSession, principal: Principal) -> list[str]:
    paths = await hotspot_service.scope_paths(session, principal)
    return paths or []


async def create_draft(
    session: AsyncSession,
    principal: Principal,
    *,
    hotspot_id: int | None,
    case_ids: Sequence[int] | None,
    co_signer_ids: Sequence[int],
    now: datetime,
) -> Suggestion:
    """A draft written from the hotspot's cases or the chosen ones, all of which the deputy
    must be able to see (their own or their stations' regions, or cases sent to them)."""
    assert principal.deputy_id is not None
    topic = None
    if hotspot_id is not None:
        hotspot, _ = await hotspot_service.load_visible(session, principal, hotspot_id)
        wanted = await hotspot_service.hotspot_case_ids(session, hotspot_id)
        if hotspot.merged_into_id is not None:
            target = await session.get(type(hotspot), hotspot.merged_into_id)
            hotspot_id = hotspot.merged_into_id
            hotspot = target or hotspot
        topic = hotspot.title
        if not wanted:
            raise ValidationFailed(
                "该热点没有可引用的件", errors=_field_error("body.hotspot_id", "no cases")
            )
    else:
        wanted = sorted(set(case_ids or ()))
    rows = (
        await session.execute(
            select(Case, Region.path)
            .join(Region, col(Region.id) == Case.region_id)
            .where(col(Case.id).in_(wanted))
        )
    ).all()
    found = {case.id: (case, path) for case, path in rows}
    missing = [c for c in wanted if c not in found]
    if missing:
        raise ValidationFailed(
            "所选的件不存在", errors=_field_error("body.case_ids", f"unknown: {missing}")
        )
    if hotspot_id is None:
        paths = await _deputy_paths(session, principal)
        hidden = [
            case_id
            for case_id, (case, path) in found.items()
            if not any(path.startswith(p) for p in paths)
            and case.deputy_id != principal.deputy_id
            and case.submitter_id != principal.user_id
        ]
        if hidden:
            raise Forbidden("所选的件不在您的联系范围内")
    await _check_co_signers(session, principal.deputy_id, co_signer_ids)
    cases = [found[c][0] for c in wanted]
    region_id = drafting.common_region([found[c][1] for c in wanted]) or cases[0].region_id
    names = await _names(
        session,
        regions={c.region_id for c in cases},
        units={c.lead_unit_id for c in cases if c.lead_unit_id},
        categories={c.category_id for c in cases},
    )
    draft = drafting.write_draft(
        cases,
        topic=topic,
        region_names=names["region"],
        unit_names=names["unit"],
        category_names=names["category"],
    )
    suggestion = Suggestion(
        title=draft.title,
        content=draft.content,
        deputy_id=principal.deputy_id,
        author_id=principal.user_id,
        hotspot_id=hotspot_id,
        region_id=region_id,
        created_at=now,
        updated_at=now,
    )
    session.add(suggestion)
    await session.flush()
    assert suggestion.id is not None
    for case_id in wanted:
        session.add(SuggestionCase(suggestion_id=suggestion.id, case_id=case_id))
    for deputy_id in sorted(set(co_signer_ids)):
        session.add(SuggestionCoSigner(suggestion_id=suggestion.id, deputy_id=deputy_id))
    _event(
        session,
        suggestion,
        SuggestionAction.create,
        principal,
        None,
        SuggestionStatus.draft,
        data={"cases": len(wanted), "hotspot_id": hotspot_id},
        now=now,
    )
    await session.flush()
    return suggestion


async def _check_co_signers(
    session: AsyncSession, author_deputy_id: int, co_signer_ids: Sequence[int]
) -> None:
    """Co-signers (附议) are other active deputies of a deputy group (代表小组) the author
    belongs to."""
    wanted = sorted(set(co_signer_ids))
    if author_deputy_id in wanted:
        raise ValidationFailed(
            "不能将自己列为附议代表", errors=_field_error("body.co_signer_ids", "the author")
        )
    if not wanted:
        return
    my_groups = select(DeputyGroupMember.group_id).where(
        DeputyGroupMember.deputy_id == author_deputy_id
    )
    fellows = set(
        (
            await session.execute(
                select(Deputy.id)
                .join(DeputyGroupMember, col(DeputyGroupMember.deputy_id) == Deputy.id)
                .where(
                    col(Deputy.id).in_(wanted),
                    col(Deputy.is_active).is_(True),
                    col(DeputyGroupMember.group_id).in_(my_groups),
                )
            )
        ).scalars()
    )
    strangers = [d for d in wanted if d not in fellows]
    if strangers:
        raise ValidationFailed(
            "附议代表须是与您同一代表小组的在任代表",
            errors=_field_error("body.co_signer_ids", f"not in your groups: {strangers}"),
        )


async def _names(
    session: AsyncSession, *, regions: set[int], units: set[int], categories: set[int]
) -> dict[str, dict[int, str]]:
    return {
        "region": await names_by_id(session, Region, regions),
        "unit": await names_by_id(session, Unit, units),
        "category": await names_by_id(session, CaseCategory, categories),
    }


async def edit_draft(
    session: AsyncSession,
    access: SuggestionAccess,
    *,
    title: str | None,
    content: str | None,
    co_signer_ids: Sequence[int] | None,
    version: int,
    now: datetime,
) -> Suggestion:
    suggestion = access.suggestion
    _check(access, SuggestionAction.edit)
    assert suggestion.id is not None
    if co_signer_ids is not None:
        await _check_co_signers(session, suggestion.deputy_id, co_signer_ids)
    values: dict[str, Any] = {"updated_at": now, "version": Suggestion.version + 1}
    if title is not None:
        values["title"] = title
    if content is not None:
        values["content"] = content
    result = await session.execute(
        update(Suggestion)
        .where(
            Suggestion.id == suggestion.id,
            Suggestion.version == version,
            Suggestion.status == SuggestionStatus.draft.value,
        )
        .values(**values)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise VersionConflict()
    if co_signer_ids is not None:
        from sqlalchemy import delete

        await session.execute(
            delete(SuggestionCoSigner).where(SuggestionCoSigner.suggestion_id == suggestion.id)
        )
        for deputy_id in sorted(set(co_signer_ids)):
            session.add(SuggestionCoSigner(suggestion_id=suggestion.id, deputy_id=deputy_id))
    _event(session, suggestion, SuggestionAction.edit, access.principal, None, None, now=now)
    await session.flush()
    await session.refresh(suggestion)
    return suggestion


# ---------------------------------------------------------------------------------------
# The workflow


def _check(access: SuggestionAccess, action: SuggestionAction) -> None:
    decision = decide(access.suggestion.status, action, access.relations)
    if decision is Decision.forbidden:
        raise Forbidden()
    if decision is Decision.invalid:
        raise InvalidTransition()


def _event(
    session: AsyncSession,
    suggestion: Suggestion,
    action: SuggestionAction,
    actor: Principal | None,
    from_status: SuggestionStatus | None,
    to_status: SuggestionStatus | None,
    *,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    now: datetime,
) -> None:
    assert suggestion.id is not None
    session.add(
        SuggestionEvent(
            suggestion_id=suggestion.id,
            action=action.value,
            from_status=from_status.value if from_status else None,
            to_status=to_status.value if to_status else None,
            actor_id=actor.user_id if actor else None,
            actor_role=actor.role.value if actor else "system",
            note=note,
            data=data or {},
            created_at=now,
        )
    )


async def transition(
    session: AsyncSession,
    access: SuggestionAccess,
    action: SuggestionAction,
    *,
    now: datetime,
    values: dict[str, Any] | None = None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> Suggestion:
    """One move of the table, as one conditional UPDATE on (status, version): of two racing
    callers one wins and the other gets 409."""
    suggestion = access.suggestion
    _check(access, action)
    rule = TRANSITIONS[(suggestion.status, action)]
    before = SuggestionStatus(suggestion.status)
    result = await session.execute(
        update(Suggestion)
        .where(
            Suggestion.id == suggestion.id,
            Suggestion.status == before.value,
            Suggestion.version == suggestion.version,
        )
        .values(
            status=rule.to.value,
            version=Suggestion.version + 1,
            updated_at=now,
            **(values or {}),
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise InvalidTransition("建议已被他人处理，请刷新后重试")
    _event(
        session,
        suggestion,
        action,
        access.principal,
        before,
        rule.to,
        note=note,
        data=data,
        now=now,
    )
    await session.flush()
    await session.refresh(suggestion)
    return suggestion


async def submit(session: AsyncSession, access: SuggestionAccess, now: datetime) -> Suggestion:
    return await transition(
        session, access, SuggestionAction.submit, now=now, values={"submitted_at": now}
    )


async def next_number(session: AsyncSession, year: int) -> str:
    """The year's next number, "2026-0001": the counter row is created once and counted up
    by one UPDATE ... RETURNING, which the database serializes."""
    table = SuggestionCounter.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(table).values(year=year, last=0).on_conflict_do_nothing(index_elements=["year"])
    )
    number = (
        await session.execute(
            update(table)
            .where(table.c.year == year)
            .values(last=table.c.last + 1)
            .returning(table.c.last)
        )
    ).scalar_one()
    return f"{year}-{number:04d}"


async def register(
    session: AsyncSession, access: SuggestionAccess, note: str | None, now: datetime
) -> Suggestion:
    _check(access, SuggestionAction.register)
    year = now.astimezone(SHANGHAI).year
    number = await next_number(session, year)
    suggestion = await transition(
        session,
        access,
        SuggestionAction.register,
        now=now,
        values={"number": number, "year": year, "registered_at": now},
        note=note,
        data={"number": number},
    )
    await _tell_deputies(session, suggestion, "suggestion.registered", f"已登记，编号{number}", now)
    return suggestion


async def assign(
    session: AsyncSession,
    access: SuggestionAccess,
    *,
    lead_unit_id: int,
    co_unit_ids: Sequence[int],
    deadline_days: int | None,
    note: str | None,
    settings: Settings,
    now: datetime,
) -> Suggestion:
    """交办: a lead unit and co-units, a deadline in working days (China's calendar)."""
    _check(access, SuggestionAction.assign)
    co = sorted(set(co_unit_ids))
    if lead_unit_id in co:
        raise ValidationFailed(
            "主办单位不能同时是协办单位", errors=_field_error("body.co_unit_ids", "lead unit")
        )
    wanted = [lead_unit_id, *co]
    active = set(
        (
            await session.execute(
                select(Unit.id).where(col(Unit.id).in_(wanted), col(Unit.is_active).is_(True))
            )
        ).scalars()
    )
    unknown = [u for u in wanted if u not in active]
    if unknown:
        raise ValidationFailed(
            "承办单位不存在或已停用",
            errors=_field_error("body.lead_unit_id", f"unknown: {unknown}"),
        )
    days = deadline_days or settings.suggestion_deadline_days
    deadline = add_workdays(now, days)
    suggestion = await transition(
        session,
        access,
        SuggestionAction.assign,
        now=now,
        values={
            "lead_unit_id": lead_unit_id,
            "assigned_at": now,
            "deadline_days": days,
            "deadline_at": deadline.at,
            "calendar_fallback": deadline.calendar_fallback,
        },
        note=note,
        data={"lead_unit_id": lead_unit_id, "co_unit_ids": co, "deadline_days": days},
    )
    assert suggestion.id is not None
    for unit_id in co:
        session.add(SuggestionCoUnit(suggestion_id=suggestion.id, unit_id=unit_id))
    await session.flush()
    await _tell_units(
        session,
        suggestion,
        [lead_unit_id, *co],
        "suggestion.assigned",
        "交办了一件代表建议，请按期答复",
        now,
    )
    return suggestion


async def supervise(
    session: AsyncSession, access: SuggestionAccess, note: str | None, now: datetime
) -> Suggestion:
    suggestion = await transition(
        session,
        access,
        SuggestionAction.supervise,
        now=now,
        values={"supervised_count": Suggestion.supervised_count + 1},
        note=note,
    )
    assert suggestion.lead_unit_id is not None
    await _tell_units(
        session,
        suggestion,
        [suggestion.lead_unit_id],
        "suggestion.supervised",
        "督办：请抓紧办理并答复",
        now,
        round_key=str(suggestion.supervised_count),
    )
    return suggestion


async def reply(
    session: AsyncSession, access: SuggestionAccess, text: str, now: datetime
) -> Suggestion:
    """答复: the deputies hear it, and so does every resident whose case the suggestion
    carries (a subscribe message and the inbox), and each case's timeline shows it."""
    first = access.suggestion.first_replied_at or now
    suggestion = await transition(
        session,
        access,
        SuggestionAction.reply,
        now=now,
        values={"reply": text, "replied_at": now, "first_replied_at": first},
        note=text,
    )
    await _tell_deputies(session, suggestion, "suggestion.replied", "承办单位已答复，请评价", now)
    await _tell_residents(session, suggestion, access.principal, text, now)
    return suggestion


async def evaluate(
    session: AsyncSession,
    access: SuggestionAccess,
    satisfaction: str,
    comment: str | None,
    now: datetime,
) -> Suggestion:
    suggestion = await transition(
        session,
        access,
        SuggestionAction.evaluate,
        now=now,
        values={"evaluation": satisfaction, "evaluation_comment": comment, "evaluated_at": now},
        note=comment,
        data={"satisfaction": satisfaction},
    )
    assert suggestion.lead_unit_id is not None
    await _tell_units(
        session,
        suggestion,
        [suggestion.lead_unit_id],
        "suggestion.evaluated",
        f"代表评价：{SATISFACTION_TEXT.get(satisfaction, satisfaction)}",
        now,
    )
    return suggestion


SATISFACTION_TEXT = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "dissatisfied": "不满意",
}


async def rehandle(
    session: AsyncSession, access: SuggestionAccess, reason: str, settings: Settings, now: datetime
) -> Suggestion:
    """要求重新办理, once: back to the lead unit with a new deadline of as many working days."""
    _check(access, SuggestionAction.rehandle)
    suggestion = access.suggestion
    if suggestion.rehandle_count >= REHANDLE_LIMIT:
        raise RehandleUsed()
    days = suggestion.deadline_days or settings.suggestion_deadline_days
    deadline = add_workdays(now, days)
    suggestion = await transition(
        session,
        access,
        SuggestionAction.rehandle,
        now=now,
        values={
            "rehandle_count": Suggestion.rehandle_count + 1,
            "deadline_at": deadline.at,
            "calendar_fallback": deadline.calendar_fallback,
            "evaluation": None,
            "evaluation_comment": None,
            "evaluated_at": None,
        },
        note=reason,
    )
    assert suggestion.lead_unit_id is not None
    await _tell_units(
        session,
        suggestion,
        [suggestion.lead_unit_id],
        "suggestion.rehandle",
        "代表要求重新办理",
        now,
        round_key=str(suggestion.rehandle_count),
    )
    return suggestion


CONSULTABLE = (SuggestionStatus.assigned, SuggestionStatus.replied, SuggestionStatus.evaluated)


async def record_consultation(
    session: AsyncSession,
    access: SuggestionAccess,
    *,
    held_at: datetime,
    place: str | None,
    participants: str | None,
    summary: str,
    unit_id: int | None,
    now: datetime,
) -> SuggestionConsultation:
    """面商: recorded by a handling unit for itself, or by staff naming the unit."""
    suggestion = access.suggestion
    assert suggestion.id is not None
    if not access.relations & {Relation.staff, Relation.lead_unit, Relation.co_unit}:
        raise Forbidden()
    if suggestion.status not in CONSULTABLE:
        raise InvalidTransition("交办后才能记录面商")
    handling = [suggestion.lead_unit_id, *await co_unit_ids(session, suggestion.id)]
    if Relation.staff in access.relations:
        if unit_id is None or unit_id not in handling:
            raise ValidationFailed(
                "请选择办理该建议的单位", errors=_field_error("body.unit_id", "not a handling unit")
            )
    else:
        if unit_id is not None and unit_id != access.principal.unit_id:
            raise Forbidden("只能记录本单位的面商")
        unit_id = access.principal.unit_id
    assert unit_id is not None
    consultation = SuggestionConsultation(
        suggestion_id=suggestion.id,
        unit_id=unit_id,
        held_at=held_at,
        place=place,
        participants=participants,
        summary=summary,
        recorded_by_id=access.principal.user_id,
        created_at=now,
    )
    session.add(consultation)
    _event(
        session,
        suggestion,
        SuggestionAction.consult,
        access.principal,
        None,
        None,
        note=summary,
        data={"unit_id": unit_id},
        now=now,
    )
    await session.flush()
    return consultation


# ---------------------------------------------------------------------------------------
# News


async def _deputy_users(session: AsyncSession, suggestion: Suggestion) -> list[int]:
    co = select(SuggestionCoSigner.deputy_id).where(
        SuggestionCoSigner.suggestion_id == suggestion.id
    )
    rows = await session.execute(
        select(User.id)
        .where(
            or_(User.deputy_id == suggestion.deputy_id, col(User.deputy_id).in_(co)),
            col(User.is_active).is_(True),
        )
        .order_by(col(User.id))
    )
    return list(rows.scalars())


def _params(suggestion: Suggestion, note: str, now: datetime) -> dict[str, Any]:
    return {
        "suggestion_id": suggestion.id,
        "number": suggestion.number or "",
        "title": suggestion.title,
        "status_text": STATUS_TEXT[SuggestionStatus(suggestion.status)],
        "time": now.astimezone(SHANGHAI).isoformat(),
        "note": note,
    }


async def _tell_deputies(
    session: AsyncSession, suggestion: Suggestion, event: str, note: str, now: datetime
) -> None:
    params = _params(suggestion, note, now)
    messages = [
        notify_service.Message(
            recipient_id=user_id,
            event=event,
            dedupe_key=f"suggestion:{suggestion.id}:{event}:{suggestion.version}",
            title=f"代表建议{STATUS_TEXT[SuggestionStatus(suggestion.status)]}",
            body=f"「{suggestion.title}」{note}",
            page=SUGGESTION_PAGE.format(id=suggestion.id),
            params=params,
        )
        for user_id in await _deputy_users(session, suggestion)
    ]
    await notify_service.enqueue_many(session, messages)


async def _tell_units(
    session: AsyncSession,
    suggestion: Suggestion,
    unit_ids: list[int],
    event: str,
    note: str,
    now: datetime,
    round_key: str = "",
) -> None:
    params = _params(suggestion, note, now)
    messages = [
        notify_service.Message(
            recipient_id=user_id,
            event=event,
            dedupe_key=f"suggestion:{suggestion.id}:{event}:{suggestion.rehandle_count}:{round_key}",
            title=f"代表建议{suggestion.number or ''}",
            body=f"「{suggestion.title}」{note}",
            page=SUGGESTION_PAGE.format(id=suggestion.id),
            params=params,
        )
        for user_id in await unit_handlers(session, unit_ids)
    ]
    await notify_service.enqueue_many(session, messages)


async def _tell_residents(
    session: AsyncSession, suggestion: Suggestion, actor: Principal, text: str, now: datetime
) -> None:
    cases = (
        (
            await session.execute(
                select(Case)
                .join(SuggestionCase, col(SuggestionCase.case_id) == Case.id)
                .where(SuggestionCase.suggestion_id == suggestion.id)
                .order_by(col(Case.id))
            )
        )
        .scalars()
        .all()
    )
    answer = text if len(text) <= 200 else text[:200] + "……"
    public = f"您反映的问题已纳入人大代表建议（{suggestion.number}），承办单位答复：{answer}"
    messages: list[notify_service.Message] = []
    for case in cases:
        assert case.id is not None
        await record_case_event(
            session,
            case,
            "suggestion_reply",
            actor,
            None,
            None,
            public_note=public,
            data={"suggestion_id": suggestion.id, "number": suggestion.number},
            now=now,
        )
        if case.owner_id is None:
            continue
        messages.append(
            notify_service.Message(
                recipient_id=case.owner_id,
                event="case.suggestion_replied",
                dedupe_key=f"case:{case.id}:suggestion:{suggestion.id}:{suggestion.rehandle_count}",
                title="您反映的问题已纳入代表建议并获答复",
                body=f"{case.number}「{case.title}」：{answer}",
                page=CASE_PAGE.format(id=case.id),
                params={
                    "case_id": case.id,
                    "number": case.number,
                    "title": case.title,
                    "status_text": "已答复",
                    "time": now.astimezone(SHANGHAI).isoformat(),
                    "note": "已纳入代表建议并获答复",
                    "reply": answer,
                },
            )
        )
    # Every resident's message in one statement, however many cases the suggestion carries.
    await notify_service.enqueue_many(session, messages)
    await session.flush()


# ---------------------------------------------------------------------------------------
# Reading


async def case_refs(session: AsyncSession, suggestion_id: int) -> list[Case]:
    rows = await session.execute(
        select(Case)
        .join(SuggestionCase, col(SuggestionCase.case_id) == Case.id)
        .where(SuggestionCase.suggestion_id == suggestion_id)
        .order_by(col(Case.id))
    )
    return list(rows.scalars())


async def case_counts(session: AsyncSession, ids: Sequence[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = await session.execute(
        select(SuggestionCase.suggestion_id, func.count())
        .where(col(SuggestionCase.suggestion_id).in_(list(ids)))
        .group_by(SuggestionCase.suggestion_id)
    )
    return {int(i): int(n) for i, n in rows.all()}


def masked_title(case: Case) -> str:
    return mask_text(case.title) or ""
