"""Test harness: the real app over HTTP (httpx ASGI transport) on a real database.

The database is SQLite in a temporary file unless TEST_DATABASE_URL names another one
(`.ci/run` runs the suite a second time with PostgreSQL). Tables are dropped and created once
per run, so a database whose name does not say it is for tests is refused before anything
touches it; every test starts from empty tables and a reset clock. The temporary folder and the
extra databases some tests make are removed at the end of the run. The only fake is WeChat, a
real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers every table)
from app.core.clock import clock
from app.core.config import Settings
from app.core.db import Database
from app.main import create_app
from app.wechat.fake_server import FakeWeChat, FakeWeChatServer
from tests.dbutil import drop_fresh_databases, unsafe_test_database
from tests.factories import Factory

_TMP = Path(tempfile.mkdtemp(prefix="liaison-tests-"))

WECHAT_APPID = "wx-test-appid"
WECHAT_SECRET = "wx-test-secret"

# One fake WeChat for the whole run, started on first use (make_settings points at it).
_FAKE_WECHAT = FakeWeChatServer(FakeWeChat({WECHAT_APPID: WECHAT_SECRET}))


def fake_wechat_url() -> str:
    return _FAKE_WECHAT.base_url or _FAKE_WECHAT.start()


def database_url_for_tests() -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite+aiosqlite:///{_TMP / 'test.db'}"


def pytest_configure(config: pytest.Config) -> None:
    reason = unsafe_test_database(database_url_for_tests())
    if reason is not None:
        shutil.rmtree(_TMP, ignore_errors=True)
        raise pytest.UsageError(reason)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    try:
        drop_fresh_databases()
    finally:
        shutil.rmtree(_TMP, ignore_errors=True)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_env": "development",
        "database_url": database_url_for_tests(),
        "jwt_secret": "test-secret-" + "x" * 32,
        "wechat_appid": WECHAT_APPID,
        "wechat_secret": WECHAT_SECRET,
        "wechat_api_base_url": fake_wechat_url(),
        "media_dir": _TMP / "media",
        "log_level": "WARNING",
        "db_pool_size": 20,
        # Tests drive delivery themselves (tests/notify); no worker in the background.
        "run_worker_in_process": False,
        # Webhook receivers in the tests are plain-HTTP servers on 127.0.0.1.
        "webhook_allow_http": True,
        "webhook_allow_private_targets": True,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# A JWT secret production accepts (secrets.token_urlsafe(48) of one run).
PRODUCTION_JWT_SECRET = "q0Wf3b9xZ1kHn7LrT5vYc2MpS8dGu4AeJ6iKo_Xw-NlRzEt1VbQyHs0Fa3Cj9UmD"


def production_settings(**overrides: Any) -> Settings:
    """Settings production starts with: a strong secret, WeChat credentials, and a template
    id of the deployment's own for every subscribe-message event."""
    from app.notify.templates import DEFAULT_TEMPLATES

    templates = {
        event: {"template_id": f"tmpl-{event.replace('.', '-')}"}
        for event, raw in DEFAULT_TEMPLATES.items()
        if raw["template_id"]
    }
    values: dict[str, Any] = {
        "app_env": "production",
        "jwt_secret": PRODUCTION_JWT_SECRET,
        "notify_templates": templates,
        "allow_sqlite_in_production": True,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture(scope="session", autouse=True)
def _fake_wechat_server() -> Iterator[FakeWeChatServer]:
    fake_wechat_url()
    yield _FAKE_WECHAT
    _FAKE_WECHAT.stop()


@pytest.fixture
def fake_wechat() -> FakeWeChat:
    """The fake WeChat the app talks to: inject failures (`fail`), read what it received
    (`received`, `messages`), map codes (`openid_for`). Reset after every test."""
    return _FAKE_WECHAT.fake


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        db: Database = application.state.db
        async with db.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.drop_all)
            await conn.run_sync(SQLModel.metadata.create_all)
        yield application


@pytest.fixture(scope="session")
def db(app: FastAPI) -> Database:
    return app.state.db  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
async def _clean_state(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    # Requested before the test runs: pytest refuses new fixtures during teardown.
    database: Database | None = (
        request.getfixturevalue("db") if "app" in request.fixturenames else None
    )
    clock.reset()
    _FAKE_WECHAT.fake.reset()
    yield
    clock.reset()
    _FAKE_WECHAT.fake.reset()
    if database is None:
        return
    async with database.transaction() as session:
        for table in reversed(SQLModel.metadata.sorted_tables):
            await session.execute(delete(table))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as c:
        yield c


@pytest.fixture
def factory(app: FastAPI, db: Database, settings: Settings) -> Factory:
    return Factory(db, settings)
