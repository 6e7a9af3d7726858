"""The transition table: each move, each refusal, each role and relation, versions."""

from __future__ import annotations

import asyncio

import httpx

from app.cases.flows import TRANSITIONS
from app.cases.models import CaseAction, CaseStatus
from app.core.db import Database
from tests.cases.conftest import (
    World,
    act,
    assigned_case,
    case_row,
    count_events,
    fed_back_case,
    notifications,
    submit,
)
from tests.factories import Factory

BODIES = {
    "assign": lambda w: {"unit_id": w.unit.id},
    "transfer": lambda w: {"unit_id": w.unit2.id},
    "reject": lambda w: {"reason_code": "other", "note": "不予受理的说明"},
    "supervise": lambda w: {"note": "请加快办理"},
    "send-back": lambda w: {"reason": "不属本单位职责"},
    "reply": lambda w: {"public_answer": "已处理完毕"},
    "rate": lambda w: {"satisfaction": "satisfied"},
    "reopen": lambda w: {"reason": "问题依旧"},
    "resolve": lambda w: {"note": "已办结"},
}


async def _refused(
    client: httpx.AsyncClient,
    actor_headers: dict[str, str],
    case_id: int,
    action: str,
    body: dict[str, object],
    status: int,
    code: str,
    db: Database,
) -> None:
    before = await count_events(db, case_id)
    version = (await case_row(db, case_id)).version
    response = await client.post(f"/cases/{case_id}/{action}", json=body, headers=actor_headers)
    assert response.status_code == status, (action, response.text)
    assert response.json()["code"] == code
    assert await count_events(db, case_id) == before
    assert (await case_row(db, case_id)).version == version


