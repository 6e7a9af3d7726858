"""The attachment tests stand on the same people and places as the wish tests, and run twice:
on local disk and on a real S3-protocol server (moto), serving photos through the API
(`proxy`) — `test_object_store.py` covers the redirect to signed URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.storage import Storage, storage_for
from tests.object_store import OBJECT_STORE, ObjectStore
from tests.wishes.conftest import world  # noqa: F401


@pytest.fixture(scope="session")
def object_store() -> Iterator[ObjectStore]:
    OBJECT_STORE.start()
    yield OBJECT_STORE
    OBJECT_STORE.stop()


@pytest.fixture(params=["local", "s3"])
def storage_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The settings whose storage the app uses in this test (the sweeps take them too)."""
    if request.param == "local":
        return settings
    store: ObjectStore = request.getfixturevalue("object_store")
    return store.settings()


@pytest.fixture(autouse=True)
async def storage(app: FastAPI, storage_settings: Settings) -> AsyncIterator[Storage]:
    storage = storage_for(storage_settings)
    app.state.storage = storage
    yield storage
    app.state.storage = None
