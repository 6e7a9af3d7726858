"""Deputies' suggestions: drafting from a hotspot or cases, the workflow, news to residents,
roles and scope on every endpoint, bad input, races."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from sqlalchemy import func, select

from app.core.config import Settings
from app.core.db import Database
from app.notify.models import Notification
from app.suggestions.models import Suggestion
from tests.factories import Actor, Factory
from tests.hotspots.conftest import STREETLIGHT, World, group, submit_as
from tests.hotspots.conftest import world as world  # noqa: F401  (the cases' fixture)


async def _cases(client: httpx.AsyncClient, factory: Factory, world: World) -> list[dict[str, Any]]:
    out = []
    for n, (title, content) in enumerate(STREETLIGHT):
        out.append(
            await submit_as(
                client,
                factory,
                world,
                title=title,
                content=content,
                latitude=30.2803 + n * 0.0002,
                longitude=120.1321,
            )
        )
    return out


async def _post(
    client: httpx.AsyncClient,
    actor: Actor,
    url: str,
    body: dict[str, Any] | None = None,
    expect: int = 200,
) -> dict[str, Any]:
    response = await client.post(url, json=body or {}, headers=actor.headers)
    assert response.status_code == expect, response.text
    return response.json()  # type: ignore[no-any-return]


async def _group_mate(factory: Factory, world: World) -> Any:
    """A deputy in a deputy group (代表小组) with the world's deputy: one who may co-sign."""
    from app.groups.models import DeputyGroup, DeputyGroupMember

    mate = await factory.deputy(world.d.community_a)
    group = await factory.add(DeputyGroup(name=f"小组{mate.id}", region_id=world.d.community_a.id))
    for deputy_id in (world.deputy.deputy_id, mate.id):
        await factory.add(DeputyGroupMember(group_id=group.id, deputy_id=deputy_id))
    return mate


