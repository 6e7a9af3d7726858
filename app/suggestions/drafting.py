"""The draft written for the deputy from the cases a suggestion carries: a title, the problem
with its counts, the places and the time span, a few residents' own words with personal data
masked, and the units involved. The deputy edits it before submitting."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from app.cases.models import Case
from app.core.clock import SHANGHAI
from app.core.masking import mask_text

QUOTES = 3
QUOTE_CHARS = 120


@dataclass(frozen=True, slots=True)
class Draft:
    title: str
    content: str


def common_region(paths: Sequence[str]) -> int | None:
    """The deepest region every path lies in ("/1/4/9/", "/1/4/7/" → 4)."""
    if not paths:
        return None
    parts = [p.strip("/").split("/") for p in paths]
    common: list[str] = []
    for segments in zip(*parts, strict=False):
        if len(set(segments)) != 1:
            break
        common.append(segments[0])
    return int(common[-1]) if common and common[-1].isdigit() else None


def _day(case: Case) -> str:
    return f"{case.created_at.astimezone(SHANGHAI):%Y年%m月%d日}"


def write_draft(
    cases: Sequence[Case],
    *,
    topic: str | None,
    region_names: dict[int, str],
    unit_names: dict[int, str],
    category_names: dict[int, str],
) -> Draft:
    ordered = sorted(cases, key=lambda c: (c.created_at, c.id or 0))
    first, last = ordered[0], ordered[-1]
    subject = mask_text(topic or first.title) or first.title
    people = len({c.owner_id or f"case-{c.id}" for c in ordered})
    regions = Counter(c.region_id for c in ordered)
    categories = Counter(c.category_id for c in ordered)
    units = Counter(c.lead_unit_id for c in ordered if c.lead_unit_id)
    lines = [
        f"【问题】{_day(first)}以来，共有{people}位群众反映{len(ordered)}件，"
        f"集中反映“{subject}”的问题。",
        "【涉及地点】"
        + "、".join(
            f"{region_names.get(r, '未知区域')}（{n}件）" for r, n in regions.most_common()
        ),
        f"【时间跨度】{_day(first)}至{_day(last)}。",
        "【问题类别】"
        + "、".join(
            f"{category_names.get(k, '其他')}（{n}件）" for k, n in categories.most_common()
        ),
        "【群众原话摘录】",
    ]
    seen: set[str] = set()
    quotes = 0
    for case in ordered:
        words = (mask_text(case.content) or "").strip()
        if not words or words in seen:
            continue
        seen.add(words)
        quotes += 1
        excerpt = words[:QUOTE_CHARS] + ("……" if len(words) > QUOTE_CHARS else "")
        lines.append(
            f"{quotes}. “{excerpt}”（{_day(case)}，{region_names.get(case.region_id, '')}）"
        )
        if quotes >= QUOTES:
            break
    if units:
        lines.append(
            "【涉及单位】"
            + "、".join(f"{unit_names.get(u, '')}（{n}件）" for u, n in units.most_common())
        )
    else:
        lines.append("【涉及单位】尚未交办承办单位。")
    lines.append(
        "【建议】建议有关部门对上述问题统一研究、系统解决，并将办理结果反馈反映问题的群众。"
    )
    title = f"关于解决“{subject[:60]}”问题的建议"
    return Draft(title=title[:100], content="\n".join(lines)[:10_000])
