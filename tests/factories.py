"""Rows the tests stand on, written straight to the database, and tokens for each role.

Only setup goes around the API; everything a test asserts goes through HTTP.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from app.core.config import Settings
from app.core.db import Database
from app.core.security import Principal, Role, create_access_token
from app.identity.models import Deputy, DeputyLevel, DeputyStation, User
from app.org.models import Region, RegionLevel, Station, StationKind, Unit

_seq = itertools.count(1)


@dataclass
class Actor:
    """A user with a ready access token."""

    user: User
    token: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> int:
        assert self.user.id is not None
        return self.user.id

    @property
    def deputy_id(self) -> int | None:
        return self.user.deputy_id


@dataclass
class District:
    """A small region tree: district → two streets → one community each."""

    district: Region
    street_a: Region
    street_b: Region
    community_a: Region
    community_b: Region


class Factory:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def add(self, obj: Any) -> Any:
        async with self.db.transaction() as session:
            session.add(obj)
            await session.flush()
            await session.refresh(obj)
        return obj

    async def region(self, name: str, level: RegionLevel, parent: Region | None = None) -> Region:
        region = await self.add(
            Region(name=name, level=level, parent_id=parent.id if parent else None)
        )
        region.path = f"{parent.path if parent else '/'}{region.id}/"
        return await self.add(region)  # type: ignore[no-any-return]

    async def district(self, name: str = "示例区") -> District:
        district = await self.region(name, RegionLevel.district)
        street_a = await self.region(f"{name}甲街道", RegionLevel.street, district)
        street_b = await self.region(f"{name}乙街道", RegionLevel.street, district)
        community_a = await self.region(f"{name}甲社区", RegionLevel.community, street_a)
        community_b = await self.region(f"{name}乙社区", RegionLevel.community, street_b)
        return District(district, street_a, street_b, community_a, community_b)

    async def station(
        self,
        region: Region,
        *,
        kind: StationKind = StationKind.station,
        latitude: float | None = 31.2304,
        longitude: float | None = 121.4737,
        radius_m: int = 300,
        **extra: Any,
    ) -> Station:
        return await self.add(  # type: ignore[no-any-return]
            Station(
                kind=kind,
                name=extra.pop("name", f"联络站{next(_seq)}"),
                region_id=region.id,
                latitude=latitude,
                longitude=longitude,
                radius_m=radius_m,
                **extra,
            )
        )

    async def unit(self, name: str | None = None, region: Region | None = None) -> Unit:
        return await self.add(  # type: ignore[no-any-return]
            Unit(name=name or f"承办单位{next(_seq)}", region_id=region.id if region else None)
        )

    async def deputy(
        self, region: Region | None = None, station: Station | None = None, **extra: Any
    ) -> Deputy:
        deputy = await self.add(
            Deputy(
                name=extra.pop("name", f"代表{next(_seq)}"),
                level=extra.pop("level", DeputyLevel.district),
                region_id=region.id if region else None,
                **extra,
            )
        )
        if station is not None:
            await self.add(DeputyStation(deputy_id=deputy.id, station_id=station.id))
        return deputy  # type: ignore[no-any-return]

    def token_for(self, user: User) -> str:
        assert user.id is not None
        principal = Principal(
            user_id=user.id,
            role=Role(user.role),
            region_id=user.region_id,
            unit_id=user.unit_id,
            deputy_id=user.deputy_id,
        )
        return create_access_token(principal, self.settings)

    async def actor(self, role: Role, **fields: Any) -> Actor:
        n = next(_seq)
        if role in (Role.resident, Role.deputy):
            fields.setdefault("openid", f"openid-{role.value}-{n}")
            fields.setdefault("nickname", f"{role.value}{n}")
        else:
            fields.setdefault("username", f"{role.value}{n}")
        user = await self.add(User(role=role, **fields))
        token = self.token_for(user)
        return Actor(user=user, token=token, headers={"Authorization": f"Bearer {token}"})

    async def resident(self, **fields: Any) -> Actor:
        return await self.actor(Role.resident, **fields)

    async def deputy_actor(self, deputy: Deputy | None = None, **fields: Any) -> Actor:
        deputy = deputy or await self.deputy()
        return await self.actor(Role.deputy, deputy_id=deputy.id, **fields)

    async def staff(self, region: Region, **fields: Any) -> Actor:
        return await self.actor(Role.staff, region_id=region.id, **fields)

    async def admin(self, **fields: Any) -> Actor:
        return await self.actor(Role.admin, **fields)

    async def unit_handler(self, unit: Unit, **fields: Any) -> Actor:
        return await self.actor(Role.unit, unit_id=unit.id, **fields)
