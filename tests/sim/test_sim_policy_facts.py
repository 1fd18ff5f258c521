"""The simulator serves what the inactivity, licence and delete-guard policies read (issue 14, "Real parts").

Every request goes through httpx and ContractTransport into the in-process simulator, so each response is
also checked against the official document that defines its route; the DC licence resources are in none
(`transport.uncovered` proves they were not silently validated against something else).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from reconcile.errors import ConfigError
from reconcile.sim.app import build_app
from reconcile.sim.atlassian_cloud.activity import LAST_ACTIVE_LIMIT
from reconcile.sim.atlassian_cloud.world import CloudWorld
from reconcile.sim.confluence_dc.generate import generate_dc
from reconcile.sim.scenario import load_scenario, parse_scenario
from tests.support.contract import ContractTransport
from tests.support.sim import Clock

DC_TOKEN = {"Authorization": "Bearer example-admin-token"}  # the example world's credentials
CLOUD_KEY = {"Authorization": "Bearer sim-cloud-admin-key"}
ORG = "3f2a9c1e-7b4d-4e6f-9a8b-1c2d3e4f5a6b"
ALICE = "712020:a1000000-0000-4000-8000-000000000002"
ERIN = "712020:e0000000-0000-4000-8000-000000000006"
WALL_AT_START = 1_790_000_000.0  # 2026-09-21T13:33:20Z: the wall clock when Clock() reads 1000
# Statuses the real servers answer although these operations' documents omit them [I, as the README says].
UNDOCUMENTED = {
    "GET /rest/api/admin/users/list/active": {404},  # before 9.3 the resource does not exist
    "GET /rest/api/space/{spaceKey}/permissions": {404},
}

Check = Callable[[httpx.AsyncClient, ContractTransport], Awaitable[None]]


def run(check: Check, *, scenario: str | None = None, headers: dict[str, str] = DC_TOKEN,
        clock: Clock | None = None) -> ContractTransport:
    """Run `check` against one simulator (the example world unless `scenario`); the contract must hold."""
    clock = clock or Clock()
    world = parse_scenario(scenario, "<test scenario>") if scenario else load_scenario()
    app = build_app(world, clock=clock, wall=lambda: WALL_AT_START - 1000 + clock())
    transport = ContractTransport(httpx.ASGITransport(app=app), undocumented=UNDOCUMENTED)

    async def go() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://sim.test", headers=headers) as client:
            await check(client, transport)

    asyncio.run(go())
    transport.check()
    return transport


async def ok(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    response = await client.get(url, params=params, headers=headers)
    assert response.status_code == 200, f"{url} -> {response.status_code}: {response.text}"
    return response.json()


# -- Confluence DC: last login --------------------------------------------------------------------------


def test_dc_active_list_gives_last_logins_with_never_logged_in_first() -> None:
    async def check(client: httpx.AsyncClient, _: ContractTransport) -> None:
        body = await ok(client, "/rest/api/admin/users/list/active", expand="lastLogin", limit=100)
        logins = {u["username"]: u["lastLogin"] for u in body["results"]}
        assert body["results"][0]["username"] == "heidi" and logins["heidi"] is None  # never logged in: null
        assert logins["oliver"] == "2025-11-22T09:00:00.000Z"
        assert logins["rupert"] == "2025-06-30T12:00:00.000Z"
        order = [u["lastLogin"] for u in body["results"][1:]]
        assert order == sorted(order)  # least recent first
        assert "zoe" not in logins and "jsmith" not in logins  # disabled and unsynced do not count
        plain = await ok(client, "/rest/api/admin/users/list/active")
        assert all("lastLogin" not in u for u in plain["results"])  # only with the expansion

    run(check)


def test_dc_before_9_3_has_no_active_list_and_a_server_may_ignore_the_expansion() -> None:
    old = """
confluence_dc:
  version: "9.2"
  users: [{username: admin, tokens: [example-admin-token], groups: [confluence-administrators]}]
  groups: [{name: confluence-administrators}]
