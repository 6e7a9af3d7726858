"""The rules of micro-wishes (微心愿): posting, review, claims, fulfilment, sweeps.

Every step goes through `flows.check` and `_apply`: one conditional UPDATE
(`WHERE id = :id AND status = :status_the_caller_saw`, a source status of the transition),
then the timeline entry, then the hooks (notifications), all in the caller's transaction. A
step that lost a race to another request or a sweep matches no row and is refused with 409.

The worker runs two sweeps, `expire_due_wishes` and `auto_complete_due_wishes` (signature
`fn(session, now, settings)`, one batch in the worker's transaction);
`expire_unclaimed_wishes(db, settings)` and `auto_complete_fulfilled_wishes(db, settings)`
run them batch after batch until nothing is due.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.attachments import service as attachment_service
from app.attachments.models import Attachment
from app.attachments.schemas import AttachmentPublic
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import AppError, Conflict, Forbidden, InvalidTransition, ValidationFailed
from app.core.masking import mask_address, mask_name, mask_phone
from app.core.pagination import COUNT_LOOKAHEAD, PageParams, capped_count
from app.core.security import Principal, Role
from app.identity.models import Deputy, User
from app.integrations import webhooks
from app.notify import service as notify_service
from app.org.models import Region, Station
from app.wechat.gateway import WeChatGateway
from app.wechat.types import WeChatError
from app.wishes import flows
from app.wishes.flows import Action, Party, Step
from app.wishes.models import ContentCheck, Wish, WishClaimLock, WishEvent, WishStatus
from app.wishes.schemas import (
    Beneficiary,
    ClaimingDeputy,
    WishCreate,
    WishDetail,
    WishEventPublic,
    WishPublic,
)

logger = logging.getLogger("app.wishes")

S = WishStatus
OWNER_TYPE_WISH = "wish"
OWNER_TYPE_FULFILMENT = "wish_fulfilment"
PUBLIC_STATUSES = frozenset({S.published})
# Statuses a deputy may have seen on the wall: claiming one answers 409, not 404.
ONCE_PUBLIC = frozenset({S.published, S.claimed, S.fulfilled, S.completed, S.expired})


class ContentRejected(AppError):
    status, code, detail = 422, "content_rejected", "内容未通过安全检测，请修改后重新提交"


class WishAlreadyClaimed(Conflict):
    code, detail = "wish_already_claimed", "该心愿已被其他代表认领"


class ClaimLimitReached(Conflict):
    code, detail = "claim_limit_reached", "您认领的心愿尚未完成的已达上限，请先完成已认领的心愿"


# ---------------------------------------------------------------------------------------------
# Who is looking, and what they may see


@dataclass(slots=True)
class WishContext:
    """A wish with what every answer about it needs, and how the caller relates to it."""

    wish: Wish
    region_path: str
    region_name: str | None
    station_name: str | None
    deputy_name: str | None
    parties: frozenset[Party]
    # The calling deputy's standing and name, read with the wish when about to claim it.
    caller_deputy_active: bool | None = None
    caller_deputy_name: str | None = None

    @property
    def privileged(self) -> bool:
        """Owner, claiming deputy or staff in scope: sees private fields and the timeline."""
        return bool(self.parties & {Party.owner, Party.claimer, Party.staff})

    @property
    def visible(self) -> bool:
        return self.privileged or self.wish.status in PUBLIC_STATUSES


async def staff_scope_path(session: AsyncSession, principal: Principal | None) -> str | None:
    """The region path prefix a staff caller covers ("/" for admins); None for others."""
    if principal is None or not principal.is_staff:
        return None
    if principal.role == Role.admin:
        return "/"
    if principal.region_id is None:
        return None
    path = await session.scalar(select(Region.path).where(Region.id == principal.region_id))
    return path


def parties_of(
    principal: Principal | None, wish: Wish, region_path: str, scope_path: str | None
) -> frozenset[Party]:
    if principal is None:
        return frozenset()
    parties: set[Party] = set()
    if principal.user_id == wish.resident_id:
        parties.add(Party.owner)
    if principal.role == Role.deputy and principal.deputy_id is not None:
        parties.add(Party.deputy)
        if wish.claimed_by_deputy_id == principal.deputy_id:
            parties.add(Party.claimer)
    if scope_path is not None and region_path.startswith(scope_path):
        parties.add(Party.staff)
    return frozenset(parties)


def _context_query() -> Select[Any]:
    return (
        select(Wish, Region.path, Region.name, Station.name, Deputy.name)
        .join(Region, Region.id == Wish.region_id)
        .outerjoin(Station, Station.id == Wish.station_id)
        .outerjoin(Deputy, Deputy.id == Wish.claimed_by_deputy_id)
    )


async def load_context(
    session: AsyncSession,
    wish_id: int,
    principal: Principal | None,
    *,
    caller_deputy: bool = False,
) -> WishContext | None:
    """The wish and what its answers need; with `caller_deputy`, the calling deputy's
    standing and name too, in the same query."""
    statement = _context_query().where(Wish.id == wish_id)
    deputy_id = principal.deputy_id if principal is not None else None
    if caller_deputy and deputy_id is not None:
        statement = statement.add_columns(
            select(Deputy.is_active).where(Deputy.id == deputy_id).scalar_subquery(),
            select(Deputy.name).where(Deputy.id == deputy_id).scalar_subquery(),
        )
    row = (await session.execute(statement.execution_options(populate_existing=True))).first()
    if row is None:
        return None
    wish, region_path, region_name, station_name, deputy_name, *caller = row
    scope = await staff_scope_path(session, principal)
    return WishContext(
        wish=wish,
        region_path=region_path,
        region_name=region_name,
        station_name=station_name,
        deputy_name=deputy_name,
        parties=parties_of(principal, wish, region_path, scope),
        caller_deputy_active=caller[0] if caller else None,
        caller_deputy_name=caller[1] if caller else None,
    )


def advanced(ctx: WishContext, wish: Wish, principal: Principal) -> WishContext:
    """The context after a step the caller took: the updated wish, the claiming deputy's
    name, the caller's parties to it now; no query (the region, the station and the caller's
    staff scope do not change with a step)."""
    if wish.claimed_by_deputy_id is None:
        deputy_name = None
    elif wish.claimed_by_deputy_id == principal.deputy_id and ctx.caller_deputy_name:
        deputy_name = ctx.caller_deputy_name
    else:
        deputy_name = ctx.deputy_name
    scope = "" if Party.staff in ctx.parties else None
    return WishContext(
        wish=wish,
        region_path=ctx.region_path,
        region_name=ctx.region_name,
        station_name=ctx.station_name,
        deputy_name=deputy_name,
        parties=parties_of(principal, wish, ctx.region_path, scope),
    )


async def can_view_wish(session: AsyncSession, principal: Principal | None, wish_id: int) -> bool:
    ctx = await load_context(session, wish_id, principal)
    return ctx is not None and ctx.visible


attachment_service.register_visibility(OWNER_TYPE_WISH, can_view_wish)
attachment_service.register_visibility(OWNER_TYPE_FULFILMENT, can_view_wish)


# ---------------------------------------------------------------------------------------------
# Answers


def _beneficiary(wish: Wish, full: bool) -> Beneficiary:
    if full:
        return Beneficiary(
            name=wish.beneficiary_name,
            phone=wish.beneficiary_phone,
            address=wish.beneficiary_address,
            description=wish.beneficiary_description,
            masked=False,
        )
    return Beneficiary(
        name=mask_name(wish.beneficiary_name),
        phone=mask_phone(wish.beneficiary_phone),
        address=mask_address(wish.beneficiary_address),
        description=None,
        masked=True,
    )


def to_public(
    ctx: WishContext,
    photos: list[Attachment],
    fulfilment_photos: list[Attachment],
    *,
    detail: type[WishPublic] = WishPublic,
    **extra: Any,
) -> Any:
    wish = ctx.wish
    assert wish.id is not None
    is_staff = Party.staff in ctx.parties
    shows_reason = bool(ctx.parties & {Party.owner, Party.staff})
    return detail(
        id=wish.id,
        status=wish.status,
        status_text=flows.STATUS_TEXT[WishStatus(wish.status)],
        title=wish.title,
        content=wish.content,
        beneficiary=_beneficiary(wish, ctx.privileged),
        region_id=wish.region_id,
        region_name=ctx.region_name,
        station_id=wish.station_id,
        station_name=ctx.station_name,
        claimed_by=(
            ClaimingDeputy(deputy_id=wish.claimed_by_deputy_id, name=ctx.deputy_name)
            if wish.claimed_by_deputy_id is not None
            else None
        ),
        reject_reason=wish.reject_reason if shows_reason else None,
        fulfil_note=wish.fulfil_note,
        thanks=wish.thanks,
        rating=wish.rating,
        content_check=wish.content_check if is_staff else None,
        needs_attention=(wish.content_check != ContentCheck.passed) if is_staff else None,
        photos=[AttachmentPublic.of(a) for a in photos],
        fulfilment_photos=[AttachmentPublic.of(a) for a in fulfilment_photos],
        actions=[a.value for a in flows.allowed_actions(WishStatus(wish.status), ctx.parties)],
        version=wish.version,
        created_at=wish.created_at,
        published_at=wish.published_at,
        claimed_at=wish.claimed_at,
        fulfilled_at=wish.fulfilled_at,
        completed_at=wish.completed_at,
        **extra,
    )


async def timeline(session: AsyncSession, wish_id: int) -> list[WishEventPublic]:
    rows = await session.execute(
        select(WishEvent).where(WishEvent.wish_id == wish_id).order_by(WishEvent.id)
    )
    return [
        WishEventPublic(
            action=e.action,
            label=flows.TRANSITIONS[Action(e.action)].label,
            from_status=e.from_status,
            to_status=e.to_status,
            actor_id=e.actor_id,
            actor_role=e.actor_role,
            note=e.note,
            created_at=e.created_at,
        )
        for e in rows.scalars()
    ]


async def _photos(
    session: AsyncSession, wish_ids: list[int]
) -> tuple[dict[int, list[Attachment]], dict[int, list[Attachment]]]:
    """The wishes' own photos and their fulfilment photos, in one query."""
    photos: dict[int, list[Attachment]] = {i: [] for i in wish_ids}
    done: dict[int, list[Attachment]] = {i: [] for i in wish_ids}
    if not wish_ids:
        return photos, done
    rows = await session.execute(
        select(Attachment)
        .where(
            col(Attachment.owner_type).in_((OWNER_TYPE_WISH, OWNER_TYPE_FULFILMENT)),
            col(Attachment.owner_id).in_(wish_ids),
        )
        .order_by(col(Attachment.id))
    )
    for attachment in rows.scalars():
        assert attachment.owner_id is not None
        kind = photos if attachment.owner_type == OWNER_TYPE_WISH else done
        kind[attachment.owner_id].append(attachment)
    return photos, done


