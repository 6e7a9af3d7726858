"""A request body beyond the largest upload is refused at once with 413: from its declared
length before anything is read, or while it streams in, never after spooling all of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.core.config import Settings
from tests.wishes.conftest import World

MIB = 1024 * 1024


@pytest.mark.parametrize("path", ["/attachments", "/deputies/import"])
async def test_declared_oversize_body_is_413_before_it_is_read(
    client: httpx.AsyncClient, world: World, settings: Settings, path: str
) -> None:
    body = b"\0" * (settings.max_request_bytes + 1)
    response = await client.post(
        path,
        headers={**world.staff.headers, "Content-Type": "multipart/form-data; boundary=x"},
        content=body,
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "payload_too_large"


async def test_streamed_oversize_body_is_cut_off_at_the_bound(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    sent = 0
    total = settings.max_request_bytes * 4

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        boundary = b"--x\r\nContent-Disposition: form-data; name=file; filename=a.jpg\r\n\r\n"
        yield boundary
        while sent < total:
            sent += MIB
            yield b"\0" * MIB

    response = await client.post(
        "/attachments",
        headers={**world.resident.headers, "Content-Type": "multipart/form-data; boundary=x"},
        content=chunks(),  # no Content-Length: chunked
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"
    assert sent <= settings.max_request_bytes + 2 * MIB  # the rest was never asked for
