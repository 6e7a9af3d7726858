"""pinyin sort keys: `name_sort` beside every name that lists are ordered by

Revision ID: 42248bdf7bf9
Revises: 713528ca2ef6
Create Date: 2026-11-29 23:17:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from app.core.sorting import pinyin_key

revision: str = '42248bdf7bf9'
down_revision: str | None = '713528ca2ef6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> length of its name column (the key holds 7 characters per name character)
TABLES = {'case_category': 50, 'deputy': 50, 'region': 100, 'station': 100, 'unit': 100}


def upgrade() -> None:
    bind = op.get_bind()
    for table, name_length in TABLES.items():
        # A plain ADD COLUMN on both databases (no table rebuild on SQLite); the empty
        # default only fills the existing rows until the backfill below replaces it.
        op.add_column(
            table,
            sa.Column(
                'name_sort',
                sqlmodel.sql.sqltypes.AutoString(length=7 * name_length),
                nullable=False,
                server_default='',
            ),
        )
        t = sa.table(table, sa.column('id', sa.Integer), sa.column('name', sa.String),
                     sa.column('name_sort', sa.String))
        rows = bind.execute(sa.select(t.c.id, t.c.name)).all()
        if rows:
            bind.execute(
                sa.update(t).where(t.c.id == sa.bindparam('row_id'))
                .values(name_sort=sa.bindparam('key')),
                [{'row_id': row_id, 'key': pinyin_key(name)} for row_id, name in rows],
            )
        if bind.dialect.name != 'sqlite':
            # The application always writes the key; SQLite cannot drop a default in place
            # and keeps the harmless empty one.
            op.alter_column(table, 'name_sort', server_default=None)


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch rebuild of a table that others reference
    # fails on SQLite while foreign keys are enforced.
    for table in reversed(list(TABLES)):
        op.drop_column(table, 'name_sort')
