"""Engine, session and the one-transaction-per-request dependency.

Services only `flush()`; the session dependency commits once, before the response is sent,
or rolls back. On SQLite, write transactions are serialized inside the process with an
asyncio lock: SQLite allows one writer, and letting its busy handler sleep instead made p99
latency reach seconds under load. Races between requests are still settled by the database
(conditional UPDATEs, unique constraints), never by this lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from app.core.config import Settings
from app.core.errors import DatabaseUnreachable, database_unavailable_cause

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite keeps no offset, so values are stored naive in UTC there and made aware on the
    way out; PostgreSQL stores `timestamptz`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use app.core.clock.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _connect_or_unreachable(
    dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    # The drivers raise bare OSErrors when nothing answers; give them one type, so a
    # refused connection is told apart from any other OSError (app.core.errors).
    try:
        return dialect.connect(*cargs, **cparams)
    except (OSError, TimeoutError) as exc:
        raise DatabaseUnreachable(f"{type(exc).__name__}: {exc}") from exc


def create_engine(settings: Settings) -> AsyncEngine:
    target = settings.database
    if target.is_sqlite:
        path = target.sqlite_path
        if path:
            # A folder that cannot be made shows up as an unopenable database (503), with
            # the reason logged, rather than as a crash here.
            with suppress(OSError):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            target.url,
            connect_args={"timeout": 30},
            pool_timeout=settings.db_pool_timeout_seconds,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # Size the pool to the request concurrency and never overflow: opening a PostgreSQL
    # connection per burst cost more than the queries themselves. A request that finds no
    # free connection within DB_POOL_TIMEOUT_SECONDS answers 503 (app.core.errors).
    engine = create_async_engine(
        target.url,
        connect_args=target.connect_args,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=False,
        pool_recycle=1800,
    )
    event.listen(engine.sync_engine, "do_connect", _connect_or_unreachable)
    return engine


class Database:
    """The engine and a session factory, held on `app.state.db`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        self.sessionmaker = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, autoflush=False
        )
        self.is_sqlite = settings.is_sqlite
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        if self.is_sqlite and write:
            async with self._write_lock, self._session() as session:
                yield session
        else:
            async with self._session() as session:
                yield session

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        session = self.sessionmaker()
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            await session.close()

    async def dispose(self) -> None:
        await self.engine.dispose()


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.transaction(write=request.method not in SAFE_METHODS) as session:
        yield session


# scope="function": the transaction commits before the response leaves, so a client never
# sees success for a change that then failed to commit.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """`INSERT` of the session's dialect, for `ON CONFLICT` (SQLite and PostgreSQL alike)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


async def get_db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def unavailable_message(settings: Settings, exc: BaseException) -> str | None:
    """One sentence for an operator when `exc` means the database cannot be reached (the
    CLI and migrations print it instead of a traceback), else None."""
    cause = database_unavailable_cause(exc)
    if cause is None:
        return None
    reason = str(cause) or type(cause).__name__
    if isinstance(cause, SQLAlchemyTimeoutError):
        reason = "no free connection in the pool"
    return f"cannot use the {settings.database.describe()}: {reason.splitlines()[0]}"
