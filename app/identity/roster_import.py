"""Roster import (代表名册导入): a CSV or XLSX file of deputies, checked row by row.

The file is read and every row checked before anything is written, so a bad file (not CSV or
XLSX, unreadable, missing a required column, too many rows) changes nothing. Then:

- default: the valid rows are applied, in the request's one transaction, and the rejected
  ones are reported with their reasons;
- `strict`: if any row is rejected nothing is applied (`applied: false`);
- `dry_run`: nothing is applied; the report says what would happen.

A row with a phone number that is already on the roster updates that deputy (non-empty cells
overwrite, empty cells keep the current value); any other row creates a deputy. Columns, in
Chinese or English: 姓名/name and 层级/level are required; 职务/title, 手机/phone,
联络站/station and 代表小组/groups (several separated by 、 or ;), 届次/term, 区域/region are
optional. Stations and groups are matched by name within the caller's scope; a deputy's
groups become exactly those named in a non-empty cell (the role in a group kept is kept).

The file is hostile until read: parsing runs in a worker thread (`read_table_off_loop`), an
XLSX's ZIP directory is checked before openpyxl opens it (total and per-member inflated size,
compression ratio), and reading stops at the row bound, so a small file that inflates to
gigabytes is refused in milliseconds instead of holding the event loop and the memory.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.clock import utcnow
from app.core.errors import AppError, Conflict, ValidationFailed
from app.core.security import Principal, Role
from app.core.sorting import with_name_sort
from app.groups import service as group_service
from app.groups.models import DeputyGroup
from app.identity import deputy_service
from app.identity.deputy_schemas import (
    ImportReport,
    ImportRowResult,
    ImportRowStatus,
    normalize_mobile,
)
from app.identity.models import Deputy, DeputyLevel, DeputyStation
from app.org import service as org_service
from app.org.models import Region, Station

logger = logging.getLogger("app.identity.roster_import")


class UnsupportedImportFile(AppError):
    status, code, detail = 415, "unsupported_file_type", "仅支持 CSV 或 XLSX 格式的名册文件"


class InvalidImportFile(ValidationFailed):
    code, detail = "invalid_import_file", "名册文件无法导入"


class ImportFileTooLarge(AppError):
    status, code, detail = 413, "payload_too_large", "名册文件过大"


class ImportContentTooLarge(AppError):
    """An XLSX whose parts inflate beyond the bound, or compress suspiciously well (a ZIP
    bomb): refused from the ZIP directory, before anything is decompressed."""

    status, code, detail = (
        413,
        "import_content_too_large",
        "名册文件解压后过大，请删除多余内容后重试",
    )


class ImportTooManyRows(ValidationFailed):
    code, detail = "import_too_many_rows", "名册行数超过上限"


# Bounds on what a roster may hold; the inflated-size bound is a setting
# (DEPUTY_IMPORT_MAX_INFLATED_BYTES), the row bound too (DEPUTY_IMPORT_MAX_ROWS).
MAX_COLUMNS = 64  # columns read per row; the roster knows 7, others are ignored anyway
MAX_CELL_CHARS = 1000  # longer cells make the file invalid (the longest field holds 100)
# A member may inflate at most this many times its compressed size once it is larger than
# RATIO_FLOOR_BYTES. Real sheets compress 5-20x; deflate's ceiling (~1000x) is a bomb's mark.
MAX_COMPRESSION_RATIO = 100
RATIO_FLOOR_BYTES = 1024 * 1024


COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "代表姓名", "name"),
    "level": ("层级", "级别", "代表层级", "level"),
    "title": ("职务", "工作单位及职务", "单位职务", "title"),
    "phone": ("手机", "手机号", "手机号码", "联系电话", "phone", "mobile"),
    "station": ("联络站", "所在联络站", "进站", "站点", "station", "stations"),
    "term": ("届次", "term"),
    "region": ("区域", "所属区域", "region"),
    "groups": ("代表小组", "所在小组", "小组", "groups", "group"),
}
REQUIRED = ("name", "level")
_HEADER_LOOKUP = {alias.lower(): key for key, aliases in COLUMNS.items() for alias in aliases}

LEVEL_WORDS: dict[str, DeputyLevel] = {
    "national": DeputyLevel.national,
    "全国": DeputyLevel.national,
    "provincial": DeputyLevel.provincial,
    "省": DeputyLevel.provincial,
    "city": DeputyLevel.city,
    "市": DeputyLevel.city,
    "district": DeputyLevel.district,
    "区": DeputyLevel.district,
    "县": DeputyLevel.district,
    "区县": DeputyLevel.district,
    "township": DeputyLevel.township,
    "乡": DeputyLevel.township,
    "镇": DeputyLevel.township,
    "乡镇": DeputyLevel.township,
}
_STATION_SPLIT = re.compile(r"[、,，;；|\n]+")
_MAX_LEN = {"name": 50, "title": 100, "term": 50}


def parse_level(text: str) -> DeputyLevel | None:
    """`district`, `区`, `区级`, `区人大代表`, `区县级人大代表` ... → DeputyLevel."""
    word = text.strip().lower()
    for suffix in ("人大代表", "代表", "级", "人大"):
        if word.endswith(suffix) and len(word) > len(suffix):
            word = word[: -len(suffix)]
    return LEVEL_WORDS.get(word)


def _header_key(cell: str) -> str | None:
    text = re.sub(r"[（(].*?[）)]", "", cell)
    text = re.sub(r"[\s*＊:：]", "", text).lower()
    return _HEADER_LOOKUP.get(text)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel stores phone numbers typed as numbers as floats
    return str(value).strip()


# Reading the file ---------------------------------------------------------------------------


@dataclass
class Table:
    header_row: int
    columns: dict[str, int]  # key → column index
    rows: list[tuple[int, list[str]]]  # (row number in the file, cells)


def check_zip_bounds(data: bytes, *, max_inflated_bytes: int) -> None:
    """Refuse an XLSX whose ZIP directory declares more than `max_inflated_bytes` in total,
    or a member above that, or a large member compressed more than MAX_COMPRESSION_RATIO.

    The declared sizes are binding: Python's zipfile (which openpyxl reads through) never
    inflates a member past its declared size and fails the CRC check if the data goes on, so
    a directory that lies gets the file refused as corrupt, not read further.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except Exception as exc:  # BadZipFile, NotImplementedError (a "zip version 21.7"), ...
        raise _unreadable_xlsx(exc) from exc
    total = 0
    for member in members:
        total += member.file_size
        compressed = max(member.compress_size, 1)
        bomb = (
            member.file_size > RATIO_FLOOR_BYTES
            and member.file_size / compressed > MAX_COMPRESSION_RATIO
        )
        if total > max_inflated_bytes or bomb:
            raise ImportContentTooLarge(max_inflated_bytes=max_inflated_bytes)


