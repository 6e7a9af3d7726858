"""Alembic environment: the same migrations on SQLite (batch mode) and PostgreSQL.

On PostgreSQL the whole run holds a session-level advisory lock, so replicas (or a migrate
job and a replica) that start together migrate one after the other: the second finds the
schema at head and does nothing, instead of failing halfway through creating it.
"""

from __future__ import annotations

import asyncio
import logging
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

import app.models  # noqa: F401  (registers every table)
from app.core.config import ConfigError, Settings, get_settings
from app.core.db import create_engine, metadata, unavailable_message

# Any fixed number, the same in every process that migrates this database.
MIGRATION_LOCK_KEY = 7_262_011_290_001

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def _settings() -> Settings:
    settings = get_settings()
    url = config.attributes.get("database_url")
    if url:
        settings = settings.model_copy(update={"database_url": str(url)})
    settings.database  # noqa: B018  (ConfigError for a URL that cannot be used)
    return settings


def _configure(connection: Connection | None = None, **kwargs: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline(settings: Settings) -> None:
    _configure(
        url=settings.database.render(), literal_binds=True, dialect_opts={"paramstyle": "named"}
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    locking = connection.dialect.name == "postgresql"
    if locking:
        logger.info("taking the migration lock")
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        # The lock belongs to the session, not to this transaction: end it, keep the lock.
        connection.commit()
    try:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if locking:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()


async def run_migrations_online(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
    finally:
        await engine.dispose()


def main() -> None:
    try:
        settings = _settings()
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    if context.is_offline_mode():
        run_migrations_offline(settings)
        return
    try:
        asyncio.run(run_migrations_online(settings))
    except Exception as exc:
        message = unavailable_message(settings, exc)
        if message is None:
            raise
        raise SystemExit(message) from None


main()