async def to_detail(session: AsyncSession, ctx: WishContext) -> WishDetail:
    assert ctx.wish.id is not None
    photos, done = await _photos(session, [ctx.wish.id])
    events = await timeline(session, ctx.wish.id) if ctx.privileged else None
    result: WishDetail = to_public(
        ctx, photos[ctx.wish.id], done[ctx.wish.id], detail=WishDetail, timeline=events
    )
    return result


# ---------------------------------------------------------------------------------------------
# Lists


@dataclass(slots=True)
class WishFilters:
    mine: bool = False
    station_id: int | None = None
    region_id: int | None = None
    status: WishStatus | None = None
    needs_attention: bool | None = None


async def list_wishes(
    session: AsyncSession, principal: Principal | None, filters: WishFilters, page: PageParams
) -> tuple[list[WishPublic], int, bool]:
    """The public wall (published only, newest first), one's own (`mine`), or, for staff,
    everything in their region subtree."""
    scope = await staff_scope_path(session, principal)
    conditions: list[Any] = []
    if filters.mine:
        assert principal is not None
        mine: list[Any] = [Wish.resident_id == principal.user_id]
        if principal.deputy_id is not None and principal.role == Role.deputy:
            mine.append(Wish.claimed_by_deputy_id == principal.deputy_id)
        conditions.append(or_(*mine))
        order: tuple[Any, ...] = (col(Wish.created_at).desc(), col(Wish.id).desc())
    elif scope is not None:
        conditions.append(Region.path.startswith(scope))
        order = (col(Wish.created_at).desc(), col(Wish.id).desc())
    else:
        conditions.append(Wish.status == S.published)
        order = (col(Wish.published_at).desc(), col(Wish.id).desc())
    if filters.status is not None:
        conditions.append(Wish.status == filters.status)
    if filters.station_id is not None:
        conditions.append(Wish.station_id == filters.station_id)
    if filters.region_id is not None:
        under = await session.scalar(select(Region.path).where(Region.id == filters.region_id))
        if under is None:
            return [], 0, False
        conditions.append(Region.path.startswith(under))
    if filters.needs_attention is not None and scope is not None:
        flagged = Wish.content_check != ContentCheck.passed
        conditions.append(flagged if filters.needs_attention else ~flagged)

    where = and_(*conditions)
    # One query: the matching wishes are picked in order up to `COUNT_LOOKAHEAD` past the
    # page, the page is cut from them and carries how many were picked (a window count), so
    # the total costs no second query and stays bounded however many wishes match. Only a
    # page past the end, which has no row to carry it, counts on its own.
    cap = page.offset + page.limit + COUNT_LOOKAHEAD
    picked = (
        select(Wish.id)
        .join(Region, Region.id == Wish.region_id)  # type: ignore[arg-type]
        .where(where)
        .order_by(*order)
        .limit(cap + 1)
        .subquery("picked")
    )
    rows = (
        await session.execute(
            _context_query()
            .join(picked, picked.c.id == Wish.id)
            .add_columns(func.count().over())
            .order_by(*order)
            .limit(page.limit)
            .offset(page.offset)
        )
    ).all()
    if rows:
        counted = int(rows[0][-1])
        total, capped = (cap, True) if counted > cap else (counted, False)
    elif page.offset:
        total, capped = await capped_count(
            session, select(Wish.id).join(Region, Region.id == Wish.region_id).where(where), page
        )
    else:
        total, capped = 0, False
    photos, done = await _photos(session, [row[0].id for row in rows])
    items = []
    for wish, region_path, region_name, station_name, deputy_name, _total in rows:
        ctx = WishContext(
            wish=wish,
            region_path=region_path,
            region_name=region_name,
            station_name=station_name,
            deputy_name=deputy_name,
            parties=parties_of(principal, wish, region_path, scope),
        )
        items.append(to_public(ctx, photos[wish.id], done[wish.id]))
    return items, total, capped


