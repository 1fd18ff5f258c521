"""The Entra ID simulator's Graph reads through httpx against the in-process app: paging and its caps, $select,
$filter, members and transitiveMembers (nesting, a cycle), Graph's error formats. Every Graph response is
validated against the carried Graph slice (fixtures_entra.py)."""

from __future__ import annotations

import uuid

import pytest

from tests.support.entra import BASE, TENANT, WEAK_CLIENT, Entra, names

pytestmark = pytest.mark.anyio


async def test_users_page_to_the_end_with_top_and_next_links(entra: Entra) -> None:
    headers = await entra.bearer()
    pages = await entra.pages("/v1.0/users", headers, {"$top": "5", "$select": "id,userPrincipalName"})
    assert [len(p["value"]) for p in pages] == [5, 5, 3]
    assert len({u["id"] for p in pages for u in p["value"]}) == 13
    assert entra.transport.validated == 3 and entra.transport.request_violations == []
    assert all(set(u) == {"id", "userPrincipalName"} for p in pages for u in p["value"])
    assert pages[0]["@odata.context"] == f"{BASE}/v1.0/$metadata#users(id,userPrincipalName)"
    # the nextLink keeps the query ($top, $select) and adds an opaque $skiptoken
    assert "%24top=5" in pages[0]["@odata.nextLink"] or "$top=5" in pages[0]["@odata.nextLink"]
    whole = await entra.client.get("/v1.0/users", params={"$top": "999"}, headers=headers)
    assert len(whole.json()["value"]) == 13 and "@odata.nextLink" not in whole.json()
    default = await entra.client.get("/v1.0/users", headers=headers)  # default page size 100
    assert len(default.json()["value"]) == 13


