"""Shared setup of the presence tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from app.core.clock import utcnow
from app.core.config import Settings
from app.org.models import Station
from app.presence.scene import printed_scene, rotating_scene

# 31.2304, 121.4737 is the factory's default station position.
STATION_LAT, STATION_LNG = 31.2304, 121.4737
# One degree of latitude is about 111.2 km.
METRES_PER_DEGREE_LAT = 111_195.0


def north_of_station(metres: float) -> tuple[float, float]:
    return STATION_LAT + metres / METRES_PER_DEGREE_LAT, STATION_LNG


def printed(settings: Settings, station: Station) -> str:
    assert station.id is not None
    return printed_scene(settings, station.id, station.qr_version)


def rotating(settings: Settings, station: Station, at: datetime | None = None) -> str:
    assert station.id is not None
    return rotating_scene(settings, station.id, station.qr_version, at or utcnow())


async def scan(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    scene: str,
    *,
    metres_away: float = 10.0,
    accuracy: float | None = 15.0,
) -> httpx.Response:
    lat, lng = north_of_station(metres_away)
    body: dict[str, Any] = {"scene": scene, "latitude": lat, "longitude": lng}
    if accuracy is not None:
        body["accuracy"] = accuracy
    return await client.post("/checkins", json=body, headers=headers)
