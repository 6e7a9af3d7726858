"""The migration that adds the pinyin sort keys fills them in for rows that already exist."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import MetaData, Table, create_engine, select

from tests.conftest import database_url_for_tests
from tests.dbutil import fresh_database_url
from tests.test_migrations import _config, _sync_url

BEFORE_SORT_KEYS = "713528ca2ef6"
SORT_KEYS = "42248bdf7bf9"


def test_existing_rows_get_their_sort_keys() -> None:
    url = fresh_database_url(database_url_for_tests(), "sortkeys")
    config = _config(url)
    command.upgrade(config, BEFORE_SORT_KEYS)

    engine = create_engine(_sync_url(url))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        meta = MetaData()
        t = {
            name: Table(name, meta, autoload_with=conn)
            for name in ("region", "station", "unit", "deputy", "case_category")
        }
        conn.execute(
            t["region"].insert(),
            [
                {"id": 1, "name": "重庆市", "level": "city", "path": "/1/", "created_at": now},
                {"id": 2, "name": "长沙市", "level": "city", "path": "/2/", "created_at": now},
            ],
        )
        conn.execute(
            t["station"].insert(),
            [
                {
                    "kind": "station",
                    "name": "银行大厦联络站",
                    "region_id": 1,
                    "radius_m": 300,
                    "qr_mode": "printed",
                    "qr_version": 1,
                    "is_active": True,
                    "version": 1,
                    "created_at": now,
                }
            ],
        )
        conn.execute(
            t["unit"].insert(),
            [{"name": "区住建委", "kind": "government", "is_active": True, "created_at": now}],
        )
        conn.execute(
            t["deputy"].insert(),
            [
                {
                    "name": "张 Wei",
                    "level": "district",
                    "is_active": True,
                    "version": 1,
                    "created_at": now,
                }
            ],
        )
        conn.execute(
            t["case_category"].insert(),
            [
                {
                    "code": "env",
                    "name": "环境卫生",
                    "default_deadline_days": 10,
                    "sort_order": 0,
                    "is_active": True,
                }
            ],
        )

    command.upgrade(config, SORT_KEYS)

    with engine.connect() as conn:
        meta = MetaData()

        def keys(table: str) -> list[str]:
            rows = Table(table, meta, autoload_with=conn)
            return list(conn.execute(select(rows.c.name_sort).order_by(rows.c.id)).scalars().all())

        assert keys("region") == ["chong qing shi", "chang sha shi"]
        assert keys("station") == ["yin hang da sha lian luo zhan"]
        assert keys("unit") == ["qu zhu jian wei"]
        assert keys("deputy") == ["zhang wei"]
        assert keys("case_category") == ["huan jing wei sheng"]
    engine.dispose()

    command.upgrade(config, "head")
    command.downgrade(config, BEFORE_SORT_KEYS)
