"""A deputy's own code (代表码): residents scan it to write to that deputy.

The scene is `d.<deputy id>.<signature>` (at most 32 characters of WeChat's scene charset);
the signature is the first 12 base64url characters of an HMAC-SHA256 under a key of its
own, so knowing a deputy's id is not enough to make up their code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from app.core.config import Settings
from app.core.security import secrets_match

SIGNATURE_LENGTH = 12
_SCENE = re.compile(r"^d\.(?P<deputy>[1-9][0-9]{0,9})\.(?P<sig>[A-Za-z0-9_-]{12})$")


def _key(settings: Settings) -> bytes:
    secret = settings.case_deputy_qr_secret or settings.jwt_secret
    return hmac.new(secret.encode(), b"deputy-case-scene", hashlib.sha256).digest()


def _sign(settings: Settings, deputy_id: int) -> str:
    digest = hmac.new(_key(settings), f"d:{deputy_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:SIGNATURE_LENGTH]


def deputy_scene(settings: Settings, deputy_id: int) -> str:
    scene = f"d.{deputy_id}.{_sign(settings, deputy_id)}"
    assert len(scene) <= 32
    return scene


def parse_deputy_scene(settings: Settings, scene: str) -> int | None:
    """The deputy id of a genuine scene, or None."""
    match = _SCENE.match(scene)
    if match is None:
        return None
    deputy_id = int(match["deputy"])
    if not secrets_match(_sign(settings, deputy_id), match["sig"]):
        return None
    return deputy_id
