"""HTTP endpoints of micro-wishes (微心愿)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from app.core.db import Database, SessionDep, get_db
from app.core.deps import (
    CurrentPrincipal,
    DeputyPrincipal,
    OptionalPrincipal,
    ResidentPrincipal,
    SettingsDep,
)
from app.core.errors import Forbidden, Unauthenticated, problem_responses
from app.core.pagination import CappedPage, PageDep
from app.core.types import Id
from app.wechat.deps import WeChatDep
from app.wishes import service
from app.wishes.deps import ActionableWish, ClaimableWish, ViewableWish
from app.wishes.models import Wish, WishStatus
from app.wishes.schemas import (
    WishConfirm,
    WishCreate,
    WishDetail,
    WishFulfil,
    WishPublic,
    WishRelease,
    WishReview,
    WishWithdraw,
)
from app.wishes.service import WishContext

router = APIRouter(prefix="/wishes", tags=["wishes"])

DatabaseDep = Annotated[Database, Depends(get_db)]


async def _answer(
    session: SessionDep, ctx: WishContext, principal: CurrentPrincipal, wish: Wish
) -> WishDetail:
    """The answer to a step: the wish as the UPDATE returned it, without reading it back."""
    return await service.to_detail(session, service.advanced(ctx, wish, principal))


@router.post(
    "",
    status_code=201,
    response_model=WishDetail,
    responses=problem_responses(401, 403, 422),
    summary="Post a wish (resident)",
)
async def create_wish(
    body: WishCreate,
    principal: ResidentPrincipal,
    db: DatabaseDep,
    gateway: WeChatDep,
    settings: SettingsDep,
) -> WishDetail:
    """A resident posts a micro-wish (提交微心愿); it waits for staff review (`pending_review`).

    The text is checked by WeChat's content security (msgSecCheck, scene 3): refused text
    answers 422 `content_rejected` and nothing is stored. Photos are the caller's own
    uploads from `POST /attachments`. After this answer, ask the user for subscribe-message
    consent (`wx.requestSubscribeMessage`) so they hear about the review.
    """
    wish_id = await service.submit_wish(db, gateway, settings, principal, body)
    async with db.transaction(write=False) as session:
        ctx = await service.load_context(session, wish_id, principal)
        assert ctx is not None
        return await service.to_detail(session, ctx)


@router.get(
    "",
    response_model=CappedPage[WishPublic],
    responses=problem_responses(401, 403),
    summary="The wish wall, one's own wishes, or staff's list",
)
async def list_wishes(
    session: SessionDep,
    principal: OptionalPrincipal,
    page: PageDep,
    mine: Annotated[
        bool, Query(description="Own wishes (resident) or own claims (deputy), any status")
    ] = False,
    station_id: Annotated[Id | None, Query()] = None,
    region_id: Annotated[Id | None, Query(description="This region and below")] = None,
    status: Annotated[
        WishStatus | None, Query(description="Staff, or with mine=true; the wall is published")
    ] = None,
    needs_attention: Annotated[
        bool | None, Query(description="Staff: content check asked for review or did not run")
    ] = None,
) -> CappedPage[WishPublic]:
    """Without a token, or as a resident or deputy: the public wall (心愿墙) of published
    wishes, newest first, beneficiaries masked. `mine=true`: the caller's own wishes, or the
    wishes a deputy claimed. Staff: every wish in their region subtree, any status.

    `total` counts at most 1,000 wishes past the page asked for; beyond that it is that
    bound and `total_capped` is true."""
    if mine and principal is None:
        raise Unauthenticated(headers={"WWW-Authenticate": "Bearer"})
    is_staff = principal is not None and principal.is_staff
    if status not in (None, WishStatus.published) and not (mine or is_staff):
        raise Forbidden("心愿墙只展示已发布的心愿")
    items, total, capped = await service.list_wishes(
        session,
        principal,
        service.WishFilters(
            mine=mine,
            station_id=station_id,
            region_id=region_id,
            status=status,
            needs_attention=needs_attention,
        ),
        page,
    )
    return CappedPage[WishPublic](items=items, total=total, total_capped=capped)


@router.get(
    "/{wish_id}",
    response_model=WishDetail,
    responses=problem_responses(401, 404),
    summary="One wish",
)
async def get_wish(session: SessionDep, ctx: ViewableWish) -> WishDetail:
    """A published wish for anyone (beneficiary masked); the owner, the claiming deputy and
    staff in scope see the beneficiary in full and the timeline, and may see the wish in any
    status. Others get 404 for a wish that is not published."""
    return await service.to_detail(session, ctx)


@router.post(
    "/{wish_id}/review",
    response_model=WishDetail,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Approve or reject a wish (staff)",
)
async def review_wish(
    session: SessionDep, ctx: ActionableWish, principal: CurrentPrincipal, body: WishReview
) -> WishDetail:
    """Staff of the wish's region approve it (`published`, on the wall) or reject it with a
    reason the resident sees (`rejected`)."""
    wish = await service.review_wish(
        session, ctx, principal, approve=body.approve, reason=body.reason
    )
    return await _answer(session, ctx, principal, wish)


@router.post(
    "/{wish_id}/claim",
    response_model=WishDetail,
    responses=problem_responses(401, 403, 404, 409),
    summary="Claim a wish (deputy)",
)
async def claim_wish(
    session: SessionDep,
    settings: SettingsDep,
    ctx: ClaimableWish,
    principal: DeputyPrincipal,
) -> WishDetail:
    """A deputy takes on a published wish (认领). Exactly one deputy wins: the others get 409
    `wish_already_claimed`. A deputy holding `WISH_MAX_OPEN_CLAIMS` unfulfilled claims gets
    409 `claim_limit_reached`. The answer shows the beneficiary in full."""
    wish = await service.claim_wish(session, settings, ctx, principal)
    return await _answer(session, ctx, principal, wish)


@router.post(
    "/{wish_id}/release",
    response_model=WishDetail,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Give up a claim (claiming deputy)",
)
async def release_wish(
    session: SessionDep, ctx: ActionableWish, principal: CurrentPrincipal, body: WishRelease
) -> WishDetail:
    """The claiming deputy gives the wish back to the wall (`published`), with a reason."""
    wish = await service.release_wish(session, ctx, principal, reason=body.reason)
    return await _answer(session, ctx, principal, wish)


@router.post(
    "/{wish_id}/fulfil",
    response_model=WishDetail,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Report a wish fulfilled (claiming deputy)",
)
async def fulfil_wish(
    session: SessionDep,
    settings: SettingsDep,
    ctx: ActionableWish,
    principal: CurrentPrincipal,
    body: WishFulfil,
) -> WishDetail:
    """The claiming deputy reports the wish done (`fulfilled`): `note` required (2–1000
    characters), `attachment_ids` optional (the deputy's own unlinked uploads, at most
    `WISH_MAX_ATTACHMENTS`; any other id: 422 `invalid_attachment`, nothing changes). Only
    the claiming deputy (the owner and staff get 403, anyone who cannot see the wish 404) and
    only while `claimed` (409 `invalid_transition`). The resident is asked to confirm."""
    wish = await service.fulfil_wish(
        session, settings, ctx, principal, note=body.note, attachment_ids=body.attachment_ids
    )
    return await _answer(session, ctx, principal, wish)


@router.post(
    "/{wish_id}/confirm",
    response_model=WishDetail,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Confirm and thank (owner)",
)
async def confirm_wish(
    session: SessionDep,
    ctx: ActionableWish,
    principal: CurrentPrincipal,
    body: Annotated[WishConfirm, Body(default_factory=WishConfirm)],
) -> WishDetail:
    """The resident confirms the fulfilled wish (`completed`) and may thank the deputy and
    rate it (1–5). The deputy is told."""
    wish = await service.confirm_wish(
        session, ctx, principal, thanks=body.thanks, rating=body.rating
    )
    return await _answer(session, ctx, principal, wish)


@router.post(
    "/{wish_id}/withdraw",
    response_model=WishDetail,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Withdraw a wish (owner)",
)
async def withdraw_wish(
    session: SessionDep,
    ctx: ActionableWish,
    principal: CurrentPrincipal,
    body: Annotated[WishWithdraw, Body(default_factory=WishWithdraw)],
) -> WishDetail:
    """The resident takes the wish back (`withdrawn`) while it is pending or published; once
    a deputy claimed it, 409 `invalid_transition`."""
    wish = await service.withdraw_wish(session, ctx, principal, reason=body.reason)
    return await _answer(session, ctx, principal, wish)
