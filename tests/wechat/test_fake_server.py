"""The fake WeChat over plain HTTP: the real endpoints' shapes, its checks, and the /_fake
control endpoints another process uses to drive it."""

from __future__ import annotations

import httpx
import pytest

from app.wechat.fake_server import FakeWeChat, openid_for_code
from tests.conftest import WECHAT_APPID, WECHAT_SECRET, fake_wechat_url


@pytest.fixture
async def http() -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=fake_wechat_url(), timeout=10) as client:
        yield client  # type: ignore[misc]


async def _token(http: httpx.AsyncClient, **extra: object) -> str:
    answer = await http.post(
        "/cgi-bin/stable_token",
        json={
            "grant_type": "client_credential",
            "appid": WECHAT_APPID,
            "secret": WECHAT_SECRET,
            **extra,
        },
    )
    body = answer.json()
    assert set(body) == {"access_token", "expires_in"} and 7000 < body["expires_in"] <= 7200
    return str(body["access_token"])


async def test_stable_token_is_stable_until_forced(http: httpx.AsyncClient) -> None:
    first = await _token(http)
    assert await _token(http) == first
    forced = await _token(http, force_refresh=True)
    assert forced != first
    old_use = await http.post(
        "/wxa/msg_sec_check",
        params={"access_token": first},
        json={"content": "a", "version": 2, "scene": 1, "openid": "o1"},
    )
    assert old_use.json()["errcode"] == 40001


async def test_classic_token_endpoint(http: httpx.AsyncClient) -> None:
    answer = await http.get(
        "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": WECHAT_APPID, "secret": WECHAT_SECRET},
    )
    assert answer.json()["expires_in"] == 7200 and answer.json()["access_token"]
    wrong = await http.get(
        "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": WECHAT_APPID, "secret": "nope"},
    )
    assert wrong.json() == {"errcode": 40125, "errmsg": "invalid appsecret"}


@pytest.mark.parametrize("token", ["", "garbage", "aGVsbG8.d29ybGQ"])
async def test_unknown_tokens_are_40001(http: httpx.AsyncClient, token: str) -> None:
    answer = await http.post(
        "/wxa/business/getuserphonenumber",
        params={"access_token": token},
        json={"code": "phone-13800000001"},
    )
    assert answer.status_code == 200 and answer.json()["errcode"] == 40001


async def test_phone_answer_shape(http: httpx.AsyncClient) -> None:
    token = await _token(http)
    answer = await http.post(
        "/wxa/business/getuserphonenumber",
        params={"access_token": token},
        json={"code": "phone-13800000001"},
    )
    body = answer.json()
    assert body["errcode"] == 0 and body["errmsg"] == "ok"
    info = body["phone_info"]
    assert (info["phoneNumber"], info["purePhoneNumber"], info["countryCode"]) == (
        "13800000001",
        "13800000001",
        "86",
    )
    assert info["watermark"]["appid"] == WECHAT_APPID


async def test_qrcode_error_is_json_and_image_is_png(http: httpx.AsyncClient) -> None:
    token = await _token(http)
    image = await http.post(
        "/wxa/getwxacodeunlimit", params={"access_token": token}, json={"scene": "a=1"}
    )
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    error = await http.post(
        "/wxa/getwxacodeunlimit", params={"access_token": token}, json={"scene": ""}
    )
    assert error.headers["content-type"].startswith("application/json")
    assert error.json()["errcode"] == 40169


async def test_sec_check_v2_shape(http: httpx.AsyncClient) -> None:
    token = await _token(http)
    answer = await http.post(
        "/wxa/msg_sec_check",
        params={"access_token": token},
        json={"content": "这里有人赌博", "version": 2, "scene": 2, "openid": "o1"},
    )
    body = answer.json()
    assert body["errcode"] == 0 and body["result"] == {"suggest": "risky", "label": 20006}
    assert {"strategy": "keyword", "keyword": "赌博"}.items() <= body["detail"][1].items()
    assert body["trace_id"]
    v1 = await http.post(
        "/wxa/msg_sec_check", params={"access_token": token}, json={"content": "hi"}
    )
    assert v1.json()["errcode"] == 40097


