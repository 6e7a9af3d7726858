"""Check-ins: genuine codes only, at the station, once per visit, settled by the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from app.core.clock import clock
from app.core.config import Settings
from app.core.db import Database
from app.core.security import Role
from app.org.models import QrMode, Station
from app.presence.service import close_stale_checkins
from tests.factories import Factory
from tests.presence.conftest import World, count_checkins
from tests.presence.helpers import printed, rotating, scan

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


async def test_deputy_checks_in_with_a_printed_code(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    clock.freeze(T0)
    response = await scan(
        client, world.deputy.headers, printed(settings, world.station), metres_away=40
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["action"] == "checked_in"
    assert body["deputy_id"] == world.deputy.deputy_id
    assert body["station_id"] == world.station.id
    assert body["station_name"] == "甲社区联络站"
    assert body["checked_out_at"] is None and body["auto_closed"] is False
    assert 39 < body["distance_m"] < 41
    assert body["accuracy_m"] == 15.0
    assert datetime.fromisoformat(body["checked_in_at"]) == T0
    assert body["duty_slot_id"] is None and body["on_duty"] is False
    assert await count_checkins(db) == 1


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"), id="forged-signature"),
        pytest.param(lambda s: "p.1.1.AAAAAAAAAAAA", id="made-up"),
        pytest.param(lambda s: "hello", id="not-ours"),
        pytest.param(lambda s: s.replace("p.", "r.", 1), id="wrong-kind"),
        pytest.param(lambda s: s + "x", id="too-long-signature"),
    ],
)
async def test_forged_scenes_are_invalid_qr(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World, mangle
) -> None:
    response = await scan(client, world.deputy.headers, mangle(printed(settings, world.station)))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "invalid_qr"
    assert await count_checkins(db) == 0


async def test_scene_of_another_station_cannot_be_relabelled(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    genuine = printed(settings, world.far_station)
    assert world.far_station.id != world.station.id
    relabelled = genuine.replace(f"p.{world.far_station.id}.", f"p.{world.station.id}.", 1)
    response = await scan(client, world.deputy.headers, relabelled)
    assert response.status_code == 422 and response.json()["code"] == "invalid_qr"
    # A code signed with another key is not genuine either.
    other_key = Settings(_env_file=None, jwt_secret="another-secret-" + "y" * 32)  # type: ignore[call-arg]
    response = await scan(client, world.deputy.headers, printed(other_key, world.station))
    assert response.status_code == 422 and response.json()["code"] == "invalid_qr"
    assert await count_checkins(db) == 0


async def test_revoked_and_inactive_station_codes_are_invalid(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World, factory: Factory
) -> None:
    old_scene = printed(settings, world.station)
    world.station.qr_version += 1
    await factory.add(world.station)
    response = await scan(client, world.deputy.headers, old_scene)
    assert response.status_code == 422 and response.json()["code"] == "invalid_qr"
    assert (
        await scan(client, world.deputy.headers, printed(settings, world.station))
    ).status_code == 201

    world.other_station.is_active = False
    await factory.add(world.other_station)
    response = await scan(client, world.colleague.headers, printed(settings, world.other_station))
    assert response.status_code == 422 and response.json()["code"] == "invalid_qr"
    assert await count_checkins(db) == 1


async def test_rotating_code_is_accepted_only_in_its_window(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World, factory: Factory
) -> None:
    world.station.qr_mode = QrMode.rotating
    await factory.add(world.station)
    step = timedelta(seconds=settings.qr_rotation_step_seconds)
    clock.freeze(T0)
    shown = rotating(settings, world.station)
    # A printed code is refused by a rotating-only station.
    response = await scan(client, world.deputy.headers, printed(settings, world.station))
    assert response.status_code == 422 and response.json()["code"] == "invalid_qr"
    # The code shown now is still accepted during the next step ...
    clock.freeze(T0 + step + timedelta(seconds=30))
    response = await scan(client, world.deputy.headers, shown)
    assert response.status_code == 201, response.text
    # ... but not after its window.
    clock.freeze(T0 + 2 * step)
    response = await scan(client, world.colleague.headers, shown)
    assert response.status_code == 422 and response.json()["code"] == "invalid_qr"
    # A code "from the future" (not yet shown) is refused too.
    future = rotating(settings, world.station, T0 + 5 * step)
    response = await scan(client, world.colleague.headers, future)
    assert response.status_code == 422 and response.json()["code"] == "invalid_qr"
    # Revoking (qr_version) invalidates rotating codes as well.
    fresh = rotating(settings, world.station)
    world.station.qr_version += 1
    await factory.add(world.station)
    response = await scan(client, world.colleague.headers, fresh)
    assert response.status_code == 422 and response.json()["code"] == "invalid_qr"
    assert await count_checkins(db) == 1


async def test_rotating_code_refused_by_printed_only_station_and_both_accepts_both(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    response = await scan(client, world.deputy.headers, rotating(settings, world.station))
    assert response.status_code == 422 and response.json()["code"] == "invalid_qr"
    # far_station accepts both kinds.
    assert (
        await scan(client, world.outsider.headers, rotating(settings, world.far_station))
    ).status_code == 201
    assert (
        await scan(client, world.deputy.headers, printed(settings, world.far_station))
    ).status_code == 201


async def test_out_of_range_reports_the_distance_and_stores_nothing(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    response = await scan(
        client, world.deputy.headers, printed(settings, world.station), metres_away=1000
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "out_of_range"
    assert 995 < problem["distance_m"] < 1005
    assert problem["radius_m"] == 300
    assert problem["accuracy_allowed_m"] == 15.0
    assert "米" in problem["detail"]
    assert await count_checkins(db) == 0


async def test_accuracy_is_credited_up_to_the_cap(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    scene = printed(settings, world.station)
    # 350 m away: outside 300 m, but a fix of ±80 m may be inside.
    response = await scan(client, world.deputy.headers, scene, metres_away=350, accuracy=None)
    assert response.status_code == 422 and response.json()["code"] == "out_of_range"
    response = await scan(client, world.deputy.headers, scene, metres_away=350, accuracy=80)
    assert response.status_code == 201
    # A claimed ±5 km fix is credited only up to the cap (100 m): 450 - 100 > 300.
    response = await scan(client, world.colleague.headers, scene, metres_away=450, accuracy=5000)
    assert response.status_code == 422
    assert response.json()["accuracy_allowed_m"] == settings.checkin_max_accuracy_m
    assert await count_checkins(db) == 1


async def test_station_without_coordinates_accepts_any_location(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    response = await scan(
        client, world.deputy.headers, printed(settings, world.other_station), metres_away=50_000
    )
    assert response.status_code == 201
    assert response.json()["distance_m"] is None


async def test_repeat_scan_answers_the_same_then_a_later_scan_checks_out(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    scene = printed(settings, world.station)
    clock.freeze(T0)
    first = await scan(client, world.deputy.headers, scene)
    assert first.status_code == 201
    clock.advance(timedelta(seconds=settings.checkin_repeat_window_seconds - 1))
    again = await scan(client, world.deputy.headers, scene)
    assert again.status_code == 200
    assert again.json()["action"] == "repeat" and again.json()["id"] == first.json()["id"]
    assert again.json()["checked_out_at"] is None
    clock.advance(timedelta(hours=2))
    out = await scan(client, world.deputy.headers, scene)
    assert out.status_code == 200
    body = out.json()
    assert body["action"] == "checked_out" and body["id"] == first.json()["id"]
    assert body["close_reason"] == "scan" and body["auto_closed"] is False
    assert datetime.fromisoformat(body["checked_out_at"]) == clock.now()
    # The next scan starts a new visit.
    clock.advance(timedelta(minutes=10))
    new = await scan(client, world.deputy.headers, scene)
    assert new.status_code == 201 and new.json()["id"] != first.json()["id"]
    assert await count_checkins(db) == 2
    assert await count_checkins(db, checked_out_at=None) == 1


async def test_checking_in_elsewhere_closes_the_open_one(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    clock.freeze(T0)
    first = await scan(client, world.deputy.headers, printed(settings, world.station))
    clock.advance(timedelta(seconds=30))
    second = await scan(client, world.deputy.headers, printed(settings, world.other_station))
    assert second.status_code == 201 and second.json()["station_id"] == world.other_station.id
    listed = await client.get("/checkins", headers=world.deputy.headers)
    by_id = {item["id"]: item for item in listed.json()["items"]}
    closed = by_id[first.json()["id"]]
    assert closed["close_reason"] == "moved"
    assert datetime.fromisoformat(closed["checked_out_at"]) == T0 + timedelta(seconds=30)
    assert by_id[second.json()["id"]]["checked_out_at"] is None
    assert await count_checkins(db, checked_out_at=None) == 1


async def test_simultaneous_scans_make_one_check_in(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    scene = printed(settings, world.station)
    responses = await asyncio.gather(
        *(scan(client, world.deputy.headers, scene) for _ in range(12))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 11 + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["id"] for r in responses}) == 1
    assert {r.json()["action"] for r in responses} == {"checked_in", "repeat"}
    assert await count_checkins(db) == 1


async def test_simultaneous_scans_at_two_stations_leave_one_open(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    scenes = [printed(settings, world.station), printed(settings, world.other_station)] * 6
    responses = await asyncio.gather(*(scan(client, world.deputy.headers, s) for s in scenes))
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert await count_checkins(db, checked_out_at=None) == 1


async def test_stale_check_ins_are_auto_closed_by_the_sweep(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    clock.freeze(T0)
    stale = await scan(client, world.deputy.headers, printed(settings, world.station))
    clock.advance(timedelta(hours=settings.checkin_max_hours - 1))
    fresh = await scan(client, world.colleague.headers, printed(settings, world.station))
    async with db.transaction() as session:
        assert await close_stale_checkins(session, clock.now(), settings=settings) == 0
    clock.advance(timedelta(hours=1, seconds=1))
    async with db.transaction() as session:
        assert await close_stale_checkins(session, clock.now(), settings=settings) == 1
    async with db.transaction() as session:
        assert await close_stale_checkins(session, clock.now(), settings=settings) == 0
    listed = (await client.get("/checkins", headers=world.admin.headers)).json()["items"]
    by_id = {item["id"]: item for item in listed}
    closed = by_id[stale.json()["id"]]
    assert closed["auto_closed"] is True and closed["close_reason"] == "auto"
    # It ends at the maximum duration, not when the sweep ran.
    assert datetime.fromisoformat(closed["checked_out_at"]) == T0 + timedelta(
        hours=settings.checkin_max_hours
    )
    assert by_id[fresh.json()["id"]]["checked_out_at"] is None


async def test_a_scan_after_the_maximum_starts_a_new_visit(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    scene = printed(settings, world.station)
    clock.freeze(T0)
    first = await scan(client, world.deputy.headers, scene)
    clock.advance(timedelta(hours=settings.checkin_max_hours + 3))
    second = await scan(client, world.deputy.headers, scene)
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]
    listed = (await client.get("/checkins", headers=world.deputy.headers)).json()["items"]
    old = next(item for item in listed if item["id"] == first.json()["id"])
    assert old["auto_closed"] is True
    assert await count_checkins(db, checked_out_at=None) == 1


async def test_checkout_by_its_deputy_only(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    clock.freeze(T0)
    checkin_id = (
        await scan(client, world.deputy.headers, printed(settings, world.station))
    ).json()["id"]
    for actor in (world.colleague, world.staff_a, world.resident):
        response = await client.post(f"/checkins/{checkin_id}/checkout", headers=actor.headers)
        assert response.status_code == 403, actor
    assert (await client.post(f"/checkins/{checkin_id}/checkout")).status_code == 401
    assert await count_checkins(db, checked_out_at=None) == 1
    missing = await client.post("/checkins/999999/checkout", headers=world.deputy.headers)
    assert missing.status_code == 404
    clock.advance(timedelta(minutes=90))
    response = await client.post(f"/checkins/{checkin_id}/checkout", headers=world.deputy.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["close_reason"] == "manual"
    assert datetime.fromisoformat(body["checked_out_at"]) == T0 + timedelta(minutes=90)
    again = await client.post(f"/checkins/{checkin_id}/checkout", headers=world.deputy.headers)
    assert again.status_code == 409 and again.json()["code"] == "already_checked_out"


async def test_only_bound_deputies_check_in(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World, factory: Factory
) -> None:
    scene = printed(settings, world.station)
    unbound = await factory.actor(Role.deputy)  # no deputy_id: not bound
    for actor in (world.resident, world.staff_a, world.admin, world.unit, unbound):
        response = await scan(client, actor.headers, scene)
        assert response.status_code == 403, actor
        assert response.json()["code"] == "forbidden"
    assert (await scan(client, {}, scene)).status_code == 401
    assert (await scan(client, {"Authorization": "Bearer nonsense"}, scene)).status_code == 401
    assert await count_checkins(db) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"latitude": 31.23, "longitude": 121.47},
        {"scene": "", "latitude": 31.23, "longitude": 121.47},
        {"scene": "p.1.1.x", "latitude": 91, "longitude": 121.47},
        {"scene": "p.1.1.x", "latitude": 31.23, "longitude": 121.47, "accuracy": -1},
        {"scene": "p.1.1.x", "latitude": 31.23},
    ],
)
async def test_bad_bodies_are_validation_errors(
    client: httpx.AsyncClient, db: Database, world: World, body: dict
) -> None:
    response = await client.post("/checkins", json=body, headers=world.deputy.headers)
    assert response.status_code == 422 and response.json()["code"] == "validation_error"
    assert await count_checkins(db) == 0


async def test_list_scopes_and_filters(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    clock.freeze(T0)
    mine = (await scan(client, world.deputy.headers, printed(settings, world.station))).json()
    colleague = (
        await scan(client, world.colleague.headers, printed(settings, world.station))
    ).json()
    clock.freeze(T0 + timedelta(days=3))
    far = (await scan(client, world.outsider.headers, printed(settings, world.far_station))).json()

    def ids(response: httpx.Response) -> set[int]:
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert ids(await client.get("/checkins", headers=world.deputy.headers)) == {mine["id"]}
    # A deputy cannot widen the list to others with a filter.
    assert (
        ids(
            await client.get(
                f"/checkins?deputy_id={world.colleague.deputy_id}", headers=world.deputy.headers
            )
        )
        == set()
    )
    assert ids(await client.get("/checkins", headers=world.staff_a.headers)) == {
        mine["id"],
        colleague["id"],
    }
    assert ids(await client.get("/checkins", headers=world.staff_b.headers)) == {far["id"]}
    everyone = {mine["id"], colleague["id"], far["id"]}
    assert ids(await client.get("/checkins", headers=world.district_staff.headers)) == everyone
    assert ids(await client.get("/checkins", headers=world.admin.headers)) == everyone
    response = await client.get("/checkins", headers=world.admin.headers)
    assert response.json()["total"] == 3
    named = {item["id"]: item["deputy_name"] for item in response.json()["items"]}
    assert named[mine["id"]] == "王芳"

    admin = world.admin.headers
    assert ids(
        await client.get(f"/checkins?deputy_id={world.colleague.deputy_id}", headers=admin)
    ) == {colleague["id"]}
    assert ids(await client.get(f"/checkins?station_id={world.far_station.id}", headers=admin)) == {
        far["id"]
    }
    # Dates are Shanghai dates: T0 is 2026-03-02 09:00 there, T0 + 3 days 2026-03-05.
    assert ids(await client.get("/checkins?from=2026-03-03", headers=admin)) == {far["id"]}
    assert ids(await client.get("/checkins?from=2026-03-02&to=2026-03-02", headers=admin)) == {
        mine["id"],
        colleague["id"],
    }
    assert ids(await client.get("/checkins?to=2026-03-01", headers=admin)) == set()
    page = await client.get("/checkins?limit=1", headers=admin)
    assert page.json()["total"] == 3 and len(page.json()["items"]) == 1
    assert page.json()["items"][0]["id"] == far["id"]  # newest first

    for actor in (world.resident, world.unit):
        response = await client.get("/checkins", headers=actor.headers)
        assert response.status_code == 403
    assert (await client.get("/checkins")).status_code == 401


async def test_station_query_ignores_checkins_of_a_station_row_changed_later(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    """Moving a station's coordinates applies to the next scan at once (no cached rows)."""
    scene = printed(settings, world.station)
    async with db.transaction() as session:
        await session.execute(
            update(Station)
            .where(Station.id == world.station.id)
            .values(latitude=40.0, longitude=116.4)
        )
    response = await scan(client, world.deputy.headers, scene)
    assert response.status_code == 422 and response.json()["code"] == "out_of_range"


async def test_out_of_range_numbers_are_refused_cleanly(
    client: httpx.AsyncClient, settings: Settings, db: Database, world: World
) -> None:
    huge = 10**12
    scene = printed(settings, world.station).replace(f"p.{world.station.id}.", "p.9999999999.", 1)
    response = await scan(client, world.deputy.headers, scene)
    assert response.status_code == 422 and response.json()["code"] == "invalid_qr"
    for url in (f"/checkins/{huge}/checkout", f"/checkins?station_id={huge}"):
        method = client.post if url.endswith("checkout") else client.get
        response = await method(url, headers=world.deputy.headers)
        assert response.status_code == 422, url
    for query in ("from=9999-12-31", "to=0001-01-01"):
        response = await client.get(f"/checkins?{query}", headers=world.admin.headers)
        assert response.status_code == 422 and response.json()["code"] == "validation_error"
        response = await client.get(f"/stations/{world.station.id}/duty-roster?{query}")
        assert response.status_code == 422
    assert await count_checkins(db) == 0
