"""Access tokens (JWT, python-jose), password hashing (Argon2) and the caller's principal."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from jose import JWTError, jwt

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.errors import Unauthenticated

ALGORITHM = "HS256"
_hasher = PasswordHasher()
# Verifying against this keeps a failed login for an unknown user as slow as for a known one.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class Role(StrEnum):
    resident = "resident"
    deputy = "deputy"
    staff = "staff"
    unit = "unit"
    admin = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the access token says. Loaded without a database round trip."""

    user_id: int
    role: Role
    region_id: int | None = None
    unit_id: int | None = None
    deputy_id: int | None = None
    # Set when the caller is an integrator's API key: it acts as staff of `region_id`
    # through its integrator's service account, only where one of its scopes allows.
    api_key_id: int | None = None
    integrator_id: int | None = None
    key_prefix: str | None = None
    scopes: frozenset[str] = frozenset()

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.staff, Role.admin)

    @property
    def is_api_key(self) -> bool:
        return self.api_key_id is not None


def create_access_token(principal: Principal, settings: Settings) -> str:
    now = utcnow()
    claims: dict[str, Any] = {
        "sub": str(principal.user_id),
        "role": principal.role.value,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.access_token_ttl_seconds)).timestamp()),
    }
    for key, value in (
        ("rid", principal.region_id),
        ("uid", principal.unit_id),
        ("did", principal.deputy_id),
    ):
        if value is not None:
            claims[key] = value
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM)


def decode_access_token(token: str, settings: Settings) -> Principal:
    try:
        # Expiry is checked against the service clock below, not the wall clock.
        claims = jwt.decode(
            token, settings.jwt_secret, algorithms=[ALGORITHM], options={"verify_exp": False}
        )
    except JWTError as exc:
        raise Unauthenticated("登录已失效，请重新登录", code="unauthenticated") from exc
    if claims.get("typ") != "access" or int(claims.get("exp", 0)) <= int(utcnow().timestamp()):
        raise Unauthenticated("登录已过期，请重新登录", code="unauthenticated")
    try:
        return Principal(
            user_id=int(claims["sub"]),
            role=Role(claims["role"]),
            region_id=claims.get("rid"),
            unit_id=claims.get("uid"),
            deputy_id=claims.get("did"),
        )
    except (KeyError, ValueError) as exc:
        raise Unauthenticated("登录已失效，请重新登录") from exc


async def hash_password(password: str) -> str:
    # Argon2 is deliberately slow: keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    def _verify() -> bool:
        try:
            return (
                _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)


def new_secret_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def secrets_match(expected: str | bytes, given: str | bytes) -> bool:
    """Constant-time comparison of a secret, signature or code with what a caller sent.

    `hmac.compare_digest` raises on `str` holding non-ASCII characters, so both sides are
    compared as UTF-8 bytes: any input a request can carry gives True or False, never an
    error."""
    if isinstance(expected, str):
        expected = expected.encode("utf-8", "surrogatepass")
    if isinstance(given, str):
        given = given.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(expected, given)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
