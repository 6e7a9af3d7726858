"""The rules of presence: check-ins (进站签到), duty rosters (排班), receptions (接待).

Services only flush; the request's session commits. The check-in path is the hot one (a
whole station's deputies scan at once), so it is written in SQLAlchemy Core: one SELECT
that loads the station together with the deputy's open check-in, then one INSERT or UPDATE
with RETURNING. Simultaneous scans are settled by the partial unique index on open
check-ins (`INSERT ... ON CONFLICT DO NOTHING` on both SQLite and PostgreSQL).

Functions other domains call:
- `on_duty_now(session, station_id)` and `upcoming_slots_for_deputy(session, deputy_id)`
  for the public station and deputy views;
- `close_stale_checkins(session, now)` for the worker's sweeps;
- `attach_case(session, reception_id, case_id)` when a reception becomes a case.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.core.clock import SHANGHAI, utcnow
from app.core.config import Settings, get_settings
from app.core.db import UTCDateTime
from app.core.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from app.core.masking import mask_name, mask_phone
from app.core.pagination import Page, PageParams, fetch_page
from app.core.security import Principal, Role
from app.identity.models import Deputy, DeputyStation
from app.org.models import Region, Station
from app.presence.errors import CaseAlreadyAttached, InvalidQr, NotCheckedIn, OutOfRange
from app.presence.models import CheckIn, CloseReason, DutyAssignment, DutySlot, Reception
from app.presence.scene import parse_scene, verify_scene
from app.presence.schemas import (
    CheckInAction,
    CheckInPublic,
    DeputyBrief,
    DeputyDutySlot,
    DutyRoster,
    DutyRosterUpdate,
    DutySlotPublic,
    ReceptionCreate,
    ReceptionPublic,
)

checkin_t: sa.Table = CheckIn.__table__  # type: ignore[attr-defined]
station_t: sa.Table = Station.__table__  # type: ignore[attr-defined]
slot_t: sa.Table = DutySlot.__table__  # type: ignore[attr-defined]
assignment_t: sa.Table = DutyAssignment.__table__  # type: ignore[attr-defined]

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


# Scope ---------------------------------------------------------------------------------------


async def staff_region_path(session: AsyncSession, principal: Principal) -> str | None:
    """The region subtree a staff member sees ("/1/4/"), or None for an admin (everything)."""
    if principal.role == Role.admin:
        return None
    if principal.role != Role.staff or principal.region_id is None:
        raise Forbidden()
    path = (
        await session.execute(sa.select(Region.path).where(Region.id == principal.region_id))
    ).scalar_one_or_none()
    if path is None:
        raise Forbidden()
    return path


_SCOPE = aliased(Region, name="scope")


def _staff_scope_query(principal: Principal) -> Any:
    """`staff_region_path` as a subquery of the list's own query (None for an admin)."""
    if principal.role == Role.admin:
        return None
    if principal.role != Role.staff or principal.region_id is None:
        raise Forbidden()
    return sa.select(_SCOPE.path).where(_SCOPE.id == principal.region_id).scalar_subquery()


def in_scope(scope: str | None, path: str) -> bool:
    return scope is None or path.startswith(scope)


# Check-ins -----------------------------------------------------------------------------------

_CHECKIN_COLUMNS = [c for c in checkin_t.c]


@dataclass(slots=True)
class ScanOutcome:
    checkin: dict[str, Any]
    action: CheckInAction


def checkin_dict(
    row: Any, *, station_name: str | None = None, deputy_name: str | None = None
) -> dict[str, Any]:
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    out = {c.name: data[c.name] for c in _CHECKIN_COLUMNS}
    out["station_name"] = station_name if station_name is not None else data.get("station_name")
    out["deputy_name"] = deputy_name if deputy_name is not None else data.get("deputy_name")
    out["on_duty"] = out["duty_slot_id"] is not None
    return out


