"""The test database's guard, and fresh, empty databases of the same kind as the test
database for tests that need their own (migrations, the live server of the OpenAPI fuzz run).

The suite drops every table of the database it runs on, so it refuses one whose name does not
say it is for tests. Every database and folder made here is removed at the end of the run
(`drop_fresh_databases`, called from tests/conftest.py), whether tests passed or not.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

_made_dirs: list[Path] = []
_made_databases: dict[str, URL] = {}


def looks_like_test_database(name: str) -> bool:
    return name == "test" or name.startswith("test_") or name.endswith("_test")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def unsafe_test_database(url: str) -> str | None:
    """Why the tests must not run on `url` (one sentence), or None when they may."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "TEST_DATABASE_URL is not a database URL, so the tests refuse to run."
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            return None
        path = Path(parsed.database).expanduser().resolve()
        if "test" in path.name.lower() or _inside(path, Path(tempfile.gettempdir()).resolve()):
            return None
        return (
            f"TEST_DATABASE_URL names the SQLite file {path}, which is neither in a temporary "
            "folder nor named for tests, and the tests drop every table in their database, "
            "so they refuse to run."
        )
    name = parsed.database or ""
    if looks_like_test_database(name):
        return None
    return (
        f"TEST_DATABASE_URL names the database {name!r}, which does not look like a test "
        "database (test, test_* or *_test), and the tests drop every table in their "
        "database, so they refuse to run."
    )


def fresh_database_url(base_url: str, suffix: str) -> str:
    """An empty database next to `base_url`: a new SQLite file, or a recreated PostgreSQL
    database named `<name>_<suffix>`."""
    url = make_url(base_url)
    if url.get_backend_name() == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"liaison-{suffix}-"))
        _made_dirs.append(folder)
        return f"sqlite+aiosqlite:///{folder / f'{suffix}.db'}"
    name = f"{url.database}_{suffix}"
    admin_url = url.set(drivername="postgresql+psycopg", database="postgres")
    _made_databases[name] = admin_url
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_fresh_databases() -> None:
    """Drop every database and remove every folder `fresh_database_url` made."""
    while _made_dirs:
        shutil.rmtree(_made_dirs.pop(), ignore_errors=True)
    while _made_databases:
        name, admin_url = _made_databases.popitem()
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()
