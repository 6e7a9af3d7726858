"""A real case through its steps: the resident's subscribe messages and inbox, end to end."""

from __future__ import annotations

import httpx

from app.notify.models import NotificationStatus
from app.notify.templates import CASE_PROGRESS, CASE_RESULT
from app.wechat.fake_server import FakeWeChat
from tests.cases.conftest import World, act, notifications, submit
from tests.cases.conftest import world as world  # noqa: F401  (the cases' fixture)
from tests.notify.conftest import Harness


async def test_case_steps_reach_the_resident_on_wechat_and_in_the_inbox(
    client: httpx.AsyncClient,
    world: World,  # noqa: F811
    harness: Harness,
    fake_wechat: FakeWeChat,
) -> None:
    resident = world.resident
    for _ in range(2):  # two taps, two accepts of the progress template
        answer = await client.post(
            "/me/subscriptions",
            json={"results": {CASE_PROGRESS: "accept", CASE_RESULT: "reject"}},
            headers=resident.headers,
        )
        assert answer.status_code == 200
    case = await submit(client, resident, world)
    await act(client, world.staff, case["id"], "assign", {"unit_id": world.unit.id})
    await act(
        client, world.handler, case["id"], "reply", {"public_answer": "已修复路灯，恢复照明。"}
    )

    totals = await harness.deliverer().drain()

    messages = fake_wechat.messages(resident.user.openid)
    # registered and handling used the two accepts; fed_back found none left
    assert len(messages) == 2
    assert {m["page"] for m in messages} == {f"pages/case/detail?id={case['id']}"}
    # sent concurrently: the order they reach WeChat is not fixed
    phrases = sorted(m["data"]["phrase3"]["value"] for m in messages)
    assert phrases == sorted(["已登记", "办理中"])
    assert {m["data"]["character_string1"]["value"] for m in messages} == {case["number"]}
    assert {m["data"]["thing2"]["value"] for m in messages} == {"翠苑一区东门路灯不亮"}
    rows = {n.event: n for n in await notifications(harness.db, resident.id)}
    assert rows["case.fed_back"].status == NotificationStatus.skipped
    assert rows["case.fed_back"].last_error == "no_subscription"
    # the unit handler's assignment notice is inbox-only
    handler_rows = await notifications(harness.db, world.handler.id)
    assert handler_rows and all(
        (n.status, n.last_error) == (NotificationStatus.skipped, "inbox_only") for n in handler_rows
    )
    assert totals["sent"] == 2

    inbox = (await client.get("/me/messages", headers=resident.headers)).json()
    assert inbox["unread_count"] == 3
    assert [m["event"] for m in inbox["items"]] == [
        "case.fed_back",
        "case.handling",
        "case.registered",
    ]
    handler_inbox = (await client.get("/me/messages", headers=world.handler.headers)).json()
    assert "case.assigned" in {m["event"] for m in handler_inbox["items"]}
