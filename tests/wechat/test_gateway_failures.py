"""The way WeChat fails, and what the gateway makes of it: bounded retries, timeouts, rate
limits, and one token renewal on 40001/42001 (never wechatpy's endless recursion)."""

from __future__ import annotations

import itertools
import socket

import pytest

from app.wechat.fake_server import FakeWeChat
from app.wechat.gateway import WeChatGateway
from app.wechat.types import WeChatAPIError, WeChatRateLimited, WeChatUnavailable
from tests.wechat.conftest import MakeGateway

_numbers = itertools.count(13800000100)


async def _phone(gateway: WeChatGateway) -> str:
    """Verify a fresh phone code (each can be used once) and answer the number."""
    number = str(next(_numbers))
    info = await gateway.get_phone_number(f"phone-{number}")
    assert info.phone_number == number
    return number


async def test_rate_limit_is_not_retried(gateway: WeChatGateway, fake_wechat: FakeWeChat) -> None:
    fake_wechat.fail("getuserphonenumber", 45011)
    with pytest.raises(WeChatRateLimited) as caught:
        await _phone(gateway)
    assert caught.value.errcode == 45011
    assert len(fake_wechat.received("getuserphonenumber")) == 1
    await _phone(gateway)  # the failure queue is spent


async def test_busy_is_retried_then_succeeds(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    gateway = make_gateway(wechat_max_retries=2)
    fake_wechat.fail("getuserphonenumber", -1, times=2)
    await _phone(gateway)
    assert len(fake_wechat.received("getuserphonenumber")) == 3


@pytest.mark.parametrize("retries", [0, 1, 3])
async def test_busy_retries_are_bounded(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat, retries: int
) -> None:
    gateway = make_gateway(wechat_max_retries=retries)
    fake_wechat.fail("msg_sec_check", -1, times=retries + 5)
    with pytest.raises(WeChatUnavailable) as caught:
        await gateway.msg_sec_check(openid="o1", content="hi", scene=1)
    assert caught.value.errcode == -1
    assert len(fake_wechat.received("msg_sec_check")) == retries + 1
    assert fake_wechat.pending_failures("msg_sec_check") == 4


async def test_http_500_is_retried_and_bounded(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    gateway = make_gateway(wechat_max_retries=1)
    fake_wechat.fail("subscribe_send", http_status=500, times=2)
    with pytest.raises(WeChatUnavailable) as caught:
        await gateway.send_subscribe_message(openid="o1", template_id="T", data={"a": "b"})
    assert caught.value.errcode is None and "500" in caught.value.errmsg
    assert len(fake_wechat.received("subscribe_send")) == 2
    assert fake_wechat.messages() == []

    fake_wechat.fail("subscribe_send", http_status=502)
    await gateway.send_subscribe_message(openid="o1", template_id="T", data={"a": "b"})
    assert len(fake_wechat.messages("o1")) == 1


async def test_slow_answer_hits_the_timeout(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    gateway = make_gateway(wechat_timeout_seconds=0.3, wechat_max_retries=1)
    fake_wechat.fail("jscode2session", delay=1.5, times=2)
    with pytest.raises(WeChatUnavailable) as caught:
        await gateway.code_to_session("slow.1")
    assert caught.value.errmsg == "timeout"
    assert len(fake_wechat.received("jscode2session")) == 2


async def test_slow_answer_then_retry_succeeds(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    gateway = make_gateway(wechat_timeout_seconds=0.3, wechat_max_retries=1)
    fake_wechat.fail("msg_sec_check", delay=1.5)
    result = await gateway.msg_sec_check(openid="o1", content="诈骗", scene=1)
    assert result.suggest == "risky"
    assert len(fake_wechat.received("msg_sec_check")) == 2


async def test_token_fetch_has_a_timeout_too(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    gateway = make_gateway(wechat_timeout_seconds=0.3, wechat_max_retries=0)
    fake_wechat.fail("stable_token", delay=1.5)
    with pytest.raises(WeChatUnavailable):
        await _phone(gateway)
    assert fake_wechat.received("getuserphonenumber") == []
    # The failed renewal released its lease: the next call fetches at once.
    await _phone(gateway)
    assert len(fake_wechat.received("stable_token")) == 2


async def test_unreachable_wechat_is_unavailable(make_gateway: MakeGateway) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = make_gateway(wechat_api_base_url=f"http://127.0.0.1:{port}", wechat_max_retries=1)
    with pytest.raises(WeChatUnavailable) as caught:
        await gateway.code_to_session("nobody.1")
    assert caught.value.errmsg.startswith("network error")


@pytest.mark.parametrize("errcode", [40029, 40163, 47003])
async def test_injected_api_errors(
    gateway: WeChatGateway, fake_wechat: FakeWeChat, errcode: int
) -> None:
    fake_wechat.fail("jscode2session", errcode)
    with pytest.raises(WeChatAPIError) as caught:
        await gateway.code_to_session("henry.1")
    assert caught.value.errcode == errcode
    assert len(fake_wechat.received("jscode2session")) == 1


async def test_code_spent_by_a_failed_attempt_reports_the_outage(
    gateway: WeChatGateway, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.fail("jscode2session", -1)
    fake_wechat.fail("jscode2session", 40163)
    with pytest.raises(WeChatUnavailable) as caught:
        await gateway.code_to_session("ivy.1")
    assert caught.value.errcode == -1


@pytest.mark.parametrize("errcode", [40001, 42001])
async def test_rejected_token_is_renewed_once_then_succeeds(
    gateway: WeChatGateway, fake_wechat: FakeWeChat, errcode: int
) -> None:
    await _phone(gateway)
    old = fake_wechat.received("getuserphonenumber")[0].query["access_token"]
    fake_wechat.fail("getuserphonenumber", errcode)
    await _phone(gateway)

    calls = fake_wechat.received("getuserphonenumber")
    assert len(calls) == 3
    assert calls[1].query["access_token"] == old
    new = calls[2].query["access_token"]
    assert new != old
    assert [r.body["force_refresh"] for r in fake_wechat.received("stable_token")] == [False, True]
    # force_refresh revoked the old token on WeChat's side; the database holds the new one.
    assert fake_wechat.token_appid(old) is None
    assert await gateway.tokens.get() == new


async def test_rejected_twice_is_an_error_not_a_recursion(
    gateway: WeChatGateway, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.fail("subscribe_send", 40001, times=50)
    with pytest.raises(WeChatAPIError) as caught:
        await gateway.send_subscribe_message(openid="o1", template_id="T", data={"a": "b"})
    assert caught.value.errcode == 40001
    assert len(fake_wechat.received("subscribe_send")) == 2
    assert [r.body["force_refresh"] for r in fake_wechat.received("stable_token")] == [False, True]


async def test_token_revoked_on_wechat_side_is_recovered(
    gateway: WeChatGateway, fake_wechat: FakeWeChat
) -> None:
    await _phone(gateway)
    fake_wechat.invalidate_tokens()
    await _phone(gateway)
    assert [r.body["force_refresh"] for r in fake_wechat.received("stable_token")] == [False, True]


async def test_bad_credentials_are_api_errors(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    wrong_secret = make_gateway(wechat_secret="not-the-secret")
    with pytest.raises(WeChatAPIError) as caught:
        await _phone(wrong_secret)
    assert caught.value.errcode == 40125
    with pytest.raises(WeChatAPIError) as login:
        await wrong_secret.code_to_session("jack.1")
    assert login.value.errcode == 40125
    with pytest.raises(WeChatAPIError) as unknown_app:
        await make_gateway(wechat_appid="wx-unknown").code_to_session("jack.2")
    assert unknown_app.value.errcode == 40013


async def test_an_answer_that_is_not_json_is_retried_like_a_5xx(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    gateway = make_gateway(wechat_max_retries=1)
    fake_wechat.fail("jscode2session", http_status=200)  # a plain-text page with status 200
    assert (await gateway.code_to_session("liam.1")).openid == fake_wechat.openid_for("liam")
    fake_wechat.fail("jscode2session", http_status=200, times=2)
    with pytest.raises(WeChatUnavailable) as caught:
        await gateway.code_to_session("liam.2")
    assert caught.value.errmsg == "answer is not JSON"
    assert len(fake_wechat.received("jscode2session")) == 4
