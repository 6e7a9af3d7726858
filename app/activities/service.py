"""The rules of activities (代表活动).

Who manages an activity: staff whose region subtree holds it, and the leader (组长) of the
group that organises it. Deputies see the activities they are invited to, everyone sees the
public ones. Races are settled by the database: one attendance row per deputy and activity
(unique key, `INSERT … ON CONFLICT`), one sign-up per resident (unique key) and the capacity
by a conditional `UPDATE activity SET signed_up = signed_up + 1 WHERE signed_up < capacity`
in the same transaction as the sign-up row.

Functions other domains call: `effective_status(...)` and `deputy_attendance(...)` for the
duty archive; `send_due_reminders(session, now, settings)` is the worker's sweep.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.activities.codes import parse_scene, verify_scene
from app.activities.errors import (
    ActivityCancelled,
    ActivityEnded,
    ActivityFull,
    ActivityNotHeld,
    ActivityNotOpen,
    AlreadySignedUp,
    CapacityBelowSignups,
    NotInvited,
    NotSignedUp,
    SignupClosed,
)
from app.activities.models import (
    Activity,
    ActivityAttendance,
    ActivityInvitation,
    ActivitySignup,
    ActivityStatus,
    AttendanceCorrection,
    AttendanceSource,
    AttendanceStatus,
    LeaveStatus,
    RsvpAnswer,
)
from app.activities.schemas import (
    ACTIVITY_KINDS,
    ActivityCreate,
    ActivityDetail,
    ActivityPublic,
    ActivityUpdate,
    AttendanceCorrect,
    AttendancePublic,
    AttendanceSheet,
    CheckInResult,
    CorrectionPublic,
    Invite,
    MinutesBody,
    MyInvitation,
    RsvpBody,
    RsvpPublic,
    SignupPublic,
)
from app.attachments import service as attachment_service
from app.attachments.schemas import AttachmentPublic
from app.cases.models import Case
from app.core.clock import SHANGHAI, utcnow
from app.core.config import Settings
from app.core.db import dialect_insert
from app.core.errors import Forbidden, NotFound, ValidationFailed
from app.core.pagination import Page, PageParams, fetch_page
from app.core.security import Principal, Role
from app.core.times import api_time
from app.dashboard.exports import cell
from app.groups import service as group_service
from app.identity.models import Deputy, DeputyStation, User
from app.notify import service as notify_service
from app.org.models import Region, Station
from app.presence import service as presence_service
from app.presence.errors import InvalidQr, OutOfRange

OWNER_TYPE_MINUTES = "activity_minutes"
ACTIVITY_PAGE = "pages/activity/detail?id={activity_id}"
activity_t: sa.Table = Activity.__table__  # type: ignore[attr-defined]
attendance_t: sa.Table = ActivityAttendance.__table__  # type: ignore[attr-defined]
signup_t: sa.Table = ActivitySignup.__table__  # type: ignore[attr-defined]
invitation_t: sa.Table = ActivityInvitation.__table__  # type: ignore[attr-defined]


# Access ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class ActivityAccess:
    activity: Activity
    can_manage: bool
    invitation: ActivityInvitation | None
    signed_up: bool

    @property
    def visible(self) -> bool:
        return (
            self.can_manage
            or self.activity.is_public
            or self.invitation is not None
            or self.signed_up
        )


async def _staff_manages(session: AsyncSession, principal: Principal, region_id: int) -> bool:
    if not principal.is_staff:
        return False
    scope = await presence_service.staff_region_path(session, principal)
    if scope is None:
        return True
    path = (
        await session.execute(sa.select(Region.path).where(Region.id == region_id))  # type: ignore[arg-type]
    ).scalar_one_or_none()
    return path is not None and path.startswith(scope)


async def can_manage(
    session: AsyncSession, principal: Principal | None, activity: Activity
) -> bool:
    if principal is None:
        return False
    if principal.is_staff:
        return await _staff_manages(session, principal, activity.region_id)
    if principal.role == Role.deputy and principal.deputy_id and activity.group_id is not None:
        return await group_service.leader_of(session, activity.group_id, principal.deputy_id)
    return False


async def load_access(
    session: AsyncSession, activity_id: int, principal: Principal | None
) -> ActivityAccess:
    activity = await session.get(Activity, activity_id)
    if activity is None:
        raise NotFound("活动不存在")
    invitation = None
    signed_up = False
    if principal is not None and principal.deputy_id is not None:
        invitation = (
            await session.execute(
                sa.select(ActivityInvitation).where(
                    ActivityInvitation.activity_id == activity_id,  # type: ignore[arg-type]
                    ActivityInvitation.deputy_id == principal.deputy_id,  # type: ignore[arg-type]
                )
            )
        ).scalar_one_or_none()
    if principal is not None and principal.role == Role.resident:
        signed_up = (
            await session.execute(
                sa.select(ActivitySignup.id).where(
                    ActivitySignup.activity_id == activity_id,  # type: ignore[arg-type]
                    ActivitySignup.user_id == principal.user_id,  # type: ignore[arg-type]
                )
            )
        ).first() is not None
    access = ActivityAccess(
        activity, await can_manage(session, principal, activity), invitation, signed_up
    )
    if not access.visible:
        raise NotFound("活动不存在")
    return access


async def attachment_visible(
    session: AsyncSession, principal: Principal | None, owner_id: int
) -> bool:
    try:
        await load_access(session, owner_id, principal)
    except NotFound:
        return False
    return True


attachment_service.register_visibility(OWNER_TYPE_MINUTES, attachment_visible)


# Answers ----------------------------------------------------------------------------------------


def _public(activity: Activity, distance: float | None = None) -> dict[str, Any]:
    return {
        "id": activity.id,
        "kind": activity.kind,
        "kind_label": ACTIVITY_KINDS.get(activity.kind),
        "title": activity.title,
        "content": activity.content,
        "starts_at": activity.starts_at,
        "ends_at": activity.ends_at,
        "region_id": activity.region_id,
        "station_id": activity.station_id,
        "group_id": activity.group_id,
        "address": activity.address,
        "latitude": activity.latitude,
        "longitude": activity.longitude,
        "radius_m": activity.radius_m,
        "organiser": activity.organiser,
        "status": activity.status,
        "is_public": activity.is_public,
        "signup_enabled": activity.signup_enabled,
        "capacity": activity.capacity,
        "signup_deadline": activity.signup_deadline,
        "signed_up": activity.signed_up,
        "distance_m": None if distance is None else round(distance, 1),
        "has_minutes": activity.minutes is not None,
    }


def effective_status(
    attendance: AttendanceStatus | None,
    leave_status: LeaveStatus | None,
    *,
    ended: bool,
) -> AttendanceStatus | None:
    """What counts: the recorded attendance; else approved leave is excused, and once the
    activity is over an invitee with nothing recorded was absent without leave."""
    if attendance is not None:
        return AttendanceStatus(attendance)
    if leave_status == LeaveStatus.approved:
        return AttendanceStatus.excused
    return AttendanceStatus.absent if ended else None


async def _attendance_of(
    session: AsyncSession, activity_id: int, deputy_id: int
) -> ActivityAttendance | None:
    return (
        await session.execute(
            sa.select(ActivityAttendance).where(
                ActivityAttendance.activity_id == activity_id,  # type: ignore[arg-type]
                ActivityAttendance.deputy_id == deputy_id,  # type: ignore[arg-type]
            )
        )
    ).scalar_one_or_none()


async def detail(
    session: AsyncSession, access: ActivityAccess, now: datetime | None = None
) -> ActivityDetail:
    now = now or utcnow()
    activity = access.activity
    assert activity.id is not None
    data = _public(activity)
    extra: dict[str, Any] = {
        "qr_mode": activity.qr_mode,
        "can_manage": access.can_manage,
        "signed_up_by_me": access.signed_up,
    }
    if access.invitation is not None:
        inv = access.invitation
        att = await _attendance_of(session, activity.id, inv.deputy_id)
        extra["my_invitation"] = MyInvitation(
            answer=inv.answer,
            reason=inv.reason,
            leave_status=inv.leave_status,
            attendance=effective_status(
                att.status if att else None, inv.leave_status, ended=activity.ends_at <= now
            ),
        )
    if access.can_manage:
        counts = (
            await session.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.count().filter(ActivityInvitation.answer == RsvpAnswer.yes.value),  # type: ignore[arg-type]
                    sa.func.count().filter(
                        ActivityInvitation.leave_status == LeaveStatus.pending.value  # type: ignore[arg-type]
                    ),
                ).where(ActivityInvitation.activity_id == activity.id)  # type: ignore[arg-type]
            )
        ).one()
        extra.update(
            invited=counts[0],
            answered_yes=counts[1],
            leave_requests=counts[2],
            case_ids=await case_ids_of(session, activity.id),
        )
    if activity.minutes is not None:
        photos = (
            await attachment_service.attachments_of(session, OWNER_TYPE_MINUTES, [activity.id])
        )[activity.id]
        extra.update(
            minutes=activity.minutes,
            minutes_at=activity.minutes_at,
            minutes_photos=[AttachmentPublic.of(p) for p in photos],
        )
    return ActivityDetail(**data, **extra)


# Listing -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class ActivityFilter:
    year: int | None = None
    kind: str | None = None
    group_id: int | None = None
    station_id: int | None = None
    upcoming: bool = False
    mine: bool = False
    latitude: float | None = None
    longitude: float | None = None


def _local_year_bounds(year: int) -> tuple[datetime, datetime]:
    start = datetime(year, 1, 1, tzinfo=SHANGHAI)
    return start, datetime(year + 1, 1, 1, tzinfo=SHANGHAI)


async def _visible_condition(session: AsyncSession, principal: Principal | None, mine: bool) -> Any:
    public = Activity.is_public.is_(True)  # type: ignore[attr-defined]
    if principal is None:
        return public
    if principal.is_staff:
        scope = await presence_service.staff_region_path(session, principal)
        if scope is None:
            return sa.true()
        return Activity.region_id.in_(  # type: ignore[attr-defined]
            sa.select(Region.id).where(Region.path.startswith(scope))  # type: ignore[attr-defined]
        )
    if principal.role == Role.deputy and principal.deputy_id is not None:
        invited = Activity.id.in_(  # type: ignore[union-attr]
            sa.select(ActivityInvitation.activity_id).where(
                ActivityInvitation.deputy_id == principal.deputy_id  # type: ignore[arg-type]
            )
        )
        led = Activity.group_id.in_(  # type: ignore[union-attr]
            sa.select(group_service.DeputyGroupMember.group_id).where(
                group_service.DeputyGroupMember.deputy_id == principal.deputy_id,  # type: ignore[arg-type]
                group_service.DeputyGroupMember.role == group_service.GroupRole.leader.value,  # type: ignore[arg-type]
            )
        )
        return sa.or_(invited, led) if mine else sa.or_(public, invited, led)
    if principal.role == Role.resident:
        signed = Activity.id.in_(  # type: ignore[union-attr]
            sa.select(ActivitySignup.activity_id).where(ActivitySignup.user_id == principal.user_id)  # type: ignore[arg-type]
        )
        return signed if mine else public
    return public


def _bounding_box(latitude: float, longitude: float, km: float) -> Any:
    dlat = km / 111.0
    dlng = km / (111.0 * max(0.01, math.cos(math.radians(latitude))))
    return sa.and_(
        Activity.latitude.between(latitude - dlat, latitude + dlat),  # type: ignore[union-attr]
        Activity.longitude.between(longitude - dlng, longitude + dlng),  # type: ignore[union-attr]
    )


def _list_statement(condition: Any, f: ActivityFilter, now: datetime, settings: Settings) -> Any:
    stmt = sa.select(Activity).where(condition)
    if f.year is not None:
        start, end = _local_year_bounds(f.year)
        stmt = stmt.where(Activity.starts_at >= start, Activity.starts_at < end)  # type: ignore[arg-type,operator]
    if f.kind is not None:
        stmt = stmt.where(Activity.kind == f.kind)  # type: ignore[arg-type]
    if f.group_id is not None:
        stmt = stmt.where(Activity.group_id == f.group_id)  # type: ignore[arg-type]
    if f.station_id is not None:
        stmt = stmt.where(Activity.station_id == f.station_id)  # type: ignore[arg-type]
    if f.upcoming:
        stmt = stmt.where(
            Activity.ends_at >= now,  # type: ignore[arg-type,operator]
            Activity.status == ActivityStatus.planned.value,  # type: ignore[arg-type]
        )
    if f.latitude is not None and f.longitude is not None:
        stmt = stmt.where(_bounding_box(f.latitude, f.longitude, settings.activity_nearby_km))
    return stmt.order_by(Activity.starts_at, Activity.id)  # type: ignore[arg-type]


async def list_activities(
    session: AsyncSession,
    principal: Principal | None,
    f: ActivityFilter,
    page: PageParams,
    settings: Settings,
) -> Page[ActivityPublic]:
    condition = await _visible_condition(session, principal, f.mine)
    rows, total = await fetch_page(session, _list_statement(condition, f, utcnow(), settings), page)
    items = []
    for (activity,) in rows:
        distance = None
        if f.latitude is not None and f.longitude is not None and activity.latitude is not None:
            distance = presence_service.distance_m(
                f.latitude, f.longitude, activity.latitude, activity.longitude
            )
        items.append(ActivityPublic(**_public(activity, distance)))
    return Page(items=items, total=total)


async def year_plan_rows(
    session: AsyncSession, principal: Principal, f: ActivityFilter, settings: Settings
) -> list[list[Any]]:
    """The year's plan (年度活动计划) as spreadsheet rows, with attendance counts."""
    condition = await _visible_condition(session, principal, False)
    activities = list(
        (
            await session.execute(
                _list_statement(condition, f, utcnow(), settings).limit(settings.export_max_rows)
            )
        ).scalars()
    )
    ids = [a.id for a in activities]
    counts = await _attendance_counts(session, ids, utcnow())
    places: dict[int, str] = {}
    station_ids = {a.station_id for a in activities if a.station_id}
    if station_ids:
        places = {
            int(k): v
            for k, v in await session.execute(
                sa.select(Station.id, Station.name).where(Station.id.in_(station_ids))
            )
        }
    rows: list[list[Any]] = []
    for n, a in enumerate(activities, 1):
        c = counts.get(a.id, {})  # type: ignore[arg-type]
        rows.append(
            [
                cell(v)
                for v in (
                    n,
                    ACTIVITY_KINDS.get(a.kind, a.kind),
                    a.title,
                    a.starts_at,
                    a.ends_at,
                    places.get(a.station_id, "") if a.station_id else (a.address or ""),  # type: ignore[arg-type]
                    a.organiser or "",
                    c.get("invited", 0),
                    c.get(AttendanceStatus.present.value, 0),
                    c.get(AttendanceStatus.excused.value, 0),
                    c.get(AttendanceStatus.absent.value, 0),
                    f"{a.signed_up}/{a.capacity}" if a.signup_enabled else "",
                    "已取消" if a.status == ActivityStatus.cancelled else "计划",
                )
            ]
        )
    return rows


