"""Uploading images: real content only, size limit, no metadata kept, and who may fetch them."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from app.attachments.models import Attachment
from app.attachments.service import purge_unlinked_uploads
from app.core.clock import clock, utcnow
from app.core.config import Settings
from app.core.db import Database
from app.core.storage import Storage
from app.wishes.models import WishStatus
from tests.attachments.images import (
    GPS_IFD,
    gif,
    jpeg_with_gps,
    png,
    post_wish_with_photos,
    upload,
    upload_id,
    webp,
)
from tests.factories import Factory
from tests.wishes.conftest import World, make_wish


async def attachment_count(db: Database) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(Attachment)) or 0)


async def test_jpeg_comes_back_upright_without_exif_or_gps(
    client: httpx.AsyncClient, world: World
) -> None:
    original = jpeg_with_gps(64, 32, orientation=6)
    with Image.open(io.BytesIO(original)) as sent:
        assert sent.getexif().get_ifd(GPS_IFD)  # the test image really carries a position

    response = await upload(client, world.resident, original, filename="IMG_0001.JPG")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["content_type"] == "image/jpeg"
    # Orientation 6 means "turn 90° clockwise to view": width and height swap.
    assert (body["width"], body["height"]) == (32, 64)
    assert body["url"] == f"/api/v1/attachments/{body['id']}"

    fetched = await client.get(f"http://test{body['url']}", headers=world.resident.headers)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/jpeg"
    assert len(fetched.content) == body["size"]
    assert b"Exif" not in fetched.content and b"TestCam" not in fetched.content
    with Image.open(io.BytesIO(fetched.content)) as stored:
        assert stored.format == "JPEG" and stored.size == (32, 64)
        exif = stored.getexif()
        assert len(exif) == 0 and not exif.get_ifd(GPS_IFD)
        assert "exif" not in stored.info
        # The blue half, left in the sideways original, is on top once turned upright.
        top, bottom = (
            stored.convert("RGB").getpixel((16, 8)),
            stored.convert("RGB").getpixel((16, 56)),
        )
        assert top[2] > 150 and top[0] < 100, top
        assert bottom[0] > 150 and bottom[2] < 100, bottom


@pytest.mark.parametrize(
    ("data", "content_type", "size"),
    [(png(20, 10), "image/png", (20, 10)), (webp(16, 16), "image/webp", (16, 16))],
)
async def test_png_and_webp_are_accepted(
    client: httpx.AsyncClient, world: World, data: bytes, content_type: str, size: tuple[int, int]
) -> None:
    # The declared name and type are ignored: the bytes decide.
    response = await upload(client, world.deputy, data, filename="x.jpg", content_type="image/jpeg")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["content_type"] == content_type and (body["width"], body["height"]) == size
    fetched = await client.get(f"/attachments/{body['id']}", headers=world.deputy.headers)
    assert fetched.headers["content-type"] == content_type
    with Image.open(io.BytesIO(fetched.content)) as stored:
        assert stored.size == size


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"<?php echo 'hello'; ?>", "photo.jpg"),
        (b"%PDF-1.4 not an image", "scan.png"),
        (gif(), "anim.webp"),  # a real image, but not one of the three formats
        (jpeg_with_gps()[:200], "broken.jpg"),  # a truncated JPEG
    ],
)
async def test_content_that_is_not_an_allowed_image_is_refused(
    client: httpx.AsyncClient, world: World, db: Database, data: bytes, filename: str
) -> None:
    response = await upload(client, world.resident, data, filename=filename)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "unsupported_media_type"
    assert await attachment_count(db) == 0


async def test_oversize_upload_is_413(
    client: httpx.AsyncClient, world: World, db: Database, settings: Settings
) -> None:
    too_big = jpeg_with_gps() + b"\0" * (settings.max_upload_bytes + 1)
    response = await upload(client, world.resident, too_big)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "payload_too_large"
    assert await attachment_count(db) == 0


async def test_empty_and_missing_files_are_refused(client: httpx.AsyncClient, world: World) -> None:
    empty = await upload(client, world.resident, b"")
    assert empty.status_code == 422
    missing = await client.post("/attachments", headers=world.resident.headers, data={"x": "1"})
    assert missing.status_code == 422 and missing.json()["code"] == "validation_error"


async def test_upload_needs_a_login(client: httpx.AsyncClient) -> None:
    response = await client.post("/attachments", files={"file": ("a.png", png(), "image/png")})
    assert response.status_code == 401


async def test_unlinked_upload_is_visible_to_its_uploader_only(
    client: httpx.AsyncClient, world: World
) -> None:
    photo = await upload_id(client, world.resident)
    assert (
        await client.get(f"/attachments/{photo}", headers=world.resident.headers)
    ).status_code == 200
    for headers in (
        {},
        world.other_resident.headers,
        world.deputy.headers,
        world.staff.headers,
        world.admin.headers,
    ):
        response = await client.get(f"/attachments/{photo}", headers=headers)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert (
        await client.get("/attachments/999999", headers=world.resident.headers)
    ).status_code == 404


async def test_wish_photos_follow_the_wish(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    photo = await upload_id(client, world.resident, png())
    created = await post_wish_with_photos(client, world.resident, world.station.id, [photo])
    assert created.status_code == 201, created.text
    wish_id = created.json()["id"]

    async def who_sees() -> dict[str, int]:
        viewers = {
            "anonymous": {},
            "owner": world.resident.headers,
            "other_resident": world.other_resident.headers,
            "deputy": world.deputy.headers,
            "staff_in_scope": world.staff_a.headers,
            "staff_out_of_scope": world.staff_b.headers,
        }
        return {
            name: (await client.get(f"/attachments/{photo}", headers=headers)).status_code
            for name, headers in viewers.items()
        }

    # Pending: only the owner and staff in scope.
    assert await who_sees() == {
        "anonymous": 404,
        "owner": 200,
        "other_resident": 404,
        "deputy": 404,
        "staff_in_scope": 200,
        "staff_out_of_scope": 404,
    }
    approved = await client.post(
        f"/wishes/{wish_id}/review", headers=world.staff_a.headers, json={"approve": True}
    )
    assert approved.status_code == 200
    # Published: public, like the wish.
    assert set((await who_sees()).values()) == {200}

    claimed = await client.post(f"/wishes/{wish_id}/claim", headers=world.deputy.headers)
    assert claimed.status_code == 200
    # Claimed: owner, claimer and staff in scope.
    assert await who_sees() == {
        "anonymous": 404,
        "owner": 200,
        "other_resident": 404,
        "deputy": 200,
        "staff_in_scope": 200,
        "staff_out_of_scope": 404,
    }
    other_deputy = await client.get(f"/attachments/{photo}", headers=world.other_deputy.headers)
    assert other_deputy.status_code == 404


async def test_fulfilment_photos_are_seen_by_the_resident(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    wish = await make_wish(
        factory, world.resident, world.station, status=WishStatus.claimed, claimer=world.deputy
    )
    proof = await upload_id(client, world.deputy, webp())
    assert (
        await client.get(f"/attachments/{proof}", headers=world.resident.headers)
    ).status_code == 404
    done = await client.post(
        f"/wishes/{wish.id}/fulfil",
        headers=world.deputy.headers,
        json={"note": "已送达", "attachment_ids": [proof]},
    )
    assert done.status_code == 200
    assert (
        await client.get(f"/attachments/{proof}", headers=world.resident.headers)
    ).status_code == 200
    assert (
        await client.get(f"/attachments/{proof}", headers=world.other_resident.headers)
    ).status_code == 404


async def test_unlinked_uploads_are_purged_after_the_set_hours(
    client: httpx.AsyncClient,
    world: World,
    factory: Factory,
    db: Database,
    storage_settings: Settings,
    storage: Storage,
) -> None:
    settings = storage_settings  # the sweep finds the files where the app stored them
    clock.freeze(utcnow())
    kept = await upload_id(client, world.resident)
    dropped = await upload_id(client, world.resident)
    created = await post_wish_with_photos(client, world.resident, world.station.id, [kept])
    assert created.status_code == 201
    async with db.transaction(write=False) as session:
        row = await session.get(Attachment, dropped)
        assert row is not None
        dropped_key = row.storage_key
    assert await storage.exists(dropped_key)

    clock.advance(timedelta(hours=settings.attachment_unlinked_ttl_hours) - timedelta(seconds=1))
    async with db.transaction() as session:
        assert await purge_unlinked_uploads(session, utcnow(), settings) == 0
    clock.advance(timedelta(seconds=2))
    async with db.transaction() as session:
        assert await purge_unlinked_uploads(session, utcnow(), settings) == 1
    async with db.transaction() as session:
        assert await purge_unlinked_uploads(session, utcnow(), settings) == 0

    headers = {"Authorization": f"Bearer {factory.token_for(world.resident.user)}"}
    assert (await client.get(f"/attachments/{dropped}", headers=headers)).status_code == 404
    assert (await client.get(f"/attachments/{kept}", headers=headers)).status_code == 200
    assert not await storage.exists(dropped_key)
    assert await attachment_count(db) == 1


async def test_concurrent_uploads_and_fetches_each_get_their_own_photo(
    client: httpx.AsyncClient, world: World
) -> None:
    images = [png(10 + i, 10) for i in range(12)]
    answers = await asyncio.gather(*(upload(client, world.resident, data) for data in images))
    assert [a.status_code for a in answers] == [201] * len(images)
    fetched = await asyncio.gather(
        *(
            client.get(f"/attachments/{a.json()['id']}", headers=world.resident.headers)
            for a in answers
        )
    )
    for i, response in enumerate(fetched):
        assert response.status_code == 200
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.size == (10 + i, 10)
