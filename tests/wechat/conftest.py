"""Gateways built for one test, against the session's fake WeChat and database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.core.db import Database
from app.wechat.gateway import WeChatGateway
from tests.conftest import make_settings

MakeGateway = Callable[..., WeChatGateway]


@pytest.fixture
async def make_gateway(db: Database) -> AsyncIterator[MakeGateway]:
    """make_gateway(**setting overrides) → a gateway over the test database, with a short
    backoff so retries do not slow the suite."""
    made: list[WeChatGateway] = []

    def make(**overrides: Any) -> WeChatGateway:
        gateway = WeChatGateway(make_settings(**overrides), db, retry_backoff_seconds=0.01)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.close()


@pytest.fixture
def gateway(make_gateway: MakeGateway) -> WeChatGateway:
    return make_gateway()
