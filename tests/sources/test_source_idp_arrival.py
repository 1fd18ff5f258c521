"""Entra ID and SCIM reads do their work as pages arrive (issue 13's latency floor), observed at the simulator:
Entra member reads start before the group list's last page, SCIM group pages are spread over the first part of
the user pages and filed as they arrive, and users are built before the last user page; the result is the same
as filing from the whole list, and a failure still stops the read with its own error and no request left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reconcile.config.idp_entra import EntraGroupsSettings, EntraSourceSettings
from reconcile.config.idp_scim import ScimGroupsSettings, ScimSourceSettings
from reconcile.errors import SourceError
from reconcile.http import Backoff
from reconcile.model import DesiredState, Globs
from reconcile.settings import HttpSettings, Secret
from reconcile.sim.app import build_app
from reconcile.sim.entra_id.odata import project
from reconcile.sim.entra_id.routes import GETTERS, render, selected
from reconcile.sim.entra_id.world import USER, EntraApp, EntraGroup, EntraUser, EntraWorld
from reconcile.sim.scenario import parse_scenario
from reconcile.sim.scim.world import SCIM_TOKEN, ScimWorld
from reconcile.sources.entra_id import EntraSource
from reconcile.sources.scim import ScimSource
from reconcile.sources.scim.assembly import _interleave
from tests.support.contract_graph import GraphContractTransport
from tests.support.entra import CLIENT, SECRET, TENANT, Keys, keys_fixture, scenario
from tests.support.fake_clock import FakeClock

__all__ = ["keys_fixture"]  # the certificate keys the Entra ID scenario names (module scope)

Scope = MutableMapping[str, Any]
ASGI = Callable[[Scope, Any, Any], Awaitable[None]]


@dataclass
class Seen:
    """An ASGI wrapper in front of the simulator: each request's start and end, in the order they happen.
    A request `hold` picks is answered only once one `until` picks has started (or after 5 s, so that a
    reader that never sends it fails the test instead of hanging it): no timing decides the order."""

    app: ASGI
    hold: Callable[[str], bool] = lambda what: False
    until: Callable[[str], bool] = lambda what: False
    events: list[tuple[str, str]] = field(default_factory=list)
    started: asyncio.Event | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        what = f"{scope['path']}?{scope.get('query_string', b'').decode()}"
        self.events.append(("start", what))
        if self.started is None:
            self.started = asyncio.Event()
        if self.until(what):
            self.started.set()
        try:
            if self.hold(what):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.started.wait(), 5.0)
            await self.app(scope, receive, send)
        finally:
            self.events.append(("end", what))

    def first(self, kind: str, test: Callable[[str], bool]) -> int:
        return next(i for i, (k, what) in enumerate(self.events) if k == kind and test(what))

    @property
    def in_flight(self) -> int:
        return sum(1 if kind == "start" else -1 for kind, _ in self.events)


# ------------------------------------------------------------------------------------------------- Entra ID


def _tenant(groups: int) -> EntraWorld:
    """`groups` groups g0000… (two pages of the group list past 999), user u<i> a member of g<i> and of g0000."""
    world = EntraWorld(tenant_id=TENANT, domain="contoso.onmicrosoft.com")
    world.apps[CLIENT] = EntraApp(CLIENT, "reconcile", secrets=(SECRET,),
                                  permissions=frozenset({"User.Read.All", "GroupMember.Read.All"}))
    for i in range(groups):
        user = EntraUser(id=f"00000000-0000-4000-8000-{i:012d}", user_principal_name=f"u{i:04d}@contoso.com",
                         display_name=f"U {i}", mail=f"u{i:04d}@contoso.com")
        world.users[user.id] = user
        group = EntraGroup(id=f"00000000-0000-4000-9000-{i:012d}", display_name=f"g{i:04d}")
        group.members.append((USER, user.id))
        world.groups[group.id] = group
    first = next(iter(world.groups.values()))
    first.members += [(USER, uid) for uid in list(world.users)[1:]]
    return world


def _entra_read(include: tuple[str, ...]) -> tuple[Seen, DesiredState | SourceError]:
    fake = FakeClock()
    app = build_app(entra=_tenant(1_000), clock=fake.monotonic, wall=fake.wall)
    # the group list's second page is answered once a member read has started: the reader must not wait for it
    seen = Seen(app, hold=lambda w: w.startswith("/entra/v1.0/groups?") and "skiptoken" in w,
                until=lambda w: "/transitiveMembers?" in w)
    contract = GraphContractTransport(httpx.ASGITransport(app=seen))  # every answer checked against Graph's slice
    base = "http://testserver/entra"
    config = EntraSourceSettings(name="entra", tenant=TENANT, client_id=CLIENT, client_secret=Secret(SECRET, "${S}"),
                                 authority=base, graph_url=base,
                                 groups=EntraGroupsSettings(include=Globs(include), map=(("*", "*"),)),
                                 http=HttpSettings(concurrency=4, max_retries=0))
    source = EntraSource(config, transport=contract, backoff=Backoff(rng=random.Random(0), jitter=(1.0, 1.0)),
                         clock=fake.clock())
    try:
        result: DesiredState | SourceError = asyncio.run(source.read())
    except SourceError as exc:
        result = exc
    contract.check()
    assert contract.request_violations == [] and contract.uncovered == set()
    return seen, result


def test_an_entra_user_listed_twice_while_the_tenant_changes_is_one_desired_user_not_a_key_clash() -> None:
    world = _tenant(1_000)  # users on two pages of 999
    fake = FakeClock()
    app = build_app(entra=world, clock=fake.monotonic, wall=fake.wall)
    moved = next(iter(world.users))

    async def moving(scope: Scope, receive: Any, send: Any) -> None:
        await app(scope, receive, send)
        query = scope.get("query_string", b"").decode()
        if scope["type"] == "http" and scope["path"].endswith("/v1.0/users") and "skiptoken" not in query:
            world.users[moved] = world.users.pop(moved)  # removed and added again: listed on the last page too

    base = "http://testserver/entra"
    config = EntraSourceSettings(name="entra", tenant=TENANT, client_id=CLIENT, client_secret=Secret(SECRET, "${S}"),
                                 authority=base, graph_url=base, groups=None, http=HttpSettings(max_retries=0))
    source = EntraSource(config, transport=httpx.ASGITransport(app=moving), clock=fake.clock())
    state = asyncio.run(source.read())
    assert world.users[moved].mail in state.users  # once, as its last listing shows it
    assert source.requests == 3  # the token and two user pages: the user was listed twice


def test_entra_member_reads_start_before_the_group_lists_last_page() -> None:
    # g000?: ten groups of the first page of 999; g0999: the second page's only group
    seen, state = _entra_read(("g000?", "g0999"))
    assert isinstance(state, DesiredState)
    last_groups_page = seen.first("end", lambda w: w.startswith("/entra/v1.0/groups?") and "skiptoken" in w)
    first_member_read = seen.first("start", lambda w: "/transitiveMembers?" in w)
    assert first_member_read < last_groups_page  # before: member reads waited for the whole list
    # eleven groups, g0000's 1,000 members on two pages
    assert sum(1 for k, w in seen.events if k == "start" and "/transitiveMembers" in w) == 12
    own = {f"u{i:04d}@contoso.com": f"g{i:04d}" for i in (*range(1, 10), 999)}
    assert {key: sorted(u.groups) for key, u in state.users.items()} == {
        f"u{i:04d}@contoso.com": sorted({"g0000", own.get(f"u{i:04d}@contoso.com", "g0000")}) for i in range(1_000)}
    assert len(state.users) == 1_000 and state.groups == frozenset({f"g{i:04d}" for i in (*range(10), 999)})


def test_entra_a_group_name_missing_from_the_last_page_still_fails_with_no_member_read_left_running() -> None:
    seen, error = _entra_read(("g000?", "g9999"))
    assert isinstance(error, SourceError)
    assert error.message == "source 'entra' (entra-id): no group named 'g9999' in the tenant"
    assert any("/transitiveMembers" in w for _, w in seen.events)  # reads had started: they were cancelled
    assert seen.in_flight == 0


# ----------------------------------------------------------------------------------------------------- SCIM


def _scim_read(world: ScimWorld, *, concurrency: int = 2, page_size: int = 10,
               transport: httpx.AsyncBaseTransport | None = None) -> tuple[Seen, DesiredState]:
    app = build_app()
    app.state.ctx.extra["scim"] = world
    seen = Seen(app)
    config = ScimSourceSettings(name="idp", url="http://testserver/scim/v2", token=Secret(SCIM_TOKEN, "${T}"),
                                page_size=page_size, groups=ScimGroupsSettings(map=(("team-*", "t-*"),)),
                                http=HttpSettings(concurrency=concurrency, max_retries=0))
    source = ScimSource(config, transport=transport or httpx.ASGITransport(app=seen))
    return seen, asyncio.run(source.read())


def _memberships(state: DesiredState) -> dict[str, tuple[str, ...]]:
    return {key: tuple(sorted(u.groups)) for key, u in state.users.items()}


def test_scim_group_pages_are_spread_over_the_user_pages_and_users_built_before_the_last_one() -> None:
    world = ScimWorld.generate(200, 30, 600, seed=3, nested=4)
    world.max_results = 10
    app = build_app()
    app.state.ctx.extra["scim"] = world
    seen = Seen(app)
    config = ScimSourceSettings(name="idp", url="http://testserver/scim/v2", token=Secret(SCIM_TOKEN, "${T}"),
                                page_size=10, groups=ScimGroupsSettings(map=(("team-*", "t-*"),)),
                                http=HttpSettings(concurrency=2, max_retries=0))
    source = ScimSource(config, transport=httpx.ASGITransport(app=seen))
    attach = source._attach

    async def attached(groups_of: dict[str, set[str]], slice_size: int = 2_000) -> None:
        seen.events.append(("attach", ""))  # the memberships are final: users are built from here on
        await attach(groups_of, slice_size)

    source._attach = attached  # type: ignore[method-assign]
    state = asyncio.run(source.read())
    starts = [w for k, w in seen.events if k == "start"]
    user_rest = [i for i, w in enumerate(starts) if w.startswith("/scim/v2/Users?") and "startIndex=1&" not in w]
    group_rest = [i for i, w in enumerate(starts) if w.startswith("/scim/v2/Groups?") and "startIndex=1&" not in w]
    assert len(user_rest) == 19 and len(group_rest) == 2
    # spread over the first 60% of the user pages: neither all first (they held the reader and the server while
    # the lanes waited) nor last (the memberships, then every user, would be built after the last response)
    assert min(user_rest) < min(group_rest) and max(group_rest) < user_rest[12]
    attached_at = seen.events.index(("attach", ""))
    last_user_page = max(i for i, (k, w) in enumerate(seen.events) if k == "end" and w.startswith("/scim/v2/Users?"))
    assert attached_at < last_user_page
    assert sum(len(u.groups) for u in state.users.values()) > 600


def test_scim_pages_of_one_list_are_spread_evenly_over_the_first_part_of_the_other() -> None:
    assert _interleave(["g1", "g2"], [f"u{i}" for i in range(10)], 0.6) == [
        "u0", "u1", "u2", "g1", "u3", "u4", "u5", "g2", "u6", "u7", "u8", "u9"]
    assert _interleave(["g1", "g2", "g3"], ["u0"], 0.6) == ["u0", "g1", "g2", "g3"]
    assert _interleave(["g1"], [], 0.6) == ["g1"] and _interleave([], ["u0"], 0.6) == ["u0"]


def test_scim_members_filed_as_pages_arrive_equal_members_read_per_group_at_the_end() -> None:
    listed = ScimWorld.generate(200, 30, 600, seed=5, nested=6)  # a cycle of six nested groups
    alone = ScimWorld.generate(200, 30, 600, seed=5, nested=6)
    alone.members_on_list = False  # every group's members read alone, after the list: filed at the end
    listed.max_results = alone.max_results = 10
    _, on_arrival = _scim_read(listed)
    seen, at_the_end = _scim_read(alone)
    assert any(w.startswith("/scim/v2/Groups/") for _, w in seen.events)
    assert on_arrival == at_the_end
    assert _memberships(on_arrival) == _memberships(at_the_end)
    inner = [key for key, groups in _memberships(on_arrival).items() if {"t-0000", "t-0005"} <= set(groups)]
    assert inner  # the cycle: members of team-0005 are members of team-0000 too


class Overlapping:
    """A SCIM server whose second group page answers more than it was asked (11..25 for count 10): the page
    read at 21 is not part of the list, so what was filed from it must not count."""

    LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

    def __init__(self, world: ScimWorld) -> None:
        self.world = world
        self.app: Starlette = build_app()
        self.app.state.ctx.extra["scim"] = world

    async def groups(self, request: Request) -> Response:
        start = int(request.query_params["startIndex"])
        groups = list(self.world.groups.values())
        upto = start + (15 if start == 11 else 10) - 1
        if start == 21:  # what a page at 21 would hold if it were used: memberships nobody has
            chosen = [{"id": g.id, "displayName": g.display_name,
                       "members": [{"value": uid, "type": "User"} for uid in self.world.users]}
                      for g in groups[20:30]]
        else:
            chosen = [{"id": g.id, "displayName": g.display_name,
                       "members": [{"value": m, "type": t} for m, t in g.members]} for g in groups[start - 1:upto]]
        return JSONResponse({"schemas": [self.LIST], "totalResults": len(groups), "startIndex": start,
                             "itemsPerPage": len(chosen), "Resources": chosen})

    def asgi(self) -> Starlette:
        return Starlette(routes=[Route("/scim/v2/Groups", self.groups), *self.app.routes])


def test_scim_a_group_page_the_list_does_not_use_is_filed_again_from_the_list() -> None:
    world = ScimWorld.generate(60, 30, 150, seed=7)
    world.max_results = 10
    overlapping = Overlapping(world)
    _, state = _scim_read(world, concurrency=1, transport=httpx.ASGITransport(app=overlapping.asgi()))
    _, expected = _scim_read(ScimWorld.generate(60, 30, 150, seed=7))
    assert _memberships(state) == _memberships(expected)


@pytest.mark.parametrize("bad", ["group", "user"])
def test_scim_a_failing_page_still_stops_the_read_with_no_request_left_running(bad: str) -> None:
    world = ScimWorld.generate(100, 30, 300, seed=9)
    world.max_results = 10
    app = build_app()
    app.state.ctx.extra["scim"] = world

    async def refusing(scope: Scope, receive: Any, send: Any) -> None:
        query = scope.get("query_string", b"").decode()
        failing = "/scim/v2/Groups" if bad == "group" else "/scim/v2/Users"
        if scope["type"] == "http" and scope["path"] == failing and "startIndex=21&" in query:
            await JSONResponse({"detail": "busy"}, status_code=503)(scope, receive, send)
            return
        await app(scope, receive, send)

    seen = Seen(refusing)
    config = ScimSourceSettings(name="idp", url="http://testserver/scim/v2", token=Secret(SCIM_TOKEN, "${T}"),
                                page_size=10, groups=ScimGroupsSettings(), http=HttpSettings(concurrency=2,
                                                                                              max_retries=0))
    with pytest.raises(SourceError) as caught:
        asyncio.run(ScimSource(config, transport=httpx.ASGITransport(app=seen)).read())
    path = "Groups" if bad == "group" else "Users"
    assert caught.value.message.startswith(f"source 'idp' (scim): GET http://testserver/scim/v2/{path}?")
    assert "startIndex=21" in caught.value.message and "-> 503" in caught.value.message
    assert seen.in_flight == 0


# ------------------------------------------------------------------------------------- the Graph simulator


def test_graph_rows_selected_without_a_full_rendering_are_the_projection_of_one(keys: Keys) -> None:
    world = build_app(parse_scenario(scenario(keys))).state.ctx.entra_id
    assert world is not None
    tables = {"user": world.users, "group": world.groups, "device": world.devices,
              "servicePrincipal": world.service_principals}
    objects = [(kind, oid) for kind, table in tables.items() for oid in table]
    assert {kind for kind, _ in objects} == set(GETTERS)
    rng = random.Random(1)
    for kind, oid in objects:
        everything = [*GETTERS["user"], *GETTERS["group"], *GETTERS["device"], *GETTERS["servicePrincipal"]]
        for names in (["id"], ["id", "displayName"], list(GETTERS[kind]), rng.sample(everything, 7)):
            assert selected(world, kind, oid, names) == project(render(world, kind, oid), names, ())
            assert list(selected(world, kind, oid, names)) == list(project(render(world, kind, oid), names, ()))