# The hot path's statements are built once; each scan only binds its values. They run on
# the session's connection (the request's one transaction) without the ORM layer.
_OPEN_CI = checkin_t.alias("open_ci")
_LOAD_STATION_AND_OPEN = (
    sa.select(
        station_t.c.name,
        station_t.c.latitude,
        station_t.c.longitude,
        station_t.c.radius_m,
        station_t.c.qr_mode,
        station_t.c.qr_version,
        station_t.c.is_active,
        _OPEN_CI.c.id.label("open_id"),
        _OPEN_CI.c.station_id.label("open_station_id"),
        _OPEN_CI.c.checked_in_at.label("open_checked_in_at"),
    )
    .select_from(
        station_t.outerjoin(
            _OPEN_CI,
            sa.and_(
                _OPEN_CI.c.deputy_id == sa.bindparam("deputy_id"),
                _OPEN_CI.c.checked_out_at.is_(None),
            ),
        )
    )
    .where(station_t.c.id == sa.bindparam("station_id"))
)
_SELECT_BY_ID = sa.select(*_CHECKIN_COLUMNS).where(checkin_t.c.id == sa.bindparam("checkin_id"))
_SELECT_OPEN = sa.select(*_CHECKIN_COLUMNS).where(
    checkin_t.c.deputy_id == sa.bindparam("deputy_id"), checkin_t.c.checked_out_at.is_(None)
)
_CLOSE = (
    sa.update(checkin_t)
    .where(checkin_t.c.id == sa.bindparam("checkin_id"), checkin_t.c.checked_out_at.is_(None))
    .values(
        checked_out_at=sa.bindparam("at", type_=UTCDateTime),
        close_reason=sa.bindparam("reason"),
        auto_closed=sa.bindparam("auto"),
    )
    .returning(*_CHECKIN_COLUMNS)
)
_CLOSE_OWN = _CLOSE.where(checkin_t.c.deputy_id == sa.bindparam("owner_id"))
# The deputy's duty slot at the station running now (or starting within the early allowance).
_MATCHED_SLOT = (
    sa.select(slot_t.c.id)
    .join(assignment_t, assignment_t.c.slot_id == slot_t.c.id)
    .where(
        slot_t.c.station_id == sa.bindparam("station_id"),
        assignment_t.c.deputy_id == sa.bindparam("deputy_id"),
        slot_t.c.starts_at <= sa.bindparam("slot_starts_by", type_=UTCDateTime),
        slot_t.c.ends_at > sa.bindparam("checked_in_at", type_=UTCDateTime),
    )
    .order_by(slot_t.c.starts_at)
    .limit(1)
    .scalar_subquery()
)


def _build_insert_open(dialect: Any) -> Any:
    return (
        dialect.insert(checkin_t)
        .values(
            deputy_id=sa.bindparam("deputy_id"),
            station_id=sa.bindparam("station_id"),
            checked_in_at=sa.bindparam("checked_in_at", type_=UTCDateTime),
            auto_closed=False,
            latitude=sa.bindparam("latitude"),
            longitude=sa.bindparam("longitude"),
            accuracy_m=sa.bindparam("accuracy_m"),
            distance_m=sa.bindparam("distance_m"),
            duty_slot_id=_MATCHED_SLOT,
        )
        # Simultaneous scans: the partial unique index lets one in, the others insert nothing.
        .on_conflict_do_nothing(
            index_elements=["deputy_id"], index_where=checkin_t.c.checked_out_at.is_(None)
        )
        .returning(*_CHECKIN_COLUMNS)
    )


_INSERT_OPEN = {"sqlite": _build_insert_open(sqlite), "postgresql": _build_insert_open(postgresql)}


async def _close(
    conn: AsyncConnection,
    checkin_id: int,
    *,
    at: datetime,
    reason: CloseReason,
    deputy_id: int | None = None,
) -> Any:
    """Closes an open check-in; None when it was not open (someone else closed it first)."""
    params = {
        "checkin_id": checkin_id,
        "at": at,
        "reason": reason.value,
        "auto": reason is CloseReason.auto,
    }
    if deputy_id is None:
        return (await conn.execute(_CLOSE, params)).first()
    return (await conn.execute(_CLOSE_OWN, {**params, "owner_id": deputy_id})).first()


