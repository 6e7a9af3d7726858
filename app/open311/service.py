"""Open311 GeoReport v2 over our cases: services are case categories, service requests are
cases. Reads only; submission goes through the cases domain's own submission service.

What a caller sees depends on who it is:
- anyone: services, service definitions, and service requests without personal data and
  with the text reduced to the title, the address cut short and the position rounded to
  about 100 m (a resident's report is not published in full to the internet);
- a key with `cases:read`: the requests of its region subtree as a staff member of that
  region sees them (full text, address, position, photos), phones and names never.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.cases.flows import STATUS_TEXT
from app.cases.models import (
    OPEN_STATUSES,
    Case,
    CaseCategory,
    CaseEvent,
    CaseStatus,
    RejectReason,
)
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.masking import mask_address
from app.open311.errors import Open311Error
from app.org.models import Region, Unit

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-29T00:00:00+08:00"
MAX_WINDOW = timedelta(days=90)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_IDS = 100

REJECT_TEXT = {
    RejectReason.not_in_remit.value: "不属于受理范围",
    RejectReason.duplicate.value: "重复反映",
    RejectReason.insufficient_information.value: "信息不全",
    RejectReason.other.value: "其他原因",
}


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset, in China Standard Time (what the hotline's staff read)."""
    if value is None:
        return None
    from app.core.clock import SHANGHAI

    return value.astimezone(SHANGHAI).isoformat(timespec="seconds")


def parse_datetime(raw: str, name: str, fmt: str) -> datetime:
    """A w3c datetime with offset ("2026-11-01T00:00:00Z" or "+08:00")."""
    text = raw.strip().replace("Z", "+00:00").replace(" ", "+")
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Open311Error(400, f"{name} must be an ISO 8601 date and time", fmt) from exc
    if value.tzinfo is None:
        raise Open311Error(400, f"{name} must include a time zone (Z or +08:00)", fmt)
    return value.astimezone(UTC)


@dataclass(slots=True)
class Scope:
    """The region subtree a call may see (None: the whole deployment) and whether the
    caller is a key that may read requests in full."""

    path: str | None
    detailed: bool


async def jurisdiction_path(
    session: AsyncSession, settings: Settings, jurisdiction_id: str | None, fmt: str
) -> str | None:
    if jurisdiction_id is None or jurisdiction_id == "":
        return None
    region_id = settings.open311_jurisdictions.get(jurisdiction_id)
    if region_id is None:
        raise Open311Error(404, f"jurisdiction_id {jurisdiction_id[:64]} not found", fmt)
    path = (
        await session.execute(select(Region.path).where(Region.id == region_id))
    ).scalar_one_or_none()
    if path is None:
        raise Open311Error(404, f"jurisdiction_id {jurisdiction_id[:64]} not found", fmt)
    return path  # type: ignore[no-any-return]


def narrower(a: str | None, b: str | None, fmt: str) -> str | None:
    """The intersection of two region subtrees (paths); 403 when they are apart."""
    if a is None:
        return b
    if b is None or a.startswith(b):
        return a
    if b.startswith(a):
        return b
    raise Open311Error(403, "this api_key does not cover the jurisdiction", fmt)


# ---------------------------------------------------------------------------------------
# Services


async def services(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(CaseCategory)
        .where(col(CaseCategory.is_active).is_(True))
        .order_by(col(CaseCategory.sort_order), col(CaseCategory.id))
    )
    return [
        {
            "service_code": c.code,
            "service_name": c.name,
            "description": c.description or c.name,
            # Every service needs the region attribute (where the problem is): routing and
            # the responsible unit follow from it.
            "metadata": True,
            "type": "realtime",
            "keywords": c.name,
            "group": "意见建议",
        }
        for c in rows.scalars()
    ]


