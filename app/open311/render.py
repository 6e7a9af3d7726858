"""The two formats of GeoReport v2: XML (required by the specification) and JSON.

Every answer is built once as plain data (lists of dicts, values already strings, numbers,
booleans or None) and rendered here: XML with a root element and one child element per
item (`<services><service>…`, `<service_requests><request>…`, `<errors><error>…`), JSON as
the array (or object) itself. None is rendered as an empty element in XML and null in JSON.
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET  # noqa: S405  (we only write XML, never parse it)

from fastapi.responses import Response

XML_MEDIA_TYPE = "text/xml; charset=utf-8"
JSON_MEDIA_TYPE = "application/json; charset=utf-8"
FORMATS = ("xml", "json")

# How a list inside an item is written in XML: the container's children's element name.
_LIST_CHILD = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "contact": None,
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _append(parent: ET.Element, name: str, value: Any) -> None:
    element = ET.SubElement(parent, name)
    if isinstance(value, dict):
        for key, inner in value.items():
            _append(element, key, inner)
    elif isinstance(value, list):
        child = _LIST_CHILD.get(name) or name.rstrip("s")
        for item in value:
            _append(element, child, item)
    else:
        element.text = _text(value)


def to_xml(root: str, item: str | None, data: Any) -> bytes:
    """`data` is a list of items (each `<item>` under `<root>`) or one dict (the root's
    children)."""
    element = ET.Element(root)
    if isinstance(data, list):
        assert item is not None
        for entry in data:
            _append(element, item, entry)
    else:
        for key, value in data.items():
            _append(element, key, value)
    body: bytes = ET.tostring(element, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def respond(
    fmt: str, root: str, item: str | None, data: Any, *, status_code: int = 200
) -> Response:
    if fmt == "xml":
        return Response(
            to_xml(root, item, data), status_code=status_code, media_type=XML_MEDIA_TYPE
        )
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status_code, media_type=JSON_MEDIA_TYPE)


def errors(fmt: str, status_code: int, description: str) -> Response:
    """The specification's error answer: an array of `{code, description}` (the code is the
    HTTP status)."""
    return respond(
        fmt,
        "errors",
        "error",
        [{"code": status_code, "description": description}],
        status_code=status_code,
    )
