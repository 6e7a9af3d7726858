"""With REDIS_URL set, the access token is shared through Redis instead of the database.

Runs against a throw-away redis-server on 127.0.0.1 when the binary is installed (or against
TEST_REDIS_URL); skipped otherwise, since nothing in the service requires Redis.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlmodel import select

from app.core.db import Database
from app.wechat.fake_server import FakeWeChat
from app.wechat.models import WeChatAccessToken
from app.wechat.token_store import RedisTokenStore
from tests.conftest import WECHAT_APPID
from tests.wechat.conftest import MakeGateway

redis_asyncio = pytest.importorskip("redis.asyncio")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server installed and no TEST_REDIS_URL")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.skip("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def redis_gateways(redis_url: str, make_gateway: MakeGateway) -> AsyncIterator[MakeGateway]:
    client = redis_asyncio.Redis.from_url(redis_url)
    await client.flushdb()
    yield lambda **overrides: make_gateway(redis_url=redis_url, **overrides)
    await client.flushdb()
    await client.aclose()


async def _db_rows(db: Database) -> list[WeChatAccessToken]:
    async with db.transaction(write=False) as session:
        return list((await session.execute(select(WeChatAccessToken))).scalars().all())


async def test_gateways_share_one_token_through_redis(
    redis_gateways: MakeGateway, fake_wechat: FakeWeChat, db: Database
) -> None:
    gateways = [redis_gateways() for _ in range(3)]
    assert all(isinstance(g.tokens, RedisTokenStore) for g in gateways)
    results = await asyncio.gather(
        *(gateways[n % 3].msg_sec_check(openid="o1", content=str(n), scene=1) for n in range(15))
    )
    assert [r.suggest for r in results] == ["pass"] * 15
    assert len(fake_wechat.received("stable_token")) == 1
    used = {r.query["access_token"] for r in fake_wechat.received("msg_sec_check")}
    assert len(used) == 1
    assert await gateways[0].tokens.get() == used.pop()
    assert await _db_rows(db) == []  # Redis holds it, not the database


async def test_a_token_in_redis_is_reused(
    redis_gateways: MakeGateway, redis_url: str, fake_wechat: FakeWeChat
) -> None:
    token, expires_at = fake_wechat.mint_token(WECHAT_APPID)
    client = redis_asyncio.Redis.from_url(redis_url, decode_responses=True)
    await client.hset(
        f"wechat:access_token:{WECHAT_APPID}",
        mapping={"token": token, "expires_at": str(expires_at.timestamp())},
    )
    await client.aclose()
    gateway = redis_gateways()
    await gateway.msg_sec_check(openid="o1", content="a", scene=1)
    assert fake_wechat.received("stable_token") == []
    assert fake_wechat.received("msg_sec_check")[0].query["access_token"] == token


async def test_rejections_force_one_refresh_through_redis(
    redis_gateways: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    gateways = [redis_gateways() for _ in range(2)]
    await gateways[0].msg_sec_check(openid="o1", content="warm", scene=1)
    old = await gateways[1].tokens.get()
    fake_wechat.invalidate_tokens()
    await asyncio.gather(
        *(gateways[n % 2].msg_sec_check(openid="o1", content=str(n), scene=1) for n in range(10))
    )
    forced = [r for r in fake_wechat.received("stable_token") if r.body["force_refresh"]]
    assert len(forced) == 1
    assert await gateways[0].tokens.get() != old


async def test_failed_fetch_releases_the_redis_lease(
    redis_gateways: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    gateway = redis_gateways()
    fake_wechat.fail("stable_token", 40013)
    with pytest.raises(Exception) as caught:
        await gateway.msg_sec_check(openid="o1", content="a", scene=1)
    assert getattr(caught.value, "errcode", None) == 40013
    assert (await gateway.msg_sec_check(openid="o1", content="a", scene=1)).suggest == "pass"
    assert len(fake_wechat.received("stable_token")) == 2