"""

    async def before(client: httpx.AsyncClient, _: ContractTransport) -> None:
        assert (await client.get("/rest/api/admin/users/list/active?expand=lastLogin")).status_code == 404
        assert (await client.get("/rest/api/permissions/group/confluence-administrators")).status_code == 404
        assert (await client.get("/rest/license/1.0/license/userCount")).json() == {"count": 1}

    run(before, scenario=old)
    silent = old.replace('"9.2"', '"9.4"\n  last_login_field: false')

    async def ignored(client: httpx.AsyncClient, _: ContractTransport) -> None:
        body = await ok(client, "/rest/api/admin/users/list/active", expand="lastLogin")
        assert [sorted(u) for u in body["results"]] == [["_expandable", "_links", "displayName", "email",
                                                        "profilePicture", "type", "userKey", "username"]]

    run(ignored, scenario=silent)


# -- Confluence DC: licence and "Can use" ---------------------------------------------------------------


def test_dc_licence_counts_are_the_active_users_of_the_can_use_groups() -> None:
    async def seats(client: httpx.AsyncClient) -> tuple[int, int, int]:
        got = [(await ok(client, f"/rest/license/1.0/license/{n}"))["count"]
               for n in ("userCount", "maxUsers", "remainingSeats")]
        return got[0], got[1], got[2]

    async def check(client: httpx.AsyncClient, transport: ContractTransport) -> None:
        can_use = [p["subject"]["displayName"] for p in await ok(client, "/rest/api/permissions")
                   if p["operation"] == {"targetType": "application", "operationKey": "use"}]
        assert sorted(can_use) == ["confluence-administrators", "confluence-users"]
        people = await ok(client, "/rest/api/user/list", expand="status", limit=100)
        active = {u["userKey"] for u in people["results"] if u["status"] == "Active"}
        holders: set[str] = set()
        for group in can_use:
            holders |= {m["userKey"] for m in (await ok(client, f"/rest/api/group/{group}/member"))["results"]}
        assert await seats(client) == (len(active & holders), 30, 30 - len(active & holders)) == (27, 30, 3)
        listed = await ok(client, "/rest/api/admin/users/list/active", limit=100)
        assert {u["userKey"] for u in listed["results"]} == active & holders
        # leaving the only Can-use group frees the seat; so does being disabled
        assert (await client.delete("/rest/api/user/alice/group/confluence-users")).status_code == 204
        assert (await client.put("/rest/api/admin/user/bob/disable")).status_code == 204
        assert await seats(client) == (25, 30, 5)
        listed = await ok(client, "/rest/api/admin/users/list/active", limit=100)
        assert not {"alice", "bob"} & {u["username"] for u in listed["results"]}
        assert "GET /rest/license/1.0/license/userCount" in transport.uncovered  # in no carried document

    run(check)


def test_dc_global_permissions_per_group() -> None:
    async def check(client: httpx.AsyncClient, _: ContractTransport) -> None:
        def ops(body: list[dict[str, Any]]) -> set[str]:
            return {f"{p['operation']['targetType']} {p['operation']['operationKey']}" for p in body}

        assert ops(await ok(client, "/rest/api/permissions/group/confluence-users")) == {
            "application use", "personal_space create"}
        assert {"application use", "application administer", "system administer"} <= ops(
            await ok(client, "/rest/api/permissions/group/confluence-administrators"))
        assert await ok(client, "/rest/api/permissions/group/team-docs") == []
        assert (await client.get("/rest/api/permissions/group/no-such-group")).status_code == 404

    run(check)


# -- Confluence DC: spaces, space admins, content ---------------------------------------------------------


def test_dc_spaces_by_type_and_status() -> None:
    async def check(client: httpx.AsyncClient, _: ContractTransport) -> None:
        personal = await ok(client, "/rest/api/space", type="personal", expand="creator")
        assert [(s["key"], s["creator"]["username"]) for s in personal["results"]] == [
            ("~alice", "alice"), ("~rupert", "rupert"), ("~sybil", "sybil")]
        everything = await ok(client, "/rest/api/space", limit=3)
        assert [s["key"] for s in everything["results"]] == ["DOCS", "ENG", "OLD"] and "next" in everything["_links"]
        archived = await ok(client, "/rest/api/space", status="archived")
        assert [s["key"] for s in archived["results"]] == ["OLD"]
        assert (await ok(client, "/rest/api/space/OPS"))["type"] == "global"
        assert (await client.get("/rest/api/space/NOPE")).status_code == 404

    run(check)


def test_dc_space_permissions_show_sole_direct_admins() -> None:
    async def check(client: httpx.AsyncClient, _: ContractTransport) -> None:
        async def admins(key: str) -> list[tuple[str, str]]:
            body = await ok(client, f"/rest/api/space/{key}/permissions")
            assert all(p["spaceKey"] == key for p in body)
            return [(p["subject"]["type"], p["subject"]["displayName"]) for p in body
                    if p["operation"] == {"targetType": "space", "operationKey": "administer"}]

        assert await admins("OPS") == [("user", "Rupert Reed")]  # the only direct admin
        assert await admins("DOCS") == [("user", "Alice Archer"), ("group", "confluence-administrators")]
        assert await admins("ENG") == [("user", "Dave Dawson"), ("user", "Erin Evans")]
        rupert = (await ok(client, "/rest/api/user", username="rupert"))["userKey"]
        alice = (await ok(client, "/rest/api/user", username="alice"))["userKey"]
        mine = await ok(client, f"/rest/api/space/OPS/permissions/user/{rupert}")
        assert sorted(p["operation"]["operationKey"] for p in mine) == ["administer", "read"]
        assert await ok(client, f"/rest/api/space/OPS/permissions/user/{alice}") == []
        assert (await client.get("/rest/api/space/OPS/permissions/user/ffffffffffffffffffffffffffffffff")
                ).status_code == 404
        assert (await client.get("/rest/api/space/NOPE/permissions")).status_code == 404

    run(check)


def test_dc_cql_counts_pages_per_creator() -> None:
    async def check(client: httpx.AsyncClient, _: ContractTransport) -> None:
        async def total(cql: str) -> int:
            body = await ok(client, "/rest/api/search", cql=cql, limit=1)
            assert body["size"] == min(1, body["totalSize"])
            return int(body["totalSize"])

        assert await total("creator = alice") == 214 + 3
        assert await total('creator = "rupert" AND space = OPS') == 57
        assert await total("type = page AND creator = rupert") == 57 + 9
        assert await total("type in (page, blogpost) and creator = sybil") == 2 + 31
        assert await total("type = blogpost AND creator = alice") == 0  # only pages are simulated
        assert await total("creator = heidi") == 0
        seen: list[str] = []
        url: str | None = "/rest/api/search?cql=creator%3Drupert&limit=25"
        while url:
            body = (await client.get(url)).json()
            seen += [r["content"]["id"] for r in body["results"]]
            url = body["_links"].get("next")
        assert len(seen) == len(set(seen)) == 66  # pages across OPS and ~rupert, each once
        assert (await client.get("/rest/api/search", params={"cql": "label = docs"})).status_code == 400
        assert (await client.get("/rest/api/search")).status_code == 400

    run(check)


# -- Atlassian Cloud -------------------------------------------------------------------------------------


def test_cloud_bulk_read_has_per_product_activity_and_added_to_org() -> None:
    async def check(client: httpx.AsyncClient, _: ContractTransport) -> None:
        response = await client.post(f"/admin/v2/orgs/{ORG}/directories/-/users/search",
                                     json={"limit": 100, "expand": ["productAccess"]})
        users = {u["email"]: u for u in response.json()["data"]}
        alice = users["alice@acme.example"]
        assert alice["addedToOrg"] == "2023-05-15T10:00:00Z"
        assert [(p["key"], p.get("lastActiveTimestamp")) for p in alice["productAccess"]] == [
            ("confluence", "2026-09-30T08:00:00Z"), ("jira", None)]  # granted Jira, never active there
        assert users["erin@acme.example"]["productAccess"] == []  # never active anywhere

    run(check, headers=CLOUD_KEY)


def test_cloud_last_active_dates_per_user() -> None:
    async def check(client: httpx.AsyncClient, _: ContractTransport) -> None:
        base = f"/admin/v1/orgs/{ORG}/directory/users"
        alice = (await ok(client, f"{base}/{ALICE}/last-active-dates"))["data"]
        assert alice == {"product_access": [{"id": alice["product_access"][0]["id"], "key": "confluence",
                                             "last_active": "2026-09-30",
                                             "last_active_timestamp": "2026-09-30T08:00:00Z"}],
                         "added_to_org": "2023-05-15", "added_to_org_timestamp": "2023-05-15T10:00:00Z"}
        erin = (await ok(client, f"{base}/{ERIN}/last-active-dates"))["data"]
        assert erin == {"product_access": [], "added_to_org": "2025-01-10",
                        "added_to_org_timestamp": "2025-01-10T08:00:00Z"}
        missing = await client.get(f"{base}/712020:ffffffff-0000-4000-8000-000000000000/last-active-dates")
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "ADMIN-404-8"
        wrong = await client.get(f"{base}/{ALICE}/last-active-dates", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401

    run(check, headers=CLOUD_KEY)


def test_cloud_last_active_dates_allows_200_requests_a_minute_per_org() -> None:
    clock = Clock()
    url = f"/admin/v1/orgs/{ORG}/directory/users/{ALICE}/last-active-dates"

    async def check(client: httpx.AsyncClient, _: ContractTransport) -> None:
        for i in range(LAST_ACTIVE_LIMIT):
            response = await client.get(url)
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Remaining"] == str(LAST_ACTIVE_LIMIT - 1 - i)
            clock.advance(0.25)  # 200 requests in 50 s
        limited = await client.get(url)
        assert limited.status_code == 429 and limited.json()["code"] == 429
        reset = datetime.fromtimestamp(WALL_AT_START + 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (limited.headers["X-RateLimit-Limit"], limited.headers["X-RateLimit-Remaining"],
                limited.headers["X-RateLimit-Reset"], limited.headers["Retry-After"]) == ("200", "0", reset, "10")
        # the bulk read is not limited by this window
        bulk = await client.post(f"/admin/v2/orgs/{ORG}/directories/-/users/search", json={"limit": 1})
        assert bulk.status_code == 200
        clock.advance(9.999)
        assert (await client.get(url)).status_code == 429
        clock.advance(0.001)  # a new minute
        again = await client.get(url)
        assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "199"

    run(check, headers=CLOUD_KEY, clock=clock)


def test_cloud_user_counts_match_the_seats_the_world_counts() -> None:
    world = CloudWorld.from_scenario(load_scenario().cloud or {})
    ari = world.resource_ari("confluence")

    async def check(client: httpx.AsyncClient, _: ContractTransport) -> None:
        url = f"/admin/v2/orgs/{ORG}/directories/-/users/count"
        assert (await ok(client, url))["count"] == 7
        billable = await ok(client, url, resourceIds=[ari], roleIds=["atlassian/user", "atlassian/admin"],
                            status=["active"])
        assert billable["count"] == world.seats_used("confluence") == 3  # olga, alice, bob (carol suspended)
        assert (await ok(client, url, status=["suspended"]))["count"] == 1
        assert (await ok(client, url, resourceIds=["ari:cloud:jira-software::site/none"]))["count"] == 0
        assert (await ok(client, url, claimStatus="unmanaged"))["count"] == 1
        assert (await client.get(f"/admin/v2/orgs/{ORG}/directories/nope/users/count")).status_code == 404

    run(check, headers=CLOUD_KEY)


def test_logins_behind_the_tools_back_move_the_facts() -> None:
    async def check(client: httpx.AsyncClient, _: ContractTransport) -> None:
        async def mutate(body: dict[str, Any]) -> int:
            return (await client.post("/_sim/mutate", json=body)).status_code

        assert await mutate({"op": "login", "username": "heidi", "at": "2026-03-03T08:00:00.000Z"}) == 200
        body = await ok(client, "/rest/api/admin/users/list/active", expand="lastLogin", limit=100)
        assert body["results"][-1]["username"] == "heidi"  # now the most recent login
        assert await mutate({"op": "login", "username": "heidi", "at": "tomorrow"}) == 400
        assert await mutate({"api": "atlassian-cloud", "op": "active", "user": "erin@acme.example",
                             "product": "confluence", "at": "2026-10-02T09:00:00Z"}) == 200
        erin = await ok(client, f"/admin/v1/orgs/{ORG}/directory/users/{ERIN}/last-active-dates",
                        headers=CLOUD_KEY)
        assert [(p["key"], p["last_active"]) for p in erin["data"]["product_access"]] == [("confluence", "2026-10-02")]

    run(check)


# -- Generators and scenario checks ----------------------------------------------------------------------


def test_generated_activity_is_relative_to_the_epoch_given() -> None:
    epoch = datetime(2030, 6, 1, tzinfo=UTC)
    a, b = generate_dc(300, 6, 600, seed=4), generate_dc(300, 6, 600, seed=4, epoch=epoch)
    shift = epoch - datetime(2025, 1, 1, tzinfo=UTC)
    for key, user in a.users.items():
        later = b.users[key].last_login
        if user.last_login is None:
            assert later is None
        else:
            assert later is not None
            assert datetime.fromisoformat(later) - datetime.fromisoformat(user.last_login) == shift
    assert sum(u.last_login is None for u in a.users.values() if not u.unsynced) > 10  # some never logged in
    assert a.to_json() == generate_dc(300, 6, 600, seed=4).to_json()
    assert {s.type for s in a.spaces.values()} == {"personal", "global"}
    cloud, moved = CloudWorld.generate(200, 4, 300, seed=2), CloudWorld.generate(200, 4, 300, seed=2, epoch=epoch)
    first = next(iter(cloud.users.values()))
    gap = datetime.fromisoformat(moved.users[first.account_id].added_to_org or "") - datetime.fromisoformat(
        first.added_to_org or "")
    assert gap == epoch - datetime(2026, 1, 1, tzinfo=UTC)
    jira = [p for u in cloud.users.values() for p in u.product_access if p["key"] == "jira"]
    assert jira and any("lastActiveTimestamp" not in p for p in jira)  # some never active in Jira
    assert all(datetime.fromisoformat(u.added_to_org or "") < datetime(2026, 1, 1, tzinfo=UTC) - timedelta(days=399)
               for u in cloud.users.values())


def test_scenario_problems_name_the_line() -> None:
    bad = """confluence_dc:
  users:
    - {username: alice, last_login: yesterday}
  groups: [{name: confluence-users, members: [alice]}]
  licence: {max_users: -3, can_use: [nobody-group]}
  spaces:
    - {key: DOCS, admins: [ghost], content: {alice: many}}
    - {key: DOCS, type: team}
"""
    with pytest.raises(ConfigError) as caught:
        parse_scenario(bad, "world.yaml")
    assert caught.value.problems == [
        "world.yaml:3:25: last_login 'yesterday' is not an ISO-8601 timestamp (null: never logged in)",
        "world.yaml:5:13: max_users is a whole number of seats (or null: unlimited), not -3",
        "world.yaml:5:28: can_use group 'nobody-group' is not a group of this scenario",
        "world.yaml:7:19: admins: 'ghost' is not a user of this scenario",
        "world.yaml:7:36: content: alice's page count is a whole number, not 'many'",
        "world.yaml:8:19: a space's type is personal or global, not 'team'",
        "world.yaml:8:8: space DOCS is listed twice",
    ]
