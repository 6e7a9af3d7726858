"""Each gateway call against the fake WeChat over HTTP: answers, the JSON it sends, and the
errors WeChat gives for bad input."""

from __future__ import annotations

import asyncio
import io

import pytest
from fastapi import FastAPI
from PIL import Image

from app.wechat.fake_server import FakeWeChat, openid_for_code, qr_png
from app.wechat.gateway import WeChatGateway
from app.wechat.types import WeChatAPIError
from tests.conftest import WECHAT_APPID, WECHAT_SECRET
from tests.wechat.conftest import MakeGateway

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def test_code_to_session_maps_codes_to_openids(
    gateway: WeChatGateway, fake_wechat: FakeWeChat
) -> None:
    first = await gateway.code_to_session("alice.1")
    again = await gateway.code_to_session("alice.2")
    other = await gateway.code_to_session("bob.1")

    assert first.openid == again.openid == fake_wechat.openid_for("alice.9")
    assert first.openid.startswith("o") and len(first.openid) == 28
    assert other.openid != first.openid
    assert first.session_key and first.session_key != again.session_key
    assert first.session_key not in repr(first)
    sent = fake_wechat.received("jscode2session")
    assert [r.query for r in sent][0] == {
        "appid": WECHAT_APPID,
        "secret": WECHAT_SECRET,
        "js_code": "alice.1",
        "grant_type": "authorization_code",
    }
    # code2Session needs no access token: none is fetched, none is sent.
    assert fake_wechat.received("stable_token") == []
    assert all("access_token" not in r.query for r in sent)


async def test_openid_rule_is_the_documented_one() -> None:
    import hashlib

    assert openid_for_code("alice.7") == "o" + hashlib.sha256(b"alice").hexdigest()[:27]
    assert openid_for_code("carol") == openid_for_code("carol.x.y")


@pytest.mark.parametrize("code", ["invalid-code", "has space", ""])
async def test_code_to_session_bad_code_is_40029(gateway: WeChatGateway, code: str) -> None:
    with pytest.raises(WeChatAPIError) as caught:
        await gateway.code_to_session(code)
    assert caught.value.errcode == 40029


async def test_blocked_user_is_40226(gateway: WeChatGateway) -> None:
    with pytest.raises(WeChatAPIError) as caught:
        await gateway.code_to_session("blocked-mallory.1")
    assert caught.value.errcode == 40226


async def test_code_used_twice_is_40163(gateway: WeChatGateway) -> None:
    await gateway.code_to_session("dave.1")
    with pytest.raises(WeChatAPIError) as caught:
        await gateway.code_to_session("dave.1")
    assert caught.value.errcode == 40163


async def test_phone_number_from_code(gateway: WeChatGateway, fake_wechat: FakeWeChat) -> None:
    mainland = await gateway.get_phone_number("phone-13800000001")
    assert (mainland.phone_number, mainland.pure_phone_number, mainland.country_code) == (
        "13800000001",
        "13800000001",
        "86",
    )
    hong_kong = await gateway.get_phone_number("phone-852-61234567")
    assert (hong_kong.phone_number, hong_kong.pure_phone_number, hong_kong.country_code) == (
        "+85261234567",
        "61234567",
        "852",
    )
    sent = fake_wechat.received("getuserphonenumber")
    assert [r.body for r in sent] == [{"code": "phone-13800000001"}, {"code": "phone-852-61234567"}]
    token_answers = fake_wechat.received("stable_token")
    assert len(token_answers) == 1 and token_answers[0].body == {
        "grant_type": "client_credential",
        "appid": WECHAT_APPID,
        "secret": WECHAT_SECRET,
        "force_refresh": False,
    }
    assert all(r.query["access_token"] for r in sent)
    assert fake_wechat.token_appid(sent[0].query["access_token"]) == WECHAT_APPID


async def test_phone_code_errors(gateway: WeChatGateway) -> None:
    with pytest.raises(WeChatAPIError) as bad:
        await gateway.get_phone_number("13800000001")
    assert bad.value.errcode == 40029
    await gateway.get_phone_number("phone-13900000002")
    with pytest.raises(WeChatAPIError) as used:
        await gateway.get_phone_number("phone-13900000002")
    assert used.value.errcode == 40163


async def test_unlimited_qrcode_is_a_png_of_the_scene(
    gateway: WeChatGateway, fake_wechat: FakeWeChat
) -> None:
    png = await gateway.get_unlimited_qrcode(scene="st=12&k=ab", page="pages/checkin/index")
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (430, 430)
    # The same standard QR code as the qrcode library makes for the scene.
    assert png == qr_png("st=12&k=ab", 430)
    assert fake_wechat.received("getwxacodeunlimit")[0].body == {
        "scene": "st=12&k=ab",
        "page": "pages/checkin/index",
        "check_path": False,
        "env_version": "release",
        "width": 430,
    }

    small = await gateway.get_unlimited_qrcode(scene="s=1", width=280, env_version="trial")
    assert Image.open(io.BytesIO(small)).size == (280, 280)
    assert fake_wechat.received("getwxacodeunlimit")[1].body["env_version"] == "trial"


