"""Webhook signatures: `v1=<hex hmac_sha256(secret, f"{timestamp}.{body}")>`.

Receivers recompute it over the raw body with the `X-Webhook-Timestamp` header, compare in
constant time, and refuse timestamps more than five minutes away from their clock (replay
protection); `X-Webhook-Id` (the event id) lets them drop a delivery they already handled.
"""

from __future__ import annotations

import hashlib
import hmac

TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return "v1=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, now: int) -> bool:
    """What a receiver does (used by our tests as a receiver would)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)