async def scan(
    session: AsyncSession,
    settings: Settings,
    *,
    deputy_id: int,
    scene_text: str,
    latitude: float,
    longitude: float,
    accuracy: float | None,
    now: datetime | None = None,
) -> ScanOutcome:
    """A deputy scanned a station code: check in, answer the same check-in, or check out."""
    now = now or utcnow()
    scene = parse_scene(scene_text)
    if scene is None:
        raise InvalidQr()
    conn = await session.connection()
    row = (
        await conn.execute(
            _LOAD_STATION_AND_OPEN, {"deputy_id": deputy_id, "station_id": scene.station_id}
        )
    ).first()
    if (
        row is None
        or not row.is_active
        or not verify_scene(
            settings, scene, qr_version=row.qr_version, qr_mode=row.qr_mode, now=now
        )
    ):
        raise InvalidQr()

    distance: float | None = None
    if row.latitude is not None and row.longitude is not None:
        distance = distance_m(latitude, longitude, row.latitude, row.longitude)
        allowance = min(accuracy or 0.0, float(settings.checkin_max_accuracy_m))
        if distance - allowance > row.radius_m:
            raise OutOfRange(
                f"您距离站点约{round(distance)}米，超出签到范围（{row.radius_m}米）",
                distance_m=round(distance, 1),
                radius_m=row.radius_m,
                accuracy_allowed_m=round(allowance, 1),
            )

    if row.open_id is not None:
        max_duration = timedelta(hours=settings.checkin_max_hours)
        if row.open_checked_in_at + max_duration <= now:
            # Left open too long: it ends at the maximum, and this scan starts a new one.
            await _close(
                conn, row.open_id, at=row.open_checked_in_at + max_duration, reason=CloseReason.auto
            )
        elif row.open_station_id == scene.station_id:
            if now - row.open_checked_in_at < timedelta(
                seconds=settings.checkin_repeat_window_seconds
            ):
                current = (await conn.execute(_SELECT_BY_ID, {"checkin_id": row.open_id})).first()
                return ScanOutcome(
                    checkin_dict(current, station_name=row.name), CheckInAction.repeat
                )
            closed = await _close(conn, row.open_id, at=now, reason=CloseReason.scan)
            if closed is None:  # a simultaneous scan closed it: answer the same
                closed = (await conn.execute(_SELECT_BY_ID, {"checkin_id": row.open_id})).first()
            return ScanOutcome(
                checkin_dict(closed, station_name=row.name), CheckInAction.checked_out
            )
        else:
            await _close(conn, row.open_id, at=now, reason=CloseReason.moved)

    inserted = (
        await conn.execute(
            _INSERT_OPEN["sqlite" if settings.is_sqlite else "postgresql"],
            {
                "deputy_id": deputy_id,
                "station_id": scene.station_id,
                "checked_in_at": now,
                "slot_starts_by": now + timedelta(minutes=settings.duty_early_minutes),
                "latitude": latitude,
                "longitude": longitude,
                "accuracy_m": accuracy,
                "distance_m": None if distance is None else round(distance, 1),
            },
        )
    ).first()
    if inserted is not None:
        return ScanOutcome(checkin_dict(inserted, station_name=row.name), CheckInAction.checked_in)
    # A simultaneous scan by the same deputy won the unique index: answer its check-in.
    winner = (await conn.execute(_SELECT_OPEN, {"deputy_id": deputy_id})).first()
    if winner is None:
        raise InvalidTransition("签到正在处理中，请稍后再试", code="checkin_in_progress")
    return ScanOutcome(checkin_dict(winner, station_name=row.name), CheckInAction.repeat)


async def get_checkin(session: AsyncSession, checkin_id: int) -> CheckIn:
    checkin = await session.get(CheckIn, checkin_id)
    if checkin is None:
        raise NotFound("签到记录不存在")
    return checkin


async def checkout(
    session: AsyncSession, checkin: CheckIn, *, now: datetime | None = None
) -> dict[str, Any]:
    """The deputy closes their open check-in (签退)."""
    assert checkin.id is not None
    closed = await _close(
        await session.connection(),
        checkin.id,
        at=now or utcnow(),
        reason=CloseReason.manual,
        deputy_id=checkin.deputy_id,
    )
    if closed is None:
        raise InvalidTransition("该签到已签退", code="already_checked_out")
    name = (
        await session.execute(sa.select(Station.name).where(Station.id == checkin.station_id))
    ).scalar_one()
    return checkin_dict(closed, station_name=name)


