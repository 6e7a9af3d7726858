"""Answers, leave, check-ins by the activity's code, and staff corrections with a history."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from app.activities.models import ActivityAttendance
from app.core.clock import clock
from app.core.config import Settings
from app.core.db import Database
from app.notify.models import Notification
from tests.activities.conftest import T0, World, code_scene, create, plan, scan

START = T0 + timedelta(days=1, minutes=30)  # the plan's start: 3 March 09:30 Shanghai


async def _attendance_rows(db: Database) -> int:
    async with db.transaction(write=False) as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(ActivityAttendance))
            ).scalar_one()
        )


async def _events(db: Database, event: str) -> list[int]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            select(Notification.recipient_id).where(Notification.event == event)
        )
        return sorted(rows.scalars())


async def test_invited_deputies_answer_and_ask_for_leave_that_staff_decide(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    clock.freeze(T0)
    activity = await create(client, world.staff_a, plan(world))
    url = f"/activities/{activity['id']}"
    yes = await client.post(f"{url}/rsvp", json={"answer": "yes"}, headers=world.leader.headers)
    assert yes.status_code == 200 and yes.json()["answer"] == "yes"
    no_reason = await client.post(
        f"{url}/rsvp", json={"answer": "leave"}, headers=world.member.headers
    )
    assert no_reason.status_code == 422
    leave = await client.post(
        f"{url}/rsvp",
        json={"answer": "leave", "reason": "出差在外地"},
        headers=world.member.headers,
    )
    assert leave.status_code == 200 and leave.json()["leave_status"] == "pending"
    assert await _events(db, "activity.leave_requested") == [world.staff_a.id]
    # Not invited, not a deputy: refused.
    outsider = await client.post(
        f"{url}/rsvp", json={"answer": "yes"}, headers=world.outsider.headers
    )
    assert outsider.status_code == 404  # a non-public activity is not even visible to them
    staff = await client.post(f"{url}/rsvp", json={"answer": "yes"}, headers=world.staff_a.headers)
    assert staff.status_code == 403
    # Staff approve the leave by recording the deputy as excused; the deputy hears of it.
    approve = await client.post(
        f"{url}/attendance",
        json={"deputy_id": world.deputies["member"].id, "status": "excused", "reason": "同意请假"},
        headers=world.staff_a.headers,
    )
    assert approve.status_code == 200, approve.text
    sheet = {i["deputy_id"]: i for i in approve.json()["items"]}
    member = sheet[world.deputies["member"].id]
    assert member["status"] == "excused" and member["leave_status"] == "approved"
    assert member["leave_reason"] == "出差在外地"
    assert await _events(db, "activity.leave_decided") == [world.member.id]
    detail = await client.get(url, headers=world.member.headers)
    assert detail.json()["my_invitation"]["attendance"] == "excused"
    # After the end, the leader (said yes, never scanned) is absent without leave.
    clock.advance(timedelta(days=2))
    sheet = (await client.get(f"{url}/attendance", headers=world.staff_a.headers)).json()
    assert (sheet["present"], sheet["excused"], sheet["absent"]) == (0, 1, 1)
    late = await client.post(f"{url}/rsvp", json={"answer": "no"}, headers=world.leader.headers)
    assert late.status_code == 409 and late.json()["code"] == "activity_ended"


async def test_check_in_by_the_activity_code_on_the_spot(
    client: httpx.AsyncClient, world: World, db: Database, settings: Settings
) -> None:
    clock.freeze(T0)
    activity = await create(client, world.staff_a, plan(world))
    scene = await code_scene(client, world, activity["id"])
    assert scene.startswith(f"a.{activity['id']}.")
    too_early = await scan(client, world.member, activity["id"], scene)
    assert too_early.status_code == 422 and too_early.json()["code"] == "activity_not_open"
    clock.freeze(START - timedelta(minutes=10))
    far = await scan(client, world.member, activity["id"], scene, metres_away=500)
    assert far.status_code == 422 and far.json()["code"] == "out_of_range"
    assert far.json()["radius_m"] == 300
    first = await scan(client, world.member, activity["id"], scene, metres_away=40)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "present" and first.json()["repeat"] is False
    assert 39 < first.json()["distance_m"] < 41
    again = await scan(client, world.member, activity["id"], scene)
    assert (
        again.json()["repeat"] is True and again.json()["distance_m"] == first.json()["distance_m"]
    )
    assert await _attendance_rows(db) == 1
    # Forged, relabelled and station scenes are refused; staff and residents cannot check in.
    for bad in (scene[:-1] + ("A" if scene[-1] != "A" else "B"), "p.1.1.AAAAAAAAAAAA", "hello"):
        response = await scan(client, world.leader, activity["id"], bad)
        assert response.status_code == 422 and response.json()["code"] == "invalid_qr"
    other = await create(client, world.staff_a, plan(world, title="另一活动"))
    relabelled = await scan(client, world.leader, other["id"], scene)
    assert relabelled.status_code == 422 and relabelled.json()["code"] == "invalid_qr"
    for actor in (world.staff_a, world.resident):
        response = await scan(client, actor, activity["id"], scene)
        assert response.status_code in (403, 404)
    # A deputy who was not invited: refused (the activity is not even visible to them), also
    # at a public activity.
    assert (await scan(client, world.outsider, activity["id"], scene)).status_code == 404
    public = await create(client, world.staff_a, plan(world, is_public=True))
    uninvited = await scan(
        client, world.outsider, public["id"], await code_scene(client, world, public["id"])
    )
    assert uninvited.status_code == 403 and uninvited.json()["code"] == "not_invited"
    # Renewing the code revokes the printed copies.
    renewed = await client.patch(
        f"/activities/{activity['id']}", json={"renew_code": True}, headers=world.staff_a.headers
    )
    assert renewed.status_code == 200
    stale = await scan(client, world.leader, activity["id"], scene)
    assert stale.status_code == 422 and stale.json()["code"] == "invalid_qr"
    fresh = await scan(
        client, world.leader, activity["id"], await code_scene(client, world, activity["id"])
    )
    assert fresh.status_code == 200
    assert await _attendance_rows(db) == 2
    clock.freeze(START + timedelta(hours=5))
    closed = await scan(client, world.leader, activity["id"], scene)
    assert closed.status_code == 422


async def test_rotating_codes_expire(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    clock.freeze(START)
    activity = await create(client, world.staff_a, plan(world, qr_mode="rotating"))
    code = await client.get(
        f"/activities/{activity['id']}/qrcode",
        params={"format": "json"},
        headers=world.leader.headers,
    )
    assert code.status_code == 200 and code.json()["kind"] == "rotating"
    assert code.json()["expires_at"] is not None
    scene = code.json()["scene"]
    assert scene.startswith(f"b.{activity['id']}.")
    step = settings.qr_rotation_step_seconds
    clock.advance(timedelta(seconds=step * settings.qr_rotation_valid_steps))
    expired = await scan(client, world.member, activity["id"], scene)
    assert expired.status_code == 422 and expired.json()["code"] == "invalid_qr"
    current = await code_scene(client, world, activity["id"])
    assert (await scan(client, world.member, activity["id"], current)).status_code == 200
    # Only who manages it gets the code.
    for actor in (world.member, world.staff_b, world.resident):
        refused = await client.get(
            f"/activities/{activity['id']}/qrcode", params={"format": "json"}, headers=actor.headers
        )
        assert refused.status_code in (403, 404)


async def test_the_code_as_a_png_comes_from_wechat(
    client: httpx.AsyncClient, world: World, fake_wechat
) -> None:
    clock.freeze(T0)
    activity = await create(client, world.staff_a, plan(world))
    response = await client.get(
        f"/activities/{activity['id']}/qrcode", headers=world.staff_a.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")


async def test_simultaneous_scans_make_one_attendance(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    clock.freeze(START)
    activity = await create(client, world.staff_a, plan(world))
    scene = await code_scene(client, world, activity["id"])
    responses = await asyncio.gather(
        *(scan(client, world.member, activity["id"], scene) for _ in range(12))
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert sorted(r.json()["repeat"] for r in responses) == [False] + [True] * 11
    assert await _attendance_rows(db) == 1


async def test_staff_correct_attendance_with_a_reason_and_the_history_stays(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    clock.freeze(START)
    activity = await create(client, world.staff_a, plan(world))
    url = f"/activities/{activity['id']}/attendance"
    outsider = world.deputies["outsider"].id
    added = await client.post(
        url,
        json={"deputy_id": outsider, "status": "present", "reason": "现场签到表为证"},
        headers=world.staff_a.headers,
    )
    assert added.status_code == 200, added.text
    corrected = await client.post(
        url,
        json={"deputy_id": outsider, "status": "absent", "reason": "核实未到场"},
        headers=world.admin.headers,
    )
    body = corrected.json()
    row = next(i for i in body["items"] if i["deputy_id"] == outsider)
    assert row["status"] == "absent" and row["invited"] is False and row["source"] == "staff"
    assert [(c["from_status"], c["to_status"], c["reason"]) for c in body["corrections"]] == [
        (None, "present", "现场签到表为证"),
        ("present", "absent", "核实未到场"),
    ]
    # A scan after staff marked a deputy absent counts: the deputy did come after all.
    member = world.deputies["member"].id
    await client.post(
        url,
        json={"deputy_id": member, "status": "absent", "reason": "未到"},
        headers=world.staff_a.headers,
    )
    scene = await code_scene(client, world, activity["id"])
    came = await scan(client, world.member, activity["id"], scene)
    assert came.status_code == 200 and came.json()["status"] == "present"
    before = await _attendance_rows(db)
    for actor in (world.leader, world.staff_b, world.resident):
        for response in (
            await client.get(url, headers=actor.headers),
            await client.post(
                url,
                json={"deputy_id": outsider, "status": "present", "reason": "x"},
                headers=actor.headers,
            ),
        ):
            assert response.status_code in (403, 404), response.text
    for bad in (
        {"deputy_id": outsider, "status": "present"},
        {"deputy_id": outsider, "status": "late", "reason": "x"},
        {"deputy_id": 999999, "status": "present", "reason": "x"},
        {"deputy_id": outsider, "status": "present", "reason": ""},
    ):
        response = await client.post(url, json=bad, headers=world.staff_a.headers)
        assert response.status_code == 422, response.text
    assert await _attendance_rows(db) == before
    sheet = (await client.get(url, headers=world.staff_a.headers)).json()
    assert len(sheet["corrections"]) == 3
    assert next(i for i in sheet["items"] if i["deputy_id"] == member)["source"] == "scan"


@pytest.mark.parametrize(
    "body", [{"answer": "maybe"}, {"answer": "pending"}, {}, {"answer": "yes", "x": 1}]
)
async def test_bad_answers_are_422(client: httpx.AsyncClient, world: World, body: dict) -> None:
    clock.freeze(T0)
    activity = await create(client, world.staff_a, plan(world))
    response = await client.post(
        f"/activities/{activity['id']}/rsvp", json=body, headers=world.member.headers
    )
    assert response.status_code == 422
    detail = await client.get(f"/activities/{activity['id']}", headers=world.member.headers)
    assert detail.json()["my_invitation"]["answer"] == "pending"
