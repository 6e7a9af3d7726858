"""Integrators, their keys, key authentication (scope, IP range, rate limit) and the audit
log. Services only flush; the request's transaction commits."""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.clock import utcnow
from app.core.errors import Conflict, NotFound, RateLimited, ValidationFailed
from app.core.security import Principal, Role
from app.identity.models import User
from app.integrations import keys as key_format
from app.integrations.errors import (
    InsufficientScope,
    InvalidApiKey,
    IpNotAllowed,
    KeyNotAllowedHere,
)
from app.integrations.models import ApiKey, ApiKeyWindow, AuditLogEntry, Integrator, Scope
from app.integrations.schemas import ApiKeyCreate, IntegratorCreate, IntegratorUpdate
from app.org.models import Region

logger = logging.getLogger("app.integrations")


# ---------------------------------------------------------------------------------------
# Integrators and keys (admin)


async def create_integrator(
    session: AsyncSession, body: IntegratorCreate, admin: Principal
) -> Integrator:
    """The integrator and its service account (the submitter of the cases it registers:
    no password, no openid, so nobody can log in as it)."""
    taken = (
        await session.execute(select(Integrator.id).where(Integrator.name == body.name.strip()))
    ).first()
    if taken is not None:
        raise Conflict("已存在同名的接入系统", code="integrator_name_taken")
    account = User(role=Role.staff, nickname=body.name.strip()[:64], is_active=True)
    session.add(account)
    await session.flush()
    assert account.id is not None
    account.username = f"integrator-{account.id}"
    integrator = Integrator(
        name=body.name.strip(),
        contact_name=body.contact_name,
        contact_phone=body.contact_phone,
        contact_email=body.contact_email,
        allowed_ips=list(body.allowed_ips),
        user_id=account.id,
        created_by_id=admin.user_id,
    )
    session.add(integrator)
    await session.flush()
    await audit(session, admin, "integrator.create", target=f"integrator:{integrator.id}")
    return integrator


async def integrator_or_404(session: AsyncSession, integrator_id: int) -> Integrator:
    integrator = await session.get(Integrator, integrator_id)
    if integrator is None:
        raise NotFound("未找到该接入系统", code="not_found")
    return integrator


async def update_integrator(
    session: AsyncSession, integrator: Integrator, body: IntegratorUpdate, admin: Principal
) -> Integrator:
    # Contacts may be cleared with null; name, IP ranges and the switch only set.
    clearable = {"contact_name", "contact_phone", "contact_email"}
    changes = {
        k: v
        for k, v in body.model_dump(exclude_unset=True).items()
        if v is not None or k in clearable
    }
    if "name" in changes:
        changes["name"] = changes["name"].strip()
        taken = (
            await session.execute(
                select(Integrator.id).where(
                    Integrator.name == changes["name"], Integrator.id != integrator.id
                )
            )
        ).first()
        if taken is not None:
            raise Conflict("已存在同名的接入系统", code="integrator_name_taken")
    for name, value in changes.items():
        setattr(integrator, name, value)
    integrator.updated_at = utcnow()
    session.add(integrator)
    await session.flush()
    await audit(session, admin, "integrator.update", target=f"integrator:{integrator.id}")
    return integrator


async def list_integrators(session: AsyncSession) -> list[tuple[Integrator, list[ApiKey]]]:
    integrators = list(
        (await session.execute(select(Integrator).order_by(col(Integrator.id)))).scalars()
    )
    keys = list((await session.execute(select(ApiKey).order_by(col(ApiKey.id)))).scalars())
    by_owner: dict[int, list[ApiKey]] = {}
    for key in keys:
        by_owner.setdefault(key.integrator_id, []).append(key)
    return [(i, by_owner.get(i.id or 0, [])) for i in integrators]


async def keys_of(session: AsyncSession, integrator_id: int) -> list[ApiKey]:
    rows = await session.execute(
        select(ApiKey).where(ApiKey.integrator_id == integrator_id).order_by(col(ApiKey.id))
    )
    return list(rows.scalars())


async def issue_key(
    session: AsyncSession,
    integrator: Integrator,
    body: ApiKeyCreate,
    admin: Principal,
    default_rate: int,
) -> tuple[ApiKey, str]:
    """A new key: the clear key is answered once and never stored."""
    if (await session.get(Region, body.region_id)) is None:
        raise ValidationFailed("区域不存在", code="unknown_region")
    if body.expires_at is not None and body.expires_at <= utcnow():
        raise ValidationFailed("到期时间应晚于现在", code="validation_error")
    fresh = key_format.new_key()
    assert integrator.id is not None
    key = ApiKey(
        integrator_id=integrator.id,
        name=body.name,
        prefix=fresh.prefix,
        key_hash=fresh.key_hash,
        scopes=sorted({s.value for s in body.scopes}),
        region_id=body.region_id,
        rate_limit_per_minute=body.rate_limit_per_minute or default_rate,
        expires_at=body.expires_at,
        created_by_id=admin.user_id,
    )
    session.add(key)
    await session.flush()
    await audit(session, admin, "api_key.issue", target=f"api_key:{key.prefix}")
    return key, fresh.key