# ---------------------------------------------------------------------------------------------
# Applying a step


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int | None
    role: str

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.user_id, principal.role.value)


SYSTEM = Actor(None, "system")


async def _record(
    session: AsyncSession,
    wish: Wish,
    action: Action,
    from_status: WishStatus | None,
    actor: Actor,
    note: str | None,
) -> WishEvent:
    event = WishEvent(
        wish_id=wish.id or 0,
        action=action.value,
        from_status=from_status.value if from_status else None,
        to_status=flows.TRANSITIONS[action].target.value,
        actor_id=actor.user_id,
        actor_role=actor.role,
        note=note,
        created_at=utcnow(),
    )
    session.add(event)
    await session.flush()
    if event.to_status in _WEBHOOK_STATUSES:
        # The integrators' webhooks hear of it in the same transaction.
        await webhooks.publish(
            session,
            f"wish.{event.to_status}",
            {
                "wish_id": wish.id,
                "title": wish.title,
                "region_id": wish.region_id,
                "station_id": wish.station_id,
                "action": event.action,
                "from_status": event.from_status,
                "status": event.to_status,
            },
            region_id=wish.region_id,
            occurred_at=event.created_at,
        )
    return event


_WEBHOOK_STATUSES = frozenset({"published", "claimed", "fulfilled", "completed"})


