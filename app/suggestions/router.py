"""HTTP endpoints of deputies' suggestions (代表建议)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy import desc, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.core.clock import local_now, utcnow
from app.core.db import SessionDep
from app.core.deps import CurrentPrincipal, DeputyPrincipal, SettingsDep, StaffPrincipal
from app.core.errors import Conflict, Forbidden, problem_responses
from app.core.lookup import names_by_id
from app.core.pagination import Page, PageDep, fetch_page
from app.core.security import Role
from app.core.types import MAX_ID
from app.dashboard.deps import StaffScope
from app.identity.models import Deputy
from app.org.deps import IfMatch, etag, expected_version
from app.org.models import Region, Unit
from app.suggestions import assessment, service
from app.suggestions.models import (
    Suggestion,
    SuggestionConsultation,
    SuggestionCoSigner,
    SuggestionEvent,
    SuggestionStatus,
    UnitAssessmentPublication,
)
from app.suggestions.schemas import (
    ConsultationCreate,
    ConsultationPublic,
    Ref,
    SuggestionAssign,
    SuggestionCaseRef,
    SuggestionCreate,
    SuggestionDetail,
    SuggestionEvaluate,
    SuggestionEventPublic,
    SuggestionNote,
    SuggestionPublic,
    SuggestionRehandle,
    SuggestionReply,
    SuggestionUpdate,
    UnitAssessment,
    UnitAssessmentRow,
)
from app.suggestions.service import SuggestionAccess

router = APIRouter(tags=["suggestions"])

_ACTION_ERRORS = problem_responses(401, 403, 404, 409, 422)


async def _access(
    session: SessionDep,
    principal: CurrentPrincipal,
    suggestion_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> SuggestionAccess:
    return await service.load_access(session, principal, suggestion_id)


AccessDep = Annotated[SuggestionAccess, Depends(_access)]


async def _publics(session: SessionDep, items: list[Suggestion]) -> list[SuggestionPublic]:
    deputies = await names_by_id(session, Deputy, {s.deputy_id for s in items})
    units = await names_by_id(session, Unit, {s.lead_unit_id for s in items if s.lead_unit_id})
    counts = await service.case_counts(session, [s.id for s in items if s.id])
    return [
        SuggestionPublic(
            id=s.id,  # type: ignore[arg-type]
            number=s.number,
            title=s.title,
            status=SuggestionStatus(s.status),
            deputy=Ref(id=s.deputy_id, name=deputies.get(s.deputy_id, "")),
            hotspot_id=s.hotspot_id,
            region_id=s.region_id,
            case_count=counts.get(s.id or 0, 0),
            lead_unit=Ref(id=s.lead_unit_id, name=units.get(s.lead_unit_id, ""))
            if s.lead_unit_id
            else None,
            deadline_at=s.deadline_at,
            evaluation=s.evaluation,  # type: ignore[arg-type]
            rehandle_count=s.rehandle_count,
            version=s.version,
            created_at=s.created_at,
        )
        for s in items
    ]


async def _detail(
    session: SessionDep, access: SuggestionAccess, response: Response | None = None
) -> SuggestionDetail:
    s = access.suggestion
    assert s.id is not None
    (base,) = await _publics(session, [s])
    co_signer_ids = list(
        (
            await session.execute(
                select(SuggestionCoSigner.deputy_id)
                .where(SuggestionCoSigner.suggestion_id == s.id)
                .order_by(col(SuggestionCoSigner.deputy_id))
            )
        ).scalars()
    )
    co_unit_ids = await service.co_unit_ids(session, s.id)
    consultations = list(
        (
            await session.execute(
                select(SuggestionConsultation)
                .where(SuggestionConsultation.suggestion_id == s.id)
                .order_by(col(SuggestionConsultation.held_at))
            )
        ).scalars()
    )
    deputies = await names_by_id(session, Deputy, set(co_signer_ids))
    units = await names_by_id(session, Unit, set(co_unit_ids) | {c.unit_id for c in consultations})
    events = (
        await session.execute(
            select(SuggestionEvent)
            .where(SuggestionEvent.suggestion_id == s.id)
            .order_by(col(SuggestionEvent.id))
        )
    ).scalars()
    cases = await service.case_refs(session, s.id)
    if response is not None:
        response.headers["ETag"] = etag(s.version)
    return SuggestionDetail(
        **base.model_dump(),
        content=s.content,
        co_signers=[Ref(id=d, name=deputies.get(d, "")) for d in co_signer_ids],
        co_units=[Ref(id=u, name=units.get(u, "")) for u in co_unit_ids],
        cases=[
            SuggestionCaseRef(
                id=c.id,  # type: ignore[arg-type]
                number=c.number,
                title=service.masked_title(c),
                status=c.status,
                created_at=c.created_at,
            )
            for c in cases
        ],
        reply=s.reply,
        replied_at=s.replied_at,
        evaluation_comment=s.evaluation_comment,
        submitted_at=s.submitted_at,
        registered_at=s.registered_at,
        assigned_at=s.assigned_at,
        supervised_count=s.supervised_count,
        consultations=[
            ConsultationPublic(
                id=c.id,  # type: ignore[arg-type]
                unit=Ref(id=c.unit_id, name=units.get(c.unit_id, "")),
                held_at=c.held_at,
                place=c.place,
                participants=c.participants,
                summary=c.summary,
                created_at=c.created_at,
            )
            for c in consultations
        ],
        timeline=[
            SuggestionEventPublic(
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                actor_role=e.actor_role,
                note=e.note,
                data=e.data,
                created_at=e.created_at,
            )
            for e in events
        ],
        can=service.allowed_actions(access),
    )


@router.get(
    "/suggestions", response_model=Page[SuggestionPublic], responses=problem_responses(401, 403)
)
async def list_suggestions(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    status: SuggestionStatus | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2199, description="Year of registration")] = None,
) -> Page[SuggestionPublic]:
    """Deputies: their own and those they co-signed (drafts included). Staff: those of their
    region subtree; units: those they handle (lead or co-unit). Newest first."""
    condition = await service.list_filter(session, principal)
    stmt = select(Suggestion).where(condition)
    if status is not None:
        stmt = stmt.where(Suggestion.status == status.value)
    if year is not None:
        stmt = stmt.where(Suggestion.year == year)
    rows, total = await fetch_page(session, stmt.order_by(desc(col(Suggestion.id))), page)
    return Page(items=await _publics(session, [r[0] for r in rows]), total=total)


@router.post(
    "/suggestions",
    response_model=SuggestionDetail,
    status_code=201,
    responses=problem_responses(401, 403, 404, 422),
)
async def create_suggestion(
    session: SessionDep, principal: DeputyPrincipal, body: SuggestionCreate, response: Response
) -> SuggestionDetail:
    """A deputy drafts a suggestion from a hotspot or from chosen cases (with co-signers:
    ids of deputies of a deputy group the author belongs to). The answer is the draft written from the cases — title, the
    problem with its counts, places, time span, residents' words masked, units involved —
    for the deputy to edit (PATCH) and submit."""
    suggestion = await service.create_draft(
        session,
        principal,
        hotspot_id=body.hotspot_id,
        case_ids=body.case_ids,
        co_signer_ids=body.co_signer_ids,
        now=utcnow(),
    )
    access = await service.load_access(session, principal, suggestion.id)  # type: ignore[arg-type]
    return await _detail(session, access, response)


@router.get(
    "/suggestions/{suggestion_id}",
    response_model=SuggestionDetail,
    responses=problem_responses(401, 404),
)
async def get_suggestion(
    session: SessionDep, access: AccessDep, response: Response
) -> SuggestionDetail:
    """One suggestion with its cases (titles masked), co-signers, units, consultations,
    timeline and the moves the caller may make (`can`). `ETag` carries the version."""
    return await _detail(session, access, response)


@router.patch(
    "/suggestions/{suggestion_id}",
    response_model=SuggestionDetail,
    responses=_ACTION_ERRORS,
)
async def edit_suggestion(
    session: SessionDep,
    access: AccessDep,
    body: SuggestionUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> SuggestionDetail:
    """The author edits the draft (title, content, co-signers) against the version read."""
    version = expected_version(body.version, if_match)
    await service.edit_draft(
        session,
        access,
        title=body.title,
        content=body.content,
        co_signer_ids=body.co_signer_ids,
        version=version,
        now=utcnow(),
    )
    return await _detail(session, access, response)


@router.post(
    "/suggestions/{suggestion_id}/submit", response_model=SuggestionDetail, responses=_ACTION_ERRORS
)
async def submit_suggestion(session: SessionDep, access: AccessDep) -> SuggestionDetail:
    """提交 (the author): draft → submitted, for staff to register."""
    await service.submit(session, access, utcnow())
    return await _detail(session, access)


@router.post(
    "/suggestions/{suggestion_id}/register",
    response_model=SuggestionDetail,
    responses=_ACTION_ERRORS,
)
async def register_suggestion(
    session: SessionDep, access: AccessDep, body: SuggestionNote | None = None
) -> SuggestionDetail:
    """登记 (staff): submitted → registered with the year's next number (2026-0001)."""
    await service.register(session, access, body.note if body else None, utcnow())
    return await _detail(session, access)


