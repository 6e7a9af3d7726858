"""HTTP endpoints of the dashboard domain: statistics, the duty archive, exports."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse

from app.cases.models import CaseStatus
from app.core.clock import local_now
from app.core.db import Database, SessionDep, get_db
from app.core.deps import SettingsDep, StaffPrincipal
from app.core.errors import problem_responses
from app.core.pagination import Page, PageDep
from app.core.types import Id
from app.dashboard import acts, deputies, stats
from app.dashboard.archive import ARCHIVE_HEADERS, archive_rows, build_archive
from app.dashboard.case_export import (
    CASE_HEADERS,
    CaseFilters,
    case_export_query,
    case_row_mapper,
)
from app.dashboard.deps import (
    ArchiveEditable,
    ArchiveReadable,
    DateRangeDep,
    OptionalDateRange,
    StaffScope,
)
from app.dashboard.exports import (
    EXPORT_RESPONSES,
    ExportFormat,
    export_response,
    from_rows,
    stream_query,
)
from app.dashboard.schemas import (
    RATE_DOCS,
    Archive,
    CaseStats,
    DeputyStats,
    ManualActCreate,
    ManualActPublic,
    ManualActUpdate,
    OverviewStats,
)

router = APIRouter(tags=["dashboard"])

YearQuery = Annotated[int | None, Query(ge=2000, le=2100, description="Calendar year")]


RATES_MD = "\n".join(f"- **{name}**: {text}" for name, text in RATE_DOCS.items())


# --- Statistics ------------------------------------------------------------------------------


@router.get(
    "/stats/overview",
    response_model=OverviewStats,
    summary="Overview of a region: cases, wishes, presence and the three rates (三率)",
    description=(
        "Staff see their region subtree (or a region inside it with `region_id`; outside it "
        "answers 403); admins see everything. Days are Asia/Shanghai calendar days, `from` and "
        "`to` both included.\n\nThe three rates, each a fraction in [0, 1], null when its "
        "denominator is zero:\n\n" + RATES_MD
    ),
    responses=problem_responses(401, 403, 404, 422),
)
async def get_overview(
    session: SessionDep, _staff: StaffPrincipal, scope: StaffScope, period: DateRangeDep
) -> OverviewStats:
    return await stats.overview(session, scope, period)


@router.get(
    "/stats/cases",
    response_model=CaseStats,
    summary="Cases grouped by category, unit, region, station, day, week or month",
    description=(
        "Cases registered in the range, per group: counts, resolution and satisfaction rates, "
        "mean and 90th-percentile (continuous, as PostgreSQL's percentile_cont) hours to the "
        "unit's reply and to resolution. `region` groups by the regions one level below the "
        "scope's region (cases registered at the scope's region itself form their own group). "
        "`week` starts on Monday; days are Asia/Shanghai days. Units are also ranked by overdue "
        "cases and by satisfaction rate."
    ),
    responses=problem_responses(401, 403, 404, 422),
)
async def get_case_stats(
    session: SessionDep,
    _staff: StaffPrincipal,
    scope: StaffScope,
    period: DateRangeDep,
    group_by: Annotated[
        Literal["category", "unit", "region", "station", "day", "week", "month"],
        Query(description="How to group"),
    ] = "category",
) -> CaseStats:
    return await stats.case_stats(session, scope, period, group_by)


@router.get(
    "/stats/deputies",
    response_model=DeputyStats,
    summary="Per-deputy activity, and the deputies inactive for months (约谈 candidates)",
    description=(
        "Deputies on the active roster in scope (by their region or a station they serve), "
        "ordered by name, with their check-ins, duty attendance against the roster, duty hours, "
        "receptions, cases submitted and followed, wishes claimed and fulfilled, activities "
        "attended and missed without leave (代表活动), and manual acts in the range. A deputy with no recorded act for `inactive_deputy_months` months "
        "(a setting) is `inactive`; `inactive_only=true` lists just those. "
        "`reported_this_term` says whether the deputy has published a report to the voters "
        "(述职报告) in their current term; `not_reported=true` lists those who have not."
    ),
    responses=problem_responses(401, 403, 404, 422),
)
async def get_deputy_stats(
    session: SessionDep,
    _staff: StaffPrincipal,
    settings: SettingsDep,
    scope: StaffScope,
    period: DateRangeDep,
    page: PageDep,
    inactive_only: Annotated[
        bool, Query(description="Only deputies with no act for the set number of months")
    ] = False,
    not_reported: Annotated[
        bool, Query(description="Only deputies who have not reported to the voters this term")
    ] = False,
) -> DeputyStats:
    return await deputies.deputy_stats(
        session,
        scope,
        period,
        page,
        inactive_months=settings.inactive_deputy_months,
        inactive_only=inactive_only,
        not_reported=not_reported,
    )


# --- Manual acts of the duty archive ---------------------------------------------------------


@router.post(
    "/deputies/{deputy_id}/acts",
    status_code=201,
    response_model=ManualActPublic,
    summary="Add an act done outside the system to a deputy's archive",
    responses=problem_responses(401, 403, 404, 422),
)
async def create_manual_act(
    session: SessionDep,
    principal: StaffPrincipal,
    deputy: ArchiveEditable,
    body: ManualActCreate,
) -> ManualActPublic:
    """Staff of the deputy's region record an inspection (视察), training (培训), meeting
    (会议) or research visit (调研). It appears in the deputy's archive and counts towards
    the yearly score."""
    assert deputy.id is not None
    act = await acts.add_act(session, principal, deputy.id, body)
    return ManualActPublic.model_validate(act)


@router.get(
    "/deputies/{deputy_id}/acts",
    response_model=Page[ManualActPublic],
    summary="List the manual acts of a deputy's archive",
    responses=problem_responses(401, 403, 404),
)
async def list_manual_acts(
    session: SessionDep, deputy: ArchiveReadable, page: PageDep, year: YearQuery = None
) -> Page[ManualActPublic]:
    """Staff of the deputy's region, or the deputy themself; newest first."""
    assert deputy.id is not None
    items, total = await acts.list_acts(session, deputy.id, year, page)
    return Page(items=[ManualActPublic.model_validate(a) for a in items], total=total)


