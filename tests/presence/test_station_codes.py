"""Station codes: the PNG from WeChat, its JSON parts, the station screen and the regional ZIP."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

import httpx

from app.core.clock import clock
from app.core.config import Settings
from app.org.models import QrMode
from app.presence.scene import MAX_SCENE_LENGTH, SCENE_CHARSET, printed_scene, rotating_scene
from app.wechat.fake_server import FakeWeChat, qr_png
from tests.factories import Factory
from tests.presence.conftest import World
from tests.presence.helpers import printed, scan

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def test_scenes_fit_wechat_limits_for_any_station(settings: Settings) -> None:
    big = 9_999_999_999
    far_future = datetime(2200, 1, 1, tzinfo=UTC)
    for scene in (
        printed_scene(settings, big, 9999999),
        rotating_scene(settings, big, 99, far_future),
        printed_scene(settings, 1, 1),
    ):
        assert len(scene) <= MAX_SCENE_LENGTH and SCENE_CHARSET.match(scene), scene


async def test_staff_get_the_png_made_by_wechat(
    client: httpx.AsyncClient, settings: Settings, world: World, fake_wechat: FakeWeChat
) -> None:
    response = await client.get(
        f"/stations/{world.station.id}/qrcode", headers=world.staff_a.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    scene = printed(settings, world.station)
    assert response.content == qr_png(scene, 430)
    [call] = fake_wechat.received("getwxacodeunlimit")
    assert call.body["scene"] == scene
    assert call.body["page"] == settings.checkin_page
    assert call.body["env_version"] == settings.wechat_env_version


async def test_json_parts_check_in_end_to_end(
    client: httpx.AsyncClient, settings: Settings, world: World, fake_wechat: FakeWeChat
) -> None:
    response = await client.get(
        f"/stations/{world.station.id}/qrcode?format=json", headers=world.staff_a.headers
    )
    assert response.status_code == 200
    code = response.json()
    assert code["kind"] == "printed" and code["page"] == "pages/checkin/index"
    assert code["env_version"] == settings.wechat_env_version and code["expires_at"] is None
    assert code["screen_url"] is None  # printed-only station
    assert fake_wechat.received("getwxacodeunlimit") == []
    checked_in = await scan(client, world.deputy.headers, code["scene"])
    assert checked_in.status_code == 201 and checked_in.json()["station_id"] == world.station.id


async def test_station_code_access(
    client: httpx.AsyncClient, world: World, fake_wechat: FakeWeChat
) -> None:
    url = f"/stations/{world.station.id}/qrcode"
    for actor in (world.staff_b, world.deputy, world.resident, world.unit):
        assert (await client.get(url, headers=actor.headers)).status_code == 403, actor
    assert (await client.get(url)).status_code == 401
    assert (
        await client.get("/stations/999999/qrcode", headers=world.admin.headers)
    ).status_code == 404
    assert (await client.get(f"{url}?format=gif", headers=world.admin.headers)).status_code == 422
    for actor in (world.district_staff, world.admin):
        assert (await client.get(url, headers=actor.headers)).status_code == 200
    assert len(fake_wechat.received("getwxacodeunlimit")) == 2


async def test_rotating_code_on_the_station_screen(
    client: httpx.AsyncClient, settings: Settings, world: World, factory: Factory
) -> None:
    clock.freeze(T0)
    staff = world.staff_b.headers
    station_url = f"/stations/{world.far_station.id}/qrcode"
    code = (await client.get(f"{station_url}?format=json", headers=staff)).json()
    assert code["kind"] == "printed" and code["screen_url"].startswith(
        f"/stations/{world.far_station.id}/rotating-qrcode?key="
    )
    rotating = (await client.get(f"{station_url}?format=json&kind=rotating", headers=staff)).json()
    assert rotating["scene"].startswith(f"r.{world.far_station.id}.")
    assert datetime.fromisoformat(rotating["expires_at"]) == T0 + 2 * timedelta(
        seconds=settings.qr_rotation_step_seconds
    )
    # The screen polls its URL without a login.
    screen = await client.get(code["screen_url"] + "&format=json")
    assert screen.status_code == 200 and screen.json()["scene"] == rotating["scene"]
    assert screen.json()["screen_url"] is None
    assert screen.headers["cache-control"] == "no-store"
    png = await client.get(code["screen_url"])
    assert png.status_code == 200 and png.content == qr_png(rotating["scene"], 430)
    assert (await scan(client, world.outsider.headers, screen.json()["scene"])).status_code == 201
    # A minute later the screen shows another scene.
    clock.advance(timedelta(seconds=settings.qr_rotation_step_seconds))
    later = (await client.get(code["screen_url"] + "&format=json")).json()
    assert later["scene"] != rotating["scene"]
    # Wrong key, or a key revoked with qr_version: refused.
    bad = code["screen_url"].split("key=")[0] + "key=" + "A" * 24
    assert (await client.get(bad)).status_code == 403
    world.far_station.qr_version += 1
    await factory.add(world.far_station)
    assert (await client.get(code["screen_url"])).status_code == 403
    # A printed-only station has no rotating code.
    printed_only = await client.get(
        f"/stations/{world.station.id}/qrcode?kind=rotating", headers=world.staff_a.headers
    )
    assert printed_only.status_code == 409 and printed_only.json()["code"] == "qr_mode_mismatch"


async def test_non_ascii_screen_key_is_refused_not_a_server_error(
    client: httpx.AsyncClient, world: World
) -> None:
    staff = world.staff_b.headers
    station_url = f"/stations/{world.far_station.id}/qrcode?format=json"
    screen_url = (await client.get(station_url, headers=staff)).json()["screen_url"]
    good_key = screen_url.split("key=")[1]
    base = screen_url.split("key=")[0]
    for key in ("é", "é" * 24, "密钥", good_key[:-1] + "é", good_key + "é"):
        answer = await client.get(base + "key=" + key + "&format=json")
        assert answer.status_code == 403, (key, answer.text)
        assert answer.json()["code"] == "forbidden"
    assert (await client.get(base + "key=" + good_key + "&format=json")).status_code == 200


async def test_region_zip_has_a_png_per_printable_station(
    client: httpx.AsyncClient, settings: Settings, world: World, factory: Factory
) -> None:
    screen_only = await factory.station(world.district.community_a, qr_mode=QrMode.rotating)
    response = await client.get(
        f"/regions/{world.district.street_a.id}/station-qrcodes.zip", headers=world.staff_a.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = sorted(archive.namelist())
    assert names == sorted(
        [f"{world.station.id}-甲社区联络站.png", f"{world.other_station.id}-甲社区第二联络站.png"]
    )
    assert screen_only.id is not None
    assert archive.read(f"{world.station.id}-甲社区联络站.png") == qr_png(
        printed(settings, world.station), 430
    )
    # The whole district, for district staff; street staff cannot ask for another street.
    district = await client.get(
        f"/regions/{world.district.district.id}/station-qrcodes.zip",
        headers=world.district_staff.headers,
    )
    assert len(zipfile.ZipFile(io.BytesIO(district.content)).namelist()) == 3
    for actor in (world.staff_b, world.deputy, world.resident):
        response = await client.get(
            f"/regions/{world.district.street_a.id}/station-qrcodes.zip", headers=actor.headers
        )
        assert response.status_code == 403
    assert (
        await client.get("/regions/999999/station-qrcodes.zip", headers=world.admin.headers)
    ).status_code == 404


async def test_wechat_failures_become_problems(
    client: httpx.AsyncClient, world: World, fake_wechat: FakeWeChat
) -> None:
    url = f"/stations/{world.station.id}/qrcode"
    fake_wechat.fail("getwxacodeunlimit", http_status=502, times=10)
    response = await client.get(url, headers=world.staff_a.headers)
    assert response.status_code == 503 and response.json()["code"] == "wechat_unavailable"
    fake_wechat.reset()
    fake_wechat.fail("getwxacodeunlimit", errcode=45009)
    response = await client.get(url, headers=world.staff_a.headers)
    assert response.status_code == 429 and response.json()["code"] == "rate_limited"
    fake_wechat.fail("getwxacodeunlimit", errcode=41030)
    response = await client.get(url, headers=world.staff_a.headers)
    assert response.status_code == 502 and response.json()["code"] == "wechat_error"
