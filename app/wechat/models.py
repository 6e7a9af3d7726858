"""The WeChat access token, shared by every process through the database."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.models import created_at_field, timestamp_field


class WeChatAccessToken(SQLModel, table=True):
    """The one access token of a mini-program (appid), obtained with `stable_token`.

    Every API and worker process reads it from here; none keeps its own. Whoever renews it
    first takes a short lease (`refresh_lease_until`, a conditional UPDATE), so a burst of
    processes finding it stale or rejected makes one call to WeChat, not one each.
    """

    __tablename__ = "wechat_access_token"

    appid: str = Field(primary_key=True, max_length=64)
    token: str = Field(default="", max_length=1024)
    expires_at: datetime = timestamp_field(nullable=False)
    refresh_lease_until: datetime | None = timestamp_field()
    updated_at: datetime = created_at_field()
