"""Every operation the simulator serves, success and error answers, validated against the official documents.

Requests go straight from httpx through ContractTransport into the simulator app (in-process); each call
states the status it expects, so the test proves which responses were checked, and the documented
operations exercised are compared with the list the simulator is meant to serve.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from reconcile.sim.app import build_app
from reconcile.sim.atlassian_cloud.world import DEFAULT_DIRECTORY
from reconcile.sim.confluence_dc.world import user_key
from reconcile.sim.scenario import parse_scenario
from tests.support.contract import ContractTransport

ADMIN_PAT = "pat-contract-admin-01"  # simulator credentials
ALICE_PAT = "pat-contract-alice-02"
ORG_KEY = "org-key-contract-03"
SITE_TOKEN = "site-token-contract-04"
ORG = "5f8e0a1c-0b3a-4c55-9e11-2c4d6e8f0a1b"
ADA = "712020:ada00000-0000-4000-8000-0000000000c1"  # org admin, owner of the API key
ALICE = "712020:a11ce000-0000-4000-8000-0000000000c2"
DAVE = "712020:da7e0000-0000-4000-8000-0000000000c3"  # SCIM-managed
ERIN = "5b10ac8d82e05b22cc7d4ef5"  # unmanaged (not claimed): lifecycle API refuses
HAL = "712020:4a100000-0000-4000-8000-0000000000c4"
NOBODY = "712020:00000000-0000-4000-8000-0000000000ff"
TEAM = "9f1c0000-0000-4000-8000-0000000000b1"
SYNCED = "9f1c0000-0000-4000-8000-0000000000b2"

SCENARIO = f"""
confluence_dc:
  version: "9.4"
  delete_seconds: 0
  directories:
    - {{name: Corporate LDAP, readonly: true}}
  groups:
    - {{name: confluence-administrators}}
    - {{name: confluence-users}}
    - {{name: team-docs}}
    - {{name: team-ops}}
    - {{name: ldap-eng, directory: Corporate LDAP}}
  users:
    - {{username: admin, email: admin@example.com, tokens: [{ADMIN_PAT}],
        groups: [confluence-administrators, confluence-users], last_login: "2026-01-02T03:04:05.000Z"}}
    - {{username: alice, email: alice@example.com, tokens: [{ALICE_PAT}], groups: [confluence-users, team-docs]}}
    - {{username: bob, email: bob@example.com, status: disabled, groups: [confluence-users]}}
    - {{username: carol, email: carol@example.com, directory: Corporate LDAP, groups: [ldap-eng]}}
    - {{username: dave, email: dave@example.com, groups: [team-ops]}}
  unsynced:
    - {{username: gone, key: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01, display_name: Gone}}
  spaces:
    - {{key: DOCS, name: Docs, admins: [alice], admin_groups: [confluence-administrators], content: {{alice: 3}}}}
    - {{key: "~alice", content: {{alice: 1}}}}
cloud:
  org_id: {ORG}
  api_keys: [{{key: {ORG_KEY}, owner: {ADA}}}]
  site:
    url: http://acme.atlassian.test
    credentials: [{{email: ada@example.com, token: {SITE_TOKEN}}}]
  users:
    - {{account_id: {ADA}, email: ada@example.com, name: Ada Admin, platform_roles: [atlassian/org-admin]}}
    - account_id: {ALICE}
      email: alice@example.com
      name: Alice Archer
      added_to_org: "2024-05-06T07:08:09Z"
      product_access: [{{key: confluence, last_active: "2026-03-02T08:15:00Z"}}, {{key: jira}}]
    - {{account_id: {DAVE}, email: dave@example.com, name: Dave Doe, management_source: synced}}
    - {{account_id: {ERIN}, email: erin@contractor.test, name: Erin Evans, claim_status: unmanaged}}
    - {{account_id: {HAL}, email: hal@example.com, name: Hal Hill}}
  groups:
    - {{id: {TEAM}, name: team-docs, members: [{ALICE}]}}
    - {{id: {SYNCED}, name: idp-engineering, external_synced: true, members: [{DAVE}]}}
