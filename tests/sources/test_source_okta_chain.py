"""The Okta user list is one cursor chain (`Link: rel="next"`): the next page is asked for before the page in hand
is decoded and used, so a page costs the chain its latency, not latency plus the reader's CPU (issue 13's floor);
at most one request of the chain is in flight, and none is left running once the chain stops.
"""

from __future__ import annotations

import asyncio
import math
import time
from contextlib import aclosing
from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from reconcile.errors import SourceError
from reconcile.settings import Secret
from reconcile.sim.app import build_app
from reconcile.sim.context import OKTA, SimContext
from reconcile.sim.okta.world import OktaWorld
from reconcile.sim.server import running
from reconcile.sources.okta.client import OktaClient
from reconcile.sources.okta.settings import OktaGroupsSettings, OktaSourceSettings
from reconcile.sources.okta.source import USER_PAGE, OktaSource
from tests.support.contract_idp import IdpTransport

USERS = "GET /okta/api/v1/users"


class Asked(httpx.AsyncBaseTransport):
    """Forwards to the simulator (through the vendor-document check), noting each request line on arrival."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.seen = inner, list[str]()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.raw_path.decode()}")
        return await self.inner.handle_async_request(request)


def org(users: int) -> tuple[Starlette, int]:
    """A generated org's simulator and how many pages of 200 its plain user list has (DEPROVISIONED omitted)."""
    world = OktaWorld.generate(users, 2, 40, api_token="t")
    sim = build_app()
    sim.state.ctx.extra["okta"] = world
    listed = sum(1 for u in world.users.values() if u.status != "DEPROVISIONED")
    return sim, math.ceil(listed / 200)


def settings(url: str) -> OktaSourceSettings:
    return OktaSourceSettings(name="okta", url=url, token=Secret("t", "${T}"))


def test_each_page_reaches_the_reader_after_the_next_one_was_asked_for() -> None:
    sim, pages = org(650)
    assert pages >= 3
    contract = IdpTransport(httpx.ASGITransport(app=sim))
    asked = Asked(contract)
    client = OktaClient(settings("http://okta.test/okta"), transport=asked)

    async def walk() -> list[int]:
        at: list[int] = []  # user-list requests the simulator had been sent when each page was handed over
        async with aclosing(client.pages("/api/v1/users", {"limit": "200"}, "the user list", USER_PAGE)) as chain:
            async for _ in chain:
                at.append(sum(1 for line in asked.seen if line.startswith(USERS)))
        await client.aclose()
        return at

    # page n is decoded and used once page n + 1 was asked for (before: only after it was used); the last
    # page has no next link
    assert asyncio.run(walk()) == [*range(2, pages + 1), pages]
    contract.check()


def test_a_failing_page_stops_the_chain_and_leaves_no_request_running() -> None:
    sim, _ = org(650)
    ctx: SimContext = sim.state.ctx
    asked = Asked(IdpTransport(httpx.ASGITransport(app=sim)))
    client = OktaClient(settings("http://okta.test/okta"), transport=asked)

    async def walk() -> set[asyncio.Task[Any]]:
        try:
            async with aclosing(client.pages("/api/v1/users", {"limit": "200"}, "the user list", USER_PAGE)) as chain:
                async for _ in chain:
                    raise SourceError("the reader refused page 1")  # e.g. a user without a login
        except SourceError:
            pass
        left = asyncio.all_tasks() - {asyncio.current_task()}
        await client.aclose()
        return left

    assert asyncio.run(walk()) == set()
    assert [line for line in asked.seen if line.startswith(USERS)][2:] == []  # page 3 never asked for
    assert ctx.log.in_flight_by_api.get(OKTA, 0) == 0


