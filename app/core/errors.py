"""Typed errors and their one rendering: RFC 9457 problem+json with a stable `code`.

Services raise `AppError` subclasses; routes never build `HTTPException`. FastAPI's own
404/405/422 and unexpected failures are rendered the same way.
"""

from __future__ import annotations

import logging
import sqlite3
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("app.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class AppError(Exception):
    status: int = 400
    code: str = "bad_request"
    detail: str = "请求有误"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.detail = detail or self.detail
        self.code = code or self.code
        self.status = status or self.status
        self.headers = headers
        self.extra = extra
        super().__init__(self.detail)


class BadRequest(AppError):
    status, code, detail = 400, "bad_request", "请求有误"


class Unauthenticated(AppError):
    status, code, detail = 401, "unauthenticated", "请先登录"


class Forbidden(AppError):
    status, code, detail = 403, "forbidden", "没有权限执行此操作"


class NotFound(AppError):
    status, code, detail = 404, "not_found", "未找到该资源"


class Conflict(AppError):
    status, code, detail = 409, "conflict", "操作与当前状态冲突"


class InvalidTransition(AppError):
    status, code, detail = 409, "invalid_transition", "当前状态下不能执行此操作"


class VersionConflict(AppError):
    status, code, detail = 409, "version_conflict", "内容已被他人修改，请刷新后重试"


class ValidationFailed(AppError):
    status, code, detail = 422, "validation_error", "提交的内容不符合要求"


class RateLimited(AppError):
    status, code, detail = 429, "rate_limited", "操作过于频繁，请稍后再试"


class ServiceUnavailable(AppError):
    status, code, detail = 503, "service_unavailable", "服务暂时不可用，请稍后再试"


class DatabaseUnavailable(ServiceUnavailable):
    status, code, detail = 503, "database_unavailable", "数据库暂不可用，请稍后再试"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})


class DatabaseUnreachable(ConnectionError):
    """No connection to the database could be opened (refused, unknown host, timed out)."""


DATABASE_RETRY_AFTER_SECONDS = 5
# SQLSTATEs meaning "no usable connection": connection exceptions (08), authorization (28),
# unknown database, too many connections, shutting down or starting up.
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "28")
_UNAVAILABLE_SQLSTATES = frozenset({"3D000", "53300", "57P01", "57P02", "57P03"})
_SQLITE_UNAVAILABLE = ("unable to open database file", "database is locked")


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 32:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                todo.append(linked)
    return seen


def database_unavailable_cause(exc: BaseException) -> BaseException | None:
    """The exception in `exc`'s chain that says the database cannot be reached now (pool
    timeout, refused or failed connection, server shutting down, unopenable SQLite file), or
    None when `exc` is some other failure."""
    for cause in _causes(exc):
        if isinstance(cause, SQLAlchemyTimeoutError | DatabaseUnreachable):
            return cause
        if isinstance(cause, DBAPIError) and cause.connection_invalidated:
            return cause
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate in _UNAVAILABLE_SQLSTATES
            or sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)
        ):
            return cause
        if isinstance(cause, sqlite3.OperationalError) and str(cause) in _SQLITE_UNAVAILABLE:
            return cause
    return None


class FieldError(BaseModel):
    field: str = Field(examples=["body.title"])
    message: str = Field(examples=["Field required"])
    type: str = Field(examples=["missing"])


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is answered."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Conflict",
                    "status": 409,
                    "code": "wish_already_claimed",
                    "detail": "该心愿已被其他代表认领",
                }
            ]
        },
    )

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str
    errors: list[FieldError] | None = None


_CODES_BY_STATUS = {
    400: ("bad_request", "请求有误"),
    401: ("unauthenticated", "请先登录"),
    403: ("forbidden", "没有权限执行此操作"),
    404: ("not_found", "未找到该资源"),
    405: ("method_not_allowed", "不支持该请求方法"),
    406: ("not_acceptable", "不支持请求的响应格式"),
    409: ("conflict", "操作与当前状态冲突"),
    413: ("payload_too_large", "上传内容过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
    422: ("validation_error", "提交的内容不符合要求"),
    429: ("rate_limited", "操作过于频繁，请稍后再试"),
    500: ("internal_error", "服务器内部错误，请稍后再试"),
    503: ("service_unavailable", "服务暂时不可用，请稍后再试"),
}


# RFC 9110's reason phrases, which Python's own table only adopted in 3.13: the title of an
# answer does not change with the Python version the service runs on.
_RFC9110_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def _title(status: int) -> str:
    if status in _RFC9110_TITLES:
        return _RFC9110_TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "code": code,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(exc.status, exc.code, exc.detail, headers=exc.headers, **exc.extra)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": _field_name(e.get("loc", ())),
            "message": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    return problem_response(422, "validation_error", "提交的内容不符合要求", errors=errors)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, detail = _CODES_BY_STATUS.get(exc.status_code, ("error", _title(exc.status_code)))
    return problem_response(exc.status_code, code, detail, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the problem answers of an endpoint."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, detail = _CODES_BY_STATUS.get(status, ("error", _title(status)))
        out[status] = {
            "model": Problem,
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "example": {
                        "type": "about:blank",
                        "title": _title(status),
                        "status": status,
                        "code": code,
                        "detail": detail,
                    }
                }
            },
        }
    return out


def database_unavailable_response() -> dict[int | str, dict[str, Any]]:
    """The 503 every endpoint may answer while the database cannot serve it."""
    response = problem_responses(503)
    response[503]["description"] = (
        "The database cannot serve the request now (no free connection within "
        "DB_POOL_TIMEOUT_SECONDS, connection refused): retry after `Retry-After` seconds."
    )
    response[503]["headers"] = {
        "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
    }
    response[503]["content"][PROBLEM_MEDIA_TYPE]["example"].update(
        code=DatabaseUnavailable.code, detail=DatabaseUnavailable.detail
    )
    return response
