"""HTTP endpoints of legislative consultations (立法意见征集)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from app.consultations import exports, service
from app.consultations.models import Outcome
from app.consultations.schemas import (
    CommentCreate,
    CommentPublic,
    ConsultationCreate,
    ConsultationDetail,
    ConsultationPublic,
    ConsultationStats,
    ConsultationUpdate,
    OutcomeBody,
    PublishResult,
)
from app.core.clock import local_now
from app.core.db import Database, SessionDep, get_db
from app.core.deps import CurrentPrincipal, OptionalPrincipal, SettingsDep, StaffPrincipal
from app.core.errors import Forbidden, problem_responses
from app.core.pagination import Page, PageDep
from app.core.security import Role
from app.core.types import MAX_ID
from app.dashboard.exports import XLSX_MEDIA_TYPE
from app.wechat.content_check import ContentFlag, check_user_text
from app.wechat.deps import WeChatDep

router = APIRouter(tags=["consultations"])

ConsultationId = Annotated[int, Path(ge=1, le=MAX_ID, description="The consultation's id")]


@dataclass(frozen=True, slots=True)
class CheckedComment:
    body: CommentCreate
    flag: ContentFlag | None


async def _checked_comment(
    body: CommentCreate,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    wechat: WeChatDep,
    db: Annotated[Database, Depends(get_db)],
) -> CheckedComment:
    """The content check, before the request's transaction opens."""
    if principal.role not in (Role.resident, Role.deputy):
        raise Forbidden("仅限选民和代表提出意见")
    flag = await check_user_text(
        db, wechat, principal.user_id, body.content, scene=settings.comment_sec_check_scene
    )
    return CheckedComment(body, flag)


async def _managed(
    session: SessionDep, principal: StaffPrincipal, consultation_id: ConsultationId
) -> service.Consultation:
    consultation, manage = await service.consultation_for(session, principal, consultation_id)
    if not manage:
        raise Forbidden("该草案不在您的管辖范围内")
    return consultation


ManagedConsultation = Annotated[service.Consultation, Depends(_managed)]


@router.get(
    "/consultations",
    response_model=Page[ConsultationPublic],
    summary="Drafts put out for comment (public; drafts not yet published for staff)",
    responses=problem_responses(422),
)
async def list_consultations(
    session: SessionDep,
    principal: OptionalPrincipal,
    page: PageDep,
    station_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="At this contact point (or district-wide)")
    ] = None,
    open: Annotated[bool, Query(description="Only those open for comment now")] = False,
    year: Annotated[int | None, Query(ge=2000, le=2199)] = None,
) -> Page[ConsultationPublic]:
    """Newest first. `open=true` for the mini-program's list of drafts taking comments."""
    items, total = await service.list_consultations(
        session, principal, page, station_id=station_id, open_only=open, year=year
    )
    return Page(items=items, total=total)


@router.post(
    "/consultations",
    response_model=ConsultationDetail,
    status_code=201,
    summary="Put a draft out for comment (staff)",
    responses=problem_responses(401, 403, 422),
)
async def create_consultation(
    session: SessionDep, principal: StaffPrincipal, body: ConsultationCreate
) -> ConsultationDetail:
    """In a region of the caller's subtree, at contact points (`station_ids`: stations of
    kind `legislative_point` in scope, else 422 `not_a_contact_point`) or district-wide."""
    consultation = await service.create_consultation(session, principal, body)
    return await service.detail(session, principal, consultation, True)


@router.get(
    "/consultations/{consultation_id}",
    response_model=ConsultationDetail,
    summary="One draft with its articles",
    responses=problem_responses(404, 422),
)
async def get_consultation(
    session: SessionDep, principal: OptionalPrincipal, consultation_id: ConsultationId
) -> ConsultationDetail:
    """Published ones for everyone (with `my_comments`, the caller's count); drafts for
    staff in scope."""
    consultation, manage = await service.consultation_for(session, principal, consultation_id)
    return await service.detail(session, principal, consultation, manage)


@router.patch(
    "/consultations/{consultation_id}",
    response_model=ConsultationDetail,
    summary="Edit or publish a draft (staff)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_consultation(
    session: SessionDep,
    principal: StaffPrincipal,
    consultation: ManagedConsultation,
    body: ConsultationUpdate,
) -> ConsultationDetail:
    """`articles` only while unpublished (409 `invalid_transition`); nothing after the
    outcomes are published (409 `outcomes_published`)."""
    await service.update_consultation(session, consultation, body)
    return await service.detail(session, principal, consultation, True)


