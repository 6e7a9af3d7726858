"""The deputy roster's rules (代表名册): public profiles, staff edits, binding codes.

Staff manage deputies whose `region_id` is in their region subtree (admin: all); a deputy
outside it answers 403 `forbidden` (profiles are public, so 404 would hide nothing). Phone
numbers are unique on the roster: the import and binding by verified phone match on them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.clock import utcnow
from app.core.errors import Conflict, VersionConflict
from app.core.security import Principal, Role, sha256_hex
from app.core.sorting import name_order, with_name_sort
from app.identity.deputy_schemas import (
    DeputyCreate,
    DeputyPublic,
    DeputyRosterEntry,
    DeputyStationRef,
    DeputyUpdate,
)
from app.identity.models import Deputy, DeputyBindingCode, DeputyLevel, DeputyStation, User
from app.org import service as org_service
from app.org.models import Station

# No 0/O, 1/I/L: a code read aloud over the phone or copied from paper survives.
BINDING_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
BINDING_CODE_LENGTH = 8


class DeputyPhoneTaken(Conflict):
    code, detail = "deputy_phone_taken", "名册中已有使用该手机号的代表"


def normalize_binding_code(code: str) -> str:
    """What a typed code is hashed as: spaces and dashes dropped, upper case."""
    return code.replace(" ", "").replace("-", "").upper()


# Reading ------------------------------------------------------------------------------------


@dataclass
class DeputyFilters:
    level: DeputyLevel | None = None
    station_id: int | None = None
    region_id: int | None = None
    q: str | None = None
    include_inactive: bool = False


def _conditions(filters: DeputyFilters) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if not filters.include_inactive:
        conds.append(col(Deputy.is_active).is_(True))
    if filters.level is not None:
        conds.append(Deputy.level == filters.level)
    if filters.station_id is not None:
        conds.append(
            col(Deputy.id).in_(
                select(DeputyStation.deputy_id).where(
                    DeputyStation.station_id == filters.station_id
                )
            )
        )
    if filters.region_id is not None:
        conds.append(
            col(Deputy.region_id).in_(org_service.region_subtree_select(filters.region_id))
        )
    if filters.q:
        escaped = filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        conds.append(
            or_(
                col(Deputy.name).ilike(pattern, escape="\\"),
                col(Deputy.title).ilike(pattern, escape="\\"),
            )
        )
    return conds


async def list_deputies(
    session: AsyncSession,
    filters: DeputyFilters,
    *,
    limit: int,
    offset: int,
    scope: Principal | None = None,
) -> tuple[Sequence[Deputy], int]:
    """Deputies matching `filters`, in pinyin order of their names; with `scope`, only those
    that principal manages."""
    conds = _conditions(filters)
    if scope is not None:
        conds.append(org_service.in_scope(scope, Deputy.region_id))
    total = (
        await session.execute(select(func.count()).select_from(Deputy).where(*conds))
    ).scalar_one()
    rows = (
        (
            await session.execute(
                select(Deputy)
                .where(*conds)
                .order_by(*name_order(Deputy))
                .limit(limit)
                .offset(offset)
            )
        )
        .scalars()
        .all()
    )
    return rows, total


async def station_refs(
    session: AsyncSession, deputy_ids: Iterable[int], *, active_only: bool = True
) -> dict[int, list[DeputyStationRef]]:
    ids = list(deputy_ids)
    out: dict[int, list[DeputyStationRef]] = {i: [] for i in ids}
    if not ids:
        return out
    stmt = (
        select(DeputyStation.deputy_id, Station.id, Station.name, Station.kind)
        .join(Station, Station.id == DeputyStation.station_id)
        .where(col(DeputyStation.deputy_id).in_(ids))
        .order_by(*name_order(Station))
    )
    if active_only:
        stmt = stmt.where(col(Station.is_active).is_(True))
    for deputy_id, sid, name, kind in (await session.execute(stmt)).all():
        out[deputy_id].append(DeputyStationRef(id=sid, name=name, kind=kind))
    return out


async def bound_deputy_ids(session: AsyncSession, deputy_ids: Iterable[int]) -> set[int]:
    ids = list(deputy_ids)
    if not ids:
        return set()
    rows = await session.execute(select(User.deputy_id).where(col(User.deputy_id).in_(ids)))
    return {r for (r,) in rows.all() if r is not None}


def _public_fields(deputy: Deputy, stations: list[DeputyStationRef]) -> dict[str, Any]:
    return {
        "id": deputy.id,
        "name": deputy.name,
        "level": deputy.level,
        "title": deputy.title,
        "gender": deputy.gender,
        "term": deputy.term,
        "region_id": deputy.region_id,
        "photo_url": deputy.photo_url,
        "bio": deputy.bio,
        "stations": stations,
    }


async def public_profiles(session: AsyncSession, deputies: Sequence[Deputy]) -> list[DeputyPublic]:
    refs = await station_refs(session, [d.id for d in deputies])  # type: ignore[misc]
    return [DeputyPublic(**_public_fields(d, refs[d.id])) for d in deputies]  # type: ignore[index]


async def roster_entries(
    session: AsyncSession, deputies: Sequence[Deputy]
) -> list[DeputyRosterEntry]:
    ids = [d.id for d in deputies]
    refs = await station_refs(session, ids, active_only=False)  # type: ignore[arg-type]
    bound = await bound_deputy_ids(session, ids)  # type: ignore[arg-type]
    return [
        DeputyRosterEntry(
            **_public_fields(d, refs[d.id]),  # type: ignore[index]
            phone=d.phone,
            is_active=d.is_active,
            version=d.version,
            bound=d.id in bound,
            created_at=d.created_at,
            updated_at=d.updated_at,
        )
        for d in deputies
    ]


# Writing ------------------------------------------------------------------------------------


async def check_stations(
    session: AsyncSession, principal: Principal, station_ids: Sequence[int], *, field: str
) -> None:
    """Every station exists (422 naming `field`) and is in the principal's scope (403)."""
    if not station_ids:
        return
    rows = (
        await session.execute(
            select(Station.id, Station.region_id).where(col(Station.id).in_(station_ids))
        )
    ).all()
    found = {sid: rid for sid, rid in rows}
    missing = [sid for sid in station_ids if sid not in found]
    if missing:
        raise org_service.field_error(field, f"unknown station ids: {missing}", "所选联络站不存在")
    if principal.role == Role.admin:
        return
    visible = set(
        (
            await session.execute(
                select(Station.id).where(
                    col(Station.id).in_(station_ids),
                    org_service.in_scope(principal, Station.region_id),
                )
            )
        )
        .scalars()
        .all()
    )
    if set(station_ids) - visible:
        raise org_service.out_of_scope()


