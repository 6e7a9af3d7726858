"""Deputy groups (代表小组): staff of the region manage them, deputies read them."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from app.core.db import Database
from app.groups.models import DeputyGroup, DeputyGroupMember
from tests.activities.conftest import World
from tests.factories import Factory


async def _counts(db: Database) -> tuple[int, int]:
    async with db.transaction(write=False) as session:
        groups = (await session.execute(select(func.count()).select_from(DeputyGroup))).scalar_one()
        members = (
            await session.execute(select(func.count()).select_from(DeputyGroupMember))
        ).scalar_one()
    return groups, members


async def test_staff_create_a_group_with_a_leader_and_members(
    client: httpx.AsyncClient, world: World
) -> None:
    body = {
        "name": "教育界代表小组",
        "kind": "sector",
        "region_id": world.district.street_a.id,
        "members": [
            {"deputy_id": world.deputies["member"].id, "role": "leader"},
            {"deputy_id": world.deputies["leader"].id, "role": "deputy_leader"},
        ],
    }
    response = await client.post("/deputy-groups", json=body, headers=world.staff_a.headers)
    assert response.status_code == 201, response.text
    group = response.json()
    assert group["kind"] == "sector" and group["region_name"] == world.district.street_a.name
    assert [(m["name"], m["role"]) for m in group["members"]] == [
        ("李代表", "leader"),
        ("王组长", "deputy_leader"),
    ]
    # A deputy may be in several groups: 王组长 is now in two.
    mine = await client.get(
        "/deputy-groups",
        params={"deputy_id": world.deputies["leader"].id},
        headers=world.leader.headers,
    )
    assert mine.status_code == 200
    assert {g["name"] for g in mine.json()["items"]} == {"甲街道代表小组", "教育界代表小组"}


async def test_wrong_role_and_wrong_region_are_refused(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    body = {"name": "新小组", "region_id": world.district.street_a.id}
    before = await _counts(db)
    for actor in (world.leader, world.resident):
        response = await client.post("/deputy-groups", json=body, headers=actor.headers)
        assert response.status_code == 403
    response = await client.post("/deputy-groups", json=body, headers=world.staff_b.headers)
    assert response.status_code == 403
    response = await client.patch(
        f"/deputy-groups/{world.group.id}", json={"name": "改名"}, headers=world.staff_b.headers
    )
    assert response.status_code == 403
    response = await client.patch(
        f"/deputy-groups/{world.group.id}", json={"name": "改名"}, headers=world.leader.headers
    )
    assert response.status_code == 403
    assert (await client.get("/deputy-groups")).status_code == 401
    assert (await client.get("/deputy-groups", headers=world.resident.headers)).status_code == 403
    assert await _counts(db) == before
    # Staff of street B do not see street A's group; admins see everything.
    listed = await client.get("/deputy-groups", headers=world.staff_b.headers)
    assert listed.json()["total"] == 0
    listed = await client.get("/deputy-groups", headers=world.admin.headers)
    assert listed.json()["total"] == 1


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            {"members": [{"deputy_id": 1, "role": "leader"}, {"deputy_id": 2, "role": "leader"}]},
            id="two-leaders",
        ),
        pytest.param({"members": [{"deputy_id": 1}, {"deputy_id": 1}]}, id="twice"),
        pytest.param({"members": [{"deputy_id": 999999}]}, id="unknown-deputy"),
        pytest.param({"name": ""}, id="empty-name"),
        pytest.param({"kind": "club"}, id="bad-kind"),
        pytest.param({"colour": "red"}, id="unknown-field"),
    ],
)
async def test_bad_changes_are_422_and_change_nothing(
    client: httpx.AsyncClient, world: World, db: Database, change: dict
) -> None:
    before = await client.get("/deputy-groups", headers=world.admin.headers)
    response = await client.patch(
        f"/deputy-groups/{world.group.id}", json=change, headers=world.staff_a.headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    after = await client.get("/deputy-groups", headers=world.admin.headers)
    assert after.json() == before.json()


async def test_members_are_replaced_and_names_are_unique_per_region(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    response = await client.patch(
        f"/deputy-groups/{world.group.id}",
        json={"members": [{"deputy_id": world.deputies["outsider"].id, "role": "leader"}]},
        headers=world.staff_a.headers,
    )
    assert response.status_code == 200, response.text
    assert [m["name"] for m in response.json()["members"]] == ["赵代表"]
    taken = await client.post(
        "/deputy-groups",
        json={"name": "甲街道代表小组", "region_id": world.district.street_a.id},
        headers=world.admin.headers,
    )
    assert taken.status_code == 409 and taken.json()["code"] == "group_name_taken"
    elsewhere = await client.post(
        "/deputy-groups",
        json={"name": "甲街道代表小组", "region_id": world.district.street_b.id},
        headers=world.admin.headers,
    )
    assert elsewhere.status_code == 201
    missing = await client.patch("/deputy-groups/999999", json={}, headers=world.admin.headers)
    assert missing.status_code == 404


async def test_the_roster_import_sets_groups(
    client: httpx.AsyncClient, world: World, factory: Factory
) -> None:
    second = await factory.add(DeputyGroup(name="教育界小组", region_id=world.district.street_a.id))
    elsewhere = await factory.add(
        DeputyGroup(name="乙街道小组", region_id=world.district.street_b.id)
    )
    # 王组长 (matched by phone) keeps leading 甲街道代表小组 and joins 教育界小组; a new
    # deputy joins one; a group outside the caller's scope is refused.
    leader = world.deputies["leader"]
    leader.phone = "13900000001"
    await factory.add(leader)
    rows = [
        ["姓名", "层级", "手机", "代表小组"],
        ["王组长", "区", "13900000001", "甲街道代表小组、教育界小组"],
        ["新代表", "区", "13900000002", "教育界小组"],
        ["外区代表", "区", "13900000003", "乙街道小组"],
    ]
    data = ("\r\n".join(",".join(r) for r in rows) + "\r\n").encode()
    response = await client.post(
        "/deputies/import",
        files={"file": ("roster.csv", data, "text/csv")},
        headers=world.staff_a.headers,
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert [r["status"] for r in report["rows"]] == ["updated", "created", "rejected"]
    assert report["rows"][0]["changed"] == ["groups"]
    assert "代表小组不存在或不在您的管辖范围内：乙街道小组" in report["rows"][2]["reasons"]
    groups = (await client.get("/deputy-groups", headers=world.admin.headers)).json()["items"]
    members = {g["name"]: [(m["name"], m["role"]) for m in g["members"]] for g in groups}
    assert members["甲街道代表小组"] == [("王组长", "leader"), ("李代表", "member")]
    assert sorted(members["教育界小组"]) == [("新代表", "member"), ("王组长", "member")]
    assert members["乙街道小组"] == [] and {second.id, elsewhere.id} <= {g["id"] for g in groups}