YEAR_PLAN_HEADERS = [
    "序号", "类型", "主题", "开始时间", "结束时间", "地点", "组织单位",
    "邀请代表", "出席", "请假", "缺席", "报名/名额", "状态",
]  # fmt: skip


async def _attendance_counts(
    session: AsyncSession, activity_ids: Sequence[int | None], now: datetime
) -> dict[int, dict[str, int]]:
    ids = [i for i in activity_ids if i is not None]
    out: dict[int, dict[str, int]] = {i: {"invited": 0} for i in ids}
    if not ids:
        return out
    rows = await session.execute(
        sa.select(
            Activity.id,
            Activity.ends_at,
            ActivityInvitation.deputy_id,
            ActivityInvitation.leave_status,
            ActivityAttendance.status,
        )
        .select_from(Activity)
        .join(ActivityInvitation, ActivityInvitation.activity_id == Activity.id)  # type: ignore[arg-type]
        .outerjoin(
            ActivityAttendance,
            sa.and_(
                ActivityAttendance.activity_id == Activity.id,  # type: ignore[arg-type]
                ActivityAttendance.deputy_id == ActivityInvitation.deputy_id,  # type: ignore[arg-type]
            ),
        )
        .where(Activity.id.in_(ids))  # type: ignore[union-attr]
    )
    for activity_id, ends_at, _deputy, leave_status, status in rows:
        bucket = out[activity_id]
        bucket["invited"] += 1
        eff = effective_status(status, leave_status, ended=ends_at <= now)
        if eff is not None:
            bucket[eff.value] = bucket.get(eff.value, 0) + 1
    # Attendance of deputies who were not invited (added by staff) counts too.
    extra = await session.execute(
        sa.select(ActivityAttendance.activity_id, ActivityAttendance.status).where(
            ActivityAttendance.activity_id.in_(ids),  # type: ignore[attr-defined]
            ~sa.exists().where(
                ActivityInvitation.activity_id == ActivityAttendance.activity_id,  # type: ignore[arg-type]
                ActivityInvitation.deputy_id == ActivityAttendance.deputy_id,  # type: ignore[arg-type]
            ),
        )
    )
    for activity_id, status in extra:
        out[activity_id][status] = out[activity_id].get(status, 0) + 1
    return out


