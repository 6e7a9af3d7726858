"""Photos in an S3-protocol object store (a real moto server over HTTP), served by a 302 to a
short-lived signed URL after the API's access check."""

from __future__ import annotations

import hashlib
import socket
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.attachments.models import Attachment
from app.attachments.service import purge_unlinked_uploads
from app.core.clock import clock, utcnow
from app.core.config import ConfigError, Settings
from app.core.db import Database
from app.core.storage import Storage, storage_for
from tests.attachments.images import jpeg_with_gps, png, post_wish_with_photos, upload, upload_id
from tests.conftest import make_settings
from tests.object_store import ObjectStore
from tests.wishes.conftest import World

TTL = 120


@pytest.fixture
def storage_settings(object_store: ObjectStore) -> Settings:
    return object_store.settings(s3_delivery="redirect", s3_url_ttl_seconds=TTL)


def _signed_query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_photo_is_stored_in_the_bucket_and_served_by_a_signed_redirect(
    client: httpx.AsyncClient, world: World, db: Database, object_store: ObjectStore
) -> None:
    response = await upload(client, world.resident, jpeg_with_gps())
    assert response.status_code == 201, response.text
    body = response.json()
    async with db.transaction(write=False) as session:
        row = await session.get(Attachment, body["id"])
        assert row is not None
    # In the bucket under the prefix, with its type; never a local file.
    stored = object_store.client().get_object(
        Bucket=object_store.bucket, Key=f"media/{row.storage_key}"
    )
    data = stored["Body"].read()
    assert stored["ContentType"] == "image/jpeg"
    assert hashlib.sha256(data).hexdigest() == row.sha256 and b"TestCam" not in data

    asked_at = datetime.now(UTC)
    redirect = await client.get(body["url"].removeprefix("/api/v1"), headers=world.resident.headers)
    assert redirect.status_code == 302, redirect.text
    assert redirect.headers["cache-control"] == "no-store"
    location = redirect.headers["location"]
    assert location.startswith(f"{object_store.endpoint_url}/{object_store.bucket}/media/")
    signed = _signed_query(location)
    assert signed["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and signed["X-Amz-Signature"]
    # Signed now, valid for the set lifetime only (the store refuses it afterwards).
    assert signed["X-Amz-Expires"] == str(TTL)
    signed_at = datetime.strptime(signed["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((signed_at - asked_at).total_seconds()) < 60

    # A plain HTTP client, no token: the signature is the permission.
    async with httpx.AsyncClient() as outside:
        fetched = await outside.get(location)
    assert fetched.status_code == 200
    assert fetched.content == data and fetched.headers["content-type"] == "image/jpeg"


async def test_each_redirect_is_signed_afresh_and_only_after_the_access_check(
    client: httpx.AsyncClient, world: World
) -> None:
    photo = await upload_id(client, world.resident, png())
    for headers in ({}, world.other_resident.headers, world.deputy.headers, world.staff.headers):
        refused = await client.get(f"/attachments/{photo}", headers=headers)
        assert refused.status_code == 404 and "location" not in refused.headers
        assert refused.json()["code"] == "not_found"
    first = await client.get(f"/attachments/{photo}", headers=world.resident.headers)
    again = await client.get(f"/attachments/{photo}", headers=world.resident.headers)
    assert first.status_code == again.status_code == 302
    assert urlsplit(first.headers["location"]).path == urlsplit(again.headers["location"]).path


async def test_wish_photo_redirects_follow_the_wish_and_the_sweep_empties_the_bucket(
    client: httpx.AsyncClient,
    world: World,
    db: Database,
    object_store: ObjectStore,
    storage_settings: Settings,
) -> None:
    photo = await upload_id(client, world.resident, png())
    stray = await upload_id(client, world.resident, png(5, 5))
    created = await post_wish_with_photos(client, world.resident, world.station.id, [photo])
    assert created.status_code == 201, created.text
    # Pending review: the owner and staff in scope are redirected, nobody else.
    for headers, status in (
        (world.resident.headers, 302),
        (world.staff_a.headers, 302),
        (world.staff_b.headers, 404),
        (world.other_resident.headers, 404),
        ({}, 404),
    ):
        answer = await client.get(f"/attachments/{photo}", headers=headers)
        assert answer.status_code == status, headers
    approved = await client.post(
        f"/wishes/{created.json()['id']}/review",
        headers=world.staff_a.headers,
        json={"approve": True},
    )
    assert approved.status_code == 200
    # Published: anyone, without a token, and the signed URL needs none either.
    public = await client.get(f"/attachments/{photo}")
    assert public.status_code == 302
    async with httpx.AsyncClient() as outside:
        fetched = await outside.get(public.headers["location"])
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"

    async with db.transaction(write=False) as session:
        keys = {a.id: a.storage_key for a in (await session.scalars(select(Attachment))).all()}
    assert {f"media/{keys[photo]}", f"media/{keys[stray]}"} <= object_store.object_keys()
    clock.advance(timedelta(hours=storage_settings.attachment_unlinked_ttl_hours, seconds=1))
    async with db.transaction() as session:
        assert await purge_unlinked_uploads(session, utcnow(), storage_settings) == 1
    assert f"media/{keys[stray]}" not in object_store.object_keys()
    assert f"media/{keys[photo]}" in object_store.object_keys()


async def test_signed_urls_can_name_a_public_endpoint(
    client: httpx.AsyncClient, world: World, object_store: ObjectStore, app: FastAPI
) -> None:
    settings = object_store.settings(
        s3_delivery="redirect", s3_public_endpoint_url="https://oss.example.test"
    )
    app.state.storage = storage_for(settings)
    photo = await upload_id(client, world.resident, png())
    redirect = await client.get(f"/attachments/{photo}", headers=world.resident.headers)
    assert redirect.status_code == 302
    assert redirect.headers["location"].startswith(
        f"https://oss.example.test/{object_store.bucket}/media/"
    )


async def test_legacy_v2_signatures_for_stores_that_need_them(
    client: httpx.AsyncClient, world: World, object_store: ObjectStore, app: FastAPI
) -> None:
    settings = object_store.settings(
        s3_delivery="redirect", s3_signature_version="s3", s3_url_ttl_seconds=TTL
    )
    app.state.storage = storage_for(settings)
    data = png()
    photo = await upload_id(client, world.resident, data)
    asked_at = datetime.now(UTC).timestamp()
    redirect = await client.get(f"/attachments/{photo}", headers=world.resident.headers)
    assert redirect.status_code == 302
    signed = _signed_query(redirect.headers["location"])
    assert signed["Signature"] and "X-Amz-Signature" not in signed
    assert abs(int(signed["Expires"]) - (asked_at + TTL)) < 60
    async with httpx.AsyncClient() as outside:
        fetched = await outside.get(redirect.headers["location"])
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"


async def test_an_unreachable_store_answers_503_and_stores_nothing(
    client: httpx.AsyncClient, world: World, db: Database, object_store: ObjectStore, app: FastAPI
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    down = object_store.settings(s3_endpoint_url=f"http://127.0.0.1:{closed_port}")
    app.state.storage = storage_for(down)
    response = await upload(client, world.resident, png())
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "storage_unavailable"
    assert response.headers["retry-after"]
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Attachment)) == 0


def test_s3_backend_needs_a_bucket() -> None:
    with pytest.raises(ConfigError, match="S3_BUCKET"):
        make_settings(storage_backend="s3")


async def test_one_store_per_configuration(storage_settings: Settings, storage: Storage) -> None:
    assert storage_for(storage_settings) is storage
    assert "secret" not in repr(getattr(storage, "options", ""))