@router.patch(
    "/deputies/{deputy_id}/acts/{act_id}",
    response_model=ManualActPublic,
    summary="Correct a manual act",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_manual_act(
    session: SessionDep,
    deputy: ArchiveEditable,
    body: ManualActUpdate,
    act_id: Annotated[Id, Path()],
) -> ManualActPublic:
    """Staff of the deputy's region. Send the `version` read to guard against a concurrent
    edit (409 `version_conflict`)."""
    assert deputy.id is not None
    act = await acts.act_of_deputy(session, deputy.id, act_id)
    act = await acts.update_act(session, act, body)
    return ManualActPublic.model_validate(act)


@router.delete(
    "/deputies/{deputy_id}/acts/{act_id}",
    status_code=204,
    summary="Remove a manual act",
    responses=problem_responses(401, 403, 404),
)
async def delete_manual_act(
    session: SessionDep, deputy: ArchiveEditable, act_id: Annotated[Id, Path()]
) -> Response:
    """Staff of the deputy's region."""
    assert deputy.id is not None
    act = await acts.act_of_deputy(session, deputy.id, act_id)
    await acts.delete_act(session, act)
    return Response(status_code=204)


# --- Duty archive ----------------------------------------------------------------------------


def _year(year: int | None) -> int:
    return year if year is not None else local_now().year


@router.get(
    "/deputies/{deputy_id}/archive",
    response_model=Archive,
    summary="A deputy's duty archive (履职档案) for a year, with totals and the yearly score",
    description=(
        "Every act recorded in the year (Asia/Shanghai calendar): check-ins and duty slots, "
        "receptions, cases submitted and followed with their outcomes, wishes claimed and "
        "fulfilled, activities attended, excused or missed without leave (recorded at the "
        "activity; an absence counts against the score), deputies' suggestions led or "
        "co-signed, and the manual acts staff added for what happened elsewhere. The score is "
        "Σ count × weight over the "
        "kinds in `score.breakdown`; weights come from the `DASHBOARD_SCORE_WEIGHTS` setting. "
        "Staff whose region holds the deputy, admins, or the deputy themself."
    ),
    responses=problem_responses(401, 403, 404, 422),
)
async def get_archive(
    session: SessionDep, settings: SettingsDep, deputy: ArchiveReadable, year: YearQuery = None
) -> Archive:
    return await build_archive(session, deputy, _year(year), settings)


@router.get(
    "/deputies/{deputy_id}/archive/export",
    response_class=StreamingResponse,
    summary="The duty archive as CSV or XLSX",
    description="One row per act (Chinese headers), then the score lines. Same access as the "
    "archive.",
    responses={**EXPORT_RESPONSES, **problem_responses(401, 403, 404, 422)},
)
async def export_archive(
    session: SessionDep,
    settings: SettingsDep,
    deputy: ArchiveReadable,
    year: YearQuery = None,
    format: Annotated[ExportFormat, Query(description="csv or xlsx")] = ExportFormat.csv,
) -> StreamingResponse:
    archive = await build_archive(session, deputy, _year(year), settings)
    return export_response(
        format,
        f"履职档案-{deputy.name}-{archive.year}",
        ARCHIVE_HEADERS,
        from_rows(archive_rows(archive)),
        sheet_title=f"履职档案{archive.year}",
    )


# --- Exports ---------------------------------------------------------------------------------


@router.get(
    "/exports/cases",
    response_class=StreamingResponse,
    summary="Export the case list (CSV or XLSX), streamed",
    description=(
        "The case list's filters (`status`, `category`, `region_id`, `station_id`, `unit_id`, "
        "`overdue`, `q`, and the registration dates `from`/`to`), within the caller's region "
        "subtree (a `region_id` outside it answers 403). Chinese column headers; CSV is UTF-8 "
        "with a byte order mark so Excel reads it. Contact names and phones are shown in full "
        "to staff of the case's region (and admins), as in the case detail; `mask_phones=true` "
        "masks them for a copy that leaves the office. Rows are streamed, newest first, at "
        "most `EXPORT_MAX_ROWS`."
    ),
    responses={**EXPORT_RESPONSES, **problem_responses(401, 403, 404, 422)},
)
async def export_cases(
    db: Annotated[Database, Depends(get_db)],
    settings: SettingsDep,
    _staff: StaffPrincipal,
    scope: StaffScope,
    period: OptionalDateRange,
    format: Annotated[ExportFormat, Query(description="csv or xlsx")] = ExportFormat.csv,
    status: CaseStatus | None = None,
    category: Annotated[Id | None, Query(description="category id")] = None,
    station_id: Annotated[Id | None, Query()] = None,
    unit_id: Annotated[Id | None, Query(description="lead unit")] = None,
    overdue: bool | None = None,
    q: Annotated[
        str | None,
        Query(max_length=50, description="number, title or content"),
    ] = None,
    mask_phones: Annotated[
        bool, Query(description="Mask contact names and phones even where visible")
    ] = False,
) -> StreamingResponse:
    filters = CaseFilters(
        status=status.value if status else None,
        category=category,
        station_id=station_id,
        unit_id=unit_id,
        overdue=overdue,
        q=q,
        period=period,
    )
    # Every exported case lies in the caller's region subtree: staff of its region, or an
    # admin, who see phones in the case detail too.
    batches = stream_query(
        db,
        case_export_query(scope, filters),
        case_row_mapper(sees_phone=not mask_phones),
        limit=settings.export_max_rows,
    )
    stamp = local_now().strftime("%Y%m%d-%H%M")
    return export_response(
        format, f"意见建议-{stamp}", CASE_HEADERS, batches, sheet_title="意见建议"
    )
