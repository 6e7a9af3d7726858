"""Hostile input over the whole API, walked from the OpenAPI document.

Two kinds of values used to reach the database and fail there with a 500 on PostgreSQL:
text holding a NUL character (PostgreSQL text cannot hold one) and ids outside the 32-bit
range of its integer keys. Every operation the document lists gets them in every place it
accepts them; each must answer a 4xx, and a NUL anywhere a 422 `validation_error` naming the
field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.core.security import Role
from app.core.types import MAX_ID
from app.main import create_app
from tests.attachments.images import png, upload
from tests.conftest import make_settings
from tests.factories import Factory

API_PREFIX = "/api/v1"
NUL_TEXT = "a\x00b"
OUT_OF_RANGE_IDS = (2**31, 2**63, -1, 0)

DOCUMENT: dict[str, Any] = create_app(make_settings()).openapi()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return list(self.spec.get("parameters", []))


def _operations() -> list[Operation]:
    return [
        Operation(method, path, spec)
        for path, item in DOCUMENT["paths"].items()
        for method, spec in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


OPERATIONS = _operations()


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = DOCUMENT["components"]["schemas"][name]
    return schema


def _variants(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema itself, or the alternatives of an anyOf/oneOf (null left out)."""
    schema = _resolve(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [_resolve(s) for s in schema[key] if _resolve(s).get("type") != "null"]
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return [_resolve(schema["allOf"][0])]
    return [schema]


def _has_type(schema: dict[str, Any], kind: str) -> bool:
    return any(v.get("type") == kind for v in _variants(schema))


def _is_id(parameter: dict[str, Any]) -> bool:
    name = parameter["name"]
    return _has_type(parameter["schema"], "integer") and (
        name == "id" or name.endswith("_id") or name == "category"
    )


def _path_value(parameter: dict[str, Any]) -> str:
    """A harmless, valid-looking value for a path parameter not under test."""
    for variant in _variants(parameter["schema"]):
        if "enum" in variant:
            return str(variant["enum"][0])
        if variant.get("type") == "integer":
            return "1"
    return "x"


def _url(operation: Operation, overrides: dict[str, str] | None = None) -> str:
    path = operation.path
    for parameter in operation.parameters:
        if parameter["in"] == "path":
            value = (overrides or {}).get(parameter["name"], _path_value(parameter))
            path = path.replace("{" + parameter["name"] + "}", value)
    assert path.startswith(API_PREFIX) or not path.startswith("/api"), path
    return path


def _string_fields(
    schema: dict[str, Any], loc: tuple[str | int, ...] = (), depth: int = 0
) -> Iterator[tuple[tuple[str | int, ...], bool]]:
    """Every place a string goes in a body of this schema: (location, is a file)."""
    if depth > 6:
        return
    for variant in _variants(schema):
        kind = variant.get("type")
        if kind == "string":
            yield loc, variant.get("format") == "binary" or "contentMediaType" in variant
        elif kind == "object":
            for name, sub in variant.get("properties", {}).items():
                yield from _string_fields(sub, (*loc, name), depth + 1)
        elif kind == "array" and "items" in variant:
            yield from _string_fields(variant["items"], (*loc, 0), depth + 1)


def _nest(loc: tuple[str | int, ...], value: Any) -> Any:
    for part in reversed(loc):
        value = [value] if isinstance(part, int) else {part: value}
    return value


def _body_cases(operation: Operation) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(media type, httpx request arguments, the field the error must name)."""
    content = operation.spec.get("requestBody", {}).get("content", {})
    for media_type, media in content.items():
        fields = [(loc, f) for loc, f in _string_fields(media["schema"]) if loc]
        for loc, is_file in fields:
            field = ".".join(str(part) for part in ("body", *loc))
            if media_type == "application/json":
                yield media_type, {"json": _nest(loc, NUL_TEXT)}, field
            elif media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
                if is_file or len(loc) != 1:
                    continue
                form = {str(loc[0]): NUL_TEXT}
                if media_type == "multipart/form-data":
                    yield media_type, {"data": form, "files": {"_": ("a.txt", b"x")}}, field
                else:
                    yield media_type, {"data": form}, field


@pytest.fixture
async def existing_ids(factory: Factory) -> dict[str, str]:
    """Ids of real rows, for the other path ids of an operation whose one id is under test
    (so that a lookup of the other does not answer 404 first)."""
    from app.identity.models import User
    from app.integrations.models import Integrator, Webhook

    district = await factory.district()
    deputy = await factory.deputy()
    station = await factory.station(district.community_a)
    account = await factory.add(User(role=Role.staff, username="integrator-hostile"))
    integrator = await factory.add(Integrator(name="接入系统", user_id=account.id))
    webhook = await factory.add(
        Webhook(
            integrator_id=integrator.id,
            url="https://example.com/hook",
            events=["case.created"],
            secret="whsec_hostile",
        )
    )
    return {
        "deputy_id": str(deputy.id),
        "region_id": str(district.district.id),
        "station_id": str(station.id),
        "integrator_id": str(integrator.id),
        "webhook_id": str(webhook.id),
    }


@pytest.fixture
async def callers(factory: Factory) -> dict[str, dict[str, str]]:
    district = await factory.district()
    unit = await factory.unit(region=district.district)
    return {
        "anonymous": {},
        "resident": (await factory.resident()).headers,
        "deputy": (await factory.deputy_actor()).headers,
        "staff": (await factory.staff(district.district)).headers,
        "unit": (await factory.unit_handler(unit)).headers,
        "admin": (await factory.actor(Role.admin)).headers,
    }


async def _call(
    client: httpx.AsyncClient, operation: Operation, url: str, **kwargs: Any
) -> httpx.Response:
    # The client's base URL already ends in the API prefix.
    target = url.removeprefix(API_PREFIX) if url.startswith(API_PREFIX) else "http://test" + url
    return await client.request(operation.method.upper(), target, **kwargs)


def test_the_document_lists_the_api() -> None:
    assert len(OPERATIONS) > 50
    assert sum(1 for op in OPERATIONS for p in op.parameters if _is_id(p)) > 30


def _request_schemas() -> set[str]:
    """Names of the component schemas a request body can hold, however deeply."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in found:
                    found.add(name)
                    walk(DOCUMENT["components"]["schemas"][name])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for operation in OPERATIONS:
        walk(operation.spec.get("requestBody", {}))
    return found


def test_every_id_the_api_accepts_is_bounded_to_the_database_range() -> None:
    """Path, query and body ids alike: documented (and so validated) as 1..MAX_ID."""
    unbounded = []
    for operation in OPERATIONS:
        for parameter in operation.parameters:
            if _is_id(parameter):
                schema = next(
                    v for v in _variants(parameter["schema"]) if v.get("type") == "integer"
                )
                if schema.get("minimum") != 1 or schema.get("maximum") != MAX_ID:
                    unbounded.append(f"{operation.label} {parameter['in']} {parameter['name']}")
    for name in _request_schemas():
        for prop, sub in DOCUMENT["components"]["schemas"][name].get("properties", {}).items():
            ints = [v for v in _variants(sub) if v.get("type") == "integer"]
            ints += [
                _resolve(v["items"])
                for v in _variants(sub)
                if v.get("type") == "array"
                and _resolve(v.get("items", {})).get("type") == "integer"
            ]
            is_id = prop == "id" or prop.endswith(("_id", "_ids"))
            if is_id and ints and (ints[0].get("minimum"), ints[0].get("maximum")) != (1, MAX_ID):
                unbounded.append(f"{name}.{prop}")
    assert not unbounded, unbounded


ID_OPERATIONS = [op for op in OPERATIONS if any(_is_id(p) for p in op.parameters)]


@pytest.mark.parametrize("operation", ID_OPERATIONS, ids=[op.label for op in ID_OPERATIONS])
async def test_out_of_range_ids_are_refused_everywhere(
    client: httpx.AsyncClient,
    callers: dict[str, dict[str, str]],
    existing_ids: dict[str, str],
    operation: Operation,
) -> None:
    failures = []
    for parameter in (p for p in operation.parameters if _is_id(p)):
        for value in OUT_OF_RANGE_IDS:
            if parameter["in"] == "path":
                url = _url(operation, {**existing_ids, parameter["name"]: str(value)})
                params = {}
            else:
                url, params = _url(operation, existing_ids), {parameter["name"]: str(value)}
            statuses = {}
            for who, headers in callers.items():
                answer = await _call(client, operation, url, params=params, headers=headers)
                statuses[who] = answer.status_code
            # Callers the endpoint lets in get a 422; the others a 401/403; nobody a 5xx.
            if any(s >= 500 for s in statuses.values()) or 422 not in statuses.values():
                failures.append(f"{parameter['name']}={value}: {statuses}")
    assert not failures, failures


def _nul_cases(operation: Operation) -> Iterator[tuple[dict[str, Any], str]]:
    """(request arguments besides the URL, the field the error must name)."""
    for parameter in operation.parameters:
        if not _has_type(parameter["schema"], "string"):
            continue
        name = parameter["name"]
        if parameter["in"] == "path":
            yield {"_path": {name: "a%00b"}}, f"path.{name}"
        elif parameter["in"] == "query":
            yield {"params": {name: NUL_TEXT}}, f"query.{name}"
        elif parameter["in"] == "header":
            yield {"headers": {name: NUL_TEXT}}, f"header.{name.lower()}"
    for _media_type, arguments, field in _body_cases(operation):
        yield arguments, field


NUL_OPERATIONS = [op for op in OPERATIONS if any(True for _ in _nul_cases(op))]


@pytest.mark.parametrize("operation", NUL_OPERATIONS, ids=[op.label for op in NUL_OPERATIONS])
async def test_nul_characters_are_refused_in_every_string(
    client: httpx.AsyncClient, callers: dict[str, dict[str, str]], operation: Operation
) -> None:
    failures = []
    for arguments, field in _nul_cases(operation):
        arguments = dict(arguments)
        url = _url(operation, arguments.pop("_path", None))
        for who in ("anonymous", "admin"):
            headers = {**callers[who], **arguments.get("headers", {})}
            answer = await _call(client, operation, url, **{**arguments, "headers": headers})
            body = answer.json() if answer.content else {}
            named = [e.get("field") for e in body.get("errors") or []]
            if answer.status_code != 422 or body.get("code") != "validation_error":
                failures.append(f"{field} as {who}: {answer.status_code} {answer.text[:200]}")
            elif field not in named:
                failures.append(f"{field} as {who}: errors name {named}")
    assert not failures, failures


def test_every_operation_with_text_input_is_walked() -> None:
    assert len(NUL_OPERATIONS) > 40


# --- The places the defect was met, one by one ------------------------------------------------


def _nul_refused(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert body["code"] == "validation_error"
    assert {"field": field, "message": "must not contain NUL characters"}.items() <= (
        body["errors"][0].items()
    ), body


async def test_nul_in_a_password_login_is_refused_and_counts_no_failure(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    from app.core.security import hash_password

    staff = await factory.actor(Role.admin, password_hash=await hash_password("right-pass-1"))
    username = staff.user.username
    for body, field in (
        ({"username": f"{username}\x00", "password": "x"}, "body.username"),
        ({"username": username, "password": "right-pass-1\x00"}, "body.password"),
    ):
        for _ in range(6):
            _nul_refused(await client.post("/auth/password-login", json=body), field)
    # Not one of those was a failed login: the account is not locked.
    ok = await client.post(
        "/auth/password-login", json={"username": username, "password": "right-pass-1"}
    )
    assert ok.status_code == 200, ok.text


async def test_nul_in_a_nickname_changes_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    resident = await factory.resident(nickname="老张")
    answer = await client.patch("/me", json={"nickname": "老\x00张"}, headers=resident.headers)
    _nul_refused(answer, "body.nickname")
    assert (await client.get("/me", headers=resident.headers)).json()["nickname"] == "老张"


async def test_nul_in_nested_text_names_the_nested_field(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    resident = await factory.resident()
    wish = {
        "title": "给孩子买书包",
        "content": "孩子的书包坏了，想要一个新的书包",
        "beneficiary": {"name": "小\x00明"},
    }
    answer = await client.post("/wishes", json=wish, headers=resident.headers)
    _nul_refused(answer, "body.beneficiary.name")


async def test_nul_in_a_json_body_in_utf16_is_found_too(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    resident = await factory.resident(nickname="老张")
    for encoding in ("utf-16", "utf-32"):
        answer = await client.patch(
            "/me",
            content=json.dumps({"nickname": "老\x00张"}).encode(encoding),
            headers={**resident.headers, "Content-Type": "application/json"},
        )
        _nul_refused(answer, "body.nickname")
    assert (await client.get("/me", headers=resident.headers)).json()["nickname"] == "老张"


async def test_nul_in_searches_filters_paths_headers_and_file_names(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    district = await factory.district()
    staff = await factory.staff(district.district)
    _nul_refused(
        await client.get("/stations", params={"q": "和平\x00路"}, headers=staff.headers),
        "query.q",
    )
    _nul_refused(await client.get("/cases", params={"q": "\x00"}, headers=staff.headers), "query.q")
    admin = await factory.admin()
    _nul_refused(
        await client.get("/notifications", params={"event": "case\x00"}, headers=admin.headers),
        "query.event",
    )
    _nul_refused(await client.get("/deputy-codes/d.1.%00"), "path.scene")
    _nul_refused(
        await client.post("/cases", json={}, headers={**staff.headers, "Idempotency-Key": "k\x00"}),
        "header.idempotency-key",
    )
    # httpx escapes control characters in file names; a raw client need not.
    raw = (
        b"--b\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a\x00.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + b"\x89PNG\r\n\x1a\n" + b"\r\n--b--\r\n"
    )
    upload = await client.post(
        "/attachments",
        content=raw,
        headers={**staff.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    _nul_refused(upload, "body.file.filename")


async def test_nul_bytes_inside_an_uploaded_file_are_its_own_business(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """The guard reads text fields, never a file's content (images are full of NUL bytes)."""
    resident = await factory.resident()
    image = png()
    assert b"\x00" in image
    answer = await upload(client, resident, image, filename="a.png", content_type="image/png")
    assert answer.status_code == 201, answer.text


async def test_out_of_range_ids_in_a_body_are_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.admin()
    for value in (2**31, 2**63, 0, -1):
        answer = await client.post(
            "/users",
            json={
                "username": "new-staff",
                "password": "a-good-pass-123",
                "role": "staff",
                "region_id": value,
            },
            headers=admin.headers,
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "body.region_id"
    for path in ("/me/messages/2147483648/read", "/notifications/2147483648/retry"):
        answer = await client.post(path, headers=admin.headers)
        assert answer.status_code == 422 and answer.json()["code"] == "validation_error"
    answer = await client.get(
        "/notifications", params={"recipient_id": 2**63}, headers=admin.headers
    )
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "query.recipient_id"
