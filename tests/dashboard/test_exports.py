"""GET /exports/cases: the list's filters, Chinese headers, masking, scope and roles, read
back with the csv module and openpyxl."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from app.cases.models import CaseStatus, Satisfaction
from app.core.clock import clock
from app.dashboard.case_export import CASE_HEADERS
from app.org.models import Station, Unit
from tests.dashboard.helpers import Rows, sh
from tests.factories import Actor, District, Factory

S = CaseStatus


@dataclass
class World:
    d: District
    unit: Unit
    station: Station
    cat1: int
    cat2: int
    staff: Actor
    street_a_staff: Actor


@pytest.fixture
async def world(factory: Factory, rows: Rows) -> World:
    clock.freeze(sh(2026, 6, 30, 12))
    d = await factory.district()
    other = await factory.district("别的区")
    cat1 = await rows.category("市容环境")
    cat2 = await rows.category("交通出行")
    unit = await factory.unit("区城管局")
    station = await factory.station(d.community_a, name="甲联络站")
    await rows.case(
        d.community_a,
        cat1,
        created=sh(2026, 6, 1),
        title="东门路灯不亮",
        number="20260601-0001",
        contact_name="张三",
        contact_phone="13812345678",
        status=S.resolved,
        lead_unit_id=unit.id,
        station_id=station.id,
        satisfaction=Satisfaction.satisfied,
        assigned_at=sh(2026, 6, 1, 15),
        deadline_at=sh(2026, 6, 12),
        fed_back_at=sh(2026, 6, 5),
        resolved_at=sh(2026, 6, 6),
        supervised_count=1,
    )
    await rows.case(
        d.community_a,
        cat2,
        created=sh(2026, 6, 2),
        title="公交站牌倒了",
        number="20260602-0002",
        contact_phone="13900002222",
        status=S.handling,
        lead_unit_id=unit.id,
        deadline_at=sh(2026, 6, 20),
        overdue=True,
    )
    await rows.case(
        d.community_b, cat1, created=sh(2026, 5, 20), title="垃圾清运", number="20260520-0003"
    )
    await rows.case(
        other.community_a, cat1, created=sh(2026, 6, 3), title="别区的件", number="20260603-0004"
    )
    return World(
        d,
        unit,
        station,
        cat1.id,
        cat2.id,  # type: ignore[arg-type]
        await factory.staff(d.district),
        await factory.staff(d.street_a),
    )


async def _csv(client: httpx.AsyncClient, actor: Actor, **params: Any) -> list[list[str]]:
    r = await client.get(
        "/exports/cases", params={"format": "csv", **params}, headers=actor.headers
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content.startswith(b"\xef\xbb\xbf")  # Excel reads the Chinese headers as UTF-8
    assert "filename*=UTF-8''" in r.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table[0] == CASE_HEADERS
    return table[1:]


def col(name: str) -> int:
    return CASE_HEADERS.index(name)


async def test_csv_content(client: httpx.AsyncClient, world: World) -> None:
    rows = await _csv(client, world.staff)
    # in the case list's order: latest registered first (by id)
    assert [r[0] for r in rows] == ["20260520-0003", "20260602-0002", "20260601-0001"]
    first = rows[2]
    assert first[col("标题")] == "东门路灯不亮" and first[col("状态")] == "已办结"
    assert first[col("类别")] == "市容环境" and first[col("区域")] == world.d.community_a.name
    assert first[col("站点")] == "甲联络站" and first[col("承办单位")] == "区城管局"
    assert first[col("来源")] == "小程序"
    assert first[col("联系人")] == "张三" and first[col("联系电话")] == "13812345678"
    assert first[col("登记时间")] == "2026-06-01T10:00:00+08:00"  # Shanghai time
    assert first[col("交办时间")] == "2026-06-01T15:00:00+08:00"
    assert first[col("办结时间")] == "2026-06-06T10:00:00+08:00"
    assert first[col("是否超期")] == "否" and first[col("督办次数")] == "1"
    assert first[col("满意度")] == "满意"
    assert rows[1][col("是否超期")] == "是" and rows[1][col("联系人")] == ""


async def test_masked_phones(client: httpx.AsyncClient, world: World) -> None:
    rows = await _csv(client, world.staff, mask_phones="true")
    by_number = {r[0]: r for r in rows}
    assert by_number["20260601-0001"][col("联系电话")] == "138****5678"
    assert by_number["20260601-0001"][col("联系人")] == "张*"
    assert by_number["20260602-0002"][col("联系电话")] == "139****2222"
    assert all("13812345678" not in cell for r in rows for cell in r)


async def test_filters(client: httpx.AsyncClient, world: World) -> None:
    async def numbers(**params: Any) -> list[str]:
        return [r[0] for r in await _csv(client, world.staff, **params)]

    assert await numbers(status="handling") == ["20260602-0002"]
    assert await numbers(category=world.cat1) == ["20260520-0003", "20260601-0001"]
    assert await numbers(region_id=world.d.street_b.id) == ["20260520-0003"]
    assert await numbers(station_id=world.station.id) == ["20260601-0001"]
    assert await numbers(unit_id=world.unit.id) == ["20260602-0002", "20260601-0001"]
    assert await numbers(overdue="true") == ["20260602-0002"]
    assert await numbers(overdue="false") == ["20260520-0003", "20260601-0001"]
    assert await numbers(q="路灯") == ["20260601-0001"]
    assert await numbers(q="0520") == ["20260520-0003"]
    assert await numbers(**{"from": "2026-06-01", "to": "2026-06-01"}) == ["20260601-0001"]
    assert await numbers(**{"from": "2026-06-01"}) == ["20260602-0002", "20260601-0001"]
    assert await numbers(status="rejected") == []


async def test_xlsx_content(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get(
        "/exports/cases",
        params={"format": "xlsx", "mask_phones": "true"},
        headers=world.staff.headers,
    )
    assert r.status_code == 200
    assert (
        r.headers["content-type"]
        == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    sheet = load_workbook(io.BytesIO(r.content), read_only=True).active
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == CASE_HEADERS
    assert [v[0] for v in values[1:]] == ["20260520-0003", "20260602-0002", "20260601-0001"]
    assert values[3][col("联系电话")] == "138****5678" and values[3][col("督办次数")] == 1
    assert values[3][col("登记时间")] == "2026-06-01T10:00:00+08:00"


async def test_many_rows_stream_in_batches(
    client: httpx.AsyncClient, factory: Factory, rows: Rows, db: Any
) -> None:
    """More rows than one batch (1,000) come out complete and in order, in both formats."""
    from app.cases.models import Case

    clock.freeze(sh(2026, 6, 30, 12))
    d = await factory.district()
    staff = await factory.staff(d.district)
    cat = await rows.category()
    submitter = await rows.submitter()
    async with db.transaction() as session:
        session.add_all(
            [
                Case(
                    title=f"问题{i}",
                    content="内容",
                    category_id=cat.id,
                    region_id=d.community_a.id,
                    submitter_id=submitter,
                    owner_id=submitter,
                    created_at=sh(2026, 6, 1),
                    number=f"N{i:05d}",
                    contact_phone="13812345678",
                )
                for i in range(2500)
            ]
        )
    table = await _csv(client, staff, mask_phones="true")
    assert len(table) == 2500 and table[0][0] == "N02499" and table[-1][0] == "N00000"
    r = await client.get("/exports/cases", params={"format": "xlsx"}, headers=staff.headers)
    sheet = load_workbook(io.BytesIO(r.content), read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 2501 and values[-1][col("联系电话")] == "13812345678"


async def test_scope_and_roles(client: httpx.AsyncClient, factory: Factory, world: World) -> None:
    rows = await _csv(client, world.street_a_staff)
    assert [r[0] for r in rows] == ["20260602-0002", "20260601-0001"]
    r = await client.get(
        "/exports/cases",
        params={"region_id": world.d.street_b.id},
        headers=world.street_a_staff.headers,
    )
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    admin = await factory.admin()
    assert len(await _csv(client, admin)) == 4
    assert (await client.get("/exports/cases")).status_code == 401
    for actor in (
        await factory.resident(),
        await factory.deputy_actor(),
        await factory.unit_handler(world.unit),
    ):
        r = await client.get("/exports/cases", headers=actor.headers)
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
    for params in (
        {"format": "pdf"},
        {"status": "lost"},
        {"from": "2026-07-01", "to": "2026-06-01"},
    ):
        r = await client.get("/exports/cases", params=params, headers=world.staff.headers)
        assert r.status_code == 422 and r.json()["code"] == "validation_error"
