"""Lists of Chinese names come back in pinyin order (拼音排序), the same on both databases, and
a rename re-sorts."""

from __future__ import annotations

import httpx

from app.cases.models import CaseCategory
from tests.factories import Factory

# In code-point order these would read 北京 安徽 张家 赵 重庆 长沙 阿; 重 and 长 are polyphones
# that read chong and chang here.
NAMES = ["北京", "安徽", "重庆", "长沙", "张家", "赵", "阿"]
PINYIN_ORDER = ["阿", "安徽", "北京", "长沙", "重庆", "张家", "赵"]


def _names(items: list[dict]) -> list[str]:
    return [item["name"] for item in items]


async def test_stations_in_pinyin_order_and_a_rename_resorts(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    admin = await factory.admin()
    ids = {}
    for name in NAMES:
        created = await client.post(
            "/stations",
            json={"kind": "station", "name": name, "region_id": d.community_a.id},
            headers=admin.headers,
        )
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]

    listed = (await client.get("/stations")).json()
    assert _names(listed["items"]) == PINYIN_ORDER
    paged = (await client.get("/stations", params={"limit": 3, "offset": 2})).json()
    assert _names(paged["items"]) == PINYIN_ORDER[2:5]

    # 赵 (zhao) becomes 银行 (yin hang, not yin xing): it moves between 重庆 and 张家.
    renamed = await client.patch(
        f"/stations/{ids['赵']}", json={"version": 1, "name": "银行"}, headers=admin.headers
    )
    assert renamed.status_code == 200, renamed.text
    listed = (await client.get("/stations")).json()
    assert _names(listed["items"]) == ["阿", "安徽", "北京", "长沙", "重庆", "银行", "张家"]
    assert "name_sort" not in listed["items"][0]


async def test_same_pinyin_ties_break_by_name_then_id(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    # 张 and 章 both read zhang: the name (code point) decides, then the id.
    second = await factory.station(d.community_a, name="章站")
    first = await factory.station(d.community_a, name="张站")
    twin = await factory.station(d.community_b, name="张站")
    listed = (await client.get("/stations")).json()
    assert [s["id"] for s in listed["items"]] == [first.id, twin.id, second.id]


async def test_units_in_pinyin_order(client: httpx.AsyncClient, factory: Factory) -> None:
    d = await factory.district()
    staff = await factory.staff(d.district)
    for name in NAMES:
        created = await client.post("/units", json={"name": name}, headers=staff.headers)
        assert created.status_code == 201, created.text
    listed = (await client.get("/units", headers=staff.headers)).json()
    assert _names(listed["items"]) == PINYIN_ORDER


async def test_regions_in_tree_order_with_siblings_in_pinyin_order(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    admin = await factory.admin()
    ids = {}
    for name in NAMES:
        created = await client.post(
            "/regions", json={"name": name, "level": "district"}, headers=admin.headers
        )
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
    for child in ["赵街道", "安街道"]:
        created = await client.post(
            "/regions",
            json={"name": child, "level": "street", "parent_id": ids["北京"]},
            headers=admin.headers,
        )
        assert created.status_code == 201, created.text
        ids[child] = created.json()["id"]

    flat = (await client.get("/regions")).json()
    expected = ["阿", "安徽", "北京", "安街道", "赵街道", "长沙", "重庆", "张家", "赵"]
    assert _names(flat["items"]) == expected
    tree = (await client.get("/regions/tree")).json()
    assert _names(tree) == PINYIN_ORDER
    assert _names(tree[2]["children"]) == ["安街道", "赵街道"]
    # Filtered lists keep the same order.
    streets = (await client.get("/regions", params={"level": "street"})).json()
    assert _names(streets["items"]) == ["安街道", "赵街道"]

    renamed = await client.patch(
        f"/regions/{ids['安街道']}", json={"name": "中街道"}, headers=admin.headers
    )
    assert renamed.status_code == 200, renamed.text
    children = (await client.get("/regions", params={"parent_id": ids["北京"]})).json()
    assert _names(children["items"]) == ["赵街道", "中街道"]
    renamed = await client.patch(
        f"/regions/{ids['阿']}", json={"name": "中"}, headers=admin.headers
    )
    assert renamed.status_code == 200, renamed.text
    tree = (await client.get("/regions/tree")).json()
    assert _names(tree) == ["安徽", "北京", "长沙", "重庆", "张家", "赵", "中"]


async def test_deputies_in_pinyin_order_after_create_edit_and_import(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    station = await factory.station(d.community_a, name="甲站")
    staff = await factory.staff(d.district)
    ids = {}
    for name in NAMES:
        created = await client.post(
            "/deputies",
            json={
                "name": name,
                "level": "district",
                "region_id": d.community_a.id,
                "station_ids": [station.id],
            },
            headers=staff.headers,
        )
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]

    public = (await client.get("/deputies")).json()
    assert _names(public["items"]) == PINYIN_ORDER
    roster = (await client.get("/deputies/roster", headers=staff.headers)).json()
    assert _names(roster["items"]) == PINYIN_ORDER
    page = (await client.get(f"/stations/{station.id}")).json()
    assert _names(page["deputies"]) == PINYIN_ORDER

    edited = await client.patch(
        f"/deputies/{ids['阿']}", json={"version": 1, "name": "曹"}, headers=staff.headers
    )
    assert edited.status_code == 200, edited.text
    public = (await client.get("/deputies")).json()
    assert _names(public["items"]) == ["安徽", "北京", "曹", "长沙", "重庆", "张家", "赵"]

    # The roster import writes names too: a new deputy and a renamed one (matched by phone).
    phone_holder = await client.post(
        "/deputies",
        json={"name": "钱", "level": "district", "phone": "13800138011"},
        headers=staff.headers,
    )
    assert phone_holder.status_code == 201, phone_holder.text
    csv = "姓名,层级,手机\r\n白,区级,13800138012\r\n陈,区级,13800138011\r\n".encode()
    imported = await client.post(
        "/deputies/import", files={"file": ("名册.csv", csv, "text/csv")}, headers=staff.headers
    )
    assert imported.status_code == 200, imported.text
    assert [r["status"] for r in imported.json()["rows"]] == ["created", "updated"]
    roster = (await client.get("/deputies/roster", headers=staff.headers)).json()
    assert _names(roster["items"]) == [
        "安徽",
        "白",
        "北京",
        "曹",
        "长沙",
        "陈",
        "重庆",
        "张家",
        "赵",
    ]


async def test_case_categories_by_sort_order_then_pinyin(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    for i, name in enumerate(NAMES):
        await factory.add(CaseCategory(code=f"c{i}", name=name, sort_order=1))
    await factory.add(CaseCategory(code="first", name="最先", sort_order=0))
    listed = (await client.get("/case-categories")).json()
    assert _names(listed) == ["最先", *PINYIN_ORDER]
