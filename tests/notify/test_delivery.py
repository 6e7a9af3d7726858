"""Delivery through the fake WeChat over HTTP: data, pages, failures, leases, races."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from app.core.clock import clock, utcnow
from app.notify.delivery import Outcome
from app.notify.models import NotificationStatus
from app.notify.templates import CASE_PROGRESS, CASE_RESULT, WISH_PROGRESS
from app.wechat.fake_server import FakeWeChat
from tests.factories import Factory
from tests.notify.conftest import Harness

CASE_PARAMS = {
    "case_id": 12,
    "number": "C20261122-0012",
    "title": "翠苑社区东门路灯已经坏了三个星期晚上出行很不方便",
    "time": "2026-11-22T05:40:00+00:00",
    "note": "已交区城管局办理",
}
WISH_PARAMS = {
    "wish_id": 5,
    "title": "给孩子一个新书包",
    "time": "2026-11-22T05:40:00+00:00",
    "deputy_name": "李代表",
}

# event → (template, phrase shown, the note field shown)
EXPECTED = {
    "case.registered": (CASE_PROGRESS, "已登记", "已交区城管局办理"),
    "case.handling": (CASE_PROGRESS, "办理中", "已交区城管局办理"),
    "case.fed_back": (CASE_PROGRESS, "已反馈", "已交区城管局办理"),
    "case.resolved": (CASE_RESULT, "已办结", "已交区城管局办理"),
    "case.rejected": (CASE_PROGRESS, "不予受理", "已交区城管局办理"),
    "case.merged": (CASE_PROGRESS, "已合并", "已交区城管局办理"),
    "wish.published": (WISH_PROGRESS, "已发布", "心愿已通过审核并发布"),
    "wish.rejected": (WISH_PROGRESS, "未通过", "正文内容"),  # no reason given: the body
    "wish.claimed": (WISH_PROGRESS, "已认领", "李代表"),
    "wish.fulfilled": (WISH_PROGRESS, "已实现", "代表已完成心愿，请确认"),
    "wish.completed": (WISH_PROGRESS, "已完成", "感谢您的参与"),
    "wish.expired": (WISH_PROGRESS, "已过期", "心愿已到期未被认领"),
}


@pytest.mark.parametrize("event", sorted(EXPECTED))
async def test_each_event_is_delivered_with_its_template_data_and_page(
    event: str, harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    resident = await factory.resident()
    template, phrase, note = EXPECTED[event]
    await harness.grant(resident.id, template)
    params = CASE_PARAMS if event.startswith("case.") else WISH_PARAMS
    nid = await harness.enqueue(resident.id, event, params=params, title="标题", body="正文内容")

    totals = await harness.deliverer().drain()

    assert totals["sent"] == 1
    [message] = fake_wechat.messages(resident.user.openid)
    assert message["template_id"] == template
    assert message["miniprogram_state"] == "trial"
    data = {k: v["value"] for k, v in message["data"].items()}
    if event.startswith("case."):
        assert message["page"] == "pages/case/detail?id=12"
        assert data == {
            "character_string1": "C20261122-0012",
            "thing2": "翠苑社区东门路灯已经坏了三个星期晚上出…",
            "phrase3": phrase,
            "time4": "2026年11月22日 13:40",
            "thing5": note,
        }
    else:
        assert message["page"] == "pages/wish/detail?id=5"
        assert data == {
            "thing1": "给孩子一个新书包",
            "phrase2": phrase,
            "time3": "2026年11月22日 13:40",
            "thing4": note,
        }
    row = await harness.row(nid)
    assert row.status == NotificationStatus.sent
    assert row.sent_at is not None and row.attempts == 1 and row.template_id == template
    assert await harness.count(resident.id, template) == 0


async def test_page_given_to_enqueue_is_used_when_params_lack_the_id(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS)
    await harness.enqueue(resident.id, "case.handling", page="pages/case/detail?id=99")
    await harness.deliverer().drain()
    [message] = fake_wechat.messages(resident.user.openid)
    assert message["page"] == "pages/case/detail?id=99"
    # no params at all: title, creation time and the literal phrase still fill every field
    assert message["data"]["thing2"]["value"] == "您的诉求有新进展"
    assert message["data"]["character_string1"]["value"] == "-"


async def test_without_subscription_nothing_goes_to_wechat(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    resident = await factory.resident()
    nid = await harness.enqueue(resident.id, "case.registered", params=CASE_PARAMS)
    totals = await harness.deliverer().drain()
    assert totals["sent"] == 0
    assert fake_wechat.received("subscribe_send") == []
    row = await harness.row(nid)
    assert (row.status, row.last_error) == (NotificationStatus.skipped, "no_subscription")


async def test_inbox_only_events_and_accounts_without_openid_are_skipped(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    resident = await factory.resident()
    staff_user = await factory.admin()
    await harness.grant(resident.id, CASE_PROGRESS)
    assigned = await harness.enqueue(resident.id, "case.assigned")
    due_soon = await harness.enqueue(resident.id, "case.due_soon")
    no_openid = await harness.enqueue(staff_user.id, "case.handling")
    await harness.deliverer().drain()
    assert fake_wechat.received("subscribe_send") == []
    for nid, reason in (
        (assigned, "inbox_only"),
        (due_soon, "inbox_only"),
        (no_openid, "no_openid"),
    ):
        row = await harness.row(nid)
        assert (row.status, row.last_error) == (NotificationStatus.skipped, reason)
    assert await harness.count(resident.id, CASE_PROGRESS) == 1  # nothing spent


async def test_subscriptions_are_counted_one_message_each(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS, count=2)
    ids = [
        await harness.enqueue(
            resident.id, "case.handling", key=f"case:{i}:handling", params=CASE_PARAMS
        )
        for i in range(3)
    ]
    await harness.deliverer().drain()
    statuses = [(await harness.row(i)).status for i in ids]
    assert statuses == [
        NotificationStatus.sent,
        NotificationStatus.sent,
        NotificationStatus.skipped,
    ]
    assert len(fake_wechat.messages(resident.user.openid)) == 2
    assert await harness.count(resident.id, CASE_PROGRESS) == 0


async def test_43101_skips_and_zeroes_the_count(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS, count=3)
    fake_wechat.unsubscribe(resident.user.openid)
    nid = await harness.enqueue(resident.id, "case.fed_back", params=CASE_PARAMS)
    totals = await harness.deliverer().drain()
    assert totals["not_subscribed"] == 1
    row = await harness.row(nid)
    assert (row.status, row.last_error) == (NotificationStatus.skipped, "no_subscription")
    assert await harness.count(resident.id, CASE_PROGRESS) == 0
    assert len(fake_wechat.received("subscribe_send")) == 1  # not retried


async def test_47003_fails_with_the_reason_and_is_not_retried(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS)
    fake_wechat.fail("subscribe_send", 47003, errmsg="argument invalid! data.thing2.value invalid")
    nid = await harness.enqueue(resident.id, "case.fed_back", params=CASE_PARAMS)
    deliverer = harness.deliverer()
    await deliverer.drain()
    clock.advance(timedelta(days=1))
    assert (await deliverer.drain())["claimed"] == 0
    row = await harness.row(nid)
    assert row.status == NotificationStatus.failed
    assert row.last_error is not None and row.last_error.startswith("bad_data")
    assert "thing2" in row.last_error
    assert len(fake_wechat.received("subscribe_send")) == 1
    assert await harness.count(resident.id, CASE_PROGRESS) == 1  # the reservation came back


@pytest.mark.parametrize(
    "failure",
    [
        {"errcode": -1},
        {"errcode": 45011},
        {"http_status": 500},
        {"http_status": 503},
        {"delay": 1.0},  # slower than the timeout: a network failure
    ],
    ids=["busy", "rate_limit", "http_500", "http_503", "timeout"],
)
async def test_transient_failures_back_off_then_deliver(
    failure: dict, harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    clock.freeze(utcnow())
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS)
    fake_wechat.fail("subscribe_send", **failure)
    nid = await harness.enqueue(resident.id, "case.handling", params=CASE_PARAMS)
    deliverer = harness.deliverer(wechat_timeout_seconds=0.3)

    first = await deliverer.drain()
    assert first["retry"] == 1
    row = await harness.row(nid)
    assert row.status == NotificationStatus.pending and row.attempts == 1
    assert row.subscription_spent is True
    # backoff: base 10 s jittered to 5–15 s; not due yet
    wait = (row.next_attempt_at - utcnow()).total_seconds()
    assert 5 <= wait <= 15
    assert (await deliverer.drain())["claimed"] == 0

    clock.advance(timedelta(seconds=16))
    second = await deliverer.drain()
    assert second["sent"] == 1
    row = await harness.row(nid)
    assert row.status == NotificationStatus.sent and row.attempts == 2
    assert len(fake_wechat.messages(resident.user.openid)) == 1
    assert await harness.count(resident.id, CASE_PROGRESS) == 0  # spent once, not twice


async def test_retries_are_bounded_then_failed_and_refunded(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    clock.freeze(utcnow())
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS)
    fake_wechat.fail("subscribe_send", -1, times=10)
    nid = await harness.enqueue(resident.id, "case.handling", params=CASE_PARAMS)
    deliverer = harness.deliverer()  # notify_max_attempts=3
    waits = []
    for _ in range(3):
        await deliverer.drain()
        row = await harness.row(nid)
        if row.status == NotificationStatus.pending:
            waits.append((row.next_attempt_at - utcnow()).total_seconds())
        clock.advance(timedelta(hours=2))
    row = await harness.row(nid)
    assert row.status == NotificationStatus.failed and row.attempts == 3
    assert row.last_error is not None and row.last_error.startswith("retries_exhausted")
    assert len(fake_wechat.received("subscribe_send")) == 3
    assert 5 <= waits[0] <= 15 and 10 <= waits[1] <= 30  # exponential
    assert await harness.count(resident.id, CASE_PROGRESS) == 1


async def test_rejected_token_is_renewed_once_and_the_message_sent(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS)
    deliverer = harness.deliverer()
    await harness.enqueue(resident.id, "case.handling", key="k1", params=CASE_PARAMS)
    await deliverer.drain()  # a token exists now
    await harness.grant(resident.id, CASE_PROGRESS)
    fake_wechat.invalidate_tokens()
    before = len(fake_wechat.received("stable_token"))
    await harness.enqueue(resident.id, "case.fed_back", key="k2", params=CASE_PARAMS)
    totals = await deliverer.drain()
    assert totals["sent"] == 1
    sends = fake_wechat.received("subscribe_send")
    assert len(sends) == 3  # first message, the rejected try, the retry
    assert sends[1].query["access_token"] != sends[2].query["access_token"]
    assert len(fake_wechat.received("stable_token")) == before + 1
    assert len(fake_wechat.messages(resident.user.openid)) == 2


async def test_worker_killed_between_claim_and_send_loses_nothing(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    clock.freeze(utcnow())
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS, count=1)
    nid = await harness.enqueue(resident.id, "case.handling", params=CASE_PARAMS)
    dead = harness.deliverer(worker_id="dead-worker")
    claimed = await dead.claim()
    assert [c.id for c in claimed] == [nid]
    row = await harness.row(nid)
    assert (row.status, row.worker_id) == (NotificationStatus.sending, "dead-worker")
    # ...and the worker dies here. Another one finds nothing while the lease holds:
    survivor = harness.deliverer(worker_id="survivor")
    assert (await survivor.drain())["claimed"] == 0
    clock.advance(timedelta(seconds=61))
    totals = await survivor.drain()
    assert totals["sent"] == 1
    row = await harness.row(nid)
    assert (row.status, row.worker_id, row.attempts) == (NotificationStatus.sent, "survivor", 2)
    assert len(fake_wechat.messages(resident.user.openid)) == 1
    # the reservation was made once, by the dead worker, and reused
    assert await harness.count(resident.id, CASE_PROGRESS) == 0


async def test_worker_whose_lease_ran_out_does_not_send(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    clock.freeze(utcnow())
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS)
    nid = await harness.enqueue(resident.id, "case.handling", params=CASE_PARAMS)
    slow = harness.deliverer(worker_id="slow")
    claimed = await slow.claim()
    clock.advance(timedelta(seconds=61))
    other = harness.deliverer(worker_id="other")
    assert (await other.drain())["sent"] == 1
    results = await slow.send_all(claimed)
    assert [r.outcome for r in results] == [Outcome.lease_lost]
    await slow.record(results)
    assert len(fake_wechat.messages(resident.user.openid)) == 1
    row = await harness.row(nid)
    assert (row.status, row.worker_id) == (NotificationStatus.sent, "other")


async def test_enqueue_twice_with_one_key_queues_one_message(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS, count=5)
    await harness.enqueue(resident.id, "case.handling", key="case:1:handling:1")
    with pytest.raises(AssertionError):  # the second enqueue answers None
        await harness.enqueue(resident.id, "case.handling", key="case:1:handling:1")
    await harness.deliverer().drain()
    assert len(await harness.rows()) == 1
    assert len(fake_wechat.messages(resident.user.openid)) == 1


async def test_two_workers_racing_over_one_backlog(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    residents = [await factory.resident() for _ in range(6)]
    expected = 0
    for r in residents:
        await harness.grant(r.id, CASE_PROGRESS, count=8)
        await harness.grant(r.id, WISH_PROGRESS, count=3)
        for i in range(10):
            event = "case.handling" if i < 7 else "wish.claimed"
            await harness.enqueue(r.id, event, key=f"{event}:{i}", params=CASE_PARAMS)
            expected += 1
    a = harness.deliverer(worker_id="a", notify_batch_size=7, notify_concurrency=4)
    b = harness.deliverer(worker_id="b", notify_batch_size=7, notify_concurrency=4)

    totals_a, totals_b = await asyncio.gather(a.drain(), b.drain())

    assert totals_a["sent"] + totals_b["sent"] == expected == 60
    rows = await harness.rows()
    assert all(row.status == NotificationStatus.sent for row in rows)
    # Only this test's residents: a send a previous test abandoned mid-flight (a timeout
    # test's slow answer) may still land at the fake after its reset.
    openids = {r.user.openid for r in residents}
    messages = [m for m in fake_wechat.messages() if m["touser"] in openids]
    assert len(messages) == 60
    per_user = {r.user.openid: len(fake_wechat.messages(r.user.openid)) for r in residents}
    assert set(per_user.values()) == {10}
    for r in residents:
        assert await harness.count(r.id, CASE_PROGRESS) == 1
        assert await harness.count(r.id, WISH_PROGRESS) == 0
    # both took part (each claims at most 7 at a time)
    assert {row.worker_id for row in rows} == {"a", "b"}


async def test_a_lease_about_to_run_out_is_given_back_unsent(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    clock.freeze(utcnow())
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS)
    nid = await harness.enqueue(resident.id, "case.handling", params=CASE_PARAMS)
    slow = harness.deliverer(worker_id="slow")  # lease 60 s; sends stop 15 s before its end
    claimed = await slow.claim()
    clock.advance(timedelta(seconds=50))
    results = await slow.send_all(claimed)
    assert [r.outcome for r in results] == [Outcome.lease_lost]
    await slow.record(results)
    assert fake_wechat.received("subscribe_send") == []
    row = await harness.row(nid)
    assert (row.status, row.attempts, row.subscription_spent) == (
        NotificationStatus.pending,
        0,
        True,
    )
    assert (await harness.deliverer().drain())["sent"] == 1
    assert (await harness.row(nid)).attempts == 1
    assert await harness.count(resident.id, CASE_PROGRESS) == 0


async def test_a_row_reclaimed_after_its_last_attempt_fails_and_gives_back_its_reservation(
    harness: Harness, factory: Factory, fake_wechat: FakeWeChat
) -> None:
    clock.freeze(utcnow())
    resident = await factory.resident()
    await harness.grant(resident.id, CASE_PROGRESS)
    fake_wechat.fail("subscribe_send", -1, times=2)
    nid = await harness.enqueue(resident.id, "case.handling", params=CASE_PARAMS)
    worker = harness.deliverer()  # notify_max_attempts=3
    for _ in range(2):
        assert (await worker.drain())["retry"] == 1
        clock.advance(timedelta(hours=1))
    dead = harness.deliverer(worker_id="dead")
    assert len(await dead.claim()) == 1  # the third and last attempt; then the worker dies
    assert await harness.count(resident.id, CASE_PROGRESS) == 0
    clock.advance(timedelta(seconds=61))
    totals = await worker.drain()
    assert totals["claimed"] == 0  # settled at claim time, nothing to send
    row = await harness.row(nid)
    assert (row.status, row.last_error) == (
        NotificationStatus.failed,
        "lease_expired_after_last_attempt",
    )
    assert row.subscription_spent is False
    assert await harness.count(resident.id, CASE_PROGRESS) == 1
    assert len(fake_wechat.received("subscribe_send")) == 2