async def close_stale_checkins(
    session: AsyncSession,
    now: datetime | None = None,
    *,
    settings: Settings | None = None,
    batch_size: int = 500,
) -> int:
    """Closes check-ins left open past `checkin_max_hours` (the worker's sweep).

    Each ends at its start plus the maximum, so duty hours are not inflated, and is flagged
    `auto_closed`. Safe to run in several workers at once: each row is closed by a
    conditional UPDATE. Returns how many were closed.
    """
    settings = settings or get_settings()
    now = now or utcnow()
    max_duration = timedelta(hours=settings.checkin_max_hours)
    closed = 0
    last_id = 0
    while True:
        rows = (
            await session.execute(
                sa.select(checkin_t.c.id, checkin_t.c.checked_in_at)
                .where(
                    checkin_t.c.checked_out_at.is_(None),
                    checkin_t.c.checked_in_at <= now - max_duration,
                    checkin_t.c.id > last_id,
                )
                .order_by(checkin_t.c.id)
                .limit(batch_size)
            )
        ).all()
        for checkin_id, checked_in_at in rows:
            if await _close(
                await session.connection(),
                checkin_id,
                at=checked_in_at + max_duration,
                reason=CloseReason.auto,
            ):
                closed += 1
        if len(rows) < batch_size:
            return closed
        last_id = rows[-1][0]


def _local_day_bounds(
    date_from: date | None, date_to: date | None
) -> tuple[datetime | None, datetime | None]:
    start = (
        datetime.combine(date_from, time(0), tzinfo=SHANGHAI).astimezone(UTC) if date_from else None
    )
    end = (
        datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=SHANGHAI).astimezone(UTC)
        if date_to
        else None
    )
    return start, end


async def list_checkins(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    deputy_id: int | None = None,
    station_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Page[CheckInPublic]:
    """Deputies see their own check-ins; staff those at stations in their region."""
    conditions: list[Any] = []
    if principal.role == Role.deputy and principal.deputy_id is not None:
        conditions.append(CheckIn.deputy_id == principal.deputy_id)
    elif principal.is_staff:
        scope = _staff_scope_query(principal)
        if scope is not None:
            conditions.append(Region.path.startswith(scope))
    else:
        raise Forbidden()
    if deputy_id is not None:
        conditions.append(CheckIn.deputy_id == deputy_id)
    if station_id is not None:
        conditions.append(CheckIn.station_id == station_id)
    start, end = _local_day_bounds(date_from, date_to)
    if start is not None:
        conditions.append(CheckIn.checked_in_at >= start)
    if end is not None:
        conditions.append(CheckIn.checked_in_at < end)

    rows, total = await fetch_page(
        session,
        sa.select(CheckIn, Station.name, Deputy.name)
        .join(Station, Station.id == CheckIn.station_id)
        .join(Region, Region.id == Station.region_id)
        .join(Deputy, Deputy.id == CheckIn.deputy_id)
        .where(*conditions)
        .order_by(col(CheckIn.checked_in_at).desc(), col(CheckIn.id).desc()),
        page,
    )
    items = [
        CheckInPublic.model_validate(
            {
                **{c.name: getattr(checkin, c.name) for c in _CHECKIN_COLUMNS},
                "station_name": station_name,
                "deputy_name": deputy_name,
                "on_duty": checkin.duty_slot_id is not None,
            }
        )
        for checkin, station_name, deputy_name in rows
    ]
    return Page(items=items, total=total)


# Duty rosters --------------------------------------------------------------------------------


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=SHANGHAI).astimezone(UTC)


async def _slots_public(session: AsyncSession, slots: Sequence[DutySlot]) -> list[DutySlotPublic]:
    ids = [slot.id for slot in slots]
    deputies: dict[int, list[DeputyBrief]] = defaultdict(list)
    if ids:
        rows = (
            await session.execute(
                sa.select(DutyAssignment.slot_id, Deputy)
                .join(Deputy, Deputy.id == DutyAssignment.deputy_id)
                .where(col(DutyAssignment.slot_id).in_(ids))
                .order_by(DutyAssignment.id)
            )
        ).all()
        for slot_id, deputy in rows:
            deputies[slot_id].append(DeputyBrief.model_validate(deputy))
    out = []
    for slot in slots:
        assert slot.id is not None
        local_start = slot.starts_at.astimezone(SHANGHAI)
        local_end = slot.ends_at.astimezone(SHANGHAI)
        out.append(
            DutySlotPublic(
                id=slot.id,
                station_id=slot.station_id,
                date=slot.day,
                start_time=local_start.time().replace(tzinfo=None),
                end_time=local_end.time().replace(tzinfo=None),
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                note=slot.note,
                deputies=deputies[slot.id],
            )
        )
    return out


