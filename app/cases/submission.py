"""Submitting a case: the content-check verdict, the per-account rate limit counted from the
cases themselves, the suggested unit from the routing rules, the case number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.activities import service as activity_service
from app.attachments import service as attachment_service
from app.cases.models import (
    Case,
    CaseAction,
    CaseCategory,
    CaseChannel,
    CaseEvent,
    CaseStatus,
    ContentFlag,
    RoutingRule,
)
from app.cases.notifications import notify_resident
from app.cases.timeline import record_event
from app.core.clock import SHANGHAI, utcnow
from app.core.config import Settings
from app.core.errors import AppError, Forbidden, RateLimited, ValidationFailed
from app.core.security import Principal, Role
from app.identity.models import Deputy, User
from app.org.models import Region, Station


class ContentRejected(AppError):
    status, code, detail = 422, "content_rejected", "内容含有不适宜发布的信息，请修改后再提交"


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
    *,
    channel: CaseChannel | None = None,
) -> Submitted:
    """Register a case (`registered`) with its timeline entry, its attachments linked, the
    reception it came from marked, and the resident's notification, in one transaction.

    Every reference and the rate limit are checked in one round trip (this is the hot path
    of the service)."""
    now = utcnow()
    channel, owner_id = _channel_and_owner(principal, body, channel)
    contact_name, contact_phone = body.contact_name, body.contact_phone
    # An integrator's system may pass on an anonymous report (Open311 makes contact optional).
    if principal.is_staff and not principal.is_api_key and not (contact_name or contact_phone):
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
    if body.activity_id is not None:
        await activity_service.check_case_source(session, principal, body.activity_id, now)

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
        activity_id=body.activity_id,
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
    event = await record_event(
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
    await notify_resident(session, case, CaseStatus.registered, note="您反映的问题已登记", now=now)
    await session.flush()
    return Submitted(case, event, str(category_name))


def _channel_and_owner(
    principal: Principal, body: Any, given: CaseChannel | None = None
) -> tuple[CaseChannel, int | None]:
    if principal.is_api_key:
        # An integrator's key: `api`, or `open311` when the Open311 endpoint submits.
        channel = given or CaseChannel.api
        if body.channel is not None and body.channel != channel:
            raise ValidationFailed("接入系统提交的渠道由系统确定", code="invalid_channel")
        return channel, None
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
