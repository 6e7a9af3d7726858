"""The content check (msgSecCheck v2) of what a resident or deputy writes for others to read.

Called before the request's transaction opens (a WeChat round trip must never hold the
database), from the domains' dependencies. `risky` is refused (422 `content_rejected`);
`review` is kept, flagged for staff; WeChat unavailable keeps the text flagged `unchecked`.
"""

from __future__ import annotations

import logging
from enum import StrEnum

import sqlalchemy as sa

from app.core.db import Database
from app.core.errors import ValidationFailed
from app.identity.models import User
from app.wechat.gateway import WeChatGateway
from app.wechat.types import WeChatError

logger = logging.getLogger("app.wechat")


class ContentRejected(ValidationFailed):
    code, detail = "content_rejected", "内容含有不适宜发布的信息，请修改后再提交"


class ContentFlag(StrEnum):
    review = "review"  # WeChat asks a person to look at it
    unchecked = "unchecked"  # the check could not run


async def check_text(
    gateway: WeChatGateway, openid: str | None, text: str, *, scene: int, title: str | None = None
) -> ContentFlag | None:
    """None when the text passed; a flag to store with it; raises ContentRejected."""
    if not openid:
        return ContentFlag.unchecked
    try:
        result = await gateway.msg_sec_check(openid=openid, content=text, scene=scene, title=title)
    except WeChatError as exc:
        logger.warning("content check did not run: %s", type(exc).__name__)
        return ContentFlag.unchecked
    if result.suggest == "risky":
        raise ContentRejected()
    if result.suggest == "review":
        return ContentFlag.review
    return None


async def check_user_text(
    db: Database, gateway: WeChatGateway, user_id: int, text: str, *, scene: int
) -> ContentFlag | None:
    """`check_text` for what an account wrote: reads its openid in a short read transaction
    of its own, then asks WeChat with no transaction open."""
    async with db.transaction(write=False) as session:
        openid = (
            await session.execute(sa.select(User.openid).where(User.id == user_id))  # type: ignore[arg-type]
        ).scalar_one_or_none()
    return await check_text(gateway, openid, text, scene=scene)
