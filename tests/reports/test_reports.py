"""Reports to the voters (述职报告) and their evaluation (评议): once per account, enforced
by the database; verified phones only; the constituency where it is known."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.core.clock import clock, utcnow
from app.core.db import Database
from app.notify.models import Notification
from app.reports.models import DeputyReport, DeputyReportEvaluation
from tests.activities.conftest import T0, World
from tests.factories import Actor, Factory


def report_body(world: World, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "year": 2026,
        "title": "王组长2026年度述职报告",
        "content": "一年来参加视察调研6次……",
        "station_ids": [world.station.id],
    }
    body.update(overrides)
    return body


async def _count(db: Database, model: type) -> int:
    async with db.transaction(write=False) as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def voter(factory: Factory, world: World, region: Any = "a", **fields: Any) -> Actor:
    regions = {"a": world.district.community_a, "b": world.district.community_b, None: None}
    chosen = regions[region] if isinstance(region, str | type(None)) else region
    return await factory.resident(
        phone_verified_at=utcnow(),
        phone="13800000000",
        region_id=chosen.id if chosen is not None else None,
        **fields,
    )


async def published(client: httpx.AsyncClient, world: World) -> dict[str, Any]:
    response = await client.post(
        "/deputy-reports", json=report_body(world, publish=True), headers=world.leader.headers
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_deputy_writes_and_publishes_their_report(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    clock.freeze(T0)
    draft = await client.post(
        "/deputy-reports", json=report_body(world), headers=world.leader.headers
    )
    assert draft.status_code == 201, draft.text
    report = draft.json()
    assert report["status"] == "draft" and report["deputy_id"] == world.deputies["leader"].id
    assert report["region_id"] == world.district.street_a.id  # the deputy's region by default
    url = f"/deputy-reports/{report['id']}"
    for headers in ({}, world.resident.headers, world.member.headers, world.staff_b.headers):
        assert (await client.get(url, headers=headers)).status_code == 404
    assert (await client.get("/deputy-reports")).json()["total"] == 0
    assert (await client.get(url, headers=world.staff_a.headers)).status_code == 200
    for actor in (world.member, world.staff_b, world.resident):
        response = await client.patch(url, json={"title": "改"}, headers=actor.headers)
        assert response.status_code in (403, 404)
    done = await client.patch(url, json={"status": "published"}, headers=world.leader.headers)
    assert done.status_code == 200 and done.json()["status"] == "published"
    assert done.json()["results"]["total"] == 0
    public = await client.get(url)
    assert public.status_code == 200 and public.json()["results"] is None
    assert (await client.get("/deputy-reports", params={"year": 2026})).json()["total"] == 1
    back = await client.patch(url, json={"status": "draft"}, headers=world.staff_a.headers)
    assert back.status_code == 409
    again = await client.post(
        "/deputy-reports", json=report_body(world), headers=world.leader.headers
    )
    assert again.status_code == 409 and again.json()["code"] == "report_exists"
    # A deputy writes only their own.
    theirs = await client.post(
        "/deputy-reports",
        json=report_body(world, deputy_id=world.deputies["member"].id),
        headers=world.leader.headers,
    )
    assert theirs.status_code == 403
    assert await _count(db, DeputyReport) == 1


async def test_staff_write_for_deputies_in_scope_and_the_deputy_hears_of_it(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    clock.freeze(T0)
    body = report_body(world, deputy_id=world.deputies["member"].id, publish=True)
    outside = await client.post("/deputy-reports", json=body, headers=world.staff_b.headers)
    assert outside.status_code == 403
    made = await client.post("/deputy-reports", json=body, headers=world.staff_a.headers)
    assert made.status_code == 201, made.text
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            select(Notification.recipient_id).where(Notification.event == "deputy_report.published")
        )
        assert list(rows.scalars()) == [world.member.id]
    resident = await client.post("/deputy-reports", json=body, headers=world.resident.headers)
    assert resident.status_code == 403


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"year": 1999}, id="year"),
        pytest.param({"title": ""}, id="empty-title"),
        pytest.param({"content": "x" * 20001}, id="long"),
        pytest.param({"station_ids": [999999]}, id="unknown-station"),
        pytest.param({"activity_id": 999999}, id="unknown-activity"),
        pytest.param({"attachment_ids": [999999]}, id="unknown-attachment"),
        pytest.param({"evaluation_closes_at": "2026-12-31T00:00:00"}, id="naive-time"),
        pytest.param({"stars": 5}, id="unknown-field"),
    ],
)
async def test_bad_reports_are_422_and_change_nothing(
    client: httpx.AsyncClient, world: World, db: Database, change: dict[str, Any]
) -> None:
    response = await client.post(
        "/deputy-reports", json=report_body(world, **change), headers=world.leader.headers
    )
    assert response.status_code == 422, response.text
    assert await _count(db, DeputyReport) == 0


async def test_residents_evaluate_once_with_a_verified_phone_in_the_constituency(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory
) -> None:
    clock.freeze(T0)
    report = await published(client, world)
    url = f"/deputy-reports/{report['id']}/evaluations"
    unverified = await client.post(
        url, json={"rating": "satisfied"}, headers=world.resident.headers
    )
    assert unverified.status_code == 422 and unverified.json()["code"] == "phone_not_verified"
    elsewhere = await voter(factory, world, "b")
    refused = await client.post(url, json={"rating": "satisfied"}, headers=elsewhere.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "not_in_constituency"
    for actor in (world.member, world.staff_a):
        assert (
            await client.post(url, json={"rating": "satisfied"}, headers=actor.headers)
        ).status_code == 403
    inside = await voter(factory, world, "a", nickname="张三丰")
    first = await client.post(
        url, json={"rating": "basically_satisfied", "comment": "多关注停车"}, headers=inside.headers
    )
    assert first.status_code == 201, first.text
    twice = await client.post(url, json={"rating": "dissatisfied"}, headers=inside.headers)
    assert twice.status_code == 409 and twice.json()["code"] == "already_evaluated"
    # Where the account names no region, or only the whole district, it is not known: allowed.
    for region in (None, world.district.district):
        somebody = await voter(factory, world, region)
        response = await client.post(url, json={"rating": "satisfied"}, headers=somebody.headers)
        assert response.status_code == 201, response.text
    mine = await client.get(f"/deputy-reports/{report['id']}", headers=inside.headers)
    assert mine.json()["my_evaluation"]["rating"] == "basically_satisfied"

    sheet = await client.get(url, headers=world.staff_a.headers)
    assert sheet.status_code == 200, sheet.text
    body = sheet.json()
    assert body["results"] == {
        "total": 3,
        "satisfied": 2,
        "basically_satisfied": 1,
        "dissatisfied": 0,
        "satisfaction_rate": 1.0,
    }
    assert body["items"][0]["resident"] == "张**" and body["items"][0]["comment"] == "多关注停车"
    for actor in (world.staff_b, world.resident, world.leader):
        assert (await client.get(url, headers=actor.headers)).status_code == 403
    # The deputy sees the counts on the report, not the comments.
    own = await client.get(f"/deputy-reports/{report['id']}", headers=world.leader.headers)
    assert own.json()["results"]["total"] == 3


async def test_simultaneous_evaluations_by_one_account_count_once(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory
) -> None:
    clock.freeze(T0)
    report = await published(client, world)
    inside = await voter(factory, world, "a")
    url = f"/deputy-reports/{report['id']}/evaluations"
    responses = await asyncio.gather(
        *(client.post(url, json={"rating": "satisfied"}, headers=inside.headers) for _ in range(10))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    assert await _count(db, DeputyReportEvaluation) == 1


async def test_comments_pass_the_content_check_and_the_window_holds(
    client: httpx.AsyncClient, world: World, db: Database, factory: Factory
) -> None:
    clock.freeze(T0)
    report = await published(client, world)
    url = f"/deputy-reports/{report['id']}/evaluations"
    inside = await voter(factory, world, "a")
    risky = await client.post(
        url, json={"rating": "dissatisfied", "comment": "来赌博吧"}, headers=inside.headers
    )
    assert risky.status_code == 422 and risky.json()["code"] == "content_rejected"
    assert await _count(db, DeputyReportEvaluation) == 0
    review = await client.post(
        url, json={"rating": "dissatisfied", "comment": "加微信聊"}, headers=inside.headers
    )
    assert review.status_code == 201
    sheet = (await client.get(url, headers=world.staff_a.headers)).json()
    assert sheet["items"][0]["content_flag"] == "review"
    closing = await client.patch(
        f"/deputy-reports/{report['id']}",
        json={"evaluation_closes_at": (T0 + timedelta(days=1)).isoformat()},
        headers=world.staff_a.headers,
    )
    assert closing.status_code == 200
    clock.freeze(T0 + timedelta(days=2))
    late = await voter(factory, world, "a")
    closed = await client.post(url, json={"rating": "satisfied"}, headers=late.headers)
    assert closed.status_code == 409 and closed.json()["code"] == "evaluation_closed"
    for bad in ({"rating": "great"}, {}, {"rating": "satisfied", "comment": "x" * 501}):
        assert (await client.post(url, json=bad, headers=late.headers)).status_code == 422


async def test_reports_enter_the_archive_and_who_has_not_reported(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    clock.freeze(T0)
    report = await published(client, world)
    inside = await voter(factory, world, "a")
    await client.post(
        f"/deputy-reports/{report['id']}/evaluations",
        json={"rating": "dissatisfied"},
        headers=inside.headers,
    )
    leader = world.deputies["leader"].id
    archive = (
        await client.get(
            f"/deputies/{leader}/archive", params={"year": 2026}, headers=world.staff_a.headers
        )
    ).json()
    assert [
        (r["title"], r["total"], r["dissatisfied"], r["satisfaction_rate"])
        for r in archive["reports"]
    ] == [("王组长2026年度述职报告", 1, 0 + 1, 0.0)]
    lines = {line["kind"]: line for line in archive["score"]["breakdown"]}
    assert lines["report"]["count"] == 1 and lines["report"]["points"] == 5.0
    stats = await client.get(
        "/stats/deputies",
        params={"from": "2026-01-01", "to": "2026-12-31", "not_reported": True},
        headers=world.admin.headers,
    )
    assert stats.status_code == 200, stats.text
    names = {i["name"]: i["reported_this_term"] for i in stats.json()["items"]}
    assert names == {"李代表": False, "赵代表": False}
