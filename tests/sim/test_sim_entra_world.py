"""The Entra ID simulator's world and contract: the validator catches corrupted responses, default properties
follow the Graph slice, scenario problems, a generated tenant, the simulator's own rate limit in Graph's format."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from reconcile.errors import ConfigError
from reconcile.sim.app import build_app
from reconcile.sim.entra_id.generate import generate_entra
from reconcile.sim.entra_id.routes import GROUP_PROPERTIES, USER_DEFAULT, USER_PROPERTIES
from reconcile.sim.scenario import parse_scenario
from tests.support.contract_graph import GraphContractTransport, document
from tests.support.entra import BASE, CLIENT, SCOPE, SECRET, TENANT, Keys, scenario
from tests.support.sim import Clock

pytestmark = pytest.mark.anyio


async def test_the_validator_catches_a_corrupted_response(keys: Keys) -> None:
    """The same exchange, once as served and once corrupted on the way: only the corrupted one fails."""

    class Corrupting(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport, change: Any) -> None:
            self.inner, self.change = inner, change

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            body = await response.aread()
            if request.url.path.endswith("/users"):
                data = json.loads(body)
                self.change(data)
                body = json.dumps(data).encode()
            return httpx.Response(response.status_code, headers={"content-type": "application/json"}, content=body)

    def wrong_type(data: dict[str, Any]) -> None:
        data["value"][0]["accountEnabled"] = "yes"

    def undeclared(data: dict[str, Any]) -> None:
        data["value"][0]["enabled"] = True

    def no_value(data: dict[str, Any]) -> None:
        data["value"] = {"not": "a list"}

    expected = {None: [], wrong_type: ["accountEnabled"], undeclared: ["does not declare enabled"],
                no_value: ["value"]}
    for change, needles in expected.items():
        app = build_app(parse_scenario(scenario(keys)))
        inner = httpx.ASGITransport(app=app)
        transport = GraphContractTransport(Corrupting(inner, change or (lambda data: None)))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            token = (await client.post(f"/{TENANT}/oauth2/v2.0/token", data={
                "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET,
                "scope": SCOPE})).json()["access_token"]
            await client.get("/v1.0/users", params={"$select": "id,accountEnabled"},
                             headers={"Authorization": f"Bearer {token}"})
        assert bool(transport.violations) == bool(needles), (change, transport.violations)
        for needle in needles:
            assert any(needle in v for v in transport.violations), (needle, transport.violations)


def test_a_generated_tenant_is_deterministic() -> None:
    one, two = generate_entra(500, 40, 2000, seed=3), generate_entra(500, 40, 2000, seed=3)
    assert list(one.users) == list(two.users) and one.users == two.users
    assert [g.members for g in one.groups.values()] == [g.members for g in two.groups.values()]
    assert sum(1 for g in one.groups.values() for m in g.members if m[0] == "user") == 2000
    assert any(not u.account_enabled for u in one.users.values())
    assert any(u.user_type == "Guest" for u in one.users.values())
    last, before = list(one.groups.values())[-2:]
    assert ("group", before.id) in last.members and ("group", last.id) in before.members  # a cycle
    assert generate_entra(500, 40, 2000, seed=4).users != one.users


def test_default_and_select_only_properties_follow_the_document() -> None:
    """What the simulator returns without $select is what the slice says is "Returned by default"."""
    schemas = document()["components"]["schemas"]

    def marked(schema: str, phrase: str) -> set[str]:
        props = schemas[schema]["allOf"][1]["properties"]
        return {name for name, prop in props.items() if phrase in prop.get("description", "")}

    user_default = marked("microsoft.graph.user", "Returned by default")
    user_select = marked("microsoft.graph.user", "Returned only on $select")
    assert set(USER_DEFAULT) - {"id"} <= user_default
    assert {"accountEnabled", "userType", "otherMails", "externalUserState"} <= user_select
    assert not (set(USER_PROPERTIES) - set(USER_DEFAULT)) & user_default - {"securityIdentifier"}
    group_default = marked("microsoft.graph.group", "Returned by default")
    assert set(GROUP_PROPERTIES) - {"id", "deletedDateTime"} <= group_default


def test_scenario_problems_name_file_line_and_column() -> None:
    text = """entra_id:
  users:
    - {user_principal_name: a@x.com, user_type: Visitor}
  groups:
    - display_name: G
      members: {users: [nobody@x.com], robots: [r2]}
  apps:
    - {client_id: c1, certificates: [not a pem]}
"""
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, "world.yaml")
    problems = caught.value.problems
    assert any(p.startswith("world.yaml:3:") and "user_type is Member or Guest, not 'Visitor'" in p for p in problems)
    assert any(p.startswith("world.yaml:6:") and "user 'nobody@x.com' is not in this scenario" in p for p in problems)
    assert any(p.startswith("world.yaml:6:") and "unknown key 'robots'" in p for p in problems)
    assert any(p.startswith("world.yaml:8:") and "not a PEM certificate" in p for p in problems)


def test_a_scenario_without_entra_id_serves_no_graph() -> None:
    assert build_app(parse_scenario("confluence_dc: {}")).state.ctx.entra_id is None


async def test_the_simulators_rate_limit_answers_graph_with_graphs_429(keys: Keys) -> None:
    scene = parse_scenario(scenario(keys) + "sim: {rate_limit: {fill_rate: 1, interval_seconds: 60, max: 1}}\n")
    clock = Clock()
    app = build_app(scene, clock=clock)
    transport = GraphContractTransport(httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        token = await client.post(f"/{TENANT}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET, "scope": SCOPE})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        first = await client.get("/v1.0/users", headers=headers)
        limited = await client.get("/v1.0/users", headers=headers)
    assert first.status_code == 200 and "x-ratelimit-limit" not in first.headers
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert limited.json()["error"]["code"] == "TooManyRequests"
    assert app.state.ctx.log.counts["entra-id"] == 3
    transport.check()