async def _apply(
    session: AsyncSession,
    wish_id: int,
    action: Action,
    actor: Actor,
    from_status: WishStatus,
    *,
    note: str | None = None,
    values: dict[str, Any] | None = None,
    where: tuple[ColumnElement[bool], ...] = (),
    extra: dict[str, Any] | None = None,
) -> Wish | None:
    """Take one step with a conditional UPDATE on the status the caller saw; answers the
    updated wish, or None when the wish had moved on (another request or a sweep got there
    first)."""
    transition = flows.TRANSITIONS[action]
    assert from_status in transition.sources
    wish = (
        await session.execute(
            update(Wish)
            .where(col(Wish.id) == wish_id, col(Wish.status) == from_status, *where)
            .values(
                status=transition.target,
                version=Wish.version + 1,
                updated_at=utcnow(),
                **(values or {}),
            )
            .returning(Wish),
            execution_options={"synchronize_session": False, "populate_existing": True},
        )
    ).scalar_one_or_none()
    if wish is None:
        return None
    event = await _record(session, wish, action, from_status, actor, note)
    await flows.run_hooks(
        Step(
            session=session,
            transition=transition,
            wish=wish,
            event=event,
            actor_id=actor.user_id,
            note=note,
            extra=extra or {},
        )
    )
    return wish


