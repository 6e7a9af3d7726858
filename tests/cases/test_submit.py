"""Submission: who may, what is checked, idempotency, rate limits, deputy codes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from app.cases.models import CaseSubmissionKey
from app.core.clock import clock
from app.core.db import Database
from app.core.security import Role
from app.wechat.fake_server import FakeWeChat
from tests.cases.conftest import (
    World,
    case_body,
    case_row,
    count_cases,
    count_events,
    notifications,
    submit,
)
from tests.factories import Factory


async def test_categories_are_public_with_deadline_days(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get("/case-categories")
    assert response.status_code == 200
    by_code = {c["code"]: c for c in response.json()}
    assert by_code["municipal"]["name"] == "市政设施"
    assert by_code["municipal"]["default_deadline_days"] == 10
    assert by_code["safety"]["default_deadline_days"] == 5


async def test_resident_submission_is_registered_checked_and_announced(
    client: httpx.AsyncClient, world: World, db: Database, fake_wechat: FakeWeChat
) -> None:
    case = await submit(client, world.resident, world, contact_phone="13800001111")
    assert case["status"] == "registered"
    assert case["channel"] == "miniprogram"
    assert case["content_flag"] is None  # residents never see staff flags
    assert case["contact_phone"] == "13800001111"  # the owner sees their own number
    checks = fake_wechat.received("msg_sec_check")
    assert len(checks) == 1
    assert checks[0].body["openid"] == world.resident.user.openid
    assert "路灯" in checks[0].body["content"]
    (note,) = await notifications(db, world.resident.id)
    assert note.event == "case.registered"
    assert note.dedupe_key == f"case:{case['id']}:registered:0"
    assert note.params["number"] == case["number"]
    assert note.params["status_text"] == "已登记"


async def test_risky_content_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    response = await client.post(
        "/cases",
        json=case_body(world, content="这里有人组织赌博活动，影响很坏"),
        headers=world.resident.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "content_rejected"
    assert await count_cases(db) == 0
    assert await notifications(db) == []


async def test_review_content_is_registered_and_flagged_for_staff(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    case = await submit(client, world.resident, world, content="请加微信联系我，我详细说明情况")
    assert case["status"] == "registered"
    staff_view = (await client.get(f"/cases/{case['id']}", headers=world.staff.headers)).json()
    assert staff_view["content_flag"] == "review"
    assert "人工复核" in staff_view["timeline"][0]["internal_note"]


async def test_wechat_unavailable_still_registers_flagged(
    client: httpx.AsyncClient, world: World, db: Database, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.fail("msg_sec_check", http_status=503, times=10)
    case = await submit(client, world.resident, world)
    assert case["status"] == "registered"
    assert (await case_row(db, case["id"])).content_flag == "unchecked"


async def test_deputy_submits_own_suggestion_and_from_a_reception(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory
) -> None:
    own = await submit(client, world.deputy, world)
    assert own["channel"] == "deputy"
    assert own["is_owner"] is True

    from app.presence.models import Reception

    reception = await factory.add(
        Reception(
            station_id=world.station_a.id,
            deputy_id=world.deputy.deputy_id,
            topic="路灯",
            content="居民反映路灯不亮",
            resident_name="张三丰",
            resident_phone="13712345678",
            received_at=datetime.now(UTC),
            created_by_user_id=world.deputy.id,
        )
    )
    from_reception = await submit(
        client,
        world.deputy,
        world,
        reception_id=reception.id,
        contact_name="张三丰",
        contact_phone="13712345678",
    )
    assert from_reception["channel"] == "reception"
    async with db.transaction(write=False) as session:
        stored = await session.get(Reception, reception.id)
        assert stored is not None and stored.case_id == from_reception["id"]
    # A reception turns into one case only.
    again = await client.post(
        "/cases", json=case_body(world, reception_id=reception.id), headers=world.deputy.headers
    )
    assert again.status_code == 422
    assert again.json()["code"] == "reception_already_used"
    # Another deputy's reception is refused; residents cannot name receptions.
    other = await factory.deputy_actor()
    refused = await client.post(
        "/cases", json=case_body(world, reception_id=reception.id), headers=other.headers
    )
    assert refused.status_code == 422
    as_resident = await client.post(
        "/cases", json=case_body(world, reception_id=reception.id), headers=world.resident.headers
    )
    assert as_resident.status_code == 403
    assert await count_cases(db) == 2


async def test_staff_register_a_phone_call_with_contact_details(
    client: httpx.AsyncClient, world: World, db: Database, fake_wechat: FakeWeChat
) -> None:
    missing = await client.post(
        "/cases", json=case_body(world, channel="phone"), headers=world.staff.headers
    )
    assert missing.status_code == 422
    assert missing.json()["code"] == "contact_required"
    case = await submit(
        client,
        world.staff,
        world,
        channel="counter",
        contact_name="李四",
        contact_phone="13600006666",
    )
    assert case["channel"] == "counter"
    assert case["contact_phone"] == "13600006666"  # staff of the region see it
    assert case["is_owner"] is False
    assert fake_wechat.received("msg_sec_check") == []  # staff text is not content-checked
    assert await count_cases(db) == 1


async def test_who_may_submit_and_bad_input(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    assert (await client.post("/cases", json=case_body(world))).status_code == 401
    unit = await client.post("/cases", json=case_body(world), headers=world.handler.headers)
    assert unit.status_code == 403
    bad = [
        case_body(world, title=""),
        case_body(world, station_id=None),  # neither region nor station
        case_body(world, category_id=9999),
        case_body(world, station_id=99999),
        case_body(world, latitude=None),  # longitude without latitude
        case_body(world, attachment_ids=[1, 1]),
        case_body(world, deputy_id=99999),
        case_body(world, channel="phone"),  # residents do not choose the channel
        case_body(world, deputy_scene="d.1.forgedforged"),
        case_body(world, attachment_ids=[424242]),  # not an upload of theirs
        {**case_body(world), "unexpected": 1},
    ]
    for body in bad:
        response = await client.post("/cases", json=body, headers=world.resident.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert await count_cases(db) == 0
    assert await count_events(db) == 0


async def test_retried_submission_answers_the_first_result(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    headers = {**world.resident.headers, "Idempotency-Key": "draft-0001-abcdef"}
    first = await client.post("/cases", json=case_body(world), headers=headers)
    second = await client.post("/cases", json=case_body(world), headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert await count_cases(db) == 1
    # Another user's identical key is theirs alone.
    other = await client.post(
        "/cases",
        json=case_body(world),
        headers={**world.resident2.headers, "Idempotency-Key": "draft-0001-abcdef"},
    )
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    # The same key with a different body is refused and makes nothing.
    reused = await client.post("/cases", json=case_body(world, title="另一件事"), headers=headers)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    bad_key = await client.post(
        "/cases", json=case_body(world), headers={**world.resident.headers, "Idempotency-Key": "x"}
    )
    assert bad_key.status_code == 422
    assert await count_cases(db) == 2


async def test_concurrent_retries_with_one_key_make_one_case(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    headers = {**world.resident.headers, "Idempotency-Key": "draft-concurrent-42"}
    responses = await asyncio.gather(
        *(client.post("/cases", json=case_body(world), headers=headers) for _ in range(12))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count_cases(db) == 1
    async with db.transaction(write=False) as session:
        keys = list((await session.execute(select(CaseSubmissionKey))).scalars())
    assert len(keys) == 1 and keys[0].case_id == responses[0].json()["id"]
    assert len(await notifications(db, world.resident.id)) == 1


async def test_rate_limit_per_hour_with_retry_after(
    client: httpx.AsyncClient, world: World, db: Database, settings: object
) -> None:
    clock.freeze(datetime(2026, 11, 22, 2, 0, tzinfo=UTC))
    limit = 10  # case_submit_per_hour
    for i in range(limit):
        await submit(client, world.resident, world, title=f"第{i}件事情")
        clock.advance(timedelta(minutes=1))
    limited = await client.post("/cases", json=case_body(world), headers=world.resident.headers)
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    # The first submission (02:00) leaves the hour at 03:00; now is 02:10.
    assert limited.headers["Retry-After"] == str(50 * 60)
    assert await count_cases(db) == limit
    # Others are not limited by this resident's count; staff registering calls never are.
    await submit(client, world.resident2, world)
    clock.advance(timedelta(minutes=51))
    await submit(client, world.resident, world)
    assert await count_cases(db) == limit + 2


async def test_rate_limit_per_day(client: httpx.AsyncClient, world: World, db: Database) -> None:
    clock.freeze(datetime(2026, 11, 22, 0, 0, tzinfo=UTC))
    for i in range(30):
        await submit(client, world.resident, world, title=f"第{i}件事情")
        clock.advance(timedelta(minutes=7))
    limited = await client.post("/cases", json=case_body(world), headers=world.resident.headers)
    assert limited.status_code == 429
    retry_after = int(limited.headers["Retry-After"])
    # The first of the day's 30 leaves the 24-hour window at 2026-11-23 00:00.
    assert retry_after == int((timedelta(days=1) - timedelta(minutes=7 * 30)).total_seconds())


async def test_deputy_code_names_the_deputy(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    deputy_id = world.deputy.deputy_id
    as_json = await client.get(
        f"/deputies/{deputy_id}/qrcode", params={"format": "json"}, headers=world.staff.headers
    )
    assert as_json.status_code == 200
    scene = as_json.json()["scene"]
    assert len(scene) <= 32 and scene.startswith(f"d.{deputy_id}.")
    png = await client.get(f"/deputies/{deputy_id}/qrcode", headers=world.deputy.headers)
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    # Residents and other deputies may not print someone's code.
    assert (
        await client.get(f"/deputies/{deputy_id}/qrcode", headers=world.resident.headers)
    ).status_code == 403
    other = await factory.deputy_actor()
    assert (
        await client.get(f"/deputies/{deputy_id}/qrcode", headers=other.headers)
    ).status_code == 403

    card = await client.get(f"/deputy-codes/{scene}")
    assert card.json() == {"deputy_id": deputy_id, "name": "王建国", "level": "district"}
    forged = scene[:-1] + ("A" if scene[-1] != "A" else "B")
    assert (await client.get(f"/deputy-codes/{forged}")).status_code == 404

    case = await submit(client, world.resident, world, deputy_scene=scene)
    assert case["deputy_id"] == deputy_id
    # The deputy written to sees the case.
    seen = await client.get(f"/cases/{case['id']}", headers=world.deputy.headers)
    assert seen.status_code == 200
    assert seen.json()["contact_phone"] is None or "****" in seen.json()["contact_phone"]


async def test_unknown_role_token_cannot_submit(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    admin = await factory.actor(Role.admin)
    response = await client.post(
        "/cases",
        json=case_body(world, channel="phone", contact_name="王五"),
        headers=admin.headers,
    )
    assert response.status_code == 201  # admins register calls like staff


async def test_photos_are_linked_and_visible_to_those_who_see_the_case(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    from tests.attachments.images import png

    ids = []
    for _ in range(2):
        uploaded = await client.post(
            "/attachments",
            files={"file": ("photo.png", png(), "image/png")},
            headers=world.resident.headers,
        )
        assert uploaded.status_code == 201, uploaded.text
        ids.append(uploaded.json()["id"])
    case = await submit(client, world.resident, world, attachment_ids=ids)
    assert case["attachment_ids"] == ids
    for actor, status in [
        (world.resident, 200),
        (world.staff, 200),
        (world.staff_b, 404),
        (world.resident2, 404),
        (world.handler, 404),
    ]:
        response = await client.get(f"/attachments/{ids[0]}", headers=actor.headers)
        assert response.status_code == status, (actor.user.username, response.text)
    await client.post(
        f"/cases/{case['id']}/assign", json={"unit_id": world.unit.id}, headers=world.staff.headers
    )
    assert (
        await client.get(f"/attachments/{ids[1]}", headers=world.handler.headers)
    ).status_code == 200
    # A photo already used by a case cannot be used again; nothing is stored then.
    again = await client.post(
        "/cases", json=case_body(world, attachment_ids=[ids[0]]), headers=world.resident.headers
    )
    assert again.status_code == 422
    assert await count_cases(db) == 1


async def test_old_submission_keys_are_purged(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    from app.cases.idempotency import KEY_RETENTION_DAYS, purge_submission_keys

    clock.freeze(datetime(2026, 11, 22, 2, 0, tzinfo=UTC))
    headers = {**world.resident.headers, "Idempotency-Key": "draft-purge-000001"}
    first = await client.post("/cases", json=case_body(world), headers=headers)
    assert first.status_code == 201
    async with db.transaction() as session:
        kept = await purge_submission_keys(session, clock.now() + timedelta(days=1))
    assert kept == 0
    assert (
        await client.post("/cases", json=case_body(world), headers=headers)
    ).json() == first.json()
    async with db.transaction() as session:
        purged = await purge_submission_keys(
            session, clock.now() + timedelta(days=KEY_RETENTION_DAYS, minutes=1)
        )
    assert purged == 1
    assert await count_cases(db) == 1


async def test_concurrent_submissions_respect_the_limit_exactly(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    responses = await asyncio.gather(
        *(
            client.post(
                "/cases",
                json=case_body(world, title=f"同时提交{i}"),
                headers=world.resident.headers,
            )
            for i in range(15)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 10 + [429] * 5
    assert await count_cases(db) == 10
