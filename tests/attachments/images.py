"""Real images for upload tests, made with Pillow."""

from __future__ import annotations

import io
import struct
import zlib

import httpx
from PIL import Image

from tests.factories import Actor

GPS_IFD = 0x8825
ORIENTATION = 0x0112
MAKE = 0x010F


def jpeg_with_gps(width: int = 64, height: int = 32, orientation: int = 6) -> bytes:
    """A JPEG carrying a camera make, an orientation and a GPS position (Shanghai)."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    # A blue left half, so the turn the orientation asks for is visible in the pixels.
    image.paste((30, 30, 200), (0, 0, width // 2, height))
    exif = Image.Exif()
    exif[MAKE] = "TestCam"
    exif[ORIENTATION] = orientation
    exif[GPS_IFD] = {1: "N", 2: (31.0, 14.0, 1.5), 3: "E", 4: (121.0, 28.0, 25.2)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes(), quality=95)
    return out.getvalue()


def png(width: int = 20, height: int = 10) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 128, 0, 128)).save(out, format="PNG")
    return out.getvalue()


def webp(width: int = 16, height: int = 16) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (0, 0, 255)).save(out, format="WEBP")
    return out.getvalue()


def gif(width: int = 8, height: int = 8) -> bytes:
    out = io.BytesIO()
    Image.new("P", (width, height)).save(out, format="GIF")
    return out.getvalue()


async def upload(
    client: httpx.AsyncClient,
    actor: Actor,
    data: bytes,
    *,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
) -> httpx.Response:
    return await client.post(
        "/attachments",
        headers=actor.headers,
        files={"file": (filename, data, content_type)},
    )


async def upload_id(client: httpx.AsyncClient, actor: Actor, data: bytes | None = None) -> int:
    response = await upload(client, actor, data if data is not None else jpeg_with_gps())
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` × `height` pixels, followed by a few bytes of
    image data: what a decompression bomb looks like before anyone decodes it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


async def post_wish_with_photos(
    client: httpx.AsyncClient, actor: Actor, station_id: int, photo_ids: list[int]
) -> httpx.Response:
    """A resident's wish illustrated by `photo_ids` (links the uploads to it)."""
    return await client.post(
        "/wishes",
        headers=actor.headers,
        json={
            "title": "想要一个新书包",
            "content": "孩子的书包背了三年已经破了。",
            "beneficiary": {"name": "王小明"},
            "station_id": station_id,
            "attachment_ids": photo_ids,
        },
    )