def _check_cell(text: str) -> str:
    if len(text) > MAX_CELL_CHARS:
        raise InvalidImportFile(f"名册中有单元格超过 {MAX_CELL_CHARS} 字")
    return text


def _too_many_rows(max_rows: int) -> ImportTooManyRows:
    return ImportTooManyRows(f"名册一次最多导入 {max_rows} 行", max_rows=max_rows)


def _read_xlsx(
    data: bytes, *, max_rows: int, max_inflated_bytes: int
) -> list[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    check_zip_bounds(data, max_inflated_bytes=max_inflated_bytes)
    try:
        # defusedxml is installed, so openpyxl refuses DTDs and entities (no "billion laughs").
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # a hostile file can break openpyxl in many ways: all are 422
        raise _unreadable_xlsx(exc) from exc
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            return []
        out: list[tuple[int, list[str]]] = []
        rows = sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True)
        for number, row in enumerate(rows, start=1):
            cells = [_check_cell(_cell_text(v)) for v in row]
            if any(cells):
                if len(out) > max_rows:  # the header row and max_rows rows already read
                    raise _too_many_rows(max_rows)
                out.append((number, cells))
        return out
    except AppError:
        raise
    except Exception as exc:
        raise _unreadable_xlsx(exc) from exc
    finally:
        workbook.close()


def _unreadable_xlsx(exc: Exception) -> InvalidImportFile:
    logger.info("unreadable XLSX roster: %s", type(exc).__name__)
    return InvalidImportFile("XLSX 文件已损坏或无法读取")


def _decode_csv(data: bytes) -> str:
    if b"\x00" in data:
        raise UnsupportedImportFile("文件不是 CSV 文本，请上传 CSV 或 XLSX 文件")
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidImportFile("CSV 文件编码无法识别，请保存为 UTF-8")


