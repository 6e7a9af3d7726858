"""The interactive API docs (`/docs`, Swagger UI; `/redoc`, ReDoc) and `/openapi.json`.

Their scripts and styles come from the service itself, under `/docs/assets/` (the files of
the `fastapi-offline` package, which tracks Swagger UI 5 and ReDoc 2), so the pages work
offline and on intranets that block public CDNs. Nothing on the pages loads from another
origin: no fonts, no validator badge.

`DOCS_ACCESS` decides who sees them:

- `public` (the default in development): anyone;
- `staff`: staff and admins, with their username and password through HTTP Basic
  authentication (the browser asks once and remembers); wrong passwords count towards the
  account's lock like a failed login;
- `off` (the default in production): all three answer 404.

The assets themselves are Swagger UI's and ReDoc's public files and are served to anyone
whenever the docs are not `off`.
"""

from __future__ import annotations

import base64
import binascii
from importlib.resources import files
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from app.core.config import Settings
from app.core.db import Database, get_db
from app.core.deps import SettingsDep
from app.core.errors import Unauthenticated
from app.core.security import Role
from app.identity import service as identity_service

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OPENAPI_URL = "/openapi.json"
ASSETS_URL = "/docs/assets"
ASSETS_DIR = files("fastapi_offline") / "static"
STAFF_ROLES = frozenset({Role.staff, Role.admin})
_REALM = 'Basic realm="API docs", charset="UTF-8"'


class DocsLoginRequired(Unauthenticated):
    code, detail = "docs_login_required", "查看接口文档需要工作人员账号登录"


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    # Decoded here, so the request-wide NUL guard (which sees only the base64) cannot: a
    # NUL would fail the username lookup on PostgreSQL.
    if not colon or not username or "\x00" in decoded:
        return None
    return username, password


async def docs_viewer(
    request: Request, settings: SettingsDep, db: Annotated[Database, Depends(get_db)]
) -> None:
    """Lets the caller see the docs under `DOCS_ACCESS=staff`, or answers 401 with the
    `WWW-Authenticate: Basic` challenge that makes a browser ask for a login."""
    if settings.effective_docs_access != "staff":
        return
    credentials = _basic_credentials(request)
    if credentials is None:
        raise DocsLoginRequired(headers={"WWW-Authenticate": _REALM})
    try:
        await identity_service.check_password(db, settings, *credentials, roles=STAFF_ROLES)
    except Unauthenticated as exc:
        raise DocsLoginRequired(headers={"WWW-Authenticate": _REALM}) from exc


DocsViewer = Depends(docs_viewer)


def install_api_docs(app: FastAPI, settings: Settings) -> None:
    """Add the docs routes to `app` (created with `docs_url`, `redoc_url` and `openapi_url`
    set to None), unless `DOCS_ACCESS=off`."""
    if settings.effective_docs_access == "off":
        return
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS_DIR)), name="docs-assets")

    @app.get(OPENAPI_URL, include_in_schema=False, dependencies=[DocsViewer])
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(DOCS_URL, include_in_schema=False, dependencies=[DocsViewer])
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + OPENAPI_URL,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=None,
            # No badge fetched from the public validator service.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(REDOC_URL, include_in_schema=False, dependencies=[DocsViewer])
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(
            openapi_url=root + OPENAPI_URL,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
