"""DATABASE_URL in the spellings hosting platforms hand out: the normaliser, then real
connections with each spelling (SQLite files always; PostgreSQL when the suite runs on it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.config import ConfigError
from app.core.database_url import parse_database_url
from app.core.db import Database
from tests.conftest import database_url_for_tests, make_settings
from tests.core.test_cli import one_sentence, run_cli
from tests.serving import serving

# ---------------------------------------------------------------------------- the normaliser


@pytest.mark.parametrize(
    "raw",
    [
        "postgres://app:pw@db.example:5433/liaison",
        "postgresql://app:pw@db.example:5433/liaison",
        "postgresql+psycopg2://app:pw@db.example:5433/liaison",
        "postgresql+psycopg://app:pw@db.example:5433/liaison",
        "postgresql+asyncpg://app:pw@db.example:5433/liaison",
        "  POSTGRES://app:pw@db.example:5433/liaison\n",
    ],
)
def test_every_postgres_spelling_becomes_asyncpg(raw: str) -> None:
    target = parse_database_url(raw)
    assert target.render() == "postgresql+asyncpg://app:pw@db.example:5433/liaison"
    assert target.connect_args == {} and not target.is_sqlite
    assert target.describe() == "PostgreSQL database liaison at db.example:5433"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sqlite:///./data/app.db", "sqlite+aiosqlite:///./data/app.db"),
        ("sqlite+pysqlite:////var/lib/app.db", "sqlite+aiosqlite:////var/lib/app.db"),
        ("sqlite+aiosqlite:///app.db", "sqlite+aiosqlite:///app.db"),
    ],
)
def test_every_sqlite_spelling_becomes_aiosqlite(raw: str, expected: str) -> None:
    target = parse_database_url(raw)
    assert target.render() == expected and target.is_sqlite


def test_a_password_with_reserved_characters_survives() -> None:
    target = parse_database_url("postgres://app:p%40ss%2Fw%3Ard@db/liaison")
    assert target.url.password == "p@ss/w:rd"
    assert "p%40ss%2Fw%3Ard" in target.render()
    assert "p@ss" not in target.describe() and "ss" not in target.describe()


@pytest.mark.parametrize(
    "mode", ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
)
def test_sslmode_becomes_asyncpgs_ssl_argument(mode: str) -> None:
    target = parse_database_url(f"postgres://app@db/liaison?sslmode={mode}")
    assert target.connect_args == {"ssl": mode}
    assert target.url.query == {}


@pytest.mark.parametrize(
    ("flag", "mode"), [("true", "require"), ("false", "disable"), ("require", "require")]
)
def test_the_ssl_flag_some_platforms_write(flag: str, mode: str) -> None:
    assert parse_database_url(f"postgres://app@db/x?ssl={flag}").connect_args == {"ssl": mode}


def test_certificate_options_go_to_asyncpgs_libpq_parser(tmp_path: Path) -> None:
    root = tmp_path / "root.crt"
    root.write_text("not read until a connection is opened")
    target = parse_database_url(
        f"postgresql://app@db/x?sslmode=verify-full&sslrootcert={root}&sslpassword=k"
    )
    dsn = make_url(target.connect_args["dsn"])
    assert dsn.host is None and dsn.database is None
    assert dict(dsn.query) == {
        "sslrootcert": str(root),
        "sslpassword": "k",
        "sslmode": "verify-full",
    }
    assert "ssl" not in target.connect_args


def test_connect_timeout_and_application_name() -> None:
    target = parse_database_url(
        "postgres://app@db/x?connect_timeout=7&application_name=liaison-api"
    )
    assert target.connect_args == {
        "timeout": 7.0,
        "server_settings": {"application_name": "liaison-api"},
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "DATABASE_URL is empty"),
        ("not a url", "DATABASE_URL is not a database URL"),
        ("mysql://app@db/x", "starts with mysql://, which this service cannot use"),
        ("postgresql+pg8000://app@db/x", "starts with postgresql+pg8000://"),
        ("postgres://app@db/x?sslmode=sometimes", "sslmode=sometimes; use one of disable"),
        ("postgres://app@db/x?ssl=true&sslmode=disable", "sslmode and ssl, and they disagree"),
        (
            "postgres://app@db/x?pool_size=5&target=x",
            "option(s) pool_size, target that the PostgreSQL",
        ),
        (
            "postgres://app@db/x?sslrootcert=/nonexistent/root.crt",
            "sslrootcert=/nonexistent/root.crt",
        ),
        ("postgres://app@db/x?connect_timeout=soon", "connect_timeout=soon"),
        ("postgres://app@db/x?sslmode=require&sslmode=disable", "option sslmode more than once"),
        ("sqlite:///app.db?mode=ro", "option(s) mode that SQLite"),
        ("sqlite://host/app.db", "names a host"),
    ],
)
def test_unusable_urls_are_one_sentence(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=".*") as caught:
        parse_database_url(raw)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_settings_refuse_an_unusable_url_when_made() -> None:
    with pytest.raises(ConfigError, match="mysql"):
        make_settings(database_url="mysql://app@db/x")


# ---------------------------------------------------------------------- real connections


async def _select_one(url: str) -> object:
    db = Database(make_settings(database_url=url))
    try:
        async with db.engine.connect() as conn:
            return (await conn.execute(text("SELECT 1"))).scalar()
    finally:
        await db.dispose()


@pytest.mark.parametrize("scheme", ["sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"])
async def test_sqlite_spellings_connect(scheme: str, tmp_path: Path) -> None:
    assert await _select_one(f"{scheme}:///{tmp_path}/spelling.db") == 1
    assert (tmp_path / "spelling.db").exists()


def _postgres_url() -> str:
    url = make_url(database_url_for_tests())
    if url.get_backend_name() != "postgresql":
        pytest.skip(
            "real PostgreSQL connections: run with TEST_DATABASE_URL=postgresql+asyncpg://…"
        )
    return url.render_as_string(hide_password=False)


def _spelled(scheme: str, query: str = "") -> str:
    url = make_url(_postgres_url()).set(drivername=scheme)
    return url.render_as_string(hide_password=False) + query


async def _server_has_ssl() -> bool:
    db = Database(make_settings(database_url=_postgres_url()))
    try:
        async with db.engine.connect() as conn:
            return (await conn.execute(text("SHOW ssl"))).scalar() == "on"
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    "scheme",
    ["postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg", "postgresql+asyncpg"],
)
@pytest.mark.parametrize(
    "query",
    [
        "",
        "?sslmode=disable",
        "?sslmode=prefer",
        "?sslmode=allow",
        "?ssl=false",
        "?connect_timeout=5",
    ],
)
async def test_postgres_spellings_connect(scheme: str, query: str) -> None:
    assert await _select_one(_spelled(scheme, query)) == 1


async def test_application_name_reaches_the_server() -> None:
    db = Database(
        make_settings(database_url=_spelled("postgres", "?application_name=liaison-test"))
    )
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SHOW application_name"))).scalar() == "liaison-test"
    finally:
        await db.dispose()


@pytest.fixture
async def require_ssl_client() -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url=_spelled("postgres", "?sslmode=require"))
    async with serving(settings, base_url="http://test/api/v1") as (_, client):
        yield client


async def test_sslmode_require_against_a_server_without_ssl_answers_503(
    require_ssl_client: httpx.AsyncClient,
) -> None:
    if await _server_has_ssl():
        assert (await require_ssl_client.get("/regions")).status_code == 200
        return
    response = await require_ssl_client.get("/regions")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "database_unavailable"
    assert int(response.headers["retry-after"]) > 0


async def test_sslmode_require_against_a_server_without_ssl_is_one_sentence_in_the_cli(
    tmp_path: Path,
) -> None:
    url = _spelled("postgres", "?sslmode=require")
    if await _server_has_ssl():
        pytest.skip("the local server speaks SSL")
    result = run_cli("migrate", database_url=url, cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    line = one_sentence(result)
    assert line.startswith("cannot use the PostgreSQL database") and "SSL" in line