async def test_moves_not_in_the_table_are_invalid_transitions(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    registered = await submit(client, world.resident, world)
    rid = registered["id"]
    # From registered: nothing but assign, reject, merge, edit.
    for action, actor in [
        ("transfer", world.staff),
        ("supervise", world.staff),
        ("resolve", world.staff),
        ("reopen", world.staff),
        ("rate", world.resident),
        ("reopen", world.resident),
    ]:
        await _refused(
            client, actor.headers, rid, action, BODIES[action](world), 409, "invalid_transition", db
        )

    handling = await assigned_case(client, world)
    hid = handling["id"]
    for action, actor in [
        ("assign", world.staff),
        ("resolve", world.staff),
        ("rate", world.resident),
        ("reopen", world.staff),
    ]:
        await _refused(
            client, actor.headers, hid, action, BODIES[action](world), 409, "invalid_transition", db
        )

    fed = await fed_back_case(client, world)
    fid = fed["id"]
    for action, actor in [
        ("assign", world.staff),
        ("transfer", world.staff),
        ("reject", world.staff),
        ("supervise", world.staff),
        ("reply", world.handler),
        ("send-back", world.handler),
    ]:
        await _refused(
            client, actor.headers, fid, action, BODIES[action](world), 409, "invalid_transition", db
        )

    await act(client, world.resident, fid, "rate", {"satisfaction": "basically_satisfied"})
    for action, actor in [
        ("rate", world.resident),
        ("resolve", world.staff),
        ("reply", world.handler),
        ("reopen", world.resident),  # the owner reopens only from fed_back
    ]:
        await _refused(
            client, actor.headers, fid, action, BODIES[action](world), 409, "invalid_transition", db
        )
    rejected = await act(client, world.staff, rid, "reject", BODIES["reject"](world))
    assert rejected["status"] == "rejected"
    for action in ("assign", "reject", "reopen", "resolve"):
        await _refused(
            client,
            world.staff.headers,
            rid,
            action,
            BODIES[action](world),
            409,
            "invalid_transition",
            db,
        )


async def test_each_role_is_refused_what_it_may_not_do(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    handling = await assigned_case(client, world)
    hid = handling["id"]
    # Staff-only moves.
    for action in ("transfer", "supervise", "reject"):
        for actor in (world.resident, world.handler, world.deputy):
            status = 403 if actor is not world.deputy else 404  # the deputy cannot see it
            code = "forbidden" if status == 403 else "not_found"
            await _refused(
                client, actor.headers, hid, action, BODIES[action](world), status, code, db
            )
    # Staff of another street do not see the case at all.
    await _refused(
        client,
        world.staff_b.headers,
        hid,
        "supervise",
        BODIES["supervise"](world),
        404,
        "not_found",
        db,
    )
    # Unit moves: only the lead unit; a co-handling unit sees but may not reply.
    await act(client, world.staff, hid, "transfer", {"unit_id": world.unit.id}, expect=422)
    await act(
        client,
        world.staff,
        hid,
        "transfer",
        {"unit_id": world.unit2.id, "co_unit_ids": [world.unit3.id]},
    )
    for actor, status, code in [
        (world.handler3, 403, "forbidden"),  # co-handling
        (world.handler, 404, "not_found"),  # no longer involved
        (world.staff, 403, "forbidden"),
        (world.resident, 403, "forbidden"),
    ]:
        await _refused(
            client, actor.headers, hid, "reply", BODIES["reply"](world), status, code, db
        )
        await _refused(
            client, actor.headers, hid, "send-back", BODIES["send-back"](world), status, code, db
        )
    replied = await act(client, world.handler2, hid, "reply", BODIES["reply"](world))
    assert replied["status"] == "fed_back"
    # Rating: the owner only.
    for actor, status in [(world.resident2, 404), (world.handler2, 403), (world.staff, 403)]:
        response = await client.post(
            f"/cases/{hid}/rate", json={"satisfaction": "satisfied"}, headers=actor.headers
        )
        assert response.status_code == status, response.text
    # Following: deputies only.
    assert (
        await client.post(f"/cases/{hid}/follow", headers=world.resident.headers)
    ).status_code == 403
    # Unauthenticated.
    assert (
        await client.post(f"/cases/{hid}/rate", json={"satisfaction": "satisfied"})
    ).status_code == 401
    assert (await client.get(f"/cases/{hid}")).status_code == 401


async def test_dissatisfied_rating_then_reopen_counts_rounds(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    fed = await fed_back_case(client, world)
    cid = fed["id"]
    rated = await act(
        client, world.resident, cid, "rate", {"satisfaction": "dissatisfied", "comment": "没修好"}
    )
    assert rated["status"] == "fed_back"
    assert rated["satisfaction"] == "dissatisfied"
    assert rated["resolved_at"] is None
    # Staff hear of the dissatisfaction.
    assert [n.event for n in await notifications(db, world.staff.id)] == ["case.dissatisfied"]
    # A second rating in the same round is refused.
    again = await client.post(
        f"/cases/{cid}/rate", json={"satisfaction": "satisfied"}, headers=world.resident.headers
    )
    assert again.status_code == 409
    # Only staff may set a deadline on reopening.
    refused = await client.post(
        f"/cases/{cid}/reopen",
        json={"reason": "灯还是不亮", "deadline": "2099-01-01T00:00:00+08:00"},
        headers=world.resident.headers,
    )
    assert refused.status_code == 403

    reopened = await act(client, world.resident, cid, "reopen", {"reason": "灯还是不亮"})
    assert reopened["status"] == "handling"
    assert reopened["reopen_count"] == 1
    assert reopened["satisfaction"] is None or reopened["satisfaction"] == "dissatisfied"
    assert reopened["lead_unit"]["id"] == world.unit.id
    # Round 1: the unit answers again, the resident is satisfied.
    await act(client, world.handler, cid, "reply", {"public_answer": "已更换整套灯具"})
    done = await act(client, world.resident, cid, "rate", {"satisfaction": "satisfied"})
    assert done["status"] == "resolved"
    assert done["satisfaction"] == "satisfied"
    keys = [n.dedupe_key for n in await notifications(db, world.resident.id)]
    assert f"case:{cid}:handling:0" in keys and f"case:{cid}:handling:1" in keys
    assert f"case:{cid}:fed_back:0" in keys and f"case:{cid}:fed_back:1" in keys
    # The unit heard of both rounds.
    assert len(await notifications(db, world.handler.id)) == 2
    # Staff may reopen a resolved case (documented); the owner may not.
    resolved_reopen = await client.post(
        f"/cases/{cid}/reopen", json={"reason": "问题复发"}, headers=world.resident.headers
    )
    assert resolved_reopen.status_code == 409
    again_open = await act(client, world.staff, cid, "reopen", {"reason": "问题复发"})
    assert again_open["reopen_count"] == 2
    assert again_open["resolved_at"] is None


async def test_staff_resolve_and_ownerless_rating(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    phone = await submit(
        client,
        world.staff,
        world,
        channel="phone",
        contact_name="李四",
        contact_phone="13600006666",
    )
    pid = phone["id"]
    await act(client, world.staff, pid, "assign", {"unit_id": world.unit.id})
    await act(client, world.handler, pid, "reply", {"public_answer": "已处理"})
    # Nobody has an account to rate with: staff record the callback.
    rated = await act(client, world.staff, pid, "rate", {"satisfaction": "basically_satisfied"})
    assert rated["status"] == "resolved" and rated["satisfaction"] == "basically_satisfied"

    fed = await fed_back_case(client, world)
    resolved = await act(client, world.staff, fed["id"], "resolve", {"note": "电话回访认可"})
    assert resolved["status"] == "resolved"
    assert resolved["resolution"] == "staff"
    assert resolved["satisfaction"] is None  # resolved and satisfied are separate
    # Staff may not rate for a resident who has an account.
    other = await fed_back_case(client, world)
    response = await client.post(
        f"/cases/{other['id']}/rate",
        json={"satisfaction": "satisfied"},
        headers=world.staff.headers,
    )
    assert response.status_code == 403


async def test_reject_with_reason_reaches_the_resident(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    case = await submit(client, world.resident, world)
    bad = await client.post(
        f"/cases/{case['id']}/reject",
        json={"reason_code": "because", "note": "说明"},
        headers=world.staff.headers,
    )
    assert bad.status_code == 422
    no_note = await client.post(
        f"/cases/{case['id']}/reject", json={"reason_code": "other"}, headers=world.staff.headers
    )
    assert no_note.status_code == 422
    rejected = await act(
        client,
        world.staff,
        case["id"],
        "reject",
        {
            "reason_code": "not_in_remit",
            "note": "属司法程序，请通过诉讼解决",
            "internal_note": "内部",
        },
    )
    assert rejected["status"] == "rejected"
    assert rejected["reject_reason_code"] == "not_in_remit"
    view = (await client.get(f"/cases/{case['id']}", headers=world.resident.headers)).json()
    assert view["reject_note"] == "属司法程序，请通过诉讼解决"
    assert view["timeline"][-1]["public_note"] == "属司法程序，请通过诉讼解决"
    assert view["timeline"][-1]["internal_note"] is None
    events = [n.event for n in await notifications(db, world.resident.id)]
    assert events == ["case.registered", "case.rejected"]


async def test_merge_makes_the_duplicate_follow_its_target(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    target = await submit(client, world.resident, world)
    duplicate = await submit(client, world.resident2, world, contact_phone="13900002222")
    # The resident of the duplicate cannot read the target yet.
    assert (
        await client.get(f"/cases/{target['id']}", headers=world.resident2.headers)
    ).status_code == 404
    for into in (duplicate["id"], 999999):
        response = await client.post(
            f"/cases/{duplicate['id']}/merge",
            json={"into_case_id": into},
            headers=world.staff.headers,
        )
        assert response.status_code == 422
    merged = await act(
        client, world.staff, duplicate["id"], "merge", {"into_case_id": target["id"]}
    )
    assert merged["status"] == "merged"
    assert merged["merged_into_id"] == target["id"]
    # Now they read the target, see it in their list, and hear its news.
    view = await client.get(f"/cases/{target['id']}", headers=world.resident2.headers)
    assert view.status_code == 200
    assert view.json()["contact_phone"] is None  # not theirs: no phone shown
    listed = await client.get("/cases", headers=world.resident2.headers)
    assert {c["id"] for c in listed.json()["items"]} == {target["id"], duplicate["id"]}
    await act(client, world.staff, target["id"], "assign", {"unit_id": world.unit.id})
    events = [n.event for n in await notifications(db, world.resident2.id)]
    assert events == ["case.registered", "case.merged", "case.handling"]
    # They may not rate the target (not the owner).
    await act(client, world.handler, target["id"], "reply", {"public_answer": "已修复"})
    response = await client.post(
        f"/cases/{target['id']}/rate",
        json={"satisfaction": "satisfied"},
        headers=world.resident2.headers,
    )
    assert response.status_code == 403
    # A closed case cannot be a merge target.
    third = await submit(client, world.resident, world)
    await act(client, world.resident, target["id"], "rate", {"satisfaction": "satisfied"})
    closed = await client.post(
        f"/cases/{third['id']}/merge",
        json={"into_case_id": target["id"]},
        headers=world.staff.headers,
    )
    assert closed.status_code == 422


async def test_supervise_is_recorded_counted_and_told(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    case = await assigned_case(client, world)
    first = await act(client, world.staff, case["id"], "supervise", {"note": "请本周内答复"})
    second = await act(client, world.staff, case["id"], "supervise", {"note": "再次督办"})
    assert (first["supervised_count"], second["supervised_count"]) == (1, 2)
    assert second["status"] == "handling"
    timeline = (await client.get(f"/cases/{case['id']}", headers=world.staff.headers)).json()[
        "timeline"
    ]
    assert [e["internal_note"] for e in timeline if e["action"] == "supervise"] == [
        "请本周内答复",
        "再次督办",
    ]
    resident_timeline = (
        await client.get(f"/cases/{case['id']}", headers=world.resident.headers)
    ).json()["timeline"]
    assert all(e["internal_note"] is None for e in resident_timeline)
    handler_events = [n.event for n in await notifications(db, world.handler.id)]
    assert handler_events == ["case.assigned", "case.supervised", "case.supervised"]


async def test_unit_sends_back_to_staff_with_reason(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    case = await assigned_case(client, world)
    sent = await act(client, world.handler, case["id"], "send-back", {"reason": "属市政公司管养"})
    assert sent["status"] == "registered"
    assert sent["lead_unit"] is None
    assert sent["deadline"] is None
    # The unit no longer sees it; staff of the region were told; it is back in the queue.
    assert (
        await client.get(f"/cases/{case['id']}", headers=world.handler.headers)
    ).status_code == 404
    staff_msgs = await notifications(db, world.staff.id)
    assert [n.event for n in staff_msgs] == ["case.sent_back"]
    assert await notifications(db, world.staff_b.id) == []
    queue = await client.get(
        "/cases", params={"status": "registered"}, headers=world.staff_a.headers
    )
    assert [c["id"] for c in queue.json()["items"]] == [case["id"]]
    timeline = (await client.get(f"/cases/{case['id']}", headers=world.staff.headers)).json()[
        "timeline"
    ]
    assert timeline[-1]["action"] == "send_back"
    assert timeline[-1]["internal_note"] == "属市政公司管养"
    # Assigned again to another unit, whose handler hears of it.
    await act(client, world.staff, case["id"], "assign", {"unit_id": world.unit2.id})
    assert [n.event for n in await notifications(db, world.handler2.id)] == ["case.assigned"]


async def test_stale_version_is_refused(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    case = await submit(client, world.resident, world)
    cid, version = case["id"], case["version"]
    await act(client, world.staff, cid, "assign", {"unit_id": world.unit.id, "version": version})
    stale = await client.post(
        f"/cases/{cid}/supervise",
        json={"note": "督办一下", "version": version},
        headers=world.staff.headers,
    )
    assert stale.status_code == 409
    assert stale.json()["code"] == "version_conflict"
    # If-Match: the ETag of GET; a stale one is 412 (documented), a fresh one passes.
    got = await client.get(f"/cases/{cid}", headers=world.staff.headers)
    etag = got.headers["ETag"]
    assert etag == f'"{version + 1}"'
    stale_if_match = await client.post(
        f"/cases/{cid}/supervise",
        json={"note": "督办一下"},
        headers={**world.staff.headers, "If-Match": f'"{version}"'},
    )
    assert stale_if_match.status_code == 412
    assert stale_if_match.json()["code"] == "version_conflict"
    ok = await client.post(
        f"/cases/{cid}/supervise",
        json={"note": "督办一下"},
        headers={**world.staff.headers, "If-Match": etag},
    )
    assert ok.status_code == 200
    assert ok.headers["ETag"] == f'"{version + 2}"'
    # PATCH with a stale version changes nothing.
    patch = await client.patch(
        f"/cases/{cid}", json={"title": "新标题", "version": version}, headers=world.staff.headers
    )
    assert patch.status_code == 409
    assert (await case_row(db, cid)).title == case["title"]


async def test_concurrent_staff_edits_one_wins(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory
) -> None:
    case = await submit(client, world.resident, world)
    cid, version = case["id"], case["version"]
    staff2 = await factory.staff(world.d.district)
    units = [world.unit, world.unit2, world.unit3]
    responses = await asyncio.gather(
        *(
            client.post(
                f"/cases/{cid}/assign",
                json={"unit_id": units[i % 3].id, "version": version},
                headers=(world.staff if i % 2 else staff2).headers,
            )
            for i in range(8)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 1
    assert all(
        r.json()["code"] in ("version_conflict", "invalid_transition")
        for r in responses
        if r.status_code != 200
    )
    row = await case_row(db, cid)
    assert row.version == version + 1
    assert row.status == CaseStatus.handling
    assert await count_events(db, cid) == 2  # register + one assign
    # The same with edits that keep the status: exactly one of the PATCHes wins.
    patches = await asyncio.gather(
        *(
            client.patch(
                f"/cases/{cid}",
                json={"title": f"标题{i}", "version": version + 1},
                headers=world.staff.headers,
            )
            for i in range(6)
        )
    )
    assert sorted(p.status_code for p in patches) == [200] + [409] * 5
    assert (await case_row(db, cid)).version == version + 2


async def test_staff_edit_with_version(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    case = await submit(client, world.resident, world)
    edited = await client.patch(
        f"/cases/{case['id']}",
        json={
            "category_id": world.cat("environment"),
            "title": "东门路灯",
            "version": case["version"],
        },
        headers=world.staff.headers,
    )
    assert edited.status_code == 200
    assert edited.json()["category_id"] == world.cat("environment")
    assert edited.json()["title"] == "东门路灯"
    for body in (
        {"version": 2},
        {"region_id": 99999, "version": 2},
        {"category_id": 9999, "version": 2},
    ):
        response = await client.patch(
            f"/cases/{case['id']}", json=body, headers=world.staff.headers
        )
        assert response.status_code == 422
    # Residents and units cannot edit.
    for actor in (world.resident, world.handler):
        response = await client.patch(
            f"/cases/{case['id']}", json={"title": "改标题"}, headers=actor.headers
        )
        assert response.status_code in (403, 404)
    assert (await case_row(db, case["id"])).version == 2


def test_every_rule_names_who_may() -> None:
    for (status, action), rule in TRANSITIONS.items():
        assert rule.who, (status, action)
        assert isinstance(action, CaseAction)
