"""The Okta simulator: paging caps and Link cursors to the end, DEPROVISIONED hidden from a plain list,
filters, SSWS and private_key_jwt token flows, rate-limit headers, 429s and Okta's error bodies. Every
exchange is validated against Okta's Management OpenAPI document (tests/support/contract_idp.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import jwt
import pytest

from reconcile.errors import ConfigError
from reconcile.sim.okta.generate import generate_okta
from reconcile.sim.okta.world import STATUSES, OktaWorld, RateLimits
from reconcile.sim.scenario import parse_scenario
from tests.support.contract_idp import exchange_problems
from tests.support.idp import WALL, IdpSim, assertion, example_key, example_sim, make_idp_sim, public_pem, yaml_string

pytestmark = pytest.mark.anyio

# Enough latency that every request of a burst is in flight at once, with a wide margin on a busy machine.
IN_FLIGHT_TOGETHER = "sim: {latency_ms: 100}\n"

TOKEN_URL = "http://idp.test/okta/oauth2/v1/token"
CLIENT = "0oareconcile000000001"
SSWS = "SSWS okta-test-token"


def world(extra: str = "", limits: str = "") -> str:
    users = "\n".join(f"    - {{login: {s.lower()}@example.com, status: {s}}}" for s in STATUSES)
    return f"""
