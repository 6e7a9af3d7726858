"""Regions, stations and responsible units."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, Index, SQLModel

from app.core.models import created_at_field, enum_field, name_sort_field, timestamp_field
from app.core.sorting import keep_name_sort


class RegionLevel(StrEnum):
    city = "city"
    district = "district"  # 区/县
    street = "street"  # 街道/乡镇
    community = "community"  # 社区/村


class StationKind(StrEnum):
    home = "home"  # 人大代表之家
    station = "station"  # 代表联络站
    office = "office"  # 代表工作室
    legislative_point = "legislative_point"  # 基层立法联系点


class QrMode(StrEnum):
    printed = "printed"
    rotating = "rotating"
    both = "both"


class UnitKind(StrEnum):
    government = "government"  # 政府部门
    street_office = "street_office"  # 街道办事处/乡镇政府
    court = "court"  # 法院
    procuratorate = "procuratorate"  # 检察院
    other = "other"


class Region(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    name_sort: str = name_sort_field(100)
    level: RegionLevel = enum_field(length=20)
    parent_id: int | None = Field(default=None, foreign_key="region.id", index=True)
    # Materialized path "/1/4/9/": a subtree is one indexed prefix match.
    path: str = Field(default="/", max_length=255, index=True)
    created_at: datetime = created_at_field()


class Station(SQLModel, table=True):
    # Nearest-station search prefilters on a latitude/longitude bounding box.
    __table_args__ = (Index("ix_station_latitude_longitude", "latitude", "longitude"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: StationKind = enum_field(length=30, index=True)
    name: str = Field(max_length=100)
    name_sort: str = name_sort_field(100)
    region_id: int = Field(foreign_key="region.id", index=True)
    address: str | None = Field(default=None, max_length=255)
    latitude: float | None = None
    longitude: float | None = None
    radius_m: int = Field(default=300)
    phone: str | None = Field(default=None, max_length=30)
    opening_hours: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    qr_mode: QrMode = enum_field(QrMode.printed, length=20)
    # Bumped to revoke every printed code of the station at once.
    qr_version: int = Field(default=1)
    is_active: bool = Field(default=True)
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class Unit(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    name_sort: str = name_sort_field(100)
    kind: UnitKind = enum_field(UnitKind.government, length=30)
    region_id: int | None = Field(default=None, foreign_key="region.id", index=True)
    contact_name: str | None = Field(default=None, max_length=50)
    contact_phone: str | None = Field(default=None, max_length=30)
    is_active: bool = Field(default=True)
    created_at: datetime = created_at_field()


for _model in (Region, Station, Unit):
    keep_name_sort(_model)