async def deputy_attendance(
    session: AsyncSession, deputy_id: int, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The deputy's activities starting in [since, until), as the duty archive shows them:
    invited or recorded, not cancelled, with what counts (present / excused / absent); an
    activity not over with nothing recorded yet is left out."""
    now = utcnow()
    rows = await session.execute(
        sa.select(
            Activity,
            ActivityInvitation.leave_status,
            ActivityAttendance.status,
            ActivityAttendance.source,
        )
        .outerjoin(
            ActivityInvitation,
            sa.and_(
                ActivityInvitation.activity_id == Activity.id,  # type: ignore[arg-type]
                ActivityInvitation.deputy_id == deputy_id,  # type: ignore[arg-type]
            ),
        )
        .outerjoin(
            ActivityAttendance,
            sa.and_(
                ActivityAttendance.activity_id == Activity.id,  # type: ignore[arg-type]
                ActivityAttendance.deputy_id == deputy_id,  # type: ignore[arg-type]
            ),
        )
        .where(
            sa.or_(
                col(ActivityInvitation.id).is_not(None), col(ActivityAttendance.id).is_not(None)
            ),
            Activity.status == ActivityStatus.planned.value,  # type: ignore[arg-type]
            col(Activity.starts_at) >= since,
            col(Activity.starts_at) < until,
        )
        .order_by(col(Activity.starts_at), col(Activity.id))
    )
    out = []
    for activity, leave_status, status, source in rows:
        eff = effective_status(status, leave_status, ended=activity.ends_at <= now)
        if eff is None:
            continue
        out.append(
            {
                "activity_id": activity.id,
                "kind": activity.kind,
                "kind_label": ACTIVITY_KINDS.get(activity.kind),
                "title": activity.title,
                "starts_at": activity.starts_at,
                "status": eff.value,
                "source": source,
            }
        )
    return out


async def attendance_counts(
    session: AsyncSession, deputy_ids: Sequence[int], since: datetime, until: datetime
) -> dict[int, tuple[int, int]]:
    """(attended, absent without leave) per deputy, over activities starting in [since, until),
    for the deputies' statistics. One query over invitations, one over uninvited records."""
    ids = list(deputy_ids)
    out: dict[int, tuple[int, int]] = {}
    if not ids:
        return out
    now = utcnow()
    window = sa.and_(
        Activity.status == ActivityStatus.planned.value,  # type: ignore[arg-type]
        col(Activity.starts_at) >= since,
        col(Activity.starts_at) < until,
    )
    invited = await session.execute(
        sa.select(
            ActivityInvitation.deputy_id,
            Activity.ends_at,
            ActivityInvitation.leave_status,
            ActivityAttendance.status,
        )
        .join(Activity, col(Activity.id) == ActivityInvitation.activity_id)
        .outerjoin(
            ActivityAttendance,
            sa.and_(
                ActivityAttendance.activity_id == ActivityInvitation.activity_id,  # type: ignore[arg-type]
                ActivityAttendance.deputy_id == ActivityInvitation.deputy_id,  # type: ignore[arg-type]
            ),
        )
        .where(col(ActivityInvitation.deputy_id).in_(ids), window)
    )
    uninvited = await session.execute(
        sa.select(
            ActivityAttendance.deputy_id, Activity.ends_at, sa.null(), ActivityAttendance.status
        )
        .join(Activity, col(Activity.id) == ActivityAttendance.activity_id)
        .where(
            col(ActivityAttendance.deputy_id).in_(ids),
            window,
            ~sa.exists().where(
                ActivityInvitation.activity_id == ActivityAttendance.activity_id,  # type: ignore[arg-type]
                ActivityInvitation.deputy_id == ActivityAttendance.deputy_id,  # type: ignore[arg-type]
            ),
        )
    )
    for deputy_id, ends_at, leave_status, status in [*invited, *uninvited]:
        eff = effective_status(status, leave_status, ended=ends_at <= now)
        present, absent = out.get(deputy_id, (0, 0))
        out[deputy_id] = (
            present + (eff is AttendanceStatus.present),
            absent + (eff is AttendanceStatus.absent),
        )
    return out


# Planning -----------------------------------------------------------------------------------------


async def _deputy_users(session: AsyncSession, deputy_ids: Iterable[int]) -> dict[int, int]:
    ids = list(set(deputy_ids))
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(User.deputy_id, User.id).where(
            User.deputy_id.in_(ids),  # type: ignore[union-attr]
            User.is_active.is_(True),  # type: ignore[attr-defined]
        )
    )
    return {int(d): int(u) for d, u in rows}


