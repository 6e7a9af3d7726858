"""Property-based run of schemathesis over the OpenAPI document.

A live server (uvicorn in a thread, its own database seeded with the demo district) is
called with generated requests, anonymously and as an admin. No answer may be a server error,
and every documented answer must match its own schema.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlalchemy import select
from sqlmodel import SQLModel

import app.models  # noqa: F401
from app.core.config import Settings
from app.core.db import Database
from app.core.security import Principal, Role, create_access_token
from app.demo import seed_demo_district, seed_demo_hotspots
from app.identity.models import User
from app.main import create_app
from tests.dbutil import fresh_database_url

CHECKS = [not_a_server_error, response_schema_conformance]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _prepare(settings: Settings) -> str:
    db = Database(settings)
    async with db.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    await seed_demo_district(db)
    await seed_demo_hotspots(db)
    async with db.transaction() as session:
        admin = (
            (await session.execute(select(User).where(User.role == Role.admin))).scalars().first()
        )
        assert admin is not None and admin.id is not None
        principal = Principal(user_id=admin.id, role=Role.admin)
    await db.dispose()
    return create_access_token(principal, settings)


@pytest.fixture(scope="module")
def live_server(settings: Settings) -> Iterator[dict[str, Any]]:
    fuzz_settings = settings.model_copy(
        update={"database_url": fresh_database_url(settings.database_url, "fuzz")}
    )
    token = asyncio.run(_prepare(fuzz_settings))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(fuzz_settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.05)
    yield {"base_url": f"http://127.0.0.1:{port}", "token": token}
    server.should_exit = True
    thread.join(timeout=10)


FUZZ = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _fuzz_every_operation(base_url: str, headers: dict[str, str]) -> list[str]:
    api_schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # The document must describe the API, not an empty shell.
    assert len(operations) >= 3, "the OpenAPI document lists almost no operations"
    for operation in operations:

        @given(case=operation.as_strategy())
        @FUZZ
        def call(case: Any) -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        try:
            call()
        except Exception as exc:  # one report for every failing operation
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
    return failures


def test_anonymous_requests(live_server: dict[str, Any]) -> None:
    failures = _fuzz_every_operation(live_server["base_url"], {})
    assert not failures, "\n\n".join(failures)


def test_admin_requests(live_server: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {live_server['token']}"}
    failures = _fuzz_every_operation(live_server["base_url"], headers)
    assert not failures, "\n\n".join(failures)