async def _refused(session: AsyncSession, wish_id: int, action: Action) -> AppError:
    """Why a conditional UPDATE matched nothing: the wish moved on meanwhile."""
    status = await session.scalar(
        select(Wish.status).where(Wish.id == wish_id).execution_options(populate_existing=True)
    )
    if action == Action.claim and status in flows.TAKEN:
        return WishAlreadyClaimed()
    current = WishStatus(status) if status else None
    return InvalidTransition(
        f"心愿状态已变为「{flows.STATUS_TEXT[current]}」，请刷新后重试"
        if current
        else "心愿状态已变化，请刷新后重试",
        action=action.value,
    )


async def _step(
    session: AsyncSession,
    ctx: WishContext,
    action: Action,
    principal: Principal,
    **kwargs: Any,
) -> Wish:
    status = WishStatus(ctx.wish.status)
    flows.check(action, status, ctx.parties)
    assert ctx.wish.id is not None
    wish = await _apply(session, ctx.wish.id, action, Actor.of(principal), status, **kwargs)
    if wish is None:
        raise await _refused(session, ctx.wish.id, action)
    return wish


# ---------------------------------------------------------------------------------------------
# Posting


async def _resolve_place(session: AsyncSession, data: WishCreate) -> tuple[int, int | None]:
    """(region_id, station_id) of the wish; a named station decides the region."""
    if data.station_id is not None:
        station = await session.get(Station, data.station_id)
        if station is None or not station.is_active:
            raise ValidationFailed(
                "所选联络站不存在",
                errors=[
                    {
                        "field": "body.station_id",
                        "message": "station not found",
                        "type": "not_found",
                    }
                ],
            )
        return station.region_id, station.id
    region = await session.get(Region, data.region_id)
    if region is None:
        raise ValidationFailed(
            "所选社区不存在",
            errors=[
                {"field": "body.region_id", "message": "region not found", "type": "not_found"}
            ],
        )
    assert region.id is not None
    return region.id, None


async def _content_check(
    gateway: WeChatGateway, settings: Settings, openid: str | None, data: WishCreate
) -> tuple[ContentCheck, str | None]:
    """msgSecCheck v2 over everything the wish says. Scene 3 (论坛): a post shown publicly.

    risky → refused; review → kept for staff; WeChat unavailable → kept as unchecked (staff
    review every wish anyway, so nothing unchecked is ever published unseen).
    """
    if not openid:
        return ContentCheck.unchecked, None
    text = "\n".join(
        part
        for part in (data.title, data.content, data.beneficiary.description)
        if part is not None
    )
    try:
        result = await gateway.msg_sec_check(
            openid=openid, content=text, scene=settings.wish_sec_check_scene, title=data.title
        )
    except WeChatError as exc:
        logger.warning("wish content check did not run: %s", type(exc).__name__)
        return ContentCheck.unchecked, None
    if result.suggest == "risky":
        raise ContentRejected()
    if result.suggest == "review":
        return ContentCheck.review, result.trace_id
    return ContentCheck.passed, result.trace_id


async def submit_wish(
    db: Database,
    gateway: WeChatGateway,
    settings: Settings,
    principal: Principal,
    data: WishCreate,
) -> int:
    """Post a wish (`pending_review`); answers its id.

    Three short transactions rather than the request's one: the checks read, then WeChat is
    asked with no transaction open (on SQLite a write transaction would hold the process's
    write lock for the whole WeChat round trip), then the wish, its photos and its first
    timeline entry are written together.
    """
    if len(data.attachment_ids) > settings.wish_max_attachments:
        raise ValidationFailed(f"最多上传 {settings.wish_max_attachments} 张图片")
    async with db.transaction(write=False) as session:
        openid = await session.scalar(select(User.openid).where(User.id == principal.user_id))
        region_id, station_id = await _resolve_place(session, data)
    check, trace_id = await _content_check(gateway, settings, openid, data)
    async with db.transaction() as session:
        wish = Wish(
            resident_id=principal.user_id,
            title=data.title,
            content=data.content,
            beneficiary_name=data.beneficiary.name,
            beneficiary_phone=data.beneficiary.phone,
            beneficiary_address=data.beneficiary.address,
            beneficiary_description=data.beneficiary.description,
            region_id=region_id,
            station_id=station_id,
            status=S.pending_review,
            content_check=check,
            content_check_trace_id=trace_id,
        )
        session.add(wish)
        await session.flush()
        assert wish.id is not None
        await attachment_service.claim_attachments(
            session, data.attachment_ids, principal.user_id, OWNER_TYPE_WISH, wish.id
        )
        note = {
            ContentCheck.passed: None,
            ContentCheck.review: "内容安全检测建议人工复核",
            ContentCheck.unchecked: "内容安全检测未能执行，待人工审核",
        }[check]
        await _record(session, wish, Action.submit, None, Actor.of(principal), note)
        return wish.id