okta:
  api_tokens: [okta-test-token]
  {limits}
  service_apps:
    - client_id: {CLIENT}
      public_keys: [{yaml_string(public_pem("okta-app"))}]
      scopes: [okta.users.read, okta.groups.read]
  users:
{users}
  groups:
    - {{name: Engineering, members: [active@example.com, deprovisioned@example.com, suspended@example.com]}}
    - {{name: Everyone, type: BUILT_IN}}
    - {{name: AD Staff, type: APP_GROUP, description: from AD, members: [locked_out@example.com]}}
{extra}"""


def large(users: int, groups: int, memberships: int) -> IdpSim:
    sim = make_idp_sim("{}")
    sim.ctx.extra["okta"] = OktaWorld.generate(users, groups, memberships, seed=3, api_token="okta-test-token")
    return sim


async def walk(client: httpx.AsyncClient, url: str) -> tuple[list[dict[str, Any]], list[httpx.Response]]:
    """Follow `Link: rel="next"` verbatim until there is none."""
    items: list[dict[str, Any]] = []
    responses = []
    next_url: str | None = url
    while next_url:
        response = await client.get(next_url)
        assert response.status_code == 200, response.text
        responses.append(response)
        items += response.json()
        next_url = response.links.get("next", {}).get("url")
    return items, responses


def claims(**changes: Any) -> dict[str, Any]:
    base = {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "iat": int(WALL), "exp": int(WALL) + 300,
            "jti": "test-jti"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


async def token(client: httpx.AsyncClient, jwt_: str,
                scope: str = "okta.users.read okta.groups.read") -> httpx.Response:
    return await client.post("/okta/oauth2/v1/token", data={
        "grant_type": "client_credentials", "scope": scope, "client_assertion": jwt_,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})


async def test_users_are_paged_at_200_with_link_cursors_to_the_end() -> None:
    sim = large(users=450, groups=2, memberships=10)
    async with sim.client(SSWS) as client:
        users, responses = await walk(client, "/okta/api/v1/users?limit=500")
    okta = sim.ctx.extra["okta"]
    visible = [u.id for u in okta.users.values() if u.status != "DEPROVISIONED"]
    assert [u["id"] for u in users] == sorted(visible)  # each once, in id order
    assert [len(r.json()) for r in responses][:-1] == [200] * (len(responses) - 1)
    assert len(responses) == -(-len(visible) // 200)
    first = responses[0]
    assert len(first.headers.get_list("link")) == 2  # self and next on separate header lines, as Okta sends
    assert "limit=500" in first.links["next"]["url"] and "after=" in first.links["next"]["url"]
    assert "next" not in responses[-1].links
    sim.check_contract()


async def test_a_plain_list_omits_deprovisioned_users_a_filter_or_search_finds_them() -> None:
    sim = make_idp_sim(world())
    async with sim.client(SSWS) as client:
        plain = (await client.get("/okta/api/v1/users")).json()
        filtered = (await client.get("/okta/api/v1/users", params={"filter": 'status eq "DEPROVISIONED"'})).json()
        searched = (await client.get("/okta/api/v1/users", params={
            "search": 'status eq "DEPROVISIONED" or profile.login sw "suspended"'})).json()
        both = (await client.get("/okta/api/v1/users", params={
            "filter": '(status eq "ACTIVE" or status eq "LOCKED_OUT") and profile.login eq "active@example.com"'}))
    assert sorted(u["status"] for u in plain) == sorted(s for s in STATUSES if s != "DEPROVISIONED")
    assert [u["profile"]["login"] for u in filtered] == ["deprovisioned@example.com"]
    assert sorted(u["status"] for u in searched) == ["DEPROVISIONED", "SUSPENDED"]
    assert [u["status"] for u in both.json()] == ["ACTIVE"]
    sim.check_contract()


async def test_group_members_are_paged_at_1000_and_keep_deactivated_users() -> None:
    sim = large(users=3000, groups=1, memberships=2500)
    group = next(iter(sim.ctx.extra["okta"].groups.values()))
    async with sim.client(SSWS) as client:
        members, responses = await walk(client, f"/okta/api/v1/groups/{group.id}/users?limit=5000")
        missing = await client.get("/okta/api/v1/groups/00gnothere/users")
    assert [len(r.json()) for r in responses] == [1000, 1000, 500]
    assert [m["id"] for m in members] == group.members
    assert {m["status"] for m in members} > {"ACTIVE", "DEPROVISIONED"}
    assert missing.status_code == 404 and missing.json()["errorCode"] == "E0000007"
    sim.check_contract()


async def test_groups_list_q_filter_search_and_stats() -> None:
    sim = make_idp_sim(world())
    async with sim.client(SSWS) as client:
        everything = (await client.get("/okta/api/v1/groups", params={"expand": "stats"})).json()
        by_q = (await client.get("/okta/api/v1/groups", params={"q": "eng"}))
        by_type = (await client.get("/okta/api/v1/groups", params={"filter": 'type eq "APP_GROUP"'})).json()
        by_name = (await client.get("/okta/api/v1/groups", params={"search": 'profile.name sw "Every"'})).json()
        paged, responses = await walk(client, "/okta/api/v1/groups?limit=2")
    assert [(g["profile"]["name"], g["_embedded"]["stats"]["usersCount"]) for g in everything] == [
        ("Engineering", 3), ("Everyone", 0), ("AD Staff", 1)]
    assert [g["profile"]["name"] for g in by_q.json()] == ["Engineering"] and "next" not in by_q.links
    assert [g["type"] for g in by_type] == ["APP_GROUP"]
    assert [g["profile"]["name"] for g in by_name] == ["Everyone"]
    assert len(paged) == 3 and len(responses) == 2
    sim.check_contract()


async def test_a_filter_okta_rejects_is_400_e0000031() -> None:
    sim = make_idp_sim(world())
    async with sim.client(SSWS) as client:
        bad_op = await client.get("/okta/api/v1/users", params={"filter": 'status ne "ACTIVE"'})
        bad_attr = await client.get("/okta/api/v1/users", params={"filter": 'profile.department eq "x"'})
        garbage = await client.get("/okta/api/v1/groups", params={"search": 'profile.name sw'})
    for response in (bad_op, bad_attr, garbage):
        assert response.status_code == 400
        assert response.json()["errorCode"] == "E0000031"
        assert response.json()["errorCauses"][0]["errorSummary"]
    sim.check_contract()


async def test_api_tokens_ssws_unknown_or_missing_is_401_e0000011() -> None:
    sim = make_idp_sim(world())
    async with sim.client("SSWS wrong") as wrong, sim.client() as anonymous, sim.client(SSWS) as good:
        for client in (wrong, anonymous):
            response = await client.get("/okta/api/v1/users")
            assert response.status_code == 401
            assert response.json()["errorCode"] == "E0000011"
            assert response.json()["errorSummary"] == "Invalid token provided"
        assert (await good.get("/okta/api/v1/users")).status_code == 200
    sim.check_contract()


async def test_private_key_jwt_gives_a_bearer_token_that_reads_for_an_hour() -> None:
    sim = make_idp_sim(world())
    async with sim.client() as client:
        answer = await token(client, assertion("okta-app", claims()))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        assert body["scope"] == "okta.users.read okta.groups.read"
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        assert (await client.get("/okta/api/v1/users", headers=bearer)).status_code == 200
        sim.clock.advance(3600)
        expired = await client.get("/okta/api/v1/users", headers=bearer)
    assert expired.status_code == 401 and expired.json()["errorCode"] == "E0000011"
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    sim.check_contract()


@pytest.mark.parametrize(("key", "changes", "status", "error", "description"), [
    ("okta-app", {"exp": int(WALL) - 1}, 401, "invalid_client", "The client_assertion token is expired."),
    ("someone-else", {}, 401, "invalid_client", "The client_assertion signature is invalid."),
    ("okta-app", {"aud": "https://example.okta.com/oauth2/v1/token"}, 401, "invalid_client",
     "The audience claim for client_assertion must be the endpoint invoked for the request."),
    ("okta-app", {"exp": int(WALL) + 7200}, 401, "invalid_client",
     "The client_assertion token has an expiration too far in the future."),
    ("okta-app", {"iss": "0oaunknown", "sub": "0oaunknown"}, 401, "invalid_client",
     "Invalid value for 'client_id' parameter."),
    ("okta-app", {"sub": "someone"}, 401, "invalid_client",
     "The 'sub' claim of the client_assertion must be the client_id."),
])
async def test_bad_client_assertions_get_okta_oauth_errors(key: str, changes: dict[str, Any], status: int,
                                                           error: str, description: str) -> None:
    sim = make_idp_sim(world())
    async with sim.client() as client:
        answer = await token(client, assertion(key, claims(**changes)))
    assert answer.status_code == status
    assert answer.json() == {"error": error, "error_description": description}
    sim.check_contract()


async def test_scopes_not_granted_and_missing_scopes() -> None:
    sim = make_idp_sim(world())
    async with sim.client() as client:
        manage = await token(client, assertion("okta-app", claims()), scope="okta.users.manage")
        users_only = await token(client, assertion("okta-app", claims()), scope="okta.users.read")
        groups = await client.get("/okta/api/v1/groups",
                                  headers={"Authorization": f"Bearer {users_only.json()['access_token']}"})
        secret = await client.post("/okta/oauth2/v1/token", data={
            "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": "s3cret"})
    assert manage.status_code == 400 and manage.json()["error"] == "invalid_scope"
    assert groups.status_code == 403 and groups.json()["errorCode"] == "E0000006"
    assert 'error="insufficient_scope"' in groups.headers["www-authenticate"]
    assert secret.status_code == 401 and "private_key_jwt" in secret.json()["error_description"]
    sim.check_contract()


async def test_rate_limit_headers_on_every_response_and_429_e0000047_until_the_minute_resets() -> None:
    sim = make_idp_sim(world(limits="rate_limits: {users: 3, groups: 100}"))
    window_end = str(int(WALL // 60) * 60 + 60)
    async with sim.client(SSWS) as client:
        answers = [await client.get("/okta/api/v1/users") for _ in range(4)]
        groups = await client.get("/okta/api/v1/groups")
        sim.wall.advance(60)
        again = await client.get("/okta/api/v1/users")
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-rate-limit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["x-rate-limit-limit"] for a in answers} == {"3"}
    assert {a.headers["x-rate-limit-reset"] for a in answers} == {window_end}
    limited = answers[3].json()
    assert limited["errorCode"] == "E0000047"
    assert limited["errorSummary"] == "API call exceeded rate limit due to too many requests."
    assert groups.status_code == 200 and groups.headers["x-rate-limit-limit"] == "100"  # its own bucket
    assert again.status_code == 200 and again.headers["x-rate-limit-remaining"] == "2"
    assert answers[0].headers["x-okta-request-id"]
    sim.check_contract()


async def test_the_org_wide_concurrency_limit_answers_429_with_concurrent_values() -> None:
    sim = make_idp_sim(world(limits="rate_limits: {concurrency: 2}") + IN_FLIGHT_TOGETHER)
    async with sim.client(SSWS) as client:
        answers = await asyncio.gather(*(client.get("/okta/api/v1/users") for _ in range(5)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200, 429, 429, 429]
    for answer in answers:
        if answer.status_code == 429:
            assert answer.json()["errorCode"] == "E0000047"
            assert (answer.headers["x-rate-limit-limit"], answer.headers["x-rate-limit-remaining"]) == ("2", "0")
    sim.check_contract()


async def test_an_injected_5xx_on_an_okta_path_has_okta_s_error_body() -> None:
    sim = make_idp_sim(world() + "sim: {faults: {error_rate: 1.0, error_statuses: [500]}}\n")
    async with sim.client(SSWS) as client:
        answer = await client.get("/okta/api/v1/users")
    assert answer.status_code == 500 and answer.json()["errorCode"] == "E0000009"


def test_scenario_mistakes_are_reported_with_their_place() -> None:
    text = world(extra="    - {name: Broken, members: [nobody@example.com]}\n").replace(
        "status: SUSPENDED", "status: DISABLED")
    with pytest.raises(ConfigError) as caught:
        parse_scenario(text, "okta.yaml")
    joined = "\n".join(caught.value.problems)
    assert "okta.yaml:" in joined and "not 'DISABLED'" in joined and "'nobody@example.com'" in joined


def test_generated_orgs_are_deterministic_and_sized() -> None:
    one = generate_okta(1000, 20, 4000, seed=7)
    two = generate_okta(1000, 20, 4000, seed=7)
    assert one.api_tokens == {"sim-okta-token"}
    assert one.to_json() == two.to_json()
    assert sum(len(g.members) for g in one.groups.values()) == 4000
    assert {u.status for u in one.users.values()} == set(STATUSES)
    assert one.rate_limits == RateLimits(users=1_000_000, groups=1_000_000, token=1_000_000)
    assert OktaWorld.generate(1000, 20, 4000, seed=8).to_json() != one.to_json()


async def test_the_validator_catches_a_corrupted_okta_response() -> None:
    """The same exchange validates as served and fails once one field breaks the document's schema."""
    sim = make_idp_sim(world())
    async with sim.client(SSWS) as client:
        served = await client.get("/okta/api/v1/users", params={"limit": "2"})
    request = served.request
    body = served.json()
    assert exchange_problems(request, 200, served.headers, served.content) == []
    body[0]["status"] = "DISABLED"  # not a UserStatus
    problems = exchange_problems(request, 200, served.headers, json.dumps(body).encode())
    assert any("DISABLED" in p for p in problems), problems
    not_okta = json.dumps({"message": "Unauthorized"}).encode()  # an undocumented 401 must be an Okta Error
    assert exchange_problems(request, 401, served.headers, not_okta)
    assert exchange_problems(request, 200, served.headers, b"<html>proxy</html>")
    sim.check_contract()


