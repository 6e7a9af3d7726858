"""Open311 GeoReport v2 at /open311/v2: `<resource>.xml` or `<resource>.json`.

Public reads (discovery, services, service definitions, reduced service requests) need no
key; submitting needs an `api_key` (form field, as the specification says) with
`cases:submit`; full service requests and `servicerequestupdates` need one with
`cases:read`. Keys are also accepted as `X-API-Key` or `Authorization: Bearer`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from app.core.config import Settings
from app.core.db import SessionDep
from app.core.deps import SettingsDep
from app.core.errors import AppError
from app.core.security import Principal
from app.integrations.deps import authenticate_key
from app.integrations.models import Scope as KeyScope
from app.open311 import render, service
from app.open311.errors import Open311Error
from app.org.models import Region

router = APIRouter(tags=["open311"])

FMT_PATH = Path(description="`xml` (the specification's) or `json`")

_XML_EXAMPLE = '<?xml version="1.0" encoding="utf-8"?>\n<services><service>…</service></services>'
_ERROR_EXAMPLE = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    "<errors><error><code>400</code><description>service_code is required</description>"
    "</error></errors>"
)


def _docs(json_example: Any, xml_example: str = _XML_EXAMPLE, *errors: int) -> dict[Any, Any]:
    responses: dict[Any, Any] = {
        200: {
            "content": {
                "application/json": {"example": json_example},
                "text/xml": {"example": xml_example},
            }
        }
    }
    for status in errors or (400, 403, 404):
        responses[status] = {
            "description": "The specification's error array",
            "content": {
                "application/json": {
                    "example": [{"code": status, "description": "service_code is required"}]
                },
                "text/xml": {"example": _ERROR_EXAMPLE},
            },
        }
    return responses


def _fmt(fmt: str) -> str:
    if fmt not in render.FORMATS:
        raise Open311Error(404, "format must be xml or json", "xml")
    return fmt


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _raw_key(request: Request, api_key: str | None) -> str | None:
    if api_key:
        return api_key
    header = request.headers.get("x-api-key")
    if header:
        return header
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


async def _key(
    request: Request, api_key: str | None, scope: KeyScope, fmt: str, *, required: bool
) -> Principal | None:
    raw = _raw_key(request, api_key)
    if raw is None:
        if required:
            raise Open311Error(403, "api_key is required", fmt)
        return None
    try:
        return await authenticate_key(request, raw, scope)
    except AppError as exc:
        status = 429 if exc.status == 429 else 403
        description = {
            "invalid_api_key": "api_key is invalid, revoked or expired",
            "ip_not_allowed": "api_key may not be used from this address",
            "insufficient_scope": f"api_key lacks the scope {scope.value}",
            "rate_limited": "too many calls with this api_key; retry later",
        }.get(exc.code, exc.detail)
        raise Open311Error(status, description, fmt, headers=exc.headers) from exc


async def _key_path(session: SessionDep, principal: Principal | None) -> str | None:
    if principal is None or principal.region_id is None:
        return None
    return (  # type: ignore[no-any-return]
        await session.execute(select(Region.path).where(Region.id == principal.region_id))
    ).scalar_one_or_none() or "/-none-/"


async def _reader(
    request: Request,
    session: SessionDep,
    settings: Settings,
    api_key: str | None,
    jurisdiction_id: str | None,
    fmt: str,
    *,
    required: bool,
) -> tuple[Principal | None, str | None]:
    """Who reads (a `cases:read` key, or anyone) and the region subtree they may read: the
    jurisdiction's and the key's, narrowed to both."""
    principal = await _key(request, api_key, KeyScope.cases_read, fmt, required=required)
    path = service.narrower(
        await service.jurisdiction_path(session, settings, jurisdiction_id, fmt),
        await _key_path(session, principal),
        fmt,
    )
    return principal, path


def _page(page: str | None, page_size: str | None, fmt: str) -> tuple[int, int]:
    try:
        number = int(page) if page else 1
        size = int(page_size) if page_size else service.DEFAULT_PAGE_SIZE
    except ValueError as exc:
        raise Open311Error(400, "page and page_size must be whole numbers", fmt) from exc
    if number < 1 or number > 100_000 or size < 1 or size > service.MAX_PAGE_SIZE:
        raise Open311Error(
            400, f"page must be ≥ 1 and page_size between 1 and {service.MAX_PAGE_SIZE}", fmt
        )
    return size, (number - 1) * size


# Discovery --------------------------------------------------------------------------------


@router.get(
    "/discovery.{fmt}",
    response_class=Response,
    responses=_docs(
        {
            "changeset": service.CHANGESET,
            "contact": "联络站管理员",
            "key_service": "向平台管理员申请 API 密钥",
            "endpoints": [
                {
                    "specification": service.SPECIFICATION,
                    "url": "https://liaison.example.gov.cn/open311/v2",
                    "changeset": service.CHANGESET,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        },
        '<?xml version="1.0" encoding="utf-8"?>\n<discovery><changeset>…</changeset>'
        "<endpoints><endpoint>…</endpoint></endpoints></discovery>",
        404,
    ),
)
async def discovery(request: Request, settings: SettingsDep, fmt: str = FMT_PATH) -> Response:
    """Service discovery: where the GeoReport v2 endpoint is and which formats it speaks."""
    fmt = _fmt(fmt)
    data = {
        "changeset": service.CHANGESET,
        "contact": "联络站平台管理员（见接入指南）",
        "key_service": "API 密钥由平台管理员签发：POST /api/v1/integrators/{id}/keys",
        "endpoints": [
            {
                "specification": service.SPECIFICATION,
                "url": f"{_base_url(request)}/open311/v2",
                "changeset": service.CHANGESET,
                "type": "production" if settings.is_production else "test",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    return render.respond(fmt, "discovery", None, data)


# Services -------------------------------------------------------------------------------


@router.get(
    "/services.{fmt}",
    response_class=Response,
    responses=_docs(
        [
            {
                "service_code": "infrastructure",
                "service_name": "基础设施",
                "description": "道路、路灯、管网等",
                "metadata": True,
                "type": "realtime",
                "keywords": "基础设施",
                "group": "意见建议",
            }
        ]
    ),
)
async def list_services(
    session: SessionDep,
    settings: SettingsDep,
    fmt: str = FMT_PATH,
    jurisdiction_id: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The service list: our case categories (问题类别)."""
    fmt = _fmt(fmt)
    await service.jurisdiction_path(session, settings, jurisdiction_id, fmt)
    return render.respond(fmt, "services", "service", await service.services(session))


