"""An activity's code (活动签到码): its scene, signed like a station's (app.presence.scene).

- printed  `a.<activity id>.<qr_version, base 36>.<signature>`: valid until staff bump the
  activity's `qr_version`;
- rotating `b.<activity id>.<time step, base 36>.<signature>`: changes every
  `QR_ROTATION_STEP_SECONDS`, accepted for `QR_ROTATION_VALID_STEPS` steps.

The first letter tells the mini-program's check-in page which endpoint to call: `p`/`r`
a station (`POST /checkins`), `a`/`b` an activity (`POST /activities/{id}/checkins`). The
HMAC key is derived apart from the station codes' key, so neither signature serves the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.activities.models import Activity, ActivityQrMode
from app.core.config import Settings
from app.core.security import secrets_match
from app.core.times import Timestamp
from app.core.types import MAX_ID
from app.presence.scene import (
    MAX_SCENE_LENGTH,
    SIGNATURE_LENGTH,
    step_expires_at,
    time_step,
    to_base36,
)

_SCENE = re.compile(
    r"^(?P<kind>[ab])\.(?P<activity>[1-9][0-9]{0,9})\.(?P<counter>[0-9a-z]{1,7})\.(?P<sig>[A-Za-z0-9_-]{12})$"
)


@dataclass(frozen=True, slots=True)
class ActivityScene:
    rotating: bool
    activity_id: int
    counter: int
    signature: str


class ActivityCode(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "activity_id": 7,
                    "title": "江城街道代表小组集中视察",
                    "kind": "printed",
                    "scene": "a.7.1.Zp0c3Qe8kLmN",
                    "page": "pages/checkin/index",
                    "env_version": "release",
                    "expires_at": None,
                }
            ]
        }
    )

    activity_id: int
    title: str
    kind: ActivityQrMode
    scene: str
    page: str
    env_version: str
    expires_at: Timestamp | None = Field(default=None, description="Rotating codes only")


def _sign(settings: Settings, message: str) -> str:
    secret = settings.station_qr_secret or settings.jwt_secret
    key = hmac.new(secret.encode(), b"activity-qr-scene", hashlib.sha256).digest()
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:SIGNATURE_LENGTH]


def activity_code(settings: Settings, activity: Activity, now: datetime) -> ActivityCode:
    assert activity.id is not None
    if activity.qr_mode == ActivityQrMode.rotating:
        step = time_step(settings, now)
        sig = _sign(settings, f"b:{activity.id}:{activity.qr_version}:{step}")
        scene, expires_at = (
            f"b.{activity.id}.{to_base36(step)}.{sig}",
            step_expires_at(settings, now),
        )
    else:
        sig = _sign(settings, f"a:{activity.id}:{activity.qr_version}")
        scene, expires_at = f"a.{activity.id}.{to_base36(activity.qr_version)}.{sig}", None
    assert len(scene) <= MAX_SCENE_LENGTH
    return ActivityCode(
        activity_id=activity.id,
        title=activity.title,
        kind=ActivityQrMode(activity.qr_mode),
        scene=scene,
        page=settings.checkin_page,
        env_version=settings.wechat_env_version,
        expires_at=expires_at,
    )


def parse_scene(raw: str) -> ActivityScene | None:
    match = _SCENE.match(raw)
    if match is None:
        return None
    activity_id, counter = int(match["activity"]), int(match["counter"], 36)
    if activity_id > MAX_ID or counter > MAX_ID:
        return None
    return ActivityScene(match["kind"] == "b", activity_id, counter, match["sig"])


def verify_scene(
    settings: Settings, scene: ActivityScene, activity: Activity, now: datetime
) -> bool:
    """True when `scene` is genuine for `activity` as it is now configured."""
    if scene.activity_id != activity.id:
        return False
    if scene.rotating:
        if activity.qr_mode != ActivityQrMode.rotating:
            return False
        current = time_step(settings, now)
        if not current - settings.qr_rotation_valid_steps < scene.counter <= current:
            return False
        expected = _sign(settings, f"b:{activity.id}:{activity.qr_version}:{scene.counter}")
    else:
        if activity.qr_mode != ActivityQrMode.printed or scene.counter != activity.qr_version:
            return False
        expected = _sign(settings, f"a:{activity.id}:{activity.qr_version}")
    return secrets_match(expected, scene.signature)
