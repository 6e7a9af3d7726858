"""HTTP endpoints of reporting to voters (述职评议)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from app.core.db import Database, SessionDep, get_db
from app.core.deps import CurrentPrincipal, OptionalPrincipal, SettingsDep
from app.core.errors import Forbidden, problem_responses
from app.core.pagination import Page, PageDep
from app.core.security import Role
from app.core.types import MAX_ID
from app.reports import service
from app.reports.schemas import (
    EvaluationCreate,
    EvaluationSheet,
    MyEvaluation,
    ReportCreate,
    ReportDetail,
    ReportPublic,
    ReportUpdate,
)
from app.wechat.content_check import ContentFlag, check_user_text
from app.wechat.deps import WeChatDep

router = APIRouter(tags=["reports"])

ReportId = Annotated[int, Path(ge=1, le=MAX_ID, description="The report's id")]


@dataclass(frozen=True, slots=True)
class CheckedEvaluation:
    body: EvaluationCreate
    flag: ContentFlag | None


async def _checked_evaluation(
    body: EvaluationCreate,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    wechat: WeChatDep,
    db: Annotated[Database, Depends(get_db)],
) -> CheckedEvaluation:
    """The comment's content check, before the request's transaction opens."""
    if principal.role != Role.resident:
        raise Forbidden("仅限选民参加评议")
    if not body.comment:
        return CheckedEvaluation(body, None)
    flag = await check_user_text(
        db, wechat, principal.user_id, body.comment, scene=settings.comment_sec_check_scene
    )
    return CheckedEvaluation(body, flag)


@router.get(
    "/deputy-reports",
    response_model=Page[ReportPublic],
    summary="List deputies' reports (public; drafts for staff and the deputy)",
    responses=problem_responses(422),
)
async def list_reports(
    session: SessionDep,
    principal: OptionalPrincipal,
    page: PageDep,
    deputy_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    year: Annotated[int | None, Query(ge=2000, le=2199)] = None,
) -> Page[ReportPublic]:
    """Published reports for everyone, newest year first; staff also see the drafts of the
    deputies in their region subtree, a deputy their own."""
    items, total = await service.list_reports(
        session, principal, page, deputy_id=deputy_id, year=year
    )
    return Page(items=items, total=total)


@router.post(
    "/deputy-reports",
    response_model=ReportDetail,
    status_code=201,
    summary="Write a report (the deputy, or staff for a deputy in scope)",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_report(
    session: SessionDep, principal: CurrentPrincipal, body: ReportCreate
) -> ReportDetail:
    """One per deputy and year (409 `report_exists`). `publish: true` publishes it at once;
    attachments are the caller's uploads (`POST /attachments`)."""
    report = await service.create_report(session, principal, body)
    return await service.detail(session, principal, report, True)


@router.get(
    "/deputy-reports/{report_id}",
    response_model=ReportDetail,
    summary="One report",
    responses=problem_responses(404, 422),
)
async def get_report(
    session: SessionDep, principal: OptionalPrincipal, report_id: ReportId
) -> ReportDetail:
    """A published report for everyone (with the caller's own `my_evaluation`); a draft only
    for staff in scope and the deputy. Staff and the deputy also get `results`."""
    report, manage = await service.report_for(session, principal, report_id)
    return await service.detail(session, principal, report, manage)


@router.patch(
    "/deputy-reports/{report_id}",
    response_model=ReportDetail,
    summary="Edit or publish a report (the deputy, staff in scope)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_report(
    session: SessionDep, principal: CurrentPrincipal, report_id: ReportId, body: ReportUpdate
) -> ReportDetail:
    """`status: published` publishes a draft (the deputy hears of it when staff publish);
    a published report cannot go back to draft (409 `invalid_transition`)."""
    report, manage = await service.report_for(session, principal, report_id)
    if not manage:
        raise Forbidden("只有代表本人或管辖范围内的工作人员可以修改述职报告")
    await service.update_report(session, principal, report, body)
    return await service.detail(session, principal, report, manage)


@router.post(
    "/deputy-reports/{report_id}/evaluations",
    response_model=MyEvaluation,
    status_code=201,
    summary="Evaluate a report, once (resident)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def evaluate(
    checked: Annotated[CheckedEvaluation, Depends(_checked_evaluation)],
    session: SessionDep,
    principal: CurrentPrincipal,
    report_id: ReportId,
) -> MyEvaluation:
    """`rating`: satisfied (满意) / basically_satisfied (基本满意) / dissatisfied (不满意), with
    an optional `comment` that passes WeChat's content check (422 `content_rejected`). Once
    per account (409 `already_evaluated`), accounts with a verified phone only (422
    `phone_not_verified`), and residents of the constituency where the account says where
    they live (403 `not_in_constituency`); 409 `evaluation_closed` outside the window."""
    report, _ = await service.report_for(session, principal, report_id)
    return await service.evaluate(session, principal, report, checked.body, checked.flag)


@router.get(
    "/deputy-reports/{report_id}/evaluations",
    response_model=EvaluationSheet,
    summary="Results and comments (staff)",
    responses=problem_responses(401, 403, 404, 422),
)
async def evaluations(
    session: SessionDep, principal: CurrentPrincipal, report_id: ReportId, page: PageDep
) -> EvaluationSheet:
    """Counts per rating, the satisfaction rate and the comments (residents' nicknames
    masked), for staff whose region subtree holds the deputy."""
    if not principal.is_staff:
        raise Forbidden()
    report, manage = await service.report_for(session, principal, report_id)
    if not manage:
        raise Forbidden("该代表不在您的管辖范围内")
    return await service.evaluation_sheet(session, report, page)
