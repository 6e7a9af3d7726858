"""API keys: issued once, stored hashed, scoped, rate limited, revocable, audited."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime

import httpx
import pytest
from sqlalchemy import select

from app.cases.models import CaseEvent
from app.core.clock import clock
from app.core.db import Database
from app.integrations.models import ApiKey
from tests.cases.conftest import World, submit
from tests.integrations.conftest import Key, issue, make_integrator


async def test_admin_registers_an_integrator_and_issues_a_key_shown_once(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    integrator_id = await make_integrator(client, world, allowed_ips=["10.20.0.0/16"])
    key = await issue(client, world, integrator_id, ["cases:read"], rate_limit_per_minute=5)
    assert key.key.startswith(f"lsk_{key.prefix}_")

    listed = await client.get("/integrators", headers=world.admin.headers)
    assert listed.status_code == 200
    [entry] = listed.json()
    assert entry["contact_phone"] == "138****1111"
    assert entry["allowed_ips"] == ["10.20.0.0/16"]
    [shown] = entry["keys"]
    assert shown["prefix"] == key.prefix and "key" not in shown
    assert key.key not in listed.text

    async with db.transaction(write=False) as session:
        stored = (await session.execute(select(ApiKey))).scalar_one()
    assert stored.key_hash == hashlib.sha256(key.key.encode()).hexdigest()


async def test_only_admins_manage_integrators(
    client: httpx.AsyncClient, world: World, reader: Key, hotline: int
) -> None:
    for headers in (world.staff.headers, world.resident.headers, reader.headers):
        assert (await client.get("/integrators", headers=headers)).status_code == 403
        created = await client.post("/integrators", json={"name": "x"}, headers=headers)
        assert created.status_code == 403
        issued = await client.post(
            f"/integrators/{hotline}/keys",
            json={"scopes": ["cases:read"], "region_id": world.d.district.id},
            headers=headers,
        )
        assert issued.status_code == 403
        assert (await client.get("/audit-log", headers=headers)).status_code == 403
    assert (await client.get("/integrators")).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x", "allowed_ips": ["not-an-ip"]},
        {"name": "x", "contact_email": "nope"},
    ],
)
async def test_bad_integrator_input_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, world: World, body: dict[str, object]
) -> None:
    response = await client.post("/integrators", json=body, headers=world.admin.headers)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/integrators", headers=world.admin.headers)).json() == []


async def test_duplicate_name_and_bad_key_requests(
    client: httpx.AsyncClient, world: World, hotline: int
) -> None:
    again = await client.post(
        "/integrators", json={"name": "12345 市民服务热线"}, headers=world.admin.headers
    )
    assert again.status_code == 409 and again.json()["code"] == "integrator_name_taken"
    for body in (
        {"scopes": ["cases:everything"], "region_id": world.d.district.id},
        {"scopes": [], "region_id": world.d.district.id},
        {"scopes": ["cases:read"], "region_id": 999999},
    ):
        response = await client.post(
            f"/integrators/{hotline}/keys", json=body, headers=world.admin.headers
        )
        assert response.status_code == 422, response.text
    missing = await client.post(
        "/integrators/999999/keys",
        json={"scopes": ["cases:read"], "region_id": world.d.district.id},
        headers=world.admin.headers,
    )
    assert missing.status_code == 404


async def test_a_key_reads_exactly_what_staff_of_its_region_read(
    client: httpx.AsyncClient, world: World, reader: Key
) -> None:
    in_a = await submit(client, world.resident, world)
    in_b = await submit(client, world.resident2, world, station_id=world.station_b.id)

    as_staff = await client.get("/cases", headers=world.staff_a.headers)
    as_key = await client.get("/cases", headers=reader.headers)
    assert as_key.status_code == 200, as_key.text
    assert [c["id"] for c in as_key.json()["items"]] == [c["id"] for c in as_staff.json()["items"]]
    assert [c["id"] for c in as_key.json()["items"]] == [in_a["id"]]

    one = await client.get(f"/cases/{in_a['id']}", headers={"X-API-Key": reader.key})
    assert one.status_code == 200
    outside = await client.get(f"/cases/{in_b['id']}", headers=reader.headers)
    assert outside.status_code == 404

    stats = await client.get("/stats/overview", headers=reader.headers)
    assert stats.status_code == 200, stats.text
    wider = await client.get(
        "/stats/overview", params={"region_id": world.d.district.id}, headers=reader.headers
    )
    assert wider.status_code == 403


async def test_a_key_outside_its_scopes_or_endpoints_is_refused(
    client: httpx.AsyncClient, world: World, reader: Key
) -> None:
    case = await submit(client, world.resident, world)
    # No cases:submit scope.
    refused = await client.post(
        "/cases",
        json={
            "title": "路灯",
            "content": "路灯坏了很久了",
            "category_id": world.cat(),
            "region_id": world.d.community_a.id,
        },
        headers=reader.headers,
    )
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    # Staff actions are never open to keys, whatever their scopes.
    assign = await client.post(
        f"/cases/{case['id']}/assign", json={"unit_id": world.unit.id}, headers=reader.headers
    )
    assert assign.status_code == 403 and assign.json()["code"] == "key_not_allowed"
    me = await client.get("/me", headers=reader.headers)
    assert me.status_code == 403


async def test_unknown_revoked_and_malformed_keys_are_401(
    client: httpx.AsyncClient, world: World, reader: Key
) -> None:
    assert (await client.get("/cases", headers=reader.headers)).status_code == 200
    forged = reader.key[:-4] + ("AAAA" if not reader.key.endswith("AAAA") else "BBBB")
    for headers in (
        {"Authorization": f"Bearer {forged}"},
        {"X-API-Key": "lsk_nonsense"},
        {"X-API-Key": "lsk_abcdefgh_" + "x" * 43},
    ):
        response = await client.get("/cases", headers=headers)
        assert response.status_code == 401 and response.json()["code"] == "invalid_api_key"

    revoked = await client.delete(
        f"/integrators/{reader.integrator_id}/keys/{reader.id}", headers=world.admin.headers
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    after = await client.get("/cases", headers=reader.headers)
    assert after.status_code == 401 and after.json()["code"] == "invalid_api_key"


async def test_two_keys_rotate_without_downtime_and_disabling_the_integrator_stops_all(
    client: httpx.AsyncClient, world: World, reader: Key, hotline: int
) -> None:
    second = await issue(client, world, hotline, ["cases:read"], world.d.street_a.id)
    await client.delete(f"/integrators/{hotline}/keys/{reader.id}", headers=world.admin.headers)
    assert (await client.get("/cases", headers=second.headers)).status_code == 200
    disabled = await client.patch(
        f"/integrators/{hotline}", json={"is_active": False}, headers=world.admin.headers
    )
    assert disabled.status_code == 200
    assert (await client.get("/cases", headers=second.headers)).status_code == 401


async def test_allowed_ip_ranges(client: httpx.AsyncClient, world: World) -> None:
    # httpx's ASGI transport calls from 127.0.0.1.
    inside = await make_integrator(client, world, "网格系统", allowed_ips=["127.0.0.0/8"])
    outside = await make_integrator(client, world, "数据平台", allowed_ips=["10.20.0.0/16"])
    ok = await issue(client, world, inside, ["cases:read"])
    blocked = await issue(client, world, outside, ["cases:read"])
    assert (await client.get("/cases", headers=ok.headers)).status_code == 200
    refused = await client.get("/cases", headers=blocked.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "ip_not_allowed"


async def test_rate_limit_per_key_is_429_with_retry_after_and_resets_next_minute(
    client: httpx.AsyncClient, world: World, hotline: int
) -> None:
    clock.freeze(datetime.fromisoformat("2026-11-20T10:00:10+08:00"))
    key = await issue(client, world, hotline, ["cases:read"], rate_limit_per_minute=3)
    other = await issue(client, world, hotline, ["cases:read"], rate_limit_per_minute=3)
    for _ in range(3):
        assert (await client.get("/cases", headers=key.headers)).status_code == 200
    limited = await client.get("/cases", headers=key.headers)
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) == 50
    # Counted per key.
    assert (await client.get("/cases", headers=other.headers)).status_code == 200
    clock.freeze(datetime.fromisoformat("2026-11-20T10:01:00+08:00"))
    assert (await client.get("/cases", headers=key.headers)).status_code == 200


async def test_concurrent_calls_never_exceed_the_limit(
    client: httpx.AsyncClient, world: World, hotline: int
) -> None:
    clock.freeze(datetime.fromisoformat("2026-11-20T10:00:10+08:00"))
    key = await issue(client, world, hotline, ["cases:read"], rate_limit_per_minute=5)
    answers = await asyncio.gather(*(client.get("/cases", headers=key.headers) for _ in range(12)))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) == 5 and codes.count(429) == 7


async def test_every_key_call_is_in_the_audit_log(
    client: httpx.AsyncClient, world: World, reader: Key
) -> None:
    await client.get("/cases", headers=reader.headers)
    await client.post(
        "/cases", json={"title": "x"}, headers=reader.headers
    )  # refused: no cases:submit
    log = await client.get(
        "/audit-log", params={"api_key_id": reader.id}, headers=world.admin.headers
    )
    assert log.status_code == 200
    entries = log.json()["items"]
    assert [(e["method"], e["path"], e["outcome"]) for e in entries] == [
        ("POST", "/api/v1/cases", "insufficient_scope"),
        ("GET", "/api/v1/cases", "ok"),
    ]
    assert all(e["key_prefix"] == reader.prefix and e["client_ip"] for e in entries)
    admin_actions = await client.get(
        "/audit-log", params={"actor_user_id": world.admin.id}, headers=world.admin.headers
    )
    assert {e["action"] for e in admin_actions.json()["items"]} >= {
        "integrator.create",
        "api_key.issue",
    }
    bad = await client.get(
        "/audit-log", params={"since": "2026-11-01T00:00:00"}, headers=world.admin.headers
    )
    assert bad.status_code == 422


async def test_a_key_submits_a_case_attributed_to_it(
    client: httpx.AsyncClient, world: World, hotline: int, db: Database
) -> None:
    key = await issue(client, world, hotline, ["cases:submit", "cases:read"])
    body = {
        "title": "井盖松动",
        "content": "网格员巡查发现翠苑路井盖松动，车辆经过响声很大。",
        "category_id": world.cat(),
        "region_id": world.d.community_a.id,
    }
    created = await client.post(
        "/cases", json=body, headers={**key.headers, "Idempotency-Key": "grid-20261120-0001"}
    )
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["channel"] == "api" and case["status"] == "registered"
    assert case["timeline"][0]["actor_role"] == "integrator"
    again = await client.post(
        "/cases", json=body, headers={**key.headers, "Idempotency-Key": "grid-20261120-0001"}
    )
    assert again.status_code == 201 and again.json()["id"] == case["id"]
    claimed = await client.post("/cases", json={**body, "channel": "phone"}, headers=key.headers)
    assert claimed.status_code == 422 and claimed.json()["code"] == "invalid_channel"
    async with db.transaction(write=False) as session:
        events = (
            (await session.execute(select(CaseEvent).where(CaseEvent.case_id == case["id"])))
            .scalars()
            .all()
        )
    assert [e.api_key_id for e in events] == [key.id]
    log = await client.get(
        "/audit-log", params={"api_key_id": key.id, "outcome": "ok"}, headers=world.admin.headers
    )
    assert log.json()["total"] == 3


async def test_access_log_names_the_key_by_its_prefix_only(
    client: httpx.AsyncClient, reader: Key, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        assert (await client.get("/cases", headers=reader.headers)).status_code == 200
    [line] = [r for r in caplog.records if r.name == "app.access"]
    assert getattr(line, "api_key", None) == reader.prefix
    assert f"key={reader.prefix}" in line.getMessage()
    assert reader.key not in caplog.text


async def test_a_reading_key_opens_the_photos_of_cases_in_its_region_only(
    client: httpx.AsyncClient, world: World, reader: Key
) -> None:
    from tests.attachments.images import upload_id

    photo_a = await upload_id(client, world.resident)
    photo_b = await upload_id(client, world.resident2)
    await submit(client, world.resident, world, attachment_ids=[photo_a])
    await submit(
        client, world.resident2, world, station_id=world.station_b.id, attachment_ids=[photo_b]
    )
    inside = await client.get(f"/attachments/{photo_a}", headers=reader.headers)
    assert inside.status_code in (200, 307), inside.text
    outside = await client.get(f"/attachments/{photo_b}", headers=reader.headers)
    assert outside.status_code in (403, 404)
