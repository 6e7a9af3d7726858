"""The units' yearly assessment: figures from real handling, scope, XLSX, publishing."""

from __future__ import annotations

import asyncio
import io

import httpx
from openpyxl import load_workbook

from app.core.clock import local_now
from app.core.db import Database
from tests.cases.conftest import act, fed_back_case
from tests.factories import Factory
from tests.hotspots.conftest import World
from tests.hotspots.conftest import world as world  # noqa: F401  (the cases' fixture)
from tests.suggestions.test_suggestions import _assigned, _post


async def _handle(client: httpx.AsyncClient, factory: Factory, world: World) -> None:
    # The lead unit replies to two cases on time; one is rated satisfied, one reopened.
    first = await fed_back_case(client, world)
    await act(client, world.resident, first["id"], "rate", {"satisfaction": "satisfied"})
    second = await fed_back_case(client, world)
    await act(client, world.resident, second["id"], "reopen", {"reason": "还是不亮"})
    # Unit 3 sends one back.
    other = await act(
        client,
        world.staff,
        (await _fresh(client, world))["id"],
        "assign",
        {"unit_id": world.unit3.id},
    )
    await act(client, world.handler3, other["id"], "send-back", {"reason": "不属于本单位职责"})
    # A suggestion the lead unit answers; the deputy is basically satisfied.
    assigned, _ = await _assigned(client, factory, world)
    url = f"/suggestions/{assigned['id']}"
    await _post(client, world.handler, f"{url}/reply", {"reply": "已完成线路改造。"})
    await _post(client, world.deputy, f"{url}/evaluate", {"satisfaction": "basically_satisfied"})


async def _fresh(client: httpx.AsyncClient, world: World) -> dict:  # type: ignore[type-arg]
    from tests.cases.conftest import submit

    return await submit(client, world.resident2, world)


async def test_assessment_figures_ranking_and_export(
    client: httpx.AsyncClient, factory: Factory, world: World, db: Database
) -> None:
    await _handle(client, factory, world)
    response = await client.get("/stats/units", headers=world.staff.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["year"] == local_now().year and body["published"] is False
    by_unit = {row["unit"]["id"]: row for row in body["units"]}
    lead = by_unit[world.unit.id]
    assert lead["cases_handled"] == 2 and lead["cases_on_time"] == 2
    assert lead["residents_rated"] == 1 and lead["resident_satisfaction_rate"] == 1.0
    assert lead["reopened"] == 1 and lead["sent_back"] == 0
    assert lead["suggestions_handled"] == 1 and lead["suggestions_on_time"] == 1
    assert lead["deputies_evaluated"] == 1 and lead["deputy_satisfaction_rate"] == 1.0
    assert lead["case_first_reply_hours"] is not None and lead["case_first_reply_hours"] >= 0
    sender = by_unit[world.unit3.id]
    assert sender["sent_back"] == 1 and sender["cases_on_time"] == 0
    assert [row["rank"] for row in body["units"]] == list(range(1, len(body["units"]) + 1))
    assert body["units"][0]["unit"]["id"] == world.unit.id
    assert body["units"][0]["score"] > sender["score"]

    # Staff of the other street count nothing of street A.
    other = (await client.get("/stats/units", headers=world.staff_b.headers)).json()
    assert other["units"] == []

    exported = await client.get(
        "/stats/units", params={"format": "xlsx"}, headers=world.staff.headers
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(exported.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[1][:3] == ("排名", "承办单位", "得分")
    assert rows[2][1] == "区城市管理局"


async def test_roles_bad_input_and_publishing_once(
    client: httpx.AsyncClient, factory: Factory, world: World
) -> None:
    for actor in (world.deputy, world.handler, world.resident):
        assert (await client.get("/stats/units", headers=actor.headers)).status_code == 403
        assert (
            await client.post("/stats/units/2026/publish", headers=actor.headers)
        ).status_code == 403
    assert (await client.get("/stats/units")).status_code == 401
    for params in ({"year": 1999}, {"format": "pdf"}, {"year": "x"}):
        assert (
            await client.get("/stats/units", params=params, headers=world.staff.headers)
        ).status_code == 422
    assert (
        await client.post("/stats/units/3000/publish", headers=world.staff.headers)
    ).status_code == 422
    # Street staff may read but not publish the district's assessment.
    assert (
        await client.post("/stats/units/2026/publish", headers=world.staff_a.headers)
    ).status_code == 403
    assert (
        await client.get("/stats/units", params={"year": 2026}, headers=world.staff.headers)
    ).json()["published"] is False

    other = await factory.staff(world.d.district)
    results = await asyncio.gather(
        client.post("/stats/units/2026/publish", headers=world.staff.headers),
        client.post("/stats/units/2026/publish", headers=other.headers),
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    done = next(r for r in results if r.status_code == 200).json()
    assert done["published"] is True and done["published_at"]
    again = await client.post("/stats/units/2026/publish", headers=world.admin.headers)
    assert again.status_code == 409 and again.json()["code"] == "already_published"
    assert (
        await client.get("/stats/units", params={"year": 2026}, headers=world.staff_a.headers)
    ).json()["published"] is True
