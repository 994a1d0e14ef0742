"""Pages of the growing lists (extension): without parameters the whole bare array; with `limit`, pages that
follow one another through `X-Next-Cursor` and `Link`, newest first, each item once, unmoved by items created
meanwhile; a bad cursor or limit is refused. Usage reports page their breakdowns the same way."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from chowder.core.clock import utcnow
from chowder.core.pagination import Cursor
from chowder.core.settings import Settings
from chowder.domain.ports.storage import UnitOfWork
from chowder.domain.ports.tenancy import UsageEvent
from chowder.persistence.db import Database
from chowder.persistence.store import SqlTransactions
from tests.api.conftest import sql
from tests.factories import auth, create_instance, scoped_key, signup

pytestmark = pytest.mark.persistence


def _all_pages(client: TestClient, key: str, path: str, limit: int) -> list[Any]:
    """Each page's body (a list's items, or a report), following X-Next-Cursor to the end."""
    pages, url = [], f"{path}?limit={limit}"
    while True:
        response = client.get(url, headers=auth(key))
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            assert "link" not in response.headers
            return pages
        assert response.headers["link"].endswith('>; rel="next"') and f"cursor={cursor}" in response.headers["link"]
        url = f"{path}?limit={limit}&cursor={cursor}"


def test_instances_page_newest_first_and_the_bare_list_is_unchanged(client: TestClient, settings: Settings) -> None:
    key = signup(client)
    org_id = client.get("/v1/organization", headers=auth(key)).json()["id"]
    sql(settings, "UPDATE organizations SET subscription_tier = 'whale' WHERE id = :o", o=org_id)
    created = [create_instance(client, key, name=f"agent-{n}")["id"] for n in range(7)]
    whole = client.get("/v1/instances", headers=auth(key))
    assert "x-next-cursor" not in whole.headers and [i["id"] for i in whole.json()] == created[::-1]

    pages = _all_pages(client, key, "/v1/instances", 3)
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [i["id"] for page in pages for i in page] == created[::-1], "newest first, each once"

    first = client.get("/v1/instances?limit=3", headers=auth(key))
    newer = create_instance(client, key, name="created-meanwhile")["id"]
    rest = client.get(f"/v1/instances?cursor={first.headers['x-next-cursor']}", headers=auth(key)).json()
    assert [i["id"] for i in rest] == created[:4][::-1], "the rest after the first page, whatever came meanwhile"
    assert newer not in {i["id"] for i in rest}


def test_keys_page_too(client: TestClient) -> None:
    org_key = signup(client)
    instance_id = create_instance(client, org_key)["id"]
    for _ in range(5):
        scoped_key(client, org_key, [instance_id], ["read"])
    pages = _all_pages(client, org_key, "/v1/keys", 2)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert len({k["id"] for page in pages for k in page}) == 5


@pytest.mark.parametrize("query", ["cursor=not-a-cursor", "cursor=WyJ4Il0"])
def test_a_bad_cursor_is_a_400(client: TestClient, query: str) -> None:
    response = client.get(f"/v1/instances?{query}", headers=auth(signup(client)))
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid cursor: pass the X-Next-Cursor of the previous page as it was given."}


@pytest.mark.parametrize("limit", ["0", "1001", "ten"])
def test_a_limit_out_of_range_is_a_422(client: TestClient, limit: str) -> None:
    response = client.get(f"/v1/instances?limit={limit}", headers=auth(signup(client)))
    assert response.status_code == 422 and response.json()["detail"]


def _record_usage(database_url: str, org_id: str, events: list[tuple[str, str | None, str | None, str]]) -> None:
    """One model call of 10 + 1 tokens per (instance, session, key, model)."""
    db = Database(database_url)

    def record(uow: UnitOfWork) -> None:
        for instance_id, session_id, key_id, model in events:
            uow.usage.record(UsageEvent(org_id, instance_id, session_id, key_id, "openai", model, 10, 1), utcnow())

    SqlTransactions(db).run_sync(record)
    db.dispose()


def _joined(pages: list[dict[str, Any]], breakdown: str) -> list[dict[str, Any]]:
    return [entry for page in pages for entry in page[breakdown]]


def test_usage_reports_page_each_breakdown_and_the_whole_report_is_unchanged(
    client: TestClient, database_url: str
) -> None:
    """`limit` groups of each breakdown a page, in the report's order (no group first), until every breakdown is
    given; the total is the whole range's on every page; without parameters one answer holds everything."""
    key = signup(client)
    org_id = client.get("/v1/organization", headers=auth(key)).json()["id"]
    instance_id = create_instance(client, key)["id"]
    sessions = [None, *(f"s{n}" for n in range(6))]
    _record_usage(database_url, org_id, [(instance_id, s, "k1", "m1" if s else "m2") for s in sessions])
    _record_usage(database_url, org_id, [(f"gone-{n}", "main", f"k{n % 3}", "m1") for n in range(4)])

    path = f"/v1/instances/{instance_id}/usage"
    whole = client.get(path, headers=auth(key))
    assert "x-next-cursor" not in whole.headers
    assert [s["session_id"] for s in whole.json()["sessions"]] == sessions
    pages = _all_pages(client, key, path, 3)
    assert [(len(p["sessions"]), len(p["models"])) for p in pages] == [(3, 2), (3, 0), (1, 0)]
    for breakdown in ("sessions", "models"):
        assert _joined(pages, breakdown) == whole.json()[breakdown], "each group once, in order"
    assert all(page["total"] == whole.json()["total"] for page in pages)
    assert {**pages[0], "sessions": [], "models": []} == {**whole.json(), "sessions": [], "models": []}

    org_whole = client.get("/v1/organization/usage", headers=auth(key)).json()
    assert [k["key_id"] for k in org_whole["keys"]] == ["k0", "k1", "k2"]
    org_pages = _all_pages(client, key, "/v1/organization/usage", 2)
    assert [(len(p["instances"]), len(p["keys"])) for p in org_pages] == [(2, 2), (2, 1), (1, 0)]
    for breakdown in ("instances", "keys"):
        assert _joined(org_pages, breakdown) == org_whole[breakdown]


