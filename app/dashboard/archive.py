"""A deputy's duty archive (履职档案) for one year, and its score.

Everything comes from what the system already recorded — check-ins and duty slots,
receptions, cases the deputy submitted or follows with their outcomes, wishes claimed and
fulfilled, activities attended, excused or missed (代表活动, recorded at the activity) — plus
the manual acts staff added for what happened elsewhere. The deputy fills in nothing twice.
An absence without leave weighs negatively.

The yearly score is Σ count × weight over the kinds below; the weights are a setting
(`DASHBOARD_SCORE_WEIGHTS`, JSON), merged over `DEFAULT_SCORE_WEIGHTS`; unknown kinds are
ignored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.activities import service as activity_service
from app.cases.models import Case, CaseFollow, CaseStatus
from app.consultations import service as consultation_service
from app.core.config import Settings
from app.dashboard.deps import DateRange
from app.dashboard.exports import Cell, cell
from app.dashboard.models import MANUAL_ACT_LABELS, ManualAct, ManualActKind
from app.dashboard.schemas import (
    Archive,
    ArchiveActivity,
    ArchiveCase,
    ArchiveCheckIn,
    ArchiveConsultationComment,
    ArchiveDutySlot,
    ArchiveReception,
    ArchiveReport,
    ArchiveSuggestion,
    ArchiveTotals,
    ArchiveWish,
    ManualActPublic,
    Score,
    ScoreLine,
)
from app.dashboard.sql import dialect_of, hours_between, tune_report_queries
from app.dashboard.stats import between
from app.identity.models import Deputy, User
from app.org.models import Station
from app.presence.models import CheckIn, DutyAssignment, DutySlot, Reception
from app.reports import service as report_service
from app.suggestions.models import Suggestion, SuggestionCoSigner
from app.wishes.models import Wish, WishStatus

# kind → (label, default weight). Hours count per hour; the rest per act.
SCORE_KINDS: dict[str, tuple[str, float]] = {
    "checkin": ("进站签到", 1.0),
    "duty_hour": ("值班时长（小时）", 0.5),
    "duty_attended": ("按排班值班", 2.0),
    "reception": ("接待群众", 2.0),
    "case_submitted": ("提交意见建议", 3.0),
    "case_followed": ("跟踪督办意见建议", 1.0),
    "case_resolved": ("所提/跟踪意见建议已办结", 2.0),
    "wish_claimed": ("认领微心愿", 1.0),
    "wish_fulfilled": ("实现微心愿", 3.0),
    "activity_present": ("参加代表活动", 3.0),
    "activity_excused": ("代表活动请假", 0.0),
    "activity_absent": ("无故缺席代表活动", -3.0),
    "report": ("向选民述职", 5.0),
    "consultation_comment": ("提出立法意见", 1.0),
    "suggestion_led": ("领衔提出代表建议", 5.0),
    "suggestion_cosigned": ("附议代表建议", 2.0),
    ManualActKind.inspection.value: ("视察", 3.0),
    ManualActKind.training.value: ("培训", 1.0),
    ManualActKind.meeting.value: ("会议", 1.0),
    ManualActKind.research.value: ("调研", 3.0),
    ManualActKind.other.value: ("其他履职活动", 1.0),
}
DEFAULT_SCORE_WEIGHTS: dict[str, float] = {k: w for k, (_, w) in SCORE_KINDS.items()}

FULFILLED = (WishStatus.fulfilled.value, WishStatus.completed.value)

CASE_STATUS_LABELS = {
    "registered": "已登记",
    "handling": "办理中",
    "fed_back": "已反馈",
    "resolved": "已办结",
    "rejected": "不予受理",
    "merged": "已合并",
}
SUGGESTION_STATUS_LABELS = {
    "draft": "草稿",
    "submitted": "已提交",
    "registered": "已登记",
    "assigned": "已交办",
    "replied": "已答复",
    "evaluated": "已评价",
}
SATISFACTION_LABELS = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "dissatisfied": "不满意",
}
OUTCOME_LABELS = {"adopted": "采纳", "partly_adopted": "部分采纳", "not_adopted": "未采纳"}
ATTENDANCE_LABELS = {"present": "出席", "excused": "请假", "absent": "缺席（未请假）"}
WISH_STATUS_LABELS = {
    "pending_review": "待审核",
    "published": "已发布",
    "claimed": "已认领",
    "fulfilled": "已实现",
    "completed": "已完成",
    "rejected": "未通过",
    "withdrawn": "已撤回",
    "expired": "已过期",
}


def score_weights(settings: Settings) -> dict[str, float]:
    weights = dict(DEFAULT_SCORE_WEIGHTS)
    weights.update(
        {k: float(v) for k, v in settings.dashboard_score_weights.items() if k in SCORE_KINDS}
    )
    return weights


def year_range(year: int) -> DateRange:
    return DateRange(date(year, 1, 1), date(year, 12, 31))


async def build_archive(
    session: AsyncSession, deputy: Deputy, year: int, settings: Settings
) -> Archive:
    assert deputy.id is not None
    await tune_report_queries(session)
    period = year_range(year)
    dialect = dialect_of(session)
    deputy_id = deputy.id

    hours = hours_between(dialect, CheckIn.checked_in_at, CheckIn.checked_out_at)
    checkin_rows = await session.execute(
        select(CheckIn, Station.name, hours)
        .join(Station, col(Station.id) == CheckIn.station_id)
        .where(CheckIn.deputy_id == deputy_id, between(CheckIn.checked_in_at, period))
        .order_by(col(CheckIn.checked_in_at))
    )
    checkins = [
        ArchiveCheckIn(
            id=c.id,
            station_id=c.station_id,
            station_name=name,
            checked_in_at=c.checked_in_at,
            checked_out_at=c.checked_out_at,
            hours=round(float(h), 2) if h is not None and not c.auto_closed else None,
            auto_closed=c.auto_closed,
            duty_slot_id=c.duty_slot_id,
        )
        for c, name, h in checkin_rows
    ]

    attended = exists().where(CheckIn.duty_slot_id == DutySlot.id, CheckIn.deputy_id == deputy_id)
    slot_rows = await session.execute(
        select(DutySlot, Station.name, attended)
        .join(DutyAssignment, col(DutyAssignment.slot_id) == DutySlot.id)
        .join(Station, col(Station.id) == DutySlot.station_id)
        .where(DutyAssignment.deputy_id == deputy_id, between(DutySlot.starts_at, period))
        .order_by(col(DutySlot.starts_at))
    )
    duty_slots = [
        ArchiveDutySlot(
            slot_id=s.id,
            station_id=s.station_id,
            station_name=name,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            attended=bool(was),
        )
        for s, name, was in slot_rows
    ]

    reception_rows = await session.execute(
        select(Reception, Station.name)
        .join(Station, col(Station.id) == Reception.station_id)
        .where(Reception.deputy_id == deputy_id, between(Reception.received_at, period))
        .order_by(col(Reception.received_at))
    )
    receptions = [
        ArchiveReception(
            id=r.id,
            station_id=r.station_id,
            station_name=name,
            received_at=r.received_at,
            topic=r.topic,
            case_id=r.case_id,
        )
        for r, name in reception_rows
    ]

    submitted_rows = await session.execute(
        select(Case)
        .join(User, col(User.id) == Case.submitter_id)
        .where(User.deputy_id == deputy_id, between(Case.created_at, period))
        .order_by(col(Case.created_at))
    )
    cases_submitted = [_case(c, None) for c in submitted_rows.scalars()]
    followed_rows = await session.execute(
        select(Case, CaseFollow.created_at)
        .join(CaseFollow, col(CaseFollow.case_id) == Case.id)
        .where(CaseFollow.deputy_id == deputy_id, between(CaseFollow.created_at, period))
        .order_by(col(CaseFollow.created_at))
    )
    cases_followed = [_case(c, at) for c, at in followed_rows]

    wish_rows = await session.execute(
        select(Wish)
        .where(
            Wish.claimed_by_deputy_id == deputy_id,
            between(Wish.claimed_at, period) | between(Wish.fulfilled_at, period),
        )
        .order_by(col(Wish.claimed_at))
    )
    wishes = [
        ArchiveWish(
            id=w.id,
            title=w.title,
            status=w.status,
            claimed_at=w.claimed_at,
            fulfilled_at=w.fulfilled_at,
            completed_at=w.completed_at,
            rating=w.rating,
            fulfilled_in_year=w.fulfilled_at is not None
            and period.since <= w.fulfilled_at < period.until
            and w.status in FULFILLED,
            claimed_in_year=w.claimed_at is not None
            and period.since <= w.claimed_at < period.until,
        )
        for w in wish_rows.scalars()
    ]

    act_rows = await session.execute(
        select(ManualAct)
        .where(
            ManualAct.deputy_id == deputy_id,
            and_(
                col(ManualAct.occurred_on) >= period.start, col(ManualAct.occurred_on) <= period.end
            ),
        )
        .order_by(col(ManualAct.occurred_on), col(ManualAct.id))
    )
    manual_acts = [ManualActPublic.model_validate(a) for a in act_rows.scalars()]

    activities = [
        ArchiveActivity(**row)
        for row in await activity_service.deputy_attendance(
            session, deputy_id, period.since, period.until
        )
    ]

    reports = [
        ArchiveReport(**row)
        for row in await report_service.deputy_reports(session, deputy_id, year)
    ]

    consultation_comments = [
        ArchiveConsultationComment(**row)
        for row in await consultation_service.deputy_comments(
            session, deputy_id, period.since, period.until
        )
    ]

    suggestions = await _suggestions(session, deputy_id, period)

    manual_counts = {k.value: 0 for k in ManualActKind}
    for act in manual_acts:
        manual_counts[act.kind.value] += 1
    resolved_ids = {
        c.id for c in (*cases_submitted, *cases_followed) if c.status == CaseStatus.resolved.value
    }
    totals = ArchiveTotals(
        checkins=len(checkins),
        duty_hours=round(sum(c.hours or 0 for c in checkins), 2),
        duty_slots=len(duty_slots),
        duty_slots_attended=sum(1 for s in duty_slots if s.attended),
        receptions=len(receptions),
        cases_submitted=len(cases_submitted),
        cases_followed=len(cases_followed),
        cases_resolved=len(resolved_ids),
        wishes_claimed=sum(1 for w in wishes if w.claimed_in_year),
        wishes_fulfilled=sum(1 for w in wishes if w.fulfilled_in_year),
        manual_acts=manual_counts,
        activities_present=sum(1 for a in activities if a.status == "present"),
        activities_excused=sum(1 for a in activities if a.status == "excused"),
        activities_absent=sum(1 for a in activities if a.status == "absent"),
        reports=len(reports),
        consultation_comments=len(consultation_comments),
        suggestions_led=sum(1 for x in suggestions if x.role == "lead"),
        suggestions_cosigned=sum(1 for x in suggestions if x.role == "co_signer"),
    )
    return Archive(
        deputy_id=deputy_id,
        name=deputy.name,
        level=deputy.level,
        year=year,
        checkins=checkins,
        duty_slots=duty_slots,
        receptions=receptions,
        cases_submitted=cases_submitted,
        cases_followed=cases_followed,
        wishes=wishes,
        manual_acts=manual_acts,
        activities=activities,
        reports=reports,
        consultation_comments=consultation_comments,
        suggestions=suggestions,
        totals=totals,
        score=score_of(totals, score_weights(settings)),
    )


async def _suggestions(
    session: AsyncSession, deputy_id: int, period: DateRange
) -> list[ArchiveSuggestion]:
    """Suggestions submitted in the year that the deputy led or co-signed."""
    co_signed = exists().where(
        SuggestionCoSigner.suggestion_id == Suggestion.id,
        SuggestionCoSigner.deputy_id == deputy_id,
    )
    rows = await session.execute(
        select(Suggestion)
        .where(
            col(Suggestion.submitted_at).is_not(None),
            between(Suggestion.submitted_at, period),
            (col(Suggestion.deputy_id) == deputy_id) | co_signed,
        )
        .order_by(col(Suggestion.submitted_at), col(Suggestion.id))
    )
    return [
        ArchiveSuggestion(
            id=x.id,  # type: ignore[arg-type]
            number=x.number,
            title=x.title,
            status=x.status,
            role="lead" if x.deputy_id == deputy_id else "co_signer",
            submitted_at=x.submitted_at,  # type: ignore[arg-type]
            evaluation=x.evaluation,
        )
        for x in rows.scalars()
    ]


def _case(c: Case, followed_at: Any) -> ArchiveCase:
    return ArchiveCase(
        id=c.id,  # type: ignore[arg-type]
        number=c.number,
        title=c.title,
        status=c.status,
        created_at=c.created_at,
        fed_back_at=c.fed_back_at,
        resolved_at=c.resolved_at,
        satisfaction=c.satisfaction,
        followed_at=followed_at,
    )


def score_of(totals: ArchiveTotals, weights: dict[str, float]) -> Score:
    counts: dict[str, float] = {
        "checkin": totals.checkins,
        "duty_hour": totals.duty_hours,
        "duty_attended": totals.duty_slots_attended,
        "reception": totals.receptions,
        "case_submitted": totals.cases_submitted,
        "case_followed": totals.cases_followed,
        "case_resolved": totals.cases_resolved,
        "wish_claimed": totals.wishes_claimed,
        "wish_fulfilled": totals.wishes_fulfilled,
        "activity_present": totals.activities_present,
        "activity_excused": totals.activities_excused,
        "activity_absent": totals.activities_absent,
        "report": totals.reports,
        "consultation_comment": totals.consultation_comments,
        "suggestion_led": totals.suggestions_led,
        "suggestion_cosigned": totals.suggestions_cosigned,
        **{k: float(v) for k, v in totals.manual_acts.items()},
    }
    lines = [
        ScoreLine(
            kind=kind,
            label=SCORE_KINDS[kind][0],
            count=counts[kind],
            weight=weights[kind],
            points=round(counts[kind] * weights[kind], 2),
        )
        for kind in SCORE_KINDS
    ]
    return Score(total=round(sum(line.points for line in lines), 2), breakdown=lines)


# --- Export ----------------------------------------------------------------------------------

ARCHIVE_HEADERS = ["类别", "时间", "事项", "地点/站点", "状态/结果", "时长（小时）", "编号"]


def archive_rows(archive: Archive) -> Iterator[Sequence[Cell]]:
    """One row per act, then the score lines: one sheet an assessor can read."""
    for c in archive.checkins:
        yield (
            "进站签到" + ("（按排班）" if c.duty_slot_id else ""),
            cell(c.checked_in_at),
            "签到" + (f"，签退 {cell(c.checked_out_at)}" if c.checked_out_at else ""),
            c.station_name,
            "自动签退" if c.auto_closed else ("已签退" if c.checked_out_at else "在站"),
            c.hours,
            c.id,
        )
    for s in archive.duty_slots:
        yield ("排班值班", cell(s.starts_at), f"至 {cell(s.ends_at)}", s.station_name,
               "已到岗" if s.attended else "未到岗", None, s.slot_id)  # fmt: skip
    for r in archive.receptions:
        yield ("接待群众", cell(r.received_at), r.topic, r.station_name,
               f"转为意见建议 {r.case_id}" if r.case_id else "已记录", None, r.id)  # fmt: skip
    for kind, cases in (
        ("提交意见建议", archive.cases_submitted),
        ("跟踪意见建议", archive.cases_followed),
    ):
        for item in cases:
            outcome = CASE_STATUS_LABELS.get(item.status, item.status)
            if item.satisfaction:
                outcome += "，" + SATISFACTION_LABELS.get(item.satisfaction, item.satisfaction)
            yield (kind, cell(item.followed_at or item.created_at), item.title, None, outcome,
                   None, item.number or item.id)  # fmt: skip
    for w in archive.wishes:
        yield ("微心愿", cell(w.fulfilled_at or w.claimed_at), w.title, None,
               WISH_STATUS_LABELS.get(w.status, w.status), None, w.id)  # fmt: skip
    for act in archive.activities:
        yield ("代表活动", cell(act.starts_at), act.title, act.kind_label or act.kind,
               ATTENDANCE_LABELS.get(act.status, act.status), None, act.activity_id)  # fmt: skip
    for rep in archive.reports:
        rate = "" if rep.satisfaction_rate is None else f"，满意率 {rep.satisfaction_rate:.0%}"
        yield ("向选民述职", cell(rep.published_at), rep.title, None,
               f"评议 {rep.total} 人{rate}", None, rep.report_id)  # fmt: skip
    for com in archive.consultation_comments:
        where = f"第{com.article_no}条" if com.article_no else "总体"
        yield ("立法意见", cell(com.created_at), f"{com.title}（{where}）", None,
               OUTCOME_LABELS.get(com.outcome or "", "待处理"), None, com.comment_id)  # fmt: skip
    for x in archive.suggestions:
        outcome = SUGGESTION_STATUS_LABELS.get(x.status, x.status)
        if x.evaluation:
            outcome += "，代表评价" + SATISFACTION_LABELS.get(x.evaluation, x.evaluation)
        kind = "领衔代表建议" if x.role == "lead" else "附议代表建议"
        yield (kind, cell(x.submitted_at), x.title, None, outcome, None, x.number or x.id)
    for a in archive.manual_acts:
        yield (MANUAL_ACT_LABELS.get(a.kind, a.kind), cell(a.occurred_on), a.title, a.location,
               a.note, a.hours, a.id)  # fmt: skip
    yield ()
    yield ("得分项", "数量", "权重", "得分")
    for line in archive.score.breakdown:
        yield (line.label, line.count, line.weight, line.points)
    yield ("年度得分", None, None, archive.score.total)
