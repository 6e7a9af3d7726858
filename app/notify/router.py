"""HTTP endpoints of the notify domain: subscriptions, the inbox, the staff outbox view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from app.core.db import SessionDep
from app.core.deps import CurrentPrincipal, SettingsDep, StaffPrincipal
from app.core.errors import problem_responses
from app.core.masking import mask_name
from app.core.pagination import Page, PageDep
from app.core.types import Id
from app.identity.models import User
from app.notify import service
from app.notify.models import InboxMessage, Notification, NotificationStatus
from app.notify.schemas import (
    InboxMessagePublic,
    InboxPage,
    NotificationPublic,
    ReadAllResult,
    SubscriptionPublic,
    SubscriptionReport,
    SubscriptionState,
    inbox_public,
)
from app.notify.templates import TemplateRegistry

router = APIRouter(tags=["notifications"])


def _state(
    subscriptions: list, registry: TemplateRegistry, ignored: list[str]
) -> SubscriptionState:
    return SubscriptionState(
        subscriptions=[
            SubscriptionPublic(
                template_id=s.template_id,
                accepted_count=s.accepted_count,
                last_result=s.last_result,
            )
            for s in subscriptions
        ],
        templates={
            event: spec.template_id
            for event, spec in sorted(registry.specs.items())
            if spec.template_id
        },
        ignored=ignored,
    )


# Subscriptions ---------------------------------------------------------------------------


@router.post(
    "/me/subscriptions",
    response_model=SubscriptionState,
    summary="Report what wx.requestSubscribeMessage answered",
    responses=problem_responses(401, 422),
)
async def report_subscriptions(
    body: SubscriptionReport,
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> SubscriptionState:
    """Each `accept` allows one more subscribe message of that template (they are one-time);
    `reject`, `ban` and `filter` are remembered and allow none. Unknown template ids are
    ignored and listed in `ignored`."""
    registry = TemplateRegistry.from_settings(settings)
    subscriptions, ignored = await service.record_subscriptions(
        session, principal.user_id, body.results, registry.template_ids()
    )
    return _state(subscriptions, registry, ignored)


@router.get(
    "/me/subscriptions",
    response_model=SubscriptionState,
    summary="Subscribe messages the user may still receive, per template",
    responses=problem_responses(401),
)
async def my_subscriptions(
    principal: CurrentPrincipal, session: SessionDep, settings: SettingsDep
) -> SubscriptionState:
    """The remaining accepted count per template, and which template each event uses (so the
    mini-program knows which ids to pass to wx.requestSubscribeMessage)."""
    registry = TemplateRegistry.from_settings(settings)
    return _state(await service.list_subscriptions(session, principal.user_id), registry, [])


# Inbox -----------------------------------------------------------------------------------


async def _own_message(
    message_id: Annotated[Id, Path()], principal: CurrentPrincipal, session: SessionDep
) -> InboxMessage:
    return await service.own_message_or_404(session, principal.user_id, message_id)


OwnMessage = Annotated[InboxMessage, Depends(_own_message)]


@router.get(
    "/me/messages",
    response_model=InboxPage,
    summary="The in-app inbox (站内消息), newest first",
    responses=problem_responses(401),
)
async def my_messages(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    unread: Annotated[bool, Query(description="Only unread messages")] = False,
) -> InboxPage:
    """Every notification lands here, whether or not a subscribe message was sent."""
    items, total, unread_count = await service.list_inbox(
        session, principal.user_id, page, unread_only=unread
    )
    return InboxPage(items=[inbox_public(m) for m in items], total=total, unread_count=unread_count)


@router.post(
    "/me/messages/read-all",
    response_model=ReadAllResult,
    summary="Mark every message read",
    responses=problem_responses(401),
)
async def read_all_messages(principal: CurrentPrincipal, session: SessionDep) -> ReadAllResult:
    updated = await service.mark_all_read(session, principal.user_id)
    return ReadAllResult(updated=updated, unread_count=0)


@router.post(
    "/me/messages/{message_id}/read",
    response_model=InboxMessagePublic,
    summary="Mark one message read",
    responses=problem_responses(401, 404),
)
async def read_message(message: OwnMessage, session: SessionDep) -> InboxMessagePublic:
    """Only the owner's messages; another user's message answers 404. Reading twice is fine."""
    return inbox_public(await service.mark_read(session, message))


# Staff: the outbox -----------------------------------------------------------------------


def _notification_public(notification: Notification, user: User) -> NotificationPublic:
    return NotificationPublic(
        id=notification.id,  # type: ignore[arg-type]
        recipient_id=notification.recipient_id,
        recipient_name=mask_name(user.nickname or user.username),
        recipient_role=str(user.role),
        event=notification.event,
        title=notification.title,
        status=notification.status,
        attempts=notification.attempts,
        last_error=notification.last_error,
        template_id=notification.template_id,
        next_attempt_at=notification.next_attempt_at,
        created_at=notification.created_at,
        sent_at=notification.sent_at,
    )


@router.get(
    "/notifications",
    response_model=Page[NotificationPublic],
    summary="Outbox rows (deliveries), newest first",
    responses=problem_responses(401, 403),
)
async def list_notifications(
    principal: StaffPrincipal,
    session: SessionDep,
    page: PageDep,
    status: Annotated[NotificationStatus | None, Query(description="Only this status")] = None,
    event: Annotated[str | None, Query(max_length=50, examples=["case.fed_back"])] = None,
    recipient_id: Annotated[Id | None, Query()] = None,
) -> Page[NotificationPublic]:
    """Staff see the rows of recipients in their region subtree (residents without a region:
    staff of a top-level region); admins see all. Names are masked; no openid, no params."""
    rows, total = await service.list_notifications(
        session, principal, page, status=status, event=event, recipient_id=recipient_id
    )
    return Page(items=[_notification_public(n, u) for n, u in rows], total=total)


@router.post(
    "/notifications/{notification_id}/retry",
    response_model=NotificationPublic,
    summary="Deliver a failed or skipped message again",
    responses=problem_responses(401, 403, 404, 409),
)
async def retry_notification(
    notification_id: Annotated[Id, Path()],
    principal: StaffPrincipal,
    session: SessionDep,
) -> NotificationPublic:
    """Back to `pending`, due now, attempts reset. Only `failed` or `skipped` rows (409
    `invalid_transition` otherwise). A message skipped for `no_subscription` is skipped
    again unless the user has accepted a subscription since."""
    notification, user = await service.notification_in_scope_or_404(
        session, principal, notification_id
    )
    notification = await service.retry_notification(session, notification)
    return _notification_public(notification, user)