def _params(activity: Activity, place: str | None = None, **more: Any) -> dict[str, Any]:
    return {
        "activity_id": activity.id,
        "title": activity.title,
        "time": activity.starts_at.isoformat(),
        "place": place or activity.address or activity.organiser or "",
        **more,
    }


async def _notify_users(
    session: AsyncSession,
    user_ids: Iterable[int],
    activity: Activity,
    event: str,
    key: str,
    title: str,
    body: str,
    **params: Any,
) -> int:
    message_params = _params(activity, **params)
    messages = [
        notify_service.Message(
            recipient_id=user_id,
            event=event,
            dedupe_key=f"activity:{activity.id}:{key}",
            title=title,
            body=body,
            page=f"pages/activity/detail?id={activity.id}",
            params=message_params,
        )
        for user_id in sorted(set(user_ids))
    ]
    return len(await notify_service.enqueue_many(session, messages))


async def _resolve_invitees(session: AsyncSession, invite: Invite) -> set[int]:
    deputy_ids = set(invite.deputy_ids)
    if invite.group_ids:
        members = await group_service.member_ids(session, invite.group_ids)
        missing = [g for g in invite.group_ids if g not in members]
        if missing:
            raise ValidationFailed("代表小组不存在", code="unknown_group", group_ids=missing)
        for ids in members.values():
            deputy_ids.update(ids)
    if invite.station_ids:
        found = set(
            (
                await session.execute(
                    sa.select(Station.id).where(Station.id.in_(invite.station_ids))
                )
            ).scalars()  # type: ignore[union-attr]
        )
        missing = [s for s in invite.station_ids if s not in found]
        if missing:
            raise ValidationFailed("站点不存在", code="unknown_station", station_ids=missing)
        deputy_ids.update(
            (
                await session.execute(
                    sa.select(DeputyStation.deputy_id).where(
                        col(DeputyStation.station_id).in_(invite.station_ids)
                    )
                )
            ).scalars()
        )
    if invite.deputy_ids:
        found = set(
            (
                await session.execute(sa.select(Deputy.id).where(Deputy.id.in_(invite.deputy_ids)))
            ).scalars()  # type: ignore[union-attr]
        )
        missing = [d for d in invite.deputy_ids if d not in found]
        if missing:
            raise ValidationFailed("代表不存在", code="unknown_deputies", deputy_ids=missing)
    # Inactive deputies are not invited.
    if not deputy_ids:
        return set()
    return set(
        (
            await session.execute(
                sa.select(Deputy.id).where(Deputy.id.in_(deputy_ids), Deputy.is_active.is_(True))  # type: ignore[union-attr,attr-defined]
            )
        ).scalars()
    )


