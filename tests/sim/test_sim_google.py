"""The Google Workspace simulator: maxResults caps and page tokens to the end, suspended/archived, member
types and derived membership, the service-account JWT-bearer grant with domain-wide delegation, quotas and
Google's error bodies. Every exchange is validated against the Directory API discovery document."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import jwt
import pytest

from reconcile.errors import ConfigError
from reconcile.sim.google_workspace.world import READ_SCOPES, GoogleWorld
from reconcile.sim.scenario import parse_scenario
from tests.support.contract_idp import exchange_problems
from tests.support.idp import WALL, IdpSim, assertion, example_key, example_sim, make_idp_sim, public_pem, yaml_string

pytestmark = pytest.mark.anyio

# Enough latency that every request of a burst is in flight at once, with a wide margin on a busy machine.
IN_FLIGHT_TOGETHER = "sim: {latency_ms: 100}\n"

SA = "reconcile@sim-project.iam.gserviceaccount.com"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
API = "/google/admin/directory/v1"


def world(quota: str = "") -> str:
    return f"""
google_workspace:
  customer_id: C01test
  domain: example.com
  {quota}
  service_accounts:
    - client_email: {SA}
      public_keys: [{yaml_string(public_pem("google-sa"))}]
  users:
    - {{primary_email: admin@example.com, admin: true}}
    - {{primary_email: alice@example.com}}
    - {{primary_email: bob@example.com, suspended: true}}
    - {{primary_email: carol@example.com, archived: true}}
    - {{primary_email: dave@example.com}}
  groups:
    - {{email: eng@example.com, name: Engineering, members: [alice@example.com, platform@example.com,
        {{email: bob@example.com, role: OWNER}}]}}
    - {{email: platform@example.com, members: [dave@example.com, eng@example.com]}}
    - {{email: all@example.com, members: [{{type: CUSTOMER}}]}}