@router.post(
    "/suggestions/{suggestion_id}/assign", response_model=SuggestionDetail, responses=_ACTION_ERRORS
)
async def assign_suggestion(
    session: SessionDep, access: AccessDep, body: SuggestionAssign, settings: SettingsDep
) -> SuggestionDetail:
    """交办 (staff): registered → assigned to a lead unit (主办) and co-units (协办) with a
    deadline in working days of China's calendar; the units' handlers are told."""
    await service.assign(
        session,
        access,
        lead_unit_id=body.lead_unit_id,
        co_unit_ids=body.co_unit_ids,
        deadline_days=body.deadline_days,
        note=body.note,
        settings=settings,
        now=utcnow(),
    )
    return await _detail(session, access)


@router.post(
    "/suggestions/{suggestion_id}/supervise",
    response_model=SuggestionDetail,
    responses=_ACTION_ERRORS,
)
async def supervise_suggestion(
    session: SessionDep, access: AccessDep, body: SuggestionNote
) -> SuggestionDetail:
    """督办 (staff): reminds the lead unit; counted."""
    await service.supervise(session, access, body.note, utcnow())
    return await _detail(session, access)


@router.post(
    "/suggestions/{suggestion_id}/reply", response_model=SuggestionDetail, responses=_ACTION_ERRORS
)
async def reply_suggestion(
    session: SessionDep, access: AccessDep, body: SuggestionReply
) -> SuggestionDetail:
    """答复 (the lead unit): assigned → replied. The deputies are told, and every resident
    whose case the suggestion carries gets a subscribe message and an inbox entry; their
    case's timeline shows the answer."""
    await service.reply(session, access, body.reply, utcnow())
    return await _detail(session, access)


