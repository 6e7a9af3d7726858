"""Open311 GeoReport v2 over real HTTP: a GeoReport client library from PyPI (georeport)
and plain HTTP for what it does not cover (POST, tokens, updates, errors); every answer is
checked against the specification's field lists in JSON and XML."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from georeport import GeoReport
from sqlalchemy import select

from app.cases.models import Case, CaseEvent
from app.core.clock import clock, utcnow
from app.core.db import Database
from tests.cases.conftest import World, act, submit
from tests.integrations.conftest import Key, issue
from tests.open311 import spec
from tests.open311.conftest import JURISDICTION, LiveServer

PERSONAL = ("13800001111", "13900002222", "张", "zhang@example.com")


def _client(live: LiveServer, fmt: str) -> GeoReport:
    return GeoReport(live.open311, jurisdiction=JURISDICTION, output_format=fmt)


@pytest.fixture
async def submitter(client: httpx.AsyncClient, world: World, hotline: int) -> Key:
    return await issue(client, world, hotline, ["cases:submit", "cases:read"])


def _form(world: World, key: Key, **extra: str) -> dict[str, str]:
    form = {
        "api_key": key.key,
        "jurisdiction_id": JURISDICTION,
        "service_code": "municipal",
        "lat": "30.28031",
        "long": "120.13215",
        "address_string": "翠苑一区东门 3 号楼",
        "attribute[region]": str(world.d.community_a.id),
        "description": "小区东门路灯坏了一个多月，晚上老人出行很不方便。",
        "first_name": "三",
        "last_name": "张",
        "phone": "13800001111",
        "email": "zhang@example.com",
        "device_id": "hotline-desk-7",
    }
    form.update(extra)
    return form


async def _post(
    live: LiveServer, form: dict[str, str], fmt: str = "json", **kw: Any
) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(f"{live.open311}/requests.{fmt}", data=form, **kw)


async def test_discovery_services_and_definitions_through_the_client_library(
    live: LiveServer, world: World
) -> None:
    json_client, xml_client = _client(live, "json"), _client(live, "xml")
    services = await asyncio.to_thread(json_client.get_service_list)
    spec.check_json(services, spec.SERVICE)
    assert "municipal" in {s["service_code"] for s in services}
    as_xml = await asyncio.to_thread(xml_client.get_service_list)
    assert {s["service_code"] for s in as_xml} == {s["service_code"] for s in services}

    definition = await asyncio.to_thread(json_client.get_service_definition, "municipal")
    spec.check_json(definition, spec.SERVICE_DEFINITION, many=False)
    region = definition["attributes"][0]
    assert region["code"] == "region" and region["required"] is True
    assert str(world.d.community_a.id) in {v["key"] for v in region["values"]}
    xml_definition = await asyncio.to_thread(xml_client.get_service_definition, "municipal")
    assert xml_definition["service_code"] == "municipal"
    assert xml_definition["attributes"]["attribute"][0]["code"] == "region"

    async with httpx.AsyncClient() as http:
        for fmt in ("json", "xml"):
            answer = await http.get(f"{live.open311}/discovery.{fmt}")
            assert answer.status_code == 200
            if fmt == "json":
                spec.check_json(answer.json(), spec.DISCOVERY, many=False)
            else:
                root = spec.check_xml(answer.content, "discovery")
                formats = [f.text for f in root.iter("format")]
                assert formats == ["text/xml", "application/json"]
            services_xml = await http.get(f"{live.open311}/services.xml")
            spec.check_xml(services_xml.content, "services")
            assert services_xml.headers["content-type"].startswith("text/xml")


async def test_a_posted_request_is_a_case_like_any_other(
    live: LiveServer,
    world: World,
    submitter: Key,
    client: httpx.AsyncClient,
    db: Database,
) -> None:
    answer = await _post(live, _form(world, submitter))
    assert answer.status_code == 200, answer.text
    spec.check_json(answer.json(), spec.POST_ANSWER)
    [created] = answer.json()
    case_id = int(created["service_request_id"])

    # On the staff queue like any case: channel open311, registered, timeline by the key.
    detail = await client.get(f"/cases/{case_id}", headers=world.staff.headers)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["channel"] == "open311" and body["status"] == "registered"
    assert body["timeline"][0]["actor_role"] == "integrator"
    async with db.transaction(write=False) as session:
        event = (
            await session.execute(select(CaseEvent).where(CaseEvent.case_id == case_id))
        ).scalar_one()
        case = await session.get(Case, case_id)
    assert event.api_key_id == submitter.id
    assert case is not None and case.contact_phone == "13800001111" and case.contact_name == "张 三"

    # The token resolves at once (realtime service).
    async with httpx.AsyncClient() as http:
        for fmt in ("json", "xml"):
            token = await http.get(f"{live.open311}/tokens/{created['token']}.{fmt}")
            assert token.status_code == 200
            if fmt == "json":
                spec.check_json(token.json(), spec.TOKEN_ANSWER)
                assert token.json()[0]["service_request_id"] == str(case_id)
            else:
                spec.check_xml(token.content, "service_requests", ["service_request_id", "token"])

    xml_post = await _post(
        live, _form(world, submitter, description="井盖松动，车辆经过时响声很大。"), "xml"
    )
    assert xml_post.status_code == 200
    spec.check_xml(xml_post.content, "service_requests", ["service_request_id", "token"])


async def test_requests_read_through_the_client_library_never_show_personal_data(
    live: LiveServer, world: World, submitter: Key, client: httpx.AsyncClient
) -> None:
    posted = (await _post(live, _form(world, submitter))).json()[0]
    case_id = int(posted["service_request_id"])
    await act(client, world.staff, case_id, "assign", {"unit_id": world.unit.id})
    other = await submit(client, world.resident2, world, station_id=world.station_b.id)

    json_client, xml_client = _client(live, "json"), _client(live, "xml")
    everything = await asyncio.to_thread(json_client.get_service_requests)
    spec.check_json(everything, spec.REQUEST)
    by_id = {r["service_request_id"]: r for r in everything}
    assert set(by_id) == {str(case_id), str(other["id"])}
    mine = by_id[str(case_id)]
    assert mine["status"] == "open" and "handling" in mine["status_notes"]
    assert mine["agency_responsible"] == world.unit.name
    assert mine["expected_datetime"] is not None
    # Anonymous: the title only, the address cut, the position rounded, no photos.
    assert mine["description"] == posted_title(world)
    assert mine["lat"] == 30.28 and mine["media_url"] is None
    for value in PERSONAL:
        assert value not in str(everything)

    one = await asyncio.to_thread(json_client.get_service_request, str(case_id))
    assert one["service_request_id"] == str(case_id)
    xml_one = await asyncio.to_thread(xml_client.get_service_request, str(case_id))
    assert xml_one["service_request_id"] == str(case_id) and xml_one["status"] == "open"
    xml_list = await asyncio.to_thread(
        xml_client.get_service_requests, None, None, None, None, "open"
    )
    assert {r["service_request_id"] for r in xml_list} == {str(case_id), str(other["id"])}

    closed = await asyncio.to_thread(
        json_client.get_service_requests, None, None, None, None, "closed"
    )
    assert closed == []
    by_code = await asyncio.to_thread(json_client.get_service_requests, None, "nonexistent")
    assert by_code == []
    ids = await asyncio.to_thread(json_client.get_service_requests, f"{case_id},{other['id']}")
    assert len(ids) == 2

    # With a key that reads cases: the full text, as staff of its region see it.
    async with httpx.AsyncClient() as http:
        full = await http.get(
            f"{live.open311}/requests/{case_id}.json", params={"api_key": submitter.key}
        )
        assert full.status_code == 200
        spec.check_json(full.json(), spec.REQUEST)
        assert full.json()[0]["description"].startswith("小区东门路灯坏了")
        for value in PERSONAL:
            assert value not in full.text
        xml = await http.get(f"{live.open311}/requests.xml", params={"page_size": "1"})
        root = spec.check_xml(xml.content, "service_requests")
        assert len(root) == 1 and xml.headers["x-total-count"] == "2"


def posted_title(world: World) -> str:
    return "小区东门路灯坏了一个多月，晚上老人出行很不方便。"[:30]


async def test_the_90_day_window_and_date_filters(
    live: LiveServer, world: World, submitter: Key
) -> None:
    await _post(live, _form(world, submitter))
    client = _client(live, "json")
    now = utcnow()
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    inside = await asyncio.to_thread(
        client.get_service_requests,
        None,
        None,
        (now - timedelta(days=1)).strftime(fmt),
        (now + timedelta(days=1)).strftime(fmt),
    )
    assert len(inside) == 1
    before = await asyncio.to_thread(
        client.get_service_requests, None, None, None, (now - timedelta(days=1)).strftime(fmt)
    )
    assert before == []
    async with httpx.AsyncClient() as http:
        too_long = await http.get(
            f"{live.open311}/requests.json",
            params={"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
        )
        assert too_long.status_code == 400
        spec.check_json(too_long.json(), spec.ERROR)
        assert too_long.json()[0]["code"] == 400


@pytest.mark.parametrize(
    ("change", "status", "phrase"),
    [
        ({"service_code": ""}, 400, "service_code"),
        ({"service_code": "no-such-service"}, 404, "service_code"),
        ({"attribute[region]": ""}, 400, "attribute[region]"),
        ({"attribute[region]": "999999"}, 400, "attribute[region]"),
        ({"lat": "", "long": "", "address_string": ""}, 400, "lat"),
        ({"lat": "north"}, 400, "lat"),
        ({"description": "短"}, 400, "description"),
        ({"description": "很长" * 2001}, 400, "description"),
        ({"phone": "call me"}, 400, "phone"),
        ({"jurisdiction_id": "elsewhere.example"}, 404, "jurisdiction_id"),
        ({"api_key": ""}, 403, "api_key"),
        ({"api_key": "lsk_aaaaaaaa_" + "b" * 43}, 403, "api_key"),
        ({"media_url": "http://10.0.0.1/x.jpg"}, 400, "media_url"),
    ],
)
async def test_bad_posts_answer_the_spec_errors_and_change_nothing(
    live: LiveServer,
    world: World,
    submitter: Key,
    client: httpx.AsyncClient,
    change: dict[str, str],
    status: int,
    phrase: str,
) -> None:
    for fmt in ("json", "xml"):
        answer = await _post(live, _form(world, submitter, **change), fmt)
        assert answer.status_code == status, answer.text
        if fmt == "json":
            spec.check_json(answer.json(), spec.ERROR)
            assert answer.json()[0]["code"] == status
            assert phrase in answer.json()[0]["description"]
        else:
            root = spec.check_xml(answer.content, "errors")
            assert root[0].findtext("code") == str(status)
    listed = await client.get("/cases", headers=world.admin.headers)
    assert listed.json()["total"] == 0


async def test_wrong_scope_and_wrong_region_are_refused(
    live: LiveServer, world: World, client: httpx.AsyncClient, hotline: int
) -> None:
    reader = await issue(client, world, hotline, ["cases:read"])
    refused = await _post(live, _form(world, reader))
    assert refused.status_code == 403 and "cases:submit" in refused.json()[0]["description"]
    street_b = await issue(client, world, hotline, ["cases:submit"], world.d.street_b.id)
    outside = await _post(live, _form(world, street_b))
    assert outside.status_code == 403
    async with httpx.AsyncClient() as http:
        updates = await http.get(
            f"{live.open311}/servicerequestupdates.json", params={"api_key": street_b.key}
        )
        assert updates.status_code == 403
        anonymous = await http.get(f"{live.open311}/servicerequestupdates.xml")
        assert anonymous.status_code == 403
        spec.check_xml(anonymous.content, "errors")
        missing = await http.get(f"{live.open311}/requests/999999.xml")
        assert missing.status_code == 404
        spec.check_xml(missing.content, "errors")
        bad_format = await http.get(f"{live.open311}/services.csv")
        assert bad_format.status_code == 404
    assert (await client.get("/cases", headers=world.admin.headers)).json()["total"] == 0


async def test_an_idempotency_key_makes_a_retry_answer_the_first_request(
    live: LiveServer, world: World, submitter: Key, client: httpx.AsyncClient
) -> None:
    headers = {"Idempotency-Key": "hotline-ticket-20261120-0001"}
    first, second = await asyncio.gather(
        _post(live, _form(world, submitter), headers=headers),
        _post(live, _form(world, submitter), headers=headers),
    )
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json() == second.json()
    assert (await client.get("/cases", headers=world.admin.headers)).json()["total"] == 1


async def test_service_request_updates_follow_progress(
    live: LiveServer, world: World, submitter: Key, client: httpx.AsyncClient
) -> None:
    posted = (await _post(live, _form(world, submitter))).json()[0]
    case_id = int(posted["service_request_id"])
    await act(client, world.staff, case_id, "assign", {"unit_id": world.unit.id})
    await act(client, world.handler, case_id, "reply", {"public_answer": "已修复路灯，恢复照明。"})
    async with httpx.AsyncClient() as http:
        for fmt in ("json", "xml"):
            answer = await http.get(
                f"{live.open311}/servicerequestupdates.{fmt}",
                params={"api_key": submitter.key, "jurisdiction_id": JURISDICTION},
            )
            assert answer.status_code == 200, answer.text
            if fmt == "json":
                spec.check_json(answer.json(), spec.UPDATE)
                codes = [u["external_status_code"] for u in answer.json()]
                assert codes == ["registered", "handling", "fed_back"]
                assert all(u["service_request_id"] == str(case_id) for u in answer.json())
            else:
                spec.check_xml(answer.content, "service_request_updates")


async def test_the_keys_rate_limit_answers_429_in_the_spec_format(
    live: LiveServer, world: World, client: httpx.AsyncClient, hotline: int
) -> None:
    key = await issue(client, world, hotline, ["cases:submit"], rate_limit_per_minute=1)
    clock.freeze(datetime.fromisoformat("2026-11-20T10:00:10+08:00"))
    try:
        first = await _post(live, _form(world, key))
        assert first.status_code == 200, first.text
        second = await _post(live, _form(world, key), "xml")
        assert second.status_code == 429
        assert int(second.headers["Retry-After"]) == 50
        root = spec.check_xml(second.content, "errors")
        assert root[0].findtext("code") == "429"
    finally:
        clock.reset()
    assert (await client.get("/cases", headers=world.admin.headers)).json()["total"] == 1