@router.get(
    "/services/{service_code}.{fmt}",
    response_class=Response,
    responses=_docs(
        {
            "service_code": "infrastructure",
            "attributes": [
                {
                    "variable": True,
                    "code": "region",
                    "datatype": "singlevaluelist",
                    "required": True,
                    "datatype_description": "The community (社区/村) or street where it is",
                    "order": 1,
                    "description": "所在区域",
                    "values": [{"key": "3", "name": "示例区 翠苑街道 翠苑一社区"}],
                }
            ],
        },
        '<?xml version="1.0" encoding="utf-8"?>\n<service_definition><service_code>…'
        "</service_code><attributes><attribute>…</attribute></attributes></service_definition>",
    ),
)
async def service_definition(
    session: SessionDep,
    settings: SettingsDep,
    service_code: Annotated[str, Path(max_length=40)],
    fmt: str = FMT_PATH,
    jurisdiction_id: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """A service's attributes: `region` (required: where the problem is; routing and the
    responsible unit follow from it) and `title` (optional)."""
    fmt = _fmt(fmt)
    path = await service.jurisdiction_path(session, settings, jurisdiction_id, fmt)
    category = await service.category_or_404(session, service_code, fmt)
    data = await service.service_definition(session, category, path)
    return render.respond(fmt, "service_definition", None, data)


# Service requests -------------------------------------------------------------------------

_REQUEST_EXAMPLE = {
    "service_request_id": "42",
    "status": "open",
    "status_notes": "办理中（handling）",
    "service_name": "基础设施",
    "service_code": "infrastructure",
    "description": "翠苑一区东门路灯不亮，晚上出行不便。",
    "agency_responsible": "示例区城管局",
    "service_notice": None,
    "requested_datetime": "2026-11-20T09:30:00+08:00",
    "updated_datetime": "2026-11-21T10:00:00+08:00",
    "expected_datetime": "2026-12-04T09:30:00+08:00",
    "address": "翠苑一区东门",
    "address_id": None,
    "zipcode": None,
    "lat": 30.2802,
    "long": 120.132,
    "media_url": "https://liaison.example.gov.cn/api/v1/attachments/41",
}


@router.get(
    "/requests.{fmt}",
    response_class=Response,
    responses=_docs(
        [_REQUEST_EXAMPLE],
        '<?xml version="1.0" encoding="utf-8"?>\n<service_requests><request>'
        "<service_request_id>42</service_request_id><status>open</status>…</request>"
        "</service_requests>",
        400,
        403,
        404,
        429,
    ),
)
async def list_requests(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fmt: str = FMT_PATH,
    service_request_id: Annotated[
        str | None, Query(max_length=2000, description="Comma-separated ids; overrides the rest")
    ] = None,
    service_code: Annotated[
        str | None, Query(max_length=500, description="Comma-separated")
    ] = None,
    start_date: Annotated[
        str | None, Query(max_length=40, examples=["2026-11-01T00:00:00Z"])
    ] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20, description="open, closed or both")] = None,
    jurisdiction_id: Annotated[str | None, Query(max_length=100)] = None,
    api_key: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[str | None, Query(max_length=10, description="From 1")] = None,
    page_size: Annotated[str | None, Query(max_length=10, description="1–200, default 50")] = None,
) -> Response:
    """Service requests, newest first. Without `service_request_id` the window is the last
    90 days unless `start_date`/`end_date` say otherwise (never more than 90 days). Paged
    with `page` and `page_size`; the `X-Total-Count` header carries the total."""
    fmt = _fmt(fmt)
    principal, path = await _reader(
        request, session, settings, api_key, jurisdiction_id, fmt, required=False
    )
    limit, offset = _page(page, page_size, fmt)
    statuses = None
    if status:
        statuses = [s.strip() for s in status.split(",") if s.strip()]
        if not statuses or any(s not in ("open", "closed") for s in statuses):
            raise Open311Error(400, "status must be open, closed or both", fmt)
    if service_request_id:
        ids = _ids(service_request_id, fmt)
        statement = service.request_query(path, ids=ids)
    else:
        start = service.parse_datetime(start_date, "start_date", fmt) if start_date else None
        end = service.parse_datetime(end_date, "end_date", fmt) if end_date else None
        since, until = service.window(start, end, fmt)
        codes = [c.strip() for c in (service_code or "").split(",") if c.strip()]
        statement = service.request_query(
            path, codes=codes, statuses=statuses, since=since, until=until
        )
    items = await service.find_requests(
        session,
        statement,
        detailed=principal is not None,
        base_url=_base_url(request),
        limit=limit,
        offset=offset,
    )
    response = render.respond(fmt, "service_requests", "request", items)
    response.headers["X-Total-Count"] = str(await service.count(session, statement))
    return response