def test_a_usage_page_continues_after_its_last_group_whatever_came_meanwhile(
    client: TestClient, database_url: str
) -> None:
    key = signup(client)
    org_id = client.get("/v1/organization", headers=auth(key)).json()["id"]
    _record_usage(database_url, org_id, [(f"i{n}", None, None, "m") for n in range(4)])
    first = client.get("/v1/organization/usage?limit=2", headers=auth(key))
    assert [i["instance_id"] for i in first.json()["instances"]] == ["i0", "i1"]
    _record_usage(database_url, org_id, [("a-new-one", None, None, "m")])
    cursor = first.headers["x-next-cursor"]
    rest = client.get(f"/v1/organization/usage?limit=2&cursor={cursor}", headers=auth(key))
    assert [i["instance_id"] for i in rest.json()["instances"]] == ["i2", "i3"], "not shifted by one sorting before"
    assert rest.json()["keys"] == [] and rest.json()["total"]["requests"] == 5
    assert "x-next-cursor" not in rest.headers


@pytest.mark.parametrize("cursor", ["not-a-cursor", "WyJ4Il0", Cursor(utcnow(), "an-instance").encode()])
def test_a_bad_usage_cursor_is_a_400(client: TestClient, cursor: str) -> None:
    """Not a cursor, or a list's (of instances, keys or audit entries)."""
    key = signup(client)
    response = client.get(f"/v1/organization/usage?cursor={cursor}", headers=auth(key))
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid cursor: pass the X-Next-Cursor of the previous page as it was given."}
    assert client.get("/v1/organization/usage?limit=0", headers=auth(key)).status_code == 422