async def test_unlimited_qrcode_errors_come_back_as_json(
    gateway: WeChatGateway, fake_wechat: FakeWeChat
) -> None:
    with pytest.raises(WeChatAPIError) as too_long:
        await gateway.get_unlimited_qrcode(scene="x" * 33)
    assert too_long.value.errcode == 40169
    fake_wechat.configure(known_pages=["pages/index/index"])
    with pytest.raises(WeChatAPIError) as bad_page:
        await gateway.get_unlimited_qrcode(scene="s=1", page="pages/nope", check_path=True)
    assert bad_page.value.errcode == 41030


async def test_subscribe_message_shape(gateway: WeChatGateway, fake_wechat: FakeWeChat) -> None:
    openid = openid_for_code("erin")
    await gateway.send_subscribe_message(
        openid=openid,
        template_id="TPL-1",
        data={"thing1": "您的意见已受理", "time2": "2026-01-02 10:00"},
        page="pages/case/detail?id=12",
    )
    await gateway.send_subscribe_message(
        openid=openid, template_id="TPL-2", data={"thing1": "x"}, miniprogram_state="developer"
    )
    first, second = fake_wechat.messages(openid)
    assert first == {
        "touser": openid,
        "template_id": "TPL-1",
        "data": {"thing1": {"value": "您的意见已受理"}, "time2": {"value": "2026-01-02 10:00"}},
        "miniprogram_state": "formal",
        "lang": "zh_CN",
        "page": "pages/case/detail?id=12",
    }
    assert second["miniprogram_state"] == "developer" and "page" not in second


async def test_subscribe_message_state_comes_from_settings(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    gateway = make_gateway(wechat_miniprogram_state="trial")
    await gateway.send_subscribe_message(openid="o1", template_id="T", data={"thing1": "a"})
    assert fake_wechat.messages("o1")[0]["miniprogram_state"] == "trial"


async def test_subscribe_message_refused(gateway: WeChatGateway, fake_wechat: FakeWeChat) -> None:
    fake_wechat.unsubscribe("o-no-sub")
    with pytest.raises(WeChatAPIError) as refused:
        await gateway.send_subscribe_message(openid="o-no-sub", template_id="T", data={"a": "b"})
    assert refused.value.errcode == 43101
    fake_wechat.fail("subscribe_send", 47003)
    with pytest.raises(WeChatAPIError) as bad_data:
        await gateway.send_subscribe_message(openid="o2", template_id="T", data={"a": "b"})
    assert bad_data.value.errcode == 47003
    assert fake_wechat.messages() == []


@pytest.mark.parametrize(
    ("content", "suggest", "label"),
    [
        ("楼道灯坏了，请尽快修理", "pass", 100),
        ("有事加微信联系", "review", 10001),
        ("小区里有人聚众赌博", "risky", 20006),
        ("电话诈骗，还有赌博", "risky", 20006),
    ],
)
async def test_msg_sec_check_v2(
    gateway: WeChatGateway, fake_wechat: FakeWeChat, content: str, suggest: str, label: int
) -> None:
    result = await gateway.msg_sec_check(openid="o-sec", content=content, scene=2)
    assert (result.suggest, result.label) == (suggest, label)
    assert result.trace_id and result.raw is not None and result.raw["errcode"] == 0
    assert result.raw["result"] == {"suggest": suggest, "label": label}
    assert fake_wechat.received("msg_sec_check")[0].body == {
        "content": content,
        "version": 2,
        "scene": 2,
        "openid": "o-sec",
    }


async def test_msg_sec_check_reads_the_title_and_configured_words(
    gateway: WeChatGateway, fake_wechat: FakeWeChat
) -> None:
    risky_title = await gateway.msg_sec_check(
        openid="o1", content="正文没问题", scene=3, title="关于诈骗的线索"
    )
    assert risky_title.suggest == "risky" and risky_title.label == 20008
    assert fake_wechat.received("msg_sec_check")[0].body["title"] == "关于诈骗的线索"
    fake_wechat.configure(risky_words={"违禁词": 20001}, review_words={})
    assert (await gateway.msg_sec_check(openid="o1", content="赌博", scene=2)).suggest == "pass"
    flagged = await gateway.msg_sec_check(openid="o1", content="一个违禁词", scene=2)
    assert (flagged.suggest, flagged.label) == ("risky", 20001)


async def test_calls_run_off_the_event_loop(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    gateway = make_gateway(wechat_timeout_seconds=5)
    await gateway.code_to_session("warm.0")
    fake_wechat.fail("msg_sec_check", delay=1.0)
    slow = asyncio.create_task(gateway.msg_sec_check(openid="o1", content="hi", scene=1))
    quick = asyncio.create_task(gateway.code_to_session("frank.1"))
    done, _ = await asyncio.wait({slow, quick}, return_when=asyncio.FIRST_COMPLETED)
    # While the slow call waited on WeChat, the loop ran the quick one to the end.
    assert done == {quick}
    assert (await slow).suggest == "pass"


async def test_app_has_a_gateway_pointed_at_the_fake(app: FastAPI, fake_wechat: FakeWeChat) -> None:
    gateway: WeChatGateway = app.state.wechat
    session = await gateway.code_to_session("grace.1")
    assert session.openid == openid_for_code("grace")
    assert [r.query["js_code"] for r in fake_wechat.received("jscode2session")] == ["grace.1"]
    assert app.state.fake_wechat is None  # credentials given: no built-in fake started
