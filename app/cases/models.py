"""Cases (意见建议 / 问题反映), their timeline, routing rules, follows and submission keys."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, text
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.core.models import created_at_field, enum_field, name_sort_field, timestamp_field
from app.core.sorting import keep_name_sort


class CaseStatus(StrEnum):
    registered = "registered"  # 登记
    handling = "handling"  # 办理
    fed_back = "fed_back"  # 反馈
    resolved = "resolved"  # 办结
    rejected = "rejected"  # 不予受理
    merged = "merged"  # 合并


OPEN_STATUSES = (CaseStatus.registered, CaseStatus.handling, CaseStatus.fed_back)


class CaseChannel(StrEnum):
    miniprogram = "miniprogram"  # a resident in the mini-program
    deputy = "deputy"  # a deputy's own suggestion
    reception = "reception"  # a deputy on behalf of a resident received at a station
    phone = "phone"  # staff, taken by phone
    counter = "counter"  # staff, taken at the counter
    api = "api"  # an integrator's system, POST /cases with an API key
    open311 = "open311"  # an integrator's system, Open311 GeoReport v2 POST requests


class CaseAction(StrEnum):
    register = "register"
    assign = "assign"  # 交办
    transfer = "transfer"  # 转办
    reject = "reject"  # 不予受理
    merge = "merge"  # 合并
    supervise = "supervise"  # 督办
    send_back = "send_back"  # 退回 (not ours)
    reply = "reply"  # 答复
    rate = "rate"  # 评价
    reopen = "reopen"  # 重新办理
    resolve = "resolve"  # 办结
    auto_resolve = "auto_resolve"
    mark_overdue = "mark_overdue"
    follow = "follow"
    edit = "edit"


class Satisfaction(StrEnum):
    satisfied = "satisfied"  # 满意
    basically_satisfied = "basically_satisfied"  # 基本满意
    dissatisfied = "dissatisfied"  # 不满意


class RejectReason(StrEnum):
    not_in_remit = "not_in_remit"  # 不属于受理范围
    duplicate = "duplicate"  # 重复反映
    insufficient_information = "insufficient_information"  # 信息不全
    other = "other"


class ContentFlag(StrEnum):
    review = "review"  # content security said "review": staff look before anything public
    unchecked = "unchecked"  # WeChat could not be asked: registered anyway, staff look


class Resolution(StrEnum):
    rated = "rated"  # the resident said satisfied / basically satisfied
    staff = "staff"  # staff closed it
    auto = "auto"  # not rated within the set number of days


class CaseCategory(SQLModel, table=True):
    __tablename__ = "case_category"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True)
    name: str = Field(max_length=50)
    name_sort: str = name_sort_field(50)
    description: str | None = Field(default=None, max_length=200)
    # Working days (China's official calendar) a unit gets by default.
    default_deadline_days: int = Field(default=10)
    sort_order: int = Field(default=0)
    is_active: bool = Field(default=True)


keep_name_sort(CaseCategory)


class Case(SQLModel, table=True):
    __table_args__ = (
        Index("ix_case_submitter_created", "submitter_id", "created_at"),
        Index("ix_case_status_deadline", "status", "deadline_at"),
        Index("ix_case_category_region", "category_id", "region_id"),
        # The dashboard reads cases by creation date and by deadline for a region; these
        # cover those reads so PostgreSQL answers from the index alone.
        Index(
            "ix_case_created_at_cover",
            "created_at",
            postgresql_include=[
                "region_id",
                "status",
                "deadline_at",
                "supervised_count",
                "satisfaction",
            ],
        ),
        Index(
            "ix_case_open_region",
            "region_id",
            postgresql_include=["status", "deadline_at", "supervised_count"],
            postgresql_where=text("status IN ('registered', 'handling', 'fed_back')"),
        ),
        Index(
            "ix_case_deadline_at_cover",
            "deadline_at",
            postgresql_include=["region_id", "status", "fed_back_at"],
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Human-readable: the Shanghai date of submission and the id, e.g. "20261122-0007".
    number: str | None = Field(default=None, max_length=32, unique=True)
    title: str = Field(max_length=100)
    content: str = Field(max_length=5000)
    category_id: int = Field(foreign_key="case_category.id", index=True)
    region_id: int = Field(foreign_key="region.id", index=True)
    station_id: int | None = Field(default=None, foreign_key="station.id", index=True)
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = Field(default=None, max_length=255)
    attachment_ids: list[int] = Field(default_factory=list, sa_type=JSON)
    status: CaseStatus = enum_field(CaseStatus.registered, length=20, index=True)
    channel: CaseChannel = enum_field(CaseChannel.miniprogram, length=20)
    submitter_id: int = Field(foreign_key="user.id")
    # The account that hears about progress and rates; None for a phone case of a
    # resident without an account.
    owner_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    deputy_id: int | None = Field(default=None, foreign_key="deputy.id", index=True)
    reception_id: int | None = Field(default=None, index=True)
    # The activity (代表活动) where the problem was raised.
    activity_id: int | None = Field(default=None, foreign_key="activity.id", index=True)
    contact_name: str | None = Field(default=None, max_length=50)
    contact_phone: str | None = Field(default=None, max_length=20)
    content_flag: str | None = Field(default=None, max_length=20)
    suggested_unit_id: int | None = Field(default=None, foreign_key="unit.id")
    lead_unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    assigned_at: datetime | None = timestamp_field()
    deadline_at: datetime | None = timestamp_field()
    # The deadline was counted on weekends only: the official calendar for that year
    # was not known yet.
    calendar_fallback: bool = Field(default=False)
    overdue: bool = Field(default=False, index=True)
    overdue_at: datetime | None = timestamp_field()
    due_soon_notified_at: datetime | None = timestamp_field()
    supervised_count: int = Field(default=0)
    last_supervised_at: datetime | None = timestamp_field()
    reopen_count: int = Field(default=0)
    sent_back_count: int = Field(default=0)
    merged_into_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    reject_reason_code: str | None = Field(default=None, max_length=40)
    reject_note: str | None = Field(default=None, max_length=1000)
    public_answer: str | None = Field(default=None, max_length=5000)
    fed_back_at: datetime | None = timestamp_field(index=True)
    satisfaction: str | None = Field(default=None, max_length=30)
    rating_comment: str | None = Field(default=None, max_length=1000)
    rated_at: datetime | None = timestamp_field()
    resolved_at: datetime | None = timestamp_field()
    resolution: str | None = Field(default=None, max_length=20)
    version: int = Field(default=1)
    created_at: datetime = created_at_field()
    updated_at: datetime | None = timestamp_field()


class CaseCoUnit(SQLModel, table=True):
    """A unit handling the case besides the lead one (协办单位)."""

    __tablename__ = "case_co_unit"
    __table_args__ = (UniqueConstraint("case_id", "unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)


class CaseEvent(SQLModel, table=True):
    """One line of a case's timeline (记录留痕). Internal notes are for staff and units."""

    __tablename__ = "case_event"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    action: str = Field(max_length=30)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str | None = Field(default=None, max_length=20)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    actor_role: str = Field(max_length=20)  # a Role value, "integrator" or "system"
    # The integrator's key the step was made with (actor_id is then its service account).
    api_key_id: int | None = Field(default=None, foreign_key="api_key.id")
    round: int = Field(default=0)
    public_note: str | None = Field(default=None, max_length=5000)
    internal_note: str | None = Field(default=None, max_length=5000)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = created_at_field()


