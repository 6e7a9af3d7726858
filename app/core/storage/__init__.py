"""Where uploaded files live: a small interface, local disk by default, an S3-protocol object
store (AWS S3, Aliyun OSS, Tencent COS, MinIO) when `STORAGE_BACKEND=s3`.

Nothing else knows where bytes are kept. Keys are opaque, server-made relative paths
("2026/11/3f2a….jpg"), never a client's file name. Several API replicas need the object store:
local disk is seen by one host only.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncGenerator
from typing import Protocol

from fastapi import Request

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.errors import ServiceUnavailable

CHUNK_SIZE = 64 * 1024
_VALID_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,200}$")


class StorageError(RuntimeError):
    """The file could not be stored or read (an invalid key, a missing file)."""


class StorageUnavailable(ServiceUnavailable):
    """The object store cannot be reached or refused the request: retry later."""

    code, detail = "storage_unavailable", "文件存储暂不可用，请稍后再试"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "5"})


class Storage(Protocol):
    async def save(self, key: str, data: bytes, content_type: str) -> None: ...

    def stream(self, key: str) -> AsyncGenerator[bytes, None]: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...

    async def signed_url(self, key: str) -> str | None:
        """A URL the client may fetch the file from directly for a short while, or None when
        files are served through the API only."""
        ...


def check_key(key: str) -> str:
    if not _VALID_KEY.match(key) or ".." in key.split("/"):
        raise StorageError("invalid storage key")
    return key


def new_key(extension: str) -> str:
    """A fresh, unguessable key, grouped by month so no directory grows without bound."""
    now = utcnow()
    return f"{now:%Y}/{now:%m}/{uuid.uuid4().hex}.{extension}"


def storage_for(settings: Settings) -> Storage:
    """The storage the settings name. Object-store clients are made once per configuration
    and shared (by the API's requests and the worker's sweeps alike)."""
    if settings.storage_backend == "s3":
        from app.core.storage.s3 import S3Options, s3_storage

        return s3_storage(S3Options.of(settings))
    from app.core.storage.local import LocalStorage

    return LocalStorage(settings.media_dir)


def get_storage(request: Request) -> Storage:
    """The application's storage: `app.state.storage` when set, else the one the settings
    name, made once and kept on the app."""
    state = request.app.state
    storage: Storage | None = getattr(state, "storage", None)
    if storage is None:
        storage = storage_for(state.settings)
        state.storage = storage
    return storage
