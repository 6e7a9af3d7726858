"""Dependencies of the identity routes: the database, the caller's account, a target account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from app.core.db import Database, SessionDep, get_db
from app.core.deps import CurrentPrincipal, SettingsDep
from app.core.errors import NotFound
from app.core.types import Id
from app.identity import service
from app.identity.models import User

# For the few endpoints that call WeChat before writing, or must commit what a failure
# wrote: they open their own short transactions (see app.identity.service).
DatabaseDep = Annotated[Database, Depends(get_db)]


async def _current_user(session: SessionDep, principal: CurrentPrincipal) -> User:
    return await service.active_user(session, principal)


CurrentUser = Annotated[User, Depends(_current_user)]


async def _user_or_404(session: SessionDep, user_id: Annotated[Id, Path()]) -> User:
    return await service.user_or_404(session, user_id)


TargetUser = Annotated[User, Depends(_user_or_404)]


def development_only(settings: SettingsDep) -> None:
    """In production the endpoint answers exactly what an unknown path answers."""
    if settings.is_production:
        raise NotFound()
