"""Station mini-program codes (站点小程序码): their scenes, PNGs and the regional ZIP.

The PNG comes from WeChat's getwxacodeunlimit through the gateway, outside any database
transaction: the callers load what they need first and hold no session while WeChat answers.
"""

from __future__ import annotations

import asyncio
import io
import re
import zipfile
from datetime import datetime
from urllib.parse import quote

from app.core.config import Settings
from app.core.errors import RateLimited, ServiceUnavailable
from app.org.models import QrMode, Station
from app.presence.errors import WeChatFailed
from app.presence.scene import printed_scene, rotating_scene, screen_key, step_expires_at
from app.presence.schemas import QrKind, StationQrCode
from app.wechat.gateway import WeChatGateway
from app.wechat.types import WeChatAPIError, WeChatRateLimited, WeChatUnavailable

# Concurrent getwxacodeunlimit calls while building a region's ZIP.
ZIP_CONCURRENCY = 4
_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def default_kind(station: Station) -> QrKind:
    return QrKind.rotating if station.qr_mode == QrMode.rotating else QrKind.printed


def accepts(station: Station, kind: QrKind) -> bool:
    return str(station.qr_mode) in (QrMode.both.value, kind.value)


def screen_path(settings: Settings, station: Station) -> str:
    """Relative URL (under /api/v1) a station screen polls for its current rotating code."""
    assert station.id is not None
    key = screen_key(settings, station.id, station.qr_version)
    return f"/stations/{station.id}/rotating-qrcode?key={key}"


def station_code(
    settings: Settings, station: Station, kind: QrKind, now: datetime, *, for_staff: bool
) -> StationQrCode:
    assert station.id is not None
    if kind is QrKind.printed:
        scene, expires_at = printed_scene(settings, station.id, station.qr_version), None
    else:
        scene = rotating_scene(settings, station.id, station.qr_version, now)
        expires_at = step_expires_at(settings, now)
    return StationQrCode(
        station_id=station.id,
        station_name=station.name,
        kind=kind,
        scene=scene,
        page=settings.checkin_page,
        env_version=settings.wechat_env_version,
        expires_at=expires_at,
        screen_url=(
            screen_path(settings, station)
            if for_staff and accepts(station, QrKind.rotating)
            else None
        ),
    )


async def code_png(gateway: WeChatGateway, code: StationQrCode) -> bytes:
    try:
        return await gateway.get_unlimited_qrcode(
            scene=code.scene, page=code.page, env_version=code.env_version, check_path=False
        )
    except WeChatRateLimited as exc:
        raise RateLimited("微信接口调用过于频繁，请稍后再试") from exc
    except WeChatUnavailable as exc:
        raise ServiceUnavailable("微信服务暂不可用，请稍后再试", code="wechat_unavailable") from exc
    except WeChatAPIError as exc:
        raise WeChatFailed(errcode=exc.errcode) from exc


def png_filename(station: Station) -> str:
    name = _UNSAFE_NAME.sub("_", station.name).strip(" .") or "station"
    return f"{station.id}-{name}.png"


def content_disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def region_zip(
    gateway: WeChatGateway, settings: Settings, stations: list[Station], now: datetime
) -> bytes:
    """A ZIP of the printed codes of `stations`, one PNG each named "<id>-<name>.png"."""
    semaphore = asyncio.Semaphore(ZIP_CONCURRENCY)

    async def one(station: Station) -> tuple[str, bytes]:
        async with semaphore:
            code = station_code(settings, station, QrKind.printed, now, for_staff=False)
            return png_filename(station), await code_png(gateway, code)

    files = await asyncio.gather(*(one(s) for s in stations))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, png in files:
            archive.writestr(name, png)
    return buffer.getvalue()
