"""Where uploaded files live: a small interface, local disk by default.

An object store (S3, OSS, COS) replaces `LocalStorage` by implementing `Storage` and being
put on `app.state.storage`; nothing else knows where bytes are kept. Keys are opaque,
server-made relative paths ("2026/11/3f2a….jpg"), never a client's file name.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from fastapi import Request

from app.core.clock import utcnow
from app.core.config import Settings

CHUNK_SIZE = 64 * 1024
_VALID_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,200}$")


class StorageError(RuntimeError):
    """The file could not be stored or read."""


class Storage(Protocol):
    async def save(self, key: str, data: bytes, content_type: str) -> None: ...

    def stream(self, key: str) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...


def new_key(extension: str) -> str:
    """A fresh, unguessable key, grouped by month so no directory grows without bound."""
    now = utcnow()
    return f"{now:%Y}/{now:%m}/{uuid.uuid4().hex}.{extension}"


class LocalStorage:
    """Files under one directory. Blocking file calls run in a thread, off the event loop."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        if not _VALID_KEY.match(key) or ".." in key.split("/"):
            raise StorageError("invalid storage key")
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise StorageError("invalid storage key")
        return path

    async def save(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)

        def _write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a reader never sees half a file.
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)

        await asyncio.to_thread(_write)

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            fh = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError as exc:
            raise StorageError("file missing") from exc
        try:
            while chunk := await asyncio.to_thread(fh.read, CHUNK_SIZE):
                yield chunk
        finally:
            await asyncio.to_thread(fh.close)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(path.unlink, True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)


def storage_for(settings: Settings) -> Storage:
    return LocalStorage(settings.media_dir)


def get_storage(request: Request) -> Storage:
    """The application's storage: `app.state.storage` when set (an object store), else local
    disk under `settings.media_dir`, made once and kept on the app."""
    state = request.app.state
    storage: Storage | None = getattr(state, "storage", None)
    if storage is None:
        storage = storage_for(state.settings)
        state.storage = storage
    return storage
