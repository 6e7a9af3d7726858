"""POST /auth/password-login: staff, unit handlers and admins; lockout after failures."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from app.core.clock import clock
from app.core.security import Role
from tests.factories import Factory
from tests.identity.conftest import PASSWORD, Identity, assert_problem, bearer

LOGIN = "/auth/password-login"


async def _login(client: httpx.AsyncClient, username: str | None, password: str) -> httpx.Response:
    return await client.post(LOGIN, json={"username": username, "password": password})


async def test_each_password_role_logs_in_with_its_scope(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    district = await factory.district()
    unit = await factory.unit()
    staff = await identity.password_actor(Role.staff, region_id=district.street_a.id)
    handler = await identity.password_actor(Role.unit, unit_id=unit.id)
    admin = await identity.password_actor(Role.admin)
    for actor, region_id, unit_id in (
        (staff, district.street_a.id, None),
        (handler, None, unit.id),
        (admin, None, None),
    ):
        response = await _login(client, actor.user.username, PASSWORD)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == identity.settings.access_token_ttl_seconds
        assert body["refresh_expires_in"] == identity.settings.refresh_token_ttl_days * 86400
        assert body["user"]["id"] == actor.id and body["user"]["role"] == actor.user.role
        assert "password_hash" not in body["user"]
        principal = identity.claims(body["access_token"])
        assert (principal.user_id, principal.role) == (actor.id, Role(actor.user.role))
        assert (principal.region_id, principal.unit_id) == (region_id, unit_id)
        me = await client.get("/me", headers=bearer(body["access_token"]))
        assert me.status_code == 200 and me.json()["username"] == actor.user.username
        stored = await identity.user(actor.id)
        assert stored.last_login_at is not None and stored.failed_login_count == 0


async def test_unknown_user_and_wrong_password_answer_alike(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    staff = await identity.password_actor(Role.admin)
    unknown = await _login(client, "nobody-here", PASSWORD)
    wrong = await _login(client, staff.user.username, "wrong-password")
    a = assert_problem(unknown, 401, "invalid_credentials")
    b = assert_problem(wrong, 401, "invalid_credentials")
    assert a == b
    assert (await identity.user(staff.id)).failed_login_count == 1


async def test_wechat_accounts_have_no_password_login(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    resident = await factory.resident(username="resident-with-name")
    assert_problem(await _login(client, "resident-with-name", PASSWORD), 401, "invalid_credentials")
    # Even a hash on a resident row does not make it a password account.
    smuggled = await identity.password_actor(Role.resident, username="smuggled")
    assert_problem(await _login(client, "smuggled", PASSWORD), 401, "invalid_credentials")
    assert (await identity.user(resident.id)).last_login_at is None
    assert (await identity.user(smuggled.id)).last_login_at is None


async def test_inactive_account_is_refused_only_with_the_right_password(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    admin = await identity.password_actor(Role.admin, is_active=False)
    assert_problem(await _login(client, admin.user.username, PASSWORD), 403, "account_disabled")
    assert_problem(
        await _login(client, admin.user.username, "nope-nope"), 401, "invalid_credentials"
    )
    assert await identity.refresh_rows(admin.id) == []


async def test_bad_bodies_are_422(client: httpx.AsyncClient) -> None:
    for body in ({}, {"username": "a"}, {"username": "", "password": "x"}, {"password": "x"}):
        assert_problem(await client.post(LOGIN, json=body), 422, "validation_error")


async def test_five_failures_lock_the_account_until_the_lock_runs_out(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    clock.freeze(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    staff = await identity.password_actor(Role.admin)
    name = staff.user.username
    max_failures = identity.settings.login_max_failures
    for attempt in range(1, max_failures):
        assert_problem(await _login(client, name, f"wrong-{attempt}"), 401, "invalid_credentials")
        assert (await identity.user(staff.id)).failed_login_count == attempt
    locking = await _login(client, name, "wrong-last")
    body = assert_problem(locking, 423, "account_locked")
    unlock_at = datetime(2026, 11, 22, 8, 0, tzinfo=UTC) + timedelta(
        minutes=identity.settings.login_lock_minutes
    )
    assert datetime.fromisoformat(body["locked_until"]) == unlock_at
    assert int(locking.headers["retry-after"]) == identity.settings.login_lock_minutes * 60 + 1
    stored = await identity.user(staff.id)
    assert stored.failed_login_count == max_failures and stored.locked_until == unlock_at

    # Locked: even the right password is refused, and does not extend the lock.
    clock.advance(timedelta(minutes=identity.settings.login_lock_minutes - 1))
    assert_problem(await _login(client, name, PASSWORD), 423, "account_locked")
    assert_problem(await _login(client, name, "wrong-again"), 423, "account_locked")
    assert (await identity.user(staff.id)).locked_until == unlock_at

    # The lock runs out: a failure starts a new count instead of locking again at once.
    clock.advance(timedelta(minutes=1))
    assert_problem(await _login(client, name, "wrong-after"), 401, "invalid_credentials")
    stored = await identity.user(staff.id)
    assert stored.failed_login_count == 1 and stored.locked_until is None
    ok = await _login(client, name, PASSWORD)
    assert ok.status_code == 200, ok.text
    stored = await identity.user(staff.id)
    assert stored.failed_login_count == 0 and stored.locked_until is None


async def test_a_success_resets_the_failure_count(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    staff = await identity.password_actor(Role.admin)
    for _ in range(identity.settings.login_max_failures - 1):
        await _login(client, staff.user.username, "wrong-password")
    assert (await _login(client, staff.user.username, PASSWORD)).status_code == 200
    assert_problem(
        await _login(client, staff.user.username, "wrong-password"), 401, "invalid_credentials"
    )
    assert (await identity.user(staff.id)).failed_login_count == 1


async def test_racing_failures_are_counted_exactly(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    staff = await identity.password_actor(Role.admin)
    max_failures = identity.settings.login_max_failures
    responses = await asyncio.gather(
        *(_login(client, staff.user.username, f"wrong-{i}") for i in range(max_failures + 4))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [401] * (max_failures - 1) + [423] * 5
    stored = await identity.user(staff.id)
    assert stored.failed_login_count == max_failures and stored.locked_until is not None
    assert await identity.refresh_rows(staff.id) == []