async def test_control_over_http(http: httpx.AsyncClient, fake_wechat: FakeWeChat) -> None:
    injected = await http.post(
        "/_fake/failures", json={"endpoint": "jscode2session", "errcode": 45011, "times": 2}
    )
    assert injected.json() == {"pending": 2}
    assert fake_wechat.pending_failures("jscode2session") == 2
    bad = await http.post("/_fake/failures", json={"endpoint": "nope", "errcode": 1})
    assert bad.status_code == 400

    query = {
        "appid": WECHAT_APPID,
        "secret": WECHAT_SECRET,
        "grant_type": "authorization_code",
        "js_code": "kate.1",
    }
    for _ in range(2):
        limited = await http.get("/sns/jscode2session", params=query)
        assert limited.json()["errcode"] == 45011
    ok = await http.get("/sns/jscode2session", params=query)
    assert ok.json()["openid"] == openid_for_code("kate.1")
    assert set(ok.json()) == {"openid", "session_key"}

    received = (await http.get("/_fake/requests", params={"endpoint": "jscode2session"})).json()
    assert [r["query"]["js_code"] for r in received] == ["kate.1"] * 3
    assert received[0]["method"] == "GET" and received[0]["path"] == "/sns/jscode2session"

    lookup = await http.get("/_fake/openid", params={"code": "kate.2"})
    assert lookup.json() == {"code": "kate.2", "openid": openid_for_code("kate")}

    configured = await http.post(
        "/_fake/config", json={"risky_words": {"违规": 20001}, "unsubscribe": ["o-x"]}
    )
    assert configured.json()["risky_words"] == {"违规": 20001}
    assert fake_wechat.risky_words == {"违规": 20001}

    await http.post("/_fake/failures", json={"endpoint": "msg_sec_check", "http_status": 500})
    token = await _token(http)
    failed = await http.post(
        "/wxa/msg_sec_check",
        params={"access_token": token},
        json={"content": "a", "version": 2, "scene": 1, "openid": "o1"},
    )
    assert failed.status_code == 500

    refused = await http.post(
        "/cgi-bin/message/subscribe/send",
        params={"access_token": token},
        json={"touser": "o-x", "template_id": "T", "data": {"a": {"value": "b"}}},
    )
    assert refused.json()["errcode"] == 43101
    sent = await http.post(
        "/cgi-bin/message/subscribe/send",
        params={"access_token": token},
        json={"touser": "o-y", "template_id": "T", "data": {"a": {"value": "b"}}},
    )
    assert sent.json()["errcode"] == 0
    messages = (await http.get("/_fake/messages")).json()
    assert [m["touser"] for m in messages] == ["o-y"]

    await http.post("/_fake/tokens/invalidate")
    stale = await http.post(
        "/cgi-bin/message/subscribe/send",
        params={"access_token": token},
        json={"touser": "o-y", "template_id": "T", "data": {"a": {"value": "b"}}},
    )
    assert stale.json()["errcode"] == 40001

    assert (await http.post("/_fake/reset")).json() == {"ok": True}
    assert (await http.get("/_fake/requests")).json() == []
    assert fake_wechat.risky_words == {"赌博": 20006, "诈骗": 20008}


async def test_bad_template_data_is_47003(http: httpx.AsyncClient) -> None:
    token = await _token(http)
    answer = await http.post(
        "/cgi-bin/message/subscribe/send",
        params={"access_token": token},
        json={"touser": "o1", "template_id": "T", "data": {"thing1": {"value": 5}}},
    )
    assert answer.json() == {
        "errcode": 47003,
        "errmsg": "argument invalid! data.thing1.value invalid",
    }


def test_fail_needs_something_to_do(fake_wechat: FakeWeChat) -> None:
    with pytest.raises(ValueError):
        fake_wechat.fail("jscode2session")
    with pytest.raises(ValueError):
        fake_wechat.fail("not-an-endpoint", 40029)
