"""The collation (意见汇总) as a spreadsheet or a Word document, grouped by article.

Both are built in a worker thread (openpyxl and python-docx are synchronous) from rows read
first; a draft's comments are hundreds, not millions, so the file is made in memory.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from urllib.parse import quote

from fastapi.responses import Response

from app.consultations.models import Consultation
from app.consultations.schemas import CommentPublic
from app.consultations.service import EXPORT_HEADERS, OUTCOME_LABELS
from app.dashboard.exports import XLSX_MEDIA_TYPE, cell

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

Groups = Sequence[tuple[str, str, list[CommentPublic]]]


def _outcome(comment: CommentPublic) -> str:
    return OUTCOME_LABELS.get(str(comment.outcome), "待处理") if comment.outcome else "待处理"


def xlsx_bytes(c: Consultation, groups: Groups, stations: dict[int, str]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "意见汇总"
    sheet.append([f"{c.title}（{c.issuing_body}）意见汇总"])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append(EXPORT_HEADERS)
    for heading, text, comments in groups:
        for n, comment in enumerate(comments, 1):
            sheet.append(
                [
                    heading,
                    text,
                    n,
                    comment.content,
                    comment.commenter or "",
                    stations.get(comment.station_id or 0, ""),
                    _outcome(comment),
                    comment.outcome_note or "",
                    cell(comment.created_at),
                ]
            )
    for column, width in zip("ABCDEFGHI", (14, 40, 6, 60, 12, 20, 10, 30, 20), strict=True):
        sheet.column_dimensions[column].width = width
    for row in sheet.iter_rows(min_row=3):
        for item in row:
            item.alignment = Alignment(wrap_text=True, vertical="top")
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def docx_bytes(c: Consultation, groups: Groups, stations: dict[int, str]) -> bytes:
    from docx import Document

    document = Document()
    document.add_heading(f"关于《{c.title}》的意见汇总", level=1)
    total = sum(len(comments) for _, _, comments in groups)
    document.add_paragraph(
        f"起草单位：{c.issuing_body}。征集期：{cell(c.opens_at)} 至 {cell(c.closes_at)}。"
        f"共收到意见 {total} 条，按条款汇总如下。"
    )
    for heading, text, comments in groups:
        if not comments and heading == "总体意见":
            continue
        document.add_heading(heading, level=2)
        if text:
            document.add_paragraph(text, style="Intense Quote")
        if not comments:
            document.add_paragraph("（无意见）")
            continue
        for n, comment in enumerate(comments, 1):
            source = "，".join(
                part
                for part in (
                    comment.commenter or "",
                    "人大代表" if comment.is_deputy else "",
                    stations.get(comment.station_id or 0, ""),
                )
                if part
            )
            paragraph = document.add_paragraph(f"{n}. {comment.content}")
            if source:
                paragraph.add_run(f"（{source}）").italic = True
            result = f"处理结果：{_outcome(comment)}"
            if comment.outcome_note:
                result += f"。{comment.outcome_note}"
            document.add_paragraph(result)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


async def export_response(
    fmt: str, c: Consultation, groups: Groups, stations: dict[int, str]
) -> Response:
    build = xlsx_bytes if fmt == "xlsx" else docx_bytes
    body = await asyncio.to_thread(build, c, groups, stations)
    name = f"{c.title}-意见汇总.{fmt}"
    ascii_name = f"consultation-{c.id}.{fmt}"
    return Response(
        body,
        media_type=XLSX_MEDIA_TYPE if fmt == "xlsx" else DOCX_MEDIA_TYPE,
        headers={
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
            "Cache-Control": "no-store",
        },
    )