async def _leader_may_invite(session: AsyncSession, group_id: int, invite: Invite) -> None:
    """A group leader invites only their own group's members."""
    if invite.station_ids or any(g != group_id for g in invite.group_ids):
        raise Forbidden("代表小组组长只能邀请本小组代表")
    if invite.deputy_ids:
        members = set((await group_service.member_ids(session, [group_id])).get(group_id, []))
        if not set(invite.deputy_ids) <= members:
            raise Forbidden("代表小组组长只能邀请本小组代表")


async def _invite(session: AsyncSession, activity: Activity, invite: Invite) -> int:
    """Adds invitations (existing ones stay as they are) and tells the new invitees."""
    deputy_ids = await _resolve_invitees(session, invite)
    if not deputy_ids:
        return 0
    now = utcnow()
    inserted = (
        (
            await session.execute(
                dialect_insert(session, invitation_t)
                .values(
                    [
                        {
                            "activity_id": activity.id,
                            "deputy_id": d,
                            "answer": RsvpAnswer.pending.value,
                            "created_at": now,
                        }
                        for d in sorted(deputy_ids)
                    ]
                )
                .on_conflict_do_nothing(index_elements=["activity_id", "deputy_id"])
                .returning(invitation_t.c.deputy_id)
            )
        )
        .scalars()
        .all()
    )
    users = await _deputy_users(session, inserted)
    await _notify_users(
        session,
        users.values(),
        activity,
        "activity.invited",
        "invited",
        "活动邀请",
        f"邀请您参加「{activity.title}」，请回复是否参加",
    )
    return len(inserted)


async def _place(session: AsyncSession, body: ActivityCreate) -> tuple[int, dict[str, Any]]:
    """The region and the place columns, from the station or the given address."""
    if body.station_id is not None:
        station = await session.get(Station, body.station_id)
        if station is None or not station.is_active:
            raise ValidationFailed("站点不存在", code="unknown_station")
        return station.region_id, {
            "station_id": station.id,
            "address": body.address or station.address or station.name,
            "latitude": station.latitude,
            "longitude": station.longitude,
            "radius_m": station.radius_m,
        }
    assert body.region_id is not None
    if await session.get(Region, body.region_id) is None:
        raise ValidationFailed("区域不存在", code="unknown_region")
    return body.region_id, {
        "station_id": None,
        "address": body.address,
        "latitude": body.latitude,
        "longitude": body.longitude,
        "radius_m": body.radius_m,
    }


async def create_activity(
    session: AsyncSession, principal: Principal, body: ActivityCreate
) -> Activity:
    region_id, place = await _place(session, body)
    if body.group_id is not None:
        group = await session.get(group_service.DeputyGroup, body.group_id)
        if group is None:
            raise ValidationFailed("代表小组不存在", code="unknown_group")
    if principal.is_staff:
        if not await _staff_manages(session, principal, region_id):
            raise Forbidden("活动地点不在您的管辖范围内")
    elif principal.role == Role.deputy and principal.deputy_id is not None:
        if body.group_id is None or not await group_service.leader_of(
            session, body.group_id, principal.deputy_id
        ):
            raise Forbidden("只有工作人员或代表小组组长可以安排活动")
        await _leader_may_invite(session, body.group_id, body.invite)
    else:
        raise Forbidden()
    activity = Activity(
        kind=body.kind,
        title=body.title,
        content=body.content,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        region_id=region_id,
        group_id=body.group_id,
        organiser=body.organiser,
        is_public=body.is_public,
        signup_enabled=body.signup_enabled,
        capacity=body.capacity,
        signup_deadline=body.signup_deadline,
        qr_mode=body.qr_mode,
        created_by_user_id=principal.user_id,
        **place,
    )
    session.add(activity)
    await session.flush()
    await _invite(session, activity, body.invite)
    return activity


async def _audience(
    session: AsyncSession, activity: Activity, *, answered_yes_only: bool
) -> set[int]:
    """Users to tell about the activity: invited deputies (not those who declined or are on
    leave when `answered_yes_only`… or every invitee) and signed-up residents."""
    answers = [RsvpAnswer.yes.value, RsvpAnswer.pending.value] if answered_yes_only else None
    stmt = sa.select(ActivityInvitation.deputy_id).where(
        ActivityInvitation.activity_id == activity.id
    )  # type: ignore[arg-type]
    if answers is not None:
        stmt = stmt.where(ActivityInvitation.answer.in_(answers))  # type: ignore[attr-defined]
    deputies = (await session.execute(stmt)).scalars().all()
    users = set((await _deputy_users(session, deputies)).values())
    users.update(
        (
            await session.execute(
                sa.select(ActivitySignup.user_id).where(ActivitySignup.activity_id == activity.id)  # type: ignore[arg-type]
            )
        ).scalars()
    )
    return users