def _read_csv(data: bytes, *, max_rows: int) -> list[tuple[int, list[str]]]:
    text = _decode_csv(data)
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    out: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            row = [_check_cell(_cell_text(c)) for c in cells[:MAX_COLUMNS]]
            if any(row):
                if len(out) > max_rows:  # the header row and max_rows rows already read
                    raise _too_many_rows(max_rows)
                out.append((reader.line_num, row))
    except csv.Error as exc:
        raise InvalidImportFile("CSV 文件格式有误") from exc
    return out


def file_kind(filename: str | None, data: bytes) -> str:
    """ "xlsx" or "csv", from the content first (a ZIP is an XLSX), then the name."""
    name = (filename or "").lower()
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise UnsupportedImportFile("不支持旧版 Excel（.xls），请另存为 .xlsx 或 .csv")
    if name.endswith(".xlsx"):
        raise InvalidImportFile("XLSX 文件已损坏或无法读取")
    if name.endswith((".csv", ".txt")):
        return "csv"
    raise UnsupportedImportFile()


def read_table(
    filename: str | None, data: bytes, *, max_rows: int, max_inflated_bytes: int
) -> Table:
    """The header and data rows of the file; refuses the whole file when it is not a CSV or
    XLSX, inflates beyond `max_inflated_bytes`, lacks a required column or holds more than
    `max_rows` rows. Blocking and CPU-bound: call `read_table_off_loop` from async code."""
    kind = file_kind(filename, data)
    if kind == "xlsx":
        non_blank = _read_xlsx(data, max_rows=max_rows, max_inflated_bytes=max_inflated_bytes)
    else:
        non_blank = _read_csv(data, max_rows=max_rows)
    if not non_blank:
        raise InvalidImportFile("名册文件是空的")
    header_row, header = non_blank[0]
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = _header_key(cell)
        if key is None:
            continue
        if key in columns:
            raise InvalidImportFile(f"表头中“{cell}”列重复")
        columns[key] = index
    missing = [key for key in REQUIRED if key not in columns]
    if missing:
        names = "、".join(f"{COLUMNS[k][0]}/{COLUMNS[k][-1]}" for k in missing)
        raise InvalidImportFile(f"名册缺少必填列：{names}", missing_columns=missing)
    rows = non_blank[1:]
    if not rows:
        raise InvalidImportFile("名册文件中没有数据行")
    if len(rows) > max_rows:
        raise _too_many_rows(max_rows)
    return Table(header_row=header_row, columns=columns, rows=rows)


async def read_table_off_loop(
    filename: str | None, data: bytes, *, max_rows: int, max_inflated_bytes: int
) -> Table:
    """`read_table` in a worker thread: the event loop keeps answering other requests while
    a file is parsed (bounded as above, so the thread cannot run for long either).

    A thread is enough, a process is not needed: parsing a roster at the bounds (5000 rows of
    43 columns, 2 MB packed, 12.7 MB unpacked) took 16 s of openpyxl on a loaded 2-core
    machine, and meanwhile the event loop woke up late by 7 ms at the median, 173 ms at the
    99th percentile and 366 ms at worst (the GIL changes hands every 5 ms)."""
    return await asyncio.to_thread(
        read_table, filename, data, max_rows=max_rows, max_inflated_bytes=max_inflated_bytes
    )


# Checking the rows --------------------------------------------------------------------------


@dataclass
class RowPlan:
    number: int
    name: str | None
    values: dict[str, Any] = field(default_factory=dict)
    station_ids: list[int] | None = None
    group_ids: list[int] | None = None
    reasons: list[str] = field(default_factory=list)
    existing: Deputy | None = None
    changed: list[str] = field(default_factory=list)
    deputy_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.reasons