def _ids(raw: str, fmt: str) -> list[int]:
    ids = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or len(part) > 10 or int(part) > 2_147_483_647:
            raise Open311Error(400, f"service_request_id {part[:20]} is not valid", fmt)
        ids.append(int(part))
    if not ids or len(ids) > service.MAX_IDS:
        raise Open311Error(400, f"give 1 to {service.MAX_IDS} service_request_id values", fmt)
    return ids


@router.get(
    "/requests/{service_request_id}.{fmt}",
    response_class=Response,
    responses=_docs([_REQUEST_EXAMPLE], _XML_EXAMPLE, 400, 403, 404, 429),
)
async def get_request(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    service_request_id: Annotated[str, Path(max_length=20)],
    fmt: str = FMT_PATH,
    jurisdiction_id: Annotated[str | None, Query(max_length=100)] = None,
    api_key: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """One service request (an array of one, as the specification answers)."""
    fmt = _fmt(fmt)
    principal, path = await _reader(
        request, session, settings, api_key, jurisdiction_id, fmt, required=False
    )
    ids = _ids(service_request_id, fmt)
    if len(ids) != 1:
        raise Open311Error(400, "one service_request_id", fmt)
    items = await service.find_requests(
        session,
        service.request_query(path, ids=ids),
        detailed=principal is not None,
        base_url=_base_url(request),
        limit=1,
        offset=0,
    )
    if not items:
        raise Open311Error(404, f"service_request_id {ids[0]} not found", fmt)
    return render.respond(fmt, "service_requests", "request", items)


@router.get(
    "/tokens/{token}.{fmt}",
    response_class=Response,
    responses=_docs(
        [{"service_request_id": "42", "token": "20261120-0042"}],
        '<?xml version="1.0" encoding="utf-8"?>\n<service_requests><request>'
        "<service_request_id>42</service_request_id><token>20261120-0042</token></request>"
        "</service_requests>",
        404,
    ),
)
async def get_token(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str, Path(max_length=40)],
    fmt: str = FMT_PATH,
    jurisdiction_id: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The service request a token became. Requests here are realtime, so the POST answer
    carries both; the token is the case number."""
    fmt = _fmt(fmt)
    path = await service.jurisdiction_path(session, settings, jurisdiction_id, fmt)
    case_id = await service.case_id_for_token(session, token, path)
    if case_id is None:
        raise Open311Error(404, f"token {token[:40]} not found", fmt)
    return render.respond(
        fmt,
        "service_requests",
        "request",
        [{"service_request_id": str(case_id), "token": token}],
    )


@router.get(
    "/servicerequestupdates.{fmt}",
    response_class=Response,
    responses=_docs(
        [
            {
                "update_id": "301",
                "service_request_id": "42",
                "status": "open",
                "external_status_code": "handling",
                "updated_datetime": "2026-11-21T10:00:00+08:00",
                "description": "已交办示例区城管局办理",
                "media_url": None,
            }
        ],
        '<?xml version="1.0" encoding="utf-8"?>\n<service_request_updates><request_update>'
        "<update_id>301</update_id>…</request_update></service_request_updates>",
        400,
        403,
        404,
        429,
    ),
)
async def request_updates(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fmt: str = FMT_PATH,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    jurisdiction_id: Annotated[str | None, Query(max_length=100)] = None,
    api_key: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[str | None, Query(max_length=10)] = None,
    page_size: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """The servicerequestupdates extension: the public progress entries of the key's
    requests, oldest first, in the same 90-day window. `status` is open/closed and
    `external_status_code` our detailed status. Needs a key with `cases:read`."""
    fmt = _fmt(fmt)
    _principal, path = await _reader(
        request, session, settings, api_key, jurisdiction_id, fmt, required=True
    )
    limit, offset = _page(page, page_size, fmt)
    start = service.parse_datetime(start_date, "start_date", fmt) if start_date else None
    end = service.parse_datetime(end_date, "end_date", fmt) if end_date else None
    since, until = service.window(start, end, fmt)
    items = await service.updates(
        session, path, since, until, limit=limit, offset=offset, base_url=_base_url(request)
    )
    return render.respond(fmt, "service_request_updates", "request_update", items)


# Submitting ---------------------------------------------------------------------------------


def _form_field(description: str, *, alias: str | None = None, max_length: int = 1000) -> Any:
    return Form(alias=alias, max_length=max_length, description=description)


@router.post(
    "/requests.{fmt}",
    response_class=Response,
    responses=_docs(
        [
            {
                "service_request_id": "42",
                "token": "20261120-0042",
                "service_notice": "已登记，等待分办",
                "account_id": None,
            }
        ],
        '<?xml version="1.0" encoding="utf-8"?>\n<service_requests><request>'
        "<service_request_id>42</service_request_id><token>20261120-0042</token>…</request>"
        "</service_requests>",
        400,
        403,
        404,
        429,
    ),
)
async def create_request(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    fmt: str = FMT_PATH,
    api_key: Annotated[str | None, _form_field("The integrator's key (cases:submit)")] = None,
    jurisdiction_id: Annotated[str | None, _form_field("e.g. xuhui.sh.gov.cn")] = None,
    service_code: Annotated[str | None, _form_field("From services, e.g. municipal")] = None,
    lat: Annotated[str | None, _form_field("WGS84 latitude, e.g. 30.2802")] = None,
    long: Annotated[str | None, _form_field("WGS84 longitude, e.g. 120.132")] = None,
    address_string: Annotated[str | None, _form_field("e.g. 翠苑一区东门")] = None,
    address_id: Annotated[str | None, _form_field("Not used here")] = None,
    region: Annotated[
        str | None, _form_field("Where: a key of the region attribute", alias="attribute[region]")
    ] = None,
    title: Annotated[str | None, _form_field("Optional title", alias="attribute[title]")] = None,
    description: Annotated[
        str | None, _form_field("The report, at most 4000 characters", max_length=20_000)
    ] = None,
    first_name: Annotated[str | None, _form_field("Kept for staff, never published")] = None,
    last_name: Annotated[str | None, _form_field("Kept for staff, never published")] = None,
    phone: Annotated[str | None, _form_field("Kept for staff, never published")] = None,
    email: Annotated[str | None, _form_field("Not stored")] = None,
    device_id: Annotated[str | None, _form_field("Not stored")] = None,
    account_id: Annotated[str | None, _form_field("Not stored")] = None,
    media_url: Annotated[str | None, _form_field("An https link, kept for staff")] = None,
) -> Response:
    """Submit a service request (form-encoded, with `api_key`, as the specification says).
    It becomes a case of channel `open311`: routed, deadlined, on the dashboard, in the
    statistics, with the key's rate limit. `Idempotency-Key` (optional header) makes a
    retry answer the first result instead of a second case."""
    from app.open311 import submit

    fmt = _fmt(fmt)
    given = {
        "jurisdiction_id": jurisdiction_id,
        "service_code": service_code,
        "lat": lat,
        "long": long,
        "address_string": address_string,
        "address_id": address_id,
        "attribute[region]": region,
        "attribute[title]": title,
        "description": description,
        "first_name": first_name,
        "last_name": last_name,
        "phone": phone,
        "media_url": media_url,
    }
    fields = {k: v for k, v in given.items() if v is not None}
    principal = await _key(request, api_key, KeyScope.cases_submit, fmt, required=True)
    assert principal is not None
    answer = await submit.submit_request(
        session,
        settings,
        principal,
        fields,
        fmt,
        idempotency_key=request.headers.get("idempotency-key"),
    )
    return render.respond(fmt, "service_requests", "request", answer)
