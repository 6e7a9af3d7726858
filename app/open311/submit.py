"""Open311 POST requests → a case, through the cases domain's own submission service
(routing, deadlines, idempotency, content rules are the same as for every case)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.cases import idempotency
from app.cases.models import CaseChannel
from app.cases.schemas import CaseCreate
from app.cases.submission import Verdict, submit_case
from app.core.config import Settings
from app.core.errors import AppError
from app.core.security import Principal
from app.open311 import service
from app.open311.errors import Open311Error
from app.org.models import Region

MAX_DESCRIPTION = 4000


def _float(fields: dict[str, str], name: str, fmt: str) -> float | None:
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise Open311Error(400, f"{name} must be a number", fmt) from exc


def case_body(fields: dict[str, str], category_id: int, region_id: int, fmt: str) -> CaseCreate:
    description = fields.get("description", "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise Open311Error(400, f"description may have at most {MAX_DESCRIPTION} characters", fmt)
    lat, lng = _float(fields, "lat", fmt), _float(fields, "long", fmt)
    address = fields.get("address_string", "").strip() or None
    if (lat is None or lng is None) and address is None and not fields.get("address_id"):
        raise Open311Error(400, "lat and long, or address_string, is required", fmt)
    media_url = fields.get("media_url", "").strip()
    if media_url:
        if not media_url.startswith("https://") or len(media_url) > 500:
            raise Open311Error(400, "media_url must be an https URL", fmt)
        # Never fetched by us (a URL given by another system); kept for staff to open.
        description = f"{description}\n图片：{media_url}".strip()
    title = fields.get("attribute[title]", "").strip() or description[:30].strip()
    name = " ".join(
        p for p in (fields.get("last_name", "").strip(), fields.get("first_name", "").strip()) if p
    )
    try:
        return CaseCreate(
            title=title,
            content=description,
            category_id=category_id,
            region_id=region_id,
            latitude=lat,
            longitude=lng,
            address=address[:255] if address else None,
            contact_name=name[:50] or None,
            contact_phone=fields.get("phone", "").strip() or None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = {
            "title": "attribute[title]" if fields.get("attribute[title]") else "description",
            "content": "description",
            "contact_phone": "phone",
            "latitude": "lat",
            "longitude": "long",
        }.get(str(first["loc"][0]) if first.get("loc") else "", "request")
        raise Open311Error(400, f"{where}: {first['msg']}", fmt) from exc


async def _region(
    session: AsyncSession, fields: dict[str, str], scope_path: str | None, fmt: str
) -> int:
    raw = fields.get("attribute[region]", "").strip()
    if not raw:
        raise Open311Error(400, "attribute[region] is required (see the service definition)", fmt)
    if not raw.isdigit() or len(raw) > 10:
        raise Open311Error(400, "attribute[region] must be one of the listed keys", fmt)
    path = (
        await session.execute(select(Region.path).where(Region.id == int(raw)))
    ).scalar_one_or_none()
    if path is None:
        raise Open311Error(400, "attribute[region] must be one of the listed keys", fmt)
    if scope_path is not None and not path.startswith(scope_path):
        raise Open311Error(403, "attribute[region] lies outside this api_key's region", fmt)
    return int(raw)


async def submit_request(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    fields: dict[str, str],
    fmt: str,
    *,
    idempotency_key: str | None,
) -> list[dict[str, Any]]:
    key_path = (
        await session.execute(select(Region.path).where(Region.id == principal.region_id))
    ).scalar_one_or_none()
    path = service.narrower(
        await service.jurisdiction_path(session, settings, fields.get("jurisdiction_id"), fmt),
        key_path or "/-none-/",
        fmt,
    )
    code = fields.get("service_code", "").strip()
    if not code:
        raise Open311Error(400, "service_code is required", fmt)
    category = await service.category_or_404(session, code, fmt)
    assert category.id is not None
    region_id = await _region(session, fields, path, fmt)
    body = case_body(fields, category.id, region_id, fmt)
    try:
        return await _submit(session, settings, principal, body, idempotency_key)
    except AppError as exc:
        status = 429 if exc.status == 429 else 403 if exc.status == 403 else 400
        raise Open311Error(status, exc.detail, fmt, headers=exc.headers) from exc


async def _submit(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    body: CaseCreate,
    idempotency_key: str | None,
) -> list[dict[str, Any]]:
    key_row: int | None = None
    if idempotency_key is not None:
        idempotency.validate_key(idempotency_key)
        digest = idempotency.request_hash({"open311": body.model_dump(mode="json")})
        key_row, earlier = await idempotency.claim_key(
            session, principal.user_id, idempotency_key, digest
        )
        if earlier is not None:
            return list(earlier.body.get("items", []))
    submitted = await submit_case(
        session, principal, body, Verdict(None), settings, channel=CaseChannel.open311
    )
    case = submitted.case
    assert case.id is not None
    answer = [
        {
            "service_request_id": str(case.id),
            "token": case.number,
            "service_notice": submitted.event.public_note,
            "account_id": None,
        }
    ]
    if key_row is not None:
        await idempotency.store_answer(session, key_row, case.id, 200, {"items": answer})
    return answer
