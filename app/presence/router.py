"""HTTP endpoints of the presence domain: check-ins, duty rosters, receptions, station codes."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse
from sqlmodel import col

from app.core.clock import local_now, utcnow
from app.core.db import Database, SessionDep, get_db
from app.core.deps import CurrentPrincipal, SettingsDep, StaffPrincipal
from app.core.errors import (
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
    problem_responses,
)
from app.core.pagination import Page, PageDep
from app.core.security import Principal
from app.core.times import api_time
from app.core.types import Id
from app.org.models import QrMode, Region, Station
from app.presence import service, station_codes
from app.presence.deps import (
    OwnCheckIn,
    ScanningDeputy,
    ScanSettings,
    StaffStation,
    StationOr404,
    VisibleReception,
)
from app.presence.scene import verify_screen_key
from app.presence.schemas import (
    MAX_DATE,
    MAX_ROSTER_DAYS,
    MIN_DATE,
    CheckInCreate,
    CheckInPublic,
    CheckInResult,
    DutyRoster,
    DutyRosterUpdate,
    QrKind,
    ReceptionCreate,
    ReceptionPublic,
    StationQrCode,
)
from app.wechat.deps import WeChatDep

router = APIRouter(tags=["presence"])

DbDep = Annotated[Database, Depends(get_db)]
PNG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": StationQrCode.model_json_schema()},
        },
        "description": "The PNG (default) or, with `format=json`, the code's parts",
    }
}


class CodeFormat(StrEnum):
    png = "png"
    json = "json"


def _check_dates(*dates: date | None) -> None:
    for day in dates:
        if day is not None and not MIN_DATE <= day <= MAX_DATE:
            raise ValidationFailed(
                f"日期需在{MIN_DATE.year}年至{MAX_DATE.year}年之间",
                errors=[{"field": "query", "message": "date out of range", "type": "value_error"}],
            )


def _json_value(value: Any) -> Any:
    return api_time(value) if isinstance(value, datetime) else value


# Check-ins -----------------------------------------------------------------------------------


@router.post(
    "/checkins",
    response_model=CheckInResult,
    status_code=201,
    summary="Scan a station code: check in (进站签到), or check out on a later scan",
    responses={
        200: {
            "model": CheckInResult,
            "description": "A repeated scan (`action: repeat`, the same check-in) or a "
            "later scan at the same station (`action: checked_out`)",
        },
        **problem_responses(401, 403, 422),
    },
)
async def create_checkin(
    body: CheckInCreate, principal: ScanningDeputy, session: SessionDep, settings: ScanSettings
) -> Response:
    """A bound deputy posts the scanned `scene` and the phone's location.

    - `invalid_qr` (422): the scene is not a genuine code of an active station, was revoked,
      or (rotating codes) has expired.
    - `out_of_range` (422): the phone is farther than the station's radius, allowing for the
      reported accuracy up to a cap; the problem carries `distance_m` and `radius_m`.
    - 201 `checked_in`: a new check-in (closing an open one at another station).
    - 200 `repeat`: a scan within the repeat window answers the same check-in.
    - 200 `checked_out`: a later scan at the same station closes it.
    """
    assert principal.deputy_id is not None
    outcome = await service.scan(
        session,
        settings,
        deputy_id=principal.deputy_id,
        scene_text=body.scene,
        latitude=body.latitude,
        longitude=body.longitude,
        accuracy=body.accuracy,
    )
    # The hot path answers plain JSON from the row (built from the columns the schema
    # declares) instead of validating it through the response model again.
    content = {key: _json_value(value) for key, value in outcome.checkin.items()}
    content["action"] = outcome.action.value
    status = 201 if outcome.action == "checked_in" else 200
    return JSONResponse(content, status_code=status)


@router.post(
    "/checkins/{checkin_id}/checkout",
    response_model=CheckInPublic,
    summary="Check out (签退)",
    responses=problem_responses(401, 403, 404, 409),
)
async def checkout_checkin(checkin: OwnCheckIn, session: SessionDep) -> CheckInPublic:
    """The deputy who checked in closes the check-in. An already closed one is 409
    `already_checked_out`."""
    return CheckInPublic.model_validate(await service.checkout(session, checkin))


@router.get(
    "/checkins",
    response_model=Page[CheckInPublic],
    summary="List check-ins",
    responses=problem_responses(401, 403),
)
async def list_checkins(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    deputy_id: Annotated[Id | None, Query()] = None,
    station_id: Annotated[Id | None, Query()] = None,
    date_from: Annotated[
        date | None, Query(alias="from", description="Local date, inclusive")
    ] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Local date, inclusive")] = None,
) -> Page[CheckInPublic]:
    """Deputies see their own; staff those at stations in their region (admins all).
    Residents and unit handlers are refused. Newest first."""
    _check_dates(date_from, date_to)
    return await service.list_checkins(
        session,
        principal,
        page,
        deputy_id=deputy_id,
        station_id=station_id,
        date_from=date_from,
        date_to=date_to,
    )


# Duty rosters --------------------------------------------------------------------------------


@router.get(
    "/stations/{station_id}/duty-roster",
    response_model=DutyRoster,
    summary="A station's duty roster (排班), public",
    responses=problem_responses(404, 422),
)
async def get_duty_roster(
    station: StationOr404,
    session: SessionDep,
    date_from: Annotated[
        date | None, Query(alias="from", description="Local date; default today")
    ] = None,
    date_to: Annotated[
        date | None, Query(alias="to", description="Local date; default six days after from")
    ] = None,
) -> DutyRoster:
    """Slots by date with their deputies' public fields, in Asia/Shanghai dates and times.
    At most 92 days at once."""
    _check_dates(date_from, date_to)
    start = date_from or local_now().date()
    end = date_to or start + timedelta(days=6)
    if end < start or (end - start).days >= MAX_ROSTER_DAYS:
        raise ValidationFailed(
            f"日期范围需在{MAX_ROSTER_DAYS}天以内",
            errors=[{"field": "query.to", "message": "bad date range", "type": "value_error"}],
        )
    assert station.id is not None
    return await service.get_roster(session, station.id, start, end)


@router.put(
    "/stations/{station_id}/duty-roster",
    response_model=DutyRoster,
    summary="Set a station's duty roster for a date range (staff)",
    responses=problem_responses(401, 403, 404, 422),
)
async def put_duty_roster(
    body: DutyRosterUpdate, station: StaffStation, session: SessionDep
) -> DutyRoster:
    """Replaces every slot of the station dated from `from` to `to` with `slots` (dates
    and times in Asia/Shanghai). A slot given again with the same date and times keeps its
    id and its attendance; its deputies are replaced."""
    assert station.id is not None
    return await service.set_roster(session, station.id, body)


# Receptions ----------------------------------------------------------------------------------


@router.post(
    "/receptions",
    response_model=ReceptionPublic,
    status_code=201,
    summary="Record a resident received (接待登记)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_reception(
    body: ReceptionCreate, principal: CurrentPrincipal, session: SessionDep
) -> ReceptionPublic:
    """A deputy records it while checked in (409 `not_checked_in` otherwise): the station
    and check-in come from the open check-in. Staff give `station_id` (in their region) and
    optionally `deputy_id`. Residents and unit handlers are refused."""
    return await service.create_reception(session, principal, body)


@router.get(
    "/receptions",
    response_model=Page[ReceptionPublic],
    summary="List receptions",
    responses=problem_responses(401, 403),
)
async def list_receptions(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    deputy_id: Annotated[Id | None, Query()] = None,
    station_id: Annotated[Id | None, Query()] = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
) -> Page[ReceptionPublic]:
    """Deputies: their own, and those at their stations with the resident's name and phone
    masked. Staff: their region's, unmasked. Newest first."""
    _check_dates(date_from, date_to)
    return await service.list_receptions(
        session,
        principal,
        page,
        deputy_id=deputy_id,
        station_id=station_id,
        date_from=date_from,
        date_to=date_to,
    )


