"""The rules of reporting to voters (述职评议).

A deputy's yearly report is written by the deputy or by staff whose region subtree holds
the deputy, and published for a constituency (a region's subtree and the regions of some
stations). Residents with a verified phone evaluate it once each — the unique key
(report, account) settles it, also under races — and, where their account says which region
they live in, only if that region belongs to the constituency.

Functions other domains call: `deputy_reports(session, deputy_id, since_year, until_year)`
for the duty archive and `reported_deputy_ids(session, ids)` for the statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.activities.models import Activity
from app.attachments import service as attachment_service
from app.attachments.schemas import AttachmentPublic
from app.core.clock import utcnow
from app.core.db import dialect_insert
from app.core.errors import (
    AppError,
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from app.core.masking import mask_name
from app.core.pagination import PageParams
from app.core.security import Principal, Role
from app.identity.errors import PhoneNotVerified
from app.identity.models import Deputy, User
from app.notify import service as notify_service
from app.org.models import Region, Station
from app.presence import service as presence_service
from app.reports.models import DeputyReport, DeputyReportEvaluation, Rating, ReportStatus
from app.reports.schemas import (
    EvaluationCreate,
    EvaluationPublic,
    EvaluationSheet,
    MyEvaluation,
    ReportCreate,
    ReportDetail,
    ReportPublic,
    ReportResults,
    ReportUpdate,
)
from app.wechat.content_check import ContentFlag

OWNER_TYPE_REPORT = "deputy_report"
REPORT_PAGE = "pages/report/detail?id={report_id}"
evaluation_t: sa.Table = DeputyReportEvaluation.__table__  # type: ignore[attr-defined]


class ReportExists(Conflict):
    code, detail = "report_exists", "该代表本年度已有述职报告"


class AlreadyEvaluated(Conflict):
    code, detail = "already_evaluated", "您已评议过该述职报告"


class EvaluationClosed(AppError):
    status, code, detail = 409, "evaluation_closed", "该述职报告不在评议期内"


class NotInConstituency(Forbidden):
    code, detail = "not_in_constituency", "您不在该代表的选区内，不能参加评议"


# Access -------------------------------------------------------------------------------------------


async def _region_path(session: AsyncSession, region_id: int | None) -> str | None:
    if region_id is None:
        return None
    return (
        await session.execute(sa.select(Region.path).where(col(Region.id) == region_id))
    ).scalar_one_or_none()


async def _deputy_in_scope(session: AsyncSession, principal: Principal, deputy: Deputy) -> bool:
    scope = await presence_service.staff_region_path(session, principal)
    if scope is None:
        return True
    path = await _region_path(session, deputy.region_id)
    return path is not None and path.startswith(scope)


async def can_manage(
    session: AsyncSession, principal: Principal | None, report: DeputyReport
) -> bool:
    if principal is None:
        return False
    if principal.role == Role.deputy:
        return principal.deputy_id == report.deputy_id
    if principal.is_staff:
        deputy = await session.get(Deputy, report.deputy_id)
        return deputy is not None and await _deputy_in_scope(session, principal, deputy)
    return False


async def report_for(
    session: AsyncSession, principal: Principal | None, report_id: int
) -> tuple[DeputyReport, bool]:
    """The report and whether the caller manages it; a draft is not found for others."""
    report = await session.get(DeputyReport, report_id)
    if report is None:
        raise NotFound("述职报告不存在")
    manage = await can_manage(session, principal, report)
    if report.status != ReportStatus.published and not manage:
        raise NotFound("述职报告不存在")
    return report, manage


async def attachment_visible(
    session: AsyncSession, principal: Principal | None, owner_id: int
) -> bool:
    try:
        await report_for(session, principal, owner_id)
    except NotFound:
        return False
    return True


attachment_service.register_visibility(OWNER_TYPE_REPORT, attachment_visible)


# Answers ---------------------------------------------------------------------------------------


async def _names(session: AsyncSession, deputy_ids: Sequence[int]) -> dict[int, str]:
    if not deputy_ids:
        return {}
    rows = await session.execute(
        sa.select(Deputy.id, Deputy.name).where(col(Deputy.id).in_(set(deputy_ids)))
    )
    return {int(i): n for i, n in rows}


def _public(report: DeputyReport, name: str) -> dict[str, Any]:
    return {
        "id": report.id,
        "deputy_id": report.deputy_id,
        "deputy_name": name,
        "year": report.year,
        "term": report.term,
        "title": report.title,
        "region_id": report.region_id,
        "station_ids": list(report.station_ids or []),
        "activity_id": report.activity_id,
        "status": report.status,
        "published_at": report.published_at,
        "evaluation_closes_at": report.evaluation_closes_at,
    }


async def results(session: AsyncSession, report_ids: Sequence[int]) -> dict[int, ReportResults]:
    ids = list(report_ids)
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        rows = await session.execute(
            sa.select(
                DeputyReportEvaluation.report_id, DeputyReportEvaluation.rating, sa.func.count()
            )
            .where(col(DeputyReportEvaluation.report_id).in_(ids))
            .group_by(DeputyReportEvaluation.report_id, DeputyReportEvaluation.rating)
        )
        for report_id, rating, n in rows:
            counts[report_id][str(rating)] = int(n)
    out = {}
    for report_id, c in counts.items():
        total = sum(c.values())
        good = c.get(Rating.satisfied.value, 0) + c.get(Rating.basically_satisfied.value, 0)
        out[report_id] = ReportResults(
            total=total,
            satisfied=c.get(Rating.satisfied.value, 0),
            basically_satisfied=c.get(Rating.basically_satisfied.value, 0),
            dissatisfied=c.get(Rating.dissatisfied.value, 0),
            satisfaction_rate=round(good / total, 4) if total else None,
        )
    return out


async def detail(
    session: AsyncSession, principal: Principal | None, report: DeputyReport, manage: bool
) -> ReportDetail:
    assert report.id is not None
    name = (await _names(session, [report.deputy_id])).get(report.deputy_id, "")
    attachments = (
        await attachment_service.attachments_of(session, OWNER_TYPE_REPORT, [report.id])
    )[report.id]
    mine = None
    if principal is not None and principal.role == Role.resident:
        own = (
            await session.execute(
                sa.select(DeputyReportEvaluation).where(
                    col(DeputyReportEvaluation.report_id) == report.id,
                    col(DeputyReportEvaluation.user_id) == principal.user_id,
                )
            )
        ).scalar_one_or_none()
        if own is not None:
            mine = MyEvaluation(rating=own.rating, comment=own.comment, created_at=own.created_at)
    return ReportDetail(
        **_public(report, name),
        content=report.content,
        attachments=[AttachmentPublic.of(a) for a in attachments],
        can_manage=manage,
        my_evaluation=mine,
        results=(await results(session, [report.id]))[report.id] if manage else None,
    )


async def list_reports(
    session: AsyncSession,
    principal: Principal | None,
    page: PageParams,
    *,
    deputy_id: int | None,
    year: int | None,
) -> tuple[list[ReportPublic], int]:
    """Published reports for everyone; drafts too for staff in scope and the deputy."""
    visible: Any = col(DeputyReport.status) == ReportStatus.published.value
    if principal is not None and principal.is_staff:
        scope = await presence_service.staff_region_path(session, principal)
        if scope is None:
            visible = sa.true()
        else:
            in_scope = col(DeputyReport.deputy_id).in_(
                sa.select(Deputy.id)
                .join(Region, col(Region.id) == Deputy.region_id)
                .where(col(Region.path).startswith(scope))
            )
            visible = sa.or_(visible, in_scope)
    elif principal is not None and principal.deputy_id is not None:
        visible = sa.or_(visible, col(DeputyReport.deputy_id) == principal.deputy_id)
    stmt = sa.select(DeputyReport).where(visible)
    if deputy_id is not None:
        stmt = stmt.where(col(DeputyReport.deputy_id) == deputy_id)
    if year is not None:
        stmt = stmt.where(col(DeputyReport.year) == year)
    total = (
        await session.execute(sa.select(sa.func.count()).select_from(stmt.subquery()))
    ).scalar_one()
    reports = list(
        (
            await session.execute(
                stmt.order_by(col(DeputyReport.year).desc(), col(DeputyReport.id).desc())
                .limit(page.limit)
                .offset(page.offset)
            )
        ).scalars()
    )
    names = await _names(session, [r.deputy_id for r in reports])
    return [ReportPublic(**_public(r, names.get(r.deputy_id, ""))) for r in reports], int(total)


# Writing -------------------------------------------------------------------------------------------


async def _check_refs(
    session: AsyncSession, station_ids: Sequence[int], activity_id: int | None
) -> None:
    if station_ids:
        found = set(
            (
                await session.execute(sa.select(Station.id).where(col(Station.id).in_(station_ids)))
            ).scalars()
        )
        missing = [s for s in station_ids if s not in found]
        if missing:
            raise ValidationFailed("站点不存在", code="unknown_station", station_ids=missing)
    if activity_id is not None and await session.get(Activity, activity_id) is None:
        raise ValidationFailed("活动不存在", code="unknown_activity")


async def _tell_published(session: AsyncSession, report: DeputyReport) -> None:
    user_id = (
        await session.execute(
            sa.select(User.id).where(
                col(User.deputy_id) == report.deputy_id, col(User.is_active).is_(True)
            )
        )
    ).scalar_one_or_none()
    if user_id is None:
        return
    await notify_service.enqueue(
        session,
        recipient_id=user_id,
        event="deputy_report.published",
        dedupe_key=f"deputy_report:{report.id}:published",
        title="述职报告已发布",
        body=f"您的述职报告「{report.title}」已向选民公开，可以接受评议",
        page=f"pages/report/detail?id={report.id}",
        params={"report_id": report.id, "title": report.title},
    )


async def create_report(
    session: AsyncSession, principal: Principal, body: ReportCreate
) -> DeputyReport:
    if principal.role == Role.deputy and principal.deputy_id is not None:
        if body.deputy_id not in (None, principal.deputy_id):
            raise Forbidden("代表只能撰写本人的述职报告")
        deputy_id = principal.deputy_id
    elif principal.is_staff:
        if body.deputy_id is None:
            raise ValidationFailed("请指定代表", code="validation_error")
        deputy_id = body.deputy_id
    else:
        raise Forbidden()
    deputy = await session.get(Deputy, deputy_id)
    if deputy is None:
        raise ValidationFailed("代表不存在", code="unknown_deputies", deputy_ids=[deputy_id])
    if principal.is_staff and not await _deputy_in_scope(session, principal, deputy):
        raise Forbidden("该代表不在您的管辖范围内")
    region_id = body.region_id or deputy.region_id
    if region_id is None or await session.get(Region, region_id) is None:
        raise ValidationFailed("请指定选区所在区域", code="unknown_region")
    await _check_refs(session, body.station_ids, body.activity_id)
    exists = await session.execute(
        sa.select(DeputyReport.id).where(
            col(DeputyReport.deputy_id) == deputy_id, col(DeputyReport.year) == body.year
        )
    )
    if exists.first() is not None:
        raise ReportExists()
    now = utcnow()
    report = DeputyReport(
        deputy_id=deputy_id,
        year=body.year,
        term=deputy.term,
        title=body.title,
        content=body.content,
        region_id=region_id,
        station_ids=list(body.station_ids),
        activity_id=body.activity_id,
        status=ReportStatus.published if body.publish else ReportStatus.draft,
        published_at=now if body.publish else None,
        evaluation_closes_at=body.evaluation_closes_at,
        created_by_user_id=principal.user_id,
    )
    session.add(report)
    try:
        await session.flush()
    except sa.exc.IntegrityError as exc:  # a concurrent report for the same year won
        raise ReportExists() from exc
    assert report.id is not None
    await attachment_service.claim_attachments(
        session, body.attachment_ids, principal.user_id, OWNER_TYPE_REPORT, report.id
    )
    if body.publish and principal.is_staff:
        await _tell_published(session, report)
    return report


async def update_report(
    session: AsyncSession, principal: Principal, report: DeputyReport, body: ReportUpdate
) -> DeputyReport:
    fields = body.model_dump(exclude_unset=True)
    if fields.get("status") == ReportStatus.draft and report.status == ReportStatus.published:
        raise InvalidTransition("已发布的述职报告不能撤回为草稿")
    await _check_refs(session, fields.get("station_ids") or [], fields.get("activity_id"))
    for name in ("title", "content", "station_ids", "activity_id", "evaluation_closes_at"):
        if name in fields and (
            fields[name] is not None or name in ("activity_id", "evaluation_closes_at")
        ):
            setattr(report, name, fields[name])
    publish = fields.get("status") == ReportStatus.published and report.status == ReportStatus.draft
    if publish:
        report.status = ReportStatus.published
        report.published_at = utcnow()
    report.updated_at = utcnow()
    session.add(report)
    await session.flush()
    if publish and principal.is_staff:
        await _tell_published(session, report)
    return report


# Evaluations ------------------------------------------------------------------------------------


async def _constituency_paths(session: AsyncSession, report: DeputyReport) -> list[str]:
    region_ids = {report.region_id}
    if report.station_ids:
        region_ids.update(
            (
                await session.execute(
                    sa.select(Station.region_id).where(col(Station.id).in_(report.station_ids))
                )
            ).scalars()
        )
    rows = await session.execute(sa.select(Region.path).where(col(Region.id).in_(region_ids)))
    return list(rows.scalars())


async def evaluate(
    session: AsyncSession,
    principal: Principal,
    report: DeputyReport,
    body: EvaluationCreate,
    flag: ContentFlag | None,
) -> MyEvaluation:
    """Once per account (409 `already_evaluated`), verified phone, constituency where known."""
    if principal.role != Role.resident:
        raise Forbidden("仅限选民参加评议")
    now = utcnow()
    if report.status != ReportStatus.published or (
        report.evaluation_closes_at is not None and report.evaluation_closes_at <= now
    ):
        raise EvaluationClosed()
    user = await session.get(User, principal.user_id)
    if user is None or not user.is_active:
        raise Forbidden()
    if user.phone_verified_at is None:
        raise PhoneNotVerified("请先验证手机号后再参加评议")
    home = await _region_path(session, user.region_id)
    if home is not None:
        paths = await _constituency_paths(session, report)
        # Known precisely (inside the constituency) or only roughly (a region above it).
        if not any(home.startswith(p) or p.startswith(home) for p in paths):
            raise NotInConstituency()
    insert = dialect_insert(session, evaluation_t)
    inserted = (
        await session.execute(
            insert.values(
                report_id=report.id,
                user_id=principal.user_id,
                rating=body.rating.value,
                comment=body.comment,
                content_flag=flag.value if flag else None,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["report_id", "user_id"])
            .returning(evaluation_t.c.id)
        )
    ).first()
    if inserted is None:
        raise AlreadyEvaluated()
    return MyEvaluation(rating=body.rating, comment=body.comment, created_at=now)


async def evaluation_sheet(
    session: AsyncSession, report: DeputyReport, page: PageParams
) -> EvaluationSheet:
    assert report.id is not None
    rows = await session.execute(
        sa.select(DeputyReportEvaluation, User.nickname)
        .join(User, col(User.id) == DeputyReportEvaluation.user_id)
        .where(col(DeputyReportEvaluation.report_id) == report.id)
        .order_by(col(DeputyReportEvaluation.id))
        .limit(page.limit)
        .offset(page.offset)
    )
    items = [
        EvaluationPublic(
            id=e.id,  # type: ignore[arg-type]
            rating=e.rating,
            comment=e.comment,
            content_flag=e.content_flag,
            resident=mask_name(nickname),
            created_at=e.created_at,
        )
        for e, nickname in rows
    ]
    summary = (await results(session, [report.id]))[report.id]
    return EvaluationSheet(report_id=report.id, results=summary, items=items, total=summary.total)


# For the duty archive and the statistics ----------------------------------------------------------


async def deputy_reports(session: AsyncSession, deputy_id: int, year: int) -> list[dict[str, Any]]:
    reports = list(
        (
            await session.execute(
                sa.select(DeputyReport).where(
                    col(DeputyReport.deputy_id) == deputy_id,
                    col(DeputyReport.year) == year,
                    col(DeputyReport.status) == ReportStatus.published.value,
                )
            )
        ).scalars()
    )
    summary = await results(session, [r.id for r in reports if r.id is not None])
    return [
        {
            "report_id": r.id,
            "year": r.year,
            "title": r.title,
            "published_at": r.published_at,
            **summary[r.id].model_dump(),  # type: ignore[index]
        }
        for r in reports
    ]


def reported_condition(deputy_id_column: Any, deputy_term_column: Any) -> Any:
    """True for a deputy with a published report in their current term (届次); a deputy
    without a term counts any published report."""
    return sa.exists().where(
        col(DeputyReport.deputy_id) == deputy_id_column,
        col(DeputyReport.status) == ReportStatus.published.value,
        sa.or_(
            deputy_term_column.is_(None),
            col(DeputyReport.term) == deputy_term_column,
        ),
    )
