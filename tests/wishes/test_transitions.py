"""Every step from every status, by the right and the wrong people; refused ones change nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.core.db import Database
from app.wishes.models import WishStatus
from tests.attachments.images import upload_id
from tests.factories import Actor, Factory
from tests.wishes.conftest import World, events_of, make_wish, notifications_for, wish_row

S = WishStatus
TAKEN = {S.claimed, S.fulfilled, S.completed}

# action: (path, body, who, sources, target)
STEPS: dict[str, tuple[str, dict[str, Any] | None, str, set[WishStatus], WishStatus]] = {
    "approve": ("review", {"approve": True}, "staff", {S.pending_review}, S.published),
    "reject": (
        "review",
        {"approve": False, "reason": "请写明具体物品"},
        "staff",
        {S.pending_review},
        S.rejected,
    ),
    "claim": ("claim", None, "deputy", {S.published}, S.claimed),
    "release": ("release", {"reason": "临时出差"}, "claimer", {S.claimed}, S.published),
    "fulfil": ("fulfil", {"note": "已送达"}, "claimer", {S.claimed}, S.fulfilled),
    "confirm": ("confirm", {"thanks": "谢谢", "rating": 4}, "owner", {S.fulfilled}, S.completed),
    "withdraw": ("withdraw", {}, "owner", {S.pending_review, S.published}, S.withdrawn),
}


def expected(action: str, status: WishStatus) -> tuple[int, str | None]:
    """The answer the table in app/wishes/flows.py promises, spelled out by hand."""
    _, _, who, sources, _ = STEPS[action]
    if status in sources:
        return 200, None
    if who == "deputy":  # a deputy who does not hold the claim
        if status in (S.pending_review, S.rejected, S.withdrawn):
            return 404, "not_found"  # never on the wall
        if status in TAKEN:
            return 409, "wish_already_claimed"
        return 409, "invalid_transition"
    if who == "claimer" and status not in TAKEN:
        # Nobody holds a claim: the deputy is a mere deputy here.
        return (403, "forbidden") if status == S.published else (404, "not_found")
    return 409, "invalid_transition"


def actor_for(world: World, who: str) -> Actor:
    return {
        "staff": world.staff_a,
        "deputy": world.other_deputy,
        "claimer": world.deputy,
        "owner": world.resident,
    }[who]


@pytest.mark.parametrize("status", list(WishStatus))
@pytest.mark.parametrize("action", list(STEPS))
async def test_every_step_from_every_status(
    client: httpx.AsyncClient,
    world: World,
    factory: Factory,
    db: Database,
    action: str,
    status: WishStatus,
) -> None:
    path, body, who, _, target = STEPS[action]
    claimer = world.deputy if status in TAKEN else None
    wish = await make_wish(factory, world.resident, world.station, status=status, claimer=claimer)
    assert wish.id is not None
    actor = actor_for(world, who)
    response = await client.post(f"/wishes/{wish.id}/{path}", headers=actor.headers, json=body)
    want_status, want_code = expected(action, status)
    assert response.status_code == want_status, response.text
    row = await wish_row(db, wish.id)
    events = await events_of(db, wish.id)
    if want_status == 200:
        assert response.json()["status"] == target.value
        assert row.status == target and row.version == wish.version + 1
        assert [(e.action, e.from_status, e.to_status, e.actor_id) for e in events] == [
            (action, status.value, target.value, actor.id)
        ]
    else:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == want_code
        assert row.status == status and row.version == wish.version
        assert events == []


async def wish_in(factory: Factory, world: World, status: WishStatus) -> int:
    claimer = world.deputy if status in TAKEN else None
    wish = await make_wish(factory, world.resident, world.station, status=status, claimer=claimer)
    assert wish.id is not None
    return wish.id


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("resident", S.pending_review, 403),  # the owner cannot review their own
        ("other_resident", S.pending_review, 404),
        ("deputy", S.pending_review, 404),
        ("deputy_published", S.published, 403),
        ("unit", S.pending_review, 404),
        ("staff_b", S.pending_review, 404),  # out of scope: cannot even see it
        ("staff_b_published", S.published, 403),  # sees the public wish, may not review it
        ("anonymous", S.pending_review, 401),
    ],
)
async def test_review_is_for_staff_in_scope(
    client: httpx.AsyncClient,
    world: World,
    factory: Factory,
    db: Database,
    who: str,
    status: WishStatus,
    code: int,
) -> None:
    wish_id = await wish_in(factory, world, status)
    headers = {
        "resident": world.resident.headers,
        "other_resident": world.other_resident.headers,
        "deputy": world.deputy.headers,
        "deputy_published": world.deputy.headers,
        "unit": world.unit.headers,
        "staff_b": world.staff_b.headers,
        "staff_b_published": world.staff_b.headers,
        "anonymous": {},
    }[who]
    response = await client.post(
        f"/wishes/{wish_id}/review", headers=headers, json={"approve": True}
    )
    assert response.status_code == code, response.text
    assert (await wish_row(db, wish_id)).status == status


async def test_admin_and_district_staff_review_anywhere(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    for actor in (world.admin, world.staff):
        wish_id = await wish_in(factory, world, S.pending_review)
        response = await client.post(
            f"/wishes/{wish_id}/review", headers=actor.headers, json={"approve": True}
        )
        assert response.status_code == 200 and response.json()["status"] == "published"


async def test_rejection_needs_a_reason_the_resident_sees(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database
) -> None:
    wish_id = await wish_in(factory, world, S.pending_review)
    for body in ({"approve": False}, {"approve": False, "reason": "   "}, {}, {"approve": "maybe"}):
        response = await client.post(
            f"/wishes/{wish_id}/review", headers=world.staff.headers, json=body
        )
        assert response.status_code == 422 and response.json()["code"] == "validation_error"
    assert (await wish_row(db, wish_id)).status == S.pending_review
    assert await notifications_for(db, world.resident.id) == []

    rejected = await client.post(
        f"/wishes/{wish_id}/review",
        headers=world.staff.headers,
        json={"approve": False, "reason": "心愿涉及现金资助，请改为具体物品"},
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    seen = (await client.get(f"/wishes/{wish_id}", headers=world.resident.headers)).json()
    assert seen["reject_reason"] == "心愿涉及现金资助，请改为具体物品"
    assert seen["timeline"][-1]["note"] == "心愿涉及现金资助，请改为具体物品"
    assert seen["actions"] == []
    (news,) = await notifications_for(db, world.resident.id)
    assert (
        news.event == "wish.rejected"
        and news.params["reason"] == "心愿涉及现金资助，请改为具体物品"
    )
    assert news.dedupe_key == f"wish:{wish_id}:wish.rejected:2"


@pytest.mark.parametrize("who", ["resident", "staff", "unit", "anonymous", "unbound_deputy"])
async def test_only_bound_deputies_claim(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database, who: str
) -> None:
    wish_id = await wish_in(factory, world, S.published)
    if who == "unbound_deputy":
        from app.core.security import Role

        headers = (await factory.actor(Role.deputy)).headers
    else:
        headers = {
            "resident": world.resident.headers,
            "staff": world.staff.headers,
            "unit": world.unit.headers,
            "anonymous": {},
        }[who]
    response = await client.post(f"/wishes/{wish_id}/claim", headers=headers)
    assert response.status_code == (401 if who == "anonymous" else 403)
    assert (await wish_row(db, wish_id)).status == S.published


@pytest.mark.parametrize("path", ["release", "fulfil"])
@pytest.mark.parametrize("who", ["other_deputy", "resident", "staff", "admin"])
async def test_only_the_claiming_deputy_releases_or_fulfils(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database, path: str, who: str
) -> None:
    wish_id = await wish_in(factory, world, S.claimed)
    actor = {
        "other_deputy": world.other_deputy,
        "resident": world.resident,
        "staff": world.staff,
        "admin": world.admin,
    }[who]
    body = {"reason": "不想做了"} if path == "release" else {"note": "做完了"}
    response = await client.post(f"/wishes/{wish_id}/{path}", headers=actor.headers, json=body)
    # Another deputy cannot see a claimed wish at all; owner and staff see it but may not act.
    assert response.status_code == (404 if who == "other_deputy" else 403), response.text
    row = await wish_row(db, wish_id)
    assert row.status == S.claimed and row.claimed_by_deputy_id == world.deputy.deputy_id


@pytest.mark.parametrize(("path", "status"), [("confirm", S.fulfilled), ("withdraw", S.published)])
@pytest.mark.parametrize("who", ["other_resident", "claimer", "staff", "admin"])
async def test_only_the_owner_confirms_or_withdraws(
    client: httpx.AsyncClient,
    world: World,
    factory: Factory,
    db: Database,
    path: str,
    status: WishStatus,
    who: str,
) -> None:
    wish_id = await wish_in(factory, world, status)
    actor = {
        "other_resident": world.other_resident,
        "claimer": world.deputy,
        "staff": world.staff,
        "admin": world.admin,
    }[who]
    response = await client.post(f"/wishes/{wish_id}/{path}", headers=actor.headers, json={})
    hidden = who == "other_resident" and status != S.published
    assert response.status_code == (404 if hidden else 403), response.text
    assert (await wish_row(db, wish_id)).status == status


async def test_release_puts_it_back_on_the_wall_and_another_deputy_may_claim(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database
) -> None:
    wish_id = await wish_in(factory, world, S.claimed)
    no_reason = await client.post(
        f"/wishes/{wish_id}/release", headers=world.deputy.headers, json={}
    )
    assert no_reason.status_code == 422
    assert (await wish_row(db, wish_id)).status == S.claimed

    released = await client.post(
        f"/wishes/{wish_id}/release", headers=world.deputy.headers, json={"reason": "临时出差"}
    )
    assert released.status_code == 200 and released.json()["status"] == "published"
    wall = (await client.get("/wishes")).json()
    assert [w["id"] for w in wall["items"]] == [wish_id]
    news = await notifications_for(db, world.resident.id)
    assert [n.event for n in news] == ["wish.released"]

    again = await client.post(f"/wishes/{wish_id}/claim", headers=world.other_deputy.headers)
    assert again.status_code == 200
    assert again.json()["claimed_by"]["deputy_id"] == world.other_deputy.deputy_id
    timeline = again.json()["timeline"]
    assert [e["action"] for e in timeline] == ["release", "claim"]
    assert timeline[0]["note"] == "临时出差"
    claimed_news = [
        n for n in await notifications_for(db, world.resident.id) if n.event == "wish.claimed"
    ]
    assert len(claimed_news) == 1 and claimed_news[0].params["deputy_name"] == "张代表"


async def test_fulfil_needs_a_note_and_own_unused_photos(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database
) -> None:
    wish_id = await wish_in(factory, world, S.claimed)
    not_mine = await upload_id(client, world.resident)
    for body in (
        {},
        {"note": ""},
        {"note": "已送达", "attachment_ids": [not_mine]},
        {"note": "已送达", "attachment_ids": [987654]},
    ):
        response = await client.post(
            f"/wishes/{wish_id}/fulfil", headers=world.deputy.headers, json=body
        )
        assert response.status_code == 422, body
    row = await wish_row(db, wish_id)
    assert row.status == S.claimed and row.fulfil_note is None
    assert await events_of(db, wish_id) == []

    proof = await upload_id(client, world.deputy)
    done = await client.post(
        f"/wishes/{wish_id}/fulfil",
        headers=world.deputy.headers,
        json={"note": "已送达", "attachment_ids": [proof]},
    )
    assert done.status_code == 200
    assert done.json()["fulfil_note"] == "已送达"
    assert done.json()["fulfilment_photos"][0]["url"] == f"/api/v1/attachments/{proof}"
    (news,) = await notifications_for(db, world.resident.id)
    assert news.event == "wish.fulfilled" and news.params["note"] == "已送达"


async def test_confirm_rating_is_one_to_five_and_optional(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database
) -> None:
    wish_id = await wish_in(factory, world, S.fulfilled)
    for rating in (0, 6, "good"):
        response = await client.post(
            f"/wishes/{wish_id}/confirm", headers=world.resident.headers, json={"rating": rating}
        )
        assert response.status_code == 422
    assert (await wish_row(db, wish_id)).status == S.fulfilled
    done = await client.post(f"/wishes/{wish_id}/confirm", headers=world.resident.headers)
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert done.json()["rating"] is None and done.json()["thanks"] is None
    (news,) = await notifications_for(db, world.deputy.id)
    assert news.event == "wish.completed" and news.params["rating"] is None


async def test_withdraw_while_pending_with_a_reason(
    client: httpx.AsyncClient, world: World, factory: Factory, db: Database
) -> None:
    wish_id = await wish_in(factory, world, S.pending_review)
    response = await client.post(
        f"/wishes/{wish_id}/withdraw", headers=world.resident.headers, json={"reason": "已自行解决"}
    )
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    assert response.json()["timeline"][-1]["note"] == "已自行解决"
    assert response.json()["actions"] == []
