"""Stations: public search (nearest first), the station page, staff management with versions."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from app.core.clock import clock
from app.identity.models import Deputy
from app.org.models import StationKind
from app.presence.models import DutyAssignment, DutySlot
from tests.factories import Factory

LAT, LNG = 31.2304, 121.4737  # People's Square, Shanghai
METRES_PER_DEGREE_LAT = 6_371_008.8 * math.pi / 180


def _expected_lng_distance(dlng: float) -> float:
    phi = math.radians(LAT)
    a = math.cos(phi) ** 2 * math.sin(math.radians(dlng) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


async def _count_stations(factory: Factory) -> int:
    from app.org.models import Station

    async with factory.db.transaction(write=False) as session:
        return (await session.execute(select(func.count()).select_from(Station))).scalar_one()


async def test_nearest_first_with_distances(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    far = await factory.station(d.community_a, name="远站", latitude=LAT + 0.1, longitude=LNG)
    near = await factory.station(d.community_a, name="近站", latitude=LAT + 0.01, longitude=LNG)
    here = await factory.station(d.community_b, name="原地站", latitude=LAT, longitude=LNG)
    east = await factory.station(d.community_b, name="东站", latitude=LAT, longitude=LNG + 0.05)
    await factory.station(d.community_b, name="外地站", latitude=LAT + 1.0, longitude=LNG)
    await factory.station(d.community_b, name="无坐标站", latitude=None, longitude=None)

    response = await client.get("/stations", params={"lat": LAT, "lng": LNG})
    assert response.status_code == 200, response.text
    body = response.json()
    # 111 km away is outside the default 50 km radius; no coordinates: not placeable.
    assert body["total"] == 4
    assert [s["id"] for s in body["items"]] == [here.id, near.id, east.id, far.id]
    distances = [s["distance_m"] for s in body["items"]]
    assert distances[0] == 0
    assert distances[1] == round(0.01 * METRES_PER_DEGREE_LAT) == 1112
    assert abs(distances[2] - _expected_lng_distance(0.05)) <= 1
    assert distances[3] == round(0.1 * METRES_PER_DEGREE_LAT) == 11120
    assert body["items"][0]["region_name"] == d.community_b.name

    radius = (
        await client.get("/stations", params={"lat": LAT, "lng": LNG, "radius_m": 2000})
    ).json()
    assert [s["id"] for s in radius["items"]] == [here.id, near.id] and radius["total"] == 2

    wide = (
        await client.get("/stations", params={"lat": LAT, "lng": LNG, "radius_m": 200_000})
    ).json()
    assert wide["total"] == 5 and wide["items"][-1]["name"] == "外地站"

    second = (
        await client.get("/stations", params={"lat": LAT, "lng": LNG, "limit": 1, "offset": 1})
    ).json()
    assert second["total"] == 4 and [s["id"] for s in second["items"]] == [near.id]
    beyond = (await client.get("/stations", params={"lat": LAT, "lng": LNG, "offset": 10})).json()
    assert beyond == {"items": [], "total": 4}


async def test_bounding_box_does_not_drop_stations_inside_the_circle(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """At a high latitude the circle's widest point is off the centre's parallel."""
    d = await factory.district()
    lat, lng = 60.0, 10.0
    inside = []
    for bearing in range(0, 360, 15):
        # 990 m away in every direction, inside a 1000 m radius.
        dlat = 990 * math.cos(math.radians(bearing)) / METRES_PER_DEGREE_LAT
        dlng = (
            990
            * math.sin(math.radians(bearing))
            / (METRES_PER_DEGREE_LAT * math.cos(math.radians(lat + dlat)))
        )
        inside.append(
            (await factory.station(d.community_a, latitude=lat + dlat, longitude=lng + dlng)).id
        )
    outside = await factory.station(d.community_a, latitude=lat + 0.0095, longitude=lng)
    body = (
        await client.get(
            "/stations", params={"lat": lat, "lng": lng, "radius_m": 1000, "limit": 100}
        )
    ).json()
    found = {s["id"] for s in body["items"]}
    assert found == set(inside) and outside.id not in found
    assert all(980 <= s["distance_m"] <= 1000 for s in body["items"])


async def test_filters_kind_region_q_and_inactive(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    other = await factory.district("西城区")
    home = await factory.station(d.street_a, kind=StationKind.home, name="甲街道代表之家")
    station_a = await factory.station(d.community_a, name="甲社区联络站", address="和平路1号")
    station_b = await factory.station(d.community_b, name="乙社区联络站")
    other_station = await factory.station(other.community_a, name="西城联络站")
    closed = await factory.station(d.community_a, name="已撤销联络站", is_active=False)

    all_active = (await client.get("/stations")).json()
    assert all_active["total"] == 4 and closed.id not in {s["id"] for s in all_active["items"]}
    homes = (await client.get("/stations", params={"kind": "home"})).json()
    assert [s["id"] for s in homes["items"]] == [home.id]
    street_a = (await client.get("/stations", params={"region_id": d.street_a.id})).json()
    assert {s["id"] for s in street_a["items"]} == {home.id, station_a.id}
    district = (await client.get("/stations", params={"region_id": d.district.id})).json()
    assert {s["id"] for s in district["items"]} == {home.id, station_a.id, station_b.id}
    by_address = (await client.get("/stations", params={"q": "和平路"})).json()
    assert [s["id"] for s in by_address["items"]] == [station_a.id]
    by_name = (await client.get("/stations", params={"q": "西城"})).json()
    assert [s["id"] for s in by_name["items"]] == [other_station.id]
    literal_percent = (await client.get("/stations", params={"q": "%"})).json()
    assert literal_percent["total"] == 0
    assert all(s["distance_m"] is None for s in all_active["items"])

    # Deactivated stations: only staff asking for them.
    anonymous = (await client.get("/stations", params={"include_inactive": True})).json()
    assert anonymous["total"] == 4
    staff = await factory.staff(d.district)
    with_closed = (
        await client.get("/stations", params={"include_inactive": True}, headers=staff.headers)
    ).json()
    assert with_closed["total"] == 5


async def test_search_validation(client: httpx.AsyncClient) -> None:
    for params in (
        {"lat": LAT},
        {"lng": LNG},
        {"lat": 91, "lng": LNG},
        {"lat": LAT, "lng": 181},
        {"lat": LAT, "lng": LNG, "radius_m": 0},
        {"lat": LAT, "lng": LNG, "radius_m": 500_001},
        {"kind": "castle"},
        {"limit": 101},
        {"q": "和平\x00路"},
        {"region_id": 2**31},
    ):
        response = await client.get("/stations", params=params)
        assert response.status_code == 422, params
        assert response.json()["code"] == "validation_error"


async def test_station_page_with_deputies_and_duty_now(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    station = await factory.station(d.community_a, name="甲社区联络站", phone="021-5555666")
    on_duty = await factory.deputy(
        d.community_a, station=station, name="王芳", phone="13800138001", title="社区书记"
    )
    await factory.deputy(d.community_a, station=station, name="李明", phone="13800138002")
    await factory.deputy(d.community_a, station=station, name="离任代表", is_active=False)
    await factory.deputy(d.community_b, name="别站代表")
    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    clock.freeze(now)
    slot = await factory.add(
        DutySlot(
            station_id=station.id,
            day=now.date(),
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=2),
        )
    )
    await factory.add(DutyAssignment(slot_id=slot.id, deputy_id=on_duty.id))
    later = await factory.add(
        DutySlot(
            station_id=station.id,
            day=now.date(),
            starts_at=now + timedelta(hours=4),
            ends_at=now + timedelta(hours=6),
        )
    )

    response = await client.get(f"/stations/{station.id}")
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"1"'
    body = response.json()
    assert body["name"] == "甲社区联络站" and body["phone"] == "021-5555666"
    assert body["region_name"] == d.community_a.name
    assert [dep["name"] for dep in body["deputies"]] == ["李明", "王芳"]
    assert "13800138001" not in response.text and "13800138002" not in response.text
    assert all("phone" not in dep for dep in body["deputies"])
    assert [s["id"] for s in body["on_duty_now"]] == [slot.id]
    assert later.id not in [s["id"] for s in body["on_duty_now"]]
    assert [dep["id"] for dep in body["on_duty_now"][0]["deputies"]] == [on_duty.id]

    missing = await client.get("/stations/999999")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


STATION_BODY = {
    "kind": "station",
    "name": "新建联络站",
    "address": "和平路1号",
    "latitude": LAT,
    "longitude": LNG,
    "radius_m": 250,
    "phone": "021-12345678",
    "opening_hours": "周一至周五 9:00-17:00",
    "qr_mode": "both",
}


async def test_staff_create_station_in_scope(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    staff = await factory.staff(d.street_a)
    created = await client.post(
        "/stations", json={**STATION_BODY, "region_id": d.community_a.id}, headers=staff.headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["version"] == 1 and body["radius_m"] == 250 and body["qr_mode"] == "both"
    assert body["region_id"] == d.community_a.id and body["deputies"] == []
    fetched = (await client.get(f"/stations/{body['id']}")).json()
    assert fetched["name"] == "新建联络站" and fetched["latitude"] == LAT

    admin = await factory.admin()
    anywhere = await client.post(
        "/stations", json={**STATION_BODY, "region_id": d.community_b.id}, headers=admin.headers
    )
    assert anywhere.status_code == 201


async def test_create_station_refusals_change_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    staff = await factory.staff(d.street_a)
    unit = await factory.unit()
    body = {**STATION_BODY, "region_id": d.community_a.id}
    assert (await client.post("/stations", json=body)).status_code == 401
    for actor in (
        await factory.resident(),
        await factory.deputy_actor(),
        await factory.unit_handler(unit),
    ):
        refused = await client.post("/stations", json=body, headers=actor.headers)
        assert refused.status_code == 403
    out_of_scope = await client.post(
        "/stations", json={**body, "region_id": d.community_b.id}, headers=staff.headers
    )
    assert out_of_scope.status_code == 403 and out_of_scope.json()["code"] == "forbidden"
    invalid = [
        {**body, "latitude": 91},
        {**body, "longitude": -181},
        {**body, "longitude": None},
        {k: v for k, v in body.items() if k != "latitude"},
        {**body, "radius_m": 10},
        {**body, "radius_m": 5001},
        {**body, "kind": "castle"},
        {**body, "qr_mode": "neon"},
        {**body, "name": ""},
        {**body, "region_id": 999999},
        {**body, "phone": "call me"},
        {**body, "surprise": 1},
        {**body, "name": "联络\x00站"},
        {**body, "region_id": 2**31},
    ]
    for payload in invalid:
        response = await client.post("/stations", json=payload, headers=staff.headers)
        assert response.status_code == 422, payload
        assert response.json()["code"] == "validation_error"
    assert await _count_stations(factory) == 0


async def test_patch_with_version_and_if_match(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    station = await factory.station(d.community_a, name="旧名")
    staff = await factory.staff(d.street_a)
    first = await client.patch(
        f"/stations/{station.id}",
        json={"version": 1, "name": "新名", "radius_m": 500},
        headers=staff.headers,
    )
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 2 and first.json()["name"] == "新名"
    assert first.headers["etag"] == 'W/"2"'
    second = await client.patch(
        f"/stations/{station.id}",
        json={"opening_hours": "每天"},
        headers={**staff.headers, "If-Match": first.headers["etag"]},
    )
    assert second.status_code == 200 and second.json()["version"] == 3
    assert second.json()["radius_m"] == 500 and second.json()["opening_hours"] == "每天"

    stale = await client.patch(
        f"/stations/{station.id}", json={"version": 2, "name": "过时"}, headers=staff.headers
    )
    assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"
    stale_header = await client.patch(
        f"/stations/{station.id}",
        json={"name": "过时"},
        headers={**staff.headers, "If-Match": '"1"'},
    )
    assert stale_header.status_code == 409
    no_version = await client.patch(
        f"/stations/{station.id}", json={"name": "无版本"}, headers=staff.headers
    )
    assert no_version.status_code == 422
    bad_header = await client.patch(
        f"/stations/{station.id}", json={"name": "x"}, headers={**staff.headers, "If-Match": "*"}
    )
    assert bad_header.status_code == 422
    # Deactivate: off the public list, still readable by id.
    off = await client.patch(
        f"/stations/{station.id}", json={"version": 3, "is_active": False}, headers=staff.headers
    )
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert (await client.get("/stations")).json()["total"] == 0
    final = (await client.get(f"/stations/{station.id}")).json()
    assert final["name"] == "新名" and final["version"] == 4


async def test_patch_refusals_change_nothing(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    station = await factory.station(d.community_a, name="原名")
    other_staff = await factory.staff(d.street_b)
    staff = await factory.staff(d.street_a)
    unit = await factory.unit()
    body = {"version": 1, "name": "改名"}
    assert (await client.patch(f"/stations/{station.id}", json=body)).status_code == 401
    for actor in (
        await factory.resident(),
        await factory.deputy_actor(),
        await factory.unit_handler(unit),
        other_staff,
    ):
        refused = await client.patch(f"/stations/{station.id}", json=body, headers=actor.headers)
        assert refused.status_code == 403
    moved_out = await client.patch(
        f"/stations/{station.id}",
        json={"version": 1, "region_id": d.community_b.id},
        headers=staff.headers,
    )
    assert moved_out.status_code == 403
    for payload in (
        {"version": 1, "latitude": 30.0},
        {"version": 1, "latitude": 95, "longitude": 121},
        {"version": 1, "radius_m": 5},
        {"version": 1, "name": None},
        {"version": 1, "kind": "castle"},
        {"version": 1, "qr_mode": None},
        {"version": 1, "region_id": 999999},
        {"version": 0, "name": "x"},
    ):
        response = await client.patch(
            f"/stations/{station.id}", json=payload, headers=staff.headers
        )
        assert response.status_code == 422, payload
    missing = await client.patch("/stations/999999", json=body, headers=staff.headers)
    assert missing.status_code == 404
    after = (await client.get(f"/stations/{station.id}")).json()
    assert after["name"] == "原名" and after["version"] == 1
    assert after["region_id"] == d.community_a.id and after["radius_m"] == 300


async def test_concurrent_edits_of_one_version_exactly_one_wins(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    station = await factory.station(d.community_a, name="原名")
    staff = await factory.staff(d.district)
    responses = await asyncio.gather(
        *(
            client.patch(
                f"/stations/{station.id}",
                json={"version": 1, "name": f"改名{i}"},
                headers=staff.headers,
            )
            for i in range(12)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 11, codes
    winner = next(r for r in responses if r.status_code == 200).json()["name"]
    final = (await client.get(f"/stations/{station.id}")).json()
    assert final["version"] == 2 and final["name"] == winner


async def test_deputy_model_phone_never_in_station_list(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    station = await factory.station(d.community_a)
    deputy: Deputy = await factory.deputy(d.community_a, station=station, phone="13911112222")
    listing = await client.get("/stations")
    detail = await client.get(f"/stations/{station.id}")
    assert "13911112222" not in listing.text + detail.text
    assert detail.json()["deputies"][0]["id"] == deputy.id