async def ensure_phone_free(
    session: AsyncSession, phone: str | None, exclude_id: int | None = None
) -> None:
    if phone is None:
        return
    stmt = select(Deputy.id).where(Deputy.phone == phone)
    if exclude_id is not None:
        stmt = stmt.where(Deputy.id != exclude_id)
    if (await session.execute(stmt.limit(1))).first() is not None:
        raise DeputyPhoneTaken()


async def set_stations(session: AsyncSession, deputy_id: int, station_ids: Sequence[int]) -> None:
    """Make the deputy's attachments exactly `station_ids`."""
    wanted = set(station_ids)
    current = set(
        (
            await session.execute(
                select(DeputyStation.station_id).where(DeputyStation.deputy_id == deputy_id)
            )
        )
        .scalars()
        .all()
    )
    gone = current - wanted
    if gone:
        await session.execute(
            delete(DeputyStation).where(
                DeputyStation.deputy_id == deputy_id, col(DeputyStation.station_id).in_(gone)
            )
        )
    for sid in sorted(wanted - current):
        session.add(DeputyStation(deputy_id=deputy_id, station_id=sid))
    await session.flush()


async def _flush_or_phone_taken(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent edit took the phone first
        raise DeputyPhoneTaken() from exc


async def create_deputy(session: AsyncSession, principal: Principal, data: DeputyCreate) -> Deputy:
    region_id = data.region_id
    if region_id is None and principal.role == Role.staff:
        region_id = principal.region_id
    if data.region_id is not None:
        await org_service.region_or_field_error(session, data.region_id, "body.region_id")
    if principal.role != Role.admin:
        await org_service.ensure_region_in_scope(session, principal, region_id)
    await check_stations(session, principal, data.station_ids, field="body.station_ids")
    await ensure_phone_free(session, data.phone)
    deputy = Deputy(**data.model_dump(exclude={"station_ids", "region_id"}), region_id=region_id)
    session.add(deputy)
    await _flush_or_phone_taken(session)
    await set_stations(session, deputy.id, data.station_ids)  # type: ignore[arg-type]
    return deputy


async def update_deputy(
    session: AsyncSession,
    principal: Principal,
    deputy: Deputy,
    data: DeputyUpdate,
    expected_version: int,
) -> Deputy:
    """Apply the sent fields if the deputy is still at `expected_version` (409
    `version_conflict` otherwise; one conditional UPDATE settles concurrent edits)."""
    values = with_name_sort(data.model_dump(exclude_unset=True, exclude={"version", "station_ids"}))
    if "region_id" in values and values["region_id"] != deputy.region_id:
        if values["region_id"] is not None:
            await org_service.region_or_field_error(session, values["region_id"], "body.region_id")
        if principal.role != Role.admin:
            await org_service.ensure_region_in_scope(session, principal, values["region_id"])
    if data.station_ids is not None:
        await check_stations(session, principal, data.station_ids, field="body.station_ids")
    if "phone" in values:
        await ensure_phone_free(session, values["phone"], exclude_id=deputy.id)
    if deputy.version != expected_version:
        raise VersionConflict(current_version=deputy.version)
    values["version"] = Deputy.version + 1
    values["updated_at"] = utcnow()
    try:
        result = await session.execute(
            update(Deputy)
            .where(Deputy.id == deputy.id, Deputy.version == expected_version)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    except IntegrityError as exc:
        raise DeputyPhoneTaken() from exc
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise VersionConflict()
    if data.station_ids is not None:
        await set_stations(session, deputy.id, data.station_ids)  # type: ignore[arg-type]
    await session.refresh(deputy)
    return deputy


# Binding codes ------------------------------------------------------------------------------


def new_binding_code() -> str:
    return "".join(secrets.choice(BINDING_CODE_ALPHABET) for _ in range(BINDING_CODE_LENGTH))


async def issue_binding_code(
    session: AsyncSession, principal: Principal, deputy: Deputy, ttl: timedelta
) -> tuple[str, datetime]:
    """A fresh one-time code for `deputy`, valid for `ttl`; the deputy's earlier unused codes
    stop working (they are deleted; used ones stay as a record). Only `sha256_hex(code)` is
    stored: the caller shows the code once."""
    await session.execute(
        delete(DeputyBindingCode).where(
            DeputyBindingCode.deputy_id == deputy.id, col(DeputyBindingCode.used_at).is_(None)
        )
    )
    for _ in range(5):
        code = new_binding_code()
        code_hash = sha256_hex(code)
        clash = await session.execute(
            select(DeputyBindingCode.id).where(DeputyBindingCode.code_hash == code_hash)
        )
        if clash.first() is None:
            break
    else:  # pragma: no cover - 31^8 codes; five clashes in a row do not happen
        raise Conflict("生成绑定码失败，请重试")
    expires_at = utcnow() + ttl
    session.add(
        DeputyBindingCode(
            deputy_id=deputy.id,  # type: ignore[arg-type]
            code_hash=code_hash,
            expires_at=expires_at,
            created_by_user_id=principal.user_id,
        )
    )
    await session.flush()
    return code, expires_at
