"""Responsible units (承办单位): staff list and create."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select

from app.org.models import Unit
from tests.factories import Factory


async def _unit_count(factory: Factory) -> int:
    async with factory.db.transaction(write=False) as session:
        return (await session.execute(select(func.count()).select_from(Unit))).scalar_one()


async def test_staff_see_units_of_their_subtree_ancestors_and_global(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    other = await factory.district("西城区")
    district_unit = await factory.unit("区住建委", d.district)
    street_a_unit = await factory.unit("甲街道办事处", d.street_a)
    street_b_unit = await factory.unit("乙街道办事处", d.street_b)
    global_unit = await factory.unit("区法院")
    other_unit = await factory.unit("西城区住建委", other.district)
    inactive = await factory.add(Unit(name="已撤销单位", region_id=d.street_a.id, is_active=False))

    street_staff = await factory.staff(d.street_a)
    response = await client.get("/units", headers=street_staff.headers)
    assert response.status_code == 200
    body = response.json()
    assert {u["id"] for u in body["items"]} == {district_unit.id, street_a_unit.id, global_unit.id}
    assert body["total"] == 3
    # Pinyin order: jia jie dao, qu fa yuan, qu zhu jian wei.
    assert [u["name"] for u in body["items"]] == ["甲街道办事处", "区法院", "区住建委"]

    with_inactive = (
        await client.get("/units", params={"include_inactive": True}, headers=street_staff.headers)
    ).json()
    assert inactive.id in {u["id"] for u in with_inactive["items"]}

    district_staff = await factory.staff(d.district)
    seen = (await client.get("/units", headers=district_staff.headers)).json()
    assert {u["id"] for u in seen["items"]} == {
        district_unit.id,
        street_a_unit.id,
        street_b_unit.id,
        global_unit.id,
    }
    admin = await factory.admin()
    everything = (await client.get("/units", headers=admin.headers)).json()
    assert everything["total"] == 5 and other_unit.id in {u["id"] for u in everything["items"]}
    searched = (
        await client.get("/units", params={"q": "街道"}, headers=district_staff.headers)
    ).json()
    assert {u["id"] for u in searched["items"]} == {street_a_unit.id, street_b_unit.id}
    by_region = (
        await client.get("/units", params={"region_id": d.street_b.id}, headers=admin.headers)
    ).json()
    assert [u["id"] for u in by_region["items"]] == [street_b_unit.id]
    paged = (
        await client.get("/units", params={"limit": 2, "offset": 1}, headers=admin.headers)
    ).json()
    assert paged["total"] == 5 and len(paged["items"]) == 2


async def test_units_list_refuses_non_staff(client: httpx.AsyncClient, factory: Factory) -> None:
    unit = await factory.unit()
    assert (await client.get("/units")).status_code == 401
    for actor in (
        await factory.resident(),
        await factory.deputy_actor(),
        await factory.unit_handler(unit),
    ):
        refused = await client.get("/units", headers=actor.headers)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


async def test_create_unit(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    staff = await factory.staff(d.street_a)
    created = await client.post(
        "/units",
        json={"name": "甲街道城管中队", "kind": "street_office", "contact_phone": "13800138000"},
        headers=staff.headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["region_id"] == d.street_a.id  # defaults to the staff member's region
    assert body["kind"] == "street_office" and body["is_active"] is True
    listed = (await client.get("/units", headers=staff.headers)).json()
    assert body["id"] in {u["id"] for u in listed["items"]}
    admin = await factory.admin()
    global_unit = await client.post(
        "/units", json={"name": "区检察院", "kind": "procuratorate"}, headers=admin.headers
    )
    assert global_unit.status_code == 201 and global_unit.json()["region_id"] is None


async def test_create_unit_refusals_change_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    await factory.unit("区住建委", d.district)
    staff = await factory.staff(d.street_a)
    unit = await factory.unit()
    before = await _unit_count(factory)
    body = {"name": "新单位"}
    assert (await client.post("/units", json=body)).status_code == 401
    for actor in (
        await factory.resident(),
        await factory.deputy_actor(),
        await factory.unit_handler(unit),
    ):
        assert (await client.post("/units", json=body, headers=actor.headers)).status_code == 403
    taken = await client.post("/units", json={"name": "区住建委"}, headers=staff.headers)
    assert taken.status_code == 409 and taken.json()["code"] == "unit_name_taken"
    out_of_scope = await client.post(
        "/units", json={"name": "乙街道单位", "region_id": d.street_b.id}, headers=staff.headers
    )
    assert out_of_scope.status_code == 403
    above = await client.post(
        "/units", json={"name": "区级单位", "region_id": d.district.id}, headers=staff.headers
    )
    assert above.status_code == 403
    for payload in (
        {"name": ""},
        {"name": "x" * 101},
        {"name": "单位", "kind": "army"},
        {"name": "单位", "region_id": 999999},
        {"name": "单位", "contact_phone": "phone"},
    ):
        response = await client.post("/units", json=payload, headers=staff.headers)
        assert response.status_code == 422, payload
    assert await _unit_count(factory) == before


async def test_concurrent_creates_of_one_name(client: httpx.AsyncClient, factory: Factory) -> None:
    admin = await factory.admin()
    responses = await asyncio.gather(
        *(client.post("/units", json={"name": "同名单位"}, headers=admin.headers) for _ in range(8))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 7, codes
    assert all(r.json()["code"] == "unit_name_taken" for r in responses if r.status_code == 409)
    assert await _unit_count(factory) == 1
