"""Hostile images: those whose header declares more pixels than allowed are refused
with 422 `image_too_large` from the header alone; malformed ones are 415, never a server
error. Nothing is stored."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import func, select

from app.attachments.models import Attachment
from app.core.config import Settings
from app.core.db import Database
from tests.attachments.images import jpeg_with_gps, png_declaring, upload
from tests.wishes.conftest import World


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (8000, 6000),  # 48 MP: above MAX_UPLOAD_PIXELS, below Pillow's own bound
        (10_000, 10_000),  # 100 MP: where Pillow warns
        (50_000, 50_000),  # 2.5 GP: where Pillow raises DecompressionBombError
        (2**31 - 1, 2**31 - 1),  # the most a PNG header can declare
    ],
)
async def test_image_declaring_too_many_pixels_is_422_image_too_large(
    client: httpx.AsyncClient,
    world: World,
    db: Database,
    settings: Settings,
    width: int,
    height: int,
) -> None:
    assert width * height > settings.max_upload_pixels
    bomb = png_declaring(width, height)
    started = time.monotonic()
    response = await upload(client, world.resident, bomb, filename="bomb.png")
    assert time.monotonic() - started < 2.0  # refused from the header, nothing decoded
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "image_too_large"
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Attachment)) == 0


async def test_image_within_the_bound_is_decoded(client: httpx.AsyncClient, world: World) -> None:
    # Declared within the bound, the header passes and the image is decoded as usual (its
    # data is short, so Pillow refuses it as truncated: 415, not 422).
    response = await upload(client, world.resident, png_declaring(4000, 3000))
    assert response.status_code == 415, response.text
    assert response.json()["code"] == "unsupported_media_type"


def jpeg_with_malformed_exif() -> bytes:
    """A JPEG whose GPS directory names GPSImgDirection (a rational) but holds text: Pillow
    reads it, then fails writing the orientation back (TypeError)."""
    original = jpeg_with_gps()
    entry = bytes.fromhex("0001000200000002")  # GPSLatitudeRef, ASCII, 2 bytes: "N"
    assert original.count(entry) == 1
    return original.replace(entry, bytes.fromhex("0011000200000002"))


async def test_image_with_malformed_metadata_is_415_not_500(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    response = await upload(client, world.resident, jpeg_with_malformed_exif())
    assert response.status_code == 415, response.text
    assert response.json()["code"] == "unsupported_media_type"
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Attachment)) == 0
