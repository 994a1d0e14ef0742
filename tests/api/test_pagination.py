"""Pages of the growing lists (extension): without parameters the whole bare array; with `limit`, pages that
follow one another through `X-Next-Cursor` and `Link`, newest first, each item once, unmoved by items created
meanwhile; a bad cursor or limit is refused."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from chowder.core.settings import Settings
from tests.api.conftest import sql
from tests.factories import auth, create_instance, scoped_key, signup

pytestmark = pytest.mark.persistence


def _all_pages(client: TestClient, key: str, path: str, limit: int) -> list[list[dict[str, Any]]]:
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