"""

DC = "http://confluence.test"
CLOUD = "http://api.atlassian.test"
SITE = "http://acme.atlassian.test"
ANY = f"{CLOUD}/admin/v2/orgs/{ORG}/directories/-"  # reads may span directories
DIR = f"{CLOUD}/admin/v2/orgs/{ORG}/directories/{DEFAULT_DIRECTORY}"  # writes name one


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


ADMIN, AS_ALICE, UNKNOWN_PAT = bearer(ADMIN_PAT), bearer(ALICE_PAT), bearer("pat-that-does-not-exist")
KEY, WRONG_KEY, SITE_ADMIN = bearer(ORG_KEY), bearer("wrong-org-key"), basic("ada@example.com", SITE_TOKEN)

# Statuses the real servers answer for these operations although the documents do not list them.
# Each is what the real services are known to answer (Atlassian's documentation and observed behaviour),
# not a guess of ours.
UNDOCUMENTED: Mapping[str, Iterable[int]] = {
    # DC: wrong Basic credentials are 401 on every resource (the document lists 401 on a few only)
    "GET /rest/api/user/current": {401},
    # DC: an unknown user or group is 404 on every read and write that names one
    "GET /rest/api/group/{groupName}": {404},
    "GET /rest/api/group/{groupName}/member": {404},
    "GET /rest/api/user/memberof": {404},
    "GET /rest/api/space/{spaceKey}/permissions": {404},
    "PUT /rest/api/user/{username}/group/{groupName}": {404, 500},  # 500: read-only directory
    "DELETE /rest/api/user/{username}/group/{groupName}": {404, 500},
    "PUT /rest/api/admin/user/{username}/disable": {500},  # read-only directory
    # Organizations: an org id the key does not belong to. The document lists 400/401/429/500 only;
    # 404 is the simulator's choice [I], the same as for an unknown directory on the other routes.
    "GET /v2/orgs/{orgId}/directories": {404},
}


@dataclass
class Call:
    method: str
    url: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None


def drive(calls: list[Call], **options: Any) -> tuple[ContractTransport, list[str]]:
    """Send `calls` in order to one simulator; returns the transport and the calls that got another status."""
    app = build_app(parse_scenario(SCENARIO, "<contract scenario>"))
    transport = ContractTransport(httpx.ASGITransport(app=app), undocumented=UNDOCUMENTED, **options)
    unexpected: list[str] = []

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            for call in calls:
                response = await client.request(call.method, call.url, headers=call.headers, json=call.json)
                if response.status_code != call.status:
                    unexpected.append(f"{call.method} {call.url} -> {response.status_code} (expected {call.status}): "
                                      f"{response.text[:200]}")

    asyncio.run(run())
    return transport, unexpected


def dc_calls() -> list[Call]:
    g = f"{DC}/rest/api"
    return [
        Call("GET", f"{g}/user/current", 200, ADMIN),
        Call("GET", f"{g}/user/current?expand=status", 200, ADMIN),
        Call("GET", f"{g}/user/current", 200, UNKNOWN_PAT),  # a bad PAT runs as anonymous
        Call("GET", f"{g}/user/current", 401, basic("admin", "wrong-password")),
        Call("GET", f"{g}/user/anonymous", 200, ADMIN),
        Call("GET", f"{g}/server-information", 200, ADMIN),
        Call("GET", f"{g}/user/list?expand=status&start=0&limit=2", 200, ADMIN),
        Call("GET", f"{g}/user/list?start=2&limit=2", 200, ADMIN),
        Call("GET", f"{g}/user/list", 403, UNKNOWN_PAT),
        Call("GET", f"{g}/user?username=alice&expand=status", 200, ADMIN),
        Call("GET", f"{g}/user?username=nobody", 404, ADMIN),
        Call("GET", f"{g}/user?key=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01", 200, ADMIN),  # an unsynced entry
        Call("GET", f"{g}/user/memberof?username=alice", 200, ADMIN),
        Call("GET", f"{g}/user/memberof?username=nobody", 404, ADMIN),
        Call("GET", f"{g}/group?start=0&limit=2", 200, ADMIN),
        Call("GET", f"{g}/group/team-docs", 200, ADMIN),
        Call("GET", f"{g}/group/no-such-group", 404, ADMIN),
        Call("GET", f"{g}/group/team-docs/member?start=0&limit=1", 200, ADMIN),
        Call("GET", f"{g}/group/team-docs/member?expand=status", 200, ADMIN),
        Call("GET", f"{g}/group/no-such-group/member", 404, ADMIN),
        Call("GET", f"{g}/group/team-docs/member", 403, AS_ALICE),
        Call("GET", f"{g}/admin/users/list/active?expand=lastLogin&limit=2", 200, ADMIN),
        Call("GET", f"{g}/admin/users/list/active", 403, AS_ALICE),
        Call("PUT", f"{g}/user/alice/group/team-ops", 204, ADMIN),
        Call("PUT", f"{g}/user/alice/group/team-ops", 204, ADMIN),  # idempotent
        Call("DELETE", f"{g}/user/alice/group/team-ops", 204, ADMIN),
        Call("DELETE", f"{g}/user/alice/group/team-ops", 204, ADMIN),
        Call("PUT", f"{g}/user/nobody/group/team-ops", 404, ADMIN),
        Call("PUT", f"{g}/user/carol/group/ldap-eng", 500, ADMIN),  # read-only directory
        Call("PUT", f"{g}/admin/user/alice/disable", 204, ADMIN),
        Call("PUT", f"{g}/admin/user/alice/enable", 204, ADMIN),
        Call("PUT", f"{g}/admin/user/admin/disable", 403, ADMIN),  # not yourself
        Call("PUT", f"{g}/admin/user/nobody/enable", 404, ADMIN),
        Call("PUT", f"{g}/admin/user/carol/disable", 500, ADMIN),
        Call("PUT", f"{g}/admin/user/alice/disable", 403, AS_ALICE),
        Call("POST", f"{g}/admin/group", 200, ADMIN, {"name": "contract-new"}),
        Call("DELETE", f"{g}/admin/group/contract-new", 204, ADMIN),
        Call("DELETE", f"{g}/admin/group/contract-new", 404, ADMIN),
        Call("DELETE", f"{g}/admin/user/nobody", 404, ADMIN),
        Call("DELETE", f"{g}/admin/user/admin", 403, ADMIN),
        Call("DELETE", f"{g}/admin/user/dave", 202, ADMIN),
        Call("DELETE", f"{g}/admin/user/gone", 202, ADMIN),  # the one unsynced entry named `gone`
        Call("GET", f"{g}/longtask", 200, ADMIN),
        Call("GET", f"{g}/longtask/no-such-task", 404, ADMIN),
        # what the inactivity / licence / delete-guard policies read
        Call("GET", f"{g}/permissions", 200, ADMIN),
        Call("GET", f"{g}/permissions/group/confluence-users", 200, ADMIN),
        Call("GET", f"{g}/permissions/group/no-such-group", 404, ADMIN),
        Call("GET", f"{g}/space?type=personal&expand=creator", 200, ADMIN),
        Call("GET", f"{g}/space/DOCS", 200, ADMIN),
        Call("GET", f"{g}/space/NOPE", 404, ADMIN),
        Call("GET", f"{g}/space/DOCS/permissions", 200, ADMIN),
        Call("GET", f"{g}/space/DOCS/permissions/user/{user_key('user:alice')}", 200, ADMIN),
        Call("GET", f"{g}/space/DOCS/permissions/user/ffffffffffffffffffffffffffffffff", 404, ADMIN),
        Call("GET", f"{g}/search?cql=creator%20%3D%20alice&limit=1", 200, ADMIN),
        Call("GET", f"{g}/search?cql=label%20%3D%20x", 400, ADMIN),
        Call("GET", f"{DC}/rest/license/1.0/license/remainingSeats", 200, ADMIN),  # in no document
    ]


def test_confluence_dc_simulator_honours_the_contract() -> None:
    transport, unexpected = drive(dc_calls())
    assert unexpected == []
    assert transport.violations == []
    assert set(transport.recorder.operations) == {
        "GET /rest/api/user/current", "GET /rest/api/user/anonymous", "GET /rest/api/server-information",
        "GET /rest/api/user/list", "GET /rest/api/user", "GET /rest/api/user/memberof", "GET /rest/api/group",
        "GET /rest/api/group/{groupName}", "GET /rest/api/group/{groupName}/member",
        "GET /rest/api/admin/users/list/active", "PUT /rest/api/user/{username}/group/{groupName}",
        "DELETE /rest/api/user/{username}/group/{groupName}", "PUT /rest/api/admin/user/{username}/disable",
        "PUT /rest/api/admin/user/{username}/enable", "POST /rest/api/admin/group",
        "DELETE /rest/api/admin/group/{groupName}", "DELETE /rest/api/admin/user/{username}",
        "GET /rest/api/longtask", "GET /rest/api/longtask/{id}",
        "GET /rest/api/permissions", "GET /rest/api/permissions/group/{groupName}", "GET /rest/api/space",
        "GET /rest/api/space/{spaceKey}", "GET /rest/api/space/{spaceKey}/permissions",
        "GET /rest/api/space/{spaceKey}/permissions/user/{userKey}", "GET /rest/api/search",
    }
    assert "GET /rest/license/1.0/license/remainingSeats" in transport.uncovered


def test_dc_long_task_status_honours_the_contract() -> None:
    now = [0.0]  # the simulator's clock, moved by hand: the deletion's progress is read without waiting

    async def run() -> ContractTransport:
        app = build_app(parse_scenario(SCENARIO, "<contract scenario>"), clock=lambda: now[0])
        transport = ContractTransport(httpx.ASGITransport(app=app))
        async with httpx.AsyncClient(transport=transport, headers=ADMIN) as client:
            started = await client.delete(f"{DC}/rest/api/admin/user/dave")
            assert started.status_code == 202
            for _ in range(50):
                status = await client.get(f"{DC}/rest/api/longtask/{started.json()['id']}")
                assert status.status_code == 200
                if status.json().get("successful") or status.json().get("percentageComplete") == 100:
                    break
                now[0] += 0.01
            else:
                pytest.fail(f"the deletion task never finished: {status.text}")
        return transport

    transport = asyncio.run(run())
    assert transport.violations == []


def test_dc_admin_pages_are_uncovered_not_failed() -> None:
    transport, _ = drive([
        Call("GET", f"{DC}/authenticate.action", 200, ADMIN),
        Call("GET", f"{DC}/admin/users/showallunsyncedusers.action", 200, ADMIN),
        Call("GET", f"{DC}/_sim/state", 200),
    ])
    assert transport.violations == []
    assert {"GET /authenticate.action", "GET /admin/users/showallunsyncedusers.action", "GET /_sim/state"} <= (
        transport.uncovered)


def cloud_calls() -> list[Call]:
    lifecycle = f"{CLOUD}/users/{{}}/manage/lifecycle/{{}}"
    return [
        Call("GET", f"{CLOUD}/admin/v2/orgs/{ORG}/directories", 200, KEY),
        Call("GET", f"{CLOUD}/admin/v2/orgs/{ORG}/directories", 401, WRONG_KEY),
        Call("GET", f"{CLOUD}/admin/v2/orgs/no-such-org/directories", 404, KEY),
        Call("POST", f"{ANY}/users/search", 200, KEY, {"limit": 2, "expand": ["groups", "productAccess",
                                                                             "platformRoles"]}),
        Call("POST", f"{DIR}/users/search", 200, KEY, {"emails": ["alice@example.com"]}),
        Call("POST", f"{ANY}/users/search", 400, KEY, {"expand": ["everything"]}),  # invalid on purpose
        Call("POST", f"{ANY}/groups/search", 200, KEY, {"limit": 1}),
        Call("POST", f"{DIR}/groups/search", 200, KEY, {"groupNames": ["team-docs"],
                                                        "expand": ["counts.users"]}),
        Call("POST", f"{DIR}/groups/{TEAM}/memberships", 204, KEY, {"accountId": HAL}),
        Call("POST", f"{DIR}/groups/{TEAM}/memberships", 409, KEY, {"accountId": HAL}),
        Call("POST", f"{DIR}/groups/{SYNCED}/memberships", 403, KEY, {"accountId": HAL}),
        Call("POST", f"{DIR}/groups/no-such-group/memberships", 404, KEY, {"accountId": HAL}),
        Call("DELETE", f"{DIR}/groups/{TEAM}/memberships/{HAL}", 204, KEY),
        Call("DELETE", f"{DIR}/groups/{TEAM}/memberships/{NOBODY}", 404, KEY),
        Call("POST", f"{DIR}/users/{ALICE}/suspend", 204, KEY),
        Call("POST", f"{DIR}/users/{ALICE}/restore", 204, KEY),
        Call("POST", f"{DIR}/users/{DAVE}/suspend", 403, KEY),
        Call("POST", f"{DIR}/users/{NOBODY}/suspend", 404, KEY),
        Call("POST", lifecycle.format(HAL, "disable"), 204, KEY, {"message": "contract test"}),
        Call("POST", lifecycle.format(HAL, "disable"), 409, KEY, {"message": "again"}),
        Call("POST", lifecycle.format(HAL, "enable"), 204, KEY),
        Call("POST", lifecycle.format(ERIN, "disable"), 403, KEY, {"message": "not ours"}),
        Call("POST", lifecycle.format(DAVE, "disable"), 403, KEY, {"message": "scim"}),
        Call("POST", lifecycle.format(NOBODY, "enable"), 404, KEY),
        Call("POST", lifecycle.format(HAL, "enable"), 401, WRONG_KEY),
        Call("POST", lifecycle.format(HAL, "delete"), 200, KEY),
        Call("DELETE", f"{DIR}/users/{HAL}", 204, KEY),
        Call("DELETE", f"{SITE}/rest/api/2/user?accountId={ALICE}", 204, SITE_ADMIN),
        Call("DELETE", f"{SITE}/rest/api/3/user?accountId={NOBODY}", 404, SITE_ADMIN),
        Call("DELETE", f"{SITE}/rest/api/2/user?accountId={ALICE}", 401, basic("ada@example.com", "wrong")),
        Call("GET", f"{CLOUD}/admin/v1/orgs/{ORG}/directory/users/{ALICE}/last-active-dates", 200, KEY),
        Call("GET", f"{CLOUD}/admin/v1/orgs/{ORG}/directory/users/{NOBODY}/last-active-dates", 404, KEY),
        Call("GET", f"{CLOUD}/admin/v1/orgs/{ORG}/directory/users/{ALICE}/last-active-dates", 401, WRONG_KEY),
        Call("GET", f"{ANY}/users/count?status=active&roleIds=atlassian/user", 200, KEY),
        Call("GET", f"{CLOUD}/admin/v2/orgs/{ORG}/directories/no-such-directory/users/count", 404, KEY),
    ]


def test_atlassian_cloud_simulator_honours_the_contract() -> None:
    transport, unexpected = drive(cloud_calls())
    assert unexpected == []
    # the one deliberately invalid request is caught by the document; the simulator's 400 conforms
    assert transport.violations == [
        f"POST /admin/v2/orgs/{ORG}/directories/-/users/search -> 400: request: request body $.expand[0]: "
        "'everything' is not one of ['platformRoles', 'counts.resources', 'productAccess', 'groups']"
    ]
    assert set(transport.recorder.operations) == {
        "GET /v2/orgs/{orgId}/directories",
        "POST /v2/orgs/{orgId}/directories/{directoryId}/users/search",
        "POST /v2/orgs/{orgId}/directories/{directoryId}/groups/search",
        "POST /v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships",
        "DELETE /v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships/{accountId}",
        "POST /v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend",
        "POST /v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/restore",
        "DELETE /v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}",
        "POST /users/{account_id}/manage/lifecycle/disable",
        "POST /users/{account_id}/manage/lifecycle/enable",
        "POST /users/{account_id}/manage/lifecycle/delete",
        "DELETE /rest/api/2/user",
        "DELETE /rest/api/3/user",
        "GET /v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates",
        "GET /v2/orgs/{orgId}/directories/{directoryId}/users/count",
    }


def test_cloud_search_pages_follow_the_cursor_within_the_contract() -> None:
    async def run() -> tuple[ContractTransport, int]:
        app = build_app(parse_scenario(SCENARIO, "<contract scenario>"))
        transport = ContractTransport(httpx.ASGITransport(app=app))
        seen = 0
        async with httpx.AsyncClient(transport=transport, headers=KEY) as client:
            body: dict[str, Any] = {"limit": 2, "expand": ["groups"]}
            while True:
                page = (await client.post(f"{ANY}/users/search", json=body)).json()
                seen += len(page["data"])
                if not page["links"].get("next"):
                    break
                body["cursor"] = page["links"]["next"]
        return transport, seen

    transport, seen = asyncio.run(run())
    assert seen == 5
    assert transport.violations == []


def storm(reads: list[Call], rounds: int) -> tuple[ContractTransport, set[int]]:
    """Send `reads` `rounds` times to a simulator injecting 5xx, 429 bursts and rate limiting."""
    from reconcile.sim.control import Faults, RateLimit, SimSettings
    from tests.support.contract import DEFAULT_ALLOWED_STATUSES

    stormy = SimSettings(faults=Faults(error_rate=0.25, error_statuses=(500, 502, 503), burst_429_every=7,
                                       burst_429_length=2), rate_limit=RateLimit(fill_rate=50, max=20), seed=11)
    app = build_app(parse_scenario(SCENARIO, "<contract scenario>"), settings=stormy)
    # injected 500/502 are undocumented for most operations: fault tests allow them explicitly
    transport = ContractTransport(httpx.ASGITransport(app=app), allowed_statuses=DEFAULT_ALLOWED_STATUSES | {500, 502})
    statuses: set[int] = set()

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(rounds):
                for call in reads:
                    response = await client.request(call.method, call.url, headers=call.headers, json=call.json)
                    statuses.add(response.status_code)

    asyncio.run(run())
    return transport, statuses


def test_injected_faults_and_rate_limiting_stay_within_the_contract() -> None:
    transport, statuses = storm([
        Call("GET", f"{DC}/rest/api/user/current", 200, ADMIN),
        Call("GET", f"{DC}/rest/api/group/team-docs/member?limit=1", 200, ADMIN),
        Call("GET", f"{DC}/rest/api/user/list?expand=status", 200, ADMIN),
        Call("POST", f"{ANY}/users/search", 200, KEY, {"limit": 2}),
        Call("POST", f"{ANY}/groups/search", 200, KEY, {}),
        Call("POST", f"{CLOUD}/users/{NOBODY}/manage/lifecycle/enable", 404, KEY),
    ], rounds=15)
    assert {429, 500, 502, 503} <= statuses  # the storm really happened
    assert transport.violations == []


def test_injected_faults_on_the_jira_site_use_jiras_error_model() -> None:
    transport, statuses = storm([Call("DELETE", f"{SITE}/rest/api/2/user?accountId={NOBODY}", 404, SITE_ADMIN)],
                                rounds=40)
    assert 500 in statuses
    assert transport.violations == []
