"""Request-level dependencies that need no domain: settings and the caller's principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.config import Settings
from app.core.errors import Forbidden, Unauthenticated
from app.core.security import Principal, Role, decode_access_token

_bearer = HTTPBearer(auto_error=False, description="Access token from a login endpoint")


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def _principal(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(headers={"WWW-Authenticate": "Bearer"})
    return decode_access_token(credentials.credentials, settings)


async def _optional_principal(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    if credentials is None:
        return None
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
