"""POST /me/deputy-binding: a resident account becomes a roster deputy's account."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from app.core.clock import clock, utcnow
from app.core.security import Role
from app.identity.service import binding_code_hash, generate_binding_code, normalize_binding_code
from tests.factories import Factory
from tests.identity.conftest import Identity, assert_problem, bearer

BIND = "/me/deputy-binding"


async def test_binding_code_turns_a_resident_into_the_deputy(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    deputy = await factory.deputy(name="王建国")
    code_row = await identity.binding_code(deputy, "7KQ4M2XD")
    resident = await factory.resident()
    response = await client.post(
        BIND, json={"binding_code": "7kq4-m2xd "}, headers=resident.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["role"] == "deputy" and body["user"]["deputy_id"] == deputy.id
    assert body["user"]["deputy"] == {"id": deputy.id, "name": "王建国"}
    principal = identity.claims(body["access_token"])
    assert (principal.user_id, principal.role, principal.deputy_id) == (
        resident.id,
        Role.deputy,
        deputy.id,
    )
    stored = await identity.user(resident.id)
    assert (stored.role, stored.deputy_id) == (Role.deputy, deputy.id)
    used = await identity.binding_code_row(code_row.id)
    assert used.used_at is not None and used.used_by_user_id == resident.id
    # The answered refresh token also carries the deputy role.
    refreshed = await client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert identity.claims(refreshed.json()["access_token"]).deputy_id == deputy.id
    # So does the old resident refresh token's successor: the role comes from the account.
    me = await client.get("/me", headers=bearer(body["access_token"]))
    assert me.json()["role"] == "deputy"


async def test_used_expired_and_unknown_codes(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    deputy = await factory.deputy()
    await identity.binding_code(deputy, "USED2345", used_at=utcnow() - timedelta(hours=1))
    expired = await identity.binding_code(
        deputy, "LATE2345", expires_at=utcnow() + timedelta(minutes=10)
    )
    resident = await factory.resident()
    assert_problem(
        await client.post(BIND, json={"binding_code": "USED2345"}, headers=resident.headers),
        409,
        "binding_code_used",
    )
    assert_problem(
        await client.post(BIND, json={"binding_code": "NOPE2345"}, headers=resident.headers),
        422,
        "invalid_binding_code",
    )
    clock.advance(timedelta(minutes=10))
    assert_problem(
        await client.post(BIND, json={"binding_code": "LATE2345"}, headers=resident.headers),
        422,
        "binding_code_expired",
    )
    stored = await identity.user(resident.id)
    assert (stored.role, stored.deputy_id) == (Role.resident, None)
    assert (await identity.binding_code_row(expired.id)).used_at is None


async def test_a_code_is_one_time(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    deputy = await factory.deputy()
    await identity.binding_code(deputy, "ONCE2345")
    first = await factory.resident()
    second = await factory.resident()
    assert (
        await client.post(BIND, json={"binding_code": "ONCE2345"}, headers=first.headers)
    ).status_code == 200
    assert_problem(
        await client.post(BIND, json={"binding_code": "ONCE2345"}, headers=second.headers),
        409,
        "binding_code_used",
    )
    assert (await identity.user(second.id)).role == Role.resident


async def test_deputy_already_bound_to_another_account(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    deputy = await factory.deputy()
    await factory.deputy_actor(deputy)
    code = await identity.binding_code(deputy, "TAKEN234")
    resident = await factory.resident()
    assert_problem(
        await client.post(BIND, json={"binding_code": "TAKEN234"}, headers=resident.headers),
        409,
        "deputy_already_bound",
    )
    # The refused attempt did not spend the code.
    assert (await identity.binding_code_row(code.id)).used_at is None
    assert (await identity.user(resident.id)).role == Role.resident


async def test_inactive_deputy_cannot_be_bound(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    deputy = await factory.deputy(is_active=False)
    await identity.binding_code(deputy, "GONE2345")
    resident = await factory.resident()
    assert_problem(
        await client.post(BIND, json={"binding_code": "GONE2345"}, headers=resident.headers),
        409,
        "deputy_inactive",
    )


async def test_only_residents_bind(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    district = await factory.district()
    unit = await factory.unit()
    deputy = await factory.deputy()
    code = await identity.binding_code(deputy, "ROLE2345")
    assert_problem(
        await client.post(BIND, json={"binding_code": "ROLE2345"}), 401, "unauthenticated"
    )
    for actor in (
        await factory.staff(district.district),
        await factory.unit_handler(unit),
        await factory.admin(),
    ):
        assert_problem(
            await client.post(BIND, json={"binding_code": "ROLE2345"}, headers=actor.headers),
            403,
            "forbidden",
        )
        assert (await identity.user(actor.id)).deputy_id is None
    bound = await factory.deputy_actor()
    assert_problem(
        await client.post(BIND, json={"binding_code": "ROLE2345"}, headers=bound.headers),
        409,
        "account_already_bound",
    )
    assert (await identity.binding_code_row(code.id)).used_at is None
    inactive = await factory.resident(is_active=False)
    assert_problem(
        await client.post(BIND, json={"binding_code": "ROLE2345"}, headers=inactive.headers),
        403,
        "account_disabled",
    )


async def test_body_must_name_exactly_one_way(client: httpx.AsyncClient, factory: Factory) -> None:
    resident = await factory.resident()
    for body in (
        {},
        {"use_verified_phone": False},
        {"binding_code": "ABCD2345", "use_verified_phone": True},
        {"binding_code": "ab"},
        {"binding_code": "ABCD2345", "deputy_id": 1},
    ):
        assert_problem(
            await client.post(BIND, json=body, headers=resident.headers), 422, "validation_error"
        )


async def test_two_accounts_racing_for_one_code_exactly_one_wins(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    deputy = await factory.deputy()
    await identity.binding_code(deputy, "RACE2345")
    residents = [await factory.resident() for _ in range(6)]
    responses = await asyncio.gather(
        *(
            client.post(BIND, json={"binding_code": "RACE2345"}, headers=r.headers)
            for r in residents
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 5
    # Depending on when a loser looks, it finds the code spent or the deputy taken.
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {
        "binding_code_used",
        "deputy_already_bound",
    }
    bound = [u for u in await identity.users() if u.deputy_id == deputy.id]
    assert len(bound) == 1 and bound[0].role == Role.deputy


async def test_two_codes_for_one_deputy_racing_bind_one_account(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    deputy = await factory.deputy()
    codes = [f"TWIN{n}AB{n}" for n in range(2, 8)]
    for code in codes:
        await identity.binding_code(deputy, code)
    residents = [await factory.resident() for _ in codes]
    responses = await asyncio.gather(
        *(
            client.post(BIND, json={"binding_code": code}, headers=r.headers)
            for code, r in zip(codes, residents, strict=True)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 5
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"deputy_already_bound"}
    assert len([u for u in await identity.users() if u.deputy_id == deputy.id]) == 1


async def test_binding_by_verified_phone(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    deputy = await factory.deputy(name="李红", phone="13700137000")
    resident = await factory.resident(phone="13700137000", phone_verified_at=utcnow())
    response = await client.post(BIND, json={"use_verified_phone": True}, headers=resident.headers)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["deputy"] == {"id": deputy.id, "name": "李红"}
    assert identity.claims(response.json()["access_token"]).deputy_id == deputy.id


async def test_binding_by_phone_refusals(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    await factory.deputy(phone="13600136000")
    unverified = await factory.resident(phone="13600136000")
    assert_problem(
        await client.post(BIND, json={"use_verified_phone": True}, headers=unverified.headers),
        422,
        "phone_not_verified",
    )
    stranger = await factory.resident(phone="13500135000", phone_verified_at=utcnow())
    assert_problem(
        await client.post(BIND, json={"use_verified_phone": True}, headers=stranger.headers),
        422,
        "no_deputy_match",
    )
    # A roster holding the number twice (two spellings) cannot say which deputy it is.
    await factory.deputy(phone="13400134000")
    await factory.deputy(phone="+8613400134000")
    twice = await factory.resident(phone="13400134000", phone_verified_at=utcnow())
    assert_problem(
        await client.post(BIND, json={"use_verified_phone": True}, headers=twice.headers),
        409,
        "ambiguous_deputy_match",
    )
    await factory.deputy(phone="13300133000", is_active=False)
    retired = await factory.resident(phone="13300133000", phone_verified_at=utcnow())
    assert_problem(
        await client.post(BIND, json={"use_verified_phone": True}, headers=retired.headers),
        422,
        "no_deputy_match",
    )
    taken = await factory.deputy(phone="13200132000")
    await factory.deputy_actor(taken)
    late = await factory.resident(phone="13200132000", phone_verified_at=utcnow())
    assert_problem(
        await client.post(BIND, json={"use_verified_phone": True}, headers=late.headers),
        409,
        "deputy_already_bound",
    )
    for actor in (unverified, stranger, twice, retired, late):
        assert (await identity.user(actor.id)).role == Role.resident


async def test_two_accounts_with_the_same_verified_phone_racing(
    client: httpx.AsyncClient, factory: Factory, identity: Identity
) -> None:
    deputy = await factory.deputy(phone="13100131000")
    residents = [
        await factory.resident(phone="13100131000", phone_verified_at=utcnow()) for _ in range(5)
    ]
    responses = await asyncio.gather(
        *(
            client.post(BIND, json={"use_verified_phone": True}, headers=r.headers)
            for r in residents
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 4
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"deputy_already_bound"}
    assert len([u for u in await identity.users() if u.deputy_id == deputy.id]) == 1


def test_binding_code_helpers() -> None:
    code = generate_binding_code()
    assert len(code) == 8 and code == normalize_binding_code(code)
    assert not set(code) & set("01IO")
    assert binding_code_hash(code.lower()[:4] + "-" + code.lower()[4:]) == binding_code_hash(code)
    assert len({generate_binding_code() for _ in range(200)}) == 200