async def _count(db: Database, model: Any) -> int:
    async with db.transaction(write=False) as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def _assigned(
    client: httpx.AsyncClient, factory: Factory, world: World
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cases = await _cases(client, factory, world)
    draft = await _post(
        client, world.deputy, "/suggestions", {"case_ids": [c["id"] for c in cases]}, 201
    )
    url = f"/suggestions/{draft['id']}"
    await _post(client, world.deputy, f"{url}/submit")
    await _post(client, world.staff, f"{url}/register")
    assigned = await _post(
        client,
        world.staff,
        f"{url}/assign",
        {"lead_unit_id": world.unit.id, "co_unit_ids": [world.unit2.id], "deadline_days": 20},
    )
    return assigned, cases


async def test_from_hotspot_to_evaluation_and_residents_hear_the_answer(
    client: httpx.AsyncClient, factory: Factory, world: World, db: Database, settings: Settings
) -> None:
    cases = await _cases(client, factory, world)
    await group(db, settings)
    hotspot = (await client.get("/hotspots", headers=world.deputy.headers)).json()["items"][0]
    co_signer = await _group_mate(factory, world)

    draft = await _post(
        client,
        world.deputy,
        "/suggestions",
        {"hotspot_id": hotspot["id"], "co_signer_ids": [co_signer.id]},
        201,
    )
    assert draft["status"] == "draft" and draft["number"] is None
    assert draft["hotspot_id"] == hotspot["id"] and draft["case_count"] == 3
    assert draft["title"].startswith("关于") and "建议" in draft["title"]
    content = draft["content"]
    assert (
        "共有3位群众反映3件" in content and "【涉及地点】" in content and "【时间跨度】" in content
    )
    assert "13812345678" not in content and "138****5678" in content and "张三丰" not in content
    assert [c["id"] for c in draft["cases"]] == sorted(c["id"] for c in cases)
    assert draft["co_signers"] == [{"id": co_signer.id, "name": co_signer.name}]
    assert draft["can"] == ["edit", "submit"]
    url = f"/suggestions/{draft['id']}"

    # The deputy edits against the version read.
    stale = await client.patch(
        url, json={"title": "关于翠苑一区路灯的建议", "version": 99}, headers=world.deputy.headers
    )
    assert stale.status_code == 409
    edited = await client.patch(
        url,
        json={"title": "关于翠苑一区路灯长期不亮的建议", "version": draft["version"]},
        headers=world.deputy.headers,
    )
    assert edited.status_code == 200 and edited.json()["title"] == "关于翠苑一区路灯长期不亮的建议"

    submitted = await _post(client, world.deputy, f"{url}/submit")
    assert submitted["status"] == "submitted" and submitted["can"] == []
    registered = await _post(client, world.staff, f"{url}/register", {"note": "已登记"})
    assert re.fullmatch(r"\d{4}-0001", registered["number"])
    assigned = await _post(
        client,
        world.staff,
        f"{url}/assign",
        {"lead_unit_id": world.unit.id, "co_unit_ids": [world.unit2.id], "deadline_days": 20},
    )
    assert assigned["status"] == "assigned" and assigned["lead_unit"]["id"] == world.unit.id
    assert assigned["co_units"] == [{"id": world.unit2.id, "name": world.unit2.name}]
    assert assigned["deadline_at"] is not None
    supervised = await _post(client, world.staff, f"{url}/supervise", {"note": "请加快"})
    assert supervised["supervised_count"] == 1

    # 面商: the lead unit for itself, staff naming a handling unit.
    await _post(
        client,
        world.handler,
        f"{url}/consultations",
        {"held_at": "2026-11-25T02:00:00Z", "place": "联络站", "summary": "商定月底前修复"},
        201,
    )
    after = await _post(
        client,
        world.staff,
        f"{url}/consultations",
        {"held_at": "2026-11-26T02:00:00Z", "summary": "街道配合", "unit_id": world.unit2.id},
        201,
    )
    assert [c["unit"]["id"] for c in after["consultations"]] == [world.unit.id, world.unit2.id]

    replied = await _post(
        client, world.handler, f"{url}/reply", {"reply": "已更换东门线路，路灯全部恢复照明。"}
    )
    assert replied["status"] == "replied" and replied["reply"].startswith("已更换")

    # Every resident whose case it carries is told, and the case's timeline shows it.
    async with db.transaction(write=False) as session:
        sent = (
            (
                await session.execute(
                    select(Notification).where(Notification.event == "case.suggestion_replied")
                )
            )
            .scalars()
            .all()
        )
    case_ids = sorted(c["id"] for c in cases)
    assert sorted(n.params["case_id"] for n in sent) == case_ids
    owner = cases[0]
    for actor_user in [n.recipient_id for n in sent]:
        assert actor_user is not None
    resident_case = await client.get(
        f"/cases/{owner['id']}", headers=await _owner_headers(factory, owner)
    )
    timeline = resident_case.json()["timeline"]
    assert timeline[-1]["action"] == "suggestion_reply"
    assert (
        "已纳入人大代表建议" in timeline[-1]["public_note"]
        and registered["number"] in timeline[-1]["public_note"]
    )

    evaluated = await _post(
        client,
        world.deputy,
        f"{url}/evaluate",
        {"satisfaction": "dissatisfied", "comment": "还有两盏不亮"},
    )
    assert evaluated["status"] == "evaluated" and evaluated["evaluation"] == "dissatisfied"
    again = await _post(client, world.deputy, f"{url}/rehandle", {"reason": "还有两盏不亮"})
    assert (
        again["status"] == "assigned"
        and again["rehandle_count"] == 1
        and again["evaluation"] is None
    )
    await _post(client, world.handler, f"{url}/reply", {"reply": "剩余两盏已修复。"})
    used = await client.post(
        f"{url}/rehandle", json={"reason": "再来一次"}, headers=world.deputy.headers
    )
    assert used.status_code == 409 and used.json()["code"] == "rehandle_used"
    final = await _post(client, world.deputy, f"{url}/evaluate", {"satisfaction": "satisfied"})
    assert final["status"] == "evaluated"
    # The residents heard the second answer too (one message per round).
    async with db.transaction(write=False) as session:
        n = (
            await session.execute(
                select(func.count())
                .select_from(Notification)
                .where(Notification.event == "case.suggestion_replied")
            )
        ).scalar_one()
    assert n == 6
    # The co-signer reads it; the list shows it to the deputy and the units.
    assert (
        await client.get(url, headers=(await factory.deputy_actor(co_signer)).headers)
    ).status_code == 200
    mine = (await client.get("/suggestions", headers=world.deputy.headers)).json()
    assert [s["id"] for s in mine["items"]] == [draft["id"]]
    for actor in (world.handler, world.handler2, world.staff):
        listing = (await client.get("/suggestions", headers=actor.headers)).json()
        assert [s["id"] for s in listing["items"]] == [draft["id"]]


async def _owner_headers(factory: Factory, case: dict[str, Any]) -> dict[str, str]:
    from app.identity.models import User

    async with factory.db.transaction(write=False) as session:
        from app.cases.models import Case

        row = await session.get(Case, case["id"])
        assert row is not None and row.owner_id is not None
        user = await session.get(User, row.owner_id)
        assert user is not None
    return {"Authorization": f"Bearer {factory.token_for(user)}"}


async def test_roles_and_scope_on_every_endpoint(
    client: httpx.AsyncClient, factory: Factory, world: World, db: Database
) -> None:
    cases = await _cases(client, factory, world)
    ids = [c["id"] for c in cases]
    # Only deputies draft.
    for actor in (world.resident, world.staff, world.handler, world.admin):
        r = await client.post("/suggestions", json={"case_ids": ids}, headers=actor.headers)
        assert r.status_code == 403
    assert (await client.post("/suggestions", json={"case_ids": ids})).status_code == 401
    # A deputy elsewhere may not draft from these cases.
    elsewhere = await factory.deputy_actor(await factory.deputy(world.d.community_b))
    r = await client.post("/suggestions", json={"case_ids": ids}, headers=elsewhere.headers)
    assert r.status_code == 403

    draft = await _post(client, world.deputy, "/suggestions", {"case_ids": ids}, 201)
    url = f"/suggestions/{draft['id']}"
    # A draft is the deputy's own: nobody else reads or moves it.
    for actor in (elsewhere, world.staff, world.handler, world.resident):
        assert (await client.get(url, headers=actor.headers)).status_code in (403, 404)
        r = await client.post(f"{url}/submit", headers=actor.headers)
        assert r.status_code in (403, 404)
        r = await client.patch(
            url, json={"title": "别人的修改标题", "version": 1}, headers=actor.headers
        )
        assert r.status_code in (403, 404)
    assert (await client.get("/suggestions", headers=world.resident.headers)).status_code == 403
    assert (await client.get("/suggestions", headers=world.staff.headers)).json()["total"] == 0

    await _post(client, world.deputy, f"{url}/submit")
    # Staff of the other street do not see it; the deputy may not register it.
    assert (await client.get(url, headers=world.staff_b.headers)).status_code == 404
    assert (await client.post(f"{url}/register", headers=world.staff_b.headers)).status_code == 404
    assert (await client.post(f"{url}/register", headers=world.deputy.headers)).status_code == 403
    await _post(client, world.staff_a, f"{url}/register")
    assert (
        await client.post(
            f"{url}/assign", json={"lead_unit_id": world.unit.id}, headers=world.deputy.headers
        )
    ).status_code == 403
    await _post(client, world.staff, f"{url}/assign", {"lead_unit_id": world.unit.id})
    # A unit not handling it sees nothing; the staff and the deputy may not reply for it.
    assert (await client.get(url, headers=world.handler3.headers)).status_code == 404
    r = await client.post(
        f"{url}/reply", json={"reply": "不是我们的答复"}, headers=world.handler3.headers
    )
    assert r.status_code == 404
    for actor in (world.staff, world.deputy):
        r = await client.post(
            f"{url}/reply", json={"reply": "越权的答复内容"}, headers=actor.headers
        )
        assert r.status_code == 403
    r = await client.post(
        f"{url}/consultations",
        json={"held_at": "2026-11-25T02:00:00Z", "summary": "x" * 5},
        headers=world.deputy.headers,
    )
    assert r.status_code == 403
    await _post(client, world.handler, f"{url}/reply", {"reply": "已修复路灯。"})
    # Only the author evaluates and asks again; the unit cannot.
    co = await factory.deputy_actor(await factory.deputy(world.d.community_a))
    for actor in (world.handler, world.staff):
        r = await client.post(
            f"{url}/evaluate", json={"satisfaction": "satisfied"}, headers=actor.headers
        )
        assert r.status_code == 403
    assert (
        await client.post(f"{url}/evaluate", json={"satisfaction": "satisfied"}, headers=co.headers)
    ).status_code == 404
    # Out of order: 409.
    r = await client.post(f"{url}/submit", headers=world.deputy.headers)
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"


async def test_bad_input_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, factory: Factory, world: World, db: Database
) -> None:
    cases = await _cases(client, factory, world)
    ids = [c["id"] for c in cases]
    for body, status in (
        ({}, 422),
        ({"case_ids": ids, "hotspot_id": 1}, 422),
        ({"case_ids": []}, 422),
        ({"case_ids": [999999]}, 422),
        ({"case_ids": ids, "co_signer_ids": [world.deputy.deputy_id]}, 422),
        ({"case_ids": ids, "co_signer_ids": [999999]}, 422),
        # A deputy outside the author's groups may not co-sign.
        ({"case_ids": ids, "co_signer_ids": [(await factory.deputy(world.d.community_a)).id]}, 422),
        ({"hotspot_id": 999999}, 404),
        ({"case_ids": ids, "title": "x"}, 422),
    ):
        r = await client.post("/suggestions", json=body, headers=world.deputy.headers)
        assert r.status_code == status, (body, r.text)
    assert await _count(db, Suggestion) == 0

    assigned, _ = await _assigned(client, factory, world)
    url = f"/suggestions/{assigned['id']}"
    before = (await client.get(url, headers=world.staff.headers)).json()
    for path, actor, body in (
        ("reply", world.handler, {"reply": "短"}),
        ("reply", world.handler, {}),
        ("consultations", world.handler, {"held_at": "not a time", "summary": "面商纪要"}),
        ("consultations", world.staff, {"held_at": "2026-11-25T02:00:00Z", "summary": "面商纪要"}),
        (
            "consultations",
            world.staff,
            {"held_at": "2026-11-25T02:00:00Z", "summary": "面商纪要", "unit_id": world.unit3.id},
        ),
        ("supervise", world.staff, {"note": "x" * 1001}),
    ):
        r = await client.post(f"{url}/{path}", json=body, headers=actor.headers)
        assert r.status_code == 422, (path, body, r.text)
    after = (await client.get(url, headers=world.staff.headers)).json()
    assert after == before

    # Assignment: the lead unit cannot also co-handle; units must exist.
    other = await _post(client, world.deputy, "/suggestions", {"case_ids": ids[:1]}, 201)
    o_url = f"/suggestions/{other['id']}"
    await _post(client, world.deputy, f"{o_url}/submit")
    await _post(client, world.staff, f"{o_url}/register")
    for body in (
        {"lead_unit_id": world.unit.id, "co_unit_ids": [world.unit.id]},
        {"lead_unit_id": 999999},
        {"lead_unit_id": world.unit.id, "deadline_days": 0},
        {"lead_unit_id": world.unit.id, "deadline_days": 400},
    ):
        r = await client.post(f"{o_url}/assign", json=body, headers=world.staff.headers)
        assert r.status_code == 422, (body, r.text)
    assert (await client.get(o_url, headers=world.staff.headers)).json()["status"] == "registered"


