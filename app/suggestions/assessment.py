"""The units' yearly assessment (承办单位考评): how each responsible unit handled the cases and
the deputies' suggestions it led in a year, a score, a ranking, and whether staff published it.

Per unit, for the cases and suggestions assigned to it (as lead unit) in the year (Asia/Shanghai):

- handled: how many; on time: first reply (cases: the first `reply`; suggestions:
  `first_replied_at`) by the deadline;
- first-reply time: mean hours from assignment to the first reply;
- residents' satisfaction: satisfied + basically satisfied among the rated cases;
- deputies' satisfaction: the same among the evaluated suggestions;
- reopened and sent back: reopenings of its cases; cases it sent back to staff in the year
  (counted from the timeline, since a case sent back no longer names the unit).

score = 40 × on-time rate (cases and suggestions together)
      + 30 × residents' satisfaction + 30 × deputies' satisfaction
      − 10 × (reopened + sent back) / cases handled (at least 1; capped at 10),
a rate without a denominator counting as the mean of the others. Units are ranked by score,
then by items handled.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.cases.models import Case, CaseAction, CaseEvent
from app.dashboard.deps import RegionScope
from app.dashboard.sql import dialect_of, hours_between, ratio, rounded
from app.dashboard.stats import first_reply_at, in_scope
from app.identity.models import User
from app.org.models import Unit
from app.suggestions.models import Suggestion, UnitAssessmentPublication

GOOD = ("satisfied", "basically_satisfied")


@dataclass(slots=True)
class UnitFigures:
    unit_id: int
    unit_name: str
    cases_handled: int = 0
    cases_on_time: int = 0
    case_reply_hours: float | None = None
    residents_rated: int = 0
    residents_satisfied: int = 0
    reopened: int = 0
    sent_back: int = 0
    suggestions_handled: int = 0
    suggestions_on_time: int = 0
    suggestion_reply_hours: float | None = None
    deputies_evaluated: int = 0
    deputies_satisfied: int = 0
    score: float = 0.0
    rank: int = 0

    @property
    def on_time_rate(self) -> float | None:
        return ratio(
            self.cases_on_time + self.suggestions_on_time,
            self.cases_handled + self.suggestions_handled,
        )

    @property
    def resident_satisfaction(self) -> float | None:
        return ratio(self.residents_satisfied, self.residents_rated)

    @property
    def deputy_satisfaction(self) -> float | None:
        return ratio(self.deputies_satisfied, self.deputies_evaluated)


def _year_bounds(year: int) -> tuple[datetime, datetime]:
    from app.core.clock import SHANGHAI

    start = datetime(year, 1, 1, tzinfo=SHANGHAI)
    end = datetime(year + 1, 1, 1, tzinfo=SHANGHAI)
    return start, end


def _score(f: UnitFigures) -> float:
    rates = [f.on_time_rate, f.resident_satisfaction, f.deputy_satisfaction]
    known = [r for r in rates if r is not None]
    fill = sum(known) / len(known) if known else 0.0
    on_time, residents, deputies = (r if r is not None else fill for r in rates)
    penalty = 0.0
    if f.reopened or f.sent_back:
        penalty = min(10.0, 10.0 * (f.reopened + f.sent_back) / max(1, f.cases_handled))
    return round(40 * on_time + 30 * residents + 30 * deputies - penalty, 2)


async def assess(session: AsyncSession, scope: RegionScope, year: int) -> list[UnitFigures]:
    start, end = _year_bounds(year)
    dialect = dialect_of(session)
    first = first_reply_at()
    case_rows = await session.execute(
        select(
            Case.lead_unit_id,
            func.count(),
            func.sum(case((and_(first.is_not(None), first <= Case.deadline_at), 1), else_=0)).cast(
                Integer
            ),
            func.avg(hours_between(dialect, Case.assigned_at, first)),
            func.sum(case((col(Case.satisfaction).is_not(None), 1), else_=0)).cast(Integer),
            func.sum(case((col(Case.satisfaction).in_(GOOD), 1), else_=0)).cast(Integer),
            func.sum(Case.reopen_count).cast(Integer),
        )
        .where(
            col(Case.lead_unit_id).is_not(None),
            col(Case.assigned_at) >= start,
            col(Case.assigned_at) < end,
            in_scope(Case.region_id, scope),
        )
        .group_by(Case.lead_unit_id)
    )
    suggestion_rows = await session.execute(
        select(
            Suggestion.lead_unit_id,
            func.count(),
            func.sum(
                case(
                    (
                        and_(
                            col(Suggestion.first_replied_at).is_not(None),
                            col(Suggestion.first_replied_at) <= Suggestion.deadline_at,
                        ),
                        1,
                    ),
                    else_=0,
                )
            ).cast(Integer),
            func.avg(hours_between(dialect, Suggestion.assigned_at, Suggestion.first_replied_at)),
            func.sum(case((col(Suggestion.evaluation).is_not(None), 1), else_=0)).cast(Integer),
            func.sum(case((col(Suggestion.evaluation).in_(GOOD), 1), else_=0)).cast(Integer),
        )
        .where(
            col(Suggestion.lead_unit_id).is_not(None),
            col(Suggestion.assigned_at) >= start,
            col(Suggestion.assigned_at) < end,
            in_scope(Suggestion.region_id, scope),
        )
        .group_by(Suggestion.lead_unit_id)
    )
    figures: dict[int, UnitFigures] = {}

    def of(unit_id: int) -> UnitFigures:
        return figures.setdefault(unit_id, UnitFigures(unit_id, ""))

    # A case sent back loses its lead unit: the timeline says which unit sent it.
    sent_back_rows = await session.execute(
        select(User.unit_id, func.count())
        .join(CaseEvent, col(CaseEvent.actor_id) == User.id)
        .join(Case, col(Case.id) == CaseEvent.case_id)
        .where(
            CaseEvent.action == CaseAction.send_back.value,
            col(CaseEvent.created_at) >= start,
            col(CaseEvent.created_at) < end,
            col(User.unit_id).is_not(None),
            in_scope(Case.region_id, scope),
        )
        .group_by(User.unit_id)
    )
    for unit_id, n, on_time, hours, rated, good, reopened in case_rows.all():
        f = of(int(unit_id))
        f.cases_handled, f.cases_on_time = int(n), int(on_time or 0)
        f.case_reply_hours = rounded(float(hours)) if hours is not None else None
        f.residents_rated, f.residents_satisfied = int(rated or 0), int(good or 0)
        f.reopened = int(reopened or 0)
    for unit_id, n in sent_back_rows.all():
        of(int(unit_id)).sent_back = int(n)
    for unit_id, n, on_time, hours, evaluated, good in suggestion_rows.all():
        f = of(int(unit_id))
        f.suggestions_handled, f.suggestions_on_time = int(n), int(on_time or 0)
        f.suggestion_reply_hours = rounded(float(hours)) if hours is not None else None
        f.deputies_evaluated, f.deputies_satisfied = int(evaluated or 0), int(good or 0)
    if figures:
        names = await session.execute(
            select(Unit.id, Unit.name).where(col(Unit.id).in_(sorted(figures)))
        )
        for unit_id, name in names.all():
            figures[int(unit_id)].unit_name = str(name)
    ranked = sorted(
        figures.values(),
        key=lambda f: (-_score(f), -(f.cases_handled + f.suggestions_handled), f.unit_id),
    )
    for position, f in enumerate(ranked, start=1):
        f.score = _score(f)
        f.rank = position
    return ranked


async def publication(session: AsyncSession, year: int) -> UnitAssessmentPublication | None:
    return await session.get(UnitAssessmentPublication, year)


HEADERS = [
    "排名",
    "承办单位",
    "得分",
    "办理件数",
    "按期答复件数",
    "平均首次答复（小时）",
    "群众评价数",
    "群众满意数",
    "群众满意率",
    "重新办理次数",
    "退回次数",
    "办理代表建议数",
    "建议按期答复数",
    "建议平均首次答复（小时）",
    "代表评价数",
    "代表满意数",
    "代表满意率",
    "按期率",
]


def rows(figures: list[UnitFigures]) -> list[list[Any]]:
    return [
        [
            f.rank,
            f.unit_name,
            f.score,
            f.cases_handled,
            f.cases_on_time,
            f.case_reply_hours,
            f.residents_rated,
            f.residents_satisfied,
            f.resident_satisfaction,
            f.reopened,
            f.sent_back,
            f.suggestions_handled,
            f.suggestions_on_time,
            f.suggestion_reply_hours,
            f.deputies_evaluated,
            f.deputies_satisfied,
            f.deputy_satisfaction,
            f.on_time_rate,
        ]
        for f in figures
    ]


def to_xlsx(year: int, figures: list[UnitFigures], published: date | None) -> bytes:
    """One sheet; units are few, so it is built in memory."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"{year}年承办单位考评"
    sheet.append([f"{year}年度承办单位考评" + ("（已通报）" if published else "（未通报）")])
    sheet.append(HEADERS)
    for row in rows(figures):
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
