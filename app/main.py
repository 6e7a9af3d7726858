"""The application factory: settings, database, middleware, the error handler and routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.activities.router import router as activities_router
from app.api_docs import install_api_docs
from app.attachments.router import router as attachments_router
from app.cases.router import router as cases_router
from app.consultations.router import router as consultations_router
from app.core.body_limit import BodySizeLimitMiddleware
from app.core.config import ConfigError, Settings, get_settings
from app.core.db import Database, get_db
from app.core.errors import (
    DatabaseUnavailable,
    database_unavailable_response,
    install_error_handlers,
    problem_responses,
)
from app.core.logging import RequestContextMiddleware, configure_logging
from app.core.proxy import ProxyHeadersMiddleware
from app.core.text_guard import refuse_nul_characters
from app.dashboard.router import router as dashboard_router
from app.groups.router import router as groups_router
from app.hotspots.router import router as hotspots_router
from app.identity.deputy_router import router as deputy_router
from app.identity.router import hide_development_endpoints
from app.identity.router import router as identity_router
from app.integrations.deps import authenticate_key
from app.integrations.router import router as integrations_router
from app.notify.router import router as notify_router
from app.open311.errors import install as install_open311_errors
from app.open311.router import router as open311_router
from app.org.router import router as org_router
from app.presence.router import router as presence_router
from app.reports.router import router as reports_router
from app.startup import refuse_unsafe_production
from app.suggestions.router import router as suggestions_router
from app.wishes.router import router as wishes_router

logger = logging.getLogger("app")

API_PREFIX = "/api/v1"

DESCRIPTION = """
Backend of the WeChat mini-program for people's congress deputy liaison stations
(人大代表之家 / 代表联络站 / 代表工作室).

Every error is `application/problem+json` (RFC 9457) with a stable `code`; see
`miniprogram_api_docs/errors.md`. Authenticate with `Authorization: Bearer <access token>`
from one of the `/auth/*` endpoints. Integrators (other government systems) send an API key
(`lsk_…`) as `Authorization: Bearer` or `X-API-Key`; Open311 GeoReport v2 lives at
`/open311/v2` (see `miniprogram_api_docs/integrators.md`).

- **Times** in every answer: ISO 8601, Asia/Shanghai, to the second, with the offset
  (`2026-05-20T09:30:00+08:00`). Inputs take any offset; without one they are Shanghai time.
- **403 or 404**: 401 first; then a path that belongs to one role answers 403 to any other
  role; then an unknown id 404. A private resource the caller may not see (case, wish,
  message, photo) is 404, like an unknown one; a public registry entry (station, region,
  unit, deputy) or a check-in or reception outside the caller's reach is 403; a visible
  resource whose step is not the caller's is 403.
- **Lists** answer `{"items", "total"}` except four small unpaginated ones that answer a bare
  array: `/regions/tree`, `/case-categories`, `/cases/{id}/similar`, `/routing-rules`.
  Lists ordered by a name are in pinyin order.
- **Versions**: `PATCH /stations/{id}` and `PATCH /deputies/{id}` must carry `version` (or
  `If-Match`); case steps may.
"""

TAGS = [
    {"name": "identity", "description": "Logins, tokens, own profile, accounts"},
    {"name": "organisation", "description": "Regions, stations, units, deputies"},
    {"name": "presence", "description": "Duty rosters, check-ins, receptions"},
    {"name": "wishes", "description": "Micro-wishes (微心愿)"},
    {"name": "cases", "description": "Suggestions and problem reports (意见建议)"},
    {"name": "notifications", "description": "Outbox, inbox, subscriptions"},
    {"name": "dashboard", "description": "Statistics, duty archive, exports"},
    {"name": "activities", "description": "Deputy groups and activities (代表小组、代表活动)"},
    {"name": "reports", "description": "Deputies reporting to voters (述职评议)"},
    {"name": "consultations", "description": "Legislative consultations (立法意见征集)"},
    {"name": "integrators", "description": "API keys, webhooks, the audit log (接入系统)"},
    {"name": "open311", "description": "Open311 GeoReport v2 (XML and JSON)"},
    {"name": "hotspots", "description": "Hotspots (热点): cases about one problem, grouped"},
    {"name": "suggestions", "description": "Deputies' suggestions (代表建议) and their handling"},
    {"name": "health", "description": "Liveness and readiness"},
]


class HealthStatus(BaseModel):
    status: str = Field(examples=["ok"])


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application; uvicorn calls it with no arguments (`--factory`), and then settings
    that cannot run the service stop the process with one sentence instead of a traceback."""
    if settings is None:
        try:
            settings = get_settings()
            refuse_unsafe_production(settings)
        except ConfigError as exc:
            # uvicorn prints a traceback for anything but SystemExit raised by a factory.
            raise SystemExit(f"configuration error: {exc}") from None
    else:
        refuse_unsafe_production(settings)
    configure_logging(settings.log_level, settings.effective_log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from app.runtime import start_runtime

        app.state.db = Database(settings)
        async with start_runtime(app, settings):
            yield
        await app.state.db.dispose()

    app = FastAPI(
        title="Deputy liaison station API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # Served by app.api_docs, from the service's own assets and per DOCS_ACCESS.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        responses={**problem_responses(422, 500), **database_unavailable_response()},
        # Before every operation: no NUL character in any string of the request.
        dependencies=[Depends(refuse_nul_characters)],
    )
    app.state.settings = settings
    # core.deps asks this for a key's principal (core imports no domain).
    app.state.authenticate_key = authenticate_key
    install_error_handlers(app)
    install_api_docs(app, settings)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    install_open311_errors(app)
    app.add_middleware(RequestContextMiddleware)
    # Outermost: everything inside sees the client and scheme resolved behind proxies.
    app.add_middleware(ProxyHeadersMiddleware, proxies=settings.proxies)

    for router in (
        identity_router,
        org_router,
        deputy_router,
        presence_router,
        attachments_router,
        wishes_router,
        cases_router,
        notify_router,
        dashboard_router,
        groups_router,
        activities_router,
        reports_router,
        consultations_router,
        integrations_router,
        hotspots_router,
        suggestions_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(open311_router, prefix="/open311/v2")
    if settings.is_production:
        hide_development_endpoints(app, API_PREFIX)

    @app.get("/healthz", tags=["health"], response_model=HealthStatus)
    async def healthz() -> HealthStatus:
        """The process is alive."""
        return HealthStatus(status="ok")

    @app.get(
        "/readyz",
        tags=["health"],
        response_model=HealthStatus,
        responses=database_unavailable_response(),
    )
    async def readyz() -> HealthStatus:
        """The database answers."""
        db = get_db_from_app(app)
        try:
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            logger.warning("readiness check failed: %s", type(exc).__name__)
            raise DatabaseUnavailable() from exc
        return HealthStatus(status="ready")

    return app


def get_db_from_app(app: FastAPI) -> Database:
    return app.state.db  # type: ignore[no-any-return]


__all__ = ["create_app", "get_db"]
