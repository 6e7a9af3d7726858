"""API key format: `lsk_<prefix>_<secret>`.

The prefix (8 characters) is public: it names the key in logs, the audit log and the admin
list. The secret has 256 bits of entropy, so a plain sha256 of the whole key is a safe
stored form (no password stretching needed), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from app.core.deps import API_KEY_PREFIX

_PREFIX_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
_KEY = re.compile(r"^lsk_([a-z2-9]{8})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    prefix: str
    key_hash: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> NewKey:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(key=key, prefix=prefix, key_hash=hash_key(key))


def parse_prefix(key: str) -> str | None:
    """The prefix of a well-formed key, else None."""
    match = _KEY.match(key.strip())
    return match.group(1) if match else None


def matches(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key.strip()), key_hash)
