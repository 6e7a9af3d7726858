"""The `scene` of a station's mini-program code: which station, and proof that we made it.

WeChat's getwxacodeunlimit carries at most 32 characters from
`0-9 A-Z a-z ! # $ & ' ( ) * + , / : ; = ? @ - . _ ~`. Two forms, both signed with an HMAC
the server alone can compute, so knowing a station's id is not enough to forge its code:

- printed  `p.<station id>.<qr_version, base 36>.<signature>`: valid until staff bump the
  station's `qr_version` (revoking every printed copy at once);
- rotating `r.<station id>.<time step, base 36>.<signature>`: shown on a station's screen,
  changes every `qr_rotation_step_seconds` and is accepted for `qr_rotation_valid_steps`
  steps, so a photo of it shared in a chat group is soon useless. Its signature also covers
  `qr_version`.

The signature is the first 12 base64url characters (72 bits) of HMAC-SHA256.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from app.core.config import Settings
from app.core.security import secrets_match
from app.core.types import MAX_ID

MAX_SCENE_LENGTH = 32
SIGNATURE_LENGTH = 12
# The whole charset WeChat allows in a scene.
SCENE_CHARSET = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$")
_SCENE = re.compile(
    r"^(?P<kind>[pr])\.(?P<station>[1-9][0-9]{0,9})\.(?P<counter>[0-9a-z]{1,7})\.(?P<sig>[A-Za-z0-9_-]{12})$"
)


class SceneKind(StrEnum):
    printed = "p"
    rotating = "r"


@dataclass(frozen=True, slots=True)
class Scene:
    kind: SceneKind
    station_id: int
    # qr_version for a printed scene, the time step for a rotating one.
    counter: int
    signature: str


def _key(settings: Settings) -> bytes:
    secret = settings.station_qr_secret or settings.jwt_secret
    # A key of its own, so a station code signature can never double as anything else.
    return hmac.new(secret.encode(), b"station-qr-scene", hashlib.sha256).digest()


def _sign(settings: Settings, message: str) -> str:
    digest = hmac.new(_key(settings), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:SIGNATURE_LENGTH]


def to_base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if value == 0:
            return out


def time_step(settings: Settings, at: datetime) -> int:
    return int(at.timestamp()) // settings.qr_rotation_step_seconds


def step_expires_at(settings: Settings, at: datetime) -> datetime:
    """When a rotating scene made at `at` stops being accepted."""
    step = time_step(settings, at)
    last_valid = (step + settings.qr_rotation_valid_steps) * settings.qr_rotation_step_seconds
    return datetime.fromtimestamp(last_valid, UTC)


def printed_scene(settings: Settings, station_id: int, qr_version: int) -> str:
    message = f"p:{station_id}:{qr_version}"
    scene = f"p.{station_id}.{to_base36(qr_version)}.{_sign(settings, message)}"
    assert len(scene) <= MAX_SCENE_LENGTH
    return scene


def rotating_scene(settings: Settings, station_id: int, qr_version: int, at: datetime) -> str:
    step = time_step(settings, at)
    message = f"r:{station_id}:{qr_version}:{step}"
    scene = f"r.{station_id}.{to_base36(step)}.{_sign(settings, message)}"
    assert len(scene) <= MAX_SCENE_LENGTH
    return scene


def parse_scene(raw: str) -> Scene | None:
    """The scene's parts, or None when it is not one of ours. Checks no signature."""
    match = _SCENE.match(raw)
    if match is None:
        return None
    kind = SceneKind(match["kind"])
    station_id, counter = int(match["station"]), int(match["counter"], 36)
    if station_id > MAX_ID or counter > MAX_ID:
        return None
    return Scene(kind, station_id, counter, match["sig"])


def verify_scene(
    settings: Settings, scene: Scene, *, qr_version: int, qr_mode: str, now: datetime
) -> bool:
    """True when `scene` is genuine for a station with this `qr_version` and `qr_mode`,
    and (for a rotating scene) still inside its window."""
    if scene.kind is SceneKind.printed:
        if qr_mode not in ("printed", "both") or scene.counter != qr_version:
            return False
        expected = _sign(settings, f"p:{scene.station_id}:{qr_version}")
    else:
        if qr_mode not in ("rotating", "both"):
            return False
        current = time_step(settings, now)
        if not current - settings.qr_rotation_valid_steps < scene.counter <= current:
            return False
        expected = _sign(settings, f"r:{scene.station_id}:{qr_version}:{scene.counter}")
    return secrets_match(expected, scene.signature)


def screen_key(settings: Settings, station_id: int, qr_version: int) -> str:
    """The key a station's screen uses to fetch its rotating code (revoked with qr_version)."""
    return _sign(settings, f"screen:{station_id}:{qr_version}") + _sign(
        settings, f"screen2:{station_id}:{qr_version}"
    )


def verify_screen_key(settings: Settings, station_id: int, qr_version: int, key: str) -> bool:
    return secrets_match(screen_key(settings, station_id, qr_version), key)
