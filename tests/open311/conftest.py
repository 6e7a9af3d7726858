"""A real uvicorn server on 127.0.0.1 over the test database, for GeoReport v2 clients
(georeport speaks blocking HTTP through `requests`)."""

# ruff: noqa: F811  (fixtures imported under their own names)
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from app.core.config import Settings
from app.main import create_app
from tests.cases.conftest import World, world  # noqa: F401
from tests.integrations.conftest import hotline, reader  # noqa: F401

JURISDICTION = "shifan.example.gov.cn"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    # The server's OPEN311_JURISDICTIONS (the same dict object): tests name their district.
    jurisdictions: dict[str, int]

    @property
    def open311(self) -> str:
        return f"{self.base_url}/open311/v2"


@pytest.fixture(scope="module")
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The API in a thread of its own (its own engine and event loop) on the database the
    tests write their world into."""
    jurisdictions: dict[str, int] = {}
    app = create_app(settings.model_copy(update={"open311_jurisdictions": jurisdictions}))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("live server did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", app.state.settings.open311_jurisdictions)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def live(live_server: LiveServer, world: World) -> Iterator[LiveServer]:
    live_server.jurisdictions.clear()
    live_server.jurisdictions[JURISDICTION] = world.d.district.id or 0
    yield live_server
    live_server.jurisdictions.clear()
