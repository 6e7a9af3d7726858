"""Fresh, empty databases of the same kind as the test database, for tests that need their
own (migrations, the live server of the OpenAPI fuzz run)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def fresh_database_url(base_url: str, suffix: str) -> str:
    """An empty database next to `base_url`: a new SQLite file, or a recreated PostgreSQL
    database named `<name>_<suffix>`."""
    url = make_url(base_url)
    if url.get_backend_name() == "sqlite":
        path = Path(tempfile.mkdtemp(prefix=f"liaison-{suffix}-")) / f"{suffix}.db"
        return f"sqlite+aiosqlite:///{path}"
    name = f"{url.database}_{suffix}"
    admin = create_engine(
        url.set(drivername="postgresql+psycopg", database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)