@pytest.mark.parametrize("top", ["1000", "0", "-1"])
async def test_top_outside_1_to_999_is_refused(entra: Entra, top: str) -> None:
    headers = await entra.bearer()
    response = await entra.client.get("/v1.0/users", params={"$top": top}, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "Request_BadRequest"
    assert error["message"] == f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."


async def test_account_enabled_comes_only_when_selected(entra: Entra) -> None:
    headers = await entra.bearer()
    plain = (await entra.client.get("/v1.0/users", headers=headers)).json()["value"]
    assert all("accountEnabled" not in u and "userType" not in u for u in plain)
    assert set(plain[0]) == {"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                             "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}
    selected = (await entra.client.get("/v1.0/users", headers=headers, params={
        "$select": "id,userPrincipalName,mail,otherMails,accountEnabled,userType"})).json()["value"]
    by_upn = {u["userPrincipalName"]: u for u in selected}
    assert by_upn["bob@contoso.com"]["accountEnabled"] is False
    guest = by_upn["guest_fabrikam.com#EXT#@contoso.onmicrosoft.com"]
    assert guest["userType"] == "Guest" and guest["mail"] is None and guest["otherMails"] == ["guest@fabrikam.com"]
    unknown = await entra.client.get("/v1.0/users", headers=headers, params={"$select": "id,nosuch"})
    assert unknown.status_code == 400
    assert "Could not find a property named 'nosuch'" in unknown.json()["error"]["message"]


async def test_filters_on_user_type_and_account_enabled(entra: Entra) -> None:
    headers = await entra.bearer()
    select = "userPrincipalName"

    async def upns(flt: str, **extra: str) -> list[str]:
        pages = await entra.pages("/v1.0/users", {**headers, **extra.pop("headers_", {})},  # type: ignore[dict-item]
                                  {"$filter": flt, "$select": select, "$top": "2", **extra})
        return names(pages, "userPrincipalName")

    assert await upns("userType eq 'Guest'") == ["guest_fabrikam.com#EXT#@contoso.onmicrosoft.com"]
    assert len(await upns("userType eq 'member'")) == 12  # string comparison ignores case
    assert await upns("accountEnabled eq false") == ["bob@contoso.com"]
    assert await upns("accountEnabled eq true and startswith(userPrincipalName,'al')") == ["alice@contoso.com"]
    assert await upns("userPrincipalName eq 'bob@contoso.com' or mail eq 'alice@contoso.com'") == [
        "alice@contoso.com", "bob@contoso.com"]
    groups = await entra.pages("/v1.0/groups", headers, {"$filter": "startswith(displayName,'loop')"})
    assert names(groups) == ["Loop A", "Loop B"]
    exact = await entra.pages("/v1.0/groups", headers, {"$filter": "displayName eq 'Backend'",
                                                        "$select": "id,displayName"})
    assert names(exact) == ["Backend"] and set(exact[0]["value"][0]) == {"id", "displayName"}


@pytest.mark.parametrize(("flt", "code", "message"), [
    ("userType ne 'Guest'", "Request_UnsupportedQuery",
     "Unsupported or invalid query filter clause specified for property 'userType' of resource 'User'."),
    ("endswith(mail,'@contoso.com')", "Request_UnsupportedQuery",
     "Unsupported or invalid query filter clause specified for property 'mail' of resource 'User'."),
    ("accountEnabled eq 'yes'", "BadRequest", "Invalid filter clause: A binary operator with incompatible types "
     "was detected. Found operand types 'Edm.Boolean' and 'Edm.String' for operator kind 'Equal'."),
    ("userType eq", "BadRequest", "Invalid filter clause: Syntax error at position 11 in 'userType eq'."),
    ("nosuch eq 'x'", "BadRequest",
     "Invalid filter clause: Could not find a property named 'nosuch' on type 'microsoft.graph.user'."),
])
async def test_filters_the_service_rejects_get_400_in_graphs_format(entra: Entra, flt: str, code: str,
                                                                     message: str) -> None:
    headers = await entra.bearer()
    response = await entra.client.get("/v1.0/users", params={"$filter": flt}, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (code, message)
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


async def test_advanced_queries_allow_ne_with_consistency_level_and_count(entra: Entra) -> None:
    headers = {**await entra.bearer(), "ConsistencyLevel": "eventual"}
    response = await entra.client.get("/v1.0/users", headers=headers, params={
        "$filter": "userType ne 'Member'", "$count": "true", "$select": "userPrincipalName"})
    assert response.status_code == 200
    assert response.json()["@odata.count"] == 1
    no_header = await entra.client.get("/v1.0/users", headers=await entra.bearer(), params={"$count": "true"})
    assert no_header.status_code == 400 and no_header.json()["error"]["code"] == "Request_BadRequest"


async def group_id(entra: Entra, headers: dict[str, str], name: str) -> str:
    pages = await entra.pages("/v1.0/groups", headers, {"$filter": f"displayName eq '{name}'"})
    return str(pages[0]["value"][0]["id"])


async def test_direct_members_carry_their_odata_type_and_page(entra: Entra) -> None:
    headers = await entra.bearer()
    gid = await group_id(entra, headers, "Engineering")
    pages = await entra.pages(f"/v1.0/groups/{gid}/members", headers, {"$top": "1"})
    assert len(pages) == 4
    members = [m for p in pages for m in p["value"]]
    assert [(m["@odata.type"], m["displayName"]) for m in members] == [
        ("#microsoft.graph.user", "Alice"), ("#microsoft.graph.group", "Backend"),
        ("#microsoft.graph.device", "laptop-7"), ("#microsoft.graph.servicePrincipal", "ci-bot")]
    assert pages[0]["@odata.context"] == f"{BASE}/v1.0/$metadata#directoryObjects"
    big = await entra.client.get(f"/v1.0/groups/{gid}/members", params={"$top": "1000"}, headers=headers)
    assert big.status_code == 400 and big.json()["error"]["code"] == "Request_BadRequest"


async def test_transitive_members_flatten_nesting_and_include_the_nested_groups(entra: Entra) -> None:
    headers = await entra.bearer()
    gid = await group_id(entra, headers, "Engineering")
    pages = await entra.pages(f"/v1.0/groups/{gid}/transitiveMembers", headers,
                              {"$top": "2", "$select": "id,displayName,accountEnabled"})
    members = [(m["@odata.type"].rsplit(".", 1)[-1], m["displayName"]) for p in pages for m in p["value"]]
    # alice is a member twice (directly and through Platform): listed once
    assert members == [("user", "Alice"), ("group", "Backend"), ("device", "laptop-7"),
                       ("servicePrincipal", "ci-bot"), ("user", "Bob"), ("group", "Platform"),
                       ("user", "user01")]
    bob = next(m for p in pages for m in p["value"] if m.get("displayName") == "Bob")
    assert bob["accountEnabled"] is False


async def test_transitive_members_of_a_cycle_end(entra: Entra) -> None:
    headers = await entra.bearer()
    gid = await group_id(entra, headers, "Loop A")
    pages = await entra.pages(f"/v1.0/groups/{gid}/transitiveMembers", headers)
    assert names(pages) == ["user02", "Loop B", "user03", "Loop A"]
    missing = await entra.client.get(f"/v1.0/groups/{uuid.UUID(int=7)}/members", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"


async def test_a_tampered_skiptoken_is_refused(entra: Entra) -> None:
    headers = await entra.bearer()
    first = (await entra.client.get("/v1.0/users", params={"$top": "5"}, headers=headers)).json()
    other_query = first["@odata.nextLink"].replace("%24top=5", "%24top=6").replace("$top=5", "$top=6")
    response = await entra.client.get(other_query, headers=headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == "Directory_ExpiredPageToken"


async def test_bad_and_expired_tokens_get_401(entra: Entra) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = await entra.client.get("/v1.0/users", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert response.headers["www-authenticate"].startswith("Bearer ")
    headers = await entra.bearer()
    entra.clock.advance(3599)
    expired = await entra.client.get("/v1.0/users", headers=headers)
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "Lifetime validation failed, the token is expired."


async def test_a_missing_permission_gets_403_authorization_request_denied(entra: Entra) -> None:
    headers = await entra.bearer(WEAK_CLIENT)  # User.Read.All only
    assert (await entra.client.get("/v1.0/users", headers=headers)).status_code == 200
    response = await entra.client.get("/v1.0/groups", headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"
    assert response.json()["error"]["message"] == "Insufficient privileges to complete the operation."


async def test_throttling_answers_429_with_retry_after(entra: Entra) -> None:
    entra.app.state.ctx.entra_id.throttle_every = 3
    headers = await entra.bearer()
    statuses = [(await entra.client.get("/v1.0/users", headers=headers)) for _ in range(6)]
    assert [r.status_code for r in statuses] == [200, 200, 429, 200, 200, 429]
    limited = statuses[2]
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["code"] == "TooManyRequests"
    assert limited.headers["request-id"]  # Graph's request id header, from the middleware


async def test_unknown_segments_get_graphs_400(entra: Entra) -> None:
    response = await entra.client.get("/v1.0/nosuch", headers=await entra.bearer())
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Resource not found for the segment 'nosuch'."


async def test_wrong_methods_under_entra_answer_in_graphs_format(entra: Entra) -> None:
    response = await entra.client.get(f"/{TENANT}/oauth2/v2.0/token")
    assert response.status_code == 405
    assert response.json()["error"] == {"code": "BadRequest",
                                        "message": f"No GET operation at /entra/{TENANT}/oauth2/v2.0/token"}



def test_a_tables_ordered_keys_follow_every_change_of_its_keys_and_only_those() -> None:
    from reconcile.sim.entra_id.world import Table, ordered_keys

    table: Table[str] = Table({k: k.upper() for k in "abc"})
    kept = table.ordered()
    assert kept == ["a", "b", "c"] and table.ordered() is kept
    table["b"] = "B2"  # a changed object keeps its place: the list is kept
    assert table.ordered() is kept
    changes = [
        lambda: table.__setitem__("d", "D"), lambda: table.__delitem__("a"), lambda: table.pop("b"),
        lambda: table.pop("zz", None), lambda: table.setdefault("e", "E"), lambda: table.update(f="F"),
        lambda: table.__ior__({"g": "G"}), table.popitem,
    ]
    for change in changes:
        change()
        assert table.ordered() == list(table)  # after each change, the live keys in their order
    table.clear()
    assert table.ordered() == []
    # a deleted and re-added key goes last, as in the dict itself
    again: Table[int] = Table((k, i) for i, k in enumerate("xyz"))
    again.ordered()
    del again["x"]
    again["x"] = 0
    assert again.ordered() == ["y", "z", "x"] == list(again)
    assert ordered_keys({"p": 1, "q": 2}) == ["p", "q"]  # a plain dict given to a world: a copy of its keys


async def test_member_rows_of_ids_stay_right_and_selected_names_follow_a_change(entra: Entra) -> None:
    from dataclasses import replace

    from reconcile.sim.entra_id.world import USER

    headers = await entra.bearer()
    gid = await group_id(entra, headers, "Engineering")
    url = f"/v1.0/groups/{gid}/members"
    ids = [m for p in await entra.pages(url, headers, {"$select": "id"}) for m in p["value"]]
    names = [m for p in await entra.pages(url, headers, {"$select": "id,displayName"}) for m in p["value"]]
    world = entra.app.state.ctx.entra_id
    alice = next(world.users[i] for kind, i in world.groups[gid].members if kind == USER)
    world.users[alice.id] = replace(alice, display_name="Alice Renamed")  # rows showing the name re-render
    assert [m for p in await entra.pages(url, headers, {"$select": "id"}) for m in p["value"]] == ids
    renamed = [m for p in await entra.pages(url, headers, {"$select": "id,displayName"}) for m in p["value"]]
    assert renamed[0] == {**names[0], "displayName": "Alice Renamed"} and renamed[1:] == names[1:]
    assert ids[0] == {"@odata.type": "#microsoft.graph.user", "id": alice.id}
    # rows of ids (made at once from the member pairs) as each object's own row shows it, for every kind
    assert ids == [{"@odata.type": m["@odata.type"], "id": m["id"]} for m in names]
    assert {m["@odata.type"] for m in ids} == {f"#microsoft.graph.{k}" for k in ("user", "group", "device",
                                                                                   "servicePrincipal")}
    assert entra.transport.request_violations == []


def test_transitive_members_of_a_flat_group_are_its_member_list_else_the_walk() -> None:
    from reconcile.sim.entra_id.routes import _transitive
    from reconcile.sim.entra_id.world import GROUP, USER, EntraGroup, EntraWorld

    world = EntraWorld(groups={"flat": EntraGroup("flat", "Flat", members=[(USER, "a"), (USER, "b")]),
                               "twice": EntraGroup("twice", "Twice", members=[(USER, "a"), (USER, "a")]),
                               "outer": EntraGroup("outer", "Outer", members=[(USER, "c"), (GROUP, "flat")])})
    for gid in world.groups:
        assert list(_transitive(world, gid)) == list(world.transitive(gid))
    assert _transitive(world, "flat") is world.groups["flat"].members
    assert list(_transitive(world, "outer")) == [(USER, "c"), (GROUP, "flat"), (USER, "a"), (USER, "b")]


async def test_the_next_users_page_is_rendered_ahead_and_a_change_meanwhile_still_shows(
        entra: Entra, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    from dataclasses import replace

    from reconcile.sim.entra_id import routes

    rendered: list[str] = []
    original = routes.selected

    def counting(world: object, kind: str, object_id: str, names: object) -> dict[str, object]:
        rendered.append(object_id)
        return original(world, kind, object_id, names)  # type: ignore[arg-type]

    monkeypatch.setattr(routes, "selected", counting)
    headers = await entra.bearer()
    select = {"$top": "5", "$select": "id,displayName"}
    first = (await entra.client.get("/v1.0/users", params=select, headers=headers)).json()
    for _ in range(4):  # the render ahead runs a slice per loop turn, after the answer
        await asyncio.sleep(0)
    ahead = rendered[5:]
    assert len(ahead) == 5 and not set(ahead) & {u["id"] for u in first["value"]}
    world = entra.app.state.ctx.entra_id
    changed = world.users[ahead[1]]
    world.users[changed.id] = replace(changed, display_name="Renamed Meanwhile")
    rendered.clear()
    second = (await entra.client.get(first["@odata.nextLink"], headers=headers)).json()
    assert [u["id"] for u in second["value"]] == ahead  # the page rendered ahead is the page asked for next
    assert rendered[:1] == [changed.id]  # of its rows only the changed one was rendered again on request
    assert second["value"][1]["displayName"] == "Renamed Meanwhile"
    assert entra.transport.request_violations == []


def test_graph_and_okta_requests_are_routed_before_the_dc_and_cloud_routes() -> None:
    from starlette.routing import Mount

    from reconcile.sim.app import build_app

    routes = build_app().routes
    first_api = next(i for i, r in enumerate(routes) if not getattr(r, "path", "").startswith("/_sim"))
    entra, okta = routes[first_api], routes[first_api + 1:first_api + 5]
    assert isinstance(entra, Mount) and entra.path == "/entra"  # not after ~65 DC and Cloud routes tried in turn
    assert all(r.path.startswith("/okta/") for r in okta)  # type: ignore[attr-defined]
