"""Load-and-check dependencies: a wish the caller may see, or may try to claim."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from app.core.db import SessionDep
from app.core.deps import CurrentPrincipal, DeputyPrincipal, OptionalPrincipal
from app.core.errors import NotFound
from app.core.security import Principal
from app.core.types import Id
from app.wishes import service
from app.wishes.service import WishContext

WishId = Annotated[Id, Path(description="The wish's id")]


class WishNotFound(NotFound):
    code, detail = "not_found", "心愿不存在或无权查看"


async def _load_visible(
    session: SessionDep, wish_id: int, principal: Principal | None
) -> WishContext:
    ctx = await service.load_context(session, wish_id, principal)
    if ctx is None or not ctx.visible:
        raise WishNotFound()
    return ctx


async def viewable_wish(
    wish_id: WishId, session: SessionDep, principal: OptionalPrincipal
) -> WishContext:
    """A published wish for anyone; any other only for its owner, claimer and staff in scope."""
    return await _load_visible(session, wish_id, principal)


async def actionable_wish(
    wish_id: WishId, session: SessionDep, principal: CurrentPrincipal
) -> WishContext:
    """As `viewable_wish`, for a signed-in caller about to take a step on it."""
    return await _load_visible(session, wish_id, principal)


async def claimable_wish(
    wish_id: WishId, session: SessionDep, principal: DeputyPrincipal
) -> WishContext:
    """A wish a deputy may try to claim: one that is or was on the wall. A wish claimed by
    someone else is no longer public, but claiming it must answer 409
    `wish_already_claimed`, not 404."""
    ctx = await service.load_context(session, wish_id, principal, caller_deputy=True)
    if ctx is None or not (ctx.visible or ctx.wish.status in service.ONCE_PUBLIC):
        raise WishNotFound()
    return ctx


ViewableWish = Annotated[WishContext, Depends(viewable_wish)]
ActionableWish = Annotated[WishContext, Depends(actionable_wish)]
ClaimableWish = Annotated[WishContext, Depends(claimable_wish)]
