"""Workers and outbox rows for the notify tests, against the session's fake WeChat."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from app.core.db import Database
from app.notify import service
from app.notify.delivery import Deliverer
from app.notify.models import Notification, Subscription
from app.notify.worker import Sweep, Worker
from app.wechat.gateway import WeChatGateway
from tests.conftest import make_settings


@dataclass
class Harness:
    """Builds deliverers/workers and reads the outbox straight from the database."""

    db: Database
    gateways: list[WeChatGateway]

    def deliverer(self, worker_id: str | None = None, **overrides: Any) -> Deliverer:
        settings = self.settings(**overrides)
        gateway = WeChatGateway(settings, self.db, retry_backoff_seconds=0.01)
        self.gateways.append(gateway)
        return Deliverer(self.db, settings, gateway, worker_id=worker_id)

    def worker(self, sweeps: list[Sweep] | None = None, **overrides: Any) -> Worker:
        settings = self.settings(**overrides)
        gateway = WeChatGateway(settings, self.db, retry_backoff_seconds=0.01)
        self.gateways.append(gateway)
        return Worker(self.db, settings, gateway, sweeps=sweeps)

    @staticmethod
    def settings(**overrides: Any) -> Any:
        values: dict[str, Any] = {
            "wechat_max_retries": 0,
            "notify_backoff_base_seconds": 10.0,
            "notify_max_attempts": 3,
            "notify_lease_seconds": 60,
            "wechat_miniprogram_state": "trial",
        }
        values.update(overrides)
        return make_settings(**values)

    async def enqueue(
        self, recipient_id: int, event: str, key: str | None = None, **kw: Any
    ) -> int:
        async with self.db.transaction() as session:
            row = await service.enqueue(
                session,
                recipient_id=recipient_id,
                event=event,
                dedupe_key=key or f"{event}:{recipient_id}:{id(kw)}:{len(kw)}",
                title=kw.pop("title", "您的诉求有新进展"),
                body=kw.pop("body", "请点击查看详情"),
                page=kw.pop("page", None),
                params=kw.pop("params", {}),
            )
            assert row is not None and row.id is not None
            return row.id

    async def grant(self, user_id: int, template_id: str, count: int = 1) -> None:
        async with self.db.transaction() as session:
            existing = (
                await session.execute(
                    select(Subscription).where(
                        Subscription.user_id == user_id, Subscription.template_id == template_id
                    )
                )
            ).scalar_one_or_none()
            if existing is None:
                session.add(
                    Subscription(user_id=user_id, template_id=template_id, accepted_count=count)
                )
            else:
                existing.accepted_count += count

    async def count(self, user_id: int, template_id: str) -> int | None:
        async with self.db.transaction(write=False) as session:
            return (
                await session.execute(
                    select(Subscription.accepted_count).where(
                        Subscription.user_id == user_id, Subscription.template_id == template_id
                    )
                )
            ).scalar_one_or_none()

    async def row(self, notification_id: int) -> Notification:
        async with self.db.transaction(write=False) as session:
            row = await session.get(Notification, notification_id)
            assert row is not None
            return row

    async def rows(self) -> list[Notification]:
        async with self.db.transaction(write=False) as session:
            result = await session.execute(select(Notification).order_by(Notification.id))
            return list(result.scalars().all())


@pytest.fixture
async def harness(db: Database) -> AsyncIterator[Harness]:
    h = Harness(db, [])
    yield h
    for gateway in h.gateways:
        await gateway.close()


MakeHarness = Callable[..., Harness]
