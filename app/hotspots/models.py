"""Hotspots (热点): groups of cases about one problem, and the index that finds them.

- `Hotspot`: one problem many people raised. A merged hotspot keeps its row and points at
  the one it was merged into (`merged_into_id`), so old links redirect.
- `HotspotCase`: a case's place in the grouping: its hotspot, its weighted terms (for
  scoring), where and when. `pinned` marks a case a staff member placed by hand (split or
  merge): regrouping leaves it where it is.
- `HotspotSignature`: the inverted index, a case's few strongest terms by day, so that a new
  case looks up a bounded candidate set (the same terms, within the time window).
- `HotspotTerm`: how many grouped cases contain each term (the IDF of the weights); the row
  of term 0 counts the cases.
- `HotspotExclusion`: a case a staff member split off a hotspot never goes back into it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.core.models import created_at_field, enum_field, timestamp_field


class HotspotStatus(StrEnum):
    active = "active"
    merged = "merged"  # 已合并: see merged_into_id


class Hotspot(SQLModel, table=True):
    __table_args__ = (Index("ix_hotspot_status_count", "status", "case_count"),)

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=100)
    status: HotspotStatus = enum_field(HotspotStatus.active, length=20)
    merged_into_id: int | None = Field(default=None, foreign_key="hotspot.id")
    category_id: int | None = Field(default=None, foreign_key="case_category.id")
    region_id: int | None = Field(default=None, foreign_key="region.id")
    # Split off this hotspot by staff: the grouping never merges the two back.
    split_from_id: int | None = Field(default=None, foreign_key="hotspot.id")
    case_count: int = Field(default=0)
    # The centre (grouping.Centre): summed member weights {term: weight}, coordinates.
    terms: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    lat_sum: float = Field(default=0.0)
    lng_sum: float = Field(default=0.0)
    points: int = Field(default=0)
    first_case_at: datetime | None = timestamp_field()
    last_case_at: datetime | None = timestamp_field(index=True)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class HotspotCase(SQLModel, table=True):
    __tablename__ = "hotspot_case"
    __table_args__ = (Index("ix_hotspot_case_hotspot_created", "hotspot_id", "created_at"),)

    case_id: int = Field(foreign_key="case.id", primary_key=True, sa_type=Integer)
    hotspot_id: int = Field(foreign_key="hotspot.id")
    # {term hash (as text: JSON keys): unit weight}
    terms: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    category_id: int = Field(foreign_key="case_category.id")
    region_id: int = Field(foreign_key="region.id")
    # The case's region path ("/1/4/9/"): scope checks need no join.
    region_path: str = Field(max_length=255, index=True)
    latitude: float | None = None
    longitude: float | None = None
    created_at: datetime = created_at_field()
    pinned: bool = Field(default=False)
    grouped_at: datetime = created_at_field()


class HotspotSignature(SQLModel, table=True):
    __tablename__ = "hotspot_signature"

    term: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    # Days since 1970-01-01 of the case's creation: the time window is an index range.
    day: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    case_id: int = Field(
        sa_column=Column(Integer, primary_key=True, autoincrement=False, index=True)
    )
    weight: float


class HotspotTerm(SQLModel, table=True):
    __tablename__ = "hotspot_term"

    term: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    df: int = Field(default=0)


class HotspotExclusion(SQLModel, table=True):
    __tablename__ = "hotspot_exclusion"
    __table_args__ = (UniqueConstraint("case_id", "hotspot_id"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    hotspot_id: int = Field(foreign_key="hotspot.id")
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = created_at_field()
