"""HTTP endpoints of the deputy roster (代表名册): public profiles, staff management."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, File, Path, Query, Response, UploadFile

from app.core.db import SessionDep
from app.core.deps import SettingsDep, StaffPrincipal
from app.core.errors import NotFound, problem_responses
from app.core.pagination import Page, PageDep
from app.core.types import Id
from app.identity import deputy_service, roster_import
from app.identity.deputy_schemas import (
    BindingCodeIssued,
    DeputyCreate,
    DeputyDetail,
    DeputyPublic,
    DeputyRosterEntry,
    DeputyUpdate,
    ImportReport,
)
from app.identity.models import Deputy, DeputyLevel
from app.org import service as org_service
from app.org.deps import IfMatch, etag, expected_version
from app.presence import service as presence_service

router = APIRouter(tags=["organisation"])


async def deputy_or_404(session: SessionDep, deputy_id: Annotated[Id, Path()]) -> Deputy:
    deputy = await session.get(Deputy, deputy_id)
    if deputy is None:
        raise NotFound("代表不存在")
    return deputy


async def public_deputy(deputy: Annotated[Deputy, Depends(deputy_or_404)]) -> Deputy:
    """A deputy on the public roster: one taken off it (inactive) is not found."""
    if not deputy.is_active:
        raise NotFound("代表不存在")
    return deputy


async def deputy_in_scope(
    session: SessionDep,
    principal: StaffPrincipal,
    deputy: Annotated[Deputy, Depends(deputy_or_404)],
) -> Deputy:
    """A deputy the calling staff member manages (403 `forbidden` outside their subtree)."""
    if not await org_service.staff_can_see_region(session, principal, deputy.region_id):
        raise org_service.out_of_scope()
    return deputy


PublicDeputy = Annotated[Deputy, Depends(public_deputy)]
DeputyInScope = Annotated[Deputy, Depends(deputy_in_scope)]


def _filters(
    level: DeputyLevel | None = None,
    station_id: Annotated[Id | None, Query()] = None,
    region_id: Annotated[Id | None, Query(description="Region and its subtree")] = None,
    q: Annotated[str | None, Query(max_length=50, description="In name or title")] = None,
) -> deputy_service.DeputyFilters:
    return deputy_service.DeputyFilters(
        level=level, station_id=station_id, region_id=region_id, q=q.strip() if q else None
    )


Filters = Annotated[deputy_service.DeputyFilters, Depends(_filters)]


@router.get(
    "/deputies",
    response_model=Page[DeputyPublic],
    summary="Public deputy profiles (亮身份)",
    responses=problem_responses(422),
)
async def list_deputies(session: SessionDep, page: PageDep, filters: Filters) -> Page[DeputyPublic]:
    """Public: name, level, title, term, stations, photo. Never a phone number. In pinyin
    order of the names (拼音排序)."""
    deputies, total = await deputy_service.list_deputies(
        session, filters, limit=page.limit, offset=page.offset
    )
    items = await deputy_service.public_profiles(session, deputies)
    return Page[DeputyPublic](items=items, total=total)


@router.get(
    "/deputies/roster",
    response_model=Page[DeputyRosterEntry],
    summary="The roster as staff manage it",
    responses=problem_responses(401, 403, 422),
)
async def roster(
    session: SessionDep,
    principal: StaffPrincipal,
    page: PageDep,
    filters: Filters,
    include_inactive: bool = True,
) -> Page[DeputyRosterEntry]:
    """Staff: the deputies of their subtree with phone, version and whether a WeChat account
    is bound, in pinyin order of the names."""
    filters.include_inactive = include_inactive
    deputies, total = await deputy_service.list_deputies(
        session, filters, limit=page.limit, offset=page.offset, scope=principal
    )
    items = await deputy_service.roster_entries(session, deputies)
    return Page[DeputyRosterEntry](items=items, total=total)


@router.get(
    "/deputies/{deputy_id}",
    response_model=DeputyDetail,
    summary="A deputy's public profile",
    responses=problem_responses(404),
)
async def get_deputy(session: SessionDep, deputy: PublicDeputy) -> DeputyDetail:
    """Public: the profile, the stations the deputy is attached to and their coming duty."""
    profile = (await deputy_service.public_profiles(session, [deputy]))[0]
    coming = await presence_service.upcoming_slots_for_deputy(session, deputy.id)  # type: ignore[arg-type]
    return DeputyDetail(**profile.model_dump(), coming_duty=coming)


@router.get(
    "/deputies/{deputy_id}/roster-entry",
    response_model=DeputyRosterEntry,
    summary="One roster entry, as staff see it",
    responses=problem_responses(401, 403, 404),
)
async def get_roster_entry(
    session: SessionDep, deputy: DeputyInScope, response: Response
) -> DeputyRosterEntry:
    """Staff of the deputy's subtree: with phone and version (also in `ETag`)."""
    response.headers["ETag"] = etag(deputy.version)
    return (await deputy_service.roster_entries(session, [deputy]))[0]


