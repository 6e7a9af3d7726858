"""Logging with the request id on every line, in one of two formats.

- `text` (development): `time LEVEL [request id] logger: message`, one line per record.
- `json` (production, `LOG_FORMAT=json`): one JSON object per line with `time`, `level`,
  `logger`, `request_id`, `message` and the record's extra fields (`method`, `path`,
  `status`, `duration_ms`, `client` on access lines); a traceback goes into `exc_info`.

No value from a request can start a new log line or forge one: the formatters, not each
call, escape control and line-separator characters in every message (`\n` is written
`\\n`); a traceback's own lines are kept in text (indented with `| `, so none of them can
pass for a record) and inside the one JSON object in json.

Personal data never goes into logs: access lines carry the method, the path (no query
string), the status and the client's network (its address masked to /24 or /48), nothing
from bodies or headers.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import (
    AppError,
    DatabaseUnavailable,
    database_unavailable_cause,
    problem_response,
)
from app.core.masking import mask_ip

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

access_logger = logging.getLogger("app.access")
error_logger = logging.getLogger("app.errors")

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the invisible
# format characters that reorder or hide text (bidi overrides, zero-width spaces, BOM).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
    "color_message",  # uvicorn's coloured copy of the message
}


def escape_control(text: str) -> str:
    """`text` with every control or line-breaking character written as an escape."""
    return _UNSAFE.sub(
        lambda m: _ESCAPES.get(m.group(), m.group().encode("unicode_escape").decode("ascii")),
        text,
    )


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    """One line per record; a traceback follows on lines that start with `  | `."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_control(record.getMessage())
        record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        # Formatted here rather than taken from `record.exc_text`, which another handler's
        # formatter may have filled without the guard.
        if record.exc_info:
            text += "\n" + _continuation(self.formatException(record.exc_info))
        elif record.exc_text:
            text += "\n" + _continuation(record.exc_text)
        if record.stack_info:
            text += "\n" + _continuation(self.formatStack(record.stack_info))
        return text


def _continuation(text: str) -> str:
    return "\n".join("  | " + escape_control(line) for line in text.splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": escape_control(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        line = json.dumps(entry, ensure_ascii=False, default=str)
        # json.dumps escapes C0 controls only; the rest of the unsafe set is escaped here
        # (inside JSON strings, `\\uXXXX` is the same character to a reader).
        return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def configure_logging(
    level: str, log_format: Literal["text", "json"] = "text", stream: TextIO | None = None
) -> logging.Handler:
    """Send every record (ours, uvicorn's, the libraries') through one handler on the root
    logger, in `log_format`, to `stream` (standard error by default). Returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # uvicorn installs handlers of its own, in its own format: its records come here instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


class RequestContextMiddleware:
    """Gives every request an id (from `X-Request-ID` when sane), echoes it on the response,
    writes one access line, and turns any unhandled exception into a problem+json 500
    without leaking a stack trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            cause = database_unavailable_cause(exc)
            if cause is not None:
                # Expected while the database is down or saturated: one line, no stack.
                error_logger.warning(
                    "database unavailable on %s %s: %s: %s",
                    scope["method"],
                    scope["path"],
                    type(cause).__name__,
                    cause,
                )
                error: AppError = DatabaseUnavailable()
            else:
                error_logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
                error = AppError("服务器内部错误，请稍后再试", code="internal_error", status=500)
            if not status_holder["started"]:
                response = problem_response(
                    error.status,
                    error.code,
                    error.detail,
                    headers=error.headers,
                    request_id=request_id,
                )
                await response(scope, receive, send_with_id)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            client = scope.get("client")
            # Resolved behind trusted proxies (app.core.proxy); masked to its network.
            network = mask_ip(client[0] if client else None)
            extra: dict[str, Any] = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status_holder["status"],
                "duration_ms": duration_ms,
                "client": network,
            }
            # An integrator's key is named by its public prefix, never the key itself.
            state = scope.get("state")
            key_prefix = state.get("api_key_prefix") if isinstance(state, dict) else None
            if key_prefix:
                extra["api_key"] = key_prefix
            access_logger.info(
                "%s %s %s %.1fms client=%s%s",
                scope["method"],
                scope["path"],
                status_holder["status"],
                duration_ms,
                network,
                f" key={key_prefix}" if key_prefix else "",
                extra=extra,
            )
            request_id_var.reset(token)
