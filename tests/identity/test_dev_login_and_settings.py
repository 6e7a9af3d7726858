"""POST /auth/dev-login (development only) and the settings production refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.core.config import DEFAULT_JWT_SECRET, ConfigError
from app.core.security import Role
from app.identity.router import hide_development_endpoints
from app.main import API_PREFIX, create_app
from app.startup import refuse_unsafe_production
from tests.conftest import make_settings, production_settings
from tests.factories import Factory
from tests.identity.conftest import Identity, assert_problem, bearer

DEV = "/auth/dev-login"
PRODUCTION_SECRET = "a-production-secret-of-more-than-32-characters"


async def test_dev_login_creates_then_finds_the_account(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    first = await client.post(DEV, json={"openid": "dev-resident-1", "nickname": "测试居民"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["user"]["role"] == "resident" and body["user"]["nickname"] == "测试居民"
    again = await client.post(DEV, json={"openid": "dev-resident-1"})
    assert again.json()["user"]["id"] == body["user"]["id"]
    assert again.json()["user"]["nickname"] == "测试居民"
    users = await identity.users()
    assert [(u.openid, u.role) for u in users] == [("dev-resident-1", Role.resident)]
    me = await client.get("/me", headers=bearer(again.json()["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == body["user"]["id"]


async def test_dev_login_as_a_bound_deputy(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    deputy = await factory.deputy()
    await factory.deputy_actor(deputy, openid="dev-deputy")
    response = await client.post(DEV, json={"openid": "dev-deputy"})
    assert identity.claims(response.json()["access_token"]).deputy_id == deputy.id


async def test_dev_login_validation(client: httpx.AsyncClient, identity: Identity) -> None:
    for body in ({}, {"openid": ""}, {"openid": "has space"}, {"openid": "x" * 65}):
        problem = assert_problem(await client.post(DEV, json=body), 422, "validation_error")
        assert [e["field"] for e in problem["errors"]] == ["body.openid"]
    broken = await client.post(DEV, content=b"{", headers={"Content-Type": "application/json"})
    assert_problem(broken, 422, "validation_error")
    assert await identity.users() == []


@pytest.fixture
async def production_client() -> AsyncIterator[httpx.AsyncClient]:
    production = create_app(production_settings())
    transport = httpx.ASGITransport(app=production, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as c:
        yield c


async def test_dev_login_does_not_exist_in_production(
    production_client: httpx.AsyncClient,
) -> None:
    unknown = await production_client.post("/auth/no-such-login", json={"openid": "x"})
    assert_problem(unknown, 404, "not_found")
    for body in ({"openid": "dev-resident-1"}, {}, {"openid": ""}):
        response = await production_client.post(DEV, json=body)
        assert_problem(response, 404, "not_found")
        assert response.json() == unknown.json()
    broken = await production_client.post(
        DEV, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_problem(broken, 404, "not_found")


async def test_production_document_can_leave_dev_login_out() -> None:
    production = create_app(production_settings())
    hide_development_endpoints(production, API_PREFIX)
    paths = production.openapi()["paths"]
    assert f"{API_PREFIX}/auth/wechat-login" in paths
    assert f"{API_PREFIX}/auth/dev-login" not in paths
    development = create_app(make_settings())
    assert f"{API_PREFIX}/auth/dev-login" in development.openapi()["paths"]


def _production(**overrides: Any) -> None:
    values: dict[str, Any] = {
        "database_url": "postgresql+asyncpg://app@db:5432/app",
        "allow_sqlite_in_production": False,
    }
    values.update(overrides)
    refuse_unsafe_production(production_settings(**values))


def test_production_accepts_sound_settings() -> None:
    _production()
    _production(jwt_secret=PRODUCTION_SECRET)
    _production(database_url="sqlite+aiosqlite:///./data/app.db", allow_sqlite_in_production=True)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"jwt_secret": DEFAULT_JWT_SECRET}, "JWT_SECRET"),
        ({"jwt_secret": ""}, "JWT_SECRET"),
        ({"jwt_secret": "short-secret"}, "JWT_SECRET"),
        ({"wechat_appid": ""}, "WECHAT_APPID"),
        ({"wechat_secret": ""}, "WECHAT_SECRET"),
        ({"database_url": "sqlite+aiosqlite:///./data/app.db"}, "SQLite"),
    ],
    ids=[
        "default-secret",
        "empty-secret",
        "short-secret",
        "no-appid",
        "no-wechat-secret",
        "sqlite",
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _production(**overrides)


def test_development_tolerates_what_production_refuses() -> None:
    settings = make_settings(
        jwt_secret=DEFAULT_JWT_SECRET,
        wechat_appid="",
        wechat_secret="",
        database_url="sqlite+aiosqlite:///./data/app.db",
    )
    assert not settings.is_production and not settings.wechat_configured
