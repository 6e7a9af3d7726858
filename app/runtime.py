"""What runs beside the HTTP handlers for the life of the process.

In development without WeChat credentials this starts the fake WeChat server, so the quick
start works offline; the gateway and the in-process notification worker are attached here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from app.core.config import Settings
from app.wechat.fake_server import DEV_APPID, DEV_SECRET, FakeWeChat, FakeWeChatServer
from app.wechat.gateway import WeChatGateway

logger = logging.getLogger("app.runtime")


def wechat_settings(settings: Settings) -> tuple[Settings, FakeWeChatServer | None]:
    """The settings the gateway runs with, and the fake WeChat to start if any.

    In development without credentials the gateway uses the development appid and secret:
    against the in-process fake, or against the fake named by WECHAT_API_BASE_URL (another
    process's, which accepts the same signed tokens)."""
    if settings.is_production or settings.wechat_configured:
        return settings, None
    dev = {"wechat_appid": DEV_APPID, "wechat_secret": DEV_SECRET}
    if settings.wechat_api_base_url:
        return settings.model_copy(update=dev), None
    server = FakeWeChatServer(FakeWeChat({DEV_APPID: DEV_SECRET}))
    return settings.model_copy(update=dev), server


@asynccontextmanager
async def start_runtime(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        gateway_settings, fake = wechat_settings(settings)
        app.state.fake_wechat = None
        if fake is not None:
            base_url = fake.start()
            stack.callback(fake.stop)
            gateway_settings = gateway_settings.model_copy(update={"wechat_api_base_url": base_url})
            app.state.fake_wechat = fake.fake
            logger.warning(
                "no WeChat credentials: using the built-in fake WeChat at %s "
                "(control it under %s/_fake/, see miniprogram_api_docs/wechat.md)",
                base_url,
                base_url,
            )
        gateway = WeChatGateway(gateway_settings, app.state.db)
        app.state.wechat = gateway
        stack.push_async_callback(gateway.close)
        # The notification worker attaches here (after the gateway, closed before it).
        if settings.worker_in_process:
            from app.notify.worker import in_process_worker

            await stack.enter_async_context(in_process_worker(app.state.db, settings, gateway))
        yield
