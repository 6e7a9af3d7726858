"""/docs, /redoc and /openapi.json: served from the service's own assets, per DOCS_ACCESS."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from app.core.config import Settings
from app.core.db import Database
from app.core.security import Role, hash_password
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import Factory

ASSET_TYPES = {
    ".js": ("application/javascript", "text/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}
_REFERENCE = re.compile(r"""(?:src|href|url)\s*[=:(]\s*['"]?([^'")\s>]+)""")


@asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def _app(db: Database, **overrides: Any) -> FastAPI:
    """Another application on the tests' database, with other settings."""
    application = create_app(make_settings(**overrides))
    application.state.db = db
    return application


def _references(html: str) -> list[str]:
    return [ref for ref in _REFERENCE.findall(html) if not ref.startswith("#")]


def _basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def _assert_page_is_self_contained(client: httpx.AsyncClient, url: str) -> list[str]:
    page = await client.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "cdn" not in html.lower() and "fonts.googleapis" not in html
    references = _references(html)
    assert references, html
    for reference in references:
        # Same origin: a path on this service, never another host or a protocol-relative URL.
        assert reference.startswith("/") and not reference.startswith("//"), reference
    assets = [r for r in references if r.startswith("/docs/assets/")]
    assert assets, references
    for asset in assets:
        answer = await client.get(asset)
        assert answer.status_code == 200, asset
        kind = next(v for k, v in ASSET_TYPES.items() if asset.endswith(k))
        assert answer.headers["content-type"].split(";")[0] in kind, (asset, answer.headers)
        assert len(answer.content) > 1000, asset
    return references


async def test_swagger_ui_and_redoc_load_only_from_the_service(app: FastAPI) -> None:
    async with _client(app) as site:
        swagger = await _assert_page_is_self_contained(site, "/docs")
        assert "/docs/assets/swagger-ui-bundle.js" in swagger
        assert "/docs/assets/swagger-ui.css" in swagger
        assert '"validatorUrl": null' in (await site.get("/docs")).text
        redoc = await _assert_page_is_self_contained(site, "/redoc")
        assert "/docs/assets/redoc.standalone.js" in redoc
        document = await site.get("/openapi.json")
        assert document.status_code == 200 and document.json()["openapi"].startswith("3.")
        # The pages read the document from where it is.
        assert "'/openapi.json'" in (await site.get("/docs")).text
        assert (await site.get("/docs/assets/nothing.js")).status_code == 404


async def test_docs_off_answer_404(db: Database) -> None:
    async with _client(_app(db, docs_access="off")) as site:
        for url in ("/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"):
            answer = await site.get(url)
            assert answer.status_code == 404, url
            assert answer.json()["code"] == "not_found"
        # The API itself is untouched.
        assert (await site.get("/healthz")).status_code == 200


def test_docs_are_public_in_development_and_off_in_production() -> None:
    assert make_settings().effective_docs_access == "public"
    assert make_settings(docs_access="staff").effective_docs_access == "staff"
    # model_construct: only the default is looked at, not the other production checks.
    production = Settings.model_construct(app_env="production")
    assert production.effective_docs_access == "off"
    assert (
        Settings.model_construct(app_env="production", docs_access="staff").effective_docs_access
        == "staff"
    )


async def test_staff_docs_ask_for_a_staff_or_admin_login(db: Database, factory: Factory) -> None:
    district = await factory.district()
    unit = await factory.unit()
    password = "docs-pass-1234"
    hashed = await hash_password(password)
    staff = await factory.staff(district.district, password_hash=hashed)
    admin = await factory.actor(Role.admin, password_hash=hashed)
    handler = await factory.unit_handler(unit, password_hash=hashed)
    resident = await factory.resident()
    async with _client(_app(db, docs_access="staff")) as site:
        for url in ("/docs", "/redoc", "/openapi.json"):
            anonymous = await site.get(url)
            assert anonymous.status_code == 401, url
            assert anonymous.headers["www-authenticate"].startswith('Basic realm="API docs"')
            assert anonymous.json()["code"] == "docs_login_required"
            for who in (staff, admin):
                ok = await site.get(url, headers=_basic(who.user.username or "", password))
                assert ok.status_code == 200, (url, ok.text)
        refused: list[Callable[[], dict[str, str]]] = [
            lambda: _basic(staff.user.username or "", "wrong-password"),
            lambda: _basic(handler.user.username or "", password),  # wrong role
            lambda: _basic("nobody", password),
            lambda: _basic(f"{staff.user.username}\x00", password),
            lambda: {"Authorization": "Basic not-base64!"},
            lambda: resident.headers,  # a bearer token is not a docs login
            lambda: _basic(staff.user.username or "", ""),
        ]
        for headers in refused:
            answer = await site.get("/docs", headers=headers())
            assert answer.status_code == 401, (headers(), answer.text)
            assert "www-authenticate" in answer.headers
        # The assets are the libraries' public files.
        assert (await site.get("/docs/assets/swagger-ui.css")).status_code == 200


async def test_wrong_docs_passwords_lock_the_account_like_failed_logins(
    db: Database, factory: Factory, settings: Settings
) -> None:
    district = await factory.district()
    staff = await factory.staff(district.district, password_hash=await hash_password("right-1234"))
    async with _client(_app(db, docs_access="staff")) as site:
        wrong = _basic(staff.user.username or "", "wrong")
        for _ in range(settings.login_max_failures - 1):
            assert (await site.get("/docs", headers=wrong)).status_code == 401
        # The last failure sets the lock, as a failed login does.
        assert (await site.get("/docs", headers=wrong)).status_code == 423
        right = _basic(staff.user.username or "", "right-1234")
        locked = await site.get("/docs", headers=right)
        assert locked.status_code == 423 and locked.json()["code"] == "account_locked"
    async with _client(_app(db)) as api:
        login = await api.post(
            "/api/v1/auth/password-login",
            json={"username": staff.user.username, "password": "right-1234"},
        )
        assert login.status_code == 423 and login.json()["code"] == "account_locked"