@router.post(
    "/deputies",
    response_model=DeputyRosterEntry,
    status_code=201,
    summary="Add a deputy to the roster",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_deputy(
    session: SessionDep, principal: StaffPrincipal, body: DeputyCreate, response: Response
) -> DeputyRosterEntry:
    """Staff, in their subtree (their own region when `region_id` is omitted). The phone must
    be a mainland mobile number, unique on the roster (409 `deputy_phone_taken`)."""
    deputy = await deputy_service.create_deputy(session, principal, body)
    response.headers["ETag"] = etag(deputy.version)
    return (await deputy_service.roster_entries(session, [deputy]))[0]


@router.patch(
    "/deputies/{deputy_id}",
    response_model=DeputyRosterEntry,
    summary="Edit a roster entry",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_deputy(
    session: SessionDep,
    principal: StaffPrincipal,
    deputy: DeputyInScope,
    body: DeputyUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> DeputyRosterEntry:
    """Staff of the deputy's subtree. Must carry `version` (or `If-Match`): 422 without
    either; a stale one answers 409 `version_conflict`. `station_ids` replaces the
    attachments; `is_active: false` takes the deputy off the public roster."""
    version = expected_version(body.version, if_match)
    deputy = await deputy_service.update_deputy(session, principal, deputy, body, version)
    response.headers["ETag"] = etag(deputy.version)
    return (await deputy_service.roster_entries(session, [deputy]))[0]


@router.post(
    "/deputies/import",
    response_model=ImportReport,
    summary="Import a roster file (CSV or XLSX)",
    responses=problem_responses(401, 403, 409, 413, 415, 422),
)
async def import_deputies(
    session: SessionDep,
    principal: StaffPrincipal,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV (UTF-8 or GBK) or XLSX roster")],
    strict: Annotated[bool, Query(description="Apply nothing if any row is rejected")] = False,
    dry_run: Annotated[bool, Query(description="Check only; apply nothing")] = False,
) -> ImportReport:
    """Staff. Columns (Chinese or English headers): 姓名/name and 层级/level required;
    职务/title, 手机/phone, 联络站/station, 届次/term, 区域/region optional. A row whose phone
    is on the roster updates that deputy, any other creates one. Answers each row's outcome
    (`created`, `updated`, `rejected` with reasons). By default the valid rows are applied;
    with `strict=true` nothing is applied when any row is rejected. A file that is not CSV or
    XLSX (415), too large (413 `payload_too_large`), an XLSX that unpacks beyond
    `DEPUTY_IMPORT_MAX_INFLATED_BYTES` or is a ZIP bomb (413 `import_content_too_large`), more
    than `DEPUTY_IMPORT_MAX_ROWS` rows (422 `import_too_many_rows`) or lacks a required column
    (422 `invalid_import_file`) changes nothing."""
    limit = settings.deputy_import_max_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise roster_import.ImportFileTooLarge(
            f"名册文件不能超过 {limit // 1024} KB", max_bytes=limit
        )
    return await roster_import.import_roster(
        session,
        principal,
        filename=file.filename,
        data=data,
        max_rows=settings.deputy_import_max_rows,
        max_inflated_bytes=settings.deputy_import_max_inflated_bytes,
        strict=strict,
        dry_run=dry_run,
    )


@router.post(
    "/deputies/{deputy_id}/binding-code",
    response_model=BindingCodeIssued,
    status_code=201,
    summary="Issue a one-time binding code",
    responses=problem_responses(401, 403, 404),
)
async def issue_binding_code(
    session: SessionDep, principal: StaffPrincipal, settings: SettingsDep, deputy: DeputyInScope
) -> BindingCodeIssued:
    """Staff of the deputy's subtree. The code is answered once (only its hash is kept) and
    expires after `DEPUTY_BINDING_CODE_TTL_HOURS` (72 h by default); issuing a new one voids
    the deputy's earlier unused codes. The deputy enters it in the mini-program
    (`POST /me/deputy-binding`)."""
    code, expires_at = await deputy_service.issue_binding_code(
        session,
        principal,
        deputy,
        timedelta(hours=settings.deputy_binding_code_ttl_hours),
    )
    return BindingCodeIssued(deputy_id=deputy.id, code=code, expires_at=expires_at)  # type: ignore[arg-type]
