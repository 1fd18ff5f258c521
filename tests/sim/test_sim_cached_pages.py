"""Cached page bodies (issue 15 item 1): a repeated read is served from the cache, and every kind of change
(a REST write, `/_sim/mutate`, a deletion task finishing) shows in the very next read."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from reconcile.sim.app import build_app
from reconcile.sim.atlassian_cloud.routes import CloudApi
from reconcile.sim.atlassian_cloud.world import DEFAULT_ORG, CloudWorld
from reconcile.sim.jsonbody import BodyCache, FastJSONResponse, dumps
from tests.support.sim import ADMIN_TOKEN, Sim, make_sim

pytestmark = pytest.mark.anyio

USERS = "/rest/api/user/list?expand=status&limit=100"
MEMBERS = "/rest/api/group/team-docs/member?limit=200"
ACTIVE = "/rest/api/admin/users/list/active?expand=lastLogin&limit=100"
GROUPS = "/rest/api/group?limit=200"


async def _get(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _statuses(body: dict[str, Any]) -> dict[str, str]:
    return {u["username"]: u["status"] for u in body["results"]}


async def test_a_repeated_dc_read_is_served_from_the_cache_byte_for_byte() -> None:
    sim = make_sim()
    async with sim.client() as client:
        first = await client.get(USERS)
        hits = _dc_hits(sim)
        again = await client.get(USERS)
    assert again.content == first.content
    assert _dc_hits(sim) == hits + 1, "the second read did not come from the cache"
    sim.check_contract()


def _dc_hits(sim: Sim) -> int:
    cache = sim.ctx.extra["dc_pages"]
    assert isinstance(cache, BodyCache)
    return cache.hits


async def test_dc_rest_writes_show_in_the_next_read_of_every_cached_listing() -> None:
    sim = make_sim()
    async with sim.client() as client:
        assert _statuses(await _get(client, USERS))["alice"] == "Active"
        members = [m["username"] for m in (await _get(client, MEMBERS))["results"]]
        active = [u["username"] for u in (await _get(client, ACTIVE))["results"]]
        groups = [g["name"] for g in (await _get(client, GROUPS))["results"]]
        assert "dave" not in members and "alice" in active and "team-new" not in groups

        # one write at a time, each followed by a read: every change must bump the revision on its own
        assert (await client.put("/rest/api/user/dave/group/team-docs")).status_code == 204
        assert "dave" in [m["username"] for m in (await _get(client, MEMBERS))["results"]]
        assert (await client.delete("/rest/api/user/alice/group/team-docs")).status_code == 204
        assert "alice" not in [m["username"] for m in (await _get(client, MEMBERS))["results"]]
        assert (await client.post("/rest/api/admin/group", json={"name": "team-new"})).status_code == 200
        assert "team-new" in [g["name"] for g in (await _get(client, GROUPS))["results"]]
        assert (await client.delete("/rest/api/admin/group/team-new")).status_code == 204
        assert "team-new" not in [g["name"] for g in (await _get(client, GROUPS))["results"]]
        assert (await client.put("/rest/api/admin/user/alice/disable")).status_code == 204
        assert _statuses(await _get(client, USERS))["alice"] == "Deactivated"
        assert "alice" not in [u["username"] for u in (await _get(client, ACTIVE))["results"]]
    sim.check_contract()


async def test_dc_admin_mutations_and_finished_deletions_show_in_the_next_read() -> None:
    sim = make_sim()
    async with sim.client() as client, httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                                         base_url="http://confluence.test") as admin:
        before = await _get(client, ACTIVE)
        names = [u["username"] for u in before["results"]]
        assert names.index("carol") < names.index("alice")  # least recent login first
        mutated = await admin.post("/_sim/mutate", json={"op": "login", "username": "carol",
                                                         "at": "2026-03-01T00:00:00.000Z"})
        assert mutated.status_code == 200, mutated.text
        assert [u["username"] for u in (await _get(client, ACTIVE))["results"]][-1] == "carol"

        assert "dave" in _statuses(await _get(client, USERS))
        assert (await client.delete("/rest/api/admin/user/dave")).status_code == 202
        sim.clock.advance(60)  # the long task finishes; the next request's tick() removes dave
        assert "dave" not in _statuses(await _get(client, USERS))
    sim.check_contract()


def _cloud_app() -> tuple[httpx.AsyncClient, CloudWorld, CloudApi]:
    world = CloudWorld.generate(30, 4, 60, seed=3)
    app = build_app(cloud=world, dc=make_sim().ctx.dc)
    api = app.state.ctx.extra["cloud_api"]
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.atlassian.test",
                               headers={"authorization": "Bearer sim-cloud-key"})
    return client, world, api


SEARCH = f"/admin/v2/orgs/{DEFAULT_ORG}/directories/-/users/search"


async def _search(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(SEARCH, json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_cloud_search_pages_are_cached_until_a_write_or_a_mutation() -> None:
    client, world, api = _cloud_app()
    query = {"expand": ["groups"], "limit": 10}
    async with client:
        first = await client.post(SEARCH, json=query)
        again = await client.post(SEARCH, json=query)
        assert again.content == first.content and api._pages.hits == 1

        user = (await _search(client, query))["data"][0]
        group = next(g for g in world.groups.values()
                     if user["accountId"] not in g.members and not g.external_synced)
        directory = group.directory
        added = await client.post(f"/admin/v2/orgs/{DEFAULT_ORG}/directories/{directory}/groups/{group.id}/memberships",
                                  json={"accountId": user["accountId"]})
        assert added.status_code == 204, added.text
        fresh = (await _search(client, query))["data"][0]
        assert group.id in [g["id"] for g in fresh["groups"]], "the write is not in the next read"

        assert world.mutate("suspend", {"user": user["accountId"]}) is None  # what POST /_sim/mutate calls
        assert (await _search(client, query))["data"][0]["status"] == "suspended"


async def test_an_unfiltered_search_lists_what_the_filtered_path_lists() -> None:
    client, world, _ = _cloud_app()
    async with client:
        plain = await _search(client, {"limit": 100})
        # `searchTerm: ""` selects everyone too, but goes through the per-user matching
        matched = await _search(client, {"limit": 100, "searchTerm": ""})
    assert [u["accountId"] for u in plain["data"]] == [u["accountId"] for u in matched["data"]]
    assert len(plain["data"]) == len(world.users)


def test_the_body_cache_keeps_one_revision_within_its_budget() -> None:
    cache = BodyCache(budget=10)
    assert cache.get(1, "a") is None
    cache.put(1, "a", b"12345")
    cache.put(1, "b", b"123456")  # over the budget: served, not kept
    assert cache.get(1, "a") == b"12345" and cache.get(1, "b") is None
    assert cache.get(2, "a") is None, "a new revision drops every body"
    cache.put(1, "c", b"1")  # a late put for an old revision is not kept either
    assert cache.get(2, "c") is None


@pytest.mark.parametrize("content", [{"a": [1, "é", None, True, 1.5]}, [], {"nested": {"x": "’"}}])
def test_fast_json_bodies_decode_to_what_was_given(content: Any) -> None:
    import json

    assert json.loads(bytes(FastJSONResponse(content).body)) == content == json.loads(dumps(content))


async def test_a_cached_dc_listing_is_never_served_past_the_permission_check() -> None:
    sim = make_sim()
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://confluence.test") as client:
        admin = await client.get(MEMBERS, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert admin.status_code == 200
        assert (await client.get(MEMBERS)).status_code == 403  # anonymous: never the admin's cached page


async def test_the_unsynced_page_lists_an_entry_unsynced_since_the_last_read() -> None:
    from tests.sim.test_sim_dc_unsynced import PAGE, page_keys, websudo

    sim = make_sim()
    dave = sim.ctx.dc.by_username["dave"]
    async with sim.client() as client:
        assert (await websudo(client)).status_code == 302
        assert dave not in page_keys((await client.get(PAGE)).text)
        mutated = await client.post("/_sim/mutate", json={"op": "unsync_user", "username": "dave"})
        assert mutated.status_code == 200, mutated.text
        assert dave in page_keys((await client.get(PAGE)).text)


async def test_the_next_cloud_search_page_is_rendered_before_it_is_asked_for_and_reads_the_same() -> None:
    client, _, api = _cloud_app()
    query = {"expand": ["groups", "productAccess"], "limit": 5, "claimStatus": "managed"}
    async with client:
        first = await _search(client, query)
        await asyncio.sleep(0)  # the answer is on its way: the simulator renders the next page meanwhile
        (second,) = api._ahead  # the next page, rendered ahead
        ahead = await client.post(SEARCH, json={**query, "cursor": first["links"]["next"]})
        await asyncio.sleep(0)
        assert second not in api._ahead and len(api._ahead) == 1  # served from there, dropped; the third ahead
        api._pages.bodies.clear()
        api._ahead.clear()
        fresh = await client.post(SEARCH, json={**query, "cursor": first["links"]["next"]})
        assert ahead.content == fresh.content