async def get_roster(
    session: AsyncSession, station_id: int, date_from: date, date_to: date
) -> DutyRoster:
    slots = (
        (
            await session.execute(
                sa.select(DutySlot)
                .where(
                    DutySlot.station_id == station_id,
                    DutySlot.day >= date_from,
                    DutySlot.day <= date_to,
                )
                .order_by(DutySlot.starts_at, DutySlot.id)
            )
        )
        .scalars()
        .all()
    )
    return DutyRoster(
        station_id=station_id,
        date_from=date_from,
        date_to=date_to,
        slots=await _slots_public(session, slots),
    )


async def set_roster(session: AsyncSession, station_id: int, body: DutyRosterUpdate) -> DutyRoster:
    """Replaces the station's slots on every date of the range.

    A slot kept with the same date and times keeps its id (check-ins that attended it stay
    matched); its deputies are replaced. Removed slots lose their attendance link.
    """
    wanted_deputies = {d for slot in body.slots for d in slot.deputy_ids}
    if wanted_deputies:
        found = set(
            (
                await session.execute(
                    sa.select(Deputy.id).where(
                        col(Deputy.id).in_(wanted_deputies), col(Deputy.is_active).is_(True)
                    )
                )
            )
            .scalars()
            .all()
        )
        missing = sorted(wanted_deputies - found)
        if missing:
            raise ValidationFailed(
                "排班中有不存在或已停用的代表",
                errors=[
                    {
                        "field": "body.slots.deputy_ids",
                        "message": f"unknown deputy {d}",
                        "type": "not_found",
                    }
                    for d in missing
                ],
            )
    existing = (
        (
            await session.execute(
                sa.select(DutySlot).where(
                    DutySlot.station_id == station_id,
                    DutySlot.day >= body.date_from,
                    DutySlot.day <= body.date_to,
                )
            )
        )
        .scalars()
        .all()
    )
    by_key = {(s.starts_at, s.ends_at): s for s in existing}
    keep_ids: set[int] = set()
    for slot_in in body.slots:
        starts_at = _local(slot_in.date, slot_in.start_time)
        ends_at = _local(slot_in.date, slot_in.end_time)
        slot = by_key.get((starts_at, ends_at))
        if slot is None:
            slot = DutySlot(
                station_id=station_id,
                day=slot_in.date,
                starts_at=starts_at,
                ends_at=ends_at,
                note=slot_in.note,
            )
            session.add(slot)
            await session.flush()
        else:
            slot.note = slot_in.note
            session.add(slot)
            await session.execute(
                sa.delete(DutyAssignment).where(DutyAssignment.slot_id == slot.id)
            )
        assert slot.id is not None
        keep_ids.add(slot.id)
        for deputy_id in slot_in.deputy_ids:
            session.add(DutyAssignment(slot_id=slot.id, deputy_id=deputy_id))
    removed = [s.id for s in existing if s.id not in keep_ids]
    if removed:
        await session.execute(
            sa.update(CheckIn)
            .where(col(CheckIn.duty_slot_id).in_(removed))
            .values(duty_slot_id=None)
        )
        await session.execute(
            sa.delete(DutyAssignment).where(col(DutyAssignment.slot_id).in_(removed))
        )
        await session.execute(sa.delete(DutySlot).where(col(DutySlot.id).in_(removed)))
    await session.flush()
    return await get_roster(session, station_id, body.date_from, body.date_to)


async def on_duty_now(
    session: AsyncSession, station_id: int, now: datetime | None = None
) -> list[DutySlotPublic]:
    """The station's slots running now, with their deputies' public fields (在岗代表)."""
    now = now or utcnow()
    slots = (
        (
            await session.execute(
                sa.select(DutySlot)
                .where(
                    DutySlot.station_id == station_id,
                    DutySlot.starts_at <= now,
                    DutySlot.ends_at > now,
                )
                .order_by(DutySlot.starts_at, DutySlot.id)
            )
        )
        .scalars()
        .all()
    )
    return await _slots_public(session, slots)


