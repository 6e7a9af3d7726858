"""One guard for every string a request carries: no NUL characters.

PostgreSQL text cannot hold U+0000; a NUL that reached a query or an insert used to fail
there with a 500. Rather than a validator on each field, this dependency runs before every
operation (it is installed on the application, see `app.main`) and refuses a NUL in the
path, the query, the headers, a JSON body or the text fields of a form with one 422
`validation_error` whose `errors` name each place (`query.q`, `body.beneficiary.name`).

It reads what FastAPI has already read: the body bytes and the parsed form are cached on the
request, so nothing is parsed twice, and a file's content is never looked at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile

NUL = "\x00"
MESSAGE = "must not contain NUL characters"
ERROR_TYPE = "string_nul_character"

# A UTF-8 JSON body can hold a NUL only as this escape (a raw NUL is not valid JSON); a body
# in UTF-16 or UTF-32, which FastAPI reads too, is full of NUL bytes and is always parsed.
_JSON_NUL = b"\\u0000"
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _in_json(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, str):
        if NUL in value:
            yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield (*loc, key)
            yield from _in_json(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _in_json(item, (*loc, index))


async def _in_body(request: Request) -> Iterator[tuple[str | int, ...]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    route = request.scope.get("route")
    if content_type in _FORM_TYPES:
        # Only a form the operation takes has been parsed (with its limits); others are
        # never read by anyone.
        if not (isinstance(route, APIRoute) and route.body_field is not None):
            return iter(())
        form = await request.form()
        found: list[tuple[str | int, ...]] = []
        for key, value in form.multi_items():
            if NUL in key:
                found.append(("body", key))
            elif isinstance(value, UploadFile):
                if value.filename and NUL in value.filename:
                    found.append(("body", key, "filename"))
            elif NUL in value:
                found.append(("body", key))
        return iter(found)
    if content_type == "application/json" or content_type.endswith("+json"):
        body = await request.body()
        if _JSON_NUL not in body and b"\x00" not in body:
            return iter(())
        try:
            document = json.loads(body)
        except ValueError:
            return iter(())  # FastAPI answers the malformed JSON itself
        return _in_json(document, ("body",))
    return iter(())


async def refuse_nul_characters(request: Request) -> None:
    """Raise a 422 naming every place of the request that holds a NUL character."""
    places: list[tuple[str | int, ...]] = []
    for name, value in request.path_params.items():
        if isinstance(value, str) and NUL in value:
            places.append(("path", name))
    for name, value in request.query_params.multi_items():
        if NUL in name or NUL in value:
            places.append(("query", name))
    for raw_name, raw_value in request.headers.raw:
        if b"\x00" in raw_name or b"\x00" in raw_value:
            places.append(("header", raw_name.decode("latin-1").lower()))
    places.extend(await _in_body(request))
    if places:
        raise RequestValidationError(
            [{"loc": place, "msg": MESSAGE, "type": ERROR_TYPE} for place in dict.fromkeys(places)]
        )
