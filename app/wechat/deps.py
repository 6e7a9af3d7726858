"""The gateway as a request dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.wechat.gateway import WeChatGateway


async def get_wechat(request: Request) -> WeChatGateway:
    return request.app.state.wechat  # type: ignore[no-any-return]


WeChatDep = Annotated[WeChatGateway, Depends(get_wechat)]