@router.get(
    "/receptions/{reception_id}",
    response_model=ReceptionPublic,
    summary="One reception",
    responses=problem_responses(401, 403, 404),
)
async def get_reception(
    reception: VisibleReception, principal: CurrentPrincipal, session: SessionDep
) -> ReceptionPublic:
    return await service.get_reception_public(session, principal, reception)


# Station codes -------------------------------------------------------------------------------


async def _staff_station(db: Database, principal: Principal, station_id: int) -> Station:
    # A short read of its own: no transaction stays open while WeChat answers.
    async with db.transaction(write=False) as session:
        station, path = await service.station_with_path(session, station_id)
        scope = await service.staff_region_path(session, principal)
    if not service.in_scope(scope, path):
        raise Forbidden("该站点不在您的管辖范围内")
    return station


def _code_answer(code: StationQrCode, png: bytes | None, *, no_store: bool) -> Response:
    headers = {"Cache-Control": "no-store"} if no_store else {}
    if png is None:
        return JSONResponse(code.model_dump(mode="json"), headers=headers)
    return Response(png, media_type="image/png", headers=headers)


@router.get(
    "/stations/{station_id}/qrcode",
    response_model=None,
    summary="A station's mini-program code (staff)",
    responses={**PNG_RESPONSE, **problem_responses(401, 403, 404, 409, 429, 502, 503)},
)
async def station_qrcode(
    station_id: Annotated[Id, Path()],
    principal: StaffPrincipal,
    db: DbDep,
    settings: SettingsDep,
    wechat: WeChatDep,
    format: Annotated[CodeFormat, Query(description="png (default) or json")] = CodeFormat.png,
    kind: Annotated[
        QrKind | None,
        Query(description="printed or rotating; default what the station accepts (printed first)"),
    ] = None,
) -> Response:
    """The PNG from WeChat's getwxacodeunlimit (page `CHECKIN_PAGE`, `WECHAT_ENV_VERSION`),
    or with `format=json` its `scene`, `page` and `env_version` for other printing tools,
    plus, for stations that accept rotating codes, the `screen_url` a station screen polls.
    409 `qr_mode_mismatch` when the station does not accept the asked kind."""
    station = await _staff_station(db, principal, station_id)
    kind = kind or station_codes.default_kind(station)
    if not station_codes.accepts(station, kind):
        raise InvalidTransition(
            "该站点不接受这种二维码，请先修改站点的二维码模式", code="qr_mode_mismatch"
        )
    code = station_codes.station_code(settings, station, kind, utcnow(), for_staff=True)
    png = None if format is CodeFormat.json else await station_codes.code_png(wechat, code)
    return _code_answer(code, png, no_store=kind is QrKind.rotating)


