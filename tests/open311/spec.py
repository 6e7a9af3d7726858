"""Schemas written from the GeoReport v2 specification's field lists (and those of the
servicerequestupdates extension), for JSON (jsonschema) and XML (element names and
required children)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

import jsonschema

STRING_OR_NULL = {"type": ["string", "null"]}
NUMBER_OR_NULL = {"type": ["number", "null"]}
W3C_DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
DATETIME_OR_NULL = {"anyOf": [{"type": "null"}, {"type": "string", "pattern": W3C_DATETIME}]}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


SERVICE = _object(
    {
        "service_code": {"type": "string", "minLength": 1},
        "service_name": {"type": "string"},
        "description": {"type": "string"},
        "metadata": {"type": "boolean"},
        "type": {"enum": ["realtime", "batch", "blackbox"]},
        "keywords": {"type": "string"},
        "group": {"type": "string"},
    }
)
ATTRIBUTE = _object(
    {
        "variable": {"type": "boolean"},
        "code": {"type": "string"},
        "datatype": {
            "enum": ["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
        },
        "required": {"type": "boolean"},
        "datatype_description": {"type": "string"},
        "order": {"type": "integer"},
        "description": {"type": "string"},
    },
    {
        "values": {
            "type": "array",
            "items": _object({"key": {"type": "string"}, "name": {"type": "string"}}),
        }
    },
)
SERVICE_DEFINITION = _object(
    {"service_code": {"type": "string"}, "attributes": {"type": "array", "items": ATTRIBUTE}}
)
REQUEST = _object(
    {
        "service_request_id": {"type": "string", "minLength": 1},
        "status": {"enum": ["open", "closed"]},
        "status_notes": STRING_OR_NULL,
        "service_name": STRING_OR_NULL,
        "service_code": STRING_OR_NULL,
        "description": STRING_OR_NULL,
        "agency_responsible": STRING_OR_NULL,
        "service_notice": STRING_OR_NULL,
        "requested_datetime": DATETIME_OR_NULL,
        "updated_datetime": DATETIME_OR_NULL,
        "expected_datetime": DATETIME_OR_NULL,
        "address": STRING_OR_NULL,
        "address_id": STRING_OR_NULL,
        "zipcode": STRING_OR_NULL,
        "lat": NUMBER_OR_NULL,
        "long": NUMBER_OR_NULL,
        "media_url": STRING_OR_NULL,
    }
)
POST_ANSWER = _object(
    {"service_request_id": {"type": "string"}},
    {"token": STRING_OR_NULL, "service_notice": STRING_OR_NULL, "account_id": STRING_OR_NULL},
)
TOKEN_ANSWER = _object({"service_request_id": {"type": "string"}, "token": {"type": "string"}})
UPDATE = _object(
    {
        "update_id": {"type": "string"},
        "service_request_id": {"type": "string"},
        "status": {"anyOf": [{"type": "null"}, {"enum": ["open", "closed"]}]},
        "updated_datetime": {"type": "string", "pattern": W3C_DATETIME},
        "description": {"type": "string"},
    },
    {"media_url": STRING_OR_NULL, "external_status_code": STRING_OR_NULL},
)
ERROR = _object({"code": {"type": "integer"}, "description": {"type": "string"}})
DISCOVERY = _object(
    {
        "changeset": {"type": "string", "pattern": W3C_DATETIME},
        "contact": {"type": "string"},
        "key_service": {"type": "string"},
        "endpoints": {
            "type": "array",
            "minItems": 1,
            "items": _object(
                {
                    "specification": {"type": "string"},
                    "url": {"type": "string"},
                    "changeset": {"type": "string"},
                    "type": {"enum": ["production", "test"]},
                    "formats": {"type": "array", "items": {"type": "string"}},
                }
            ),
        },
    }
)


def check_json(data: Any, item: dict[str, Any], *, many: bool = True) -> None:
    schema = {"type": "array", "items": item} if many else item
    jsonschema.validate(data, schema)


# XML: (root, item) and the children every item must have.
XML_SHAPES: dict[str, tuple[str | None, list[str]]] = {
    "services": ("service", list(SERVICE["required"])),
    "service_requests": ("request", ["service_request_id"]),
    "errors": ("error", ["code", "description"]),
    "service_request_updates": ("request_update", list(UPDATE["required"])),
}


def check_xml(body: bytes, root: str, item_fields: list[str] | None = None) -> ET.Element:
    """Parse, check the declaration, the root element, each item's element name and its
    required children; answers the root."""
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>'), body[:60]
    element = ET.fromstring(body)  # noqa: S314  (our own answer)
    assert element.tag == root
    if root in XML_SHAPES:
        item, required = XML_SHAPES[root]
        for child in element:
            assert child.tag == item, child.tag
            names = {c.tag for c in child}
            missing = set(item_fields or required) - names
            assert not missing, f"<{item}> lacks {missing}"
    return element