@router.post(
    "/consultations/{consultation_id}/comments",
    response_model=CommentPublic,
    status_code=201,
    summary="Comment on the draft or one article (resident, deputy)",
    responses=problem_responses(401, 403, 404, 422),
)
async def add_comment(
    checked: Annotated[CheckedComment, Depends(_checked_comment)],
    session: SessionDep,
    principal: CurrentPrincipal,
    consultation_id: ConsultationId,
) -> CommentPublic:
    """`article_no` null comments on the whole draft. 422 `consultation_closed` outside the
    window, 422 `unknown_article`, 422 `content_rejected` from the content check."""
    consultation, _ = await service.consultation_for(session, principal, consultation_id)
    return await service.add_comment(session, principal, consultation, checked.body, checked.flag)


@router.get(
    "/consultations/{consultation_id}/comments",
    response_model=Page[CommentPublic],
    summary="Comments: all for staff, one's own with `mine=true`",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_comments(
    session: SessionDep,
    principal: CurrentPrincipal,
    consultation_id: ConsultationId,
    page: PageDep,
    mine: Annotated[bool, Query(description="Only the caller's own, with their outcomes")] = False,
    article_no: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    outcome: Outcome | None = None,
) -> Page[CommentPublic]:
    """Grouped by article (the whole draft first). Staff in scope see all; anyone sees their
    own with `mine=true`, and what became of them once staff marked them."""
    consultation, manage = await service.consultation_for(session, principal, consultation_id)
    if not mine and not manage:
        raise Forbidden("只能查看本人的意见（mine=true）")
    items, total = await service.list_comments(
        session,
        consultation,
        page,
        user_id=principal.user_id if mine else None,
        article_no=article_no,
        outcome=outcome,
    )
    return Page(items=items, total=total)


@router.post(
    "/consultations/{consultation_id}/comments/{comment_id}/outcome",
    response_model=CommentPublic,
    summary="Mark a comment adopted, partly adopted or not (staff)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def set_outcome(
    session: SessionDep,
    principal: StaffPrincipal,
    consultation_id: ConsultationId,
    comment_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: OutcomeBody,
) -> CommentPublic:
    """采纳 / 部分采纳 / 未采纳 with a note; may change until the outcomes are published
    (409 `outcomes_published`)."""
    # Loaded here, not in a dependency: both ids are validated (422) before either is looked up.
    consultation = await _managed(session, principal, consultation_id)
    return await service.set_outcome(session, principal, consultation, comment_id, body)


@router.post(
    "/consultations/{consultation_id}/publish-outcomes",
    response_model=PublishResult,
    summary="Tell every commenter what became of their comments (staff)",
    responses=problem_responses(401, 403, 404, 409),
)
async def publish_outcomes(session: SessionDep, consultation: ManagedConsultation) -> PublishResult:
    """After the window (409 `consultation_open`), once every comment has an outcome (409
    `outcomes_missing`, with `missing`); each commenter gets one `consultation.outcomes`
    message summing up theirs. Once only (409 `outcomes_published`)."""
    return await service.publish_outcomes(session, consultation)


class ExportFormat(StrEnum):
    xlsx = "xlsx"
    docx = "docx"


@router.get(
    "/consultations/{consultation_id}/export",
    response_model=None,
    summary="The collation as XLSX or Word (staff)",
    responses={
        200: {
            "description": "The file, grouped by article",
            "content": {
                XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
                exports.DOCX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **problem_responses(401, 403, 404, 422),
    },
)
async def export(
    session: SessionDep,
    consultation: ManagedConsultation,
    format: Annotated[ExportFormat, Query(description="xlsx or docx")] = ExportFormat.xlsx,
) -> Response:
    """Every comment grouped by article with its outcome and note: the whole draft first,
    then article by article, as the legislature receives it. Residents appear by masked
    nickname, deputies by name."""
    groups = await service.collation(session, consultation)
    ids = {c.station_id for _, _, comments in groups for c in comments if c.station_id}
    stations = await service.station_names(session, list(ids))
    return await exports.export_response(format.value, consultation, groups, stations)


@router.get(
    "/stats/consultations",
    response_model=ConsultationStats,
    summary="Per contact point and year: drafts, comments, commenters, adopted (staff)",
    responses=problem_responses(401, 403, 422),
    tags=["dashboard"],
)
async def stats(
    session: SessionDep,
    principal: StaffPrincipal,
    year: Annotated[int | None, Query(ge=2000, le=2199, description="Default: this year")] = None,
) -> ConsultationStats:
    """Drafts published in the year in the caller's subtree, per legislative contact point
    (district-wide drafts on their own line): how many drafts, comments, distinct
    commenters, and comments adopted or partly adopted."""
    return await service.contact_point_stats(session, principal, year or local_now().year)
