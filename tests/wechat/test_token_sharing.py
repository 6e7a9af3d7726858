"""The access token is one per appid, shared by every process through the database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import select

from app.core.clock import clock, utcnow
from app.core.db import Database
from app.wechat.fake_server import FakeWeChat, FakeWeChatServer
from app.wechat.models import WeChatAccessToken
from app.wechat.token_store import TOKEN_RENEW_MARGIN
from tests.conftest import WECHAT_APPID, WECHAT_SECRET
from tests.statements import counting
from tests.wechat.conftest import MakeGateway


async def _stored(db: Database) -> WeChatAccessToken | None:
    async with db.transaction(write=False) as session:
        return (
            (
                await session.execute(
                    select(WeChatAccessToken).where(WeChatAccessToken.appid == WECHAT_APPID)
                )
            )
            .scalars()
            .first()
        )


async def _used_tokens(fake: FakeWeChat) -> set[str]:
    return {r.query["access_token"] for r in fake.received("msg_sec_check")}


async def test_two_gateways_share_one_token(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat, db: Database
) -> None:
    first, second = make_gateway(), make_gateway()
    await first.msg_sec_check(openid="o1", content="a", scene=1)
    await second.msg_sec_check(openid="o1", content="b", scene=1)

    assert len(fake_wechat.received("stable_token")) == 1
    assert (first.tokens.fetches, second.tokens.fetches) == (1, 0)
    row = await _stored(db)
    assert row is not None and row.refresh_lease_until is None
    assert await _used_tokens(fake_wechat) == {row.token}
    assert row.expires_at - utcnow() > timedelta(hours=1)


async def test_a_token_in_the_database_is_reused(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat, db: Database
) -> None:
    token, expires_at = fake_wechat.mint_token(WECHAT_APPID)
    async with db.transaction() as session:
        session.add(WeChatAccessToken(appid=WECHAT_APPID, token=token, expires_at=expires_at))
    gateway = make_gateway()
    for n in range(3):
        await gateway.msg_sec_check(openid="o1", content=str(n), scene=1)
    assert fake_wechat.received("stable_token") == []
    assert await _used_tokens(fake_wechat) == {token}


async def test_many_concurrent_calls_fetch_one_token(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    gateways = [make_gateway() for _ in range(3)]
    results = await asyncio.gather(
        *(
            gateways[n % 3].msg_sec_check(openid="o1", content=f"text {n}", scene=1)
            for n in range(24)
        )
    )
    assert [r.suggest for r in results] == ["pass"] * 24
    assert len(fake_wechat.received("stable_token")) == 1
    assert len(await _used_tokens(fake_wechat)) == 1


async def test_many_concurrent_rejections_force_one_refresh(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat, db: Database
) -> None:
    gateways = [make_gateway() for _ in range(3)]
    await gateways[0].msg_sec_check(openid="o1", content="warm", scene=1)
    old = (await _stored(db)).token  # type: ignore[union-attr]
    fake_wechat.invalidate_tokens()

    results = await asyncio.gather(
        *(
            gateways[n % 3].msg_sec_check(openid="o1", content=f"text {n}", scene=1)
            for n in range(18)
        )
    )
    assert len(results) == 18
    forced = [r for r in fake_wechat.received("stable_token") if r.body["force_refresh"]]
    assert len(forced) == 1
    new = (await _stored(db)).token  # type: ignore[union-attr]
    assert new != old
    ok_tokens = {r.query["access_token"] for r in fake_wechat.received("msg_sec_check")}
    assert ok_tokens <= {old, new}


async def test_token_near_expiry_is_renewed_without_force(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat, db: Database
) -> None:
    gateway = make_gateway()
    await gateway.msg_sec_check(openid="o1", content="a", scene=1)
    first = await _stored(db)
    assert first is not None

    clock.advance(first.expires_at - utcnow() - TOKEN_RENEW_MARGIN + timedelta(seconds=10))
    await gateway.msg_sec_check(openid="o1", content="b", scene=1)
    second = await _stored(db)
    assert second is not None and second.token != first.token
    assert second.expires_at > first.expires_at
    assert [r.body["force_refresh"] for r in fake_wechat.received("stable_token")] == [
        False,
        False,
    ]


async def test_expired_token_in_the_database_is_replaced(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat, db: Database
) -> None:
    async with db.transaction() as session:
        session.add(
            WeChatAccessToken(appid=WECHAT_APPID, token="stale", expires_at=utcnow() - timedelta(1))
        )
    gateway = make_gateway()
    await gateway.msg_sec_check(openid="o1", content="a", scene=1)
    row = await _stored(db)
    assert row is not None and row.token != "stale"
    assert await _used_tokens(fake_wechat) == {row.token}


async def test_a_failed_fetch_leaves_no_lease_behind(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat, db: Database
) -> None:
    gateway = make_gateway()
    fake_wechat.fail("stable_token", 40013)
    try:
        await gateway.msg_sec_check(openid="o1", content="a", scene=1)
    except Exception as exc:
        assert getattr(exc, "errcode", None) == 40013
    else:
        raise AssertionError("the token fetch should have failed")
    row = await _stored(db)
    assert row is not None and row.refresh_lease_until is None and row.token == ""
    other = make_gateway()
    assert (await other.msg_sec_check(openid="o1", content="a", scene=1)).suggest == "pass"


async def test_another_fake_instance_accepts_the_shared_token(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat
) -> None:
    """A worker process in development runs its own fake; the token the API process stored
    (minted by another instance with the same appid and secret) still works there."""
    api_side = make_gateway()
    await api_side.msg_sec_check(openid="o1", content="a", scene=1)

    other = FakeWeChatServer(FakeWeChat({WECHAT_APPID: WECHAT_SECRET}))
    url = other.start()
    try:
        worker_side = make_gateway(wechat_api_base_url=url)
        result = await worker_side.msg_sec_check(openid="o1", content="诈骗", scene=1)
        assert result.suggest == "risky"
        assert other.fake.received("stable_token") == []
        assert len(other.fake.received("msg_sec_check")) == 1
    finally:
        other.stop()
    forged = FakeWeChat({WECHAT_APPID: "another-secret"})
    token = fake_wechat.received("msg_sec_check")[0].query["access_token"]
    assert fake_wechat.token_appid(token) == WECHAT_APPID
    assert forged.token_appid(token) is None


async def test_a_cached_token_costs_no_database_round_trip(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat, db: Database
) -> None:
    gateway = make_gateway()
    await gateway.msg_sec_check(openid="o1", content="warm", scene=1)
    clock.advance(timedelta(minutes=30))  # far past any short cache, still far from expiry
    with counting(db) as tally:
        for n in range(5):
            await gateway.msg_sec_check(openid="o1", content=str(n), scene=1)
    assert tally.round_trips == 0, tally.describe()
    assert len(fake_wechat.received("stable_token")) == 1


async def test_a_token_renewed_elsewhere_is_read_when_the_cached_one_is_rejected(
    make_gateway: MakeGateway, fake_wechat: FakeWeChat, db: Database
) -> None:
    first, second = make_gateway(), make_gateway()
    await first.msg_sec_check(openid="o1", content="warm", scene=1)
    old = (await _stored(db)).token  # type: ignore[union-attr]
    fake_wechat.invalidate_tokens()
    await second.msg_sec_check(openid="o1", content="renews", scene=1)
    new = (await _stored(db)).token  # type: ignore[union-attr]
    assert new != old and second.tokens.fetches == 1

    # The first process still holds the old token: WeChat refuses it once, and the first
    # process takes the one the second stored instead of forcing another refresh.
    await first.msg_sec_check(openid="o1", content="after", scene=1)
    assert first.tokens.fetches == 1
    assert [r.body["force_refresh"] for r in fake_wechat.received("stable_token")] == [
        False,
        True,
    ]
    assert fake_wechat.received("msg_sec_check")[-1].query["access_token"] == new
