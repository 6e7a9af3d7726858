"""Deputy groups (代表小组) and their members."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.core.models import created_at_field, enum_field, timestamp_field


class GroupKind(StrEnum):
    area = "area"  # by street or town
    sector = "sector"  # by sector (教育、医疗、企业……)


class GroupRole(StrEnum):
    leader = "leader"  # 组长
    deputy_leader = "deputy_leader"  # 副组长
    member = "member"  # 组员


class DeputyGroup(SQLModel, table=True):
    """A group of deputies; staff of `region_id`'s subtree manage it."""

    __tablename__ = "deputy_group"
    __table_args__ = (UniqueConstraint("region_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    kind: GroupKind = enum_field(GroupKind.area, length=20)
    region_id: int = Field(foreign_key="region.id", index=True)
    description: str | None = Field(default=None, max_length=1000)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class DeputyGroupMember(SQLModel, table=True):
    """A deputy in a group. At most one leader per group (partial unique index)."""

    __tablename__ = "deputy_group_member"
    __table_args__ = (
        UniqueConstraint("group_id", "deputy_id"),
        sa.Index(
            "uq_deputy_group_member_leader",
            "group_id",
            unique=True,
            postgresql_where=sa.text("role = 'leader'"),
            sqlite_where=sa.text("role = 'leader'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="deputy_group.id", index=True)
    deputy_id: int = Field(foreign_key="deputy.id", index=True)
    role: GroupRole = enum_field(GroupRole.member, length=20)