@pytest.mark.slow  # a real server in a thread: the request leaves through a socket, as in production
def test_over_a_socket_the_next_page_leaves_before_this_page_is_used() -> None:
    sim, pages = org(450)
    ctx: SimContext = sim.state.ctx

    async def walk(url: str) -> list[int]:
        client = OktaClient(settings(f"{url}/okta"))
        arrived: list[int] = []
        async with aclosing(client.pages("/api/v1/users", {"limit": "200"}, "the user list", USER_PAGE)) as chain:
            async for _ in chain:
                # The server runs in another thread: wait (bounded; only a failing order waits it out) for
                # the next request to arrive there while this page is still unused.
                want, until = len(arrived) + 2, time.monotonic() + 10
                while ctx.log.counts.get(OKTA, 0) < min(want, pages) and time.monotonic() < until:
                    await asyncio.sleep(0.005)
                arrived.append(ctx.log.counts.get(OKTA, 0))
        await client.aclose()
        return arrived

    with running(sim) as url:
        assert asyncio.run(walk(url)) == [*range(2, pages + 1), pages]



class Lanes(httpx.AsyncBaseTransport):
    """Forwards to the simulator, noting the most member reads in flight at once while the user list is read."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.members, self.most, self.listing = inner, 0, 0, True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        member = "/groups/" in request.url.path
        self.members += member
        if self.listing:
            self.most = max(self.most, self.members)
        try:
            response = await self.inner.handle_async_request(request)
        finally:
            self.members -= member
        plain = request.url.path.endswith("/api/v1/users") and "filter" not in request.url.params
        if plain and 'rel="next"' not in ",".join(response.headers.get_list("link")):
            self.listing = False  # the (plain) user list's last page; the DEPROVISIONED list is one page here
        return response


def test_the_user_chain_keeps_a_lane_of_its_own_while_members_are_read() -> None:
    world = OktaWorld.generate(650, 12, 600, api_token="t")
    sim = build_app()
    sim.state.ctx.extra["okta"] = world
    ctx: SimContext = sim.state.ctx  # a little latency, so that requests overlap in process (not injectable)
    ctx.apply_settings(ctx.settings.updated({"latency_ms": 5}))
    lanes = Lanes(IdpTransport(httpx.ASGITransport(app=sim)))
    cfg = replace(settings("http://okta.test/okta"), concurrency=3, groups=OktaGroupsSettings())
    state = asyncio.run(OktaSource(cfg, transport=lanes).read())
    # 3 lanes: the user list keeps one (so does the one-page DEPROVISIONED list until it ends), two for members
    assert lanes.most == 2
    assert sum(len(u.groups) for u in state.users.values()) == sum(
        1 for g in world.groups.values() for m in g.members
        if world.users[m].status not in ("STAGED", "PROVISIONED"))  # absent by default; DEPROVISIONED: disabled


class Bunched(httpx.AsyncBaseTransport):
    """The user list (two pages) and one group's members (one page); the first page of each is answered only
    when `go` is set, so both answers come in the same turn of the loop, the user list's first."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.events: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path, query = request.url.path, request.url.query.decode()
        if path.endswith("/api/v1/users") and "after=" in query:
            self.events.append("the user list's next page asked for")
            return httpx.Response(200, json=[{"id": "u2"}])
        await self.go.wait()
        if path.endswith("/api/v1/users"):
            link = '<http://okta.test/okta/api/v1/users?limit=200&after=u1>; rel="next"'
            return httpx.Response(200, json=[{"id": "u1"}], headers={"link": link})
        return httpx.Response(200, json=[{"id": "u1"}])


def test_a_member_page_that_comes_with_a_user_page_is_decoded_after_the_chains_next_request() -> None:
    transport = Bunched()
    client = OktaClient(settings("http://okta.test/okta"), transport=transport)

    async def read(path: str, chain: bool) -> None:
        async with aclosing(client.pages(path, {"limit": "200"}, path, USER_PAGE, chain=chain)) as pages:
            async for _ in pages:
                if not chain:
                    transport.events.append("the member page decoded")

    async def scenario() -> None:
        reads = [asyncio.ensure_future(read("/api/v1/users", True))]
        await asyncio.sleep(0)
        reads.append(asyncio.ensure_future(read("/api/v1/groups/g/users", False)))
        for _ in range(10):  # both requests reach the transport and wait there, the user list's first
            await asyncio.sleep(0)
        transport.go.set()
        await asyncio.gather(*reads)
        await client.aclose()

    asyncio.run(scenario())
    # the chain's next request is written before the other answer of the same bunch is handled, not after
    assert transport.events == ["the user list's next page asked for", "the member page decoded"]
