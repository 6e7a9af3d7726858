"""Request and response bodies of deputy groups."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.types import MAX_ID
from app.groups.models import GroupKind, GroupRole
from app.org.schemas import _Body

MAX_MEMBERS = 500

_MEMBERS_EXAMPLE: list[Any] = [
    {"deputy_id": 3, "role": "leader"},
    {"deputy_id": 5, "role": "deputy_leader"},
    {"deputy_id": 8, "role": "member"},
]


class GroupMemberIn(_Body):
    deputy_id: int = Field(ge=1, le=MAX_ID)
    role: GroupRole = GroupRole.member


def _check_members(members: list[GroupMemberIn] | None) -> None:
    if members is None:
        return
    ids = [m.deputy_id for m in members]
    if len(set(ids)) != len(ids):
        raise ValueError("a deputy appears twice in members")
    if sum(1 for m in members if m.role is GroupRole.leader) > 1:
        raise ValueError("a group has at most one leader")


class GroupCreate(_Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "江城街道代表小组",
                    "kind": "area",
                    "region_id": 4,
                    "description": "江城街道选区的区人大代表",
                    "members": _MEMBERS_EXAMPLE,
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=100)
    kind: GroupKind = GroupKind.area
    region_id: int = Field(ge=1, le=MAX_ID)
    description: str | None = Field(default=None, max_length=1000)
    members: list[GroupMemberIn] = Field(default_factory=list, max_length=MAX_MEMBERS)

    @model_validator(mode="after")
    def _members_ok(self) -> GroupCreate:
        _check_members(self.members)
        return self


class GroupUpdate(_Body):
    """Only the fields sent change; `members`, when sent, replaces the whole list."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "江城街道第一代表小组", "members": _MEMBERS_EXAMPLE}]
        }
    )

    name: str | None = Field(default=None, min_length=1, max_length=100)
    kind: GroupKind | None = None
    description: str | None = Field(default=None, max_length=1000)
    members: list[GroupMemberIn] | None = Field(default=None, max_length=MAX_MEMBERS)

    @model_validator(mode="after")
    def _members_ok(self) -> GroupUpdate:
        _check_members(self.members)
        return self


class GroupMemberPublic(BaseModel):
    deputy_id: int
    name: str
    role: GroupRole


class GroupPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 2,
                    "name": "江城街道代表小组",
                    "kind": "area",
                    "region_id": 4,
                    "region_name": "江城街道",
                    "description": "江城街道选区的区人大代表",
                    "members": [
                        {"deputy_id": 3, "name": "王建国", "role": "leader"},
                        {"deputy_id": 5, "name": "李秀英", "role": "deputy_leader"},
                    ],
                }
            ]
        }
    )

    id: int
    name: str
    kind: GroupKind
    region_id: int
    region_name: str
    description: str | None
    members: list[GroupMemberPublic]