async def category_or_404(session: AsyncSession, code: str, fmt: str) -> CaseCategory:
    category = (
        await session.execute(
            select(CaseCategory).where(
                CaseCategory.code == code, col(CaseCategory.is_active).is_(True)
            )
        )
    ).scalar_one_or_none()
    if category is None:
        raise Open311Error(404, f"service_code {code[:40]} not found", fmt)
    return category


async def region_values(session: AsyncSession, path: str | None) -> list[dict[str, str]]:
    """The regions a request may be in, named with their ancestors ("示例区 翠苑街道 …")."""
    statement = select(Region.id, Region.name, Region.path).order_by(col(Region.path))
    rows = (await session.execute(statement)).all()
    names = {r.id: r.name for r in rows}
    values = []
    for r in rows:
        if path is not None and not r.path.startswith(path):
            continue
        chain = [int(p) for p in r.path.strip("/").split("/") if p]
        label = " ".join(names.get(i, "") for i in chain) or r.name
        values.append({"key": str(r.id), "name": label})
    return values


async def service_definition(
    session: AsyncSession, category: CaseCategory, path: str | None
) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "attributes": [
            {
                "variable": True,
                "code": "region",
                "datatype": "singlevaluelist",
                "required": True,
                "datatype_description": "The community (社区/村) or street where it is",
                "order": 1,
                "description": "所在区域",
                "values": await region_values(session, path),
            },
            {
                "variable": True,
                "code": "title",
                "datatype": "string",
                "required": False,
                "datatype_description": "2 to 100 characters; default: the description's start",
                "order": 2,
                "description": "标题",
            },
        ],
    }


# ---------------------------------------------------------------------------------------
# Service requests


def open_or_closed(status: CaseStatus | str) -> str:
    return "open" if CaseStatus(status) in OPEN_STATUSES else "closed"


def status_notes(case: Case, detailed: bool) -> str:
    status = CaseStatus(case.status)
    note = f"{STATUS_TEXT[status]}（{status.value}）"
    if status is CaseStatus.rejected and case.reject_reason_code:
        note += "：" + REJECT_TEXT.get(case.reject_reason_code, case.reject_reason_code)
    if detailed and status in (CaseStatus.fed_back, CaseStatus.resolved) and case.public_answer:
        note += "。答复：" + case.public_answer[:1000]
    if case.overdue and status in OPEN_STATUSES:
        note += "（已超期）"
    return note


