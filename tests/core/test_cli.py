"""`python -m app.cli` as an operator runs it: a real subprocess on a freshly migrated, empty
database of the kind the suite runs on (SQLite, or PostgreSQL with TEST_DATABASE_URL), then
checked through the API."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.demo import ADMIN_PASSWORD, STAFF_PASSWORD
from tests.conftest import database_url_for_tests, make_settings
from tests.dbutil import fresh_database_url
from tests.serving import serving

ROOT = Path(__file__).resolve().parents[2]


def platform_spelling(url: str) -> str:
    """The URL as a hosting platform hands it out (postgres://…, sqlite:///…)."""
    parsed = make_url(url)
    scheme = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgres"
    return parsed.set(drivername=scheme).render_as_string(hide_password=False)


def run_cli(
    *args: str, database_url: str, cwd: Path, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in ("WECHAT_APPID", "WECHAT_SECRET", "WECHAT_API_BASE_URL", "TRUSTED_PROXIES")
    }
    environment = {
        **inherited,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "APP_ENV": "development",
        "LOG_LEVEL": "WARNING",
        "MEDIA_DIR": str(cwd / "media"),
        **env,
    }
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "app.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def fresh_url() -> str:
    """Dropped at the end of the run (tests.dbutil.drop_fresh_databases)."""
    return fresh_database_url(database_url_for_tests(), "cli")


async def _login(url: str, username: str, password: str) -> httpx.Response:
    async with serving(make_settings(database_url=url), base_url="http://test/api/v1") as (_, c):
        return await c.post(
            "/auth/password-login", json={"username": username, "password": password}
        )


async def test_every_command_on_a_freshly_migrated_empty_database(
    fresh_url: str, tmp_path: Path
) -> None:
    url = platform_spelling(fresh_url)

    migrated = run_cli("migrate", database_url=url, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "latest migration" in migrated.stdout

    idle = run_cli("worker", "--once", database_url=url, cwd=tmp_path)  # nothing to do yet
    assert idle.returncode == 0, idle.stderr
    assert idle.stdout.strip() == "worker stopped"

    created = run_cli(
        "create-admin", "root", "--password", "first-pass-1", database_url=url, cwd=tmp_path
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "admin root created"
    login = await _login(fresh_url, "root", "first-pass-1")
    assert login.status_code == 200, login.text
    assert login.json()["user"]["role"] == "admin"

    reset = run_cli(
        "create-admin", "root", "--password", "second-pass-2", database_url=url, cwd=tmp_path
    )
    assert reset.returncode == 0 and reset.stdout.strip() == "admin root updated", reset.stderr
    assert (await _login(fresh_url, "root", "first-pass-1")).status_code == 401
    assert (await _login(fresh_url, "root", "second-pass-2")).status_code == 200

    for _ in range(2):  # idempotent
        seeded = run_cli("seed-demo", database_url=url, cwd=tmp_path)
        assert seeded.returncode == 0, seeded.stderr
    assert (await _login(fresh_url, "staff", STAFF_PASSWORD)).status_code == 200
    assert (await _login(fresh_url, "admin", ADMIN_PASSWORD)).status_code == 200

    worker = run_cli("worker", "--once", database_url=url, cwd=tmp_path)
    assert worker.returncode == 0, worker.stderr
    assert worker.stdout.strip() == "worker stopped"

    again = run_cli("migrate", database_url=url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ (INFO|WARNING) ")


def one_sentence(result: subprocess.CompletedProcess[str]) -> str:
    """The one line the operator reads (log lines aside), with no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [
        line for line in result.stderr.splitlines() if line.strip() and not _LOG_LINE.match(line)
    ]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["migrate"],
        ["create-admin", "x", "--password", "p" * 8],
        ["seed-demo"],
        ["worker", "--once"],
    ],
)
def test_a_database_that_refuses_connections_is_one_sentence(
    command: list[str], tmp_path: Path, unused_tcp_port: int
) -> None:
    url = f"postgresql://app:secret@127.0.0.1:{unused_tcp_port}/app"
    result = run_cli(*command, database_url=url, cwd=tmp_path, timeout=60)
    assert result.returncode == 1
    line = one_sentence(result)
    assert line.startswith(f"cannot use the PostgreSQL database app at 127.0.0.1:{unused_tcp_port}")
    assert "secret" not in line


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "mysql://app@db/app"}, "DATABASE_URL starts with mysql://"),
        ({"DATABASE_URL": "postgres://app@db/app?sslmode=maybe"}, "sslmode=maybe"),
        ({"DATABASE_URL": "postgres://app@db/app?pool=3"}, "option(s) pool"),
        ({"DB_POOL_SIZE": "many"}, "DB_POOL_SIZE"),
        ({"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"),
    ],
)
def test_unusable_settings_are_one_sentence(
    env: dict[str, str], expected: str, tmp_path: Path
) -> None:
    values = {
        "database_url": f"sqlite:///{tmp_path}/x.db",
        **{k.lower(): v for k, v in env.items()},
    }
    database_url = values.pop("database_url")
    result = run_cli(
        "create-admin",
        "x",
        "--password",
        "p" * 8,
        database_url=database_url,
        cwd=tmp_path,
        **{k.upper(): v for k, v in values.items()},
    )
    assert result.returncode == 2
    line = one_sentence(result)
    assert line.startswith("configuration error: ") and expected in line


def test_a_short_password_is_refused(tmp_path: Path) -> None:
    result = run_cli(
        "create-admin",
        "x",
        "--password",
        "short",
        database_url=f"sqlite:///{tmp_path}/x.db",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "at least 8 characters" in one_sentence(result)
    assert not (tmp_path / "x.db").exists()


def test_the_container_checks_and_migrates_before_serving() -> None:
    command = next(
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD")
    )
    check, migrate, serve = (
        command.index(part) for part in ("app.cli check", "app.cli migrate", "uvicorn")
    )
    assert check < migrate < serve
    assert "--no-proxy-headers" in command and "alembic" not in command


@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        ("postgres://app@db/x?sslmode=sometimes", "configuration error: DATABASE_URL has sslmode"),
        ("postgres://app:secret@127.0.0.1:{port}/app", "cannot use the PostgreSQL database app"),
    ],
)
def test_alembic_itself_answers_in_one_sentence(
    database_url: str, expected: str, tmp_path: Path, unused_tcp_port: int
) -> None:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url.format(port=unused_tcp_port),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert one_sentence(result).startswith(expected)
