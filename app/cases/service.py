"""The rules of cases: submission, the workflow moves, scoping, the sweeps.

Services only `flush()`: the request's session commits the move, its timeline entry and its
notifications together. Every status change goes through `transition`, which asks
`flows.decide` and settles races with a conditional UPDATE on (status, version).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from app.attachments import service as attachment_service
from app.cases.flows import (
    RESIDENT_EVENTS,
    STATUS_TEXT,
    Decision,
    Relation,
    decide,
)
from app.cases.models import (
    OPEN_STATUSES,
    Case,
    CaseAction,
    CaseCategory,
    CaseChannel,
    CaseCoUnit,
    CaseEvent,
    CaseFollow,
    CaseStatus,
    ContentFlag,
    Resolution,
    RoutingRule,
    Satisfaction,
)
from app.cases.workdays import add_workdays
from app.core.clock import SHANGHAI, utcnow
from app.core.config import Settings
from app.core.errors import (
    AppError,
    Forbidden,
    InvalidTransition,
    NotFound,
    RateLimited,
    ValidationFailed,
    VersionConflict,
)
from app.core.masking import mask_name, mask_phone
from app.core.security import Principal, Role
from app.identity.models import Deputy, User
from app.notify import service as notify_service
from app.org.models import Region, Station, Unit

CASE_PAGE = "pages/case/detail?id={id}"


class ContentRejected(AppError):
    status, code, detail = 422, "content_rejected", "内容含有不适宜发布的信息，请修改后再提交"


class UnknownReference(ValidationFailed):
    code = "validation_error"


# ---------------------------------------------------------------------------------------
# Who the caller is to a case


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


def in_scope(staff_path: str | None, region_path: str) -> bool:
    return staff_path is not None and region_path.startswith(staff_path)


async def load_access(session: AsyncSession, principal: Principal, case_id: int) -> CaseAccess:
    row = (
        await session.execute(
            select(Case, Region.path)
            .join(Region, Region.id == Case.region_id)
            .where(Case.id == case_id)  # type: ignore[arg-type]
        )
    ).first()
    if row is None:
        raise NotFound("未找到该件", code="not_found")
    case, region_path = row
    access = CaseAccess(case=case, region_path=region_path, principal=principal)
    await _resolve_relations(session, access)
    if not access.visible:
        raise NotFound("未找到该件", code="not_found")
    return access


async def _resolve_relations(session: AsyncSession, access: CaseAccess) -> None:
    case, principal = access.case, access.principal
    if principal.is_staff:
        access.staff_path = await staff_region_path(session, principal)
        if in_scope(access.staff_path, access.region_path):
            access.relations.add(Relation.staff)
            if case.owner_id is None:
                access.relations.add(Relation.staff_for_ownerless)
            access.visible = True
        return
    if principal.role is Role.unit:
        if principal.unit_id is not None and principal.unit_id == case.lead_unit_id:
            access.relations.add(Relation.lead_unit)
            access.visible = True
        elif principal.unit_id is not None:
            co = await session.execute(
                select(CaseCoUnit.id).where(
                    CaseCoUnit.case_id == case.id, CaseCoUnit.unit_id == principal.unit_id
                )
            )
            access.is_co_unit = co.first() is not None
            access.visible = access.is_co_unit
        return
    if case.owner_id == principal.user_id:
        access.relations.add(Relation.owner)
        access.visible = True
    follow = await session.execute(
        select(CaseFollow.id).where(
            CaseFollow.case_id == case.id, CaseFollow.user_id == principal.user_id
        )
    )
    access.is_follower = follow.first() is not None
    if access.is_follower:
        access.visible = True
    if principal.role is Role.deputy and (
        case.submitter_id == principal.user_id
        or (principal.deputy_id is not None and case.deputy_id == principal.deputy_id)
    ):
        access.visible = True


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


def scope_filter(principal: Principal, staff_path: str | None) -> ColumnElement[bool]:
    """The cases a caller may list."""
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


# ---------------------------------------------------------------------------------------
# Reading


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


# ---------------------------------------------------------------------------------------
# Submission


@dataclass(slots=True)
class Verdict:
    """What the content check said: None (passed), or a ContentFlag."""

    flag: ContentFlag | None


def _rate_counts(principal: Principal, now: datetime) -> tuple[Any, Any]:
    """Scalar subqueries: the caller's submissions in the last day and the last hour."""
    day = (
        select(func.count())
        .select_from(Case)
        .where(
            Case.submitter_id == principal.user_id, col(Case.created_at) > now - timedelta(days=1)
        )
        .scalar_subquery()
    )
    hour = (
        select(func.count())
        .select_from(Case)
        .where(
            Case.submitter_id == principal.user_id, col(Case.created_at) > now - timedelta(hours=1)
        )
        .scalar_subquery()
    )
    return day, hour


