"""The WeChat gateway: the only code that talks to WeChat (built on wechatpy 1.8.18)."""

from __future__ import annotations

from app.core.config import Settings
from app.core.db import Database
from app.wechat.types import PhoneInfo, SecCheckResult, WxSession


class WeChatGateway:
    """Every call has a timeout and a bounded retry; wechatpy's blocking calls run in a
    thread, never on the event loop. The access token is shared by all processes through
    the database."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db

    async def code_to_session(self, code: str) -> WxSession:
        raise NotImplementedError

    async def get_phone_number(self, code: str) -> PhoneInfo:
        raise NotImplementedError

    async def get_unlimited_qrcode(
        self,
        *,
        scene: str,
        page: str | None = None,
        env_version: str | None = None,
        width: int = 430,
        check_path: bool = False,
    ) -> bytes:
        raise NotImplementedError

    async def send_subscribe_message(
        self,
        *,
        openid: str,
        template_id: str,
        data: dict[str, str],
        page: str | None = None,
        miniprogram_state: str | None = None,
        lang: str = "zh_CN",
    ) -> None:
        raise NotImplementedError

    async def msg_sec_check(
        self, *, openid: str, content: str, scene: int, title: str | None = None
    ) -> SecCheckResult:
        raise NotImplementedError

    async def close(self) -> None:
        return None
