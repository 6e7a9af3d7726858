"""What runs beside the HTTP handlers for the life of the process.

In development without WeChat credentials this starts the fake WeChat server, so the quick
start works offline; the gateway and the in-process notification worker are attached here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.core.config import Settings


@asynccontextmanager
async def start_runtime(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    yield
