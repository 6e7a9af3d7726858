"""Where the one WeChat access token of an appid lives, shared by every process.

In the database (`wechat_access_token`) by default, or in Redis when `REDIS_URL` is set.
Processes read it; one renews it when it is missing, near expiry or rejected by WeChat. The
renewer first takes a short lease (a conditional UPDATE in the database, `SET NX PX` in
Redis), so of many processes that find the token stale at once, one calls WeChat and the
others wait for the new token to appear. WeChat is never called inside a transaction.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from app.core.clock import utcnow
from app.core.db import Database
from app.wechat.models import WeChatAccessToken
from app.wechat.types import WeChatUnavailable

# Renew the token this long before it expires: stable_token hands out the next token in
# the last five minutes of the current one, and the old one stays valid meanwhile.
TOKEN_RENEW_MARGIN = timedelta(minutes=5)

Fetch = Callable[[bool], Awaitable[tuple[str, int]]]
"""fetch(force_refresh) → (access_token, expires_in seconds), from WeChat's stable_token."""


@dataclass(frozen=True, slots=True)
class StoredToken:
    token: str
    expires_at: datetime

    def fresh(self) -> bool:
        return bool(self.token) and self.expires_at - utcnow() > TOKEN_RENEW_MARGIN


class TokenStore:
    """The renewal protocol; subclasses say where the token and the lease live.

    Each process keeps the token it last saw in memory and uses it until it nears expiry, so
    a WeChat call costs no database (or Redis) round trip; the shared store is read and
    written only when the token changes: missing, near expiry, or rejected by WeChat (whoever
    is rejected first reads the store and finds the token another process renewed, or renews
    it). One asyncio lock per process makes concurrent callers that find no usable token wait
    for one read instead of each reading the store: it only awaits, never blocks the loop.
    """

    POLL_SECONDS = 0.05

    def __init__(self, appid: str, fetch: Fetch, lease: timedelta) -> None:
        self.appid = appid
        self._fetch = fetch
        self.lease = lease
        self.fetches = 0  # WeChat calls made by this store (for tests and diagnostics)
        self._cached: StoredToken | None = None
        self._lock = asyncio.Lock()

    def _usable(self, rejected: str | None = None) -> str | None:
        cached = self._cached
        if cached is not None and cached.token != rejected and cached.fresh():
            return cached.token
        return None

    async def get(self) -> str:
        token = self._usable()
        if token is not None:
            return token
        async with self._lock:
            token = self._usable()
            if token is not None:
                return token
            stored = await self._read()
            if stored is not None and stored.fresh():
                self._cached = stored
                return stored.token
            return await self._renew(stale=stored.token if stored else None, force=False)

    async def renew(self, rejected: str | None) -> str:
        """WeChat rejected `rejected`: answer the next token, force-refreshing it at most once
        across processes (whoever still finds `rejected` stored does it)."""
        async with self._lock:
            token = self._usable(rejected)
            if token is not None:
                return token  # renewed by a concurrent caller of this process
            self._cached = None
            return await self._renew(stale=rejected, force=True)

    async def _renew(self, *, stale: str | None, force: bool) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2 * self.lease.total_seconds()
        while True:
            stored = await self._read()
            if stored is not None and stored.token != stale and stored.fresh():
                self._cached = stored  # someone else renewed it meanwhile
                return stored.token
            if await self._take_lease(stored):
                break
            if loop.time() > deadline:
                raise WeChatUnavailable(None, "access token renewal did not finish in time")
            await asyncio.sleep(self.POLL_SECONDS)
        try:
            self.fetches += 1
            token, expires_in = await self._fetch(force)
        except BaseException:
            await self._release_lease()
            raise
        fresh = StoredToken(token, utcnow() + timedelta(seconds=expires_in))
        await self._store(fresh)
        self._cached = fresh
        return token

    async def _read(self) -> StoredToken | None:
        raise NotImplementedError

    async def _take_lease(self, seen: StoredToken | None) -> bool:
        """Take the renewal lease if nobody holds it and the token is still `seen`."""
        raise NotImplementedError

    async def _store(self, token: StoredToken) -> None:
        """Store the new token and release the lease."""
        raise NotImplementedError

    async def _release_lease(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class DatabaseTokenStore(TokenStore):
    """The token in the `wechat_access_token` row of its appid."""

    def __init__(self, db: Database, appid: str, fetch: Fetch, lease: timedelta) -> None:
        super().__init__(appid, fetch, lease)
        self.db = db
        self._table: Any = WeChatAccessToken.__table__  # type: ignore[attr-defined]

    async def _read(self) -> StoredToken | None:
        async with self.db.transaction(write=False) as session:
            result = await session.execute(
                select(self._table.c.token, self._table.c.expires_at).where(
                    self._table.c.appid == self.appid
                )
            )
            row = result.first()
        if row is None:
            return None
        expires_at = row.expires_at
        if expires_at.tzinfo is None:  # SQLite through Core keeps no offset
            expires_at = expires_at.replace(tzinfo=UTC)
        return StoredToken(row.token, expires_at)

    async def _take_lease(self, seen: StoredToken | None) -> bool:
        now = utcnow()
        table = self._table
        if seen is None:
            try:
                async with self.db.transaction() as session:
                    await session.execute(
                        insert(table).values(
                            appid=self.appid,
                            token="",
                            expires_at=now,
                            refresh_lease_until=now + self.lease,
                            updated_at=now,
                        )
                    )
            except IntegrityError:
                return False  # another process created it first
            return True
        async with self.db.transaction() as session:
            result = await session.execute(
                update(table)
                .where(
                    table.c.appid == self.appid,
                    table.c.token == seen.token,
                    (table.c.refresh_lease_until.is_(None)) | (table.c.refresh_lease_until < now),
                )
                .values(refresh_lease_until=now + self.lease)
            )
            return result.rowcount == 1  # type: ignore[attr-defined]

    async def _store(self, token: StoredToken) -> None:
        await self._update(
            token=token.token,
            expires_at=token.expires_at,
            refresh_lease_until=None,
            updated_at=utcnow(),
        )

    async def _release_lease(self) -> None:
        await self._update(refresh_lease_until=None)

    async def _update(self, **values: Any) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(self._table).where(self._table.c.appid == self.appid).values(**values)
            )


