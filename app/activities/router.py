"""HTTP endpoints of activities (代表活动)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse

from app.activities import codes, service
from app.activities.schemas import (
    KIND_PATTERN,
    ActivityCheckInBody,
    ActivityCreate,
    ActivityDetail,
    ActivityPublic,
    ActivityUpdate,
    AttendanceCorrect,
    AttendanceSheet,
    CheckInResult,
    MinutesBody,
    RsvpBody,
    RsvpPublic,
    SignupPublic,
)
from app.activities.service import ActivityAccess, ActivityFilter
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.core.deps import (
    CurrentPrincipal,
    DeputyPrincipal,
    OptionalPrincipal,
    ResidentPrincipal,
    SettingsDep,
)
from app.core.errors import Forbidden, ValidationFailed, problem_responses
from app.core.pagination import Page, PageDep
from app.core.types import MAX_ID
from app.dashboard.exports import EXPORT_RESPONSES, ExportFormat, export_response, from_rows
from app.presence import station_codes
from app.wechat.deps import WeChatDep

router = APIRouter(tags=["activities"])

ActivityId = Annotated[int, Path(ge=1, le=MAX_ID, description="The activity's id")]


async def _visible(
    session: SessionDep, principal: OptionalPrincipal, activity_id: ActivityId
) -> ActivityAccess:
    return await service.load_access(session, activity_id, principal)


async def _managed(
    session: SessionDep, principal: CurrentPrincipal, activity_id: ActivityId
) -> ActivityAccess:
    access = await service.load_access(session, activity_id, principal)
    if not access.can_manage:
        raise Forbidden("只有工作人员或组织活动的代表小组组长可以管理该活动")
    return access


async def _staff_managed(
    session: SessionDep, principal: CurrentPrincipal, activity_id: ActivityId
) -> ActivityAccess:
    if not principal.is_staff:
        raise Forbidden()
    return await _managed(session, principal, activity_id)


VisibleActivity = Annotated[ActivityAccess, Depends(_visible)]
ManagedActivity = Annotated[ActivityAccess, Depends(_managed)]
StaffActivity = Annotated[ActivityAccess, Depends(_staff_managed)]


class ListFormat(StrEnum):
    json = "json"
    xlsx = "xlsx"


@router.get(
    "/activities",
    response_model=Page[ActivityPublic],
    summary="List activities; the year plan as XLSX (staff)",
    responses={**EXPORT_RESPONSES, **problem_responses(401, 403, 422)},
)
async def list_activities(
    session: SessionDep,
    principal: OptionalPrincipal,
    settings: SettingsDep,
    page: PageDep,
    year: Annotated[
        int | None, Query(ge=2000, le=2199, description="Starting in this year (Asia/Shanghai)")
    ] = None,
    kind: Annotated[str | None, Query(pattern=KIND_PATTERN)] = None,
    group_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    station_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    upcoming: Annotated[bool, Query(description="Only planned ones not yet over")] = False,
    mine: Annotated[
        bool, Query(description="Deputies: invited or led; residents: signed up")
    ] = False,
    latitude: Annotated[float | None, Query(ge=-90, le=90, description="Near this point")] = None,
    longitude: Annotated[float | None, Query(ge=-180, le=180)] = None,
    format: Annotated[
        ListFormat, Query(description="json, or xlsx for the year plan (staff)")
    ] = ListFormat.json,
) -> Any:
    """Public activities for everyone (no login needed); deputies also see those they are
    invited to or whose group they lead; staff every activity of their region subtree.
    With `latitude` and `longitude`, only activities within `ACTIVITY_NEARBY_KM`, each with
    its `distance_m`. `format=xlsx` (staff, usually with `year`) downloads the year's plan
    (年度活动计划) with invitation and attendance counts."""
    if (latitude is None) != (longitude is None):
        raise ValidationFailed("latitude 与 longitude 需同时提供", code="validation_error")
    f = ActivityFilter(
        year=year,
        kind=kind,
        group_id=group_id,
        station_id=station_id,
        upcoming=upcoming,
        mine=mine,
        latitude=latitude,
        longitude=longitude,
    )
    if format is ListFormat.xlsx:
        if principal is None or not principal.is_staff:
            raise Forbidden("仅工作人员可以导出年度活动计划")
        rows = await service.year_plan_rows(session, principal, f, settings)
        name = f"{year}年度活动计划" if year else "活动计划"
        return export_response(
            ExportFormat.xlsx, name, service.YEAR_PLAN_HEADERS, from_rows(rows), sheet_title=name
        )
    return await service.list_activities(session, principal, f, page, settings)


@router.post(
    "/activities",
    response_model=ActivityDetail,
    status_code=201,
    summary="Plan an activity (staff, group leader)",
    responses=problem_responses(401, 403, 422),
)
async def create_activity(
    session: SessionDep, principal: CurrentPrincipal, body: ActivityCreate
) -> ActivityDetail:
    """Staff plan activities in their region subtree; a group's leader plans activities of
    their own group (`group_id`) and invites only its members. Invited deputies get an
    `activity.invited` message and an inbox entry."""
    activity = await service.create_activity(session, principal, body)
    access = await service.load_access(session, activity.id, principal)  # type: ignore[arg-type]
    return await service.detail(session, access)


@router.get(
    "/activities/{activity_id}",
    response_model=ActivityDetail,
    summary="One activity",
    responses=problem_responses(404, 422),
)
async def get_activity(session: SessionDep, access: VisibleActivity) -> ActivityDetail:
    """Public ones for everyone; others for staff in scope, the organising group's leader,
    invited deputies. Says the caller's invitation (`my_invitation`), sign-up
    (`signed_up_by_me`) and whether they may manage it (`can_manage`)."""
    return await service.detail(session, access)


@router.patch(
    "/activities/{activity_id}",
    response_model=ActivityDetail,
    summary="Change, invite more, cancel (staff, group leader)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_activity(
    session: SessionDep, principal: CurrentPrincipal, access: ManagedActivity, body: ActivityUpdate
) -> ActivityDetail:
    """Only the fields sent change. A new time tells the invitees and signed-up residents
    (`activity.changed`); `status: cancelled` tells them it is off (`activity.cancelled`);
    `capacity` below the sign-ups already taken is 409 `capacity_below_signups`;
    `renew_code: true` revokes every printed copy of the activity's code."""
    await service.update_activity(session, principal, access, body)
    return await service.detail(session, access)


