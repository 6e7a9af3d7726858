"""Streaming CSV and XLSX exports.

Rows come from the database in batches over a connection of the export's own (the request's
session is closed before a streamed body is sent), and leave as they are made:

- CSV is encoded batch by batch after a UTF-8 byte order mark, so Excel opens the Chinese
  headers correctly.
- XLSX is written with openpyxl's write-only mode, which serialises each row to a temporary
  file as it is appended (no cell objects stay in memory); the finished file is then streamed
  from disk in chunks and removed. The synchronous openpyxl work runs in a thread, batch by
  batch, never on the event loop.

Either way memory stays bounded by one batch, whatever the number of rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from fastapi.responses import StreamingResponse
from sqlalchemy import Select

from app.core.db import Database
from app.core.times import api_time
from app.dashboard.sql import REPORT_SETTINGS

BATCH_ROWS = 1000
CHUNK_BYTES = 64 * 1024
BOM = "\ufeff"

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ExportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


Cell = str | int | float | None
RowMapper = Callable[[Any], Sequence[Cell]]


def cell(value: Any) -> Cell:
    """A value as a spreadsheet shows it: times as every answer writes them (Asia/Shanghai,
    `2026-06-10T09:05:00+08:00`), enums by value."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, datetime):
        return api_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


async def stream_query(
    db: Database, stmt: Select[Any], mapper: RowMapper, *, limit: int | None = None
) -> AsyncIterator[list[Sequence[Cell]]]:
    """Batches of mapped rows of `stmt`, read with a server-side cursor where the driver has
    one (asyncpg), on a read connection of their own."""
    if limit is not None:
        stmt = stmt.limit(limit)
    async with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            for statement in REPORT_SETTINGS:
                await conn.execute(statement)
        result = await conn.stream(stmt.execution_options(yield_per=BATCH_ROWS))
        async for partition in result.partitions(BATCH_ROWS):
            yield [mapper(row) for row in partition]


async def from_rows(rows: Iterable[Sequence[Cell]]) -> AsyncIterator[list[Sequence[Cell]]]:
    """A source for rows already in hand (small exports, e.g. one deputy's archive)."""
    batch: list[Sequence[Cell]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


async def csv_chunks(
    headers: Sequence[str], batches: AsyncIterator[list[Sequence[Cell]]]
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(headers)
    yield buffer.getvalue().encode("utf-8")
    async for batch in batches:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(batch)
        yield buffer.getvalue().encode("utf-8")


def _read_chunk(handle: io.BufferedReader) -> bytes:
    return handle.read(CHUNK_BYTES)


async def xlsx_chunks(
    sheet_title: str, headers: Sequence[str], batches: AsyncIterator[list[Sequence[Cell]]]
) -> AsyncIterator[bytes]:
    from openpyxl import Workbook

    fd, path = tempfile.mkstemp(prefix="export-", suffix=".xlsx")
    os.close(fd)
    try:
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(title=sheet_title[:31])
        sheet.append(list(headers))

        def append(batch: list[Sequence[Cell]]) -> None:
            for row in batch:
                sheet.append(list(row))

        async for batch in batches:
            await asyncio.to_thread(append, batch)
        await asyncio.to_thread(workbook.save, path)
        handle = await asyncio.to_thread(open, path, "rb")
        try:
            while chunk := await asyncio.to_thread(_read_chunk, handle):
                yield chunk
        finally:
            handle.close()
    finally:
        await asyncio.to_thread(_unlink, path)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def export_response(
    fmt: ExportFormat,
    filename: str,
    headers: Sequence[str],
    batches: AsyncIterator[list[Sequence[Cell]]],
    *,
    sheet_title: str = "Sheet1",
) -> StreamingResponse:
    """A streamed download; `filename` without extension (may be Chinese)."""
    full_name = f"{filename}.{fmt.value}"
    ascii_name = full_name.encode("ascii", "ignore").decode() or f"export.{fmt.value}"
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(full_name)}"
    if fmt is ExportFormat.csv:
        body = csv_chunks(headers, batches)
        media_type = CSV_MEDIA_TYPE
    else:
        body = xlsx_chunks(sheet_title, headers, batches)
        media_type = XLSX_MEDIA_TYPE
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file, streamed: CSV (UTF-8 with BOM) or XLSX.",
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
