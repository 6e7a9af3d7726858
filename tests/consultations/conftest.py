"""The activity tests' district plus a legislative contact point in street A."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.org.models import Station, StationKind
from tests.activities.conftest import World
from tests.activities.conftest import world as activities_world  # noqa: F401
from tests.factories import Factory


@dataclass
class Point:
    world: World
    point: Station  # 甲街道基层立法联系点
    point_b: Station  # in street B


@pytest.fixture
async def point(activities_world: World, factory: Factory) -> Point:  # noqa: F811
    d = activities_world.district
    return Point(
        world=activities_world,
        point=await factory.station(
            d.community_a, kind=StationKind.legislative_point, name="甲街道基层立法联系点"
        ),
        point_b=await factory.station(
            d.community_b, kind=StationKind.legislative_point, name="乙街道基层立法联系点"
        ),
    )
