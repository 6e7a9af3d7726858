"""Webhooks: registered by admins or the integrator's key, written with the change, delivered
by the worker to real HTTP receivers, signed, retried, paused, never blocking WeChat."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.core.clock import clock
from app.core.db import Database
from app.integrations import signing
from app.integrations.delivery import WebhookDeliverer
from app.notify.templates import CASE_PROGRESS
from app.notify.worker import Worker
from app.wechat.fake_server import FakeWeChat
from app.wechat.gateway import WeChatGateway
from tests.cases.conftest import World, act, retoken, submit
from tests.conftest import make_settings
from tests.integrations.conftest import issue
from tests.integrations.receiver import Receiver, Script


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
async def deliverers() -> AsyncIterator[list[WebhookDeliverer]]:
    made: list[WebhookDeliverer] = []
    yield made
    for d in made:
        await d.close()


def make_deliverer(
    db: Database, made: list[WebhookDeliverer], **overrides: Any
) -> WebhookDeliverer:
    values: dict[str, Any] = {
        "webhook_timeout_seconds": 2.0,
        "webhook_backoff_base_seconds": 10.0,
        "webhook_max_attempts": 3,
    }
    values.update(overrides)
    deliverer = WebhookDeliverer(db, make_settings(**values))
    made.append(deliverer)
    return deliverer


async def register(
    client: httpx.AsyncClient,
    world: World,
    hotline: int,
    url: str,
    events: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url, "events": events or ["case.*"]}
    if headers is None:
        body["integrator_id"] = hotline
    response = await client.post("/webhooks", json=body, headers=headers or world.admin.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def deliveries(client: httpx.AsyncClient, world: World, webhook_id: int) -> list[Any]:
    answer = await client.get(f"/webhooks/{webhook_id}/deliveries", headers=world.admin.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]


async def test_events_are_signed_and_verifiable_by_the_receiver(
    client: httpx.AsyncClient,
    world: World,
    hotline: int,
    receiver: Receiver,
    db: Database,
    deliverers: list[WebhookDeliverer],
) -> None:
    hook = await register(client, world, hotline, f"{receiver.url}/hooks")
    assert hook["secret"].startswith("whsec_")
    listed = await client.get("/webhooks", headers=world.admin.headers)
    assert "secret" not in listed.json()[0]

    case = await submit(client, world.resident, world)
    await act(client, world.staff, case["id"], "assign", {"unit_id": world.unit.id})
    await act(client, world.handler, case["id"], "reply", {"public_answer": "已修复。"})
    await make_deliverer(db, deliverers).drain()

    got = receiver.hits("/hooks")
    events = [json.loads(r.body) for r in got]
    assert sorted(e["type"] for e in events) == [
        "case.created",
        "case.replied",
        "case.status_changed",
        "case.status_changed",
    ]
    for r, event in zip(got, events, strict=True):
        assert r.headers["x-webhook-id"] == event["id"]
        assert r.headers["x-webhook-event"] == event["type"]
        assert signing.verify(
            hook["secret"],
            r.headers["x-webhook-timestamp"],
            r.body,
            r.headers["x-webhook-signature"],
            int(time.time()),
        )
        # A replay five minutes later is refused by a receiver that checks the timestamp.
        assert not signing.verify(
            hook["secret"],
            r.headers["x-webhook-timestamp"],
            r.body,
            r.headers["x-webhook-signature"],
            int(time.time()) + 301,
        )
        assert not signing.verify(
            "whsec_wrong",
            r.headers["x-webhook-timestamp"],
            r.body,
            r.headers["x-webhook-signature"],
            int(time.time()),
        )
        assert event["data"]["case_id"] == case["id"]
        assert "13800001111" not in r.body.decode()
    created = next(e for e in events if e["type"] == "case.created")
    assert created["data"]["status"] == "registered" and created["data"]["channel"] == "miniprogram"

    log = await deliveries(client, world, hook["id"])
    assert {d["status"] for d in log} == {"delivered"}
    assert all(d["attempt_log"][0]["status_code"] == 200 for d in log)


async def test_a_500_is_retried_with_backoff_and_every_attempt_is_recorded(
    client: httpx.AsyncClient,
    world: World,
    hotline: int,
    receiver: Receiver,
    db: Database,
    deliverers: list[WebhookDeliverer],
) -> None:
    hook = await register(client, world, hotline, f"{receiver.url}/h", ["case.created"])
    receiver.script = Script(statuses=[500])
    await submit(client, world.resident, world)
    deliverer = make_deliverer(db, deliverers)
    assert await deliverer.drain() == 1
    [row] = await deliveries(client, world, hook["id"])
    assert row["status"] == "pending" and row["last_status_code"] == 500 and row["attempts"] == 1
    # Not due before its backoff.
    assert await deliverer.drain() == 0
    clock.advance(timedelta(seconds=20))
    assert await deliverer.drain() == 1
    [row] = await deliveries(client, world, hook["id"])
    assert row["status"] == "delivered"
    assert [a["status_code"] for a in row["attempt_log"]] == [500, 200]
    first, second = receiver.hits("/h")
    assert first.headers["x-webhook-id"] == second.headers["x-webhook-id"]


async def test_redirects_are_not_followed_and_huge_answers_are_cut(
    client: httpx.AsyncClient,
    world: World,
    hotline: int,
    receiver: Receiver,
    db: Database,
    deliverers: list[WebhookDeliverer],
) -> None:
    hook = await register(client, world, hotline, f"{receiver.url}/moved", ["case.created"])
    receiver.script = Script(default=302, location=f"{receiver.url}/internal")
    await submit(client, world.resident, world)
    await make_deliverer(db, deliverers).drain()
    assert receiver.hits("/internal") == []
    [row] = await deliveries(client, world, hook["id"])
    assert row["status"] == "pending" and row["last_error"] == "redirect_not_followed"

    big = await register(client, world, hotline, f"{receiver.url}/big", ["case.created"])
    receiver.script = Script(default=200, body_bytes=50 * 1024 * 1024)
    await submit(client, world.resident2, world)
    await make_deliverer(db, deliverers, webhook_max_response_bytes=1024).drain()
    [row] = await deliveries(client, world, big["id"])
    assert row["status"] == "delivered"


async def test_private_addresses_are_refused_unless_allowed(
    client: httpx.AsyncClient,
    world: World,
    hotline: int,
    receiver: Receiver,
    db: Database,
    deliverers: list[WebhookDeliverer],
) -> None:
    hook = await register(client, world, hotline, f"{receiver.url}/h", ["case.created"])
    await submit(client, world.resident, world)
    strict = make_deliverer(
        db, deliverers, webhook_allow_private_targets=False, webhook_allow_http=True
    )
    await strict.drain()
    assert receiver.received == []
    [row] = await deliveries(client, world, hook["id"])
    assert row["last_error"].startswith("url_rejected")
    https_only = make_deliverer(db, deliverers, webhook_allow_http=False)
    clock.advance(timedelta(minutes=5))
    await https_only.drain()
    [row] = await deliveries(client, world, hook["id"])
    assert "https" in row["last_error"] and receiver.received == []


async def test_a_failing_endpoint_is_paused_its_admin_told_and_resumed_later(
    client: httpx.AsyncClient,
    world: World,
    hotline: int,
    receiver: Receiver,
    db: Database,
    deliverers: list[WebhookDeliverer],
) -> None:
    hook = await register(client, world, hotline, f"{receiver.url}/down", ["case.created"])
    receiver.script = Script(default=503)
    for actor in (world.resident, world.resident2):
        await submit(client, actor, world)
    deliverer = make_deliverer(
        db,
        deliverers,
        webhook_backoff_base_seconds=0.0,
        webhook_max_attempts=50,
        webhook_pause_after_failures=4,
        webhook_pause_after_hours=0.0,
    )
    await deliverer.drain()
    [state] = (await client.get("/webhooks", headers=world.admin.headers)).json()
    assert state["status"] == "paused" and state["consecutive_failures"] >= 4
    assert {d["status"] for d in await deliveries(client, world, hook["id"])} == {"held"}
    calls = len(receiver.received)
    # A case created while paused waits too.
    await submit(client, world.resident, world, title="另一处路灯也不亮")
    await deliverer.drain()
    assert len(receiver.received) == calls
    inbox = await client.get("/me/messages", headers=world.admin.headers)
    assert any("回调地址已暂停" in m["title"] for m in inbox.json()["items"])

    receiver.script = Script(default=204)
    resumed = await client.patch(
        f"/webhooks/{hook['id']}", json={"status": "active"}, headers=world.admin.headers
    )
    assert resumed.status_code == 200 and resumed.json()["consecutive_failures"] == 0
    await deliverer.drain()
    assert {d["status"] for d in await deliveries(client, world, hook["id"])} == {"delivered"}


async def test_admins_retry_failed_deliveries_once_even_when_racing(
    client: httpx.AsyncClient,
    world: World,
    hotline: int,
    receiver: Receiver,
    db: Database,
    deliverers: list[WebhookDeliverer],
) -> None:
    hook = await register(client, world, hotline, f"{receiver.url}/h", ["case.created"])
    receiver.script = Script(default=500)
    await submit(client, world.resident, world)
    await make_deliverer(
        db, deliverers, webhook_backoff_base_seconds=0.0, webhook_max_attempts=2
    ).drain()
    [row] = await deliveries(client, world, hook["id"])
    assert row["status"] == "failed" and len(row["attempt_log"]) == 2

    url = f"/webhooks/{hook['id']}/deliveries/{row['id']}/retry"
    assert (await client.post(url, headers=world.staff.headers)).status_code == 403
    first, second = await asyncio.gather(
        client.post(url, headers=world.admin.headers), client.post(url, headers=world.admin.headers)
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    receiver.script = Script(default=200)
    await make_deliverer(db, deliverers).drain()
    [row] = await deliveries(client, world, hook["id"])
    assert row["status"] == "delivered"
    missing = await client.post(
        f"/webhooks/{hook['id']}/deliveries/999999/retry", headers=world.admin.headers
    )
    assert missing.status_code == 404


async def test_an_integrator_key_manages_only_its_own_endpoints(
    client: httpx.AsyncClient, world: World, hotline: int, receiver: Receiver
) -> None:
    manager = await issue(client, world, hotline, ["webhooks:manage"])
    other_id = (
        await client.post("/integrators", json={"name": "网格系统"}, headers=world.admin.headers)
    ).json()["id"]
    other = await issue(client, world, other_id, ["webhooks:manage"])
    reader = await issue(client, world, hotline, ["cases:read"])

    mine = await register(client, world, hotline, f"{receiver.url}/a", headers=manager.headers)
    assert mine["integrator_id"] == hotline
    theirs = await register(client, world, other_id, f"{receiver.url}/b", headers=other.headers)
    listed = await client.get("/webhooks", headers=manager.headers)
    assert [w["id"] for w in listed.json()] == [mine["id"]]
    for method, path in (
        ("PATCH", f"/webhooks/{theirs['id']}"),
        ("DELETE", f"/webhooks/{theirs['id']}"),
    ):
        answer = await client.request(
            method, path, json={"events": ["case.created"]}, headers=manager.headers
        )
        assert answer.status_code == 404
    cross = await client.post(
        "/webhooks",
        json={"url": f"{receiver.url}/c", "events": ["case.created"], "integrator_id": other_id},
        headers=manager.headers,
    )
    assert cross.status_code == 403
    assert (await client.get("/webhooks", headers=reader.headers)).status_code == 403
    assert (await client.get("/webhooks", headers=world.staff.headers)).status_code == 403
    deliveries_by_key = await client.get(
        f"/webhooks/{mine['id']}/deliveries", headers=manager.headers
    )
    assert deliveries_by_key.status_code == 403
    deleted = await client.delete(f"/webhooks/{mine['id']}", headers=manager.headers)
    assert deleted.status_code == 204


@pytest.mark.parametrize(
    ("body", "with_owner"),
    [
        ({"url": "ftp://example.com/x", "events": ["case.created"]}, True),
        ({"url": "https://user:pw@example.com/x", "events": ["case.created"]}, True),
        ({"url": "https://example.com/x", "events": ["case.exploded"]}, True),
        ({"url": "https://example.com/x", "events": []}, True),
        ({"url": "https://example.com/x", "events": ["case.created"], "region_id": 999999}, True),
        ({"url": "https://example.com/x", "events": ["case.created"]}, False),
    ],
)
async def test_bad_webhook_input_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, world: World, hotline: int, body: dict[str, Any], with_owner: bool
) -> None:
    if with_owner:
        body = {**body, "integrator_id": hotline}
    answer = await client.post("/webhooks", json=body, headers=world.admin.headers)
    assert answer.status_code == 422, answer.text
    assert (await client.get("/webhooks", headers=world.admin.headers)).json() == []


async def test_a_hanging_receiver_does_not_hold_up_wechat_messages(
    client: httpx.AsyncClient,
    world: World,
    hotline: int,
    receiver: Receiver,
    db: Database,
    fake_wechat: FakeWeChat,
) -> None:
    from tests.notify.conftest import Harness

    harness = Harness(db, [])
    await harness.grant(world.resident.id, CASE_PROGRESS, count=5)
    await register(client, world, hotline, f"{receiver.url}/hang", ["case.created"])
    receiver.script = Script(default=200, delay=30.0)
    settings = make_settings(
        notify_poll_seconds=0.05, webhook_timeout_seconds=30.0, wechat_miniprogram_state="trial"
    )
    gateway = WeChatGateway(settings, db)
    worker = Worker(db, settings, gateway)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    try:
        case = await submit(client, world.resident, world)
        await asyncio.to_thread(receiver.wait_for, 1)
        assert receiver.hits("/hang"), "the webhook call is in flight"
        await act(client, world.staff, case["id"], "assign", {"unit_id": world.unit.id})
        for _ in range(400):
            if fake_wechat.messages(world.resident.user.openid):
                break
            await asyncio.sleep(0.025)
        # WeChat got its messages while the receiver still holds the webhook call.
        assert fake_wechat.messages(world.resident.user.openid)
        [hook] = (await client.get("/webhooks", headers=world.admin.headers)).json()
        [row] = await deliveries(client, world, hook["id"])
        assert row["status"] == "sending"
    finally:
        receiver.stop()
        stop.set()
        await asyncio.wait_for(task, timeout=40)
        await worker.close()
        await gateway.close()


async def test_wish_events_reach_the_endpoints_that_want_them(
    client: httpx.AsyncClient,
    world: World,
    hotline: int,
    receiver: Receiver,
    db: Database,
    factory: Any,
    deliverers: list[WebhookDeliverer],
) -> None:
    from tests.wishes.conftest import make_wish

    wishes = await register(client, world, hotline, f"{receiver.url}/wishes", ["wish.*"])
    cases_only = await register(client, world, hotline, f"{receiver.url}/cases", ["case.created"])
    wish = await make_wish(factory, world.resident, world.station_a)
    claimed = await client.post(f"/wishes/{wish.id}/claim", headers=world.deputy.headers)
    assert claimed.status_code == 200, claimed.text
    await make_deliverer(db, deliverers).drain()
    [got] = receiver.hits("/wishes")
    event = json.loads(got.body)
    assert event["type"] == "wish.claimed" and event["data"]["wish_id"] == wish.id
    # No beneficiary data in the payload.
    assert "13812345678" not in got.body.decode() and "王小明" not in got.body.decode()
    assert receiver.hits("/cases") == [] and await deliveries(client, world, cases_only["id"]) == []
    assert len(await deliveries(client, world, wishes["id"])) == 1


async def test_a_crashed_workers_deliveries_are_taken_over_after_the_lease(
    client: httpx.AsyncClient,
    world: World,
    hotline: int,
    receiver: Receiver,
    db: Database,
    deliverers: list[WebhookDeliverer],
) -> None:
    hook = await register(client, world, hotline, f"{receiver.url}/h", ["case.created"])
    await submit(client, world.resident, world)
    crashed = make_deliverer(db, deliverers, webhook_lease_seconds=60)
    assert len(await crashed.claim()) == 1  # claimed, then the worker dies before sending
    other = make_deliverer(db, deliverers, webhook_lease_seconds=60)
    assert await other.drain() == 0  # still leased
    clock.advance(timedelta(seconds=61))
    assert await other.drain() == 1
    [row] = await deliveries(client, world, hook["id"])
    assert row["status"] == "delivered" and len(receiver.hits("/h")) == 1


async def test_failures_within_the_pause_window_do_not_pause(
    client: httpx.AsyncClient,
    world: World,
    factory: Any,
    hotline: int,
    receiver: Receiver,
    db: Database,
    deliverers: list[WebhookDeliverer],
) -> None:
    await register(client, world, hotline, f"{receiver.url}/down", ["case.created"])
    receiver.script = Script(default=500)
    await submit(client, world.resident, world)
    await make_deliverer(
        db,
        deliverers,
        webhook_backoff_base_seconds=0.0,
        webhook_max_attempts=6,
        webhook_pause_after_failures=3,
        webhook_pause_after_hours=1.0,
    ).drain()
    [state] = (await client.get("/webhooks", headers=world.admin.headers)).json()
    # Six failures in a row, but all within the hour: still active.
    assert state["status"] == "active" and state["consecutive_failures"] == 6
    rows = await deliveries(client, world, state["id"])
    assert [r["status"] for r in rows] == ["failed"], rows
    row = rows[0]
    retried = await client.post(
        f"/webhooks/{state['id']}/deliveries/{row['id']}/retry", headers=world.admin.headers
    )
    assert retried.status_code == 200
    clock.advance(timedelta(minutes=61))
    retoken(factory, world)
    await make_deliverer(
        db,
        deliverers,
        webhook_backoff_base_seconds=0.0,
        webhook_max_attempts=6,
        webhook_pause_after_failures=3,
        webhook_pause_after_hours=1.0,
    ).drain()
    [state] = (await client.get("/webhooks", headers=world.admin.headers)).json()
    assert state["status"] == "paused"
