"""The suite drops every table of its database: it refuses one whose name does not say it is
for tests, before touching it, and removes what it made (its temporary folder, the extra
databases some tests create) at the end of every run, a failing one too."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import database_url_for_tests

ROOT = Path(__file__).resolve().parents[1]


def _pytest(tmp: Path, database_url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}
    env.pop("TEST_DATABASE_URL", None)
    if database_url is not None:
        env["TEST_DATABASE_URL"] = database_url
    tmp.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres", "the database 'postgres'"),
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/liaison", "the database 'liaison'"),
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/testing", "the database 'testing'"),
        (f"sqlite+aiosqlite:///{ROOT}/data/app.db", f"the SQLite file {ROOT}/data/app.db"),
    ],
)
def test_a_database_not_named_for_tests_is_refused(tmp_path: Path, url: str, named: str) -> None:
    # --collect-only: even if the guard failed, no test would run against that database.
    run = _pytest(tmp_path / "tmp", url, "--collect-only", "tests/core")
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert run.stderr.strip() == (
        f"ERROR: TEST_DATABASE_URL names {named}, which "
        + (
            "does not look like a test database (test, test_* or *_test)"
            if url.startswith("postgresql")
            else "is neither in a temporary folder nor named for tests"
        )
        + ", and the tests drop every table in their database, so they refuse to run."
    )
    assert "collected" not in run.stdout
    assert not (ROOT / "data" / "app.db").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_refused_database_is_never_connected_to(tmp_path: Path) -> None:
    """A listening socket stands in for the server: a run that got past the guard would
    connect to it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        run = _pytest(tmp_path / "tmp", url, "tests/core/test_errors_and_health.py")
        assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
        assert "does not look like a test database" in run.stderr
        with pytest.raises(BlockingIOError):
            server.accept()


def _database_exists(base_url: str, name: str) -> bool:
    admin = create_engine(
        make_url(base_url).set(drivername="postgresql+psycopg", database="postgres")
    )
    try:
        with admin.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
    finally:
        admin.dispose()
    return found is not None


PROBE = """
from pathlib import Path

from tests.conftest import database_url_for_tests
from tests.dbutil import fresh_database_url


def test_makes_a_database_then_fails():
    url = fresh_database_url(database_url_for_tests(), "leftover")
    Path(__file__).with_name("made.txt").write_text(url)
    raise AssertionError("fails on purpose")
"""


def test_a_failing_run_still_removes_what_it_made(tmp_path: Path) -> None:
    probe = tmp_path / "probe" / "test_probe.py"
    probe.parent.mkdir()
    probe.write_text(PROBE)
    base = database_url_for_tests()
    given = None if make_url(base).get_backend_name() == "sqlite" else base
    run = _pytest(
        tmp_path / "tmp",
        given,
        "-p",
        "tests.conftest",
        "--rootdir",
        str(ROOT),
        "-c",
        str(ROOT / "pyproject.toml"),
        str(probe),
    )
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout + run.stderr
    assert "fails on purpose" in run.stdout
    made = make_url((probe.parent / "made.txt").read_text())
    if given is None:
        assert made.database is not None
        assert Path(made.database).is_relative_to(tmp_path / "tmp")
    else:
        assert made.database == f"{make_url(base).database}_leftover"
        assert not _database_exists(base, made.database)
    # The run's own folder (SQLite database, media) and the fresh database's folder are gone.
    assert list((tmp_path / "tmp").iterdir()) == []
