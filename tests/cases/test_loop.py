"""The whole loop: registered → handling → fed_back → resolved, its trail and its news."""

from __future__ import annotations

import re

import httpx

from app.core.db import Database
from tests.cases.conftest import (
    World,
    act,
    count_events,
    notifications,
    submit,
)


async def test_whole_loop_with_timeline_and_notifications(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    case = await submit(client, world.resident, world, deputy_id=world.deputy.deputy_id)
    assert case["status"] == "registered"
    assert re.fullmatch(r"\d{8}-\d{4,}", case["number"])
    assert case["region_id"] == world.d.community_a.id  # from the station
    assert case["is_owner"] is True
    assert [e["action"] for e in case["timeline"]] == ["register"]
    case_id = case["id"]

    # Staff of the region see it in the queue; staff of the other street do not.
    queue = await client.get("/cases", params={"status": "registered"}, headers=world.staff.headers)
    assert [c["id"] for c in queue.json()["items"]] == [case_id]
    other = await client.get("/cases", headers=world.staff_b.headers)
    assert other.json() == {"items": [], "total": 0, "total_capped": False}

    assigned = await act(
        client,
        world.staff,
        case_id,
        "assign",
        {
            "unit_id": world.unit.id,
            "co_unit_ids": [world.unit2.id],
            "note": "请尽快处理",
            "internal_note": "多人反映",
            "version": case["version"],
        },
    )
    assert assigned["status"] == "handling"
    assert assigned["lead_unit"] == {"id": world.unit.id, "name": "区城市管理局"}
    assert assigned["co_units"] == [{"id": world.unit2.id, "name": "东湖街道办事处"}]
    assert assigned["deadline"] is not None
    assert assigned["version"] == case["version"] + 1

    # The co-handling unit sees it; the lead unit replies.
    co_view = await client.get(f"/cases/{case_id}", headers=world.handler2.headers)
    assert co_view.status_code == 200
    replied = await act(
        client,
        world.handler,
        case_id,
        "reply",
        {"public_answer": "已更换灯具，恢复照明。", "internal_note": "工单 LD-118"},
    )
    assert replied["status"] == "fed_back"
    assert replied["public_answer"] == "已更换灯具，恢复照明。"

    rated = await act(
        client, world.resident, case_id, "rate", {"satisfaction": "satisfied", "comment": "很快"}
    )
    assert rated["status"] == "resolved"
    assert rated["satisfaction"] == "satisfied"
    assert rated["resolution"] == "rated"
    assert rated["resolved_at"] is not None

    # The trail: one entry per step; internal notes only for staff and units.
    staff_view = (await client.get(f"/cases/{case_id}", headers=world.staff.headers)).json()
    actions = [e["action"] for e in staff_view["timeline"]]
    assert actions == ["register", "assign", "reply", "rate"]
    assert staff_view["timeline"][1]["internal_note"] == "多人反映"
    assert staff_view["timeline"][2]["internal_note"] == "工单 LD-118"
    resident_view = (await client.get(f"/cases/{case_id}", headers=world.resident.headers)).json()
    assert [e["internal_note"] for e in resident_view["timeline"]] == [None] * 4
    assert resident_view["timeline"][2]["public_note"] == "已更换灯具，恢复照明。"
    assert await count_events(db, case_id) == 4

    # The resident heard the four steps; the unit handlers heard of the assignment.
    events = [n.event for n in await notifications(db, world.resident.id)]
    assert events == ["case.registered", "case.handling", "case.fed_back", "case.resolved"]
    keys = [n.dedupe_key for n in await notifications(db, world.resident.id)]
    assert keys[2] == f"case:{case_id}:fed_back:0"
    lead_msgs = await notifications(db, world.handler.id)
    co_msgs = await notifications(db, world.handler2.id)
    assert [n.event for n in lead_msgs] == ["case.assigned"]
    assert [n.event for n in co_msgs] == ["case.assigned"]
    assert lead_msgs[0].params["number"] == case["number"]
