"""GET /deputies/{id}/archive and its export: contents of a year, totals, the score and its
breakdown, configurable weights, who may read it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from app.cases.models import CaseStatus, Satisfaction
from app.core.clock import clock
from app.dashboard.archive import ARCHIVE_HEADERS, SCORE_KINDS
from app.dashboard.models import ManualAct
from app.identity.models import Deputy
from app.wishes.models import WishStatus
from tests.dashboard.helpers import Rows, sh
from tests.factories import Actor, District, Factory


@dataclass
class World:
    d: District
    deputy: Deputy
    me: Actor
    staff: Actor


@pytest.fixture
async def world(factory: Factory, rows: Rows) -> World:
    clock.freeze(sh(2026, 6, 30, 12))
    d = await factory.district()
    station = await factory.station(d.community_a, name="甲社区联络站")
    deputy = await factory.deputy(d.street_a, station, name="王芳")
    me = await factory.deputy_actor(deputy)
    staff = await factory.staff(d.street_a)
    slot1 = await rows.slot(station, sh(2026, 6, 10, 9), 3, deputy.id)
    await rows.slot(station, sh(2026, 6, 20, 9), 3, deputy.id)
    await rows.slot(station, sh(2025, 6, 20, 9), 3, deputy.id)
    await rows.checkin(deputy.id, station, sh(2026, 6, 10, 9, 5), 2.5, slot=slot1)
    await rows.checkin(deputy.id, station, sh(2026, 6, 11, 14), 8, auto=True)
    await rows.checkin(deputy.id, station, sh(2025, 12, 31, 23), 0.5)  # last year in Shanghai
    await rows.checkin(deputy.id, station, sh(2026, 1, 1, 0, 30), 1.0)  # Dec 31st in UTC
    cat = await rows.category()
    c1 = await rows.case(
        d.community_a,
        cat,
        created=sh(2026, 3, 2),
        submitter_id=me.id,
        title="修路灯",
        status=CaseStatus.resolved,
        satisfaction=Satisfaction.satisfied,
        resolved_at=sh(2026, 3, 20),
        number="20260302-0001",
    )
    await rows.case(
        d.community_a, cat, created=sh(2026, 5, 2), submitter_id=me.id, status=CaseStatus.handling
    )
    await rows.case(d.community_a, cat, created=sh(2025, 5, 2), submitter_id=me.id)
    other = await rows.case(
        d.community_a, cat, created=sh(2026, 4, 1), status=CaseStatus.resolved, title="加装电梯"
    )
    await rows.follow(other, me.id, deputy.id, sh(2026, 4, 2))
    await rows.reception(
        deputy.id, station, sh(2026, 6, 10, 10), me.id, case_id=c1.id, topic="路灯不亮"
    )
    await rows.wish(
        d.community_a,
        created=sh(2026, 6, 4),
        status=WishStatus.claimed,
        claimed_by_deputy_id=deputy.id,
        claimed_at=sh(2026, 6, 5),
        title="书包",
    )
    await rows.wish(
        d.community_a,
        created=sh(2025, 12, 1),
        status=WishStatus.completed,
        claimed_by_deputy_id=deputy.id,
        claimed_at=sh(2025, 12, 20),
        fulfilled_at=sh(2026, 1, 5),
        completed_at=sh(2026, 1, 6),
        rating=5,
        title="轮椅坡道",
    )
    await factory.add(
        ManualAct(
            deputy_id=deputy.id,
            kind="inspection",
            title="视察加装电梯",
            occurred_on=date(2026, 4, 18),
            location="甲街道",
        )
    )
    await factory.add(
        ManualAct(
            deputy_id=deputy.id, kind="research", title="调研停车难", occurred_on=date(2026, 5, 1)
        )
    )
    await factory.add(
        ManualAct(
            deputy_id=deputy.id, kind="meeting", title="去年的会议", occurred_on=date(2025, 6, 15)
        )
    )
    return World(d, deputy, me, staff)


async def _archive(
    client: httpx.AsyncClient, world: World, actor: Actor, year: int = 2026
) -> dict[str, Any]:
    r = await client.get(
        f"/deputies/{world.deputy.id}/archive", params={"year": year}, headers=actor.headers
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_archive_contents_and_score(client: httpx.AsyncClient, world: World) -> None:
    body = await _archive(client, world, world.me)
    assert body["deputy_id"] == world.deputy.id and body["name"] == "王芳" and body["year"] == 2026
    assert [c["checked_in_at"] for c in body["checkins"]] == [
        "2026-01-01T00:30:00+08:00",
        "2026-06-10T09:05:00+08:00",
        "2026-06-11T14:00:00+08:00",
    ]
    assert [c["hours"] for c in body["checkins"]] == [1.0, 2.5, None]
    assert body["checkins"][1]["station_name"] == "甲社区联络站"
    assert [s["attended"] for s in body["duty_slots"]] == [True, False]
    assert (
        body["receptions"][0]["topic"] == "路灯不亮"
        and body["receptions"][0]["case_id"] is not None
    )
    assert [(c["title"], c["status"], c["satisfaction"]) for c in body["cases_submitted"]] == [
        ("修路灯", "resolved", "satisfied"),
        (body["cases_submitted"][1]["title"], "handling", None),
    ]
    assert body["cases_submitted"][0]["number"] == "20260302-0001"
    assert [(c["title"], c["followed_at"]) for c in body["cases_followed"]] == [
        ("加装电梯", "2026-04-02T10:00:00+08:00")
    ]
    wishes = {w["title"]: w for w in body["wishes"]}
    assert wishes["书包"]["claimed_in_year"] and not wishes["书包"]["fulfilled_in_year"]
    assert wishes["轮椅坡道"]["fulfilled_in_year"] and not wishes["轮椅坡道"]["claimed_in_year"]
    assert [a["title"] for a in body["manual_acts"]] == ["视察加装电梯", "调研停车难"]
    assert body["totals"] == {
        "checkins": 3,
        "duty_hours": 3.5,
        "duty_slots": 2,
        "duty_slots_attended": 1,
        "receptions": 1,
        "cases_submitted": 2,
        "cases_followed": 1,
        "cases_resolved": 2,
        "wishes_claimed": 1,
        "wishes_fulfilled": 1,
        "activities_present": 0,
        "activities_excused": 0,
        "activities_absent": 0,
        "reports": 0,
        "consultation_comments": 0,
        "manual_acts": {"inspection": 1, "training": 0, "meeting": 0, "research": 1, "other": 0},
        "suggestions_led": 0,
        "suggestions_cosigned": 0,
    }
    lines = {line["kind"]: line for line in body["score"]["breakdown"]}
    assert lines["duty_hour"] == {
        "kind": "duty_hour",
        "label": "值班时长（小时）",
        "count": 3.5,
        "weight": 0.5,
        "points": 1.75,
    }
    assert lines["case_submitted"]["points"] == 6.0 and lines["inspection"]["points"] == 3.0
    assert (
        sum(line["points"] for line in body["score"]["breakdown"])
        == body["score"]["total"]
        == 29.75
    )

    last_year = await _archive(client, world, world.me, 2025)
    assert last_year["totals"]["checkins"] == 1 and last_year["totals"]["cases_submitted"] == 1
    assert (
        last_year["totals"]["wishes_claimed"] == 1 and last_year["totals"]["wishes_fulfilled"] == 0
    )
    assert last_year["totals"]["manual_acts"]["meeting"] == 1


async def test_weights_come_from_settings(
    client: httpx.AsyncClient, world: World, settings: Any
) -> None:
    original = settings.dashboard_score_weights
    settings.dashboard_score_weights = {"inspection": 10, "checkin": 0, "not_a_kind": 99}
    try:
        body = await _archive(client, world, world.staff)
    finally:
        settings.dashboard_score_weights = original
    lines = {line["kind"]: line for line in body["score"]["breakdown"]}
    assert lines["inspection"]["weight"] == 10 and lines["inspection"]["points"] == 10
    assert lines["checkin"]["points"] == 0 and "not_a_kind" not in lines
    assert body["score"]["total"] == 33.75


async def test_manual_act_added_by_staff_shows_in_the_deputys_archive(
    client: httpx.AsyncClient, world: World
) -> None:
    r = await client.post(
        f"/deputies/{world.deputy.id}/acts",
        json={"kind": "training", "title": "新任代表培训", "occurred_on": "2026-06-01"},
        headers=world.staff.headers,
    )
    assert r.status_code == 201
    body = await _archive(client, world, world.me)
    assert "新任代表培训" in [a["title"] for a in body["manual_acts"]]
    assert body["totals"]["manual_acts"]["training"] == 1 and body["score"]["total"] == 30.75


async def test_who_may_read(client: httpx.AsyncClient, factory: Factory, world: World) -> None:
    path = f"/deputies/{world.deputy.id}/archive"
    assert (await client.get(path)).status_code == 401
    admin = await factory.admin()
    district_staff = await factory.staff(world.d.district)
    for actor in (admin, district_staff, world.staff, world.me):
        assert (await client.get(path, headers=actor.headers)).status_code == 200
    for actor in (
        await factory.staff(world.d.street_b),
        await factory.deputy_actor(),
        await factory.resident(),
        await factory.unit_handler(await factory.unit()),
    ):
        r = await client.get(path, headers=actor.headers)
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = await client.get(f"{path}/export", headers=actor.headers)
        assert r.status_code == 403
    assert (await client.get("/deputies/999999/archive", headers=admin.headers)).status_code == 404
    r = await client.get(path, params={"year": 1999}, headers=admin.headers)
    assert r.status_code == 422


async def test_default_year_is_this_year(client: httpx.AsyncClient, world: World) -> None:
    r = await client.get(f"/deputies/{world.deputy.id}/archive", headers=world.me.headers)
    assert r.json()["year"] == 2026 and r.json()["totals"]["checkins"] == 3


async def test_export_csv_and_xlsx(client: httpx.AsyncClient, world: World) -> None:
    path = f"/deputies/{world.deputy.id}/archive/export"
    r = await client.get(path, params={"year": 2026, "format": "csv"}, headers=world.me.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table[0] == ARCHIVE_HEADERS
    blank = table.index([])
    kinds = [row[0] for row in table[1:blank]]
    assert table[blank + 1] == ["得分项", "数量", "权重", "得分"]
    assert len(table) - blank - 3 == len(SCORE_KINDS)  # one line per kind, then the total
    assert kinds.count("进站签到") == 2 and kinds.count("进站签到（按排班）") == 1
    assert kinds.count("排班值班") == 2 and kinds.count("接待群众") == 1
    assert kinds.count("提交意见建议") == 2 and kinds.count("跟踪意见建议") == 1
    assert kinds.count("微心愿") == 2 and "视察" in kinds and "调研" in kinds
    resolved = next(row for row in table if row and row[2] == "修路灯")
    assert resolved[4] == "已办结，满意" and resolved[6] == "20260302-0001"
    assert table[-1][0] == "年度得分" and float(table[-1][3]) == 29.75

    r = await client.get(path, params={"year": 2026, "format": "xlsx"}, headers=world.staff.headers)
    assert r.status_code == 200
    assert (
        r.headers["content-type"]
        == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    sheet = load_workbook(io.BytesIO(r.content), read_only=True).active
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == ARCHIVE_HEADERS
    assert values[-1][0] == "年度得分" and values[-1][3] == 29.75
    assert len(values) == len(table)
    r = await client.get(path, params={"format": "pdf"}, headers=world.staff.headers)
    assert r.status_code == 422