@router.post(
    "/activities/{activity_id}/rsvp",
    response_model=RsvpPublic,
    summary="Answer an invitation or ask for leave (invited deputy)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def rsvp(
    session: SessionDep, _deputy: DeputyPrincipal, access: VisibleActivity, body: RsvpBody
) -> RsvpPublic:
    """`yes`, `no`, or `leave` with a `reason` (请假), which the organiser's staff decide
    (the organiser gets `activity.leave_requested`). A deputy not invited gets 403
    `not_invited`; after the activity 409 `activity_ended`."""
    return await service.rsvp(session, access, body)


@router.post(
    "/activities/{activity_id}/checkins",
    response_model=CheckInResult,
    summary="Check in at an activity by its code (deputy)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def check_in(
    session: SessionDep,
    settings: SettingsDep,
    principal: DeputyPrincipal,
    access: VisibleActivity,
    body: ActivityCheckInBody,
) -> CheckInResult:
    """After scanning the activity's code (`a.…` or `b.…` scene) on the spot. Accepted from
    `ACTIVITY_CHECKIN_EARLY_MINUTES` before the start until `ACTIVITY_CHECKIN_LATE_MINUTES`
    after the end (422 `activity_not_open`), within the place's radius plus the reported
    accuracy (422 `out_of_range`), for invited deputies (403 `not_invited`). Scanning again
    answers the same attendance (`repeat: true`)."""
    assert principal.deputy_id is not None
    return await service.check_in(
        session,
        settings,
        access,
        deputy_id=principal.deputy_id,
        scene_text=body.scene,
        latitude=body.latitude,
        longitude=body.longitude,
        accuracy=body.accuracy,
    )


