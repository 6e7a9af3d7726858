"""Rows of the other domains written with exact timestamps, so every figure the dashboard
computes can be checked against what the test made."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from app.cases.models import Case, CaseCategory, CaseFollow, CaseStatus
from app.core.clock import SHANGHAI
from app.org.models import Region, Station
from app.presence.models import CheckIn, DutyAssignment, DutySlot, Reception
from app.wishes.models import Wish, WishStatus
from tests.factories import Factory

_seq = itertools.count(1)


def sh(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A moment given in Asia/Shanghai wall time, as an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


class Rows:
    def __init__(self, factory: Factory) -> None:
        self.f = factory
        self._submitter: int | None = None

    async def category(self, name: str | None = None) -> CaseCategory:
        n = next(_seq)
        return await self.f.add(CaseCategory(code=f"cat{n}", name=name or f"类别{n}"))  # type: ignore[no-any-return]

    async def submitter(self) -> int:
        if self._submitter is None:
            self._submitter = (await self.f.resident()).id
        return self._submitter

    async def case(
        self,
        region: Region,
        category: CaseCategory,
        *,
        created: datetime,
        status: CaseStatus = CaseStatus.registered,
        **fields: Any,
    ) -> Case:
        submitter_id = fields.pop("submitter_id", None) or await self.submitter()
        return await self.f.add(  # type: ignore[no-any-return]
            Case(
                title=fields.pop("title", f"问题{next(_seq)}"),
                content="内容",
                category_id=category.id,
                region_id=region.id,
                status=status,
                submitter_id=submitter_id,
                owner_id=fields.pop("owner_id", submitter_id),
                created_at=created,
                **fields,
            )
        )

    async def follow(self, case: Case, deputy_user_id: int, deputy_id: int, at: datetime) -> None:
        await self.f.add(
            CaseFollow(case_id=case.id, user_id=deputy_user_id, deputy_id=deputy_id, created_at=at)
        )

    async def wish(
        self,
        region: Region,
        *,
        created: datetime,
        status: WishStatus = WishStatus.pending_review,
        **fields: Any,
    ) -> Wish:
        resident_id = fields.pop("resident_id", None) or await self.submitter()
        return await self.f.add(  # type: ignore[no-any-return]
            Wish(
                resident_id=resident_id,
                title=fields.pop("title", f"心愿{next(_seq)}"),
                content="原因",
                beneficiary_name="小明",
                region_id=region.id,
                status=status,
                created_at=created,
                **fields,
            )
        )

    async def checkin(
        self,
        deputy_id: int,
        station: Station,
        start: datetime,
        hours: float | None,
        *,
        auto: bool = False,
        slot: DutySlot | None = None,
    ) -> CheckIn:
        return await self.f.add(  # type: ignore[no-any-return]
            CheckIn(
                deputy_id=deputy_id,
                station_id=station.id,
                checked_in_at=start,
                checked_out_at=start + timedelta(hours=hours) if hours is not None else None,
                auto_closed=auto,
                close_reason="auto" if auto else ("scan" if hours is not None else None),
                latitude=31.23,
                longitude=121.47,
                duty_slot_id=slot.id if slot else None,
            )
        )

    async def slot(
        self, station: Station, start: datetime, hours: float, *deputy_ids: int
    ) -> DutySlot:
        slot = await self.f.add(
            DutySlot(
                station_id=station.id,
                day=start.astimezone(SHANGHAI).date(),
                starts_at=start,
                ends_at=start + timedelta(hours=hours),
            )
        )
        for deputy_id in deputy_ids:
            await self.f.add(DutyAssignment(slot_id=slot.id, deputy_id=deputy_id))
        return slot  # type: ignore[no-any-return]

    async def reception(
        self, deputy_id: int, station: Station, at: datetime, created_by: int, **fields: Any
    ) -> Reception:
        return await self.f.add(  # type: ignore[no-any-return]
            Reception(
                station_id=station.id,
                deputy_id=deputy_id,
                topic=fields.pop("topic", "停车难"),
                content="居民反映小区停车难",
                received_at=at,
                created_by_user_id=created_by,
                **fields,
            )
        )
