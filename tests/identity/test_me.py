"""GET /me and PATCH /me: the caller's own profile."""

from __future__ import annotations

import httpx

from app.core.security import Role
from app.wechat.fake_server import FakeWeChat
from tests.factories import Factory
from tests.identity.conftest import Identity, assert_problem


async def test_every_role_reads_its_own_profile_with_the_full_phone(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    district = await factory.district()
    unit = await factory.unit()
    deputy = await factory.deputy(name="王建国")
    actors = [
        await factory.resident(phone="13800138000"),
        await factory.deputy_actor(deputy, phone="13900139000"),
        await factory.staff(district.street_a),
        await factory.unit_handler(unit),
        await factory.admin(),
    ]
    for actor in actors:
        response = await client.get("/me", headers=actor.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == actor.id and body["role"] == actor.user.role
        assert body["phone"] == actor.user.phone
        assert body["region_id"] == actor.user.region_id and body["unit_id"] == actor.user.unit_id
        assert "password_hash" not in body and "openid" not in body
    deputy_body = (await client.get("/me", headers=actors[1].headers)).json()
    assert deputy_body["deputy"] == {"id": deputy.id, "name": "王建国"}
    assert deputy_body["phone"] == "13900139000"


async def test_patch_me_changes_only_what_is_sent(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    resident = await factory.resident(nickname="旧名", avatar_url="https://example.com/a.png")
    response = await client.patch("/me", json={"nickname": "  新名  "}, headers=resident.headers)
    assert response.status_code == 200, response.text
    assert response.json()["nickname"] == "新名"
    assert response.json()["avatar_url"] == "https://example.com/a.png"
    response = await client.patch(
        "/me", json={"avatar_url": "https://cdn.example.com/b.jpg"}, headers=resident.headers
    )
    assert response.json()["avatar_url"] == "https://cdn.example.com/b.jpg"
    assert response.json()["nickname"] == "新名"
    cleared = await client.patch("/me", json={"avatar_url": None}, headers=resident.headers)
    assert cleared.json()["avatar_url"] is None
    stored = await identity.user(resident.id)
    assert (stored.nickname, stored.avatar_url) == ("新名", None)


async def test_patch_me_refuses_bad_input_and_privileged_fields(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    resident = await factory.resident(nickname="原名")
    for body in (
        {"nickname": ""},
        {"nickname": "x" * 65},
        {"avatar_url": "javascript:alert(1)"},
        {"avatar_url": "not a url"},
        {"role": "admin"},
        {"phone": "13800138000"},
        {"deputy_id": 1},
    ):
        assert_problem(
            await client.patch("/me", json=body, headers=resident.headers), 422, "validation_error"
        )
    stored = await identity.user(resident.id)
    assert (stored.nickname, stored.role, stored.phone, stored.deputy_id) == (
        "原名",
        Role.resident,
        None,
        None,
    )
    assert_problem(await client.patch("/me", json={"nickname": "x"}), 401, "unauthenticated")


async def test_deactivated_or_deleted_accounts_cannot_use_me(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    resident = await factory.resident(is_active=False)
    assert_problem(await client.get("/me", headers=resident.headers), 403, "account_disabled")
    assert_problem(
        await client.patch("/me", json={"nickname": "x"}, headers=resident.headers),
        403,
        "account_disabled",
    )
    ghost = await factory.resident()
    token_of_ghost = ghost.headers
    async with factory.db.transaction() as session:
        user = await session.get(type(ghost.user), ghost.id)
        await session.delete(user)
    assert_problem(await client.get("/me", headers=token_of_ghost), 401, "unauthenticated")


async def test_nicknames_pass_the_content_check(
    client: httpx.AsyncClient, factory: Factory, fake_wechat: FakeWeChat, identity: Identity
) -> None:
    resident = await factory.resident(nickname="原名")
    for bad in ("赌博高手", "加微信领奖"):  # risky, review
        assert_problem(
            await client.patch("/me", json={"nickname": bad}, headers=resident.headers),
            422,
            "content_rejected",
        )
    assert (await identity.user(resident.id)).nickname == "原名"
    checked = fake_wechat.received("msg_sec_check")
    assert [(r.body["content"], r.body["scene"], r.body["openid"]) for r in checked] == [
        ("赌博高手", 1, resident.user.openid),
        ("加微信领奖", 1, resident.user.openid),
    ]
    # WeChat down: the nickname is taken rather than the user blocked.
    fake_wechat.fail("msg_sec_check", -1, times=10)
    ok = await client.patch("/me", json={"nickname": "新名"}, headers=resident.headers)
    assert ok.status_code == 200 and ok.json()["nickname"] == "新名"


async def test_password_accounts_and_avatar_only_changes_skip_the_check(
    client: httpx.AsyncClient, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    admin = await factory.admin()
    resident = await factory.resident()
    assert (
        await client.patch("/me", json={"nickname": "管理员"}, headers=admin.headers)
    ).status_code == 200
    avatar = {"avatar_url": "https://example.com/x.png"}
    assert (await client.patch("/me", json=avatar, headers=resident.headers)).status_code == 200
    assert fake_wechat.received("msg_sec_check") == []
