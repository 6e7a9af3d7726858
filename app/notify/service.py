"""Writing notifications, the inbox, subscriptions and the staff view of the outbox.

`enqueue` is the only entry point other domains call: it adds an outbox row and an inbox
message inside the caller's transaction, so a state change and the news of it commit
together or not at all. Delivery happens later, in the worker, after commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, false, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.clock import utcnow
from app.core.errors import InvalidTransition, NotFound
from app.core.pagination import PageParams
from app.core.security import Principal, Role
from app.identity.models import User
from app.notify.models import InboxMessage, Notification, NotificationStatus, Subscription
from app.org.models import Region

RETRYABLE_BY_STAFF = (NotificationStatus.failed, NotificationStatus.skipped)

# What wx.requestSubscribeMessage answers for a template the user allowed.
ACCEPT = "accept"


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


@dataclass(frozen=True, slots=True)
class Message:
    """One message to queue: who hears about which occurrence of an event (see `enqueue`)."""

    recipient_id: int
    event: str
    dedupe_key: str
    title: str
    body: str
    page: str | None = None
    params: dict[str, Any] | None = None


async def enqueue(
    session: AsyncSession,
    *,
    recipient_id: int,
    event: str,
    dedupe_key: str,
    title: str,
    body: str,
    page: str | None = None,
    params: dict[str, Any] | None = None,
) -> Notification | None:
    """Queue a message for `recipient_id` about `event`.

    `dedupe_key` names the occurrence (e.g. "case:12:fed_back:1"); a second call with the
    same key for the same recipient is ignored, so a retried transition never sends twice
    (also when two transactions race: the unique key settles it). `params` are the event's
    values (case number, title, time, ...) from which the subscribe-message fields are
    rendered at delivery. Returns the outbox row, or None when the same message was
    already queued.
    """
    queued = await enqueue_many(
        session, [Message(recipient_id, event, dedupe_key, title, body, page, params)]
    )
    return queued[0] if queued else None


async def enqueue_many(session: AsyncSession, messages: Sequence[Message]) -> list[Notification]:
    """Queue several messages at once: the outbox rows and their inbox copies in one
    statement on PostgreSQL (a data-modifying CTE), two on SQLite. Answers the rows queued
    (those whose dedupe key was new), built from what the INSERT returned."""
    if not messages:
        return []
    now = utcnow()
    outbox = Notification.__table__  # type: ignore[attr-defined]
    inbox = InboxMessage.__table__  # type: ignore[attr-defined]
    values = [
        {
            "recipient_id": m.recipient_id,
            "event": m.event,
            "dedupe_key": m.dedupe_key,
            "title": m.title[:100],
            "body": m.body[:500],
            "page": m.page,
            "params": dict(m.params or {}),
            "status": NotificationStatus.pending.value,
            "attempts": 0,
            "next_attempt_at": now,
            "subscription_spent": False,
            "created_at": now,
        }
        for m in {(m.recipient_id, m.dedupe_key): m for m in messages}.values()
    ]
    queued = (
        _insert(session, outbox)
        .values(values)
        .on_conflict_do_nothing(index_elements=["recipient_id", "dedupe_key"])
        .returning(*outbox.c)
    )
    copy_columns = ["user_id", "notification_id", "event", "title", "body", "page", "created_at"]
    if session.get_bind().dialect.name == "postgresql":
        rows = queued.cte("queued")
        copies = (
            insert(inbox)
            .from_select(
                copy_columns,
                select(
                    rows.c.recipient_id,
                    rows.c.id,
                    rows.c.event,
                    rows.c.title,
                    rows.c.body,
                    rows.c.page,
                    rows.c.created_at,
                ),
            )
            .cte("copies")
        )
        result = (await session.execute(select(rows).add_cte(copies))).all()
    else:
        result = (await session.execute(queued)).all()
        if result:
            await session.execute(
                insert(inbox).values(
                    [
                        dict(
                            zip(
                                copy_columns,
                                (
                                    r.recipient_id,
                                    r.id,
                                    r.event,
                                    r.title,
                                    r.body,
                                    r.page,
                                    r.created_at,
                                ),
                                strict=True,
                            )
                        )
                        for r in result
                    ]
                )
            )
    return [Notification.model_validate(dict(r._mapping)) for r in result]


# --- subscriptions ---------------------------------------------------------------------


async def record_subscriptions(
    session: AsyncSession, user_id: int, results: dict[str, str], known_templates: set[str]
) -> tuple[list[Subscription], list[str]]:
    """Add one accepted message per template the user accepted; remember the last answer.

    Templates this service does not use are ignored (and named in the answer). Rows are
    written in template order, so two concurrent reports of one user never deadlock.
    """
    now = utcnow()
    ignored = sorted(t for t in results if t not in known_templates)
    table = Subscription.__table__  # type: ignore[attr-defined]
    for template_id in sorted(t for t in results if t in known_templates):
        result = results[template_id]
        increment = 1 if result == ACCEPT else 0
        statement = _insert(session, table).values(
            user_id=user_id,
            template_id=template_id,
            accepted_count=increment,
            last_result=result,
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["user_id", "template_id"],
            set_={
                "accepted_count": table.c.accepted_count + increment,
                "last_result": result,
                "updated_at": now,
            },
        )
        await session.execute(statement)
    return await list_subscriptions(session, user_id), ignored


async def list_subscriptions(session: AsyncSession, user_id: int) -> list[Subscription]:
    rows = await session.execute(
        select(Subscription)
        .where(Subscription.user_id == user_id)
        .order_by(Subscription.template_id)
        .execution_options(populate_existing=True)
    )
    return list(rows.scalars().all())


# --- inbox -----------------------------------------------------------------------------


async def list_inbox(
    session: AsyncSession, user_id: int, page: PageParams, *, unread_only: bool = False
) -> tuple[list[InboxMessage], int, int]:
    """A page of the user's inbox, newest first, its total, and the unread count."""
    where = [InboxMessage.user_id == user_id]
    if unread_only:
        where.append(InboxMessage.read_at.is_(None))
    # Both counts in one pass over the user's messages (ix_inbox_message_user_read).
    unread_filter = InboxMessage.read_at.is_(None)  # type: ignore[union-attr]
    total, unread = (
        await session.execute(
            select(
                func.count().filter(unread_filter) if unread_only else func.count(),
                func.count().filter(unread_filter),
            ).where(InboxMessage.user_id == user_id)
        )
    ).one()
    rows = await session.execute(
        select(InboxMessage)
        .where(*where)
        .order_by(col(InboxMessage.created_at).desc(), col(InboxMessage.id).desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows.scalars().all()), total, unread


async def own_message_or_404(session: AsyncSession, user_id: int, message_id: int) -> InboxMessage:
    """The message if it is the user's; another user's message is answered as not found."""
    message = await session.get(InboxMessage, message_id)
    if message is None or message.user_id != user_id:
        raise NotFound("消息不存在", code="not_found")
    return message


async def mark_read(session: AsyncSession, message: InboxMessage) -> InboxMessage:
    if message.read_at is None:
        await session.execute(
            update(InboxMessage)
            .where(InboxMessage.id == message.id, InboxMessage.read_at.is_(None))
            .values(read_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        await session.refresh(message)
    return message


async def mark_all_read(session: AsyncSession, user_id: int) -> int:
    result = await session.execute(
        update(InboxMessage)
        .where(InboxMessage.user_id == user_id, InboxMessage.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- staff view of the outbox ----------------------------------------------------------


async def _scope_condition(session: AsyncSession, principal: Principal) -> Any:
    """Which outbox rows a staff member sees: those of recipients in their region subtree.

    Residents' accounts usually carry no region; their rows are seen by staff of a
    top-level region (the district) and by admins. Admins see everything.
    """
    if principal.role == Role.admin:
        return None
    if principal.region_id is None:
        return false()
    region = await session.get(Region, principal.region_id)
    if region is None:
        return false()
    in_subtree = User.region_id.in_(select(Region.id).where(Region.path.startswith(region.path)))
    if region.parent_id is None:
        return or_(in_subtree, User.region_id.is_(None))
    return in_subtree


async def list_notifications(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    status: NotificationStatus | None = None,
    event: str | None = None,
    recipient_id: int | None = None,
) -> tuple[list[tuple[Notification, User]], int]:
    where: list[Any] = []
    scope = await _scope_condition(session, principal)
    if scope is not None:
        where.append(scope)
    if status is not None:
        where.append(Notification.status == status)
    if event:
        where.append(Notification.event == event)
    if recipient_id is not None:
        where.append(Notification.recipient_id == recipient_id)
    base = select(Notification, User).join(User, User.id == Notification.recipient_id)
    count = (
        select(func.count())
        .select_from(Notification)
        .join(User, User.id == Notification.recipient_id)
    )
    if where:
        base = base.where(and_(*where))
        count = count.where(and_(*where))
    total = (await session.execute(count)).scalar_one()
    rows = await session.execute(
        base.order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return [(n, u) for n, u in rows.all()], total


async def notification_in_scope_or_404(
    session: AsyncSession, principal: Principal, notification_id: int
) -> tuple[Notification, User]:
    statement = (
        select(Notification, User)
        .join(User, User.id == Notification.recipient_id)
        .where(Notification.id == notification_id)
    )
    scope = await _scope_condition(session, principal)
    if scope is not None:
        statement = statement.where(scope)
    row = (await session.execute(statement)).first()
    if row is None:
        raise NotFound("通知不存在", code="not_found")
    return row[0], row[1]


async def retry_notification(session: AsyncSession, notification: Notification) -> Notification:
    """Send a failed or skipped message again: back to `pending`, due now, attempts reset."""
    now = utcnow()
    result = await session.execute(
        update(Notification)
        .where(
            Notification.id == notification.id,
            col(Notification.status).in_([s.value for s in RETRYABLE_BY_STAFF]),
        )
        .values(
            status=NotificationStatus.pending.value,
            attempts=0,
            next_attempt_at=now,
            locked_until=None,
            worker_id=None,
            last_error=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise InvalidTransition("只有发送失败或已跳过的通知可以重新发送")
    await session.refresh(notification)
    return notification