@router.post(
    "/suggestions/{suggestion_id}/evaluate",
    response_model=SuggestionDetail,
    responses=_ACTION_ERRORS,
)
async def evaluate_suggestion(
    session: SessionDep, access: AccessDep, body: SuggestionEvaluate
) -> SuggestionDetail:
    """评价 (the author): replied → evaluated, 满意 / 基本满意 / 不满意."""
    await service.evaluate(session, access, body.satisfaction.value, body.comment, utcnow())
    return await _detail(session, access)


@router.post(
    "/suggestions/{suggestion_id}/rehandle",
    response_model=SuggestionDetail,
    responses=_ACTION_ERRORS,
)
async def rehandle_suggestion(
    session: SessionDep, access: AccessDep, body: SuggestionRehandle, settings: SettingsDep
) -> SuggestionDetail:
    """要求重新办理 (the author, once): replied or evaluated → assigned, with a new deadline;
    a second time answers 409 `rehandle_used`."""
    await service.rehandle(session, access, body.reason, settings, utcnow())
    return await _detail(session, access)


@router.post(
    "/suggestions/{suggestion_id}/consultations",
    response_model=SuggestionDetail,
    status_code=201,
    responses=_ACTION_ERRORS,
)
async def record_consultation(
    session: SessionDep, access: AccessDep, body: ConsultationCreate
) -> SuggestionDetail:
    """面商 (a handling unit for itself, or staff naming the unit): a face-to-face
    consultation with the deputy, once the suggestion is assigned."""
    await service.record_consultation(
        session,
        access,
        held_at=body.held_at,
        place=body.place,
        participants=body.participants,
        summary=body.summary,
        unit_id=body.unit_id,
        now=utcnow(),
    )
    return await _detail(session, access)


