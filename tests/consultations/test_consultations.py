"""Legislative consultations: drafts at contact points, comments inside the window with the
content check, outcomes, feedback to every commenter once, exports, statistics."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from docx import Document
from openpyxl import load_workbook
from sqlalchemy import func, select

from app.consultations.models import Consultation, ConsultationComment
from app.core.clock import clock
from app.core.db import Database
from app.notify.models import Notification
from tests.consultations.conftest import Point
from tests.factories import Factory

OPENS = datetime(2026, 3, 1, tzinfo=UTC)
CLOSES = datetime(2026, 3, 31, tzinfo=UTC)


def draft(p: Point, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "物业管理条例（修订草案）",
        "issuing_body": "市人大常委会法工委",
        "summary": "重点完善业主大会制度",
        "articles": [
            {"no": 1, "title": "立法目的", "text": "为了规范物业管理活动，制定本条例。"},
            {"no": 2, "text": "本条例适用于本市行政区域内的物业管理活动。"},
        ],
        "region_id": p.world.district.street_a.id,
        "station_ids": [p.point.id],
        "opens_at": OPENS.isoformat(),
        "closes_at": CLOSES.isoformat(),
        "publish": True,
    }
    body.update(overrides)
    return body


async def create(client: httpx.AsyncClient, p: Point, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/consultations", json=draft(p, **overrides), headers=p.world.staff_a.headers
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def _count(db: Database, model: type) -> int:
    async with db.transaction(write=False) as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def comment(
    client: httpx.AsyncClient, headers: dict[str, str], cid: int, **body: Any
) -> httpx.Response:
    return await client.post(f"/consultations/{cid}/comments", json=body, headers=headers)


async def test_staff_put_drafts_out_at_their_contact_points(
    client: httpx.AsyncClient, point: Point, db: Database
) -> None:
    w = point.world
    clock.freeze(OPENS - timedelta(days=1))
    unpublished = await create(client, point, publish=False)
    assert unpublished["status"] == "draft" and unpublished["can_manage"] is True
    url = f"/consultations/{unpublished['id']}"
    for headers in ({}, w.resident.headers, w.staff_b.headers):
        assert (await client.get(url, headers=headers)).status_code == 404
    published = await client.patch(url, json={"status": "published"}, headers=w.staff_a.headers)
    assert published.status_code == 200 and published.json()["status"] == "published"
    public = await client.get(url)
    assert [a["no"] for a in public.json()["articles"]] == [1, 2]
    assert public.json()["is_open"] is False  # not yet
    articles = await client.patch(url, json={"articles": []}, headers=w.staff_a.headers)
    assert articles.status_code == 409
    clock.freeze(OPENS + timedelta(days=1))
    listed = await client.get("/consultations", params={"open": True, "station_id": point.point.id})
    assert [c["id"] for c in listed.json()["items"]] == [unpublished["id"]]
    assert (await client.get("/consultations", params={"station_id": point.point_b.id})).json()[
        "total"
    ] == 0
    for actor, body in (
        (w.staff_b, draft(point)),
        (w.resident, draft(point)),
        (w.leader, draft(point)),
    ):
        response = await client.post("/consultations", json=body, headers=actor.headers)
        assert response.status_code == 403
    for actor in (w.staff_b, w.resident):
        assert (
            await client.patch(url, json={"title": "x"}, headers=actor.headers)
        ).status_code in (403, 404)
    assert await _count(db, Consultation) == 1


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            {"articles": [{"no": 1, "text": "a"}, {"no": 1, "text": "b"}]}, id="same-number"
        ),
        pytest.param({"articles": [{"no": 0, "text": "a"}]}, id="article-zero"),
        pytest.param({"closes_at": "2026-02-01T00:00:00Z"}, id="closes-before-opens"),
        pytest.param({"station_ids": ["x"]}, id="bad-id"),
        pytest.param({"title": ""}, id="empty-title"),
        pytest.param({"opens_at": "2026-03-01T00:00:00"}, id="naive"),
        pytest.param({"region_id": 999999}, id="unknown-region"),
        pytest.param({"attachment_ids": [999999]}, id="unknown-attachment"),
    ],
)
async def test_bad_drafts_are_422_and_change_nothing(
    client: httpx.AsyncClient, point: Point, db: Database, change: dict[str, Any]
) -> None:
    response = await client.post(
        "/consultations", json=draft(point, **change), headers=point.world.admin.headers
    )
    assert response.status_code == 422, response.text
    assert await _count(db, Consultation) == 0


async def test_only_contact_points_in_scope(client: httpx.AsyncClient, point: Point) -> None:
    w = point.world
    for stations in ([w.station.id], [point.point_b.id]):
        response = await client.post(
            "/consultations", json=draft(point, station_ids=stations), headers=w.staff_a.headers
        )
        assert response.status_code == 422 and response.json()["code"] == "not_a_contact_point"
    district_wide = await client.post(
        "/consultations",
        json=draft(point, station_ids=[], region_id=w.district.district.id),
        headers=w.admin.headers,
    )
    assert district_wide.status_code == 201


async def test_residents_and_deputies_comment_inside_the_window(
    client: httpx.AsyncClient, point: Point, db: Database
) -> None:
    w = point.world
    clock.freeze(OPENS - timedelta(hours=1))
    c = await create(client, point)
    early = await comment(client, w.resident.headers, c["id"], content="意见")
    assert early.status_code == 422 and early.json()["code"] == "consultation_closed"
    clock.freeze(OPENS + timedelta(days=1))
    first = await comment(
        client, w.resident.headers, c["id"], article_no=1, content="建议写明保护业主权益"
    )
    assert first.status_code == 201, first.text
    assert first.json()["station_id"] == point.point.id and first.json()["is_deputy"] is False
    deputy = await comment(client, w.member.headers, c["id"], content="整体赞成")
    assert deputy.status_code == 201 and deputy.json()["commenter"] == "李代表"
    unknown = await comment(client, w.resident.headers, c["id"], article_no=9, content="x")
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_article"
    elsewhere = await comment(
        client, w.resident.headers, c["id"], content="x", station_id=point.point_b.id
    )
    assert elsewhere.status_code == 422
    risky = await comment(client, w.resident.headers, c["id"], content="赌博网站")
    assert risky.status_code == 422 and risky.json()["code"] == "content_rejected"
    for headers in (w.staff_a.headers, {}):
        assert (await comment(client, headers, c["id"], content="x")).status_code in (401, 403)
    for bad in ({"content": ""}, {"content": "x" * 2001}, {"article_no": 0, "content": "x"}, {}):
        assert (
            await client.post(
                f"/consultations/{c['id']}/comments", json=bad, headers=w.resident.headers
            )
        ).status_code == 422
    assert await _count(db, ConsultationComment) == 2
    clock.freeze(CLOSES)
    late = await comment(client, w.resident.headers, c["id"], content="晚了")
    assert late.status_code == 422 and late.json()["code"] == "consultation_closed"
    # Who sees which comments.
    url = f"/consultations/{c['id']}/comments"
    everything = await client.get(url, headers=w.staff_a.headers)
    assert [(i["article_no"], i["content"]) for i in everything.json()["items"]] == [
        (None, "整体赞成"),
        (1, "建议写明保护业主权益"),
    ]
    mine = await client.get(url, params={"mine": True}, headers=w.resident.headers)
    assert [i["content"] for i in mine.json()["items"]] == ["建议写明保护业主权益"]
    for actor in (w.resident, w.staff_b, w.member):
        assert (await client.get(url, headers=actor.headers)).status_code == 403
    detail = await client.get(f"/consultations/{c['id']}", headers=w.resident.headers)
    assert detail.json()["my_comments"] == 1 and detail.json()["comments"] == 2


async def test_outcomes_are_published_once_and_every_commenter_hears(
    client: httpx.AsyncClient, point: Point, db: Database, factory: Factory
) -> None:
    w = point.world
    clock.freeze(OPENS + timedelta(days=1))
    c = await create(client, point)
    other = await create(client, point, title="另一草案")
    ids = []
    for headers, body in (
        (w.resident.headers, {"article_no": 1, "content": "意见一"}),
        (w.resident.headers, {"article_no": 2, "content": "意见二"}),
        (w.member.headers, {"content": "总体意见"}),
    ):
        response = await comment(client, headers, c["id"], **body)
        ids.append(response.json()["id"])
    base = f"/consultations/{c['id']}"
    adopted = await client.post(
        f"{base}/comments/{ids[0]}/outcome",
        json={"outcome": "adopted", "note": "已吸收"},
        headers=w.staff_a.headers,
    )
    assert adopted.status_code == 200 and adopted.json()["outcome"] == "adopted"
    wrong = await client.post(
        f"/consultations/{other['id']}/comments/{ids[1]}/outcome",
        json={"outcome": "adopted"},
        headers=w.staff_a.headers,
    )
    assert wrong.status_code == 404
    for actor in (w.staff_b, w.resident, w.member):
        response = await client.post(
            f"{base}/comments/{ids[1]}/outcome", json={"outcome": "adopted"}, headers=actor.headers
        )
        assert response.status_code in (403, 404)
    bad = await client.post(
        f"{base}/comments/{ids[1]}/outcome", json={"outcome": "maybe"}, headers=w.staff_a.headers
    )
    assert bad.status_code == 422
    # The commenter does not see outcomes while staff collate.
    early = await client.get(f"{base}/comments", params={"mine": True}, headers=w.resident.headers)
    assert [i["outcome"] for i in early.json()["items"]] == [None, None]
    still_open = await client.post(f"{base}/publish-outcomes", headers=w.staff_a.headers)
    assert still_open.status_code == 409 and still_open.json()["code"] == "consultation_open"
    clock.freeze(CLOSES + timedelta(days=1))
    missing = await client.post(f"{base}/publish-outcomes", headers=w.staff_a.headers)
    assert missing.status_code == 409 and missing.json()["missing"] == 2
    await client.post(
        f"{base}/comments/{ids[1]}/outcome",
        json={"outcome": "not_adopted"},
        headers=w.staff_a.headers,
    )
    await client.post(
        f"{base}/comments/{ids[2]}/outcome",
        json={"outcome": "partly_adopted"},
        headers=w.staff_a.headers,
    )
    responses = await asyncio.gather(
        *(client.post(f"{base}/publish-outcomes", headers=w.staff_a.headers) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 4
    assert next(r for r in responses if r.status_code == 200).json()["commenters"] == 2
    async with db.transaction(write=False) as session:
        rows = (
            await session.execute(
                select(Notification.recipient_id, Notification.body).where(
                    Notification.event == "consultation.outcomes"
                )
            )
        ).all()
    assert sorted(r[0] for r in rows) == sorted([w.resident.id, w.member.id])
    assert "采纳1条，未采纳1条" in next(b for u, b in rows if u == w.resident.id)
    late = await client.post(
        f"{base}/comments/{ids[1]}/outcome", json={"outcome": "adopted"}, headers=w.staff_a.headers
    )
    assert late.status_code == 409 and late.json()["code"] == "outcomes_published"
    mine = await client.get(f"{base}/comments", params={"mine": True}, headers=w.resident.headers)
    assert [(i["outcome"], i["outcome_note"]) for i in mine.json()["items"]] == [
        ("adopted", "已吸收"),
        ("not_adopted", None),
    ]


async def test_the_collation_exports_grouped_by_article(
    client: httpx.AsyncClient, point: Point, factory: Factory
) -> None:
    w = point.world
    clock.freeze(OPENS + timedelta(days=1))
    c = await create(client, point)
    someone = await factory.resident(nickname="张三丰")
    await comment(client, someone.headers, c["id"], article_no=2, content="第二条的意见")
    await comment(client, w.member.headers, c["id"], content="总体赞成")
    await comment(client, w.resident.headers, c["id"], article_no=1, content="第一条的意见")
    url = f"/consultations/{c['id']}/export"
    xlsx = await client.get(url, params={"format": "xlsx"}, headers=w.staff_a.headers)
    assert xlsx.status_code == 200, xlsx.text
    rows = list(load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True))
    assert rows[1][:4] == ("条款", "条文", "序号", "意见")
    assert [(r[0], r[3], r[4], r[6]) for r in rows[2:]] == [
        ("总体意见", "总体赞成", "李代表", "待处理"),
        ("第1条 立法目的", "第一条的意见", rows[3][4], "待处理"),
        ("第2条", "第二条的意见", "张**", "待处理"),
    ]
    assert rows[3][4].startswith("r*")  # a resident's nickname, masked
    docx = await client.get(url, params={"format": "docx"}, headers=w.staff_a.headers)
    assert docx.status_code == 200
    assert docx.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.wordprocessingml"
    )
    text = [p.text for p in Document(io.BytesIO(docx.content)).paragraphs]
    assert text[0] == "关于《物业管理条例（修订草案）》的意见汇总"
    assert text.index("总体意见") < text.index("第1条 立法目的") < text.index("第2条")
    assert any(t.startswith("1. 第二条的意见") and "张**" in t for t in text)
    for actor in (w.resident, w.staff_b, w.member):
        assert (await client.get(url, headers=actor.headers)).status_code in (403, 404)
    assert (
        await client.get(url, params={"format": "pdf"}, headers=w.staff_a.headers)
    ).status_code == 422


async def test_statistics_per_contact_point_and_the_deputy_archive(
    client: httpx.AsyncClient, point: Point, factory: Factory
) -> None:
    w = point.world
    clock.freeze(OPENS + timedelta(days=1))
    at_point = await create(client, point)
    district_wide = await client.post(
        "/consultations",
        json=draft(point, station_ids=[], region_id=w.district.district.id),
        headers=w.admin.headers,
    )
    assert district_wide.status_code == 201
    await comment(client, w.resident.headers, at_point["id"], article_no=1, content="一")
    await comment(client, w.resident.headers, at_point["id"], article_no=2, content="二")
    made = await comment(client, w.member.headers, at_point["id"], content="三")
    await comment(client, w.member.headers, district_wide.json()["id"], content="四")
    await client.post(
        f"/consultations/{at_point['id']}/comments/{made.json()['id']}/outcome",
        json={"outcome": "adopted"},
        headers=w.staff_a.headers,
    )
    stats = await client.get("/stats/consultations", params={"year": 2026}, headers=w.admin.headers)
    assert stats.status_code == 200, stats.text
    rows = {
        (r["station_id"], r["drafts"], r["comments"], r["commenters"], r["adopted"])
        for r in stats.json()["items"]
    }
    assert rows == {(None, 1, 1, 1, 0), (point.point.id, 1, 3, 2, 1)}
    scoped = await client.get(
        "/stats/consultations", params={"year": 2026}, headers=w.staff_a.headers
    )
    assert [r["station_id"] for r in scoped.json()["items"]] == [point.point.id]
    for actor in (w.resident, w.member):
        assert (await client.get("/stats/consultations", headers=actor.headers)).status_code == 403
    archive = await client.get(
        f"/deputies/{w.deputies['member'].id}/archive",
        params={"year": 2026},
        headers=w.member.headers,
    )
    body = archive.json()
    assert [(c["title"], c["outcome"]) for c in body["consultation_comments"]] == [
        ("物业管理条例（修订草案）", "adopted"),
        ("物业管理条例（修订草案）", None),
    ]
    assert body["totals"]["consultation_comments"] == 2