@router.get(
    "/activities/{activity_id}/attendance",
    response_model=AttendanceSheet,
    summary="Who was invited, answered, attended (staff)",
    responses=problem_responses(401, 403, 404),
)
async def attendance(session: SessionDep, access: StaffActivity) -> AttendanceSheet:
    """Every invitee and every deputy recorded, with the answer, the leave request and the
    attendance (`present`, `excused`, `absent`; after the end an invitee with nothing
    recorded and no approved leave is `absent`), and every staff correction with its reason."""
    return await service.attendance_sheet(session, access.activity)


@router.post(
    "/activities/{activity_id}/attendance",
    response_model=AttendanceSheet,
    summary="Record or correct a deputy's attendance, decide leave (staff)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def correct_attendance(
    session: SessionDep, principal: CurrentPrincipal, access: StaffActivity, body: AttendanceCorrect
) -> AttendanceSheet:
    """Sets one deputy's attendance with a reason; the correction stays in the history. On
    a pending leave request `excused` approves it and anything else rejects it (the deputy
    gets `activity.leave_decided`)."""
    await service.correct_attendance(session, principal, access.activity, body)
    return await service.attendance_sheet(session, access.activity)


@router.post(
    "/activities/{activity_id}/signups",
    response_model=SignupPublic,
    status_code=201,
    summary="Sign up for a public activity (resident)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def sign_up(
    session: SessionDep, principal: ResidentPrincipal, access: VisibleActivity
) -> SignupPublic:
    """409 `activity_full` when every place is taken (exactly `capacity` sign-ups succeed,
    however many arrive at once), 409 `already_signed_up`, 422 `signup_closed` after the
    deadline or for an activity without sign-ups. Call wx.requestSubscribeMessage first:
    the reminder the day before (`activity.reminder`) uses that subscription."""
    return await service.sign_up(session, access.activity, principal.user_id)


@router.delete(
    "/activities/{activity_id}/signups/me",
    status_code=204,
    summary="Cancel one's sign-up (resident)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def cancel_signup(
    session: SessionDep, principal: ResidentPrincipal, access: VisibleActivity
) -> Response:
    """Before the sign-up deadline (422 `signup_closed` after it); 404 `not_signed_up`."""
    await service.cancel_signup(session, access.activity, principal.user_id)
    return Response(status_code=204)


class CodeFormat(StrEnum):
    png = "png"
    json = "json"


@router.get(
    "/activities/{activity_id}/qrcode",
    response_model=None,
    summary="The activity's check-in code (staff, group leader)",
    responses={
        200: {
            "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": codes.ActivityCode.model_json_schema()},
            },
            "description": "The PNG (default) or, with `format=json`, the code's parts",
        },
        **problem_responses(401, 403, 404, 409, 429, 502, 503),
    },
)
async def qrcode(
    session: SessionDep,
    settings: SettingsDep,
    wechat: WeChatDep,
    access: ManagedActivity,
    format: Annotated[CodeFormat, Query(description="png (default) or json")] = CodeFormat.png,
) -> Response:
    """The PNG from WeChat's getwxacodeunlimit (page `CHECKIN_PAGE`), or with `format=json`
    its `scene`. A printed code stays valid until `renew_code`; a rotating one changes every
    `QR_ROTATION_STEP_SECONDS` (`expires_at`): show it on a screen that polls this."""
    code = codes.activity_code(settings, access.activity, utcnow())
    headers = {"Cache-Control": "no-store"}
    if format is CodeFormat.json:
        return JSONResponse(code.model_dump(mode="json"), headers=headers)
    # No transaction is held while WeChat answers: this request only reads.
    await session.close()
    png = await station_codes.code_png(wechat, code)  # type: ignore[arg-type]
    return Response(png, media_type="image/png", headers=headers)


@router.put(
    "/activities/{activity_id}/minutes",
    response_model=ActivityDetail,
    summary="Write the minutes with photos (staff, group leader)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def minutes(
    session: SessionDep, principal: CurrentPrincipal, access: ManagedActivity, body: MinutesBody
) -> ActivityDetail:
    """活动纪要, once the activity has started (409 `activity_not_held` before). Photos are
    uploaded first (`POST /attachments`) and named by id; sending the list again replaces it."""
    await service.set_minutes(session, principal, access.activity, body)
    return await service.detail(session, access)