async def check_rate_limit(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    now: datetime,
    counts: tuple[int, int] | None = None,
) -> None:
    """Submissions per account per hour and per day, counted from the cases themselves, so
    every replica sees the same count. Staff registering calls are not limited."""
    if principal.is_staff:
        return
    if counts is None:
        day_q, hour_q = _rate_counts(principal, now)
        row = (await session.execute(select(day_q, hour_q))).one()
        counts = (int(row[0]), int(row[1]))
    in_day, in_hour = counts
    window: timedelta | None = None
    limit = 0
    since = now
    if in_hour >= settings.case_submit_per_hour:
        window, limit, since = (
            timedelta(hours=1),
            settings.case_submit_per_hour,
            now - timedelta(hours=1),
        )
    if in_day >= settings.case_submit_per_day:
        window, limit, since = (
            timedelta(days=1),
            settings.case_submit_per_day,
            now - timedelta(days=1),
        )
    if window is None:
        return
    # The submission that leaves the window first frees a slot.
    oldest = (
        await session.execute(
            select(Case.created_at)
            .where(Case.submitter_id == principal.user_id, col(Case.created_at) > since)
            .order_by(col(Case.created_at).desc())
            .offset(limit - 1)
            .limit(1)
        )
    ).scalar_one()
    retry_after = max(1, math.ceil((oldest + window - now).total_seconds()))
    raise RateLimited(
        "提交过于频繁，请稍后再试",
        headers={"Retry-After": str(retry_after)},
        retry_after=retry_after,
    )


def _suggestion_query(category_id: Any, region_path: Any) -> Any:
    """The unit of the routing rule of the deepest region on the case's path."""
    return (
        select(RoutingRule.unit_id)
        .join(Region, col(Region.id) == RoutingRule.region_id)
        .where(RoutingRule.category_id == category_id, region_path.like(Region.path + "%"))
        .order_by(func.length(Region.path).desc())
        .limit(1)
        .scalar_subquery()
    )


async def suggest_unit(session: AsyncSession, category_id: int, region_path: str) -> int | None:
    """The routing rule of the deepest region on the case's path for its category."""
    query = _suggestion_query(category_id, literal(region_path))
    return (await session.execute(select(query))).scalar_one_or_none()  # type: ignore[no-any-return]


def case_number(case_id: int, created_at: datetime) -> str:
    """ "20261122-0007": the Shanghai date and the id, unique without any counter to lock."""
    return f"{created_at.astimezone(SHANGHAI):%Y%m%d}-{case_id:04d}"


@dataclass(slots=True)
class Submitted:
    case: Case
    event: CaseEvent
    category_name: str


