"""Attendance, leave and absence flow into the duty archive, its score and the statistics."""

from __future__ import annotations

from datetime import timedelta

import httpx

from app.core.clock import clock
from tests.activities.conftest import T0, World, code_scene, create, plan, scan

START = T0 + timedelta(days=1, minutes=30)


async def test_recorded_activities_enter_the_archive_and_the_statistics(
    client: httpx.AsyncClient, world: World
) -> None:
    clock.freeze(T0)
    attended = await create(client, world.staff_a, plan(world, title="视察甲"))
    excused = await create(
        client,
        world.staff_a,
        plan(
            world,
            kind="training",
            title="培训乙",
            starts_at="2026-03-03T06:00:00Z",
            ends_at="2026-03-03T08:00:00Z",
        ),
    )
    await create(
        client,
        world.staff_a,
        plan(
            world,
            kind="research",
            title="调研丙",
            starts_at="2026-03-04T01:00:00Z",
            ends_at="2026-03-04T03:00:00Z",
        ),
    )
    cancelled = await create(client, world.staff_a, plan(world, title="取消丁"))
    await client.patch(
        f"/activities/{cancelled['id']}",
        json={"status": "cancelled"},
        headers=world.staff_a.headers,
    )
    await client.post(
        f"/activities/{excused['id']}/rsvp",
        json={"answer": "leave", "reason": "住院"},
        headers=world.member.headers,
    )
    await client.post(
        f"/activities/{excused['id']}/attendance",
        json={"deputy_id": world.deputies["member"].id, "status": "excused", "reason": "同意"},
        headers=world.staff_a.headers,
    )
    clock.freeze(START)
    response = await scan(
        client, world.member, attended["id"], await code_scene(client, world, attended["id"])
    )
    assert response.status_code == 200

    member = world.deputies["member"].id
    # While 调研丙 is still ahead, it is not in the archive yet.
    archive = (
        await client.get(
            f"/deputies/{member}/archive", params={"year": 2026}, headers=world.member.headers
        )
    ).json()
    assert [(a["title"], a["status"]) for a in archive["activities"]] == [
        ("视察甲", "present"),
        ("培训乙", "excused"),
    ]

    clock.freeze(T0 + timedelta(days=5))
    archive = (
        await client.get(
            f"/deputies/{member}/archive", params={"year": 2026}, headers=world.staff_a.headers
        )
    ).json()
    assert [(a["title"], a["status"], a["source"]) for a in archive["activities"]] == [
        ("视察甲", "present", "scan"),
        ("培训乙", "excused", "staff"),
        ("调研丙", "absent", None),
    ]
    totals = archive["totals"]
    assert (
        totals["activities_present"],
        totals["activities_excused"],
        totals["activities_absent"],
    ) == (1, 1, 1)
    lines = {line["kind"]: line for line in archive["score"]["breakdown"]}
    assert lines["activity_present"]["points"] == 3.0
    assert lines["activity_absent"]["points"] == -3.0 and lines["activity_excused"]["points"] == 0.0
    # Another deputy's archive is not the member's to read.
    other = await client.get(
        f"/deputies/{world.deputies['leader'].id}/archive", headers=world.member.headers
    )
    assert other.status_code == 403

    stats = await client.get(
        "/stats/deputies",
        params={"from": "2026-03-01", "to": "2026-03-31", "region_id": world.district.district.id},
        headers=world.admin.headers,
    )
    assert stats.status_code == 200, stats.text
    by_name = {i["name"]: i for i in stats.json()["items"]}
    assert (by_name["李代表"]["activities_attended"], by_name["李代表"]["activities_absent"]) == (
        1,
        1,
    )
    # The leader was invited to all three and neither came nor asked for leave.
    assert (by_name["王组长"]["activities_attended"], by_name["王组长"]["activities_absent"]) == (
        0,
        3,
    )
    assert by_name["李代表"]["inactive"] is False