# ---------------------------------------------------------------------------------------------
# Review, claim, release, fulfil, confirm, withdraw


async def review_wish(
    session: AsyncSession,
    ctx: WishContext,
    principal: Principal,
    *,
    approve: bool,
    reason: str | None,
) -> Wish:
    now = utcnow()
    if approve:
        return await _step(
            session,
            ctx,
            Action.approve,
            principal,
            note=reason,
            values={"reviewed_by_id": principal.user_id, "reviewed_at": now, "published_at": now},
        )
    return await _step(
        session,
        ctx,
        Action.reject,
        principal,
        note=reason,
        values={"reviewed_by_id": principal.user_id, "reviewed_at": now, "reject_reason": reason},
    )


async def _lock_deputy_claims(session: AsyncSession, deputy_id: int) -> None:
    """Take this deputy's claim lock row (made on first use) until the transaction ends: one
    upsert, whose row lock holds until commit."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(WishClaimLock).values(deputy_id=deputy_id, claims=1, updated_at=utcnow())
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["deputy_id"],
            set_={"claims": WishClaimLock.claims + 1, "updated_at": statement.excluded.updated_at},
        )
    )


def _open_claims(deputy_id: int) -> Any:
    return (
        select(func.count())
        .select_from(Wish)
        .where(Wish.claimed_by_deputy_id == deputy_id, Wish.status == S.claimed)
        .scalar_subquery()
    )


async def claim_wish(
    session: AsyncSession, settings: Settings, ctx: WishContext, principal: Principal
) -> Wish:
    """A deputy takes on a published wish (认领): exactly one deputy wins.

    The winner is whoever's `UPDATE wish SET status='claimed' WHERE id=:id AND
    status='published'` matches the row; on PostgreSQL the others wait for its row lock, see
    the new status and match nothing (409 `wish_already_claimed`).

    The open-claims limit is a condition of that UPDATE, counted while holding the deputy's
    `wish_claim_lock` row (taken by the statement before, so the UPDATE's snapshot sees every
    claim of the deputy that committed): two claims by one deputy at once are counted one
    after the other and cannot both pass. The deputy's standing and name come with the wish
    (`claimable_wish`); the whole claim is four statements and the answer's two reads.
    """
    if ctx.wish.status in flows.TAKEN:
        raise WishAlreadyClaimed()
    flows.check(Action.claim, WishStatus(ctx.wish.status), ctx.parties)
    assert principal.deputy_id is not None and ctx.wish.id is not None
    if not ctx.caller_deputy_active:
        raise Forbidden("代表身份已停用，不能认领心愿")
    await _lock_deputy_claims(session, principal.deputy_id)
    limit = settings.wish_max_open_claims
    wish = await _apply(
        session,
        ctx.wish.id,
        Action.claim,
        Actor.of(principal),
        S.published,
        values={
            "claimed_by_deputy_id": principal.deputy_id,
            "claimed_by_user_id": principal.user_id,
            "claimed_at": utcnow(),
        },
        where=(_open_claims(principal.deputy_id) < limit,),
        extra={"deputy_name": ctx.caller_deputy_name},
    )
    if wish is None:
        open_claims = await session.scalar(select(_open_claims(principal.deputy_id)))
        if (open_claims or 0) >= limit:
            raise ClaimLimitReached(limit=limit)
        raise await _refused(session, ctx.wish.id, Action.claim)
    return wish


def _as_claimer(principal: Principal) -> tuple[ColumnElement[bool], ...]:
    return (col(Wish.claimed_by_deputy_id) == principal.deputy_id,)


async def release_wish(
    session: AsyncSession, ctx: WishContext, principal: Principal, *, reason: str
) -> Wish:
    return await _step(
        session,
        ctx,
        Action.release,
        principal,
        note=reason,
        where=_as_claimer(principal),
        values={
            "claimed_by_deputy_id": None,
            "claimed_by_user_id": None,
            "claimed_at": None,
            "published_at": utcnow(),
        },
    )


async def fulfil_wish(
    session: AsyncSession,
    settings: Settings,
    ctx: WishContext,
    principal: Principal,
    *,
    note: str,
    attachment_ids: list[int],
) -> Wish:
    if len(attachment_ids) > settings.wish_max_attachments:
        raise ValidationFailed(f"最多上传 {settings.wish_max_attachments} 张图片")
    wish = await _step(
        session,
        ctx,
        Action.fulfil,
        principal,
        note=note,
        where=_as_claimer(principal),
        values={"fulfilled_at": utcnow(), "fulfil_note": note},
    )
    assert wish.id is not None
    await attachment_service.claim_attachments(
        session, attachment_ids, principal.user_id, OWNER_TYPE_FULFILMENT, wish.id
    )
    return wish


async def confirm_wish(
    session: AsyncSession,
    ctx: WishContext,
    principal: Principal,
    *,
    thanks: str | None,
    rating: int | None,
) -> Wish:
    return await _step(
        session,
        ctx,
        Action.confirm,
        principal,
        note=thanks,
        where=(Wish.resident_id == principal.user_id,),
        values={"completed_at": utcnow(), "thanks": thanks, "rating": rating},
    )


async def withdraw_wish(
    session: AsyncSession, ctx: WishContext, principal: Principal, *, reason: str | None
) -> Wish:
    return await _step(
        session,
        ctx,
        Action.withdraw,
        principal,
        note=reason,
        where=(Wish.resident_id == principal.user_id,),
    )


# ---------------------------------------------------------------------------------------------
# Sweeps (called by the worker)


async def _sweep_batch(
    session: AsyncSession,
    action: Action,
    due: ColumnElement[bool],
    values: dict[str, Any],
    limit: int,
) -> tuple[int, int]:
    """Take `action` on up to `limit` wishes matching `due`; answers (found, moved).

    Each wish moves by its own conditional UPDATE (re-checking status and `due`), so two
    workers sweeping at once, or a resident confirming at the same moment, never apply a step
    twice; a second run finds nothing to do.
    """
    source = next(iter(flows.TRANSITIONS[action].sources))
    ids = list(
        (
            await session.execute(
                select(Wish.id).where(Wish.status == source, due).order_by(Wish.id).limit(limit)
            )
        ).scalars()
    )
    moved = 0
    for wish_id in ids:
        wish = await _apply(session, wish_id, action, SYSTEM, source, where=(due,), values=values)
        moved += wish is not None
    return len(ids), moved


def _expiry(
    now: datetime, settings: Settings
) -> tuple[Action, ColumnElement[bool], dict[str, Any]]:
    cutoff = now - timedelta(days=settings.wish_expire_days)
    return Action.expire, col(Wish.published_at) <= cutoff, {}


def _auto_completion(
    now: datetime, settings: Settings
) -> tuple[Action, ColumnElement[bool], dict[str, Any]]:
    cutoff = now - timedelta(days=settings.wish_auto_complete_days)
    return Action.auto_complete, col(Wish.fulfilled_at) <= cutoff, {"completed_at": now}


async def expire_due_wishes(
    session: AsyncSession, now: datetime, settings: Settings, *, limit: int = 500
) -> int:
    """Sweep (worker signature `fn(session, now, settings)`): published wishes nobody claimed
    within `WISH_EXPIRE_DAYS` of publication (or of the last release) become `expired`.
    Handles up to `limit` per call; answers how many expired."""
    return (await _sweep_batch(session, *_expiry(now, settings), limit))[1]


async def auto_complete_due_wishes(
    session: AsyncSession, now: datetime, settings: Settings, *, limit: int = 500
) -> int:
    """Sweep (worker signature): fulfilled wishes the resident has not confirmed within
    `WISH_AUTO_COMPLETE_DAYS` become `completed`. Answers how many completed."""
    return (await _sweep_batch(session, *_auto_completion(now, settings), limit))[1]


SweepRule = Callable[[datetime, Settings], tuple[Action, ColumnElement[bool], dict[str, Any]]]


async def _sweep_all(db: Database, rule: SweepRule, settings: Settings, batch_size: int) -> int:
    total = 0
    while True:
        async with db.transaction() as session:
            action, due, values = rule(utcnow(), settings)
            found, moved = await _sweep_batch(session, action, due, values, batch_size)
        total += moved
        if found < batch_size:
            return total


async def expire_unclaimed_wishes(
    db: Database, settings: Settings, *, batch_size: int = 200
) -> int:
    """`expire_due_wishes` until nothing is due, one transaction per batch; answers how
    many expired."""
    return await _sweep_all(db, _expiry, settings, batch_size)


async def auto_complete_fulfilled_wishes(
    db: Database, settings: Settings, *, batch_size: int = 200
) -> int:
    """`auto_complete_due_wishes` until nothing is due, one transaction per batch; answers
    how many completed."""
    return await _sweep_all(db, _auto_completion, settings, batch_size)


# ---------------------------------------------------------------------------------------------
# Notifications (hooks on the transition table)


def _page(wish: Wish) -> str:
    return f"pages/wish/detail?id={wish.id}"


def _params(step: Step, **more: Any) -> dict[str, Any]:
    wish = step.wish
    return {
        "wish_id": wish.id,
        "title": wish.title,
        "status": wish.status,
        "status_text": flows.STATUS_TEXT[WishStatus(wish.status)],
        "time": step.event.created_at.isoformat(),
        "note": step.note,
        **more,
    }


async def _notify(
    step: Step, recipient_id: int | None, event: str, title: str, body: str, **params: Any
) -> None:
    if recipient_id is None:
        return
    await notify_service.enqueue(
        step.session,
        recipient_id=recipient_id,
        event=event,
        dedupe_key=f"wish:{step.wish.id}:{event}:{step.wish.version}",
        title=title,
        body=body,
        page=_page(step.wish),
        params=_params(step, **params),
    )


@flows.on(Action.approve)
async def _notify_approved(step: Step) -> None:
    await _notify(
        step,
        step.wish.resident_id,
        "wish.published",
        "心愿已通过审核",
        f"您的心愿「{step.wish.title}」已通过审核并发布，等待代表认领。",
    )


@flows.on(Action.reject)
async def _notify_rejected(step: Step) -> None:
    await _notify(
        step,
        step.wish.resident_id,
        "wish.rejected",
        "心愿未通过审核",
        f"您的心愿「{step.wish.title}」未通过审核：{step.note}",
        reason=step.note,
    )


@flows.on(Action.claim)
async def _notify_claimed(step: Step) -> None:
    name = step.extra.get("deputy_name")
    await _notify(
        step,
        step.wish.resident_id,
        "wish.claimed",
        "心愿已被认领",
        f"您的心愿「{step.wish.title}」已由{name or ''}代表认领。",
        deputy_name=name,
    )


@flows.on(Action.release)
async def _notify_released(step: Step) -> None:
    await _notify(
        step,
        step.wish.resident_id,
        "wish.released",
        "心愿重新等待认领",
        f"认领您心愿「{step.wish.title}」的代表已放弃认领，心愿重新发布等待其他代表认领。",
    )


@flows.on(Action.fulfil)
async def _notify_fulfilled(step: Step) -> None:
    await _notify(
        step,
        step.wish.resident_id,
        "wish.fulfilled",
        "心愿已实现",
        f"您的心愿「{step.wish.title}」已实现，请确认并致谢。",
    )


@flows.on(Action.confirm)
async def _notify_thanked(step: Step) -> None:
    await _notify(
        step,
        step.wish.claimed_by_user_id,
        "wish.completed",
        "群众已确认心愿完成",
        f"心愿「{step.wish.title}」的群众已确认完成" + (f"：{step.note}" if step.note else "。"),
        thanks=step.wish.thanks,
        rating=step.wish.rating,
    )


@flows.on(Action.auto_complete)
async def _notify_auto_completed(step: Step) -> None:
    for recipient in (step.wish.resident_id, step.wish.claimed_by_user_id):
        await _notify(
            step,
            recipient,
            "wish.completed",
            "心愿已完成",
            f"心愿「{step.wish.title}」实现后超过确认期限，已自动完成。",
        )


@flows.on(Action.expire)
async def _notify_expired(step: Step) -> None:
    await _notify(
        step,
        step.wish.resident_id,
        "wish.expired",
        "心愿已过期",
        f"您的心愿「{step.wish.title}」发布后无人认领，已过期。可重新提交。",
    )
