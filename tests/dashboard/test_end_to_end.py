"""The dashboard over data made through the other domains' HTTP endpoints: a duty slot,
a check-in and a reception, cases taken through the loop, a wish claimed and fulfilled.
The overview, the deputy statistics and the archive must count exactly that."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from app.cases.models import CaseCategory
from app.cases.seed import seed_case_categories
from app.core.clock import clock
from app.core.config import Settings
from app.core.db import Database
from app.presence.scene import printed_scene
from tests.dashboard.helpers import sh
from tests.factories import Actor, Factory


async def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_figures_follow_what_the_flows_recorded(
    client: httpx.AsyncClient, factory: Factory, db: Database, settings: Settings
) -> None:
    clock.freeze(sh(2026, 6, 10, 9, 5))
    d = await factory.district()
    station = await factory.station(d.community_a)
    deputy_row = await factory.deputy(d.street_a, station, name="李代表")
    deputy: Actor = await factory.deputy_actor(deputy_row)
    staff = await factory.staff(d.district)
    unit = await factory.unit("区城市管理局", d.district)
    handler = await factory.unit_handler(unit)
    resident = await factory.resident(phone="13800001111")
    async with db.transaction() as session:
        await seed_case_categories(session)
        category = (await session.execute(select(CaseCategory).limit(1))).scalars().one()

    # Presence: a roster slot, a check-in for it, a reception, the check-out 24 minutes later.
    await _ok(
        await client.put(
            f"/stations/{station.id}/duty-roster",
            json={
                "from": "2026-06-10",
                "to": "2026-06-10",
                "slots": [
                    {
                        "date": "2026-06-10",
                        "start_time": "09:00",
                        "end_time": "12:00",
                        "deputy_ids": [deputy_row.id],
                    }
                ],
            },
            headers=staff.headers,
        )
    )
    assert station.id is not None
    checkin = await _ok(
        await client.post(
            "/checkins",
            json={
                "scene": printed_scene(settings, station.id, station.qr_version),
                "latitude": 31.2304,
                "longitude": 121.4737,
                "accuracy": 10,
            },
            headers=deputy.headers,
        ),
        201,
    )
    await _ok(
        await client.post(
            "/receptions",
            json={"topic": "路灯不亮", "content": "居民反映东门路灯坏了"},
            headers=deputy.headers,
        ),
        201,
    )
    clock.advance(timedelta(minutes=24))
    await _ok(await client.post(f"/checkins/{checkin['id']}/checkout", headers=deputy.headers))

    # Cases: one resolved and satisfied, one answered and not satisfied, one waiting.
    body = {
        "content": "小区东门路灯坏了一个多月，晚上出行不便。",
        "category_id": category.id,
        "station_id": station.id,
    }
    ids = []
    for title in ("东门路灯不亮", "垃圾清运不及时", "人行道破损"):
        # the first is written to the deputy, who may then follow it
        extra = {"deputy_id": deputy_row.id} if not ids else {}
        ids.append(
            (
                await _ok(
                    await client.post(
                        "/cases", json={**body, **extra, "title": title}, headers=resident.headers
                    ),
                    201,
                )
            )["id"]
        )
    for case_id, satisfaction in ((ids[0], "satisfied"), (ids[1], "dissatisfied")):
        await _ok(
            await client.post(
                f"/cases/{case_id}/assign", json={"unit_id": unit.id}, headers=staff.headers
            )
        )
        await _ok(
            await client.post(
                f"/cases/{case_id}/reply",
                json={"public_answer": "已处理完毕"},
                headers=handler.headers,
            )
        )
        await _ok(
            await client.post(
                f"/cases/{case_id}/rate",
                json={"satisfaction": satisfaction},
                headers=resident.headers,
            )
        )
    await _ok(await client.post(f"/cases/{ids[0]}/follow", headers=deputy.headers))

    # A wish: posted, approved, claimed and fulfilled.
    wish = await _ok(
        await client.post(
            "/wishes",
            json={
                "title": "想要一个新书包",
                "content": "孩子的书包背了三年已经破了。",
                "beneficiary": {"name": "王小明", "phone": "13812345678"},
                "station_id": station.id,
            },
            headers=resident.headers,
        ),
        201,
    )
    await _ok(
        await client.post(
            f"/wishes/{wish['id']}/review", json={"approve": True}, headers=staff.headers
        )
    )
    await _ok(await client.post(f"/wishes/{wish['id']}/claim", headers=deputy.headers))
    await _ok(
        await client.post(
            f"/wishes/{wish['id']}/fulfil", json={"note": "已送到孩子家中"}, headers=deputy.headers
        )
    )

    period = {"from": "2026-06-10", "to": "2026-07-31"}
    overview = await _ok(await client.get("/stats/overview", params=period, headers=staff.headers))
    assert overview["cases"]["new"] == 3
    assert {k: v for k, v in overview["cases"]["by_status"].items() if v} == {
        "registered": 1,
        "fed_back": 1,
        "resolved": 1,
    }
    assert overview["rates"]["response"] == {"rate": 1.0, "numerator": 2, "denominator": 2}
    assert overview["rates"]["resolution"] == {"rate": 0.3333, "numerator": 1, "denominator": 3}
    assert overview["rates"]["satisfaction"] == {"rate": 0.5, "numerator": 1, "denominator": 2}
    assert overview["wishes"]["new"] == 1 and overview["wishes"]["by_status"]["fulfilled"] == 1
    assert overview["wishes"]["claimed"] == 1 and overview["wishes"]["fulfilled"] == 1
    presence = overview["presence"]
    assert (presence["checkins"], presence["duty_hours"], presence["checkins_on_duty"]) == (
        1,
        0.4,
        1,
    )
    assert (
        presence["duty_assignments"],
        presence["duty_assignments_attended"],
        presence["receptions"],
    ) == (1, 1, 1)

    other_street = await factory.staff(d.street_b)
    empty = await _ok(
        await client.get("/stats/overview", params=period, headers=other_street.headers)
    )
    assert (
        empty["cases"]["new"] == 0
        and empty["presence"]["checkins"] == 0
        and empty["wishes"]["new"] == 0
    )

    stats = await _ok(await client.get("/stats/deputies", params=period, headers=staff.headers))
    row = next(i for i in stats["items"] if i["deputy_id"] == deputy_row.id)
    assert (row["checkins"], row["duty_hours"], row["receptions"], row["cases_followed"]) == (
        1,
        0.4,
        1,
        1,
    )
    assert (row["wishes_claimed"], row["wishes_fulfilled"], row["inactive"]) == (1, 1, False)

    archive = await _ok(
        await client.get(
            f"/deputies/{deputy_row.id}/archive", params={"year": 2026}, headers=deputy.headers
        )
    )
    assert archive["totals"]["checkins"] == 1 and archive["totals"]["duty_slots_attended"] == 1
    assert archive["receptions"][0]["topic"] == "路灯不亮"
    assert [(c["title"], c["status"], c["satisfaction"]) for c in archive["cases_followed"]] == [
        ("东门路灯不亮", "resolved", "satisfied")
    ]
    assert archive["totals"]["cases_resolved"] == 1 and archive["totals"]["wishes_fulfilled"] == 1

    by_unit = await _ok(
        await client.get(
            "/stats/cases", params={**period, "group_by": "unit"}, headers=staff.headers
        )
    )
    assert by_unit["units_by_satisfaction"][0]["unit_id"] == unit.id
    assert by_unit["units_by_satisfaction"][0]["satisfaction_rate"] == 0.5