async def submit_case(
    session: AsyncSession,
    principal: Principal,
    body: Any,
    verdict: Verdict,
    settings: Settings,
) -> Submitted:
    """Register a case (`registered`) with its timeline entry, its attachments linked, the
    reception it came from marked, and the resident's notification, in one transaction.

    Every reference and the rate limit are checked in one round trip (this is the hot path
    of the service)."""
    now = utcnow()
    channel, owner_id = _channel_and_owner(principal, body)
    contact_name, contact_phone = body.contact_name, body.contact_phone
    if principal.is_staff and not (contact_name or contact_phone):
        raise ValidationFailed("请填写来电或来访群众的姓名或电话", code="contact_required")
    deputy_id = body.deputy_id
    if body.deputy_scene:
        from app.cases.deputy_codes import parse_deputy_scene

        scene_deputy = parse_deputy_scene(settings, body.deputy_scene)
        if scene_deputy is None or (deputy_id is not None and deputy_id != scene_deputy):
            raise ValidationFailed("代表二维码无效", code="invalid_qr")
        deputy_id = scene_deputy

    station_region = (
        select(Station.region_id)
        .where(Station.id == body.station_id, col(Station.is_active).is_(True))
        .scalar_subquery()
        if body.station_id is not None
        else literal(None)
    )
    region_id_expr = literal(body.region_id) if body.region_id is not None else station_region
    region_path = select(Region.path).where(Region.id == region_id_expr).scalar_subquery()
    category = (
        select(CaseCategory.name)
        .where(CaseCategory.id == body.category_id, col(CaseCategory.is_active).is_(True))
        .scalar_subquery()
    )
    deputy = (
        select(Deputy.id)
        .where(Deputy.id == deputy_id, col(Deputy.is_active).is_(True))
        .scalar_subquery()
        if deputy_id is not None
        else literal(None)
    )
    day_q, hour_q = _rate_counts(principal, now)
    lookup = select(
        category,
        station_region,
        region_path,
        deputy,
        _suggestion_query(body.category_id, region_path),
        day_q,
        hour_q,
    )
    if not principal.is_staff:
        # Lock the submitter's own row first, in its own statement (PostgreSQL reads the
        # counts below in a snapshot taken after the lock is granted): one account's
        # concurrent submissions are counted one after another and the limit holds exactly.
        # SQLite serializes writers anyway and ignores FOR UPDATE.
        await session.execute(select(User.id).where(User.id == principal.user_id).with_for_update())
    row = (await session.execute(lookup)).one()
    category_name, station_region_id, path, found_deputy, suggested, in_day, in_hour = row
    await check_rate_limit(session, principal, settings, now, (int(in_day), int(in_hour)))
    if category_name is None:
        raise ValidationFailed("问题类别不存在", code="unknown_category")
    if body.station_id is not None and station_region_id is None:
        raise ValidationFailed("联络站不存在", code="unknown_station")
    if path is None:
        raise ValidationFailed("所在区域不存在", code="unknown_region")
    if deputy_id is not None and found_deputy is None:
        raise ValidationFailed("代表不存在", code="unknown_deputy")

    case = Case(
        title=body.title.strip(),
        content=body.content.strip(),
        category_id=body.category_id,
        region_id=body.region_id if body.region_id is not None else station_region_id,
        station_id=body.station_id,
        latitude=body.latitude,
        longitude=body.longitude,
        address=body.address,
        attachment_ids=list(body.attachment_ids),
        status=CaseStatus.registered,
        channel=channel,
        submitter_id=principal.user_id,
        owner_id=owner_id,
        deputy_id=deputy_id,
        reception_id=body.reception_id,
        contact_name=contact_name,
        contact_phone=contact_phone,
        content_flag=verdict.flag.value if verdict.flag else None,
        suggested_unit_id=suggested,
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    await session.flush()
    assert case.id is not None
    case.number = case_number(case.id, now)

    if body.attachment_ids:
        await attachment_service.claim_attachments(
            session, body.attachment_ids, principal.user_id, "case", case.id
        )
    if body.reception_id is not None:
        await _attach_reception(session, principal, body.reception_id, case.id)

    internal = None
    if verdict.flag is ContentFlag.review:
        internal = "内容安全检测提示需人工复核"
    elif verdict.flag is ContentFlag.unchecked:
        internal = "内容安全检测暂不可用，需人工复核"
    event = await _record(
        session,
        case,
        CaseAction.register,
        principal,
        None,
        CaseStatus.registered,
        public_note="已登记，等待分办",
        internal_note=internal,
        data={"channel": channel.value},
        now=now,
    )
    await _notify_resident(session, case, CaseStatus.registered, note="您反映的问题已登记", now=now)
    await session.flush()
    return Submitted(case, event, str(category_name))


def _channel_and_owner(principal: Principal, body: Any) -> tuple[CaseChannel, int | None]:
    if principal.is_staff:
        channel = body.channel or CaseChannel.phone
        if channel not in (CaseChannel.phone, CaseChannel.counter):
            raise ValidationFailed("工作人员登记的渠道应为来电或来访", code="invalid_channel")
        return channel, None
    if body.channel is not None:
        raise ValidationFailed("渠道由系统确定", code="invalid_channel")
    if principal.role is Role.deputy:
        if body.reception_id is not None:
            return CaseChannel.reception, principal.user_id
        return CaseChannel.deputy, principal.user_id
    if body.reception_id is not None:
        raise Forbidden("只有代表可以从接待记录提交", code="forbidden")
    if principal.role is not Role.resident:
        raise Forbidden()
    return CaseChannel.miniprogram, principal.user_id


async def _attach_reception(
    session: AsyncSession, principal: Principal, reception_id: int, case_id: int
) -> None:
    from app.presence.models import Reception

    reception = await session.get(Reception, reception_id)
    if reception is None or (
        reception.deputy_id != principal.deputy_id
        and reception.created_by_user_id != principal.user_id
    ):
        raise ValidationFailed("接待记录不存在", code="unknown_reception")
    if reception.case_id is not None:
        raise ValidationFailed("该接待记录已转为意见建议", code="reception_already_used")
    from app.presence import service as presence_service

    # Conditional on the reception having no case yet: a concurrent second use fails there.
    await presence_service.attach_case(session, reception_id, case_id)


# ---------------------------------------------------------------------------------------
# Timeline and notifications


async def _record(
    session: AsyncSession,
    case: Case,
    action: CaseAction | str,
    actor: Principal | None,
    from_status: CaseStatus | None,
    to_status: CaseStatus | None,
    *,
    public_note: str | None = None,
    internal_note: str | None = None,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> CaseEvent:
    assert case.id is not None
    event = CaseEvent(
        case_id=case.id,
        action=str(action),
        from_status=from_status.value if from_status else None,
        to_status=to_status.value if to_status else None,
        actor_id=actor.user_id if actor else None,
        actor_role=actor.role.value if actor else "system",
        round=case.reopen_count,
        public_note=public_note,
        internal_note=internal_note,
        data=data or {},
        created_at=now or utcnow(),
    )
    session.add(event)
    return event


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


async def _followers(session: AsyncSession, case_id: int) -> list[int]:
    rows = await session.execute(select(CaseFollow.user_id).where(CaseFollow.case_id == case_id))
    return list(rows.scalars())


async def _notify_resident(
    session: AsyncSession,
    case: Case,
    status: CaseStatus,
    *,
    note: str | None = None,
    recipients: list[int] | None = None,
    now: datetime | None = None,
) -> None:
    """Tell the owner and followers about a resident-facing step, once per round."""
    assert case.id is not None
    now = now or utcnow()
    if recipients is None:
        recipients = [case.owner_id] if case.owner_id else []
        if status is not CaseStatus.registered:
            recipients += await _followers(session, case.id)
    text = STATUS_TEXT[status]
    for user_id in dict.fromkeys(recipients):
        await notify_service.enqueue(
            session,
            recipient_id=user_id,
            event=RESIDENT_EVENTS[status],
            dedupe_key=f"case:{case.id}:{status.value}:{case.reopen_count}",
            title=f"您关注的事项{text}",
            body=f"{case.number}「{case.title}」{text}" + (f"：{note}" if note else ""),
            page=CASE_PAGE.format(id=case.id),
            params=_params(case, status, note, now),
        )


async def _unit_handlers(session: AsyncSession, unit_ids: list[int]) -> list[int]:
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


async def _region_staff(session: AsyncSession, region_path: str) -> list[int]:
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


async def _notify_users(
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
    for user_id in dict.fromkeys(users):
        await notify_service.enqueue(
            session,
            recipient_id=user_id,
            event=event,
            dedupe_key=f"case:{case.id}:{dedupe}",
            title=title,
            body=body,
            page=CASE_PAGE.format(id=case.id),
            params=_params(case, CaseStatus(case.status), None, now),
        )


# ---------------------------------------------------------------------------------------
# The moves


async def transition(
    session: AsyncSession,
    access: CaseAccess | None,
    case: Case,
    action: CaseAction,
    *,
    to: CaseStatus | None = None,
    expected_version: int | None = None,
    values: dict[str, Any] | None = None,
    public_note: str | None = None,
    internal_note: str | None = None,
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> CaseStatus:
    """Apply one move of the table: check it, update the case conditionally on its status
    and version, write the timeline entry. Notifications are the caller's hook."""
    from app.cases.flows import TRANSITIONS

    now = now or utcnow()
    relations = access.relations if access is not None else {Relation.system}
    current = CaseStatus(case.status)
    decision = decide(current, action, relations)
    if decision is Decision.forbidden:
        raise Forbidden("没有权限对该件执行此操作", code="forbidden")
    if decision is Decision.invalid:
        raise InvalidTransition(
            f"该件当前状态为「{STATUS_TEXT[current]}」，不能执行此操作",
            status_name=current.value,
            action=action.value,
        )
    if expected_version is not None and expected_version != case.version:
        raise VersionConflict(current_version=case.version)
    rule = TRANSITIONS[(current, action)]
    target = to or rule.to
    assert target is not None
    changes = {**(values or {}), "status": target, "version": case.version + 1, "updated_at": now}
    result = await session.execute(
        update(Case)
        .where(Case.id == case.id, Case.status == current, Case.version == case.version)  # type: ignore[arg-type]
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        fresh = (
            await session.execute(
                select(Case.status, Case.version).where(Case.id == case.id)  # type: ignore[arg-type]
            )
        ).one()
        if fresh.status != current:
            raise InvalidTransition("该件状态已变化，请刷新后重试", status_name=fresh.status)
        raise VersionConflict(current_version=fresh.version)
    for key, value in changes.items():
        set_committed_value(case, key, value)
    actor = access.principal if access is not None else None
    await _record(
        session,
        case,
        action,
        actor,
        current,
        target,
        public_note=public_note,
        internal_note=internal_note,
        data=data,
        now=now,
    )
    return target


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
        return given, False, {"deadline": given.astimezone(SHANGHAI).isoformat()}
    at, fallback, days = await _default_deadline(session, case, settings, now)
    data: dict[str, Any] = {"deadline": at.isoformat(), "working_days": days}
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
    await _notify_resident(session, case, CaseStatus.handling, note=f"已交办{unit_name}", now=now)
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
    await _notify_users(
        session,
        await _unit_handlers(session, leads),
        case,
        event="case.assigned",
        dedupe=f"assigned:{stamp}",
        title="新交办事项",
        body=f"{case.number}「{case.title}」已交办贵单位主办，办理期限 {deadline}",
        now=now,
    )
    await _notify_users(
        session,
        await _unit_handlers(session, co),
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
    await _notify_resident(session, case, CaseStatus.rejected, note=note, now=now)
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
    movers = ([case.owner_id] if case.owner_id else []) + await _followers(session, case.id)
    already = set(await _followers(session, target.id)) | (
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
    await _record(
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
    await _notify_resident(
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
    await _notify_users(
        session,
        await _unit_handlers(session, units),
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
    await _notify_users(
        session,
        await _region_staff(session, access.region_path),
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
    await _notify_resident(session, case, CaseStatus.fed_back, note=public_answer, now=now)
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
        await _notify_resident(session, case, CaseStatus.resolved, note="感谢您的评价", now=now)
    else:
        await _notify_users(
            session,
            await _region_staff(session, access.region_path),
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
    await _notify_resident(session, case, CaseStatus.handling, note="已重新办理", now=now)
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
    await _notify_resident(session, case, CaseStatus.resolved, note=note, now=now)
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
        data={k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items()},
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
    await _record(
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


# ---------------------------------------------------------------------------------------
# Similar cases


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


async def similar_cases(
    session: AsyncSession, access: CaseAccess, settings: Settings, limit: int = 20
) -> list[tuple[Case, float | None]]:
    """Open cases that may be the same problem: within the radius when both have
    coordinates, or of the same category in the same region. Staff scope applies."""
    case = access.case
    radius = settings.case_similar_radius_m
    conditions: list[ColumnElement[bool]] = [
        and_(Case.category_id == case.category_id, Case.region_id == case.region_id)
    ]
    if case.latitude is not None and case.longitude is not None:
        dlat = radius / 111_320.0
        dlng = radius / (111_320.0 * max(0.01, math.cos(math.radians(case.latitude))))
        conditions.append(
            and_(
                Case.latitude.between(case.latitude - dlat, case.latitude + dlat),  # type: ignore[union-attr]
                Case.longitude.between(case.longitude - dlng, case.longitude + dlng),  # type: ignore[union-attr]
            )
        )
    stmt: Select[Any] = (
        select(Case)
        .where(
            Case.id != case.id,
            Case.status.in_(OPEN_STATUSES),  # type: ignore[attr-defined]
            or_(*conditions),
            scope_filter(access.principal, access.staff_path),
        )
        .order_by(Case.id.desc())  # type: ignore[union-attr]
        .limit(200)
    )
    found: list[tuple[Case, float | None]] = []
    for other in (await session.execute(stmt)).scalars():
        dist = None
        if None not in (case.latitude, case.longitude, other.latitude, other.longitude):
            dist = distance_m(case.latitude, case.longitude, other.latitude, other.longitude)  # type: ignore[arg-type]
        same_kind = other.category_id == case.category_id and other.region_id == case.region_id
        if same_kind or (dist is not None and dist <= radius):
            found.append((other, dist))
    found.sort(key=lambda item: (item[1] is None, item[1] or 0.0, -(item[0].id or 0)))
    return found[:limit]


# ---------------------------------------------------------------------------------------
# Sweeps (called by the worker)


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
        await _record(
            session,
            case,
            CaseAction.mark_overdue,
            None,
            None,
            None,
            internal_note="已超过办理期限",
            data={"deadline": case.deadline_at.isoformat() if case.deadline_at else None},
            now=now,
        )
        users = await _unit_handlers(session, [case.lead_unit_id] if case.lead_unit_id else [])
        users += await _region_staff(session, region_path)
        await _notify_users(
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
        await _record(
            session, case, "due_soon", None, None, None, internal_note="即将到期提醒", now=now
        )
        deadline = case.deadline_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")  # type: ignore[union-attr]
        users = await _unit_handlers(session, [case.lead_unit_id] if case.lead_unit_id else [])
        users += await _region_staff(session, region_path)
        await _notify_users(
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
        await _notify_resident(session, case, CaseStatus.resolved, note="系统自动办结", now=now)
    await session.flush()
    return resolved


__all__ = [
    "CaseAccess",
    "ContentRejected",
    "auto_resolve_unrated",
    "mark_overdue_cases",
    "mask_name",
    "mask_phone",
]