"""


def grant(**changes: Any) -> dict[str, Any]:
    claims = {"iss": SA, "sub": "admin@example.com", "scope": " ".join(READ_SCOPES), "aud": GOOGLE_TOKEN_URL,
              "iat": int(WALL), "exp": int(WALL) + 3600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


async def token_for(client: httpx.AsyncClient, jwt_: str) -> httpx.Response:
    return await client.post("/google/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt_})


async def signed_in(sim: IdpSim, **changes: Any) -> httpx.AsyncClient:
    async with sim.client() as client:
        answer = await token_for(client, assertion("google-sa", grant(**changes)))
    assert answer.status_code == 200, answer.text
    return sim.client(f"Bearer {answer.json()['access_token']}")


def large(users: int, groups: int, memberships: int) -> IdpSim:
    sim = make_idp_sim(world())
    generated = GoogleWorld.generate(users, groups, memberships, seed=5)
    generated.service_accounts = sim.ctx.extra["google_workspace"].service_accounts
    sim.ctx.extra["google_workspace"] = generated
    return sim


async def walk(client: httpx.AsyncClient, path: str, key: str, **params: str) -> tuple[list[Any], list[int]]:
    items: list[Any] = []
    sizes = []
    page_token = None
    while True:
        query = dict(params, **({"pageToken": page_token} if page_token else {}))
        response = await client.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body.get(key, [])
        sizes.append(len(body.get(key, [])))
        page_token = body.get("nextPageToken")
        if not page_token:
            return items, sizes


async def test_users_are_paged_with_page_tokens_and_max_results_above_500_is_400() -> None:
    sim = large(users=1200, groups=3, memberships=10)
    async with await signed_in(sim, sub="user000001@example.com") as client:
        users, sizes = await walk(client, f"{API}/users", "users", customer="my_customer", maxResults="500")
        too_many = await client.get(f"{API}/users", params={"customer": "my_customer", "maxResults": "501"})
    assert sizes == [500, 500, 200]
    assert [u["primaryEmail"] for u in users] == sorted(f"user{i:06d}@example.com" for i in range(1, 1201))
    assert {u["suspended"] for u in users} == {True, False} and {u["archived"] for u in users} == {True, False}
    assert too_many.status_code == 400
    assert too_many.json()["error"]["errors"][0]["reason"] == "invalid"
    assert "[1, 500]" in too_many.json()["error"]["message"]
    sim.check_contract()


async def test_groups_and_members_are_served_at_most_200_a_page() -> None:
    sim = large(users=500, groups=450, memberships=2000)
    async with await signed_in(sim, sub="user000001@example.com") as client:
        groups, group_sizes = await walk(client, f"{API}/groups", "groups", customer="my_customer",
                                         maxResults="1000")
    big = sim.ctx.extra["google_workspace"].groups[0]
    big.members = [m for g in sim.ctx.extra["google_workspace"].groups[:60] for m in g.members if m.type == "USER"]
    async with await signed_in(sim, sub="user000001@example.com") as client:
        members, member_sizes = await walk(client, f"{API}/groups/{big.email}/members", "members",
                                           maxResults="1000")
    assert group_sizes == [200, 200, 50] and len({g["id"] for g in groups}) == 450
    assert member_sizes[:-1] == [200] * (len(member_sizes) - 1) and len(members) == len(big.members)
    sim.check_contract()


async def test_descending_pages_are_the_ascending_list_backwards_to_the_end() -> None:
    sim = large(users=1203, groups=3, memberships=10)  # pages of 500, 500, 203: every slice edge of the view
    async with await signed_in(sim, sub="user000001@example.com") as client:
        up, _ = await walk(client, f"{API}/users", "users", customer="my_customer", maxResults="500")
        down, sizes = await walk(client, f"{API}/users", "users", customer="my_customer", maxResults="500",
                                 sortOrder="DESCENDING")
    assert sizes == [500, 500, 203] and down == up[::-1]
    sim.check_contract()


async def test_a_member_page_shows_users_and_roles_changed_in_place() -> None:
    sim = large(users=300, groups=2, memberships=400)
    group = sim.ctx.extra["google_workspace"].groups[0]
    path = f"{API}/groups/{group.email}/members"
    async with await signed_in(sim, sub="user000001@example.com") as client:
        before, _ = await walk(client, path, "members")
        user = sim.ctx.extra["google_workspace"].user_by_id[group.members[3].ref]
        user.suspended, user.primary_email = not user.suspended, "renamed@example.com"  # in place, no notice
        group.members[5].role = "OWNER"
        after, _ = await walk(client, path, "members")
    changed = {i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b}
    assert changed == {3, 5}
    assert after[3]["email"] == "renamed@example.com" and after[3]["status"] != before[3]["status"]
    assert after[5]["role"] == "OWNER"
    sim.check_contract()


async def test_the_query_subset_and_the_flags() -> None:
    sim = make_idp_sim(world())
    async with await signed_in(sim) as client:
        active = (await client.get(f"{API}/users", params={
            "customer": "my_customer", "query": "isSuspended=false isArchived=false"})).json()["users"]
        by_prefix = (await client.get(f"{API}/users", params={"domain": "example.com", "query": "email:ca*"}))
        unknown = await client.get(f"{API}/users", params={"customer": "my_customer", "query": "isEnrolledIn2Sv=x"})
    assert [u["primaryEmail"] for u in active] == ["admin@example.com", "alice@example.com", "dave@example.com"]
    assert [(u["primaryEmail"], u["archived"]) for u in by_prefix.json()["users"]] == [("carol@example.com", True)]
    assert unknown.status_code == 400 and unknown.json()["error"]["errors"][0]["reason"] == "invalid"
    sim.check_contract()


async def test_member_types_and_derived_membership_with_a_cycle() -> None:
    sim = make_idp_sim(world())
    async with await signed_in(sim) as client:
        direct = (await client.get(f"{API}/groups/eng@example.com/members")).json()["members"]
        derived = (await client.get(f"{API}/groups/eng@example.com/members",
                                    params={"includeDerivedMembership": "true"})).json()["members"]
        customer = (await client.get(f"{API}/groups/all@example.com/members")).json()["members"]
        owners = (await client.get(f"{API}/groups/eng@example.com/members", params={"roles": "OWNER"})).json()
        missing = await client.get(f"{API}/groups/nobody@example.com/members")
    assert [(m["email"], m["type"]) for m in direct] == [
        ("alice@example.com", "USER"), ("platform@example.com", "GROUP"), ("bob@example.com", "USER")]
    # derived: the nested group's users and the nested groups themselves (eng is in platform: a cycle)
    assert [(m["email"], m["type"]) for m in derived] == [
        ("alice@example.com", "USER"), ("platform@example.com", "GROUP"), ("bob@example.com", "USER"),
        ("dave@example.com", "USER"), ("eng@example.com", "GROUP")]
    assert customer == [{"kind": "admin#directory#member", "etag": '"C01test"', "id": "C01test", "role": "MEMBER",
                         "type": "CUSTOMER"}]
    assert [m["email"] for m in owners["members"]] == ["bob@example.com"]
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    sim.check_contract()


@pytest.mark.parametrize(("key", "changes", "error", "description"), [
    ("google-sa", {"exp": int(WALL) - 10, "iat": int(WALL) - 3610}, "invalid_grant", "short-lived"),
    ("someone-else", {}, "invalid_grant", "Invalid JWT Signature."),
    ("google-sa", {"aud": "https://example.com/token"}, "invalid_grant", "aud claim"),
    ("google-sa", {"iss": "other@sim-project.iam.gserviceaccount.com"}, "invalid_grant", "account not found"),
    ("google-sa", {"sub": "nobody@example.com"}, "invalid_grant", "Invalid email or User ID"),
    ("google-sa", {"scope": "https://www.googleapis.com/auth/admin.directory.user"}, "unauthorized_client",
     "not authorized for any of the scopes"),
])
async def test_bad_grants_get_google_oauth_errors(key: str, changes: dict[str, Any], error: str,
                                                  description: str) -> None:
    sim = make_idp_sim(world())
    async with sim.client() as client:
        answer = await token_for(client, assertion(key, grant(**changes)))
    assert answer.status_code in (400, 401)
    assert answer.json()["error"] == error and description in answer.json()["error_description"]
    sim.check_contract()


async def test_the_simulator_s_own_token_url_is_an_accepted_audience_and_tokens_expire() -> None:
    sim = make_idp_sim(world())
    async with await signed_in(sim, aud="http://idp.test/google/token") as client:
        assert (await client.get(f"{API}/users", params={"customer": "C01test"})).status_code == 200
        sim.clock.advance(3600)
        expired = await client.get(f"{API}/users", params={"customer": "C01test"})
    assert expired.status_code == 401 and expired.json()["error"]["status"] == "UNAUTHENTICATED"
    sim.check_contract()


async def test_not_authorized_and_insufficient_scopes_are_403_in_google_format() -> None:
    sim = make_idp_sim(world())
    async with await signed_in(sim, sub="alice@example.com") as not_admin, \
            await signed_in(sim, scope=READ_SCOPES[0]) as users_only, await signed_in(sim, sub=None) as no_sub, \
            await signed_in(sim) as admin:
        answers = [
            await not_admin.get(f"{API}/users", params={"customer": "my_customer"}),
            await no_sub.get(f"{API}/users", params={"customer": "my_customer"}),
            await admin.get(f"{API}/users", params={"domain": "other.example"}),
        ]
        scopes = await users_only.get(f"{API}/groups", params={"customer": "my_customer"})
        neither = await admin.get(f"{API}/users")
    for answer in answers:
        assert answer.status_code == 403
        assert answer.json()["error"]["message"] == "Not Authorized to access this resource/api"
    assert scopes.status_code == 403 and scopes.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"
    assert neither.status_code == 400 and neither.json()["error"]["errors"][0]["reason"] == "badRequest"
    sim.check_contract()


async def test_quotas_answer_user_rate_limit_exceeded_quota_exceeded_and_429() -> None:
    sim = make_idp_sim(world("quota: {queries_per_minute: 2}"))
    async with await signed_in(sim) as client:
        answers = [await client.get(f"{API}/users", params={"customer": "my_customer"}) for _ in range(3)]
        sim.wall.advance(60)
        later = await client.get(f"{API}/users", params={"customer": "my_customer"})
    assert [a.status_code for a in answers] == [200, 200, 403]
    error = answers[2].json()["error"]
    assert error["errors"][0] == {"message": "User Rate Limit Exceeded", "domain": "usageLimits",
                                  "reason": "userRateLimitExceeded"}
    assert later.status_code == 200
    for knob, status, reason in (("concurrent_requests", 403, "quotaExceeded"),
                                 ("account_concurrent_requests", 429, "rateLimitExceeded")):
        sim = make_idp_sim(world(f"quota: {{{knob}: 1}}") + IN_FLIGHT_TOGETHER)
        async with await signed_in(sim) as client:
            burst = await asyncio.gather(*(client.get(f"{API}/users", params={"customer": "my_customer"})
                                           for _ in range(3)))
        limited = [b for b in burst if b.status_code != 200]
        assert len(limited) == 2 and {b.status_code for b in limited} == {status}
        assert {b.json()["error"]["errors"][0]["reason"] for b in limited} == {reason}
        sim.check_contract()
    sim.check_contract()


async def test_the_validator_catches_a_corrupted_google_response() -> None:
    sim = make_idp_sim(world())
    async with await signed_in(sim) as client:
        served = await client.get(f"{API}/users", params={"customer": "my_customer", "maxResults": "2"})
    body = served.json()
    assert exchange_problems(served.request, 200, served.headers, served.content) == []
    body["users"][0]["suspended"] = "yes"
    assert any("'yes' is not of type 'boolean'" in p for p in exchange_problems(
        served.request, 200, served.headers, json.dumps(body).encode()))
    body["users"][0]["suspended"] = False
    body["users"][0]["disabled"] = True  # not a property of User
    assert any("disabled" in p for p in exchange_problems(served.request, 200, served.headers,
                                                          json.dumps(body).encode()))
    atlassian_style = json.dumps({"message": "Forbidden"}).encode()
    assert exchange_problems(served.request, 403, served.headers, atlassian_style)
    too_big = httpx.Request("GET", f"http://idp.test{API}/users?customer=my_customer&maxResults=900")
    assert any("outside [1, 500]" in p for p in exchange_problems(too_big, 200, served.headers, served.content))
    sim.check_contract()


def test_scenario_mistakes_and_generated_accounts() -> None:
    broken = world().replace("[dave@example.com, eng@example.com]", "[dave@example.com, ghost@example.com]")
    with pytest.raises(ConfigError) as caught:
        parse_scenario(broken, "google.yaml")
    assert any(p.startswith("google.yaml:") and "'ghost@example.com'" in p for p in caught.value.problems)
    one, two = GoogleWorld.generate(800, 40, 3000, seed=2), GoogleWorld.generate(800, 40, 3000, seed=2)
    assert one.to_json() == two.to_json()
    assert sum(1 for g in one.groups for m in g.members if m.type == "USER") == 3000
    assert sum(1 for g in one.groups for m in g.members if m.type == "GROUP") == 1  # team-0019 holds team-0020


async def test_the_example_world_serves_its_google_account_to_the_example_key() -> None:
    sim = example_sim()
    signed = jwt.encode(grant(iss="reconcile@example-project.iam.gserviceaccount.com"), example_key(),
                        algorithm="RS256")
    async with sim.client() as client:
        answer = await token_for(client, signed)
        bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        members = (await client.get(f"{API}/groups/engineering@example.com/members", headers=bearer)).json()
    assert answer.status_code == 200
    assert [m["type"] for m in members["members"]] == ["USER", "USER", "GROUP"]
    sim.check_contract()


def test_rows_made_at_once_are_the_bytes_of_each_objects_own_json() -> None:
    from reconcile.sim.google_workspace.routes import member_json, user_json
    from reconcile.sim.google_workspace.rows import user_member_rows, user_rows
    from reconcile.sim.google_workspace.world import GMember, GUser
    from reconcile.sim.jsonbody import dumps

    account = GoogleWorld.generate(40, 2, 60, seed=3)
    odd = GUser("1" + "9" * 20, 'q"uote\\d@example.com', "Zoë", "O'Brien \u2028", suspended=True, archived=True,
                admin=True, org_unit_path="/Eng/Платформа")
    account.users.append(odd)
    account.index()
    members = [*account.groups[0].members[:5], GMember("USER", odd.id, "OWNER")]
    assert dumps(user_rows(account, account.users)) == dumps([user_json(account, u) for u in account.users])
    assert dumps(user_member_rows(account, members)) == dumps([member_json(account, m) for m in members])


def test_google_requests_are_routed_before_the_dc_and_cloud_routes() -> None:
    from reconcile.sim.app import build_app

    paths = [getattr(r, "path", "") for r in build_app().routes]
    first_api = next(i for i, p in enumerate(paths) if not p.startswith("/_sim"))
    google = [i for i, p in enumerate(paths) if p.startswith("/google/")]
    # right after Entra ID's mount and Okta's routes: not after ~65 DC and Cloud routes tried in turn
    assert len(google) == 4 and google == list(range(first_api + 5, first_api + 9)), paths[:first_api + 10]