# --- The units' yearly assessment -------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/stats/units",
    response_model=UnitAssessment,
    tags=["dashboard"],
    responses={
        **problem_responses(401, 403, 404, 422),
        200: {"content": {XLSX: {}}, "description": "JSON, or the XLSX file with format=xlsx"},
    },
)
async def unit_assessment(
    session: SessionDep,
    _staff: StaffPrincipal,
    scope: StaffScope,
    year: Annotated[int | None, Query(ge=2000, le=2199, description="Default: this year")] = None,
    format: Annotated[Literal["json", "xlsx"], Query(description="xlsx to export")] = "json",
) -> Any:
    """承办单位考评: per lead unit, the cases and deputies' suggestions assigned to it in the
    year (Asia/Shanghai) within the caller's region subtree: how many, on time, mean hours
    to the first reply, residents' and deputies' satisfaction, reopened and sent back; a
    score (40 × on-time rate + 30 × residents' + 30 × deputies' satisfaction − up to 10 for
    reopened and sent-back cases) and the ranking. `published` says whether staff have
    published the year (POST /stats/units/{year}/publish)."""
    year = year or local_now().year
    figures = await assessment.assess(session, scope, year)
    published = await assessment.publication(session, year)
    if format == "xlsx":
        content = assessment.to_xlsx(
            year, figures, published.published_at.date() if published else None
        )
        return Response(
            content,
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="unit-assessment-{year}.xlsx"'},
        )
    return UnitAssessment(
        year=year,
        published=published is not None,
        published_at=published.published_at if published else None,
        units=[
            UnitAssessmentRow(
                rank=f.rank,
                unit=Ref(id=f.unit_id, name=f.unit_name),
                score=f.score,
                cases_handled=f.cases_handled,
                cases_on_time=f.cases_on_time,
                case_first_reply_hours=f.case_reply_hours,
                residents_rated=f.residents_rated,
                resident_satisfaction_rate=f.resident_satisfaction,
                reopened=f.reopened,
                sent_back=f.sent_back,
                suggestions_handled=f.suggestions_handled,
                suggestions_on_time=f.suggestions_on_time,
                suggestion_first_reply_hours=f.suggestion_reply_hours,
                deputies_evaluated=f.deputies_evaluated,
                deputy_satisfaction_rate=f.deputy_satisfaction,
                on_time_rate=f.on_time_rate,
            )
            for f in figures
        ],
    )


@router.post(
    "/stats/units/{year}/publish",
    response_model=UnitAssessment,
    tags=["dashboard"],
    responses=problem_responses(401, 403, 409, 422),
)
async def publish_unit_assessment(
    session: SessionDep,
    principal: StaffPrincipal,
    scope: StaffScope,
    year: Annotated[int, Path(ge=2000, le=2199)],
) -> Any:
    """通报 (admins, or staff of a top-level region): marks the year's assessment published.
    Once only: a second time answers 409 `already_published`."""
    if principal.role is not Role.admin:
        parent = (
            await session.execute(select(Region.parent_id).where(Region.id == principal.region_id))
        ).first()
        if parent is None or parent[0] is not None:
            raise Forbidden("仅区级工作人员可以通报考评结果")
    if await assessment.publication(session, year) is not None:
        raise Conflict("该年度考评已通报", code="already_published")
    session.add(
        UnitAssessmentPublication(
            year=year, published_at=utcnow(), published_by_id=principal.user_id
        )
    )
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("该年度考评已通报", code="already_published") from exc
    return await unit_assessment(session, principal, scope, year, "json")