async def update_activity(
    session: AsyncSession, principal: Principal, access: ActivityAccess, body: ActivityUpdate
) -> Activity:
    activity = access.activity
    if not access.can_manage:
        raise Forbidden("只有工作人员或组织活动的代表小组组长可以修改活动")
    if activity.status == ActivityStatus.cancelled:
        raise ActivityCancelled()
    fields = body.model_dump(exclude_unset=True, exclude={"invite", "renew_code", "status"})
    starts_at = fields.get("starts_at") or activity.starts_at
    ends_at = fields.get("ends_at") or activity.ends_at
    if ends_at <= starts_at:
        raise ValidationFailed("结束时间必须晚于开始时间", code="invalid_times")
    deadline = fields.get("signup_deadline", activity.signup_deadline)
    if activity.signup_enabled and deadline is not None and deadline > starts_at:
        raise ValidationFailed("报名截止时间不能晚于活动开始", code="invalid_times")
    if "capacity" in fields and activity.signup_enabled and fields["capacity"] is None:
        raise ValidationFailed("报名活动必须有名额", code="invalid_capacity")
    if fields.get("is_public") is False and activity.signup_enabled:
        raise ValidationFailed("接受报名的活动须公开", code="signup_requires_public")
    if body.invite is not None and not principal.is_staff:
        assert activity.group_id is not None
        await _leader_may_invite(session, activity.group_id, body.invite)
    moved = starts_at != activity.starts_at
    values = {**fields, "updated_at": utcnow()}
    if moved:
        values["reminded_at"] = None
    if body.renew_code:
        values["qr_version"] = Activity.qr_version + 1
    conditions = [Activity.id == activity.id, Activity.status == ActivityStatus.planned.value]
    if "capacity" in fields and fields["capacity"] is not None:
        # Settled against concurrent sign-ups: never below what is already taken.
        conditions.append(Activity.signed_up <= fields["capacity"])  # type: ignore[arg-type,operator]
    if body.status == ActivityStatus.cancelled:
        values["status"] = ActivityStatus.cancelled.value
    result = await session.execute(
        sa.update(Activity)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)  # type: ignore[arg-type]
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        await session.refresh(activity)
        if activity.status == ActivityStatus.cancelled:
            raise ActivityCancelled()
        raise CapacityBelowSignups(signed_up=activity.signed_up)
    await session.refresh(activity)
    if body.invite is not None:
        await _invite(session, activity, body.invite)
    if body.status == ActivityStatus.cancelled:
        await _notify_users(
            session,
            await _audience(session, activity, answered_yes_only=False),
            activity,
            "activity.cancelled",
            "cancelled",
            "活动取消",
            f"「{activity.title}」已取消",
        )
    elif moved or "ends_at" in fields:
        stamp = int(activity.starts_at.timestamp())
        await _notify_users(
            session,
            await _audience(session, activity, answered_yes_only=True),
            activity,
            "activity.changed",
            f"changed:{stamp}:{int(activity.ends_at.timestamp())}",
            "活动时间调整",
            f"「{activity.title}」时间已调整，请留意",
        )
    return activity


# Invitations ----------------------------------------------------------------------------------------


def _not_over(activity: Activity, now: datetime) -> None:
    if activity.status == ActivityStatus.cancelled:
        raise ActivityCancelled()
    if activity.ends_at <= now:
        raise ActivityEnded()


async def rsvp(session: AsyncSession, access: ActivityAccess, body: RsvpBody) -> RsvpPublic:
    """The invited deputy answers yes or no, or asks for leave (请假) with a reason."""
    invitation = access.invitation
    if invitation is None:
        raise NotInvited()
    activity = access.activity
    now = utcnow()
    _not_over(activity, now)
    leave_status = LeaveStatus.pending if body.answer is RsvpAnswer.leave else None
    if (
        body.answer is RsvpAnswer.leave
        and invitation.answer == RsvpAnswer.leave
        and invitation.leave_status is not None
        and invitation.reason == body.reason
    ):
        leave_status = invitation.leave_status  # the same request again changes nothing
    invitation.answer = body.answer
    invitation.reason = body.reason if body.answer is not RsvpAnswer.yes else None
    invitation.leave_status = leave_status
    invitation.answered_at = now
    session.add(invitation)
    await session.flush()
    if leave_status is LeaveStatus.pending:
        deputy = await session.get(Deputy, invitation.deputy_id)
        await notify_service.enqueue(
            session,
            recipient_id=activity.created_by_user_id,
            event="activity.leave_requested",
            dedupe_key=f"activity:{activity.id}:leave:{invitation.deputy_id}:{int(now.timestamp())}",
            title="代表请假",
            body=f"{deputy.name if deputy else '代表'}申请不参加「{activity.title}」，请审批",
            page=f"pages/activity/detail?id={activity.id}",
            params=_params(activity, deputy_name=deputy.name if deputy else None),
        )
    return RsvpPublic(
        activity_id=activity.id,  # type: ignore[arg-type]
        deputy_id=invitation.deputy_id,
        answer=invitation.answer,
        reason=invitation.reason,
        leave_status=invitation.leave_status,
        answered_at=invitation.answered_at,
    )


# Attendance ----------------------------------------------------------------------------------------


async def check_in(
    session: AsyncSession,
    settings: Settings,
    access: ActivityAccess,
    *,
    deputy_id: int,
    scene_text: str,
    latitude: float,
    longitude: float,
    accuracy: float | None,
) -> CheckInResult:
    """A deputy scanned the activity's code on the spot (geofenced, idempotent)."""
    now = utcnow()
    activity = access.activity
    assert activity.id is not None
    scene = parse_scene(scene_text)
    if scene is None or not verify_scene(settings, scene, activity, now):
        raise InvalidQr("二维码无效或已过期，请重新扫描活动签到码")
    if activity.status == ActivityStatus.cancelled:
        raise ActivityCancelled()
    opens = activity.starts_at - timedelta(minutes=settings.activity_checkin_early_minutes)
    closes = activity.ends_at + timedelta(minutes=settings.activity_checkin_late_minutes)
    if not opens <= now <= closes:
        raise ActivityNotOpen(opens_at=api_time(opens), closes_at=api_time(closes))
    if access.invitation is None:
        raise NotInvited()
    distance: float | None = None
    if activity.latitude is not None and activity.longitude is not None:
        distance = presence_service.distance_m(
            latitude, longitude, activity.latitude, activity.longitude
        )
        allowance = min(accuracy or 0.0, float(settings.checkin_max_accuracy_m))
        if distance - allowance > activity.radius_m:
            raise OutOfRange(
                f"您距离活动地点约{round(distance)}米，超出签到范围（{activity.radius_m}米）",
                distance_m=round(distance, 1),
                radius_m=activity.radius_m,
                accuracy_allowed_m=round(allowance, 1),
            )
    scan = {
        "status": AttendanceStatus.present.value,
        "source": AttendanceSource.scan.value,
        "checked_in_at": now,
        "latitude": latitude,
        "longitude": longitude,
        "accuracy_m": accuracy,
        "distance_m": None if distance is None else round(distance, 1),
        "recorded_at": now,
    }
    inserted = (
        await session.execute(
            dialect_insert(session, attendance_t)
            .values(activity_id=activity.id, deputy_id=deputy_id, **scan)
            .on_conflict_do_nothing(index_elements=["activity_id", "deputy_id"])
            .returning(attendance_t.c.id)
        )
    ).first()
    repeat = inserted is None
    if repeat:
        # Staff recorded them absent or excused before they arrived: the scan counts.
        await session.execute(
            sa.update(attendance_t)
            .where(
                attendance_t.c.activity_id == activity.id,
                attendance_t.c.deputy_id == deputy_id,
                attendance_t.c.status != AttendanceStatus.present.value,
            )
            .values(**scan)
        )
    row = (
        await session.execute(
            sa.select(attendance_t).where(
                attendance_t.c.activity_id == activity.id, attendance_t.c.deputy_id == deputy_id
            )
        )
    ).one()
    return CheckInResult(
        activity_id=activity.id,
        title=activity.title,
        deputy_id=deputy_id,
        status=AttendanceStatus(row.status),
        checked_in_at=row.checked_in_at,
        distance_m=row.distance_m,
        repeat=repeat,
    )


