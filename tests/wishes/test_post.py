"""POST /wishes: who may post, what is checked, and that refused input stores nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.attachments.models import Attachment
from app.core.db import Database
from app.wechat.fake_server import FakeWeChat
from app.wishes.models import Wish, WishEvent
from tests.attachments.images import upload_id
from tests.wishes.conftest import World, events_of, wish_row

BENEFICIARY = {
    "name": "李奶奶",
    "phone": "13900001111",
    "address": "和平里5号",
    "description": "独居老人",
}


def wish_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "想要一副老花镜",
        "content": "奶奶的老花镜摔坏了，看不清药盒上的字。",
        "beneficiary": dict(BENEFICIARY),
    }
    body.update(overrides)
    return body


async def count(db: Database, model: Any) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_post_with_a_region_only(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    response = await client.post(
        "/wishes",
        headers=world.resident.headers,
        json=wish_body(region_id=world.district.community_b.id),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["region_id"] == world.district.community_b.id and body["station_id"] is None
    assert body["status"] == "pending_review"
    row = await wish_row(db, body["id"])
    assert row.content_check == "passed" and row.content_check_trace_id
    assert row.resident_id == world.resident.id


async def test_station_decides_the_region(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        "/wishes",
        headers=world.resident.headers,
        json=wish_body(station_id=world.station_b.id, region_id=world.district.community_a.id),
    )
    assert response.status_code == 201
    assert response.json()["region_id"] == world.district.community_b.id


async def test_risky_text_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, world: World, db: Database, fake_wechat: FakeWeChat
) -> None:
    photo = await upload_id(client, world.resident)
    response = await client.post(
        "/wishes",
        headers=world.resident.headers,
        json=wish_body(
            station_id=world.station.id, content="想参加赌博赢点钱", attachment_ids=[photo]
        ),
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "content_rejected"
    assert await count(db, Wish) == 0 and await count(db, WishEvent) == 0
    async with db.transaction(write=False) as session:
        attachment = await session.get(Attachment, photo)
        assert attachment is not None and attachment.owner_type is None


async def test_review_suggestion_keeps_it_pending_and_flagged(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    response = await client.post(
        "/wishes",
        headers=world.resident.headers,
        json=wish_body(station_id=world.station.id, content="有需要的请加微信联系我奶奶"),
    )
    assert response.status_code == 201
    wish_id = response.json()["id"]
    assert response.json()["status"] == "pending_review"
    staff_view = await client.get(f"/wishes/{wish_id}", headers=world.staff.headers)
    assert staff_view.json()["content_check"] == "review"
    assert staff_view.json()["needs_attention"] is True
    flagged = await client.get("/wishes?needs_attention=true", headers=world.staff.headers)
    assert [w["id"] for w in flagged.json()["items"]] == [wish_id]
    events = await events_of(db, wish_id)
    assert events[0].note == "内容安全检测建议人工复核"


@pytest.mark.parametrize("failure", [{"errcode": -1}, {"http_status": 502}])
async def test_wechat_unavailable_stores_it_unchecked(
    client: httpx.AsyncClient,
    world: World,
    db: Database,
    fake_wechat: FakeWeChat,
    failure: dict[str, Any],
) -> None:
    fake_wechat.fail("msg_sec_check", times=5, **failure)
    response = await client.post(
        "/wishes", headers=world.resident.headers, json=wish_body(station_id=world.station.id)
    )
    assert response.status_code == 201, response.text
    row = await wish_row(db, response.json()["id"])
    assert row.status == "pending_review" and row.content_check == "unchecked"
    staff_view = await client.get(f"/wishes/{row.id}", headers=world.staff.headers)
    assert staff_view.json()["needs_attention"] is True
    assert (await events_of(db, row.id or 0))[0].note == "内容安全检测未能执行，待人工审核"


@pytest.mark.parametrize("role", ["deputy", "staff", "admin", "unit"])
async def test_only_residents_post(
    client: httpx.AsyncClient, world: World, db: Database, role: str
) -> None:
    actor = {
        "deputy": world.deputy,
        "staff": world.staff,
        "admin": world.admin,
        "unit": world.unit,
    }[role]
    response = await client.post(
        "/wishes", headers=actor.headers, json=wish_body(station_id=world.station.id)
    )
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert await count(db, Wish) == 0


async def test_anonymous_is_refused(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post("/wishes", json=wish_body(station_id=world.station.id))
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({}, "body"),  # neither station nor region
        ({"station_id": 999_999}, "body.station_id"),
        ({"region_id": 999_999}, "body.region_id"),
        ({"title": "  ", "station_id": 1}, "body.title"),
        ({"beneficiary": {"name": ""}, "station_id": 1}, "body.beneficiary.name"),
        (
            {"beneficiary": {"name": "王", "phone": "not-a-phone"}, "station_id": 1},
            "body.beneficiary.phone",
        ),
        ({"attachment_ids": list(range(1, 11)), "station_id": 1}, "body.attachment_ids"),
    ],
)
async def test_bad_input_is_422_and_stores_nothing(
    client: httpx.AsyncClient,
    world: World,
    db: Database,
    fake_wechat: FakeWeChat,
    overrides: dict[str, Any],
    field: str,
) -> None:
    response = await client.post(
        "/wishes", headers=world.resident.headers, json=wish_body(**overrides)
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem
    assert await count(db, Wish) == 0


async def test_someone_elses_or_used_photo_is_refused(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    theirs = await upload_id(client, world.other_resident)
    mine = await upload_id(client, world.resident)
    refused = await client.post(
        "/wishes",
        headers=world.resident.headers,
        json=wish_body(station_id=world.station.id, attachment_ids=[mine, theirs]),
    )
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_attachment"
    assert await count(db, Wish) == 0
    async with db.transaction(write=False) as session:
        assert (await session.get(Attachment, mine)).owner_type is None  # type: ignore[union-attr]

    first = await client.post(
        "/wishes",
        headers=world.resident.headers,
        json=wish_body(station_id=world.station.id, attachment_ids=[mine]),
    )
    assert first.status_code == 201
    again = await client.post(
        "/wishes",
        headers=world.resident.headers,
        json=wish_body(station_id=world.station.id, attachment_ids=[mine]),
    )
    assert again.status_code == 422 and again.json()["code"] == "invalid_attachment"
    assert await count(db, Wish) == 1
