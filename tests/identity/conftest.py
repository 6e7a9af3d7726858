"""Helpers for the identity tests: password accounts, binding codes, token checks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

import app.core.security as security
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import Database
from app.core.security import Principal, Role, decode_access_token, hash_password, sha256_hex
from app.identity.models import Deputy, DeputyBindingCode, RefreshToken, User
from tests.factories import Actor, Factory

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still Argon2, with light parameters: the default costs about a second per hash on a
    busy two-core machine, and these tests hash and verify hundreds of times."""
    monkeypatch.setattr(
        security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


class Identity:
    """Setup for identity tests, around the shared factory."""

    def __init__(self, factory: Factory, db: Database, settings: Settings) -> None:
        self.factory = factory
        self.db = db
        self.settings = settings

    async def password_actor(self, role: Role, password: str = PASSWORD, **fields: Any) -> Actor:
        return await self.factory.actor(role, password_hash=await hash_password(password), **fields)

    async def binding_code(
        self,
        deputy: Deputy,
        code: str,
        *,
        expires_at: datetime | None = None,
        used_at: datetime | None = None,
    ) -> DeputyBindingCode:
        return await self.factory.add(  # type: ignore[no-any-return]
            DeputyBindingCode(
                deputy_id=deputy.id,
                code_hash=sha256_hex(code),
                expires_at=expires_at or utcnow() + timedelta(days=3),
                used_at=used_at,
            )
        )

    async def user(self, user_id: int) -> User:
        async with self.db.transaction(write=False) as session:
            user = await session.get(User, user_id)
            assert user is not None
            return user

    async def users(self) -> list[User]:
        async with self.db.transaction(write=False) as session:
            return list((await session.execute(select(User).order_by(User.id))).scalars())

    async def binding_code_row(self, code_id: int) -> DeputyBindingCode:
        async with self.db.transaction(write=False) as session:
            row = await session.get(DeputyBindingCode, code_id)
            assert row is not None
            return row

    async def refresh_rows(self, user_id: int) -> list[RefreshToken]:
        async with self.db.transaction(write=False) as session:
            return list(
                (
                    await session.execute(
                        select(RefreshToken)
                        .where(RefreshToken.user_id == user_id)
                        .order_by(RefreshToken.created_at)
                    )
                ).scalars()
            )

    def claims(self, access_token: str) -> Principal:
        return decode_access_token(access_token, self.settings)


@pytest.fixture
def identity(factory: Factory, db: Database, settings: Settings) -> Identity:
    return Identity(factory, db, settings)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body