async def attendance_sheet(session: AsyncSession, activity: Activity) -> AttendanceSheet:
    assert activity.id is not None
    ended = activity.ends_at <= utcnow()
    invitations = {
        i.deputy_id: i
        for i in (
            await session.execute(
                sa.select(ActivityInvitation).where(ActivityInvitation.activity_id == activity.id)  # type: ignore[arg-type]
            )
        ).scalars()
    }
    records = {
        a.deputy_id: a
        for a in (
            await session.execute(
                sa.select(ActivityAttendance).where(ActivityAttendance.activity_id == activity.id)  # type: ignore[arg-type]
            )
        ).scalars()
    }
    deputy_ids = set(invitations) | set(records)
    names: dict[int, str] = (
        {
            int(k): v
            for k, v in await session.execute(
                sa.select(Deputy.id, Deputy.name).where(Deputy.id.in_(deputy_ids))
            )
        }
        if deputy_ids
        else {}
    )
    items = []
    for deputy_id in sorted(deputy_ids):
        inv, att = invitations.get(deputy_id), records.get(deputy_id)
        items.append(
            AttendancePublic(
                deputy_id=deputy_id,
                deputy_name=names.get(deputy_id, ""),
                invited=inv is not None,
                answer=inv.answer if inv else None,
                leave_status=inv.leave_status if inv else None,
                leave_reason=inv.reason if inv and inv.answer == RsvpAnswer.leave else None,
                status=effective_status(
                    att.status if att else None, inv.leave_status if inv else None, ended=ended
                ),
                source=att.source if att else None,
                checked_in_at=att.checked_in_at if att else None,
                distance_m=att.distance_m if att else None,
            )
        )
    corrections = [
        CorrectionPublic(
            deputy_id=c.deputy_id,
            from_status=c.from_status,
            to_status=c.to_status,
            reason=c.reason,
            by_user_id=c.by_user_id,
            created_at=c.created_at,
        )
        for c in (
            await session.execute(
                sa.select(AttendanceCorrection)
                .where(AttendanceCorrection.activity_id == activity.id)  # type: ignore[arg-type]
                .order_by(AttendanceCorrection.id)  # type: ignore[arg-type]
            )
        ).scalars()
    ]
    count = {s: sum(1 for i in items if i.status == s) for s in AttendanceStatus}
    return AttendanceSheet(
        activity_id=activity.id,
        items=items,
        corrections=corrections,
        present=count[AttendanceStatus.present],
        excused=count[AttendanceStatus.excused],
        absent=count[AttendanceStatus.absent],
    )


async def correct_attendance(
    session: AsyncSession, principal: Principal, activity: Activity, body: AttendanceCorrect
) -> None:
    """Staff record or correct one deputy's attendance; the change and its reason stay in
    the activity's history. Deciding a pending leave request goes the same way."""
    assert activity.id is not None
    if activity.status == ActivityStatus.cancelled:
        raise ActivityCancelled()
    deputy = await session.get(Deputy, body.deputy_id)
    if deputy is None:
        raise ValidationFailed("代表不存在", code="unknown_deputies", deputy_ids=[body.deputy_id])
    now = utcnow()
    invitation = (
        await session.execute(
            sa.select(ActivityInvitation).where(
                ActivityInvitation.activity_id == activity.id,  # type: ignore[arg-type]
                ActivityInvitation.deputy_id == body.deputy_id,  # type: ignore[arg-type]
            )
        )
    ).scalar_one_or_none()
    before = await _attendance_of(session, activity.id, body.deputy_id)
    upsert = dialect_insert(session, attendance_t).values(
        activity_id=activity.id,
        deputy_id=body.deputy_id,
        status=body.status.value,
        source=AttendanceSource.staff.value,
        recorded_at=now,
    )
    await session.execute(
        upsert.on_conflict_do_update(
            index_elements=["activity_id", "deputy_id"],
            set_={
                "status": body.status.value,
                "source": AttendanceSource.staff.value,
                "recorded_at": now,
            },
        )
    )
    session.add(
        AttendanceCorrection(
            activity_id=activity.id,
            deputy_id=body.deputy_id,
            from_status=effective_status(
                before.status if before else None,
                invitation.leave_status if invitation else None,
                ended=activity.ends_at <= now,
            ),
            to_status=body.status,
            reason=body.reason,
            by_user_id=principal.user_id,
            created_at=now,
        )
    )
    if invitation is not None and invitation.leave_status == LeaveStatus.pending:
        decided = (
            LeaveStatus.approved
            if body.status is AttendanceStatus.excused
            else LeaveStatus.rejected
        )
        invitation.leave_status = decided
        session.add(invitation)
        users = await _deputy_users(session, [body.deputy_id])
        await _notify_users(
            session,
            users.values(),
            activity,
            "activity.leave_decided",
            f"leave:{body.deputy_id}:{decided.value}:{int(now.timestamp())}",
            "请假审批结果",
            f"您对「{activity.title}」的请假{'已批准' if decided is LeaveStatus.approved else '未获批准'}",
            status_text="已批准" if decided is LeaveStatus.approved else "未批准",
            note=body.reason,
        )
    await session.flush()


# Sign-ups -------------------------------------------------------------------------------------------


