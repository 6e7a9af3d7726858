"""Request and response bodies of regions, stations and units."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.times import Timestamp
from app.core.types import Id, Version
from app.identity.models import DeputyLevel
from app.org.models import QrMode, RegionLevel, StationKind, UnitKind
from app.presence.schemas import DutySlotPublic

# Ids and versions are 32-bit integers in PostgreSQL: larger values are refused as input.
RADIUS_MIN_M = 20
RADIUS_MAX_M = 5000


def _strip(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def edit_version() -> Any:
    """The `version` of an edit that must carry it, in the body or as If-Match (the check is
    `app.org.deps.expected_version`)."""
    return Field(
        default=None,
        description="Required, here or as If-Match: the version read (422 without either; "
        "409 `version_conflict` when stale)",
    )


# Regions ------------------------------------------------------------------------------------


class RegionCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "江城街道", "level": "street", "parent_id": 1}]}
    )

    name: str = Field(min_length=1, max_length=100)
    level: RegionLevel
    parent_id: Id | None = None


class RegionUpdate(_Body):
    """Only the fields sent change; `parent_id: null` moves the region to the top."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "江城街道", "parent_id": 2}]}
    )

    name: str | None = Field(default=None, min_length=1, max_length=100)
    level: RegionLevel | None = None
    parent_id: Id | None = None


class RegionPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 4,
                    "name": "江城街道",
                    "level": "street",
                    "parent_id": 1,
                    "path": "/1/4/",
                    "depth": 2,
                }
            ]
        },
    )

    id: int
    name: str
    level: RegionLevel
    parent_id: int | None
    path: str = Field(description='Materialized path of ids, e.g. "/1/4/9/"')
    depth: int = Field(description="1 for a top region, 2 for its children, ...")


class RegionNode(BaseModel):
    """A region with its children, for tree pickers."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "name": "示范区",
                    "level": "district",
                    "parent_id": None,
                    "path": "/1/",
                    "children": [
                        {
                            "id": 2,
                            "name": "东湖街道",
                            "level": "street",
                            "parent_id": 1,
                            "path": "/1/2/",
                            "children": [],
                        }
                    ],
                }
            ]
        }
    )

    id: int
    name: str
    level: RegionLevel
    parent_id: int | None
    path: str
    children: list[RegionNode] = Field(default_factory=list)


class RegionList(BaseModel):
    items: list[RegionPublic]
    total: int


# Stations -----------------------------------------------------------------------------------


class _StationFields(_Body):
    @field_validator("address", "phone", "opening_hours", "description", check_fields=False)
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return _strip(value)


class StationCreate(_StationFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "station",
                    "name": "江城街道代表联络站",
                    "region_id": 4,
                    "address": "江城路88号",
                    "latitude": 31.2304,
                    "longitude": 121.4737,
                    "radius_m": 300,
                    "phone": "021-12345678",
                    "opening_hours": "周一至周五 9:00-17:00",
                    "description": "每月第一个周三代表集中接待",
                    "qr_mode": "printed",
                }
            ]
        }
    )

    kind: StationKind
    name: str = Field(min_length=1, max_length=100)
    region_id: Id
    address: str | None = Field(default=None, max_length=255)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    radius_m: int = Field(
        default=300, ge=RADIUS_MIN_M, le=RADIUS_MAX_M, description="Check-in geofence radius"
    )
    phone: str | None = Field(default=None, max_length=30, pattern=r"^[0-9+\- ]{5,30}$")
    opening_hours: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    qr_mode: QrMode = QrMode.printed

    @model_validator(mode="after")
    def _both_coordinates(self) -> StationCreate:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together")
        return self


class StationUpdate(_StationFields):
    """Only the fields sent change. `version` (or an `If-Match` header) is the version read."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"version": 3, "radius_m": 500, "opening_hours": "每天"}]}
    )

    version: Version | None = edit_version()
    kind: StationKind | None = None
    name: str | None = Field(default=None, min_length=1, max_length=100)
    region_id: Id | None = None
    address: str | None = Field(default=None, max_length=255)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    radius_m: int | None = Field(default=None, ge=RADIUS_MIN_M, le=RADIUS_MAX_M)
    phone: str | None = Field(default=None, max_length=30, pattern=r"^[0-9+\- ]{5,30}$")
    opening_hours: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    qr_mode: QrMode | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _both_coordinates(self) -> StationUpdate:
        sent = self.model_fields_set
        if ("latitude" in sent) != ("longitude" in sent) or (
            "latitude" in sent and (self.latitude is None) != (self.longitude is None)
        ):
            raise ValueError("latitude and longitude go together")
        for name in ("kind", "name", "region_id", "radius_m", "qr_mode", "is_active"):
            if name in sent and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


