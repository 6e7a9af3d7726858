"""POST /auth/wechat-login and POST /me/phone against the fake WeChat server."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from app.core.clock import utcnow
from app.core.security import Role
from app.wechat.fake_server import FakeWeChat
from tests.factories import Factory
from tests.identity.conftest import Identity, assert_problem, bearer

LOGIN = "/auth/wechat-login"


async def test_first_login_creates_a_resident_and_the_next_finds_it(
    client: httpx.AsyncClient,
    fake_wechat: FakeWeChat,
    identity: Identity,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    first = await client.post(LOGIN, json={"code": "alice.1"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["user"]["role"] == "resident" and body["token_type"] == "bearer"
    assert "session_key" not in first.text and "openid" not in body["user"]
    users = await identity.users()
    assert len(users) == 1 and users[0].openid == fake_wechat.openid_for("alice.1")
    assert users[0].last_login_at is not None
    second = await client.post(LOGIN, json={"code": "alice.2"})
    assert second.status_code == 200
    assert second.json()["user"]["id"] == body["user"]["id"]
    assert len(await identity.users()) == 1
    principal = identity.claims(second.json()["access_token"])
    assert (principal.user_id, principal.role) == (body["user"]["id"], Role.resident)
    me = await client.get("/me", headers=bearer(second.json()["access_token"]))
    assert me.status_code == 200
    assert [r.query.get("js_code") for r in fake_wechat.received("jscode2session")] == [
        "alice.1",
        "alice.2",
    ]
    assert "session_key" not in caplog.text


async def test_a_bound_deputy_logs_in_with_the_deputy_role(
    client: httpx.AsyncClient, factory: Factory, fake_wechat: FakeWeChat, identity: Identity
) -> None:
    deputy = await factory.deputy(name="赵敏")
    actor = await factory.deputy_actor(deputy, openid=fake_wechat.openid_for("deputy-zhao"))
    response = await client.post(LOGIN, json={"code": "deputy-zhao.1"})
    assert response.status_code == 200, response.text
    assert response.json()["user"]["deputy"] == {"id": deputy.id, "name": "赵敏"}
    principal = identity.claims(response.json()["access_token"])
    assert (principal.user_id, principal.role, principal.deputy_id) == (
        actor.id,
        Role.deputy,
        deputy.id,
    )


async def test_invalid_and_used_codes_are_401(
    client: httpx.AsyncClient, fake_wechat: FakeWeChat, identity: Identity
) -> None:
    assert_problem(
        await client.post(LOGIN, json={"code": "invalid-code"}), 401, "invalid_wechat_code"
    )
    assert (await client.post(LOGIN, json={"code": "bob.1"})).status_code == 200
    assert_problem(await client.post(LOGIN, json={"code": "bob.1"}), 401, "invalid_wechat_code")
    assert len(await identity.users()) == 1
    assert_problem(await client.post(LOGIN, json={"code": ""}), 422, "validation_error")
    assert_problem(await client.post(LOGIN, json={}), 422, "validation_error")


@pytest.mark.parametrize(
    ("errcode", "http_status"),
    [(-1, None), (45011, None), (None, 500), (40125, None)],
    ids=["busy", "rate-limited", "http-500", "bad-app-secret"],
)
async def test_wechat_failures_are_503_never_500(
    client: httpx.AsyncClient,
    fake_wechat: FakeWeChat,
    identity: Identity,
    errcode: int | None,
    http_status: int | None,
) -> None:
    fake_wechat.fail("jscode2session", errcode, http_status=http_status, times=10)
    response = await client.post(LOGIN, json={"code": "carol.1"})
    assert_problem(response, 503, "wechat_unavailable")
    assert int(response.headers["retry-after"]) > 0
    assert await identity.users() == []


async def test_risky_wechat_user_is_403(client: httpx.AsyncClient, fake_wechat: FakeWeChat) -> None:
    fake_wechat.fail("jscode2session", 40226)
    assert_problem(await client.post(LOGIN, json={"code": "dave.1"}), 403, "wechat_login_blocked")


async def test_disabled_account_is_refused(
    client: httpx.AsyncClient, factory: Factory, fake_wechat: FakeWeChat, identity: Identity
) -> None:
    resident = await factory.resident(openid=fake_wechat.openid_for("erin"), is_active=False)
    assert_problem(await client.post(LOGIN, json={"code": "erin.1"}), 403, "account_disabled")
    assert await identity.refresh_rows(resident.id) == []


async def test_first_logins_racing_create_one_account(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    responses = await asyncio.gather(
        *(client.post(LOGIN, json={"code": f"frank.{n}"}) for n in range(6))
    )
    assert [r.status_code for r in responses] == [200] * 6
    assert len({r.json()["user"]["id"] for r in responses}) == 1
    assert len(await identity.users()) == 1


# POST /me/phone


async def test_phone_is_verified_and_shown_in_full_only_to_its_owner(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    resident = await factory.resident()
    admin = await factory.admin()
    response = await client.post(
        "/me/phone", json={"code": "phone-13800000001"}, headers=resident.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["phone"] == "13800000001" and body["deputy_match"] is None
    stored = await identity.user(resident.id)
    assert stored.phone == "13800000001" and stored.phone_verified_at is not None
    assert (await client.get("/me", headers=resident.headers)).json()["phone"] == "13800000001"
    listed = (await client.get("/users", params={"role": "resident"}, headers=admin.headers)).json()
    assert listed["items"][0]["phone"] == "138****0001" and listed["items"][0]["phone_verified"]


async def test_foreign_phone_keeps_its_country_code(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    resident = await factory.resident()
    response = await client.post(
        "/me/phone", json={"code": "phone-852-61234567"}, headers=resident.headers
    )
    assert response.status_code == 200 and response.json()["phone"] == "+85261234567"


async def test_phone_matching_the_roster_offers_binding_then_binds(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    deputy = await factory.deputy(name="孙立", phone="13800000002")
    resident = await factory.resident()
    response = await client.post(
        "/me/phone", json={"code": "phone-13800000002"}, headers=resident.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["deputy_match"] == {"deputy_id": deputy.id, "name": "孙立"}
    bind = await client.post(
        "/me/deputy-binding", json={"use_verified_phone": True}, headers=resident.headers
    )
    assert bind.status_code == 200, bind.text
    assert identity.claims(bind.json()["access_token"]).deputy_id == deputy.id
    # Once bound, another account verifying the same phone is offered nothing.
    other = await factory.resident()
    again = await client.post(
        "/me/phone", json={"code": "phone-86-13800000002"}, headers=other.headers
    )
    assert again.status_code == 200, again.text
    assert again.json() | {"phone_verified_at": None} == {
        "phone": "13800000002",
        "phone_verified_at": None,
        "deputy_match": None,
    }


async def test_staff_verify_a_phone_but_are_offered_no_binding(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    await factory.deputy(phone="13800000003")
    district = await factory.district()
    staff = await factory.staff(district.district)
    response = await client.post(
        "/me/phone", json={"code": "phone-13800000003"}, headers=staff.headers
    )
    assert response.status_code == 200 and response.json()["deputy_match"] is None


async def test_phone_code_errors(
    client: httpx.AsyncClient, factory: Factory, fake_wechat: FakeWeChat, identity: Identity
) -> None:
    resident = await factory.resident(phone="13900000000", phone_verified_at=utcnow())
    assert_problem(
        await client.post("/me/phone", json={"code": "phone-13800000004"}), 401, "unauthenticated"
    )
    assert_problem(
        await client.post("/me/phone", json={"code": "bogus"}, headers=resident.headers),
        422,
        "invalid_phone_code",
    )
    assert (
        await client.post("/me/phone", json={"code": "phone-13800000004"}, headers=resident.headers)
    ).status_code == 200
    assert_problem(
        await client.post(
            "/me/phone", json={"code": "phone-13800000004"}, headers=resident.headers
        ),
        422,
        "invalid_phone_code",
    )
    disabled = await factory.resident(is_active=False)
    assert_problem(
        await client.post(
            "/me/phone", json={"code": "phone-13800000006"}, headers=disabled.headers
        ),
        403,
        "account_disabled",
    )
    assert (await identity.user(disabled.id)).phone is None
    # The disabled account never reached WeChat.
    asked = [r.body["code"] for r in fake_wechat.received("getuserphonenumber")]
    assert asked == ["bogus", "phone-13800000004", "phone-13800000004"]
    fake_wechat.fail("getuserphonenumber", -1, times=10)
    assert_problem(
        await client.post(
            "/me/phone", json={"code": "phone-13800000005"}, headers=resident.headers
        ),
        503,
        "wechat_unavailable",
    )
    assert_problem(
        await client.post("/me/phone", json={}, headers=resident.headers), 422, "validation_error"
    )
    assert (await identity.user(resident.id)).phone == "13800000004"
