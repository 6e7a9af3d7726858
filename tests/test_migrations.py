"""The Alembic migrations build the whole schema on an empty database, match the models
(no drift), and run down again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import app.models  # noqa: F401
from app.core.db import metadata
from tests.conftest import database_url_for_tests
from tests.dbutil import fresh_database_url


def _config(url: str) -> Config:
    config = Config("alembic.ini")
    config.attributes["database_url"] = url
    config.attributes["skip_logging"] = True
    return config


def _sync_url(url: str) -> str:
    parsed = make_url(url)
    driver = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def test_migrations_match_models_and_reverse() -> None:
    url = fresh_database_url(database_url_for_tests(), "migrations")
    config = _config(url)
    command.upgrade(config, "head")

    engine = create_engine(_sync_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            drift = compare_metadata(context, metadata)
            tables = set(inspect(conn).get_table_names())
        assert drift == [], f"models and migrations differ: {drift}"
        assert {t.name for t in metadata.sorted_tables} <= tables

        # `alembic check` is the same comparison, as operators run it.
        command.check(config)

        command.downgrade(config, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        # Disposed even when an assertion fails: a pooled connection left to the garbage
        # collector would fail a later test with a ResourceWarning.
        engine.dispose()


def test_one_head() -> None:
    script = ScriptDirectory.from_config(_config(database_url_for_tests()))
    assert len(script.get_heads()) == 1


def test_concurrent_upgrades_on_an_empty_database_all_succeed() -> None:
    """Replicas that all run `alembic upgrade head` at start, started together: the advisory
    lock in migrations/env.py lets one migrate while the others wait, then find it done."""
    base = database_url_for_tests()
    if make_url(base).get_backend_name() != "postgresql":
        pytest.skip("the migration lock is PostgreSQL's; SQLite runs one process")
    url = fresh_database_url(base, "concurrent_migrations")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    commands = [
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        [sys.executable, "-m", "app.cli", "migrate"],
    ]
    processes = [
        subprocess.Popen(  # noqa: S603
            command,
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    outputs = [p.communicate(timeout=180) for p in processes]
    results = [(p.returncode, out) for p, out in zip(processes, outputs, strict=True)]
    for code, (_out, err) in results:
        assert code == 0, err
    # Exactly one of them ran the migrations; the others found the schema at head.
    ran = [err for _code, (_out, err) in results if "Running upgrade" in err]
    assert len(ran) == 1, [err for _code, (_out, err) in results]

    head = ScriptDirectory.from_config(_config(url)).get_current_head()
    engine = create_engine(_sync_url(url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
            head
        ]
        assert {t.name for t in metadata.sorted_tables} <= set(inspect(conn).get_table_names())
    engine.dispose()