@router.get(
    "/stations/{station_id}/rotating-qrcode",
    response_model=None,
    summary="A station screen's current rotating code (screen key)",
    responses={**PNG_RESPONSE, **problem_responses(403, 404, 409, 429, 502, 503)},
)
async def station_rotating_qrcode(
    station_id: Annotated[Id, Path()],
    key: Annotated[str, Query(min_length=1, max_length=64, description="The station's screen key")],
    db: DbDep,
    settings: SettingsDep,
    wechat: WeChatDep,
    format: Annotated[CodeFormat, Query()] = CodeFormat.png,
) -> Response:
    """For a screen at the station: no login, but the station's screen key (in the
    `screen_url` staff get from `GET /stations/{id}/qrcode?format=json`; bumping the
    station's `qr_version` revokes it with the printed codes). The answer changes every
    `QR_ROTATION_STEP_SECONDS`; poll it about that often (`expires_at` in the JSON form says
    when this one stops being accepted)."""
    async with db.transaction(write=False) as session:
        station = await session.get(Station, station_id)
    assert station is None or station.id is not None
    if station is None or not station.is_active:
        raise NotFound("站点不存在")
    if not verify_screen_key(settings, station_id, station.qr_version, key):
        raise Forbidden("屏幕密钥无效", code="forbidden")
    if not station_codes.accepts(station, QrKind.rotating):
        raise InvalidTransition("该站点未启用动态二维码", code="qr_mode_mismatch")
    code = station_codes.station_code(settings, station, QrKind.rotating, utcnow(), for_staff=False)
    png = None if format is CodeFormat.json else await station_codes.code_png(wechat, code)
    return _code_answer(code, png, no_store=True)


@router.get(
    "/regions/{region_id}/station-qrcodes.zip",
    response_model=None,
    summary="The printed codes of every station in a region, as a ZIP (staff)",
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": 'One PNG per active station, named "<id>-<name>.png"',
        },
        **problem_responses(401, 403, 404, 429, 502, 503),
    },
)
async def region_station_qrcodes(
    region_id: Annotated[Id, Path()],
    principal: StaffPrincipal,
    db: DbDep,
    settings: SettingsDep,
    wechat: WeChatDep,
) -> Response:
    """Active stations of the region's subtree that accept printed codes."""
    async with db.transaction(write=False) as session:
        region = await session.get(Region, region_id)
        if region is None:
            raise NotFound("区域不存在")
        scope = await service.staff_region_path(session, principal)
        if not service.in_scope(scope, region.path):
            raise Forbidden("该区域不在您的管辖范围内")
        stations = list(
            (
                await session.execute(
                    sa.select(Station)
                    .join(Region, Region.id == Station.region_id)
                    .where(
                        Region.path.startswith(region.path),
                        col(Station.is_active).is_(True),
                        col(Station.qr_mode).in_([QrMode.printed.value, QrMode.both.value]),
                    )
                    .order_by(Station.id)
                )
            )
            .scalars()
            .all()
        )
    archive = await station_codes.region_zip(wechat, settings, stations, utcnow())
    filename = f"station-qrcodes-{region.id}.zip"
    return Response(
        archive,
        media_type="application/zip",
        headers={"Content-Disposition": station_codes.content_disposition(filename)},
    )
