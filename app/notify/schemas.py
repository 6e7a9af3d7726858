"""Request and response bodies of the notify domain."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.times import Timestamp
from app.notify.models import NotificationStatus

SUBSCRIBE_RESULTS = ("accept", "reject", "ban", "filter")
# wx.requestSubscribeMessage's success answer also carries this key; it is ignored.
WX_ERRMSG_KEY = "errMsg"


class SubscriptionReport(BaseModel):
    """What wx.requestSubscribeMessage answered, per template id."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": {
                        "case_progress": "accept",
                        "case_result": "accept",
                        "wish_progress": "reject",
                    }
                }
            ]
        }
    )

    results: dict[str, str] = Field(
        description="template id → accept / reject / ban / filter (the `errMsg` key is ignored)",
        min_length=1,
        max_length=20,
    )

    @field_validator("results")
    @classmethod
    def _known_answers(cls, value: dict[str, str]) -> dict[str, str]:
        cleaned = {k: v for k, v in value.items() if k != WX_ERRMSG_KEY}
        for template_id, result in cleaned.items():
            if not template_id or len(template_id) > 128:
                raise ValueError("template id must have 1 to 128 characters")
            if result not in SUBSCRIBE_RESULTS:
                raise ValueError(
                    f"{template_id}: answer must be one of {', '.join(SUBSCRIBE_RESULTS)}"
                )
        if not cleaned:
            raise ValueError("no template answers")
        return cleaned


class SubscriptionPublic(BaseModel):
    template_id: str = Field(examples=["case_progress"])
    accepted_count: int = Field(examples=[2], description="messages of this template still allowed")
    last_result: str | None = Field(default=None, examples=["accept"])


class SubscriptionState(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subscriptions": [
                        {
                            "template_id": "case_progress",
                            "accepted_count": 2,
                            "last_result": "accept",
                        }
                    ],
                    "templates": {
                        "case.registered": "case_progress",
                        "case.resolved": "case_result",
                        "wish.claimed": "wish_progress",
                    },
                    "ignored": [],
                }
            ]
        }
    )

    subscriptions: list[SubscriptionPublic]
    templates: dict[str, str] = Field(description="event → template id, to know what to request")
    ignored: list[str] = Field(
        default_factory=list, description="template ids this service does not use"
    )


class InboxMessagePublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 31,
                    "event": "case.fed_back",
                    "title": "您反映的问题已有答复",
                    "body": "承办单位已答复您反映的“小区路灯不亮”，请查看并评价。",
                    "page": "pages/case/detail?id=12",
                    "read": False,
                    "read_at": None,
                    "created_at": "2026-11-22T13:40:00+08:00",
                }
            ]
        },
    )

    id: int
    event: str
    title: str
    body: str
    page: str | None
    read: bool
    read_at: Timestamp | None
    created_at: Timestamp


class InboxPage(BaseModel):
    items: list[InboxMessagePublic]
    total: int = Field(examples=[12])
    unread_count: int = Field(examples=[3], description="unread messages in the whole inbox")


class ReadAllResult(BaseModel):
    updated: int = Field(examples=[3], description="messages marked read now")
    unread_count: int = Field(examples=[0])


class NotificationPublic(BaseModel):
    """An outbox row as staff see it: no openid, the recipient's name masked, no params."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 88,
                    "recipient_id": 7,
                    "recipient_name": "张**",
                    "recipient_role": "resident",
                    "event": "case.fed_back",
                    "title": "您反映的问题已有答复",
                    "status": "skipped",
                    "attempts": 1,
                    "last_error": "no_subscription",
                    "template_id": "case_progress",
                    "next_attempt_at": "2026-11-22T13:40:00+08:00",
                    "created_at": "2026-11-22T13:40:00+08:00",
                    "sent_at": None,
                }
            ]
        }
    )

    id: int
    recipient_id: int
    recipient_name: str | None
    recipient_role: str
    event: str
    title: str
    status: NotificationStatus
    attempts: int
    last_error: str | None
    template_id: str | None
    next_attempt_at: Timestamp
    created_at: Timestamp
    sent_at: Timestamp | None


def inbox_public(message: Any) -> InboxMessagePublic:
    return InboxMessagePublic(
        id=message.id,
        event=message.event,
        title=message.title,
        body=message.body,
        page=message.page,
        read=message.read_at is not None,
        read_at=message.read_at,
        created_at=message.created_at,
    )
