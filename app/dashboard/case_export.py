"""The case list as a spreadsheet: the list's filters, Chinese headers, phones masked unless
the caller may see them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select
from sqlmodel import col

from app.cases.models import Case, CaseCategory
from app.core.masking import mask_name, mask_phone
from app.dashboard.archive import CASE_STATUS_LABELS, SATISFACTION_LABELS
from app.dashboard.deps import DateRange, RegionScope
from app.dashboard.exports import Cell, cell
from app.dashboard.stats import between, in_scope
from app.org.models import Region, Station, Unit

CASE_HEADERS = [
    "编号",
    "标题",
    "状态",
    "类别",
    "区域",
    "站点",
    "承办单位",
    "来源",
    "联系人",
    "联系电话",
    "登记时间",
    "交办时间",
    "办理期限",
    "答复时间",
    "办结时间",
    "是否超期",
    "督办次数",
    "重新办理次数",
    "满意度",
]

CHANNEL_LABELS = {
    "miniprogram": "小程序",
    "deputy": "代表建议",
    "reception": "接待转办",
    "phone": "电话",
    "counter": "窗口",
}


@dataclass(frozen=True, slots=True)
class CaseFilters:
    status: str | None = None
    category: int | None = None
    station_id: int | None = None
    unit_id: int | None = None
    overdue: bool | None = None
    q: str | None = None
    period: DateRange | None = None


def case_export_query(scope: RegionScope, filters: CaseFilters) -> Select[Any]:
    region = Region.__table__.alias("case_region")  # type: ignore[attr-defined]
    conditions = [in_scope(Case.region_id, scope)]
    if filters.status is not None:
        conditions.append(Case.status == filters.status)
    if filters.category is not None:
        conditions.append(Case.category_id == filters.category)
    if filters.station_id is not None:
        conditions.append(Case.station_id == filters.station_id)
    if filters.unit_id is not None:
        conditions.append(Case.lead_unit_id == filters.unit_id)
    if filters.overdue is not None:
        conditions.append(col(Case.overdue).is_(filters.overdue))
    if filters.q:
        pattern = f"%{filters.q.replace('%', '').replace('_', '')}%"
        conditions.append(
            or_(
                col(Case.number).like(pattern),
                col(Case.title).like(pattern),
                col(Case.content).like(pattern),
            )
        )
    if filters.period is not None:
        conditions.append(between(Case.created_at, filters.period))
    return (
        select(
            Case.id,
            Case.number,
            Case.title,
            Case.status,
            CaseCategory.name,
            region.c.name,
            Station.name,
            Unit.name,
            Case.channel,
            Case.contact_name,
            Case.contact_phone,
            Case.created_at,
            Case.assigned_at,
            Case.deadline_at,
            Case.fed_back_at,
            Case.resolved_at,
            Case.overdue,
            Case.supervised_count,
            Case.reopen_count,
            Case.satisfaction,
        )
        .select_from(Case)
        .outerjoin(CaseCategory, col(CaseCategory.id) == Case.category_id)
        .outerjoin(region, region.c.id == Case.region_id)
        .outerjoin(Station, col(Station.id) == Case.station_id)
        .outerjoin(Unit, col(Unit.id) == Case.lead_unit_id)
        .where(*conditions)
        .order_by(col(Case.id).desc())
    )


def case_row_mapper(sees_phone: bool):  # type: ignore[no-untyped-def]
    def to_row(row: Any) -> Sequence[Cell]:
        (
            case_id,
            number,
            title,
            status,
            category,
            region,
            station,
            unit,
            channel,
            contact_name,
            contact_phone,
            created_at,
            assigned_at,
            deadline_at,
            fed_back_at,
            resolved_at,
            overdue,
            supervised,
            reopened,
            satisfaction,
        ) = row
        return (
            number or str(case_id),
            title,
            CASE_STATUS_LABELS.get(status, status),
            category,
            region,
            station,
            unit,
            CHANNEL_LABELS.get(channel, channel),
            contact_name if sees_phone else mask_name(contact_name),
            contact_phone if sees_phone else mask_phone(contact_phone),
            cell(created_at),
            cell(assigned_at),
            cell(deadline_at),
            cell(fed_back_at),
            cell(resolved_at),
            "是" if overdue else "否",
            int(supervised or 0),
            int(reopened or 0),
            SATISFACTION_LABELS.get(satisfaction, satisfaction) if satisfaction else None,
        )

    return to_row