async def upcoming_slots_for_deputy(
    session: AsyncSession, deputy_id: int, days: int = 7, now: datetime | None = None
) -> list[DeputyDutySlot]:
    """The deputy's duty slots not yet over and starting within `days` days, soonest first."""
    now = now or utcnow()
    rows = (
        await session.execute(
            sa.select(DutySlot, Station.name)
            .join(DutyAssignment, DutyAssignment.slot_id == DutySlot.id)
            .join(Station, Station.id == DutySlot.station_id)
            .where(
                DutyAssignment.deputy_id == deputy_id,
                DutySlot.ends_at > now,
                DutySlot.starts_at < now + timedelta(days=days),
            )
            .order_by(DutySlot.starts_at, DutySlot.id)
        )
    ).all()
    out = []
    for slot, station_name in rows:
        assert slot.id is not None
        out.append(
            DeputyDutySlot(
                id=slot.id,
                station_id=slot.station_id,
                station_name=station_name,
                date=slot.day,
                start_time=slot.starts_at.astimezone(SHANGHAI).time().replace(tzinfo=None),
                end_time=slot.ends_at.astimezone(SHANGHAI).time().replace(tzinfo=None),
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                note=slot.note,
            )
        )
    return out


# Receptions ----------------------------------------------------------------------------------


def reception_public(
    reception: Reception,
    viewer: Principal,
    *,
    station_name: str | None = None,
    deputy_name: str | None = None,
) -> ReceptionPublic:
    """The resident's name and phone in full only for staff and the receiving deputy."""
    full = viewer.is_staff or (
        viewer.deputy_id is not None and viewer.deputy_id == reception.deputy_id
    )
    assert reception.id is not None
    return ReceptionPublic(
        id=reception.id,
        station_id=reception.station_id,
        station_name=station_name,
        deputy_id=reception.deputy_id,
        deputy_name=deputy_name,
        checkin_id=reception.checkin_id,
        topic=reception.topic,
        content=reception.content,
        resident_name=reception.resident_name if full else mask_name(reception.resident_name),
        resident_phone=reception.resident_phone if full else mask_phone(reception.resident_phone),
        received_at=reception.received_at,
        case_id=reception.case_id,
    )


async def station_with_path(session: AsyncSession, station_id: int) -> tuple[Station, str]:
    row = (
        await session.execute(
            sa.select(Station, Region.path)
            .join(Region, Region.id == Station.region_id)
            .where(Station.id == station_id)
        )
    ).first()
    if row is None:
        raise NotFound("站点不存在")
    return row[0], row[1]


async def create_reception(
    session: AsyncSession, principal: Principal, body: ReceptionCreate, now: datetime | None = None
) -> ReceptionPublic:
    now = now or utcnow()
    deputy_id: int | None
    checkin_id: int | None = None
    if principal.role == Role.deputy and principal.deputy_id is not None:
        if body.deputy_id not in (None, principal.deputy_id):
            raise Forbidden("代表只能登记本人的接待记录")
        open_row = (
            await session.execute(
                sa.select(CheckIn.id, CheckIn.station_id).where(
                    CheckIn.deputy_id == principal.deputy_id, CheckIn.checked_out_at.is_(None)
                )
            )
        ).first()
        if open_row is None or (body.station_id not in (None, open_row.station_id)):
            raise NotCheckedIn()
        deputy_id, station_id, checkin_id = principal.deputy_id, open_row.station_id, open_row.id
    elif principal.is_staff:
        if body.station_id is None:
            raise ValidationFailed(
                "请选择接待站点",
                errors=[
                    {"field": "body.station_id", "message": "Field required", "type": "missing"}
                ],
            )
        scope = await staff_region_path(session, principal)
        _station, path = await station_with_path(session, body.station_id)
        if not in_scope(scope, path):
            raise Forbidden("该站点不在您的管辖范围内")
        station_id, deputy_id = body.station_id, body.deputy_id
        if deputy_id is not None and await session.get(Deputy, deputy_id) is None:
            raise ValidationFailed(
                "代表不存在",
                errors=[
                    {"field": "body.deputy_id", "message": "unknown deputy", "type": "not_found"}
                ],
            )
    else:
        raise Forbidden()
    reception = Reception(
        station_id=station_id,
        deputy_id=deputy_id,
        checkin_id=checkin_id,
        topic=body.topic,
        content=body.content,
        resident_name=body.resident_name,
        resident_phone=body.resident_phone,
        received_at=now,
        created_by_user_id=principal.user_id,
    )
    session.add(reception)
    await session.flush()
    return await get_reception_public(session, principal, reception)


