"""The whole wish loop over HTTP: post, review, claim, fulfil, confirm; timeline and news."""

from __future__ import annotations

import httpx

from app.core.db import Database
from app.wechat.fake_server import FakeWeChat
from tests.attachments.images import upload_id
from tests.wishes.conftest import World, events_of, notifications_for, wish_row

WISH = {
    "title": "想要一个新书包",
    "content": "孩子的书包背了三年已经破了，开学前想换一个新的。",
    "beneficiary": {
        "name": "王小明",
        "phone": "13812345678",
        "address": "幸福路12号3栋201",
        "description": "8岁，父母在外务工，和奶奶一起生活",
    },
}


async def test_a_wish_goes_from_posting_to_thanks(
    client: httpx.AsyncClient, world: World, db: Database, fake_wechat: FakeWeChat
) -> None:
    photo = await upload_id(client, world.resident)
    created = await client.post(
        "/wishes",
        headers=world.resident.headers,
        json={**WISH, "station_id": world.station.id, "attachment_ids": [photo]},
    )
    assert created.status_code == 201, created.text
    wish = created.json()
    wish_id = wish["id"]
    assert wish["status"] == "pending_review" and wish["status_text"] == "待审核"
    assert wish["region_id"] == world.district.community_a.id
    assert wish["station_name"] == "甲社区代表联络站"
    assert wish["beneficiary"] == {**WISH["beneficiary"], "masked": False}
    assert [p["id"] for p in wish["photos"]] == [photo]
    assert wish["actions"] == ["withdraw"]
    # The content check ran once, as a forum post (scene 3) for this resident.
    checks = fake_wechat.received("msg_sec_check")
    assert len(checks) == 1
    assert checks[0].body["scene"] == 3 and checks[0].body["openid"] == world.resident.user.openid
    assert WISH["content"] in checks[0].body["content"]

    # Not on the wall yet, and invisible to others.
    wall = await client.get("/wishes")
    assert wall.json() == {"items": [], "total": 0, "total_capped": False}
    assert (await client.get(f"/wishes/{wish_id}")).status_code == 404
    peek = await client.get(f"/wishes/{wish_id}", headers=world.deputy.headers)
    assert peek.status_code == 404

    approved = await client.post(
        f"/wishes/{wish_id}/review", headers=world.staff_a.headers, json={"approve": True}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "published"
    assert approved.json()["content_check"] == "passed"

    wall = (await client.get("/wishes")).json()
    assert wall["total"] == 1
    public = wall["items"][0]
    assert public["beneficiary"] == {
        "name": "王**",
        "phone": "138****5678",
        "address": "幸福路12号****",
        "description": None,
        "masked": True,
    }
    assert public["content_check"] is None and public["photos"][0]["id"] == photo

    claimed = await client.post(f"/wishes/{wish_id}/claim", headers=world.deputy.headers)
    assert claimed.status_code == 200, claimed.text
    body = claimed.json()
    assert body["status"] == "claimed"
    assert body["claimed_by"] == {"deputy_id": world.deputy.deputy_id, "name": "李代表"}
    assert body["beneficiary"]["phone"] == "13812345678" and not body["beneficiary"]["masked"]
    assert set(body["actions"]) == {"release", "fulfil"}

    proof = await upload_id(client, world.deputy)
    fulfilled = await client.post(
        f"/wishes/{wish_id}/fulfil",
        headers=world.deputy.headers,
        json={"note": "已于周六将新书包送到孩子家中。", "attachment_ids": [proof]},
    )
    assert fulfilled.status_code == 200, fulfilled.text
    assert fulfilled.json()["status"] == "fulfilled"
    assert [p["id"] for p in fulfilled.json()["fulfilment_photos"]] == [proof]

    own = await client.get(f"/wishes/{wish_id}", headers=world.resident.headers)
    assert own.json()["actions"] == ["confirm"]
    confirmed = await client.post(
        f"/wishes/{wish_id}/confirm",
        headers=world.resident.headers,
        json={"thanks": "谢谢李代表，孩子很喜欢！", "rating": 5},
    )
    assert confirmed.status_code == 200, confirmed.text
    done = confirmed.json()
    assert done["status"] == "completed" and done["rating"] == 5
    assert done["thanks"] == "谢谢李代表，孩子很喜欢！" and done["completed_at"] is not None

    timeline = done["timeline"]
    assert [(e["action"], e["from_status"], e["to_status"]) for e in timeline] == [
        ("submit", None, "pending_review"),
        ("approve", "pending_review", "published"),
        ("claim", "published", "claimed"),
        ("fulfil", "claimed", "fulfilled"),
        ("confirm", "fulfilled", "completed"),
    ]
    assert [(e["actor_id"], e["actor_role"]) for e in timeline] == [
        (world.resident.id, "resident"),
        (world.staff_a.id, "staff"),
        (world.deputy.id, "deputy"),
        (world.deputy.id, "deputy"),
        (world.resident.id, "resident"),
    ]
    assert timeline[3]["note"] == "已于周六将新书包送到孩子家中。"
    assert len(await events_of(db, wish_id)) == 5

    to_resident = await notifications_for(db, world.resident.id)
    assert [n.event for n in to_resident] == ["wish.published", "wish.claimed", "wish.fulfilled"]
    assert to_resident[1].params["deputy_name"] == "李代表"
    assert to_resident[0].params["title"] == "想要一个新书包"
    assert to_resident[0].page == f"pages/wish/detail?id={wish_id}"
    to_deputy = await notifications_for(db, world.deputy.id)
    assert [n.event for n in to_deputy] == ["wish.completed"]
    assert to_deputy[0].params["rating"] == 5

    row = await wish_row(db, wish_id)
    assert row.version == 5 and row.reviewed_by_id == world.staff_a.id
