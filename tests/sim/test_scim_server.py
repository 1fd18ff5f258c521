"""The real SCIM 2.0 server fixture (tests/support/scim_server.py) works through plain httpx, and what a SCIM client
must cope with from it: clamped page sizes, `members` in lists, nested groups and a cycle, its error format."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.scim_server import MAX_RESULTS, SEED_GROUPS, SEED_USERS, ScimServer

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def read_all(client: httpx.Client, path: str, count: int, **params: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """Every resource of a list, by startIndex/count until startIndex - 1 + len(Resources) >= totalResults;
    also the size of each page."""
    resources: list[dict[str, Any]] = []
    sizes: list[int] = []
    start = 1
    while True:
        response = client.get(path, params={**params, "startIndex": start, "count": count})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/scim+json")
        page = response.json()
        assert page["schemas"] == [LIST] and page["startIndex"] == start
        batch = page.get("Resources", [])
        assert page["itemsPerPage"] == len(batch)
        resources += batch
        sizes.append(len(batch))
        if not batch or start - 1 + len(batch) >= page["totalResults"]:
            return resources, sizes
        start += len(batch)


def test_users_page_to_the_end_with_the_server_clamping_count(scim_server: ScimServer) -> None:
    with scim_server.client() as client:
        users, sizes = read_all(client, "/Users", count=100)
    # count=100 is clamped to the server's maxResults without an error: the client must follow itemsPerPage
    assert sizes == [MAX_RESULTS, MAX_RESULTS, len(SEED_USERS) - 2 * MAX_RESULTS]
    assert sorted(u["userName"] for u in users) == sorted(u[0] for u in SEED_USERS)
    assert len({u["id"] for u in users}) == len(SEED_USERS)
    carol = next(u for u in users if u["userName"] == "carol")
    assert carol["active"] is False and carol["externalId"] == "ext-carol"
    assert carol["emails"] == [{"value": "carol@example.com", "type": "work", "primary": True}]


def test_small_pages_and_a_start_index_past_the_end(scim_server: ScimServer) -> None:
    with scim_server.client() as client:
        users, sizes = read_all(client, "/Users", count=7)
        past = client.get("/Users", params={"startIndex": len(SEED_USERS) + 5, "count": 7}).json()
    assert sizes == [7, 7, 7, len(SEED_USERS) - 21]
    assert len({u["id"] for u in users}) == len(SEED_USERS)
    assert past["totalResults"] == len(SEED_USERS) and past["itemsPerPage"] == 0 and past["Resources"] == []


def test_groups_list_carries_members_and_nested_groups(scim_server: ScimServer) -> None:
    with scim_server.client() as client:
        groups, _ = read_all(client, "/Groups", count=3)
    by_name = {g["displayName"]: g for g in groups}
    assert set(by_name) == set(SEED_GROUPS)
    ids = {v: k for k, v in (scim_server.user_ids | scim_server.group_ids).items()}
    for name, (users, nested) in SEED_GROUPS.items():
        members = by_name[name].get("members", [])  # an empty group has no `members` key at all
        # members carry value and type only: no display, no $ref
        assert all(set(m) == {"value", "type"} for m in members)
        assert sorted(ids[m["value"]] for m in members if m["type"] == "User") == sorted(users)
        assert sorted(ids[m["value"]] for m in members if m["type"] == "Group") == sorted(nested)
    assert "members" not in by_name["empty"]


def test_a_groups_members_with_attributes_members(scim_server: ScimServer) -> None:
    gid = scim_server.group_ids["backend"]
    with scim_server.client() as client:
        one = client.get(f"/Groups/{gid}", params={"attributes": "members"})
        listed = client.get("/Groups", params={"excludedAttributes": "members", "count": 100})
    assert one.status_code == 200
    body = one.json()
    assert set(body) == {"schemas", "id", "members"}  # id is always returned
    assert sorted((m["type"], m["value"]) for m in body["members"]) == sorted(
        [("User", scim_server.user_ids["bob"]), ("User", scim_server.user_ids["carol"]),
         ("Group", scim_server.group_ids["platform"])])
    assert all("members" not in g for g in listed.json()["Resources"])


def test_the_server_stores_a_group_cycle(scim_server: ScimServer) -> None:
    a, b = scim_server.group_ids["cycle-a"], scim_server.group_ids["cycle-b"]
    with scim_server.client() as client:
        members_a = client.get(f"/Groups/{a}", params={"attributes": "members"}).json()["members"]
        members_b = client.get(f"/Groups/{b}", params={"attributes": "members"}).json()["members"]
    assert {"value": b, "type": "Group"} in members_a and {"value": a, "type": "Group"} in members_b


def test_filter_by_username_is_case_insensitive(scim_server: ScimServer) -> None:
    with scim_server.client() as client:
        found = client.get("/Users", params={"filter": 'userName eq "ALICE"'}).json()
        inactive = client.get("/Users", params={"filter": "active eq false", "count": 100}).json()
        group = client.get("/Groups", params={"filter": 'displayName eq "engineering"'}).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == scim_server.user_ids["alice"]
    assert sorted(u["userName"] for u in inactive["Resources"]) == sorted(u[0] for u in SEED_USERS if not u[1])
    assert [g["id"] for g in group["Resources"]] == [scim_server.group_ids["engineering"]]


def test_bad_filters_get_the_scim_error_format(scim_server: ScimServer) -> None:
    with scim_server.client() as client:
        syntax = client.get("/Users", params={"filter": "userName eq"})
        unknown = client.get("/Users", params={"filter": 'nosuch eq "x"'})
    for response in (syntax, unknown):
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/scim+json")
        body = response.json()
        assert body["schemas"] == [ERROR] and body["status"] == "400" and body["scimType"] == "invalidFilter"
        assert body["detail"]
    assert unknown.json()["detail"] == "Field not found: nosuch"


def test_the_bearer_token_is_required(scim_server: ScimServer) -> None:
    for token in ("", "not-the-token"):
        with scim_server.client(token=token) as client:
            response = client.get("/Users")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="SCIM"'
        assert response.json()["schemas"] == [ERROR]
    with scim_server.client() as client:
        config = client.get("/ServiceProviderConfig").json()
    assert config["filter"] == {"supported": True, "maxResults": MAX_RESULTS}
    assert [s["type"] for s in config["authenticationSchemes"]] == ["oauthbearertoken"]
