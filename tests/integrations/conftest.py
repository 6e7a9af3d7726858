"""The case world plus integrators: keys are issued through the admin API, as in use."""
# ruff: noqa: F811  (the case world fixture is imported under its own name)

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.cases.conftest import World, case_body, submit, world  # noqa: F401


@dataclass
class Key:
    integrator_id: int
    id: int
    key: str
    prefix: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def make_integrator(
    client: httpx.AsyncClient, world: World, name: str = "12345 市民服务热线", **extra: Any
) -> int:
    response = await client.post(
        "/integrators",
        json={"name": name, "contact_phone": "13800001111", **extra},
        headers=world.admin.headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def issue(
    client: httpx.AsyncClient,
    world: World,
    integrator_id: int,
    scopes: list[str],
    region_id: int | None = None,
    **extra: Any,
) -> Key:
    response = await client.post(
        f"/integrators/{integrator_id}/keys",
        json={"scopes": scopes, "region_id": region_id or world.d.district.id, **extra},
        headers=world.admin.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Key(integrator_id, body["id"], body["key"], body["prefix"])


@pytest.fixture
async def hotline(client: httpx.AsyncClient, world: World) -> int:
    return await make_integrator(client, world)


@pytest.fixture
async def reader(client: httpx.AsyncClient, world: World, hotline: int) -> Key:
    """A key reading cases and statistics of street A only."""
    return await issue(client, world, hotline, ["cases:read", "stats:read"], world.d.street_a.id)