# Deletes the lease only if it is still ours (it may have expired and been taken over).
_RELEASE_LEASE = """
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
"""


class RedisTokenStore(TokenStore):
    """The token under `wechat:access_token:<appid>` (expiring with it), the lease under
    `wechat:access_token:<appid>:lease` (`SET NX PX`)."""

    def __init__(self, redis_url: str, appid: str, fetch: Fetch, lease: timedelta) -> None:
        super().__init__(appid, fetch, lease)
        from redis.asyncio import Redis  # only a deployment that sets REDIS_URL needs it

        self.redis: Any = Redis.from_url(redis_url, decode_responses=True)
        self.key = f"wechat:access_token:{appid}"
        self.lease_key = f"{self.key}:lease"
        self._lease_id = ""

    async def _read(self) -> StoredToken | None:
        value = await self.redis.hgetall(self.key)
        if not value or "token" not in value:
            return None
        return StoredToken(value["token"], datetime.fromtimestamp(float(value["expires_at"]), UTC))

    async def _take_lease(self, seen: StoredToken | None) -> bool:
        lease_id = secrets.token_hex(8)
        taken = await self.redis.set(
            self.lease_key, lease_id, nx=True, px=int(self.lease.total_seconds() * 1000)
        )
        if not taken:
            return False
        current = await self._read()
        if (current.token if current else None) != (seen.token if seen else None):
            # Renewed between our read and the lease: let the caller read it again.
            await self.redis.eval(_RELEASE_LEASE, 1, self.lease_key, lease_id)
            return False
        self._lease_id = lease_id
        return True

    async def _store(self, token: StoredToken) -> None:
        ttl = max(1, int((token.expires_at - utcnow()).total_seconds()))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self.key,
                mapping={"token": token.token, "expires_at": str(token.expires_at.timestamp())},
            )
            pipe.expire(self.key, ttl)
            await pipe.execute()
        await self._release_lease()

    async def _release_lease(self) -> None:
        await self.redis.eval(_RELEASE_LEASE, 1, self.lease_key, self._lease_id)

    async def close(self) -> None:
        await self.redis.aclose()
