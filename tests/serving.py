"""An app of its own for tests that need settings other than the suite's (another database,
a pool of one, trusted proxies): started with its lifespan, reached over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app


@asynccontextmanager
async def serving(
    settings: Settings,
    *,
    base_url: str = "http://test",
    peer: tuple[str, int] = ("127.0.0.1", 123),
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False, client=peer)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield application, client
