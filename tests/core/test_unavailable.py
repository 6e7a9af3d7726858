"""A database that cannot serve a request answers 503 `database_unavailable` with
Retry-After, never 500: the pool has no free connection within DB_POOL_TIMEOUT_SECONDS, the
server refuses connections, or the SQLite file cannot be opened."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.core.db import Database
from tests.conftest import database_url_for_tests, make_settings
from tests.serving import serving

LOGIN = {"username": "someone", "password": "password-1"}


def assert_unavailable(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    body: dict[str, Any] = response.json()
    assert body["code"] == "database_unavailable" and body["status"] == 503
    return body


async def _every_kind_of_request(client: httpx.AsyncClient) -> None:
    assert_unavailable(await client.get("/api/v1/regions"))
    assert_unavailable(await client.post("/api/v1/auth/password-login", json=LOGIN))
    assert_unavailable(await client.get("/readyz"))
    assert (await client.get("/healthz")).status_code == 200


async def test_refused_connections_answer_503(
    unused_tcp_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql://app:secret@127.0.0.1:{unused_tcp_port}/app"
    async with serving(make_settings(database_url=url)) as (_, client):
        # The app's logging setup replaced the root handlers: listen on the logger itself.
        errors = logging.getLogger("app.errors")
        errors.addHandler(caplog.handler)
        try:
            await _every_kind_of_request(client)
        finally:
            errors.removeHandler(caplog.handler)
    records = [r for r in caplog.records if r.name == "app.errors"]
    assert records and all(r.levelno == logging.WARNING and r.exc_info is None for r in records)
    assert all("secret" not in r.getMessage() for r in records)
    assert "ConnectionRefusedError" in records[0].getMessage()


async def test_an_unopenable_sqlite_file_answers_503(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder-not-a-file.db"
    folder.mkdir()
    async with serving(make_settings(database_url=f"sqlite:///{folder}")) as (_, client):
        await _every_kind_of_request(client)


async def test_a_full_pool_answers_503_after_the_pool_timeout(app: FastAPI) -> None:
    """`app` (the suite's) has made the tables; this test serves them with a pool of one."""
    if make_url(database_url_for_tests()).get_backend_name() != "postgresql":
        pytest.skip("the pool bound (DB_POOL_SIZE, no overflow) is PostgreSQL's")
    settings = make_settings(db_pool_size=1, db_pool_timeout_seconds=0.5)
    async with serving(settings) as (application, client):
        assert (await client.get("/api/v1/regions")).status_code == 200
        db: Database = application.state.db
        async with db.engine.connect() as held:
            await held.execute(text("SELECT 1"))
            started = time.monotonic()
            answers = await asyncio.gather(
                *(client.get("/api/v1/regions") for _ in range(4)),
                client.post("/api/v1/auth/password-login", json=LOGIN),
            )
            waited = time.monotonic() - started
            for response in answers:
                assert_unavailable(response)
            assert 0.5 <= waited < 5
        # The connection is back: requests are served again.
        assert (await client.get("/api/v1/regions")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200


async def test_other_failures_stay_500() -> None:
    """Only unavailability is a 503: an OSError that is not about the database is a 500."""
    async with serving(make_settings()) as (application, client):

        @application.get("/boom")
        async def boom() -> None:
            raise FileNotFoundError("no such media file")

        response = await client.get("/boom")
    assert response.status_code == 500 and response.json()["code"] == "internal_error"
    assert "retry-after" not in response.headers


def test_the_pool_timeout_is_a_setting() -> None:
    assert Settings.model_fields["db_pool_timeout_seconds"].default == 10.0
    with pytest.raises(ValueError, match="db_pool_timeout_seconds"):
        make_settings(db_pool_timeout_seconds=0)


async def test_the_503_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("http://test/openapi.json")).json()
    for path, method in (("/api/v1/regions", "get"), ("/readyz", "get")):
        answer = document["paths"][path][method]["responses"]["503"]
        example = answer["content"]["application/problem+json"]["example"]
        assert example["code"] == "database_unavailable"
        assert "Retry-After" in answer["headers"]
