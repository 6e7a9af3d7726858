"""Request and response bodies of the dashboard: manual acts, statistics, the duty archive."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from app.dashboard.models import ManualActKind

# --- Manual acts -----------------------------------------------------------------------------


class ManualActCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "inspection",
                    "title": "视察区老旧小区加装电梯工作",
                    "occurred_on": "2026-04-18",
                    "hours": 3,
                    "location": "示例区甲街道",
                    "note": "区人大常委会组织",
                }
            ]
        },
    )

    kind: ManualActKind = Field(
        description="inspection 视察, training 培训, meeting 会议, research 调研, other 其他"
    )
    title: str = Field(min_length=1, max_length=200)
    occurred_on: date = Field(description="The day it happened (Asia/Shanghai)")
    hours: float | None = Field(default=None, ge=0, le=24 * 31)
    location: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)


class ManualActUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"title": "视察加装电梯工作（补记）", "version": 1}]},
    )

    kind: ManualActKind | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    occurred_on: date | None = None
    hours: float | None = Field(default=None, ge=0, le=24 * 31)
    location: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)
    version: int | None = Field(
        default=None, ge=1, description="The version read; a stale one gets 409 version_conflict"
    )


class ManualActPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "deputy_id": 12,
                    "kind": "inspection",
                    "title": "视察区老旧小区加装电梯工作",
                    "occurred_on": "2026-04-18",
                    "hours": 3.0,
                    "location": "示例区甲街道",
                    "note": "区人大常委会组织",
                    "created_by_user_id": 3,
                    "created_at": "2026-04-19T09:12:00Z",
                    "updated_at": None,
                    "version": 1,
                }
            ]
        },
    )

    id: int
    deputy_id: int
    kind: ManualActKind
    title: str
    occurred_on: date
    hours: float | None
    location: str | None
    note: str | None
    created_by_user_id: int | None
    created_at: datetime
    updated_at: datetime | None
    version: int
