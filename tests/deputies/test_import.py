"""Roster import: CSV and XLSX files built here, row-by-row outcomes, bad files change nothing."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile

import httpx
import pytest
from openpyxl import Workbook
from sqlalchemy import select

from app.core.config import Settings
from app.identity.models import Deputy, DeputyLevel, DeputyStation
from tests.factories import District, Factory


def _csv(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    text = "\r\n".join(",".join(cell for cell in row) for row in rows) + "\r\n"
    return text.encode(encoding)


def _xlsx(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def _roster(factory: Factory) -> dict[str, Deputy]:
    async with factory.db.transaction(write=False) as session:
        rows = (await session.execute(select(Deputy))).scalars().all()
    return {d.name: d for d in rows}


async def _stations_of(factory: Factory, deputy_id: int) -> set[int]:
    async with factory.db.transaction(write=False) as session:
        rows = await session.execute(
            select(DeputyStation.station_id).where(DeputyStation.deputy_id == deputy_id)
        )
        return set(rows.scalars().all())


async def _setup(factory: Factory) -> tuple[District, dict[str, int]]:
    d = await factory.district()
    a = await factory.station(d.community_a, name="甲站")
    a2 = await factory.station(d.street_a, name="甲街道之家")
    b = await factory.station(d.community_b, name="乙站")
    return d, {"甲站": a.id, "甲街道之家": a2.id, "乙站": b.id}


async def _upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    filename: str,
    content_type: str = "text/csv",
    **params: object,
) -> httpx.Response:
    return await client.post(
        "/deputies/import",
        files={"file": (filename, data, content_type)},
        params=params,
        headers=headers,
    )


CSV_HEADER = ["姓名", "层级", "职务", "手机", "联络站", "届次", "区域"]


async def test_csv_import_reports_each_row(client: httpx.AsyncClient, factory: Factory) -> None:
    d, stations = await _setup(factory)
    existing = await factory.deputy(
        d.community_a, name="李明", phone="13800138002", title="旧职务", level=DeputyLevel.district
    )
    staff = await factory.staff(d.street_a)
    data = _csv(
        [
            CSV_HEADER,
            ["王芳", "区级", "社区书记", "13800138001", "甲站、甲街道之家", "第十八届", ""],
            ["李明", "区", "新职务", "138-0013-8002", "", "", ""],
            ["赵强", "市人大代表", "", "13800138003", "不存在的站", "", ""],
            ["钱多", "区", "", "12345", "", "", ""],
            ["孙丽", "区", "", "13800138001", "", "", ""],
            ["", "区", "", "", "", "", ""],
            ["周全", "皇帝", "", "", "", "", ""],
            ["吴越", "乡镇", "", "", "乙站", "", ""],
            ["郑和", "district", "", "", "", "", "不存在区域"],
            ["", "", "", "", "", "", ""],
            ["陈晨", "township", "", "13800138009", "", "", d.community_a.name],
        ]
    )
    response = await _upload(client, staff.headers, data, "名册.csv")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["applied"] is True and report["strict"] is False
    rows = {r["row"]: r for r in report["rows"]}
    assert rows[2]["status"] == "created" and rows[2]["name"] == "王芳"
    assert rows[3]["status"] == "updated" and rows[3]["deputy_id"] == existing.id
    assert rows[3]["changed"] == ["title"]
    assert rows[4]["status"] == "rejected"
    assert any("不存在的站" in reason for reason in rows[4]["reasons"])
    assert rows[5]["status"] == "rejected" and "手机号格式不正确" in rows[5]["reasons"][0]
    assert rows[6]["status"] == "rejected" and rows[6]["reasons"] == ["手机号与第 2 行重复"]
    assert rows[7]["status"] == "rejected" and rows[7]["reasons"] == ["姓名不能为空"]
    assert rows[8]["status"] == "rejected" and "层级无法识别" in rows[8]["reasons"][0]
    # 乙站 is outside street A: the staff member cannot attach anyone to it.
    assert rows[9]["status"] == "rejected" and "乙站" in rows[9]["reasons"][0]
    assert rows[10]["status"] == "rejected" and "不存在区域" in rows[10]["reasons"][0]
    assert 11 not in rows  # blank lines are skipped
    assert rows[12]["status"] == "created"
    assert (report["created"], report["updated"], report["rejected"]) == (2, 1, 7)

    roster = await _roster(factory)
    assert set(roster) == {"王芳", "李明", "陈晨"}
    wang = roster["王芳"]
    assert wang.level == DeputyLevel.district and wang.phone == "13800138001"
    assert wang.term == "第十八届" and wang.region_id == d.street_a.id
    assert await _stations_of(factory, wang.id) == {stations["甲站"], stations["甲街道之家"]}
    li = roster["李明"]
    assert li.title == "新职务" and li.version == 2 and li.level == DeputyLevel.district
    assert roster["陈晨"].region_id == d.community_a.id
    assert roster["陈晨"].level == DeputyLevel.township

    # Importing the same file again updates instead of duplicating.
    again = (await _upload(client, staff.headers, data, "名册.csv")).json()
    assert again["created"] == 0 and again["updated"] == 3
    assert all(r["changed"] == [] for r in again["rows"] if r["status"] == "updated")
    assert len(await _roster(factory)) == 3

    # A different station list replaces the attachments.
    moved = _csv([CSV_HEADER, ["王芳", "区级", "社区书记", "13800138001", "甲站", "", ""]])
    third = (await _upload(client, staff.headers, moved, "名册.csv")).json()
    assert third["rows"][0]["status"] == "updated"
    assert third["rows"][0]["changed"] == ["stations"]
    assert await _stations_of(factory, wang.id) == {stations["甲站"]}
    assert (await _roster(factory))["王芳"].version == 2


async def test_xlsx_import_with_english_headers(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d, stations = await _setup(factory)
    admin = await factory.admin()
    data = _xlsx(
        [
            ["Name", "Level", "Title", "Phone", "Station", "Term", "Region"],
            ["王芳", "district", "社区书记", 13800138001, "乙站", "第十八届", d.community_b.name],
            ["李明", "national", None, "+8613800138002", None, None, None],
            ["赵强", "city", None, 13800138001, None, None, None],
        ]
    )
    response = await _upload(
        client,
        admin.headers,
        data,
        "roster.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert [r["status"] for r in report["rows"]] == ["created", "created", "rejected"]
    assert report["rows"][2]["reasons"] == ["手机号与第 2 行重复"]
    roster = await _roster(factory)
    assert roster["王芳"].phone == "13800138001"  # a number cell, not "13800138001.0"
    assert roster["王芳"].region_id == d.community_b.id
    assert await _stations_of(factory, roster["王芳"].id) == {stations["乙站"]}
    assert roster["李明"].phone == "13800138002" and roster["李明"].region_id is None


async def test_strict_and_dry_run_apply_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d, _ = await _setup(factory)
    await factory.deputy(d.community_a, name="李明", phone="13800138002", title="旧职务")
    staff = await factory.staff(d.street_a)
    data = _csv(
        [
            CSV_HEADER,
            ["王芳", "区", "", "13800138001", "", "", ""],
            ["李明", "区", "新职务", "13800138002", "", "", ""],
            ["赵强", "区", "", "bad", "", "", ""],
        ]
    )
    strict = (await _upload(client, staff.headers, data, "r.csv", strict=True)).json()
    assert strict["applied"] is False and strict["strict"] is True
    assert [r["status"] for r in strict["rows"]] == ["created", "updated", "rejected"]
    assert strict["rows"][0]["deputy_id"] is None
    dry = (await _upload(client, staff.headers, data, "r.csv", dry_run=True)).json()
    assert dry["applied"] is False and dry["created"] == 1 and dry["rejected"] == 1
    roster = await _roster(factory)
    assert set(roster) == {"李明"} and roster["李明"].title == "旧职务"
    assert roster["李明"].version == 1

    good = _csv([CSV_HEADER, ["王芳", "区", "", "13800138001", "", "", ""]])
    ok = (await _upload(client, staff.headers, good, "r.csv", strict=True)).json()
    assert ok["applied"] is True and ok["created"] == 1
    assert set(await _roster(factory)) == {"李明", "王芳"}


async def test_phone_of_a_deputy_out_of_scope_is_rejected(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d, _ = await _setup(factory)
    other = await factory.deputy(d.community_b, name="乙代表", phone="13800138005", title="原职务")
    staff = await factory.staff(d.street_a)
    data = _csv([CSV_HEADER, ["乙代表", "区", "改职务", "13800138005", "", "", ""]])
    report = (await _upload(client, staff.headers, data, "r.csv")).json()
    assert report["rows"][0]["status"] == "rejected"
    assert report["rows"][0]["reasons"] == ["该手机号属于您管辖范围外的代表"]
    assert (await _roster(factory))["乙代表"].title == "原职务" == other.title


async def test_gbk_csv_and_header_variants(client: httpx.AsyncClient, factory: Factory) -> None:
    d, _ = await _setup(factory)
    staff = await factory.staff(d.district)
    data = _csv(
        [["姓名*", "层级（必填）", "手机号码"], ["王芳", "区人大代表", "13800138001"]], "gbk"
    )
    report = (await _upload(client, staff.headers, data, "gbk.csv")).json()
    assert report["created"] == 1, report
    assert (await _roster(factory))["王芳"].region_id == d.district.id


async def test_bad_files_change_nothing(client: httpx.AsyncClient, factory: Factory) -> None:
    d, _ = await _setup(factory)
    await factory.deputy(d.community_a, name="李明", phone="13800138002")
    staff = await factory.staff(d.street_a)
    good_row = ["王芳", "区", "", "13800138001", "", "", ""]

    cases: list[tuple[bytes, str, str, int, str]] = [
        (
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
            "photo.png",
            "image/png",
            415,
            "unsupported_file_type",
        ),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64,
            "old.xls",
            "application/vnd.ms-excel",
            415,
            "unsupported_file_type",
        ),
        (b"\x00\x01binary", "r.csv", "text/csv", 415, "unsupported_file_type"),
        (b"PK\x03\x04not really a zip", "r.xlsx", "application/zip", 422, "invalid_import_file"),
        (
            _csv([["姓名", "手机"], ["王芳", "13800138001"]]),
            "r.csv",
            "text/csv",
            422,
            "invalid_import_file",
        ),
        (
            _csv([["name", "phone"], ["王芳", "13800138001"]]),
            "r.txt",
            "text/plain",
            422,
            "invalid_import_file",
        ),
        (
            _xlsx([["Title", "Phone"], ["x", "13800138001"]]),
            "r.xlsx",
            "application/octet-stream",
            422,
            "invalid_import_file",
        ),
        (_csv([CSV_HEADER]), "r.csv", "text/csv", 422, "invalid_import_file"),
        (b"", "r.csv", "text/csv", 422, "invalid_import_file"),
        (
            _csv([["姓名", "姓名", "层级"], ["王芳", "王芳", "区"]]),
            "r.csv",
            "text/csv",
            422,
            "invalid_import_file",
        ),
    ]
    for data, filename, content_type, status, code in cases:
        response = await _upload(client, staff.headers, data, filename, content_type)
        assert response.status_code == status, (filename, response.text)
        assert response.json()["code"] == code, filename
    missing = await _upload(
        client, staff.headers, _csv([["姓名", "手机"], ["王芳", "13800138001"]]), "r.csv"
    )
    assert missing.json()["missing_columns"] == ["level"]

    big = _csv([CSV_HEADER, good_row]) + b"#" * (2 * 1024 * 1024)
    too_big = await _upload(client, staff.headers, big, "big.csv")
    assert too_big.status_code == 413 and too_big.json()["code"] == "payload_too_large"

    no_file = await client.post("/deputies/import", headers=staff.headers)
    assert no_file.status_code == 422
    assert set(await _roster(factory)) == {"李明"}


async def test_import_refuses_non_staff(client: httpx.AsyncClient, factory: Factory) -> None:
    unit = await factory.unit()
    data = _csv([CSV_HEADER, ["王芳", "区", "", "13800138001", "", "", ""]])
    assert (await _upload(client, {}, data, "r.csv")).status_code == 401
    actors = [
        await factory.resident(),
        await factory.deputy_actor(),
        await factory.unit_handler(unit),
    ]
    before = set(await _roster(factory))
    for actor in actors:
        assert (await _upload(client, actor.headers, data, "r.csv")).status_code == 403
    assert set(await _roster(factory)) == before


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHEET = "xl/worksheets/sheet1.xml"


def _xlsx_with_sheet(sheet_xml: bytes) -> bytes:
    """A real workbook whose first sheet's XML is replaced by `sheet_xml`."""
    template = zipfile.ZipFile(io.BytesIO(_xlsx([["姓名", "层级"], ["王芳", "区"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as patched:
        for member in template.infolist():
            body = sheet_xml if member.filename == SHEET else template.read(member)
            patched.writestr(member, body)
    return out.getvalue()


def _billion_laughs() -> bytes:
    entities = "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(2, 10)
    )
    return (
        f'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY lol1 "lol">{entities}]>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
        "</sheetData></worksheet>"
    ).encode()


def _xlsx_bomb(inflated_mib: int) -> bytes:
    """A real workbook whose first sheet is replaced by `inflated_mib` MiB of identical rows:
    a few hundred KB on the wire. Written through zipfile's streaming writer, so the test
    never holds the inflated sheet."""
    template = zipfile.ZipFile(io.BytesIO(_xlsx([["姓名", "层级"], ["王芳", "区"]])))
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c><c t="inlineStr"><is><t>y</t></is></c></row>'
    chunk = row * (1024 * 1024 // len(row))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for member in template.infolist():
            if member.filename != SHEET:
                bomb.writestr(member, template.read(member))
        with bomb.open(SHEET, "w", force_zip64=True) as sheet:
            sheet.write(
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b"<sheetData>"
            )
            for _ in range(inflated_mib):
                sheet.write(chunk)
            sheet.write(b"</sheetData></worksheet>")
    return out.getvalue()


async def test_xlsx_bomb_is_refused_at_once_and_the_service_keeps_answering(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    d, _ = await _setup(factory)
    staff = await factory.staff(d.street_a)
    bomb = _xlsx_bomb(128)
    assert len(bomb) < settings.deputy_import_max_bytes  # passes the upload size check
    assert sum(m.file_size for m in zipfile.ZipFile(io.BytesIO(bomb)).infolist()) > 128 << 20

    async def healthz_latency() -> float:
        # Asked while the import is in flight: the time from asking to the answer.
        await asyncio.sleep(0.005)
        started = time.monotonic()
        answer = await client.get("http://test/healthz")
        assert answer.status_code == 200
        return time.monotonic() - started

    started = time.monotonic()
    response, latency = await asyncio.gather(
        _upload(client, staff.headers, bomb, "bomb.xlsx", XLSX_TYPE), healthz_latency()
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "import_content_too_large"
    assert body["max_inflated_bytes"] == settings.deputy_import_max_inflated_bytes
    # Generous bounds: parsing the sheet would take tens of seconds on the event loop.
    assert latency < 1.0, latency
    assert elapsed < 5.0, elapsed
    assert await _roster(factory) == {}


async def test_rows_and_cells_beyond_the_bounds_refuse_the_file(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    d, _ = await _setup(factory)
    staff = await factory.staff(d.street_a)
    limit = settings.deputy_import_max_rows
    rows = [CSV_HEADER] + [["王芳", "区", "", "", "", "", ""]] * (limit + 1)

    too_many = await _upload(client, staff.headers, _csv(rows), "many.csv")
    assert too_many.status_code == 422, too_many.text
    assert too_many.json()["code"] == "import_too_many_rows"
    assert too_many.json()["max_rows"] == limit

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    too_many_xlsx = await _upload(client, staff.headers, buffer.getvalue(), "many.xlsx", XLSX_TYPE)
    assert too_many_xlsx.status_code == 422, too_many_xlsx.text
    assert too_many_xlsx.json()["code"] == "import_too_many_rows"

    # Exactly the bound is accepted (checked only, nothing applied).
    at_limit = await _upload(client, staff.headers, _csv(rows[:-1]), "ok.csv", dry_run="true")
    assert at_limit.status_code == 200, at_limit.text

    long_cell = _csv([CSV_HEADER, ["王" * 1001, "区", "", "", "", "", ""]])
    refused = await _upload(client, staff.headers, long_cell, "long.csv")
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_import_file"

    # Columns beyond the first 64 are not read, like any column the roster does not know.
    wide = _csv([[*CSV_HEADER, *["x"] * 100, "姓名"], ["王芳", "区", *[""] * 105, "李明"]])
    accepted = await _upload(client, staff.headers, wide, "wide.csv")
    assert accepted.status_code == 200, accepted.text
    assert set(await _roster(factory)) == {"王芳"}


@pytest.mark.parametrize(
    "sheet_xml",
    [
        _billion_laughs(),  # entities expanding to gigabytes from a few hundred bytes
        b"<worksheet><sheetData><row><c>",  # XML cut short
        b"\x00\x01 not XML at all",
    ],
    ids=["billion-laughs", "truncated", "binary"],
)
async def test_xlsx_with_hostile_or_broken_xml_is_422(
    client: httpx.AsyncClient, factory: Factory, sheet_xml: bytes
) -> None:
    d, _ = await _setup(factory)
    staff = await factory.staff(d.street_a)
    started = time.monotonic()
    response = await _upload(
        client, staff.headers, _xlsx_with_sheet(sheet_xml), "r.xlsx", XLSX_TYPE
    )
    assert time.monotonic() - started < 5.0
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_import_file"
    assert await _roster(factory) == {}


async def test_xlsx_whose_zip_directory_is_malformed_is_422(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d, _ = await _setup(factory)
    staff = await factory.staff(d.street_a)
    data = bytearray(_xlsx([["姓名", "层级"], ["王芳", "区"]]))
    entry = data.index(b"PK\x01\x02")  # the first central directory entry
    data[entry + 6 : entry + 8] = (217).to_bytes(2, "little")  # "needs zip version 21.7"
    response = await _upload(client, staff.headers, bytes(data), "r.xlsx", XLSX_TYPE)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_import_file"
