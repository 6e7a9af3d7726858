"""POST /auth/refresh: rotation, reuse detection, expiry, races; access token expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from app.core.clock import clock
from app.core.security import Role
from app.identity.service import purge_refresh_tokens
from tests.identity.conftest import PASSWORD, Identity, assert_problem, bearer

REFRESH = "/auth/refresh"


async def _tokens(client: httpx.AsyncClient, identity: Identity) -> tuple[int, dict[str, str]]:
    admin = await identity.password_actor(Role.admin)
    response = await client.post(
        "/auth/password-login", json={"username": admin.user.username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return admin.id, response.json()


async def test_refresh_rotates_and_stores_only_hashes(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    user_id, first = await _tokens(client, identity)
    second = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["user"]["id"] == user_id and body["token_type"] == "bearer"
    assert identity.claims(body["access_token"]).user_id == user_id
    rows = await identity.refresh_rows(user_id)
    assert len(rows) == 2
    stored_ids = {row.id for row in rows}
    assert first["refresh_token"] not in stored_ids and body["refresh_token"] not in stored_ids
    assert len({row.family_id for row in rows}) == 1
    spent = [row for row in rows if row.used_at is not None]
    assert len(spent) == 1
    # The new one works in turn.
    third = await client.post(REFRESH, json={"refresh_token": body["refresh_token"]})
    assert third.status_code == 200, third.text


async def test_reusing_a_spent_token_revokes_the_family(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    user_id, first = await _tokens(client, identity)
    # A second login is another family, untouched by the reuse below.
    other = await client.post(
        "/auth/password-login",
        json={"username": (await identity.user(user_id)).username, "password": PASSWORD},
    )
    rotated = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    reuse = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert_problem(reuse, 401, "refresh_token_reused")
    # The revocation committed although the answer was an error.
    assert_problem(
        await client.post(REFRESH, json={"refresh_token": rotated["refresh_token"]}),
        401,
        "refresh_token_revoked",
    )
    family = {r.id: r for r in await identity.refresh_rows(user_id)}
    revoked = [r for r in family.values() if r.revoked_at is not None]
    assert len(revoked) == 2
    fine = await client.post(REFRESH, json={"refresh_token": other.json()["refresh_token"]})
    assert fine.status_code == 200, fine.text


async def test_expired_and_unknown_refresh_tokens(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    _, tokens = await _tokens(client, identity)
    assert_problem(
        await client.post(REFRESH, json={"refresh_token": "not-a-token"}),
        401,
        "invalid_refresh_token",
    )
    assert_problem(await client.post(REFRESH, json={}), 422, "validation_error")
    clock.advance(timedelta(days=identity.settings.refresh_token_ttl_days, seconds=1))
    assert_problem(
        await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]}),
        401,
        "refresh_token_expired",
    )


async def test_just_before_expiry_the_refresh_token_works(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    _, tokens = await _tokens(client, identity)
    clock.advance(timedelta(days=identity.settings.refresh_token_ttl_days, seconds=-5))
    response = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200, response.text


async def test_racing_refreshes_of_one_token_let_exactly_one_through(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    user_id, tokens = await _tokens(client, identity)
    responses = await asyncio.gather(
        *(client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]}) for _ in range(8))
    )
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1
    # The first loser finds a spent token (a reuse, which revokes the family); later ones
    # may already find it revoked.
    codes = [r.json()["code"] for r in responses if r.status_code != 200]
    assert {r.status_code for r in responses if r.status_code != 200} == {401}
    assert "refresh_token_reused" in codes
    assert set(codes) <= {"refresh_token_reused", "refresh_token_revoked"}
    # A race on one token is a reuse: the family, the winner's new token included, is revoked.
    assert_problem(
        await client.post(REFRESH, json={"refresh_token": winners[0].json()["refresh_token"]}),
        401,
        "refresh_token_revoked",
    )
    rows = await identity.refresh_rows(user_id)
    assert len(rows) == 2 and all(r.revoked_at is not None for r in rows)


async def test_access_token_expires_with_the_clock(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    _, tokens = await _tokens(client, identity)
    headers = bearer(tokens["access_token"])
    clock.advance(timedelta(seconds=identity.settings.access_token_ttl_seconds - 5))
    assert (await client.get("/me", headers=headers)).status_code == 200
    clock.advance(timedelta(seconds=10))
    assert_problem(await client.get("/me", headers=headers), 401, "unauthenticated")
    # The refresh token still brings the caller back.
    fresh = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert fresh.status_code == 200
    assert (
        await client.get("/me", headers=bearer(fresh.json()["access_token"]))
    ).status_code == 200


async def test_refresh_carries_the_current_role_and_refuses_disabled_accounts(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    user_id, tokens = await _tokens(client, identity)
    admin = await identity.password_actor(Role.admin)
    deactivate = await client.patch(
        f"/users/{user_id}", json={"is_active": False}, headers=admin.headers
    )
    assert deactivate.status_code == 200, deactivate.text
    # Deactivation revoked its refresh tokens.
    assert_problem(
        await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]}),
        401,
        "refresh_token_revoked",
    )
    # And the still-valid access token no longer reaches the account.
    assert_problem(
        await client.get("/me", headers=bearer(tokens["access_token"])), 403, "account_disabled"
    )


async def test_garbage_bearer_tokens_are_401(client: httpx.AsyncClient, identity: Identity) -> None:
    _, tokens = await _tokens(client, identity)
    assert_problem(await client.get("/me"), 401, "unauthenticated")
    assert_problem(await client.get("/me", headers=bearer("abc.def.ghi")), 401, "unauthenticated")
    # A refresh token is not an access token.
    assert_problem(
        await client.get("/me", headers=bearer(tokens["refresh_token"])), 401, "unauthenticated"
    )


async def test_purge_deletes_only_long_expired_refresh_tokens(
    client: httpx.AsyncClient, identity: Identity
) -> None:
    user_id, old = await _tokens(client, identity)
    clock.advance(timedelta(days=identity.settings.refresh_token_ttl_days + 8))
    _, fresh = await _tokens(client, identity)
    async with identity.db.transaction() as session:
        assert await purge_refresh_tokens(session, older_than_days=7) == 1
    assert await identity.refresh_rows(user_id) == []
    response = await client.post(REFRESH, json={"refresh_token": fresh["refresh_token"]})
    assert response.status_code == 200, response.text
    assert_problem(
        await client.post(REFRESH, json={"refresh_token": old["refresh_token"]}),
        401,
        "invalid_refresh_token",
    )