_STATION_EXAMPLE: dict[str, Any] = {
    "id": 12,
    "kind": "station",
    "name": "江城街道代表联络站",
    "region_id": 4,
    "region_name": "江城街道",
    "address": "江城路88号",
    "latitude": 31.2304,
    "longitude": 121.4737,
    "radius_m": 300,
    "phone": "021-12345678",
    "opening_hours": "周一至周五 9:00-17:00",
    "description": "每月第一个周三代表集中接待",
    "qr_mode": "printed",
    "is_active": True,
    "version": 3,
    "distance_m": 845,
}


class StationPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_STATION_EXAMPLE]}
    )

    id: int
    kind: StationKind
    name: str
    region_id: int
    region_name: str | None = None
    address: str | None
    latitude: float | None
    longitude: float | None
    radius_m: int
    phone: str | None = Field(description="The station's public contact number")
    opening_hours: str | None
    description: str | None
    qr_mode: QrMode
    is_active: bool
    version: int
    distance_m: int | None = Field(
        default=None, description="Metres from the given lat/lng (only when they are given)"
    )


class StationDeputy(BaseModel):
    """A deputy attached to the station, as the public sees them (no phone)."""

    id: int
    name: str
    level: DeputyLevel
    title: str | None
    photo_url: str | None


class StationDetail(StationPublic):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_STATION_EXAMPLE,
                    "distance_m": None,
                    "deputies": [
                        {
                            "id": 7,
                            "name": "李明",
                            "level": "district",
                            "title": "江城街道社区卫生服务中心主任",
                            "photo_url": "https://example.com/media/deputy7.jpg",
                        }
                    ],
                    "on_duty_now": [],
                }
            ]
        }
    )

    deputies: list[StationDeputy] = Field(default_factory=list)
    on_duty_now: list[DutySlotPublic] = Field(
        default_factory=list, description="Duty slots running now, with their deputies (在岗代表)"
    )


class StationPage(BaseModel):
    items: list[StationPublic]
    total: int


# Units --------------------------------------------------------------------------------------


class UnitCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "区住房和城乡建设委员会",
                    "kind": "government",
                    "region_id": 1,
                    "contact_name": "王科长",
                    "contact_phone": "13800138000",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=100)
    kind: UnitKind = Field(default=UnitKind.government, description="Default: `government`")
    region_id: Id | None = None
    contact_name: str | None = Field(default=None, max_length=50)
    contact_phone: str | None = Field(default=None, max_length=30, pattern=r"^[0-9+\- ]{5,30}$")


class UnitPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "name": "区住房和城乡建设委员会",
                    "kind": "government",
                    "region_id": 1,
                    "contact_name": "王科长",
                    "contact_phone": "13800138000",
                    "is_active": True,
                    "created_at": "2026-03-01T16:00:00+08:00",
                }
            ]
        },
    )

    id: int
    name: str
    kind: UnitKind
    region_id: int | None
    contact_name: str | None
    contact_phone: str | None
    is_active: bool
    created_at: Timestamp


class UnitPage(BaseModel):
    items: list[UnitPublic]
    total: int