async def get_reception_public(
    session: AsyncSession, principal: Principal, reception: Reception
) -> ReceptionPublic:
    station_name = (
        await session.execute(sa.select(Station.name).where(Station.id == reception.station_id))
    ).scalar_one()
    deputy_name = None
    if reception.deputy_id is not None:
        deputy_name = (
            await session.execute(sa.select(Deputy.name).where(Deputy.id == reception.deputy_id))
        ).scalar_one_or_none()
    return reception_public(
        reception, principal, station_name=station_name, deputy_name=deputy_name
    )


def _deputy_reception_condition(deputy_id: int) -> Any:
    """Own receptions, and those of the stations the deputy is attached to (masked)."""
    attached = sa.select(DeputyStation.station_id).where(DeputyStation.deputy_id == deputy_id)
    return sa.or_(Reception.deputy_id == deputy_id, col(Reception.station_id).in_(attached))


async def reception_visible(
    session: AsyncSession, principal: Principal, reception_id: int
) -> Reception:
    reception = await session.get(Reception, reception_id)
    if reception is None:
        raise NotFound("接待记录不存在")
    if principal.role == Role.deputy and principal.deputy_id is not None:
        visible = (
            await session.execute(
                sa.select(Reception.id).where(
                    Reception.id == reception_id, _deputy_reception_condition(principal.deputy_id)
                )
            )
        ).first()
        if visible is None:
            raise Forbidden()
        return reception
    if principal.is_staff:
        scope = await staff_region_path(session, principal)
        _station, path = await station_with_path(session, reception.station_id)
        if not in_scope(scope, path):
            raise Forbidden()
        return reception
    raise Forbidden()


async def list_receptions(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    deputy_id: int | None = None,
    station_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Page[ReceptionPublic]:
    """Deputies: their own, and their stations' (others' residents masked). Staff: their
    region's."""
    conditions: list[Any] = []
    if principal.role == Role.deputy and principal.deputy_id is not None:
        conditions.append(_deputy_reception_condition(principal.deputy_id))
    elif principal.is_staff:
        scope = await staff_region_path(session, principal)
        if scope is not None:
            conditions.append(Region.path.startswith(scope))
    else:
        raise Forbidden()
    if deputy_id is not None:
        conditions.append(Reception.deputy_id == deputy_id)
    if station_id is not None:
        conditions.append(Reception.station_id == station_id)
    start, end = _local_day_bounds(date_from, date_to)
    if start is not None:
        conditions.append(Reception.received_at >= start)
    if end is not None:
        conditions.append(Reception.received_at < end)
    rows, total = await fetch_page(
        session,
        sa.select(Reception, Station.name, Deputy.name)
        .join(Station, Station.id == Reception.station_id)
        .join(Region, Region.id == Station.region_id)
        .outerjoin(Deputy, Deputy.id == Reception.deputy_id)
        .where(*conditions)
        .order_by(col(Reception.received_at).desc(), col(Reception.id).desc()),
        page,
    )
    return Page(
        items=[reception_public(r, principal, station_name=s, deputy_name=d) for r, s, d in rows],
        total=total,
    )


async def attach_case(session: AsyncSession, reception_id: int, case_id: int) -> Reception:
    """Links a reception to the case made from it (接待转案件). A reception makes at most one
    case: a second attach raises `reception_has_case` (409)."""
    result = await session.execute(
        sa.update(Reception)
        .where(Reception.id == reception_id, Reception.case_id.is_(None))
        .values(case_id=case_id)
    )
    reception = await session.get(Reception, reception_id, populate_existing=True)
    if reception is None:
        raise NotFound("接待记录不存在")
    if result.rowcount == 0 and reception.case_id != case_id:  # type: ignore[attr-defined]
        raise CaseAlreadyAttached()
    return reception