def _signup_open(activity: Activity, now: datetime) -> None:
    if activity.status == ActivityStatus.cancelled:
        raise ActivityCancelled()
    if (
        not activity.is_public
        or not activity.signup_enabled
        or activity.signup_deadline is None
        or activity.signup_deadline <= now
    ):
        raise SignupClosed()


async def sign_up(session: AsyncSession, activity: Activity, user_id: int) -> SignupPublic:
    """Exactly `capacity` sign-ups succeed however many arrive at once: the conditional
    UPDATE on the counter admits them one by one, and a refused one rolls back its row."""
    now = utcnow()
    _signup_open(activity, now)
    inserted = (
        await session.execute(
            dialect_insert(session, signup_t)
            .values(activity_id=activity.id, user_id=user_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["activity_id", "user_id"])
            .returning(signup_t.c.id)
        )
    ).first()
    if inserted is None:
        raise AlreadySignedUp()
    counted = (
        await session.execute(
            sa.update(activity_t)
            .where(
                activity_t.c.id == activity.id,
                activity_t.c.status == ActivityStatus.planned.value,
                activity_t.c.signup_deadline > now,
                activity_t.c.signed_up < activity_t.c.capacity,
            )
            .values(signed_up=activity_t.c.signed_up + 1)
            .returning(activity_t.c.signed_up, activity_t.c.capacity)
        )
    ).first()
    if counted is None:
        raise ActivityFull(capacity=activity.capacity)
    return SignupPublic(
        activity_id=activity.id,  # type: ignore[arg-type]
        signed_up=counted.signed_up,
        capacity=counted.capacity,
        created_at=now,
    )


async def cancel_signup(session: AsyncSession, activity: Activity, user_id: int) -> None:
    now = utcnow()
    _signup_open(activity, now)
    deleted = (
        await session.execute(
            sa.delete(signup_t)
            .where(signup_t.c.activity_id == activity.id, signup_t.c.user_id == user_id)
            .returning(signup_t.c.id)
        )
    ).first()
    if deleted is None:
        raise NotSignedUp()
    await session.execute(
        sa.update(activity_t)
        .where(activity_t.c.id == activity.id)
        .values(signed_up=activity_t.c.signed_up - 1)
    )


# Cases raised at an activity --------------------------------------------------------------------


async def check_case_source(
    session: AsyncSession, principal: Principal, activity_id: int, now: datetime
) -> None:
    """A case may name the activity where it was raised when its submitter may see the
    activity and the activity has begun (or is about to: the check-in window)."""
    try:
        access = await load_access(session, activity_id, principal)
    except NotFound as exc:
        raise ValidationFailed("活动不存在", code="unknown_activity") from exc
    activity = access.activity
    if activity.status == ActivityStatus.cancelled:
        raise ActivityCancelled()
    if activity.starts_at - timedelta(hours=1) > now:
        raise ActivityNotHeld("活动开始后才能关联在活动中反映的问题")


async def case_ids_of(session: AsyncSession, activity_id: int) -> list[int]:
    rows = await session.execute(
        sa.select(Case.id).where(col(Case.activity_id) == activity_id).order_by(col(Case.id))
    )
    return [int(i) for i in rows.scalars()]


# Minutes ---------------------------------------------------------------------------------------------


async def set_minutes(
    session: AsyncSession, principal: Principal, activity: Activity, body: MinutesBody
) -> None:
    """活动纪要 with photos. Photos already on the minutes may be sent again; those left out
    are unlinked (and purged with other unlinked uploads)."""
    assert activity.id is not None
    now = utcnow()
    if activity.status == ActivityStatus.cancelled:
        raise ActivityCancelled()
    if activity.starts_at > now:
        raise ActivityNotHeld()
    current = {
        a.id
        for a in (
            await attachment_service.attachments_of(session, OWNER_TYPE_MINUTES, [activity.id])
        )[activity.id]
    }
    wanted = list(dict.fromkeys(body.attachment_ids))
    await attachment_service.claim_attachments(
        session,
        [i for i in wanted if i not in current],
        principal.user_id,
        OWNER_TYPE_MINUTES,
        activity.id,
    )
    dropped = current - set(wanted)
    if dropped:
        from app.attachments.models import Attachment

        await session.execute(
            sa.update(Attachment)
            .where(Attachment.id.in_(dropped))  # type: ignore[union-attr]
            .values(owner_type=None, owner_id=None, linked_at=None)
        )
    activity.minutes = body.minutes
    activity.minutes_at = now
    activity.updated_at = now
    session.add(activity)
    await session.flush()


# Reminders --------------------------------------------------------------------------------------------

REMINDER_BATCH = 100


async def send_due_reminders(session: AsyncSession, now: datetime, settings: Settings) -> int:
    """The sweep: activities starting within ACTIVITY_REMINDER_HOURS remind their signed-up
    residents and the deputies who have not declined, once (the conditional UPDATE of
    `reminded_at` and the outbox's unique key both hold it to once)."""
    horizon = now + timedelta(hours=settings.activity_reminder_hours)
    due = (
        (
            await session.execute(
                sa.select(Activity)
                .where(
                    Activity.status == ActivityStatus.planned.value,  # type: ignore[arg-type]
                    Activity.reminded_at.is_(None),  # type: ignore[union-attr]
                    Activity.starts_at > now,  # type: ignore[arg-type,operator]
                    Activity.starts_at <= horizon,  # type: ignore[arg-type,operator]
                )
                .order_by(Activity.starts_at)  # type: ignore[arg-type]
                .limit(REMINDER_BATCH)
            )
        )
        .scalars()
        .all()
    )
    sent = 0
    for activity in due:
        taken = await session.execute(
            sa.update(activity_t)
            .where(activity_t.c.id == activity.id, activity_t.c.reminded_at.is_(None))
            .values(reminded_at=now)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            continue
        local = activity.starts_at.astimezone(SHANGHAI).strftime("%m月%d日 %H:%M")
        sent += await _notify_users(
            session,
            await _audience(session, activity, answered_yes_only=True),
            activity,
            "activity.reminder",
            f"reminder:{int(activity.starts_at.timestamp())}",
            "活动提醒",
            f"「{activity.title}」将于{local}开始",
        )
    return sent