async def test_numbers_are_unique_under_concurrent_registration_and_one_assign_wins(
    client: httpx.AsyncClient, factory: Factory, world: World, db: Database
) -> None:
    cases = await _cases(client, factory, world)
    urls = []
    for case in cases:
        draft = await _post(client, world.deputy, "/suggestions", {"case_ids": [case["id"]]}, 201)
        await _post(client, world.deputy, f"/suggestions/{draft['id']}/submit")
        urls.append(f"/suggestions/{draft['id']}")
    staff2 = await factory.staff(world.d.district)
    results = await asyncio.gather(
        *[
            client.post(f"{u}/register", headers=(world.staff if i % 2 else staff2).headers)
            for i, u in enumerate(urls)
        ]
    )
    assert [r.status_code for r in results] == [200, 200, 200]
    numbers = sorted(r.json()["number"] for r in results)
    assert [n[-4:] for n in numbers] == ["0001", "0002", "0003"]

    racing = await asyncio.gather(
        client.post(
            f"{urls[0]}/assign", json={"lead_unit_id": world.unit.id}, headers=world.staff.headers
        ),
        client.post(
            f"{urls[0]}/assign", json={"lead_unit_id": world.unit3.id}, headers=staff2.headers
        ),
    )
    assert sorted(r.status_code for r in racing) == [200, 409]
    winner = next(r for r in racing if r.status_code == 200).json()
    final = (await client.get(urls[0], headers=world.staff.headers)).json()
    assert final["lead_unit"] == winner["lead_unit"] and final["version"] == winner["version"]


