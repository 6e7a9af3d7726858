"""Accounts, refresh tokens, the deputy roster and deputy binding codes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel, UniqueConstraint

from app.core.models import created_at_field, enum_field, name_sort_field, timestamp_field
from app.core.security import Role
from app.core.sorting import keep_name_sort


class DeputyLevel(StrEnum):
    national = "national"  # 全国人大代表
    provincial = "provincial"  # 省级
    city = "city"  # 市级
    district = "district"  # 区县级
    township = "township"  # 乡镇级


class User(SQLModel, table=True):
    """An account. Residents and deputies log in with WeChat; staff, unit handlers and admins
    with a password."""

    id: int | None = Field(default=None, primary_key=True)
    role: Role = enum_field(Role.resident, length=20, index=True)
    openid: str | None = Field(default=None, max_length=64, unique=True)
    unionid: str | None = Field(default=None, max_length=64, index=True)
    username: str | None = Field(default=None, max_length=64, unique=True)
    password_hash: str | None = Field(default=None, max_length=255)
    nickname: str | None = Field(default=None, max_length=64)
    avatar_url: str | None = Field(default=None, max_length=500)
    phone: str | None = Field(default=None, max_length=20, index=True)
    phone_verified_at: datetime | None = timestamp_field()
    region_id: int | None = Field(default=None, foreign_key="region.id", index=True)
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    deputy_id: int | None = Field(default=None, foreign_key="deputy.id", unique=True)
    is_active: bool = Field(default=True)
    failed_login_count: int = Field(default=0)
    locked_until: datetime | None = timestamp_field()
    last_login_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class RefreshToken(SQLModel, table=True):
    """One refresh token of a rotation family. Reusing a spent one revokes the family."""

    __tablename__ = "refresh_token"

    id: str = Field(primary_key=True, max_length=64)  # sha256 of the token
    user_id: int = Field(foreign_key="user.id", index=True)
    family_id: str = Field(max_length=64, index=True)
    expires_at: datetime = timestamp_field(nullable=False)
    used_at: datetime | None = timestamp_field()
    revoked_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()


class Deputy(SQLModel, table=True):
    """A deputy (人大代表) on the roster that staff maintain."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=50)
    name_sort: str = name_sort_field(50)
    level: DeputyLevel = enum_field(length=20)
    title: str | None = Field(default=None, max_length=100)  # 职务/工作单位
    gender: str | None = Field(default=None, max_length=10)
    # Unique: the roster import and binding by verified phone match deputies by it.
    phone: str | None = Field(default=None, max_length=20, unique=True)
    region_id: int | None = Field(default=None, foreign_key="region.id", index=True)
    photo_url: str | None = Field(default=None, max_length=500)
    bio: str | None = Field(default=None, max_length=2000)
    term: str | None = Field(default=None, max_length=50)  # 届次
    is_active: bool = Field(default=True)
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


keep_name_sort(Deputy)


class DeputyStation(SQLModel, table=True):
    """A deputy attached to a station (进站代表)."""

    __tablename__ = "deputy_station"

    __table_args__ = (UniqueConstraint("deputy_id", "station_id"),)

    id: int | None = Field(default=None, primary_key=True)
    deputy_id: int = Field(foreign_key="deputy.id", index=True)
    station_id: int = Field(foreign_key="station.id", index=True)


class DeputyBindingCode(SQLModel, table=True):
    """A one-time, expiring code that binds a WeChat account to a deputy. Stored hashed."""

    __tablename__ = "deputy_binding_code"

    id: int | None = Field(default=None, primary_key=True)
    deputy_id: int = Field(foreign_key="deputy.id", index=True)
    code_hash: str = Field(max_length=64, unique=True)
    expires_at: datetime = timestamp_field(nullable=False)
    used_at: datetime | None = timestamp_field()
    used_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    created_by_user_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = created_at_field()