def _by_name(pairs: Sequence[tuple[int, str]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for item_id, name in pairs:
        out.setdefault(name.strip(), []).append(item_id)
    return out


async def _plan(session: AsyncSession, principal: Principal, table: Table) -> list[RowPlan]:
    scope_regions = (
        await session.execute(
            select(Region.id, Region.name).where(org_service.in_scope(principal, Region.id))
        )
    ).all()
    regions = _by_name([(r, n) for r, n in scope_regions])
    scope_stations = (
        await session.execute(
            select(Station.id, Station.name).where(
                org_service.in_scope(principal, Station.region_id)
            )
        )
    ).all()
    stations = _by_name([(s, n) for s, n in scope_stations])
    groups: dict[str, list[int]] = {}
    if "groups" in table.columns:
        scope_groups = (
            await session.execute(
                select(DeputyGroup.id, DeputyGroup.name).where(
                    org_service.in_scope(principal, DeputyGroup.region_id)
                )
            )
        ).all()
        groups = _by_name([(g, n) for g, n in scope_groups])

    def cell(cells: list[str], key: str) -> str:
        index = table.columns.get(key)
        return cells[index] if index is not None and index < len(cells) else ""

    plans: list[RowPlan] = []
    for number, cells in table.rows:
        plan = RowPlan(number=number, name=cell(cells, "name") or None)
        reasons = plan.reasons
        if not plan.name:
            reasons.append("姓名不能为空")
        level_text = cell(cells, "level")
        level = parse_level(level_text) if level_text else None
        if not level_text:
            reasons.append("层级不能为空")
        elif level is None:
            reasons.append(f"层级无法识别：{level_text}")
        for key in ("name", "title", "term"):
            value = cell(cells, key)
            if len(value) > _MAX_LEN[key]:
                reasons.append(f"{COLUMNS[key][0]}过长（最多 {_MAX_LEN[key]} 字）")
            elif value:
                plan.values[key] = value
        if level is not None:
            plan.values["level"] = level
        phone_text = cell(cells, "phone")
        if phone_text:
            try:
                plan.values["phone"] = normalize_mobile(phone_text)
            except ValueError:
                reasons.append(f"手机号格式不正确：{phone_text}")
        region_text = cell(cells, "region")
        if region_text:
            matches = regions.get(region_text, [])
            if not matches:
                reasons.append(f"区域不存在或不在您的管辖范围内：{region_text}")
            elif len(matches) > 1:
                reasons.append(f"区域名称不唯一：{region_text}")
            else:
                plan.values["region_id"] = matches[0]
        station_text = cell(cells, "station")
        if station_text:
            ids: list[int] = []
            for station_name in (s.strip() for s in _STATION_SPLIT.split(station_text)):
                if not station_name:
                    continue
                matches = stations.get(station_name, [])
                if not matches:
                    reasons.append(f"联络站不存在或不在您的管辖范围内：{station_name}")
                elif len(matches) > 1:
                    reasons.append(f"联络站名称不唯一：{station_name}")
                elif matches[0] not in ids:
                    ids.append(matches[0])
            plan.station_ids = ids
        if "groups" in table.columns:
            plan.group_ids = _match_names(cell(cells, "groups"), groups, "代表小组", plan.reasons)
        plans.append(plan)

    _reject_duplicate_phones(plans)
    await _match_existing(session, principal, plans)
    return plans


def _match_names(
    text: str, known: dict[str, list[int]], label: str, reasons: list[str]
) -> list[int]:
    ids: list[int] = []
    for name in (n.strip() for n in _STATION_SPLIT.split(text)):
        if not name:
            continue
        matches = known.get(name, [])
        if not matches:
            reasons.append(f"{label}不存在或不在您的管辖范围内：{name}")
        elif len(matches) > 1:
            reasons.append(f"{label}名称不唯一：{name}")
        elif matches[0] not in ids:
            ids.append(matches[0])
    return ids


def _reject_duplicate_phones(plans: list[RowPlan]) -> None:
    first_row: dict[str, int] = {}
    for plan in plans:
        phone = plan.values.get("phone")
        if phone is None:
            continue
        if phone in first_row:
            plan.reasons.append(f"手机号与第 {first_row[phone]} 行重复")
        else:
            first_row[phone] = plan.number


async def _match_existing(
    session: AsyncSession, principal: Principal, plans: list[RowPlan]
) -> None:
    phones = [p.values["phone"] for p in plans if "phone" in p.values]
    existing: dict[str, Deputy] = {}
    for start in range(0, len(phones), 500):
        chunk = phones[start : start + 500]
        for found in (
            (await session.execute(select(Deputy).where(col(Deputy.phone).in_(chunk))))
            .scalars()
            .all()
        ):
            existing[found.phone] = found  # type: ignore[index]
    visible = set()
    if existing:
        visible = set(
            (
                await session.execute(
                    select(Deputy.id).where(
                        col(Deputy.id).in_([d.id for d in existing.values()]),
                        org_service.in_scope(principal, Deputy.region_id),
                    )
                )
            )
            .scalars()
            .all()
        )
    default_region = principal.region_id if principal.role == Role.staff else None
    for plan in plans:
        deputy = existing.get(plan.values.get("phone", ""))
        if deputy is None:
            plan.values.setdefault("region_id", default_region)
            continue
        if deputy.id not in visible:
            plan.reasons.append("该手机号属于您管辖范围外的代表")
            continue
        plan.existing = deputy
        plan.deputy_id = deputy.id
        plan.changed = [k for k, v in plan.values.items() if getattr(deputy, k) != v]
    attached = await _attachments([p.deputy_id for p in plans if p.existing is not None], session)
    for plan in plans:
        if (
            plan.existing is not None
            and plan.station_ids is not None
            and set(plan.station_ids) != attached.get(plan.existing.id, set())  # type: ignore[arg-type]
        ):
            plan.changed.append("stations")
    memberships = await group_service.groups_of(
        session, [p.deputy_id for p in plans if p.existing is not None and p.deputy_id]
    )
    for plan in plans:
        if (
            plan.existing is not None
            and plan.group_ids is not None
            and set(plan.group_ids) != memberships.get(plan.existing.id, set())  # type: ignore[arg-type]
        ):
            plan.changed.append("groups")


async def _attachments(deputy_ids: list[int | None], session: AsyncSession) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    ids = [i for i in deputy_ids if i is not None]
    for start in range(0, len(ids), 500):
        rows = await session.execute(
            select(DeputyStation.deputy_id, DeputyStation.station_id).where(
                col(DeputyStation.deputy_id).in_(ids[start : start + 500])
            )
        )
        for deputy_id, station_id in rows.all():
            out.setdefault(deputy_id, set()).add(station_id)
    return out


# Applying -----------------------------------------------------------------------------------


async def _apply(session: AsyncSession, plan: RowPlan) -> bool:
    """Write one checked row; False when the deputy was edited meanwhile."""
    if plan.existing is None:
        deputy = Deputy(**plan.values)
        session.add(deputy)
        await session.flush()
        plan.deputy_id = deputy.id
    else:
        deputy = plan.existing
        if plan.changed:
            result = await session.execute(
                update(Deputy)
                .where(Deputy.id == deputy.id, Deputy.version == deputy.version)
                .values(
                    **with_name_sort({k: plan.values[k] for k in plan.changed if k in plan.values}),
                    version=Deputy.version + 1,
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
    if plan.station_ids is not None:
        await deputy_service.set_stations(session, plan.deputy_id, plan.station_ids)  # type: ignore[arg-type]
    if plan.group_ids is not None:
        await group_service.set_memberships(session, plan.deputy_id, plan.group_ids)  # type: ignore[arg-type]
    return True


async def import_roster(
    session: AsyncSession,
    principal: Principal,
    *,
    filename: str | None,
    data: bytes,
    max_rows: int,
    max_inflated_bytes: int,
    strict: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    table = await read_table_off_loop(
        filename, data, max_rows=max_rows, max_inflated_bytes=max_inflated_bytes
    )
    plans = await _plan(session, principal, table)
    any_rejected = any(not p.ok for p in plans)
    apply = not dry_run and not (strict and any_rejected)
    if apply:
        try:
            for plan in plans:
                if plan.ok and not await _apply(session, plan):
                    if strict:
                        raise Conflict(
                            "导入期间有代表信息被他人修改，请重新导入", code="version_conflict"
                        )
                    plan.reasons.append("该代表信息正被他人修改，请稍后重试")
        except IntegrityError as exc:  # a concurrent edit took one of the phones first
            raise Conflict(
                "导入期间名册被他人修改（手机号冲突），未做任何更改，请重新导入",
                code="deputy_phone_taken",
            ) from exc
    rows = [
        ImportRowResult(
            row=p.number,
            status=(
                ImportRowStatus.rejected
                if not p.ok
                else ImportRowStatus.updated
                if p.existing is not None
                else ImportRowStatus.created
            ),
            deputy_id=p.deputy_id if p.ok else None,
            name=p.name,
            reasons=p.reasons,
            changed=p.changed if p.ok and p.existing is not None else [],
        )
        for p in plans
    ]
    return ImportReport(
        applied=apply,
        strict=strict,
        dry_run=dry_run,
        created=sum(r.status == ImportRowStatus.created for r in rows),
        updated=sum(r.status == ImportRowStatus.updated for r in rows),
        rejected=sum(r.status == ImportRowStatus.rejected for r in rows),
        rows=rows,
    )
