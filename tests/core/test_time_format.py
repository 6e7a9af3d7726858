"""Every answer writes a moment one way: ISO 8601, Asia/Shanghai, seconds, `+08:00`."""

from __future__ import annotations

import csv
import io
import re
import types
import typing
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, PlainSerializer

from app.core.clock import clock
from app.core.config import Settings
from app.core.times import api_time
from app.notify.models import InboxMessage
from app.wishes.models import WishStatus
from tests.core.helpers import submit_case
from tests.factories import Factory
from tests.presence.helpers import STATION_LAT, STATION_LNG, printed, scan
from tests.wishes.conftest import make_wish

ONE_FORM = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00")
# Anything that looks like a moment (a date, a time of day, maybe an offset).
LOOKS_LIKE_A_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _moments(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if LOOKS_LIKE_A_MOMENT.search(value) else []
    if isinstance(value, dict):
        return [m for v in value.values() for m in _moments(v)]
    if isinstance(value, list):
        return [m for v in value for m in _moments(v)]
    return []


def assert_one_form(response: httpx.Response, at_least: int) -> list[str]:
    assert response.status_code < 300, response.text
    found = _moments(response.json())
    assert len(found) >= at_least, (response.request.url, found)
    wrong = [m for m in found if not ONE_FORM.fullmatch(m)]
    assert not wrong, (response.request.url, wrong)
    return found


async def test_representative_answers_write_times_one_way(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    # A moment with microseconds, to see them dropped.
    clock.freeze(datetime(2026, 11, 22, 2, 0, 5, 654321, tzinfo=UTC))
    d = await factory.district()
    station = await factory.station(d.community_a, latitude=STATION_LAT, longitude=STATION_LNG)
    unit = await factory.unit("区城市管理局", d.district)
    deputy = await factory.deputy(d.community_a, station, name="王建国")
    deputy_actor = await factory.deputy_actor(deputy)
    staff = await factory.staff(d.district)
    unit2 = await factory.unit("东湖街道办事处", d.district)
    handler = await factory.unit_handler(unit2)
    resident = await factory.resident(phone="13800001111")

    # A token answer (and the account in it).
    login = await client.post("/auth/dev-login", json={"openid": "time-format-resident"})
    assert assert_one_form(login, 1)

    # A case with its timeline: a deadline sent without an offset is Shanghai time, one sent
    # in UTC is answered in Shanghai time too.
    submitted = await submit_case(client, factory, resident, station)
    assert_one_form(submitted, 1)
    case_id = submitted.json()["id"]
    assigned = await client.post(
        f"/cases/{case_id}/assign",
        json={"unit_id": unit.id, "deadline": "2026-12-10T18:00:00"},
        headers=staff.headers,
    )
    assert assert_one_form(assigned, 2)
    assert assigned.json()["deadline"] == "2026-12-10T18:00:00+08:00"
    # A date alone is the start of that day, Shanghai time.
    edited = await client.patch(
        f"/cases/{case_id}", json={"deadline": "2026-12-12", "version": 2}, headers=staff.headers
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["deadline"] == "2026-12-12T00:00:00+08:00"
    transferred = await client.post(
        f"/cases/{case_id}/transfer",
        json={"unit_id": unit2.id, "deadline": "2026-12-11T10:00:00Z", "version": 3},
        headers=staff.headers,
    )
    assert transferred.status_code == 200, transferred.text
    assert transferred.json()["deadline"] == "2026-12-11T18:00:00+08:00"
    replied = await client.post(
        f"/cases/{case_id}/reply",
        json={"public_answer": "已修复路灯，恢复照明。"},
        headers=handler.headers,
    )
    assert replied.status_code == 200, replied.text
    detail = await client.get(f"/cases/{case_id}", headers=staff.headers)
    found = assert_one_form(detail, 5)
    assert "2026-11-22T10:00:05+08:00" in found
    timeline = detail.json()["timeline"]
    assert {e["data"].get("deadline") for e in timeline} >= {
        "2026-12-10T18:00:00+08:00",
        "2026-12-11T18:00:00+08:00",
    }
    assert_one_form(await client.get("/cases", headers=staff.headers), 2)
    assert_one_form(await client.get(f"/cases/{case_id}", headers=resident.headers), 3)

    # A wish with its timeline.
    wish = await make_wish(
        factory, resident.user, station, status=WishStatus.claimed, claimer=deputy_actor
    )
    assert_one_form(await client.get(f"/wishes/{wish.id}", headers=resident.headers), 3)
    await make_wish(factory, resident.user, station, title="想要一副老花镜")
    assert_one_form(await client.get("/wishes"), 2)

    # A check-in, its hand-built answer on the hot path and the list.
    checked_in = await scan(client, deputy_actor.headers, printed(settings, station))
    assert assert_one_form(checked_in, 1)
    assert_one_form(await client.get("/checkins", headers=staff.headers), 1)

    # A message in the in-app inbox, and the outbox as staff see it.
    await factory.add(
        InboxMessage(user_id=resident.user.id, event="case.fed_back", title="答复", body="已答复")
    )
    assert_one_form(await client.get("/me/messages", headers=resident.headers), 1)
    admin = await factory.admin()
    assert_one_form(await client.get("/notifications", headers=admin.headers), 1)

    # Statistics and the roster.
    assert_one_form(await client.get("/stats/deputies", headers=staff.headers), 1)
    assert_one_form(
        await client.get(f"/deputies/{deputy.id}/roster-entry", headers=staff.headers), 1
    )

    # The export writes times in the same form.
    export = await client.get("/exports/cases", headers=staff.headers)
    assert export.status_code == 200, export.text
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    cells = [c for row in rows[1:] for c in row if LOOKS_LIKE_A_MOMENT.search(c)]
    assert cells and all(ONE_FORM.fullmatch(c) for c in cells), cells


def test_api_time_form() -> None:
    utc = datetime(2026, 5, 20, 1, 30, 0, 999999, tzinfo=UTC)
    assert api_time(utc) == "2026-05-20T09:30:00+08:00"
    assert api_time(utc.replace(tzinfo=None)) == "2026-05-20T09:30:00+08:00"


def _uses_bare_datetime(annotation: Any, seen: set[type]) -> list[str]:
    """Paths to datetime fields of `annotation` that are not `Timestamp`."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        if base is datetime:
            ours = any(isinstance(m, PlainSerializer) and m.func is api_time for m in metadata)
            return [] if ours else ["Annotated[datetime]"]
        return _uses_bare_datetime(base, seen)
    if annotation is datetime:
        return ["datetime"]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return []
        seen.add(annotation)
        out = []
        for name, field in annotation.model_fields.items():
            full = (
                typing.Annotated[(field.annotation, *field.metadata)]
                if field.metadata
                else field.annotation
            )
            out += [f"{annotation.__name__}.{name}: {p}" for p in _uses_bare_datetime(full, seen)]
        return out
    if origin is not None or isinstance(annotation, types.UnionType):
        return [p for arg in typing.get_args(annotation) for p in _uses_bare_datetime(arg, seen)]
    return []


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # an included router (FastAPI 0.16x)
            found += _api_routes(route.original_router.routes)
    return found


def test_every_response_schema_writes_times_as_timestamp(app: FastAPI) -> None:
    seen: set[type] = set()
    bare: list[str] = []
    routes = [r for r in _api_routes(app.routes) if r.response_model is not None]
    assert len(routes) > 50
    for route in routes:
        bare += _uses_bare_datetime(route.response_model, seen)
    assert not bare, bare
    assert any("created_at" in m.model_fields for m in seen)