class CaseFollow(SQLModel, table=True):
    """Someone following a case: a deputy (it enters the duty archive) or the resident of a
    duplicate merged into it (they read it and hear its news)."""

    __tablename__ = "case_follow"
    __table_args__ = (UniqueConstraint("case_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    deputy_id: int | None = Field(default=None, foreign_key="deputy.id", index=True)
    source: str = Field(default="follow", max_length=20)  # "follow" or "merged"
    created_at: datetime = created_at_field()


class RoutingRule(SQLModel, table=True):
    """Category × region → the unit usually responsible. The deepest matching region wins."""

    __tablename__ = "routing_rule"
    __table_args__ = (UniqueConstraint("category_id", "region_id"),)

    id: int | None = Field(default=None, primary_key=True)
    category_id: int = Field(foreign_key="case_category.id", index=True)
    region_id: int = Field(foreign_key="region.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = created_at_field()


class CaseSubmissionKey(SQLModel, table=True):
    """An `Idempotency-Key` of `POST /cases` and the first answer given for it."""

    __tablename__ = "case_submission_key"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id")
    key: str = Field(max_length=128)
    request_hash: str = Field(max_length=64)
    case_id: int | None = Field(default=None, foreign_key="case.id")
    status_code: int | None = None
    response: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = created_at_field()
