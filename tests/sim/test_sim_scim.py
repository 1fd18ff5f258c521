"""The SCIM 2.0 simulator (reconcile/sim/scim/): every answer parses with scim2-models (the vendor-neutral
contract: ListResponse, User, Group, Error, ServiceProviderConfig); paging by startIndex/count under a page cap;
filters; attributes/excludedAttributes; groups in groups; bearer tokens; 429 + Retry-After; `reconcile sim` options.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scim2_models import Context, Error, Group, ListResponse, ServiceProviderConfig, User
from starlette.applications import Starlette

from reconcile.config.idp_scim import ScimGroupsSettings, ScimKey, ScimSourceSettings
from reconcile.errors import ConfigError
from reconcile.http import Backoff
from reconcile.settings import HttpSettings, Secret
from reconcile.sim.app import build_app
from reconcile.sim.scim.world import SCIM_TOKEN, ScimWorld
from reconcile.sim.server import SimOptions, configured_app
from reconcile.sources.scim import ScimSource
from tests.support.fake_clock import FakeClock

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = ROOT / "desired" / "examples" / "scim" / "directory.json"
BASE = "http://scim.test/scim/v2"
QUERY = Context.RESOURCE_QUERY_RESPONSE


def app_with(world: ScimWorld, clock: FakeClock | None = None) -> Starlette:
    app = build_app(clock=clock.monotonic if clock else None)
    app.state.ctx.extra["scim"] = world
    return app


def example_world(**changes: Any) -> ScimWorld:
    world = ScimWorld.from_directory(json.loads(DIRECTORY.read_text(encoding="utf-8")))
    for key, value in changes.items():
        setattr(world, key, value)
    return world


@pytest.fixture(name="client")
def client_fixture() -> Iterator[httpx.Client]:
    app = app_with(example_world(max_results=10))
    with httpx.Client(transport=_SyncAsgi(app), base_url=BASE, headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as c:
        yield c


class _SyncAsgi(httpx.BaseTransport):
    """The in-process app behind a sync client (each request on its own event loop)."""

    def __init__(self, app: Starlette) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def go() -> httpx.Response:
            response = await self.transport.handle_async_request(request)
            body = b"".join([chunk async for chunk in response.aiter_raw()])
            return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)

        return asyncio.run(go())


def users_page(response: httpx.Response) -> ListResponse[User[Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/scim+json"
    return ListResponse[User[Any]].model_validate(response.json(), scim_ctx=QUERY)


def groups_page(response: httpx.Response) -> ListResponse[Group]:
    assert response.status_code == 200, response.text
    return ListResponse[Group].model_validate(response.json(), scim_ctx=QUERY)


def error(response: httpx.Response, status: int) -> Error:
    assert response.status_code == status, response.text
    return Error.model_validate(response.json())


# ------------------------------------------------------------------------------------------------ the contract


def test_lists_page_by_start_index_and_count_under_the_cap(client: httpx.Client) -> None:
    first = users_page(client.get("/Users"))  # no count: the cap (10)
    assert (first.total_results, first.items_per_page, first.start_index) == (26, 10, 1)
    assert first.resources is not None and first.resources[0].user_name == "alice"
    clamped = users_page(client.get("/Users", params={"startIndex": 0, "count": 500}))  # <1 is 1; count capped
    assert (clamped.start_index, clamped.items_per_page) == (1, 10)
    last = users_page(client.get("/Users", params={"startIndex": 21, "count": 10}))
    assert last.items_per_page == 6 and last.total_results == 26
    past = client.get("/Users", params={"startIndex": 40}).json()
    assert past["Resources"] == [] and past["totalResults"] == 26
    none = users_page(client.get("/Users", params={"count": -3}))  # negative count means 0 (RFC 7644 §3.4.2.4)
    assert none.items_per_page == 0 and none.total_results == 26
    names = []
    for start in range(1, 27, 10):
        page = users_page(client.get("/Users", params={"startIndex": start, "count": 10}))
        names += [u.user_name for u in page.resources or ()]
    assert len(names) == len(set(names)) == 26


def test_resources_and_attributes_parse_as_scim(client: httpx.Client) -> None:
    page = users_page(client.get("/Users", params={"attributes": "userName,emails,name.formatted", "count": 2}))
    raw = client.get("/Users", params={"attributes": "userName,emails,name.formatted", "count": 1}).json()
    assert set(raw["Resources"][0]) == {"schemas", "id", "userName", "emails", "name"}  # id, schemas: always
    assert page.resources is not None and page.resources[0].emails is not None
    assert page.resources[0].emails[0].value == "alice@example.com" and page.resources[0].emails[0].primary
    user_id = page.resources[0].id
    alone: User[Any] = User.model_validate(client.get(f"/Users/{user_id}").json(), scim_ctx=QUERY)
    assert alone.user_name == "alice" and alone.active is True and alone.external_id == "emp-1001"
    groups = groups_page(client.get("/Groups", params={"attributes": "displayName,members"}))
    by_name = {g.display_name: g for g in groups.resources or ()}
    nested = [m for g in by_name.values() for m in g.members or () if m.type == "Group"]
    assert nested, "groups in groups"  # dept-platform and platform-oncall contain each other
    bare = groups_page(client.get("/Groups", params={"excludedAttributes": "members"}))
    assert all(g.members is None for g in bare.resources or ())
    group_id = next(iter(by_name.values())).id
    one = Group.model_validate(client.get(f"/Groups/{group_id}", params={"attributes": "members"}).json(),
                               scim_ctx=QUERY)
    assert one.members and one.display_name is None  # only what was asked (and id, schemas)
    config = ServiceProviderConfig.model_validate(client.get("/ServiceProviderConfig").json(), scim_ctx=QUERY)
    assert config.filter is not None and config.filter.max_results == 10


@pytest.mark.parametrize(("text", "expected"), [
    ('userName eq "ALICE"', ["alice"]),  # userName is case-insensitive (caseExact: false)
    ('emails.value ew "@example.org"', []),
    ('userName sw "ca" or userName sw "da"', ["carol", "dave"]),
    ('active eq false and userName co "r"', ["erin"]),
    ('not (active eq true) and emails[type eq "work" and value sw "e"]', ["erin"]),
    ('externalId eq "emp-1002"', ["bob"]),
    ("displayName pr and (userName eq \"bob\")", ["bob"]),
])
def test_filters(client: httpx.Client, text: str, expected: list[str]) -> None:
    page = users_page(client.get("/Users", params={"filter": text, "count": 50}))
    assert [u.user_name for u in page.resources or ()] == expected and page.total_results == len(expected)


@pytest.mark.parametrize("text", ['nosuch eq "x"', 'userName eq', 'userName zz "a"', '(userName eq "a"',
                                  "userName eq alice"])
def test_a_bad_filter_is_a_400_invalid_filter(client: httpx.Client, text: str) -> None:
    answer = error(client.get("/Users", params={"filter": text}), 400)
    assert answer.scim_type == "invalidFilter" and answer.detail


def test_tokens_and_unknown_resources_answer_scim_errors(client: httpx.Client) -> None:
    refused = client.get("/Users", headers={"Authorization": "Bearer wrong"})
    error(refused, 401)
    assert refused.headers["www-authenticate"].startswith("Bearer")
    error(client.get("/Users", headers={"Authorization": ""}), 401)
    error(client.get("/Groups/no-such-id"), 404)
    error(client.get("/Nothing/here"), 404)  # unrouted paths under /scim/ answer in SCIM's error format


# ------------------------------------------------------------------------------------------- with the source


def settings(**changes: Any) -> ScimSourceSettings:
    base = ScimSourceSettings(name="idp", url=BASE, token=Secret(SCIM_TOKEN, "${SCIM_TOKEN}"), key=ScimKey.USERNAME,
                              groups=ScimGroupsSettings(), http=HttpSettings(max_retries=3))
    for key, value in changes.items():
        base = type(base)(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, key: value})
    return base


def read(app: Starlette, config: ScimSourceSettings, clock: FakeClock | None = None) -> tuple[Any, int]:
    source = ScimSource(config, transport=httpx.ASGITransport(app=app), clock=clock.clock() if clock else None,
                        backoff=Backoff(rng=__import__("random").Random(1)))
    state = asyncio.run(source.read())
    return state, source.requests


def test_a_server_that_omits_members_on_lists_is_read_group_by_group() -> None:
    listed, listed_requests = read(app_with(example_world(max_results=10)), settings())
    omitted, omitted_requests = read(app_with(example_world(max_results=10, members_on_list=False)), settings())
    assert omitted == listed
    groups = len(example_world().groups)
    assert omitted_requests == listed_requests + groups  # one GET /Groups/{id}?attributes=members each
    assert listed.users["carol"].groups >= {"dept-platform", "platform-oncall"}  # through the cycle


def test_a_rate_limit_answers_429_with_retry_after_and_the_source_waits() -> None:
    clock = FakeClock()
    world = example_world(max_results=5, rate_limit=2.0)
    app = app_with(world, clock)
    state, requests = read(app, settings(http=HttpSettings(concurrency=1, max_retries=4)), clock)
    calm, calm_requests = read(app_with(example_world(max_results=5)), settings(http=HttpSettings(concurrency=1)))
    assert state == calm and requests > calm_requests  # some were refused and retried
    assert clock.sleeps and all(s >= 0.5 for s in clock.sleeps[:1])  # it waited as Retry-After said
    with httpx.Client(transport=_SyncAsgi(app_with(example_world(rate_limit=1.0), FakeClock())), base_url=BASE,
                      headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as c:
        assert c.get("/Users").status_code == 200
        refused = c.get("/Users")
        error(refused, 429)
        assert refused.headers["retry-after"] == "1"


def test_a_generated_directory_is_deterministic_and_nests() -> None:
    one, two = ScimWorld.generate(50, 5, 120, seed=3, nested=5), ScimWorld.generate(50, 5, 120, seed=3, nested=5)
    assert one.to_json() == two.to_json()
    assert sum(len([m for m in g.members if m[1] == "User"]) for g in one.groups.values()) == 120
    state, requests = read(app_with(one), settings(key=ScimKey.EMAIL, page_size=20))
    assert len(state.users) == 50 and requests == 3 + 1  # 50 users in pages of 20; 5 groups in one page
    assert sum(1 for u in state.users.values() if u.status.value == "disabled") == 5  # every tenth inactive
    everyone_in_team_0 = {k for k, u in state.users.items() if "team-0000" in u.groups}
    members_of_all = {k for k, u in state.users.items() if u.groups}
    assert everyone_in_team_0 == members_of_all  # team-0000 -> team-0001 -> ... -> team-0004 -> team-0000


def test_reconcile_sim_options_serve_a_scim_directory(tmp_path: Path) -> None:
    app = configured_app(SimOptions(scim_users=30, groups=3, memberships=60, seed=2))
    world = app.state.ctx.extra["scim"]
    assert len(world.users) == 30 and len(world.groups) == 3
    app = configured_app(SimOptions(scim_directory=DIRECTORY, scim_token="t"))
    assert app.state.ctx.extra["scim"].tokens == frozenset({"t"}) and len(app.state.ctx.extra["scim"].users) == 26
    bad = tmp_path / "bad.json"
    bad.write_text('{"users": [{"active": true}]}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.json: not a SCIM directory \(KeyError: 'userName'\)"):
        configured_app(SimOptions(scim_directory=bad))


def test_group_members_are_encoded_once_and_again_after_a_change_as_each_projection_renders_them() -> None:
    world = ScimWorld.generate(40, 4, 80, seed=2, nested=2)
    with httpx.Client(transport=_SyncAsgi(app_with(world)), base_url=BASE,
                      headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as client:

        def members(attributes: str | None) -> list[Any]:
            params = {"attributes": attributes} if attributes else {}
            return [g.get("members") for g in client.get("/Groups", params=params).json()["Resources"]]

        def expected(keep: tuple[str, ...]) -> list[Any]:  # what the members are, from the world itself
            out = []
            for group in world.groups.values():
                listed = []
                for mid, kind in group.members:
                    display = world.users[mid].user_name if kind == "User" else world.groups[mid].display_name
                    every = {"value": mid, "$ref": f"{BASE}/{kind}s/{mid}", "type": kind, "display": display}
                    listed.append({k: v for k, v in every.items() if k in keep})
                out.append(listed)
            return out

        every = ("value", "$ref", "type", "display")
        assert members(None) == members("displayName,members") == expected(every)
        assert members("members.value,members.type") == expected(("value", "type"))
        assert members("members.display,members.$ref") == expected(("$ref", "display"))
        first = next(iter(world.groups.values())).members[0][0]
        world.users[first].user_name = "renamed"
        world.changed()  # what invalidates the encoded members
        assert members(None) == expected(every) and "renamed" in json.dumps(members(None))


def test_the_members_a_reader_of_memberships_asks_are_encoded_at_generation_not_during_its_read() -> None:
    world = ScimWorld.generate(200, 6, 400, seed=2, nested=2)
    encoded = dict(world._members)  # (group id, sub-attributes) -> (revision, bytes)
    assert {keep for _, keep in encoded} == {("value", "$ref", "type", "display"), ("value", "type")}
    with httpx.Client(transport=_SyncAsgi(app_with(world)), base_url=BASE,
                      headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as client:
        page = client.get("/Groups", params={"attributes": "displayName,members.value,members.type"}).json()
    assert len(page["Resources"]) == 6 and all(len(g["members"]) > 0 for g in page["Resources"])
    assert world._members == encoded  # served from what generation encoded: nothing encoded on the read's path
