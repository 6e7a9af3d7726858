"""`DATABASE_URL` as hosting platforms hand it out, turned into the async driver's form.

Accepted spellings:

- PostgreSQL: `postgres://`, `postgresql://`, `postgresql+psycopg2://`, `postgresql+psycopg://`,
  `postgresql+asyncpg://` → `postgresql+asyncpg://` (asyncpg is the only PostgreSQL driver a
  runtime install has).
- SQLite: `sqlite:///path`, `sqlite+pysqlite:///path`, `sqlite+aiosqlite:///path` →
  `sqlite+aiosqlite:///path`.

libpq's query options are translated for asyncpg, which takes none of them as keywords:

- `sslmode` (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`), and `ssl`
  (`true`/`false` or a mode, as some platforms write it) → asyncpg's `ssl` argument;
- `sslrootcert`, `sslcert`, `sslkey`, `sslpassword`, `sslcrl` → handed to asyncpg's own libpq
  option parser, which builds the TLS context exactly as libpq would (the files must exist);
- `connect_timeout` (seconds) → asyncpg's `timeout`; `application_name` → a server setting.

Any other option is refused with one sentence naming it, before anything connects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from app.core.config import ConfigError

POSTGRES_DRIVERS = frozenset(
    {"postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg", "postgresql+asyncpg"}
)
SQLITE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"})

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SSL_FILES = ("sslrootcert", "sslcert", "sslkey", "sslcrl")
_SSL_BOOLEANS = {"true": "require", "1": "require", "false": "disable", "0": "disable"}
POSTGRES_OPTIONS = (
    "sslmode",
    "ssl",
    *SSL_FILES,
    "sslpassword",
    "connect_timeout",
    "application_name",
)


@dataclass(frozen=True)
class DatabaseUrl:
    """A usable database address: the SQLAlchemy URL and the driver's connect arguments."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def sqlite_path(self) -> str | None:
        """The database file (None for an in-memory database)."""
        database = self.url.database
        return database if database and database != ":memory:" else None

    def render(self) -> str:
        """The URL with its password, for a driver or a subprocess (never for a log)."""
        return self.url.render_as_string(hide_password=False)

    def describe(self) -> str:
        """Where the database is, for messages: no password, no options."""
        if self.is_sqlite:
            return f"SQLite file {self.sqlite_path or ':memory:'}"
        host = self.url.host or "the local socket"
        port = f":{self.url.port}" if self.url.port else ""
        return f"PostgreSQL database {self.url.database or '(default)'} at {host}{port}"


def _one(value: str | tuple[str, ...], name: str) -> str:
    if isinstance(value, tuple):
        if len(value) != 1:
            raise ConfigError(f"DATABASE_URL gives the option {name} more than once")
        return value[0]
    return value


def _postgres(url: URL) -> DatabaseUrl:
    options = {name: _one(value, name) for name, value in url.query.items()}
    unknown = sorted(set(options) - set(POSTGRES_OPTIONS))
    if unknown:
        raise ConfigError(
            f"DATABASE_URL has option(s) {', '.join(unknown)} that the PostgreSQL driver "
            f"cannot take; supported: {', '.join(POSTGRES_OPTIONS)}"
        )
    connect_args: dict[str, Any] = {}

    mode = options.pop("sslmode", None)
    ssl_flag = options.pop("ssl", None)
    if ssl_flag is not None:
        flag_mode = _SSL_BOOLEANS.get(ssl_flag.lower(), ssl_flag.lower())
        if mode is not None and mode != flag_mode:
            raise ConfigError("DATABASE_URL gives both sslmode and ssl, and they disagree")
        mode = flag_mode
    if mode is not None and mode not in SSL_MODES:
        raise ConfigError(f"DATABASE_URL has sslmode={mode}; use one of {', '.join(SSL_MODES)}")
    ssl_files = {name: options.pop(name) for name in SSL_FILES if name in options}
    ssl_password = options.pop("sslpassword", None)
    for name, path in ssl_files.items():
        if not os.path.isfile(os.path.expanduser(path)):
            raise ConfigError(f"DATABASE_URL names {name}={path}, which is not a readable file")
    if ssl_files or ssl_password is not None:
        # asyncpg reads the certificate options only from a DSN: give it one that carries
        # nothing but them (host, user and database still come from the URL's own parts).
        libpq = {**ssl_files, **({"sslpassword": ssl_password} if ssl_password else {})}
        if mode is not None:
            libpq["sslmode"] = mode
        connect_args["dsn"] = "postgresql://?" + urlencode(libpq)
    elif mode is not None:
        connect_args["ssl"] = mode

    timeout = options.pop("connect_timeout", None)
    if timeout is not None:
        try:
            seconds = float(timeout)
        except ValueError:
            seconds = -1
        if seconds <= 0:
            raise ConfigError(
                f"DATABASE_URL has connect_timeout={timeout}; give a positive number of seconds"
            )
        connect_args["timeout"] = seconds
    application_name = options.pop("application_name", None)
    if application_name:
        connect_args["server_settings"] = {"application_name": application_name}

    return DatabaseUrl(url.set(drivername="postgresql+asyncpg", query={}), connect_args)


def _sqlite(url: URL) -> DatabaseUrl:
    if url.query:
        raise ConfigError(
            f"DATABASE_URL has option(s) {', '.join(sorted(url.query))} that SQLite does not "
            "take here; give only the file path (sqlite:///path/to/app.db)"
        )
    if url.host or url.username or url.port:
        raise ConfigError(
            "DATABASE_URL for SQLite names a host; write sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    return DatabaseUrl(url.set(drivername="sqlite+aiosqlite"))


def parse_database_url(raw: str) -> DatabaseUrl:
    """The async form of `raw`, or a ConfigError that says in one sentence what is wrong."""
    raw = raw.strip()
    if not raw:
        raise ConfigError("DATABASE_URL is empty; set it to postgresql://… or sqlite:///…")
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ConfigError(
            "DATABASE_URL is not a database URL; write postgresql://user:password@host:5432/name "
            "or sqlite:///path/to/app.db"
        ) from None
    driver = url.drivername.lower()
    if driver in POSTGRES_DRIVERS:
        return _postgres(url)
    if driver in SQLITE_DRIVERS:
        return _sqlite(url)
    raise ConfigError(
        f"DATABASE_URL starts with {url.drivername}://, which this service cannot use; "
        "use postgresql:// (or postgres://) or sqlite:///"
    )
