"""Open311 errors: answered as the specification's `<errors><error>` array in the format
asked for, never as problem+json (Open311 clients do not know it)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from app.open311 import render


class Open311Error(Exception):
    def __init__(
        self,
        status: int,
        description: str,
        fmt: str = "xml",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.fmt = fmt if fmt in render.FORMATS else "xml"
        self.headers = headers or {}


async def _handle(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Open311Error)
    response = render.errors(exc.fmt, exc.status, exc.description)
    response.headers.update(exc.headers)
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(Open311Error, _handle)
