"""The simulated Confluence DC read API: identity quirks, pagination caps, versions, permissions."""

from __future__ import annotations

import httpx
import pytest

from tests.support.sim import ADMIN_PASSWORD, ALICE_TOKEN, WORLD, generated_sim, make_sim, walk

pytestmark = pytest.mark.anyio


async def test_unknown_token_runs_as_anonymous_instead_of_401() -> None:
    sim = make_sim()
    async with sim.client("not-a-real-token") as client:
        response = await client.get("/rest/api/user/current")
    assert response.status_code == 200
    assert response.json()["type"] == "anonymous"
    assert "username" not in response.json()
    sim.check_contract()


async def test_known_token_and_basic_credentials_identify_the_user() -> None:
    sim = make_sim()
    async with sim.client() as by_token, sim.client(basic=("admin", ADMIN_PASSWORD)) as by_password:
        for client in (by_token, by_password):
            me = (await client.get("/rest/api/user/current")).json()
            assert (me["type"], me["username"]) == ("known", "admin")
            assert me["userKey"] == sim.ctx.dc.by_username["admin"]
    sim.check_contract()


async def test_wrong_basic_password_is_401() -> None:
    sim = make_sim()
    async with sim.client(basic=("admin", "wrong")) as client:
        response = await client.get("/rest/api/user/current")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    sim.check_contract()


async def test_user_list_caps_limit_at_100_and_links_the_next_page() -> None:
    sim = generated_sim(users=250, groups=2, memberships=1, seed=3)
    async with sim.client("sim-admin-token") as client:
        first = (await client.get("/rest/api/user/list?limit=1000&expand=status")).json()
        assert (first["limit"], first["size"], first["start"]) == (100, 100, 0)
        assert first["_links"]["next"] == "/rest/api/user/list?expand=status&limit=100&start=100"
        assert first["results"][0]["status"] == "Active"
        everyone, requests = await walk(client, "/rest/api/user/list?limit=1000")
    keys = [u["userKey"] for u in everyone]
    assert requests == 3
    assert len(keys) == len(set(keys)) == 250  # unsynced entries are not in /user/list
    sim.check_contract()


async def test_group_members_cap_at_200_and_pages_advance_by_size() -> None:
    sim = generated_sim(users=450, groups=2, memberships=1800)
    expected = sim.ctx.dc.member_list("confluence-users")
    assert len(expected) == 450
    async with sim.client("sim-admin-token") as client:
        page = (await client.get("/rest/api/group/confluence-users/member?limit=500")).json()
        assert (page["limit"], page["size"]) == (200, 200)
        assert page["_links"]["next"].endswith("limit=200&start=200")
        members, requests = await walk(client, "/rest/api/group/confluence-users/member?limit=500")
    assert requests == 3
    assert [m["userKey"] for m in members] == expected
    sim.check_contract()


async def test_group_list_and_memberof() -> None:
    sim = make_sim()
    async with sim.client() as client:
        groups = (await client.get("/rest/api/group")).json()
        assert [g["name"] for g in groups["results"]] == ["confluence-administrators", "ldap-eng", "team-docs"]
        assert groups["results"][0]["type"] == "group"
        of_bob = (await client.get("/rest/api/user/memberof", params={"username": "bob"})).json()
        assert [g["name"] for g in of_bob["results"]] == ["team-docs"]
        missing = await client.get("/rest/api/group/no-such-group/member")
        assert missing.status_code == 404
    sim.check_contract()


async def test_user_by_username_or_key_but_not_both() -> None:
    sim = make_sim()
    bob_key = sim.ctx.dc.by_username["bob"]
    async with sim.client() as client:
        by_name = await client.get("/rest/api/user", params={"username": "BOB", "expand": "status"})
        assert by_name.json()["userKey"] == bob_key
        assert by_name.json()["status"] == "Deactivated"
        by_key = await client.get("/rest/api/user", params={"key": bob_key})
        assert by_key.json()["username"] == "bob"
        assert "email" not in by_key.json()  # DC user objects never carry an email
        both = await client.get("/rest/api/user", params={"key": bob_key, "username": "bob"})
        assert both.status_code == 400
        unknown = await client.get("/rest/api/user", params={"username": "nobody"})
        assert unknown.status_code == 404
        unsynced = await client.get("/rest/api/user", params={"key": "00000000000000000000000000000a02",
                                                                "expand": "status"})
        assert unsynced.json()["displayName"] == "Jane Smith"
        assert unsynced.json()["status"] == "Unsynced"
    sim.check_contract()


async def test_active_users_on_9_4_have_email_and_last_login_oldest_first() -> None:
    sim = make_sim()
    async with sim.client() as client:
        body = (await client.get("/rest/api/admin/users/list/active?expand=lastLogin")).json()
    rows = [(u["username"], u["email"], u["lastLogin"]) for u in body["results"]]
    # bob is disabled (not licensed), unsynced entries are not users; dave never logged in.
    assert rows == [
        ("dave", "dave@example.com", None),
        ("carol", "carol@example.com", "2025-12-01T00:00:00.000Z"),
        ("alice", "alice@example.com", "2026-01-01T00:00:00.000Z"),
        ("admin", "admin@example.com", "2026-02-01T00:00:00.000Z"),
    ]
    sim.check_contract()


async def test_active_users_do_not_exist_before_9_3() -> None:
    sim = make_sim(WORLD.replace('version: "9.4"', 'version: "8.4"'))
    async with sim.client() as client:
        assert (await client.get("/rest/api/admin/users/list/active")).status_code == 404
        assert (await client.get("/rest/api/user/list")).status_code == 200
    sim.check_contract()


async def test_permissions_anonymous_user_and_admin() -> None:
    sim = make_sim()
    async with sim.client("bad-token") as anonymous, sim.client(ALICE_TOKEN) as alice:
        assert (await anonymous.get("/rest/api/user/list")).status_code == 403
        assert (await anonymous.get("/rest/api/group")).status_code == 403
        assert (await alice.get("/rest/api/user/list")).status_code == 200
        assert (await alice.get("/rest/api/group")).status_code == 200
        refused = await alice.get("/rest/api/group/team-docs/member")
        assert refused.status_code == 403
        assert refused.json()["message"] == "You need admin permissions to use this endpoint"
        assert (await alice.get("/rest/api/admin/users/list/active")).status_code == 403
        assert (await alice.put("/rest/api/user/alice/group/team-docs")).status_code == 403
    sim.check_contract()


async def test_junk_paging_is_400() -> None:
    sim = make_sim()
    async with sim.client() as client:
        assert (await client.get("/rest/api/group?start=-1")).status_code == 400
    sim.check_contract()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim",
                                 headers={"Authorization": "Bearer tok-admin"}) as raw:
        # not through the contract transport: the document itself forbids a non-integer limit
        assert (await raw.get("/rest/api/group?limit=lots")).status_code == 400
