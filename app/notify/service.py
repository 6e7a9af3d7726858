"""Writing notifications: the only entry point other domains call.

`enqueue` adds an outbox row and an inbox message inside the caller's transaction, so a
state change and the news of it commit together or not at all. Delivery happens later, in
the worker, after commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.notify.models import InboxMessage, Notification


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
    same key for the same recipient is ignored, so a retried transition never sends twice.
    `params` are the event's values (case number, title, time, ...) from which the
    subscribe-message fields are rendered at delivery. Returns the outbox row, or None when
    the same message was already queued.
    """
    existing = await session.execute(
        select(Notification.id).where(
            Notification.recipient_id == recipient_id, Notification.dedupe_key == dedupe_key
        )
    )
    if existing.first() is not None:
        return None
    notification = Notification(
        recipient_id=recipient_id,
        event=event,
        dedupe_key=dedupe_key,
        params={**(params or {}), "page": page},
    )
    session.add(notification)
    await session.flush()
    session.add(
        InboxMessage(
            user_id=recipient_id,
            notification_id=notification.id,
            event=event,
            title=title[:100],
            body=body[:500],
            page=page,
        )
    )
    await session.flush()
    return notification
