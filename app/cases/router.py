"""HTTP endpoints of the cases domain (意见建议): submission, triage, handling, rating."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import delete, or_, select
from sqlmodel import col

from app.cases import actions as case_actions
from app.cases import idempotency
from app.cases import similar as case_similar
from app.cases.access import (
    CaseAccess,
    in_scope,
    scope_filter,
    staff_path_query,
    staff_region_path,
)
from app.cases.deps import (
    CaseAccessDep,
    IfMatchDep,
    PreconditionFailed,
    SubmissionDep,
    expected_version,
)
from app.cases.deputy_codes import deputy_scene, parse_deputy_scene
from app.cases.flows import STATUS_TEXT
from app.cases.models import OPEN_STATUSES, Case, CaseCategory, CaseStatus, RoutingRule
from app.cases.queries import (
    CaseView,
    case_views,
    load_case_view,
    page_of_views,
    public_event_data,
    timeline_of,
)
from app.cases.schemas import (
    AlreadyReported,
    CaseAssign,
    CaseCategoryPublic,
    CaseCreate,
    CaseDetail,
    CaseMerge,
    CasePublic,
    CaseRate,
    CaseReject,
    CaseReopen,
    CaseReply,
    CaseResolve,
    CaseSendBack,
    CaseSupervise,
    CaseTransfer,
    CaseUnitRef,
    CaseUpdate,
    DeputyCard,
    DeputyCode,
    QrFormat,
    RoutingRuleCreate,
    RoutingRulePublic,
    SimilarCase,
    SimilarQuery,
)
from app.cases.submission import Submitted, submit_case
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.core.deps import CurrentPrincipal, SettingsDep, StaffPrincipal
from app.core.errors import (
    Forbidden,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    VersionConflict,
    problem_responses,
)
from app.core.masking import mask_name, mask_phone, mask_text
from app.core.pagination import CappedPage, PageDep, capped_count
from app.core.security import Principal, Role
from app.core.sorting import name_order
from app.core.types import Id
from app.hotspots import service as hotspot_service
from app.identity.models import Deputy
from app.org.models import Region, Station, Unit
from app.wechat.deps import WeChatDep
from app.wechat.types import WeChatError

router = APIRouter(tags=["cases"])

_ACTION_ERRORS = problem_responses(401, 403, 404, 409, 412, 422)


def render(view: CaseView) -> CasePublic:
    case = view.case
    assert case.id is not None and case.number is not None
    ref = lambda pair: CaseUnitRef(id=pair[0], name=pair[1]) if pair else None  # noqa: E731
    return CasePublic(
        id=case.id,
        number=case.number,
        title=case.title,
        content=case.content,
        status=CaseStatus(case.status),
        status_text=STATUS_TEXT[CaseStatus(case.status)],
        category_id=case.category_id,
        category_name=view.category_name,
        region_id=case.region_id,
        station_id=case.station_id,
        latitude=case.latitude,
        longitude=case.longitude,
        address=case.address,
        attachment_ids=list(case.attachment_ids or []),
        channel=case.channel,
        deputy_id=case.deputy_id,
        activity_id=case.activity_id,
        contact_name=case.contact_name if view.sees_phone else mask_name(case.contact_name),
        contact_phone=case.contact_phone if view.sees_phone else mask_phone(case.contact_phone),
        is_owner=view.is_owner,
        lead_unit=ref(view.lead_unit),
        co_units=[CaseUnitRef(id=u, name=n) for u, n in view.co_units],
        suggested_unit=ref(view.suggested_unit),
        deadline=case.deadline_at,
        calendar_fallback=case.calendar_fallback,
        overdue=case.overdue,
        supervised_count=case.supervised_count,
        reopen_count=case.reopen_count,
        merged_into_id=case.merged_into_id,
        reject_reason_code=case.reject_reason_code,
        reject_note=case.reject_note,
        public_answer=case.public_answer,
        satisfaction=case.satisfaction,  # type: ignore[arg-type]
        rating_comment=case.rating_comment,
        resolution=case.resolution,
        resolved_at=case.resolved_at,
        content_flag=case.content_flag if view.sees_internal else None,
        following=view.following,
        version=case.version,
        created_at=case.created_at,
        updated_at=case.updated_at,
    )


async def _one(
    session: SessionDep, principal: Principal, case: Case, staff_path: str | None
) -> CasePublic:
    (view,) = await case_views(session, principal, [case], staff_path=staff_path)
    return render(view)


async def _detail(
    session: SessionDep, principal: Principal, case: Case, staff_path: str | None
) -> CaseDetail:
    public = await _one(session, principal, case, staff_path)
    internal = principal.is_staff or principal.role is Role.unit
    assert case.id is not None
    timeline = await timeline_of(session, case.id, internal=internal)
    return CaseDetail(**public.model_dump(), timeline=timeline)  # type: ignore[arg-type]


def _etag(response: Response, case: Case) -> None:
    response.headers["ETag"] = f'"{case.version}"'


# ---------------------------------------------------------------------------------------
# Categories


@router.get("/case-categories", response_model=list[CaseCategoryPublic])
async def list_case_categories(session: SessionDep) -> list[CaseCategory]:
    """Case categories (问题类别) with the default working days a unit gets, in the order
    staff set (`sort_order`), then in pinyin order of their names. Public. Not paginated: a
    bare JSON array."""
    rows = await session.execute(
        select(CaseCategory)
        .where(CaseCategory.is_active.is_(True))  # type: ignore[attr-defined]
        .order_by(CaseCategory.sort_order, *name_order(CaseCategory))  # type: ignore[arg-type]
    )
    return list(rows.scalars())


# ---------------------------------------------------------------------------------------
# Submission


@router.post(
    "/cases",
    status_code=201,
    response_model=CaseDetail,
    responses=problem_responses(401, 403, 409, 422, 429),
)
async def create_case(
    submission: SubmissionDep,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Any:
    """Submit a suggestion or problem report (反映问题/提意见建议) → `registered`.

    Residents write for themselves (optionally to a deputy: `deputy_id` or the scanned
    `deputy_scene`); deputies submit their own suggestion or one from a reception
    (`reception_id`); staff register a call or counter visit (`channel`, `contact_name`,
    `contact_phone`). The text passes WeChat's content check first: `risky` answers 422
    `content_rejected`; `review` or WeChat unavailable registers the case flagged for staff.

    Send `Idempotency-Key` (one per draft): a retry answers the first result (same status
    and body) and never makes a second case; the same key with another body answers 422
    `idempotency_key_reused`. Too many submissions answer 429 `rate_limited` with
    `Retry-After`.
    """
    key_row: int | None = None
    if submission.idempotency_key is not None:
        key_row, answer = await idempotency.claim_key(
            session, principal.user_id, submission.idempotency_key, submission.request_hash
        )
        if answer is not None:
            return JSONResponse(
                answer.body, status_code=answer.status_code, headers={"Idempotent-Replayed": "true"}
            )
    submitted = await submit_case(session, principal, submission.body, submission.verdict, settings)
    case = submitted.case
    if principal.is_staff:
        staff_path = await staff_region_path(session, principal)
        detail = await _detail(session, principal, case, staff_path)
    else:
        detail = _fresh_detail(submitted)
    if key_row is not None:
        assert case.id is not None
        await idempotency.store_answer(session, key_row, case.id, 201, jsonable_encoder(detail))
    return detail


def _fresh_detail(submitted: Submitted) -> CaseDetail:
    """The submitter's view of the case just made, without reading back what we wrote."""
    case, event = submitted.case, submitted.event
    view = CaseView(
        case=case,
        category_name=submitted.category_name,
        lead_unit=None,
        co_units=[],
        suggested_unit=None,
        sees_phone=True,
        sees_internal=False,
        is_owner=case.owner_id is not None,
        following=False,
    )
    entry = {
        "id": event.id,
        "action": event.action,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "actor_role": event.actor_role,
        "actor_name": None,
        "round": event.round,
        "public_note": event.public_note,
        "internal_note": None,
        "data": public_event_data(event.data),
        "created_at": event.created_at,
    }
    return CaseDetail(**render(view).model_dump(), timeline=[entry])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Reading