def request_query(
    scope_path: str | None,
    *,
    ids: list[int] | None = None,
    codes: list[str] | None = None,
    statuses: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[Any]:
    statement = (
        select(Case, CaseCategory.code, CaseCategory.name, Unit.name.label("unit_name"))  # type: ignore[attr-defined]
        .join(CaseCategory, col(CaseCategory.id) == Case.category_id)
        .join(Region, col(Region.id) == Case.region_id)
        .outerjoin(Unit, col(Unit.id) == Case.lead_unit_id)
    )
    if scope_path is not None:
        statement = statement.where(col(Region.path).startswith(scope_path))
    if ids is not None:
        statement = statement.where(col(Case.id).in_(ids))
    if codes:
        statement = statement.where(col(CaseCategory.code).in_(codes))
    if statuses and set(statuses) != {"open", "closed"}:
        open_values = [s.value for s in OPEN_STATUSES]
        if "open" in statuses:
            statement = statement.where(col(Case.status).in_(open_values))
        else:
            statement = statement.where(col(Case.status).not_in(open_values))
    if since is not None:
        statement = statement.where(col(Case.created_at) >= since)
    if until is not None:
        statement = statement.where(col(Case.created_at) <= until)
    return statement.order_by(col(Case.created_at).desc(), col(Case.id).desc())


def window(start: datetime | None, end: datetime | None, fmt: str) -> tuple[datetime, datetime]:
    """The specification's window: the last 90 days by default, never more than 90 days."""
    if start is None and end is None:
        end = utcnow()
        return end - MAX_WINDOW, end
    if start is None:
        assert end is not None
        return end - MAX_WINDOW, end
    if end is None:
        return start, start + MAX_WINDOW
    if end < start:
        raise Open311Error(400, "end_date must not be before start_date", fmt)
    if end - start > MAX_WINDOW:
        raise Open311Error(400, "start_date and end_date may not span more than 90 days", fmt)
    return start, end


def round_position(value: float | None, detailed: bool) -> float | None:
    if value is None:
        return None
    return value if detailed else round(value, 3)


def request_item(
    case: Case,
    code: str,
    name: str,
    unit_name: str | None,
    *,
    detailed: bool,
    base_url: str,
) -> dict[str, Any]:
    """One service request. Never the resident's name, phone or account."""
    media_url = None
    if detailed and case.attachment_ids:
        media_url = f"{base_url}/api/v1/attachments/{case.attachment_ids[0]}"
    address = case.address if detailed else mask_address(case.address)
    return {
        "service_request_id": str(case.id),
        "status": open_or_closed(case.status),
        "status_notes": status_notes(case, detailed),
        "service_name": name,
        "service_code": code,
        "description": case.content if detailed else case.title,
        "agency_responsible": unit_name,
        "service_notice": None,
        "requested_datetime": iso(case.created_at),
        "updated_datetime": iso(case.updated_at or case.created_at),
        "expected_datetime": iso(case.deadline_at),
        "address": address,
        "address_id": None,
        "zipcode": None,
        "lat": round_position(case.latitude, detailed),
        "long": round_position(case.longitude, detailed),
        "media_url": media_url,
    }


async def find_requests(
    session: AsyncSession,
    statement: Select[Any],
    *,
    detailed: bool,
    base_url: str,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    rows = (await session.execute(statement.limit(limit).offset(offset))).all()
    return [
        request_item(r[0], r[1], r[2], r[3], detailed=detailed, base_url=base_url) for r in rows
    ]


async def case_id_for_token(session: AsyncSession, token: str, path: str | None) -> int | None:
    """Tokens are case numbers ("20261122-0007"): the request exists as soon as it is
    accepted (type realtime), so a token always resolves at once."""
    statement = (
        select(Case.id).join(Region, col(Region.id) == Case.region_id).where(Case.number == token)
    )
    if path is not None:
        statement = statement.where(col(Region.path).startswith(path))
    return (await session.execute(statement)).scalar_one_or_none()  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------
# servicerequestupdates: the timeline's public entries


async def updates(
    session: AsyncSession,
    path: str | None,
    since: datetime,
    until: datetime,
    *,
    limit: int,
    offset: int,
    base_url: str,
) -> list[dict[str, Any]]:
    statement = (
        select(CaseEvent, Case.status, Case.attachment_ids)
        .join(Case, col(Case.id) == CaseEvent.case_id)
        .join(Region, col(Region.id) == Case.region_id)
        .where(
            col(CaseEvent.created_at) >= since,
            col(CaseEvent.created_at) <= until,
            or_(col(CaseEvent.to_status).is_not(None), col(CaseEvent.public_note).is_not(None)),
        )
        .order_by(col(CaseEvent.created_at), col(CaseEvent.id))
    )
    if path is not None:
        statement = statement.where(col(Region.path).startswith(path))
    rows = (await session.execute(statement.limit(limit).offset(offset))).all()
    items = []
    for event, _current, _attachments in rows:
        status = CaseStatus(event.to_status) if event.to_status else None
        items.append(
            {
                "update_id": str(event.id),
                "service_request_id": str(event.case_id),
                "status": open_or_closed(status) if status else None,
                "external_status_code": status.value if status else None,
                "updated_datetime": iso(event.created_at),
                "description": event.public_note or (STATUS_TEXT[status] if status else ""),
                "media_url": None,
            }
        )
    return items


async def count(session: AsyncSession, statement: Select[Any]) -> int:
    total = await session.execute(
        select(func.count()).select_from(statement.order_by(None).subquery())
    )
    return int(total.scalar_one())
