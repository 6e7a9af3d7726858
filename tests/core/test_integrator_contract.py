"""What the API guide promises integrators about access answers and problem titles: which of
403 and 404 wins, and the titles of 422 answers."""

from __future__ import annotations

import httpx

from app.notify.models import InboxMessage
from app.wishes.models import WishStatus
from tests.core.helpers import submit_case
from tests.factories import Factory
from tests.wishes.conftest import make_wish

MISSING = 2_000_000_000


def _code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("code")


async def test_role_first_then_existence_then_visibility(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    other = await factory.district("西城区")
    station = await factory.station(d.community_a)
    far_station = await factory.station(other.community_a)
    far_deputy = await factory.deputy(other.community_a, far_station)
    resident = await factory.resident(phone="13800001111")
    stranger = await factory.resident(phone="13900002222")
    staff_far = await factory.staff(other.district)
    staff_a = await factory.staff(d.street_a)

    # A path that belongs to one role refuses every other role first, whether the id exists.
    for station_id in (station.id, MISSING):
        refused = await client.patch(
            f"/stations/{station_id}", json={"version": 1, "name": "新名"}, headers=resident.headers
        )
        assert _code(refused) == (403, "forbidden")

    # Public registry entries (stations, deputies, regions, units): an unknown id is 404; one
    # outside the staff member's subtree is 403, its existence being no secret.
    assert _code(
        await client.patch(f"/stations/{MISSING}", json={"version": 1}, headers=staff_a.headers)
    ) == (404, "not_found")
    assert _code(
        await client.patch(
            f"/stations/{far_station.id}", json={"version": 1}, headers=staff_a.headers
        )
    ) == (403, "forbidden")
    assert _code(
        await client.get(f"/deputies/{far_deputy.id}/roster-entry", headers=staff_a.headers)
    ) == (403, "forbidden")

    # Private things (cases, wishes, messages): one the caller may not see answers 404, the
    # same as one that does not exist; 403 only where the caller sees it but may not act.
    submitted = await submit_case(client, factory, resident, station)
    assert submitted.status_code == 201, submitted.text
    case_id = submitted.json()["id"]
    for actor in (stranger, staff_far):
        assert _code(await client.get(f"/cases/{case_id}", headers=actor.headers)) == (
            404,
            "not_found",
        )
        assert _code(
            await client.post(
                f"/cases/{case_id}/assign", json={"unit_id": 1}, headers=actor.headers
            )
        ) == (404, "not_found")
    assert _code(
        await client.post(f"/cases/{case_id}/assign", json={"unit_id": 1}, headers=resident.headers)
    ) == (403, "forbidden")

    pending = await make_wish(
        factory, resident.user, station, status=WishStatus.pending_review, title="想要一个书包"
    )
    published = await make_wish(factory, resident.user, station, title="想要一副老花镜")
    assert _code(await client.get(f"/wishes/{pending.id}", headers=stranger.headers)) == (
        404,
        "not_found",
    )
    assert _code(
        await client.post(f"/wishes/{published.id}/withdraw", json={}, headers=stranger.headers)
    ) == (403, "forbidden")

    message = await factory.add(
        InboxMessage(user_id=resident.user.id, event="case.fed_back", title="答复", body="已答复")
    )
    assert _code(
        await client.post(f"/me/messages/{message.id}/read", headers=stranger.headers)
    ) == (404, "not_found")


async def test_422_answers_are_titled_unprocessable_content(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    d = await factory.district()
    admin = await factory.admin()
    invalid = await client.post("/stations", json={"name": ""}, headers=admin.headers)
    assert invalid.status_code == 422
    assert invalid.json()["title"] == "Unprocessable Content"
    assert invalid.json()["code"] == "validation_error"
    # A rule of the service (not the schema) answers the same title.
    child = await client.post(
        "/regions",
        json={"name": "上级", "level": "city", "parent_id": d.district.id},
        headers=admin.headers,
    )
    assert child.status_code == 422
    assert child.json()["title"] == "Unprocessable Content"
