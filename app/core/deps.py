"""Request-level dependencies that need no domain: settings and the caller's principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.core.config import Settings
from app.core.errors import Forbidden, Unauthenticated
from app.core.security import Principal, Role, decode_access_token

_bearer = HTTPBearer(
    auto_error=False,
    description="Access token from a login endpoint, or an integrator's API key (`lsk_…`)",
)
_api_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="An integrator's API key (`lsk_<prefix>_<secret>`); also accepted as Bearer",
)

# Integrator keys carry this prefix, so they are told from access tokens (JWTs) at a glance.
API_KEY_PREFIX = "lsk_"


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def _key_principal(request: Request, key: str) -> Principal:
    """An API key's principal. The integrations domain registers the check on the app
    (`app.state.authenticate_key`): core imports no domain."""
    authenticate = getattr(request.app.state, "authenticate_key", None)
    if authenticate is None:
        raise Unauthenticated("API 密钥无效", code="invalid_api_key")
    return await authenticate(request, key)  # type: ignore[no-any-return]


async def _principal(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    if api_key is not None:
        return await _key_principal(request, api_key)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(headers={"WWW-Authenticate": "Bearer"})
    if credentials.credentials.startswith(API_KEY_PREFIX):
        return await _key_principal(request, credentials.credentials)
    return decode_access_token(credentials.credentials, settings)


async def _optional_principal(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    if credentials is None:
        return None
    if credentials.credentials.startswith(API_KEY_PREFIX):
        return await _key_principal(request, credentials.credentials)
    return decode_access_token(credentials.credentials, settings)


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(_optional_principal)]


def require_roles(*roles: Role):  # type: ignore[no-untyped-def]
    allowed = frozenset(roles)

    async def _check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            raise Forbidden()
        return principal

    return _check


async def _deputy(principal: CurrentPrincipal) -> Principal:
    if principal.role != Role.deputy or principal.deputy_id is None:
        raise Forbidden("仅限已绑定身份的人大代表", code="forbidden")
    return principal


StaffPrincipal = Annotated[Principal, Depends(require_roles(Role.staff, Role.admin))]
AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.admin))]
UnitPrincipal = Annotated[Principal, Depends(require_roles(Role.unit))]
ResidentPrincipal = Annotated[Principal, Depends(require_roles(Role.resident))]
DeputyPrincipal = Annotated[Principal, Depends(_deputy)]