@router.get("/cases", response_model=CappedPage[CasePublic], responses=problem_responses(401, 422))
async def list_cases(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    status: Annotated[CaseStatus | None, Query(description="e.g. registered: the queue")] = None,
    category: Annotated[Id | None, Query(description="category id")] = None,
    region_id: Annotated[Id | None, Query(description="the region and below")] = None,
    station_id: Annotated[Id | None, Query()] = None,
    unit_id: Annotated[Id | None, Query(description="lead unit")] = None,
    overdue: bool | None = None,
    q: Annotated[str | None, Query(max_length=50, description="number, title or content")] = None,
) -> CappedPage[CasePublic]:
    """Cases the caller may see: residents their own (and those their duplicate was merged
    into); deputies their own, written to them, and followed; units those they lead or
    co-handle; staff their region subtree. Staff triage with `status=registered`.

    Newest first. `total` counts at most 1,000 cases past the page asked for; beyond that
    it is that bound and `total_capped` is true (show "1,020+"): a count over a whole
    district's history would cost more than the page itself."""
    # Staff see their region subtree: the path is looked up inside the list's own queries.
    staff_path = staff_path_query(principal) if principal.role is Role.staff else None
    conditions = [scope_filter(principal, staff_path)]
    if status is not None:
        conditions.append(Case.status == status)
    if category is not None:
        conditions.append(Case.category_id == category)
    if region_id is not None:
        path = (
            await session.execute(select(Region.path).where(Region.id == region_id))
        ).scalar_one_or_none()
        if path is None:
            return CappedPage(items=[], total=0)
        conditions.append(
            Case.region_id.in_(select(Region.id).where(Region.path.startswith(path)))  # type: ignore[union-attr, attr-defined]
        )
    if station_id is not None:
        conditions.append(Case.station_id == station_id)
    if unit_id is not None:
        conditions.append(Case.lead_unit_id == unit_id)
    if overdue is not None:
        conditions.append(Case.overdue.is_(overdue))  # type: ignore[attr-defined]
    if q:
        pattern = f"%{q.replace('%', '').replace('_', '')}%"
        conditions.append(
            or_(
                Case.number.like(pattern),  # type: ignore[union-attr]
                Case.title.like(pattern),  # type: ignore[attr-defined]
                Case.content.like(pattern),  # type: ignore[attr-defined]
            )
        )
    total, capped = await capped_count(session, select(Case.id).where(*conditions), page)
    # Every case listed to staff is in their scope (the filter above says so).
    in_scope_path = "/" if principal.is_staff else None
    views = await page_of_views(session, principal, conditions, page, staff_path=in_scope_path)
    return CappedPage(items=[render(v) for v in views], total=total, total_capped=capped)