async def test_suggestions_enter_the_duty_archive(
    client: httpx.AsyncClient, factory: Factory, world: World
) -> None:
    from app.core.clock import local_now

    cases = await _cases(client, factory, world)
    co_deputy = await _group_mate(factory, world)
    draft = await _post(
        client,
        world.deputy,
        "/suggestions",
        {"case_ids": [cases[0]["id"]], "co_signer_ids": [co_deputy.id]},
        201,
    )
    year = local_now().year
    path = f"/deputies/{world.deputy.deputy_id}/archive"
    before = (await client.get(path, params={"year": year}, headers=world.staff.headers)).json()
    assert before["suggestions"] == [] and before["totals"]["suggestions_led"] == 0  # a draft
    await _post(client, world.deputy, f"/suggestions/{draft['id']}/submit")
    lead = (await client.get(path, params={"year": year}, headers=world.staff.headers)).json()
    assert [(s["id"], s["role"]) for s in lead["suggestions"]] == [(draft["id"], "lead")]
    assert lead["totals"]["suggestions_led"] == 1
    lines = {line["kind"]: line for line in lead["score"]["breakdown"]}
    assert lines["suggestion_led"]["points"] == lines["suggestion_led"]["weight"]
    co_path = f"/deputies/{co_deputy.id}/archive"
    co = (await client.get(co_path, params={"year": year}, headers=world.staff.headers)).json()
    assert co["totals"]["suggestions_cosigned"] == 1 and co["suggestions"][0]["role"] == "co_signer"
    stats = await client.get(
        "/stats/deputies",
        params={"from": f"{year}-01-01", "to": f"{year}-12-31"},
        headers=world.staff.headers,
    )
    assert stats.status_code == 200, stats.text
    rows = {row["deputy_id"]: row for row in stats.json()["items"]}
    assert rows[world.deputy.deputy_id]["suggestions_led"] == 1
    assert rows[co_deputy.id]["suggestions_cosigned"] == 1
