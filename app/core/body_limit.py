"""Request bodies beyond the largest upload are refused with 413 as soon as that is known.

A declared `Content-Length` over the bound is answered before a byte is read; a body streamed
without one is cut off when it passes the bound. Without this, the multipart parser would
spool a body of any size to disk before the upload's own size check saw it. (Starlette's own
limiter answers plain text, not the problem+json every other error is.)
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem_response

DETAIL = "上传内容过大"


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = problem_response(
                413, "payload_too_large", DETAIL, headers={"Connection": "close"}
            )
            await response(scope, receive, send)
            return
        received = 0

        async def receive_within_bound() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the body read: FastAPI passes HTTPException through, and
                    # the error handler renders it as problem+json 413 payload_too_large.
                    raise HTTPException(413, DETAIL)
            return message

        await self.app(scope, receive_within_bound, send)