async def revoke_key(
    session: AsyncSession, integrator: Integrator, key_id: int, admin: Principal
) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None or key.integrator_id != integrator.id:
        raise NotFound("未找到该密钥", code="not_found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        await session.flush()
        await audit(session, admin, "api_key.revoke", target=f"api_key:{key.prefix}")
    return key


# ---------------------------------------------------------------------------------------
# The audit log


async def audit(
    session: AsyncSession,
    actor: Principal | None,
    action: str,
    *,
    target: str | None = None,
    method: str | None = None,
    path: str | None = None,
    outcome: str = "ok",
    client_ip: str | None = None,
) -> None:
    session.add(
        AuditLogEntry(
            actor_user_id=actor.user_id if actor and not actor.is_api_key else None,
            integrator_id=actor.integrator_id if actor else None,
            api_key_id=actor.api_key_id if actor else None,
            key_prefix=actor.key_prefix if actor else None,
            action=action,
            method=method,
            path=path[:255] if path else None,
            outcome=outcome,
            client_ip=client_ip,
            target=target,
        )
    )


@dataclass(slots=True)
class AuditFilter:
    integrator_id: int | None = None
    api_key_id: int | None = None
    actor_user_id: int | None = None
    action: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_query(f: AuditFilter) -> Any:
    statement = select(AuditLogEntry)
    for column, value in (
        (AuditLogEntry.integrator_id, f.integrator_id),
        (AuditLogEntry.api_key_id, f.api_key_id),
        (AuditLogEntry.actor_user_id, f.actor_user_id),
        (AuditLogEntry.action, f.action),
        (AuditLogEntry.outcome, f.outcome),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if f.since is not None:
        statement = statement.where(col(AuditLogEntry.created_at) >= f.since)
    if f.until is not None:
        statement = statement.where(col(AuditLogEntry.created_at) < f.until)
    return statement.order_by(col(AuditLogEntry.id).desc())


# ---------------------------------------------------------------------------------------
# Authenticating a key


@dataclass(slots=True)
class KeyCheck:
    """What one call with a key came to: its principal, or the error to answer."""

    principal: Principal | None
    error: Exception | None


async def load_key(session: AsyncSession, raw_key: str) -> tuple[ApiKey, Integrator]:
    prefix = key_format.parse_prefix(raw_key)
    if prefix is None:
        raise InvalidApiKey()
    row = (
        await session.execute(
            select(ApiKey, Integrator)
            .join(Integrator, col(Integrator.id) == ApiKey.integrator_id)
            .where(ApiKey.prefix == prefix)
        )
    ).first()
    now = utcnow()
    if row is None or not key_format.matches(raw_key, row[0].key_hash):
        logger.info("unknown API key presented (prefix %s)", prefix)
        raise InvalidApiKey()
    key, integrator = row
    if (
        key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= now)
        or not integrator.is_active
    ):
        logger.info("revoked, expired or disabled API key %s presented", prefix)
        raise InvalidApiKey()
    return key, integrator


def key_principal(key: ApiKey, integrator: Integrator) -> Principal:
    return Principal(
        user_id=integrator.user_id,
        role=Role.staff,
        region_id=key.region_id,
        api_key_id=key.id,
        integrator_id=integrator.id,
        key_prefix=key.prefix,
        scopes=frozenset(key.scopes),
    )


def ip_allowed(allowed: list[str], client_ip: str | None) -> bool:
    if not allowed:
        return True
    if client_ip is None:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    for cidr in allowed:
        try:
            if address in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            continue
    return False


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


async def count_call(session: AsyncSession, key: ApiKey, now: datetime) -> int:
    """This call's number in the key's current minute: one atomic upsert, so concurrent
    calls on any replica each get their own number."""
    window_start = now.replace(second=0, microsecond=0)
    table = ApiKeyWindow.__table__  # type: ignore[attr-defined]
    statement = (
        _insert(session, table)
        .values(api_key_id=key.id, window_start=window_start, calls=1)
        .on_conflict_do_update(
            index_elements=["api_key_id", "window_start"],
            set_={"calls": table.c.calls + 1},
        )
        .returning(table.c.calls)
    )
    return int((await session.execute(statement)).scalar_one())


async def check_call(
    session: AsyncSession,
    raw_key: str,
    *,
    scope: Scope | None,
    method: str,
    path: str,
    client_ip: str | None,
) -> KeyCheck:
    """Authenticate a key for one call and write the call to the audit log, allowed or
    not. An unknown or revoked key raises at once (nothing to attribute it to)."""
    key, integrator = await load_key(session, raw_key)
    principal = key_principal(key, integrator)
    now = utcnow()
    error: Exception | None = None
    outcome = "ok"
    if not ip_allowed(integrator.allowed_ips, client_ip):
        error, outcome = IpNotAllowed(), "ip_not_allowed"
    elif scope is None:
        error, outcome = KeyNotAllowedHere(), "key_not_allowed"
    elif scope.value not in key.scopes:
        error, outcome = InsufficientScope(), "insufficient_scope"
    else:
        calls = await count_call(session, key, now)
        if calls > key.rate_limit_per_minute:
            window_end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
            retry_after = max(1, math.ceil((window_end - now).total_seconds()))
            error = RateLimited(
                "调用过于频繁，请稍后再试",
                headers={"Retry-After": str(retry_after)},
                retry_after=retry_after,
            )
            outcome = "rate_limited"
    await audit(
        session,
        principal,
        "api_call",
        method=method,
        path=path,
        outcome=outcome,
        client_ip=client_ip,
    )
    if error is None:
        await session.execute(
            update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=now)
        )
    return KeyCheck(principal if error is None else None, error)


async def purge_key_windows(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(ApiKeyWindow).where(col(ApiKeyWindow.window_start) < now - timedelta(hours=1))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
