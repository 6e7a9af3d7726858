"""What the hotspot endpoints take and answer."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.cases.models import CaseStatus
from app.core.times import Timestamp
from app.core.types import MAX_ID
from app.hotspots.models import HotspotStatus


class HotspotSort(StrEnum):
    size = "size"  # most cases first
    recent = "recent"  # latest case first
    growth = "growth"  # most cases in the last 14 days first


class Named(BaseModel):
    id: int
    name: str
    cases: int


class HotspotPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "title": "翠苑一区东门路灯不亮",
                    "status": "active",
                    "merged_into_id": None,
                    "category": {"id": 1, "name": "市政设施", "cases": 9},
                    "case_count": 9,
                    "cases_last_14_days": 4,
                    "first_case_at": "2026-10-03T16:12:00+08:00",
                    "last_case_at": "2026-11-20T19:40:00+08:00",
                }
            ]
        }
    )

    id: int
    title: str
    status: HotspotStatus
    merged_into_id: int | None
    category: Named | None
    case_count: int
    cases_last_14_days: int
    first_case_at: Timestamp | None
    last_case_at: Timestamp | None


class WeekCount(BaseModel):
    week_start: date = Field(description="Monday of the week, Asia/Shanghai")
    cases: int


class MapPoint(BaseModel):
    case_id: int
    latitude: float
    longitude: float


class Representative(BaseModel):
    case_id: int
    number: str | None
    title: str
    excerpt: str = Field(description="The report's start, personal data masked")
    region_name: str | None
    created_at: Timestamp


class HotspotCaseRef(BaseModel):
    id: int
    number: str | None
    title: str
    status: CaseStatus
    region_id: int
    created_at: Timestamp
    pinned: bool = Field(description="Placed by staff (split or merge): regrouping keeps it")


class HotspotDetail(HotspotPublic):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "title": "翠苑一区东门路灯不亮",
                    "status": "active",
                    "merged_into_id": None,
                    "split_from_id": None,
                    "category": {"id": 1, "name": "市政设施", "cases": 9},
                    "case_count": 9,
                    "cases_last_14_days": 4,
                    "first_case_at": "2026-10-03T16:12:00+08:00",
                    "last_case_at": "2026-11-20T19:40:00+08:00",
                    "weekly": [{"week_start": "2026-11-16", "cases": 3}],
                    "points": [{"case_id": 101, "latitude": 30.2803, "longitude": 120.1321}],
                    "categories": [{"id": 1, "name": "市政设施", "cases": 9}],
                    "units": [{"id": 3, "name": "区城市管理局", "cases": 5}],
                    "regions": [{"id": 4, "name": "翠苑社区", "cases": 9}],
                    "representatives": [
                        {
                            "case_id": 101,
                            "number": "20261120-0101",
                            "title": "翠苑一区东门路灯不亮",
                            "excerpt": "东门路灯坏了一个多月，我叫王**，电话138****5678……",
                            "region_name": "翠苑社区",
                            "created_at": "2026-11-20T19:40:00+08:00",
                        }
                    ],
                    "cases": [
                        {
                            "id": 101,
                            "number": "20261120-0101",
                            "title": "翠苑一区东门路灯不亮",
                            "status": "handling",
                            "region_id": 4,
                            "created_at": "2026-11-20T19:40:00+08:00",
                            "pinned": False,
                        }
                    ],
                }
            ]
        }
    )

    split_from_id: int | None
    weekly: list[WeekCount] = Field(description="Cases per week, the last 8 weeks")
    points: list[MapPoint] = Field(description="Where the cases are, for the map (at most 500)")
    categories: list[Named]
    units: list[Named] = Field(description="Lead units of the cases")
    regions: list[Named]
    representatives: list[Representative] = Field(description="Up to 3 typical reports")
    cases: list[HotspotCaseRef] = Field(description="The cases within the caller's scope")


class HotspotSplit(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"case_ids": [101]}]})

    case_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=500)

    def distinct_ids(self) -> list[int]:
        return sorted(set(self.case_ids))


class HotspotMerge(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"into_hotspot_id": 7}]}
    )

    into_hotspot_id: int = Field(ge=1, le=MAX_ID)
