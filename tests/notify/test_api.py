"""The notify endpoints over HTTP: subscriptions, the inbox, the staff outbox view."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from app.core.db import Database
from app.notify.models import InboxMessage, NotificationStatus, Subscription
from app.notify.templates import CASE_PROGRESS, CASE_RESULT, WISH_PROGRESS
from app.org.models import Unit
from tests.factories import Factory
from tests.notify.conftest import Harness


async def _subscriptions(db: Database, user_id: int) -> dict[str, tuple[int, str | None]]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(select(Subscription).where(Subscription.user_id == user_id))
        return {s.template_id: (s.accepted_count, s.last_result) for s in rows.scalars()}


# Subscriptions -----------------------------------------------------------------------------


async def test_report_subscriptions_counts_accepts(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    resident = await factory.resident()
    body = {
        "results": {
            "errMsg": "requestSubscribeMessage:ok",
            CASE_PROGRESS: "accept",
            CASE_RESULT: "reject",
            "someone-elses-template": "accept",
        }
    }
    first = await client.post("/me/subscriptions", json=body, headers=resident.headers)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["ignored"] == ["someone-elses-template"]
    assert {s["template_id"]: s["accepted_count"] for s in answer["subscriptions"]} == {
        CASE_PROGRESS: 1,
        CASE_RESULT: 0,
    }
    assert answer["templates"]["case.resolved"] == CASE_RESULT
    assert answer["templates"]["wish.claimed"] == WISH_PROGRESS
    assert "case.assigned" not in answer["templates"]  # inbox only

    second = await client.post(
        "/me/subscriptions",
        json={"results": {CASE_PROGRESS: "accept", CASE_RESULT: "accept"}},
        headers=resident.headers,
    )
    assert second.status_code == 200
    assert await _subscriptions(db, resident.id) == {
        CASE_PROGRESS: (2, "accept"),
        CASE_RESULT: (1, "accept"),
    }
    mine = await client.get("/me/subscriptions", headers=resident.headers)
    assert {s["template_id"]: s["accepted_count"] for s in mine.json()["subscriptions"]} == {
        CASE_PROGRESS: 2,
        CASE_RESULT: 1,
    }


async def test_concurrent_reports_add_up(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    resident = await factory.resident()
    answers = await asyncio.gather(
        *(
            client.post(
                "/me/subscriptions",
                json={"results": {CASE_PROGRESS: "accept"}},
                headers=resident.headers,
            )
            for _ in range(8)
        )
    )
    assert [a.status_code for a in answers] == [200] * 8
    assert await _subscriptions(db, resident.id) == {CASE_PROGRESS: (8, "accept")}


async def test_bad_subscription_reports_change_nothing(
    client: httpx.AsyncClient, factory: Factory, db: Database
) -> None:
    resident = await factory.resident()
    for body in (
        {"results": {CASE_PROGRESS: "yes"}},
        {"results": {}},
        {"results": {"errMsg": "requestSubscribeMessage:ok"}},
        {"results": {CASE_PROGRESS: "accept", CASE_RESULT: 1}},
        {},
    ):
        answer = await client.post("/me/subscriptions", json=body, headers=resident.headers)
        assert answer.status_code == 422, body
        assert answer.json()["code"] == "validation_error"
    assert await _subscriptions(db, resident.id) == {}
    unauthenticated = await client.post(
        "/me/subscriptions", json={"results": {CASE_PROGRESS: "accept"}}
    )
    assert unauthenticated.status_code == 401


# Inbox -------------------------------------------------------------------------------------


async def test_inbox_lists_own_messages_with_unread_count(
    client: httpx.AsyncClient, factory: Factory, harness: Harness
) -> None:
    resident = await factory.resident()
    other = await factory.resident()
    for i in range(3):
        await harness.enqueue(
            resident.id,
            "case.handling",
            key=f"c:{i}",
            title=f"消息{i}",
            page=f"pages/case/detail?id={i}",
        )
    await harness.enqueue(other.id, "case.handling", key="c:x", title="别人的消息")

    answer = await client.get("/me/messages", headers=resident.headers)
    assert answer.status_code == 200
    body = answer.json()
    assert body["total"] == 3 and body["unread_count"] == 3
    assert [m["title"] for m in body["items"]] == ["消息2", "消息1", "消息0"]
    assert body["items"][0]["page"] == "pages/case/detail?id=2"
    assert body["items"][0]["read"] is False

    first_id = body["items"][2]["id"]
    read = await client.post(f"/me/messages/{first_id}/read", headers=resident.headers)
    assert read.status_code == 200 and read.json()["read"] is True
    again = await client.post(f"/me/messages/{first_id}/read", headers=resident.headers)
    assert again.status_code == 200 and again.json()["read_at"] == read.json()["read_at"]

    unread = await client.get("/me/messages?unread=true", headers=resident.headers)
    assert unread.json()["total"] == 2 and unread.json()["unread_count"] == 2
    assert {m["title"] for m in unread.json()["items"]} == {"消息1", "消息2"}

    paged = await client.get("/me/messages?limit=1&offset=1", headers=resident.headers)
    assert [m["title"] for m in paged.json()["items"]] == ["消息1"]
    assert paged.json()["total"] == 3

    all_read = await client.post("/me/messages/read-all", headers=resident.headers)
    assert all_read.json() == {"updated": 2, "unread_count": 0}
    assert (await client.get("/me/messages", headers=resident.headers)).json()["unread_count"] == 0
    # the other user's inbox is untouched
    assert (await client.get("/me/messages", headers=other.headers)).json()["unread_count"] == 1


async def test_inbox_refuses_other_owners(
    client: httpx.AsyncClient, factory: Factory, harness: Harness, db: Database
) -> None:
    owner = await factory.resident()
    intruder = await factory.resident()
    admin = await factory.admin()
    await harness.enqueue(owner.id, "case.handling", key="c:1")
    async with db.transaction(write=False) as session:
        message_id = (await session.execute(select(InboxMessage.id))).scalar_one()
    for actor in (intruder, admin):
        answer = await client.post(f"/me/messages/{message_id}/read", headers=actor.headers)
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"
        assert (await client.get("/me/messages", headers=actor.headers)).json()["total"] == 0
    assert (await client.post("/me/messages/999999/read", headers=owner.headers)).status_code == 404
    assert (await client.post("/me/messages/0/read", headers=owner.headers)).status_code == 422
    assert (await client.get("/me/messages")).status_code == 401
    assert (await client.post("/me/messages/read-all")).status_code == 401
    async with db.transaction(write=False) as session:
        message = await session.get(InboxMessage, message_id)
        assert message is not None and message.read_at is None


# Staff: the outbox -------------------------------------------------------------------------


async def test_staff_see_their_region_admin_sees_all(
    client: httpx.AsyncClient, factory: Factory, harness: Harness
) -> None:
    district = await factory.district()
    top_staff = await factory.staff(district.district)
    street_staff = await factory.staff(district.street_a)
    other_street_staff = await factory.staff(district.street_b)
    admin = await factory.admin()
    unit = await factory.unit()
    handler = await factory.unit_handler(unit, region_id=district.community_a.id)
    resident = await factory.resident(nickname="张三丰")
    await harness.enqueue(handler.id, "case.assigned", key="a:1", title="新交办诉求")
    await harness.enqueue(resident.id, "case.registered", key="r:1", title="诉求已登记")

    def ids(answer: httpx.Response) -> set[int]:
        assert answer.status_code == 200, answer.text
        return {row["recipient_id"] for row in answer.json()["items"]}

    assert ids(await client.get("/notifications", headers=admin.headers)) == {
        handler.id,
        resident.id,
    }
    assert ids(await client.get("/notifications", headers=top_staff.headers)) == {
        handler.id,
        resident.id,
    }
    assert ids(await client.get("/notifications", headers=street_staff.headers)) == {handler.id}
    assert ids(await client.get("/notifications", headers=other_street_staff.headers)) == set()

    answer = await client.get("/notifications?status=pending", headers=admin.headers)
    assert answer.json()["total"] == 2
    resident_row = next(r for r in answer.json()["items"] if r["recipient_id"] == resident.id)
    assert resident_row["recipient_name"] == "张**"
    assert "openid" not in answer.text and resident.user.openid not in answer.text
    assert "params" not in resident_row
    assert (await client.get("/notifications?status=sent", headers=admin.headers)).json()[
        "total"
    ] == 0
    assert (await client.get("/notifications?event=case.assigned", headers=admin.headers)).json()[
        "total"
    ] == 1
    assert (
        await client.get("/notifications?status=lost", headers=admin.headers)
    ).status_code == 422

    for actor in (resident, handler):
        refused = await client.get("/notifications", headers=actor.headers)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert (await client.get("/notifications")).status_code == 401


async def test_staff_retry_only_failed_or_skipped(
    client: httpx.AsyncClient, factory: Factory, harness: Harness, db: Database
) -> None:
    district = await factory.district()
    staff = await factory.staff(district.district)
    far_staff = await factory.staff(district.street_b)
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS, count=1)
    # the oldest message gets the one subscription
    sent = await harness.enqueue(resident.id, "case.handling", key="h:1")
    skipped = await harness.enqueue(resident.id, "case.fed_back", key="f:1")
    await harness.deliverer().drain()
    assert (await harness.row(skipped)).status == NotificationStatus.skipped
    assert (await harness.row(sent)).status == NotificationStatus.sent

    refused = await client.post(f"/notifications/{sent}/retry", headers=staff.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_transition"
    assert (await harness.row(sent)).status == NotificationStatus.sent
    hidden = await client.post(f"/notifications/{skipped}/retry", headers=far_staff.headers)
    assert hidden.status_code == 404
    forbidden = await client.post(f"/notifications/{skipped}/retry", headers=resident.headers)
    assert forbidden.status_code == 403
    assert (await harness.row(skipped)).status == NotificationStatus.skipped

    # the resident accepts again; staff retry; the worker sends it
    await client.post(
        "/me/subscriptions", json={"results": {CASE_PROGRESS: "accept"}}, headers=resident.headers
    )
    retried = await client.post(f"/notifications/{skipped}/retry", headers=staff.headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
    assert retried.json()["last_error"] is None
    assert (await harness.deliverer().drain())["sent"] == 1
    assert (await harness.row(skipped)).status == NotificationStatus.sent
    assert (
        await client.post("/notifications/999999/retry", headers=staff.headers)
    ).status_code == 404


async def test_unit_without_region_is_visible_to_admin_only(
    client: httpx.AsyncClient, factory: Factory, harness: Harness, db: Database
) -> None:
    district = await factory.district()
    street_staff = await factory.staff(district.street_a)
    admin = await factory.admin()
    unit = await factory.add(Unit(name="区城管局"))
    handler = await factory.unit_handler(unit)
    nid = await harness.enqueue(handler.id, "case.due_soon", key="d:1")
    assert (await client.get("/notifications", headers=street_staff.headers)).json()["total"] == 0
    listed = (await client.get("/notifications", headers=admin.headers)).json()
    assert [r["id"] for r in listed["items"]] == [nid]