async def test_the_example_world_serves_its_okta_org_to_the_example_key() -> None:
    sim = example_sim()
    signed = jwt.encode(claims(iss="0oaexamplereconcile1", sub="0oaexamplereconcile1"), example_key(),
                        algorithm="RS256")
    async with sim.client() as client:
        answer = await token(client, signed)
        bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        users = (await client.get("/okta/api/v1/users", headers=bearer)).json()
        with_ssws = await client.get("/okta/api/v1/groups", headers={"Authorization": "SSWS example-okta-token"})
    assert answer.status_code == 200
    assert "heidi@example.com" not in {u["profile"]["login"] for u in users}  # DEPROVISIONED
    assert [g["profile"]["name"] for g in with_ssws.json()] == ["Engineering", "Documentation", "Security"]
    sim.check_contract()


async def test_token_requests_are_logged_with_the_assertion_and_secrets_masked() -> None:
    sim = make_idp_sim(world())
    signed = assertion("okta-app", claims())
    async with sim.client() as client:
        await token(client, signed)
        await client.post("/okta/oauth2/v1/token", data={"grant_type": "client_credentials",
                                                         "client_id": CLIENT, "client_secret": "s3cret"})
        state = (await client.get("/_sim/state", params={"api": "okta"})).json()
    bodies = [e.body for e in sim.ctx.log.entries if e.path == "/okta/oauth2/v1/token"]
    assert [b["client_assertion"] for b in bodies[:1]] == ["***"] and bodies[1]["client_secret"] == "***"
    assert signed not in repr(sim.ctx.log.entries) and "s3cret" not in repr(sim.ctx.log.entries)
    assert [u["status"] for u in state["okta"]["users"]] == list(STATUSES)
    sim.check_contract()
