"""The Alembic migrations build the whole schema on an empty database, match the models
(no drift), and run down again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
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
    engine.dispose()


def test_one_head() -> None:
    script = ScriptDirectory.from_config(_config(database_url_for_tests()))
    assert len(script.get_heads()) == 1
