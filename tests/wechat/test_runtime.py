"""The runtime attaches the gateway, and in development without credentials starts the fake."""

from __future__ import annotations

import httpx
import pytest

from app.core.db import Database
from app.main import create_app
from app.runtime import wechat_settings
from app.wechat.fake_server import DEV_APPID, DEV_SECRET, openid_for_code
from app.wechat.gateway import WeChatGateway
from tests.conftest import fake_wechat_url, make_settings


async def test_development_without_credentials_runs_the_built_in_fake(
    db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(wechat_appid="", wechat_secret="", wechat_api_base_url="")
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        gateway: WeChatGateway = application.state.wechat
        fake = application.state.fake_wechat
        assert fake is not None
        assert gateway.base_url != fake_wechat_url()
        assert gateway.settings.wechat_appid == DEV_APPID
        assert "built-in fake WeChat at " + gateway.base_url in capsys.readouterr().err

        session = await gateway.code_to_session("dev-user.1")
        assert session.openid == openid_for_code("dev-user")
        assert (
            await gateway.msg_sec_check(openid=session.openid, content="诈骗", scene=2)
        ).suggest == "risky"
        assert [r.endpoint for r in fake.received()] == [
            "jscode2session",
            "stable_token",
            "msg_sec_check",
        ]
        async with httpx.AsyncClient(base_url=gateway.base_url) as http:
            assert len((await http.get("/_fake/requests")).json()) == 3
        base_url = gateway.base_url
    # Stopped with the app.
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=base_url) as http:
            await http.get("/_fake/requests")


def test_which_wechat_the_gateway_uses() -> None:
    configured = make_settings()
    assert wechat_settings(configured) == (configured, None)

    elsewhere = make_settings(wechat_appid="", wechat_secret="", wechat_api_base_url="http://x")
    chosen, fake = wechat_settings(elsewhere)
    assert fake is None
    assert (chosen.wechat_appid, chosen.wechat_secret, chosen.wechat_api_base_url) == (
        DEV_APPID,
        DEV_SECRET,
        "http://x",
    )

    offline = make_settings(wechat_appid="", wechat_secret="", wechat_api_base_url="")
    chosen, fake = wechat_settings(offline)
    assert fake is not None and chosen.wechat_appid == DEV_APPID
    assert fake.base_url == ""  # not started until the runtime starts it

    production = make_settings(
        app_env="production", allow_sqlite_in_production=True, wechat_api_base_url=""
    )
    assert wechat_settings(production) == (production, None)
