"""POST /users, GET /users, PATCH /users/{id}: admins manage password accounts."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from app.core.security import Role
from tests.factories import Actor, Factory
from tests.identity.conftest import PASSWORD, Identity, assert_problem, bearer


async def _non_admins(factory: Factory) -> list[Actor]:
    district = await factory.district()
    unit = await factory.unit()
    return [
        await factory.resident(),
        await factory.deputy_actor(),
        await factory.staff(district.district),
        await factory.unit_handler(unit),
    ]


async def test_admin_creates_each_kind_of_account_and_it_can_log_in(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    admin = await factory.admin()
    district = await factory.district()
    unit = await factory.unit()
    bodies: list[dict[str, Any]] = [
        {
            "username": "dh-staff",
            "password": "staff-pass-1",
            "role": "staff",
            "region_id": district.street_a.id,
            "nickname": " 东湖联络员 ",
        },
        {"username": "unit.handler", "password": "unit-pass-1", "role": "unit", "unit_id": unit.id},
        {"username": "second-admin", "password": "admin-pass-1", "role": "admin"},
    ]
    for body in bodies:
        response = await client.post("/users", json=body, headers=admin.headers)
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["username"] == body["username"] and created["role"] == body["role"]
        assert created["region_id"] == body.get("region_id")
        assert created["unit_id"] == body.get("unit_id")
        assert created["is_active"] is True
        assert "password_hash" not in created and "password" not in created
        stored = await identity.user(created["id"])
        assert stored.password_hash and body["password"] not in stored.password_hash
        login = await client.post(
            "/auth/password-login",
            json={"username": body["username"], "password": body["password"]},
        )
        assert login.status_code == 200, login.text
        principal = identity.claims(login.json()["access_token"])
        assert principal.role == Role(body["role"])
        assert principal.region_id == body.get("region_id")
        assert principal.unit_id == body.get("unit_id")
    assert (await identity.user((await identity.users())[-3].id)).nickname == "东湖联络员"


async def test_only_admins_manage_accounts(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    district = await factory.district()
    target = await identity.password_actor(Role.staff, region_id=district.district.id)
    before = len(await identity.users())
    body = {"username": "intruder", "password": "intruder-pass", "role": "admin"}
    assert_problem(await client.post("/users", json=body), 401, "unauthenticated")
    assert_problem(await client.get("/users"), 401, "unauthenticated")
    assert_problem(
        await client.patch(f"/users/{target.id}", json={"is_active": False}), 401, "unauthenticated"
    )
    for actor in await _non_admins(factory):
        assert_problem(
            await client.post("/users", json=body, headers=actor.headers), 403, "forbidden"
        )
        assert_problem(await client.get("/users", headers=actor.headers), 403, "forbidden")
        assert_problem(
            await client.patch(
                f"/users/{target.id}", json={"is_active": False}, headers=actor.headers
            ),
            403,
            "forbidden",
        )
        # A non-admin cannot probe which ids exist.
        assert_problem(
            await client.patch("/users/999999", json={"is_active": False}, headers=actor.headers),
            403,
            "forbidden",
        )
    users = await identity.users()
    assert len(users) == before + 4
    assert all(u.username != "intruder" for u in users)
    assert (await identity.user(target.id)).is_active is True


async def test_create_validation_and_nothing_stored(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    admin = await factory.admin()
    district = await factory.district()
    unit = await factory.unit()
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {
                "username": "s1",
                "password": "long-enough",
                "role": "staff",
                "region_id": district.district.id,
            },
            "body.username",
        ),
        (
            {
                "username": "staff-a",
                "password": "short",
                "role": "staff",
                "region_id": district.district.id,
            },
            "body.password",
        ),
        ({"username": "staff-a", "password": "long-enough", "role": "staff"}, "body.region_id"),
        (
            {
                "username": "staff-a",
                "password": "long-enough",
                "role": "staff",
                "region_id": 999999,
            },
            "body.region_id",
        ),
        (
            {
                "username": "staff-a",
                "password": "long-enough",
                "role": "staff",
                "region_id": district.district.id,
                "unit_id": unit.id,
            },
            "body.unit_id",
        ),
        ({"username": "unit-a", "password": "long-enough", "role": "unit"}, "body.unit_id"),
        (
            {"username": "unit-a", "password": "long-enough", "role": "unit", "unit_id": 999999},
            "body.unit_id",
        ),
        (
            {
                "username": "unit-a",
                "password": "long-enough",
                "role": "unit",
                "unit_id": unit.id,
                "region_id": district.district.id,
            },
            "body.region_id",
        ),
        (
            {
                "username": "admin-a",
                "password": "long-enough",
                "role": "admin",
                "region_id": district.district.id,
            },
            "body.region_id",
        ),
        ({"username": "res-a", "password": "long-enough", "role": "resident"}, "body.role"),
        ({"username": "dep-a", "password": "long-enough", "role": "deputy"}, "body.role"),
        ({"username": "admin-b", "password": "admin-b", "role": "admin"}, "body.password"),
        (
            {"username": "admin-c", "password": "long-enough", "role": "admin", "is_active": False},
            "body.is_active",
        ),
        ({"username": "bad name", "password": "long-enough", "role": "admin"}, "body.username"),
    ]
    before = len(await identity.users())
    for body, field in cases:
        response = await client.post("/users", json=body, headers=admin.headers)
        problem = assert_problem(response, 422, "validation_error")
        assert field in {e["field"] for e in problem["errors"]}, (body, problem)
    assert len(await identity.users()) == before


async def test_duplicate_username_is_409_even_when_racing(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    admin = await factory.admin()
    existing = await identity.password_actor(Role.admin)
    dup = {"username": existing.user.username, "password": "long-enough", "role": "admin"}
    assert_problem(
        await client.post("/users", json=dup, headers=admin.headers), 409, "username_taken"
    )
    body = {"username": "same-name", "password": "long-enough", "role": "admin"}
    responses = await asyncio.gather(
        *(client.post("/users", json=body, headers=admin.headers) for _ in range(6))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "username_taken"
    assert sum(u.username == "same-name" for u in await identity.users()) == 1


async def test_list_filters_masks_phones_and_pages(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    admin = await factory.admin(nickname="总管理员")
    district = await factory.district()
    unit = await factory.unit()
    staff_a = await identity.password_actor(
        Role.staff, region_id=district.street_a.id, username="east-staff", nickname="东区"
    )
    staff_b = await identity.password_actor(
        Role.staff, region_id=district.street_b.id, username="west-staff"
    )
    handler = await identity.password_actor(Role.unit, unit_id=unit.id, username="handler_1")
    resident = await factory.resident(phone="13800138000", nickname="居民甲")

    async def ids(**params: Any) -> list[int]:
        response = await client.get("/users", params=params, headers=admin.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] >= len(body["items"])
        return [item["id"] for item in body["items"]]

    assert await ids(role="staff") == [staff_a.id, staff_b.id]
    assert await ids(region_id=district.street_b.id) == [staff_b.id]
    assert await ids(unit_id=unit.id) == [handler.id]
    assert await ids(q="staff") == [staff_a.id, staff_b.id]
    assert await ids(q="东区") == [staff_a.id]
    assert await ids(q="_1") == [handler.id]  # "_" is literal, not a wildcard
    assert await ids(q="%") == []
    assert await ids(is_active=True, role="resident") == [resident.id]
    page = await client.get("/users", params={"limit": 2, "offset": 1}, headers=admin.headers)
    assert page.json()["total"] == 5 and [i["id"] for i in page.json()["items"]] == [
        staff_a.id,
        staff_b.id,
    ]
    full = (await client.get("/users", params={"role": "resident"}, headers=admin.headers)).json()
    item = full["items"][0]
    assert item["phone"] == "138****8000" and "13800138000" not in str(full)
    assert "password_hash" not in item and "openid" not in item
    assert_problem(
        await client.get("/users", params={"role": "king"}, headers=admin.headers),
        422,
        "validation_error",
    )
    assert_problem(
        await client.get("/users", params={"limit": 101}, headers=admin.headers),
        422,
        "validation_error",
    )
    assert admin.id not in await ids(role="staff")


async def test_patch_resets_password_clears_lock_and_signs_out(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    admin = await factory.admin()
    district = await factory.district()
    staff = await identity.password_actor(Role.staff, region_id=district.district.id)
    login = await client.post(
        "/auth/password-login", json={"username": staff.user.username, "password": PASSWORD}
    )
    old_refresh = login.json()["refresh_token"]
    for _ in range(identity.settings.login_max_failures):
        await client.post(
            "/auth/password-login", json={"username": staff.user.username, "password": "wrong-pass"}
        )
    assert (await identity.user(staff.id)).locked_until is not None
    listed = (await client.get("/users", params={"role": "staff"}, headers=admin.headers)).json()
    assert listed["items"][0]["locked_until"] is not None

    response = await client.patch(
        f"/users/{staff.id}", json={"password": "brand-new-pass"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["locked_until"] is None
    stored = await identity.user(staff.id)
    assert stored.failed_login_count == 0 and stored.locked_until is None
    old = await client.post(
        "/auth/password-login", json={"username": staff.user.username, "password": PASSWORD}
    )
    assert_problem(old, 401, "invalid_credentials")
    new = await client.post(
        "/auth/password-login", json={"username": staff.user.username, "password": "brand-new-pass"}
    )
    assert new.status_code == 200
    assert_problem(
        await client.post("/auth/refresh", json={"refresh_token": old_refresh}),
        401,
        "refresh_token_revoked",
    )


async def test_patch_unlock_deactivate_and_move(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    admin = await factory.admin()
    district = await factory.district()
    unit = await factory.unit()
    staff = await identity.password_actor(Role.staff, region_id=district.street_a.id)
    for _ in range(identity.settings.login_max_failures):
        await client.post(
            "/auth/password-login", json={"username": staff.user.username, "password": "wrong-pass"}
        )
    unlocked = await client.patch(
        f"/users/{staff.id}", json={"unlock": True}, headers=admin.headers
    )
    assert unlocked.status_code == 200 and unlocked.json()["locked_until"] is None
    assert (
        await client.post(
            "/auth/password-login", json={"username": staff.user.username, "password": PASSWORD}
        )
    ).status_code == 200

    moved = await client.patch(
        f"/users/{staff.id}",
        json={"region_id": district.street_b.id, "nickname": "乙街道"},
        headers=admin.headers,
    )
    assert moved.status_code == 200 and moved.json()["region_id"] == district.street_b.id
    assert moved.json()["nickname"] == "乙街道" and moved.json()["updated_at"] is not None

    to_unit = await client.patch(
        f"/users/{staff.id}", json={"role": "unit", "unit_id": unit.id}, headers=admin.headers
    )
    assert to_unit.status_code == 200, to_unit.text
    assert (to_unit.json()["role"], to_unit.json()["region_id"], to_unit.json()["unit_id"]) == (
        "unit",
        None,
        unit.id,
    )
    login = await client.post(
        "/auth/password-login", json={"username": staff.user.username, "password": PASSWORD}
    )
    assert identity.claims(login.json()["access_token"]).unit_id == unit.id

    off = await client.patch(f"/users/{staff.id}", json={"is_active": False}, headers=admin.headers)
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert_problem(
        await client.post(
            "/auth/password-login", json={"username": staff.user.username, "password": PASSWORD}
        ),
        403,
        "account_disabled",
    )
    on = await client.patch(f"/users/{staff.id}", json={"is_active": True}, headers=admin.headers)
    assert on.status_code == 200
    assert (
        await client.post(
            "/auth/password-login", json={"username": staff.user.username, "password": PASSWORD}
        )
    ).status_code == 200


async def test_patch_refusals_change_nothing(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    admin = await factory.admin()
    district = await factory.district()
    staff = await identity.password_actor(Role.staff, region_id=district.street_a.id)
    resident = await factory.resident()
    assert_problem(
        await client.patch("/users/999999", json={"is_active": False}, headers=admin.headers),
        404,
        "not_found",
    )
    assert_problem(
        await client.patch(f"/users/{admin.id}", json={"is_active": False}, headers=admin.headers),
        409,
        "cannot_modify_own_access",
    )
    assert_problem(
        await client.patch(
            f"/users/{admin.id}",
            json={"role": "staff", "region_id": district.district.id},
            headers=admin.headers,
        ),
        409,
        "cannot_modify_own_access",
    )
    assert_problem(
        await client.patch(
            f"/users/{resident.id}", json={"password": "long-enough"}, headers=admin.headers
        ),
        422,
        "not_password_account",
    )
    assert_problem(
        await client.patch(f"/users/{resident.id}", json={"role": "admin"}, headers=admin.headers),
        422,
        "not_password_account",
    )
    assert_problem(
        await client.patch(f"/users/{staff.id}", json={"region_id": None}, headers=admin.headers),
        422,
        "validation_error",
    )
    assert_problem(
        await client.patch(f"/users/{staff.id}", json={"region_id": 999999}, headers=admin.headers),
        422,
        "validation_error",
    )
    assert_problem(
        await client.patch(f"/users/{staff.id}", json={"role": "unit"}, headers=admin.headers),
        422,
        "validation_error",
    )
    assert_problem(
        await client.patch(f"/users/{staff.id}", json={"password": "short"}, headers=admin.headers),
        422,
        "validation_error",
    )
    assert_problem(
        await client.patch(
            f"/users/{staff.id}", json={"username": "renamed"}, headers=admin.headers
        ),
        422,
        "validation_error",
    )
    # Fields sent as null that cannot be cleared are left alone.
    own = await client.patch(
        f"/users/{admin.id}",
        json={"role": None, "is_active": None, "nickname": "我"},
        headers=admin.headers,
    )
    assert own.status_code == 200, own.text
    assert (own.json()["role"], own.json()["is_active"], own.json()["nickname"]) == (
        "admin",
        True,
        "我",
    )
    stored = await identity.user(staff.id)
    assert (stored.role, stored.region_id, stored.unit_id, stored.updated_at) == (
        "staff",
        district.street_a.id,
        None,
        None,
    )
    assert (await identity.user(admin.id)).is_active is True
    # A WeChat account can still be deactivated (and its holder is refused from then on).
    off = await client.patch(
        f"/users/{resident.id}", json={"is_active": False}, headers=admin.headers
    )
    assert off.status_code == 200 and off.json()["role"] == "resident"
    assert_problem(await client.get("/me", headers=bearer(resident.token)), 403, "account_disabled")