@router.get("/cases/{case_id}", response_model=CaseDetail, responses=problem_responses(401, 404))
async def get_case(
    case_id: Annotated[Id, Path()],
    session: SessionDep,
    principal: CurrentPrincipal,
    response: Response,
) -> CaseDetail:
    """One case with its timeline (internal notes only for staff and units). The `ETag`
    header carries the version for `If-Match`."""
    access, view = await load_case_view(session, principal, case_id)
    _etag(response, access.case)
    internal = principal.is_staff or principal.role is Role.unit
    timeline = await timeline_of(session, case_id, internal=internal)
    return CaseDetail(**render(view).model_dump(), timeline=timeline)  # type: ignore[arg-type]


@router.post(
    "/cases/similar",
    response_model=list[AlreadyReported],
    responses=problem_responses(401, 403, 422),
)
async def already_reported(
    body: SimilarQuery,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> list[AlreadyReported]:
    """ "Someone already reported this" (有人已反映): while a resident or deputy writes a report,
    up to 5 open cases that read like it (the same problem worded differently, nearby or in
    the same region), titles masked. Nothing is stored."""
    if principal.role not in (Role.resident, Role.deputy, Role.staff, Role.admin):
        raise Forbidden()
    region_id = body.region_id
    if region_id is None:
        region_id = (
            await session.execute(
                select(Station.region_id).where(
                    Station.id == body.station_id, col(Station.is_active).is_(True)
                )
            )
        ).scalar_one_or_none()
        if region_id is None:
            raise ValidationFailed(
                "联络站不存在",
                errors=[{"field": "body.station_id", "message": "unknown", "type": "value_error"}],
            )
    matches = await hotspot_service.text_matches(
        session,
        title=body.title,
        content=body.content,
        category_id=body.category_id,
        region_id=region_id,
        latitude=body.latitude,
        longitude=body.longitude,
        at=utcnow(),
        settings=settings,
    )
    if not matches:
        return []
    scores = {m.case_id: m.score for m in matches}
    rows = await session.execute(
        select(Case).where(
            col(Case.id).in_(list(scores)),
            col(Case.status).in_([s.value for s in OPEN_STATUSES]),
        )
    )
    found = sorted(rows.scalars(), key=lambda c: (-scores[c.id or 0], -(c.id or 0)))[:5]
    return [
        AlreadyReported(
            number=c.number or "",
            title=mask_text(c.title) or "",
            status=CaseStatus(c.status),
            status_text=STATUS_TEXT[CaseStatus(c.status)],
            similarity=scores[c.id or 0],
            created_at=c.created_at,
        )
        for c in found
    ]


@router.get(
    "/cases/{case_id}/similar",
    response_model=list[SimilarCase],
    responses=problem_responses(401, 403, 404),
)
async def similar_cases(
    access: CaseAccessDep, session: SessionDep, settings: SettingsDep
) -> list[SimilarCase]:
    """Staff: open cases that may be the same problem — worded alike (`similarity`, the
    hotspot grouping's score), nearby within `case_similar_radius_m`, or of the same
    category in the same region — the best text matches first, then the nearest. At most
    20, not paginated: a bare JSON array."""
    if not access.principal.is_staff:
        raise Forbidden()
    found = await case_similar.similar_cases(session, access, settings)
    return [
        SimilarCase(
            id=s.case.id,  # type: ignore[arg-type]
            number=s.case.number or "",
            title=s.case.title,
            status=CaseStatus(s.case.status),
            category_id=s.case.category_id,
            region_id=s.case.region_id,
            distance_m=round(s.distance_m, 1) if s.distance_m is not None else None,
            similarity=s.similarity,
            created_at=s.case.created_at,
        )
        for s in found
    ]


# ---------------------------------------------------------------------------------------
# Moves


async def _answer(access: CaseAccessDep, session: SessionDep, response: Response) -> CasePublic:
    _etag(response, access.case)
    return await _one(session, access.principal, access.case, access.staff_path)


def _answer_as_loaded(access: CaseAccess, response: Response) -> CasePublic:
    """The answer to a step that changes no unit, category or follow: the view read with
    the case, showing the case as the step left it (the step updates `access.case`)."""
    assert access.view is not None and access.view.case is access.case
    _etag(response, access.case)
    return render(access.view)


@router.patch("/cases/{case_id}", response_model=CasePublic, responses=_ACTION_ERRORS)
async def update_case(
    body: CaseUpdate,
    access: CaseAccessDep,
    session: SessionDep,
    settings: SettingsDep,
    if_match: IfMatchDep,
    response: Response,
) -> CasePublic:
    """Staff corrections (title, category, region, deadline) while registered or handling.
    Carry `version` (or `If-Match`); a stale one answers 409 `version_conflict`."""
    version = _version(body.version, if_match, access)
    await case_actions.edit_case(
        session,
        access,
        settings,
        changes=body.model_dump(exclude={"version", "note"}, exclude_unset=True),
        note=body.note,
        version=version,
    )
    return await _answer(access, session, response)


def _version(body_version: int | None, if_match: int | None, access: Any) -> int | None:
    version = expected_version(body_version, if_match)
    # If-Match alone is a precondition: a stale one is 412, as HTTP says.
    if body_version is None and if_match is not None and if_match != access.case.version:
        raise PreconditionFailed(current_version=access.case.version)
    return version


@router.post("/cases/{case_id}/assign", response_model=CasePublic, responses=_ACTION_ERRORS)
async def assign_case(
    body: CaseAssign,
    access: CaseAccessDep,
    session: SessionDep,
    settings: SettingsDep,
    if_match: IfMatchDep,
    response: Response,
) -> CasePublic:
    """交办 (staff): `registered` → `handling` with a lead unit, optional co-handling units
    and a deadline (default: the category's working days in China's official calendar,
    Asia/Shanghai; `calendar_fallback` says when a year's calendar was not known and
    weekends were used)."""
    await case_actions.assign_case(
        session,
        access,
        settings,
        unit_id=body.unit_id,
        deadline=body.deadline,
        co_unit_ids=body.co_unit_ids,
        note=body.note,
        internal_note=body.internal_note,
        version=_version(body.version, if_match, access),
    )
    return await _answer(access, session, response)


@router.post("/cases/{case_id}/transfer", response_model=CasePublic, responses=_ACTION_ERRORS)
async def transfer_case(
    body: CaseTransfer,
    access: CaseAccessDep,
    session: SessionDep,
    settings: SettingsDep,
    if_match: IfMatchDep,
    response: Response,
) -> CasePublic:
    """转办 (staff): a handling case goes to another lead unit."""
    await case_actions.transfer_case(
        session,
        access,
        settings,
        unit_id=body.unit_id,
        deadline=body.deadline,
        co_unit_ids=body.co_unit_ids,
        note=body.note,
        internal_note=body.internal_note,
        version=_version(body.version, if_match, access),
    )
    return await _answer(access, session, response)


@router.post("/cases/{case_id}/reject", response_model=CasePublic, responses=_ACTION_ERRORS)
async def reject_case(
    body: CaseReject,
    access: CaseAccessDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> CasePublic:
    """不予受理 (staff) with `reason_code` (not_in_remit, duplicate,
    insufficient_information, other) and a `note` the resident reads."""
    await case_actions.reject_case(
        session,
        access,
        reason_code=body.reason_code.value,
        note=body.note,
        internal_note=body.internal_note,
        version=_version(body.version, if_match, access),
    )
    return _answer_as_loaded(access, response)


@router.post("/cases/{case_id}/merge", response_model=CasePublic, responses=_ACTION_ERRORS)
async def merge_case(
    body: CaseMerge,
    access: CaseAccessDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> CasePublic:
    """合并 (staff): a duplicate → `merged` into an open case; its resident then reads the
    target and hears its news."""
    await case_actions.merge_case(
        session,
        access,
        into_case_id=body.into_case_id,
        note=body.note,
        version=_version(body.version, if_match, access),
    )
    return await _answer(access, session, response)


@router.post("/cases/{case_id}/supervise", response_model=CasePublic, responses=_ACTION_ERRORS)
async def supervise_case(
    body: CaseSupervise,
    access: CaseAccessDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> CasePublic:
    """督办 (staff): recorded on the timeline, counted, and the lead unit is told."""
    await case_actions.supervise_case(
        session, access, note=body.note, version=_version(body.version, if_match, access)
    )
    return _answer_as_loaded(access, response)


@router.post("/cases/{case_id}/send-back", response_model=CasePublic, responses=_ACTION_ERRORS)
async def send_back_case(
    body: CaseSendBack,
    access: CaseAccessDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> CasePublic:
    """退回 (lead unit): "not ours" with a reason → back to staff (`registered`)."""
    await case_actions.send_back_case(
        session, access, reason=body.reason, version=_version(body.version, if_match, access)
    )
    return await _answer(access, session, response)


@router.post("/cases/{case_id}/reply", response_model=CasePublic, responses=_ACTION_ERRORS)
async def reply_case(
    body: CaseReply,
    access: CaseAccessDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> CasePublic:
    """答复 (lead unit): the public answer reaches the resident → `fed_back`; the internal
    note is for staff and units."""
    await case_actions.reply_case(
        session,
        access,
        public_answer=body.public_answer,
        internal_note=body.internal_note,
        version=_version(body.version, if_match, access),
    )
    return _answer_as_loaded(access, response)


@router.post("/cases/{case_id}/rate", response_model=CasePublic, responses=_ACTION_ERRORS)
async def rate_case(
    body: CaseRate, access: CaseAccessDep, session: SessionDep, response: Response
) -> CasePublic:
    """评价 (owner; staff for a phone resident without an account): satisfied or basically
    satisfied resolves the case; dissatisfied lets the owner or staff reopen it."""
    await case_actions.rate_case(
        session, access, satisfaction=body.satisfaction, comment=body.comment
    )
    return _answer_as_loaded(access, response)


@router.post("/cases/{case_id}/reopen", response_model=CasePublic, responses=_ACTION_ERRORS)
async def reopen_case(
    body: CaseReopen,
    access: CaseAccessDep,
    session: SessionDep,
    settings: SettingsDep,
    if_match: IfMatchDep,
    response: Response,
) -> CasePublic:
    """重新办理 (owner from `fed_back`; staff from `fed_back` or `resolved`) → `handling`
    with the same lead unit, a new deadline, `reopen_count` + 1."""
    await case_actions.reopen_case(
        session,
        access,
        settings,
        reason=body.reason,
        deadline=body.deadline,
        version=_version(body.version, if_match, access),
    )
    return _answer_as_loaded(access, response)


@router.post("/cases/{case_id}/resolve", response_model=CasePublic, responses=_ACTION_ERRORS)
async def resolve_case(
    body: CaseResolve,
    access: CaseAccessDep,
    session: SessionDep,
    if_match: IfMatchDep,
    response: Response,
) -> CasePublic:
    """办结 (staff): `fed_back` → `resolved`."""
    await case_actions.resolve_case(
        session, access, note=body.note, version=_version(body.version, if_match, access)
    )
    return _answer_as_loaded(access, response)


@router.post(
    "/cases/{case_id}/follow", response_model=CasePublic, responses=problem_responses(401, 403, 404)
)
async def follow_case(access: CaseAccessDep, session: SessionDep, response: Response) -> CasePublic:
    """A deputy follows a case they can see (their own, written to them); it enters their
    duty archive (履职档案). Following again changes nothing."""
    await case_actions.follow_case(session, access)
    return await _answer(access, session, response)


# ---------------------------------------------------------------------------------------
# Routing rules


@router.get(
    "/routing-rules", response_model=list[RoutingRulePublic], responses=problem_responses(401, 403)
)
async def list_routing_rules(
    session: SessionDep,
    principal: StaffPrincipal,
    category_id: Annotated[Id | None, Query()] = None,
) -> list[RoutingRule]:
    """Staff: routing rules (category × region → unit) of regions in their subtree and the
    regions above it (those apply to their cases too). Not paginated: a bare JSON array."""
    path = await staff_region_path(session, principal) or "/-"
    chain = [int(p) for p in path.strip("/").split("/") if p.isdigit()]
    stmt = (
        select(RoutingRule)
        .join(Region, Region.id == RoutingRule.region_id)  # type: ignore[arg-type]
        .where(or_(Region.path.startswith(path), RoutingRule.region_id.in_(chain)))  # type: ignore[attr-defined]
        .order_by(RoutingRule.id)  # type: ignore[arg-type]
    )
    if category_id is not None:
        stmt = stmt.where(RoutingRule.category_id == category_id)
    return list((await session.execute(stmt)).scalars())


@router.post(
    "/routing-rules",
    status_code=201,
    response_model=RoutingRulePublic,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_routing_rule(
    body: RoutingRuleCreate, session: SessionDep, principal: StaffPrincipal
) -> RoutingRule:
    """Staff: cases of this category in this region (and below) suggest this unit. One
    rule per category and region; posting again replaces the unit."""
    path = await staff_region_path(session, principal)
    region_path = (
        await session.execute(select(Region.path).where(Region.id == body.region_id))
    ).scalar_one_or_none()
    if region_path is None:
        raise ValidationFailed("区域不存在", code="unknown_region")
    if not in_scope(path, region_path):
        raise Forbidden("该区域不在您的管辖范围")
    if await session.get(CaseCategory, body.category_id) is None:
        raise ValidationFailed("问题类别不存在", code="unknown_category")
    unit = await session.get(Unit, body.unit_id)
    if unit is None or not unit.is_active:
        raise ValidationFailed("承办单位不存在", code="unknown_unit")
    existing = (
        await session.execute(
            select(RoutingRule).where(
                RoutingRule.category_id == body.category_id,
                RoutingRule.region_id == body.region_id,
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        existing.unit_id = body.unit_id
        existing.created_by_id = principal.user_id
        await session.flush()
        return existing
    rule = RoutingRule(**body.model_dump(), created_by_id=principal.user_id)
    session.add(rule)
    await session.flush()
    return rule


@router.delete(
    "/routing-rules/{rule_id}", status_code=204, responses=problem_responses(401, 403, 404)
)
async def delete_routing_rule(
    rule_id: Annotated[Id, Path()], session: SessionDep, principal: StaffPrincipal
) -> None:
    """Staff: remove a rule of a region in their subtree."""
    row = (
        await session.execute(
            select(RoutingRule.id, Region.path)
            .join(Region, Region.id == RoutingRule.region_id)  # type: ignore[arg-type]
            .where(RoutingRule.id == rule_id)
        )
    ).first()
    path = await staff_region_path(session, principal)
    if row is None or not in_scope(path, row.path):
        raise NotFound()
    await session.execute(delete(RoutingRule).where(RoutingRule.id == rule_id))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# A deputy's own code (代表码)


@router.get(
    "/deputies/{deputy_id}/qrcode",
    response_model=DeputyCode,
    responses={
        200: {"content": {"image/png": {}}, "description": "PNG, or JSON with format=json"},
        **problem_responses(401, 403, 404, 503),
    },
)
async def deputy_qrcode(
    deputy_id: Annotated[Id, Path()],
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    wechat: WeChatDep,
    format: QrFormat = "png",
) -> Any:
    """The deputy's own mini-program code: residents scan it to write a case to this
    deputy. Staff, or the deputy themself. `format=json` answers the scene and page (for
    other printing tools); the scene is signed, so it cannot be made up from an id."""
    if not (principal.is_staff or principal.deputy_id == deputy_id):
        raise Forbidden()
    deputy = await session.get(Deputy, deputy_id)
    if deputy is None:
        raise NotFound()
    scene = deputy_scene(settings, deputy_id)
    if format == "json":
        return DeputyCode(deputy_id=deputy_id, scene=scene, page=settings.case_deputy_qr_page)
    try:
        png = await wechat.get_unlimited_qrcode(
            scene=scene,
            page=settings.case_deputy_qr_page,
            env_version=settings.wechat_env_version,
        )
    except WeChatError as exc:
        raise ServiceUnavailable(
            "暂时无法生成小程序码，请稍后再试", code="wechat_unavailable"
        ) from exc
    return Response(
        png,
        media_type="image/png",
        headers={"Content-Disposition": f'inline; filename="deputy-{deputy_id}.png"'},
    )


@router.get("/deputy-codes/{scene}", response_model=DeputyCard, responses=problem_responses(404))
async def resolve_deputy_code(scene: str, session: SessionDep, settings: SettingsDep) -> DeputyCard:
    """Public: which deputy a scanned code names (the scene arrives in the page's
    `onLoad(query)`), to show "写给 王建国 代表" on the form."""
    deputy_id = parse_deputy_scene(settings, scene)
    deputy = await session.get(Deputy, deputy_id) if deputy_id else None
    if deputy is None or not deputy.is_active:
        raise NotFound("二维码无效", code="invalid_qr")
    return DeputyCard(deputy_id=deputy.id, name=deputy.name, level=deputy.level)  # type: ignore[arg-type]


__all__ = ["router", "CaseCreate", "VersionConflict"]
