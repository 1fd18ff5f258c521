"""Items 18 and 19(f): the simulator answers like the real services at their edges — only the
documented lifecycle verbs, cancel-delete as documented, malformed JSON and mistyped fields as the
documented 400s, unrouted paths in each API's JSON error format. Every answer is contract-checked."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from reconcile.sim.app import build_app
from reconcile.sim.atlassian_cloud.world import DEFAULT_DIRECTORY, CloudWorld
from reconcile.sim.scenario import parse_scenario
from reconcile.targets.atlassian import error_for
from tests.support.cloud import ALICE, FRANK, HAL, ORG, ORG_KEY, scenario
from tests.support.contract import ContractTransport

CLOUD = "http://api.atlassian.test"
DC = "http://confluence.test"
KEY = {"Authorization": f"Bearer {ORG_KEY}"}
DC_TOKEN = "pat-fidelity-admin"
DC_WORLD = f"""
confluence_dc:
  users:
    - {{username: admin, tokens: [{DC_TOKEN}], groups: [confluence-administrators]}}
  groups:
    - {{name: confluence-administrators}}
"""
DIR = f"{CLOUD}/admin/v2/orgs/{ORG}/directories/{DEFAULT_DIRECTORY}"
# user management documents no 400 for the lifecycle routes, but its error model is documented
# (BadRequest.Body); the real gateway answers malformed bodies with it [I]
UNDOCUMENTED = {f"POST /users/{{account_id}}/manage/lifecycle/{verb}": {400}
                for verb in ("disable", "enable", "delete", "cancel-delete")}


def lifecycle(account: str, verb: str) -> str:
    return f"{CLOUD}/users/{account}/manage/lifecycle/{verb}"


def exchange(world: CloudWorld, calls: list[tuple[str, str, Any]]) -> tuple[list[httpx.Response], ContractTransport]:
    """Send `calls` (method, url, body: JSON value or raw bytes) to one simulator, contract-checked."""
    app = build_app(parse_scenario(DC_WORLD), cloud=world)
    transport = ContractTransport(httpx.ASGITransport(app=app), undocumented=UNDOCUMENTED)

    async def go() -> list[httpx.Response]:
        out = []
        async with httpx.AsyncClient(transport=transport) as client:
            for method, url, body in calls:
                headers = dict(KEY) if url.startswith(CLOUD) else {"Authorization": f"Bearer {DC_TOKEN}"}
                if isinstance(body, bytes):
                    headers["Content-Type"] = "application/json"
                    response = await client.request(method, url, headers=headers, content=body)
                else:
                    response = await client.request(method, url, headers=headers, json=body)
                out.append(response)
        return out

    return asyncio.run(go()), transport


def test_cancel_delete_on_an_account_not_scheduled_changes_nothing_and_says_not_found() -> None:
    world = CloudWorld.from_scenario(scenario())
    (answer,), transport = exchange(world, [("POST", lifecycle(HAL, "cancel-delete"), None)])
    assert answer.status_code == 404 and answer.json() == {"key": "notFound"}
    assert not world.users[HAL].for_deletion and world.users[HAL].account_status == "active"
    assert transport.violations == []


def test_cancel_delete_restores_and_activates_a_scheduled_account() -> None:
    world = CloudWorld.from_scenario(scenario())
    answers, transport = exchange(world, [
        ("POST", lifecycle(HAL, "delete"), None),
        ("POST", lifecycle(HAL, "cancel-delete"), None),
        ("POST", lifecycle(FRANK, "cancel-delete"), None),  # scheduled in the scenario itself
    ])
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[1].json() == {"message": "Success"}
    for account in (HAL, FRANK):
        user = world.users[account]
        assert (user.for_deletion, user.account_status, user.status) == (False, "active", "active")
    assert transport.violations == []
    assert "POST /users/{account_id}/manage/lifecycle/cancel-delete" in transport.recorder.operations


def test_an_unknown_lifecycle_verb_is_a_json_404_and_does_nothing() -> None:
    world = CloudWorld.from_scenario(scenario())
    before = world.version
    answers, _ = exchange(world, [("POST", lifecycle(HAL, verb), None)
                                  for verb in ("frobnicate", "remove", "Delete", "cancel-delete/")])
    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"] == "application/json" and answer.json() == {"key": "notFound"}
    assert world.version == before and not world.users[HAL].for_deletion


def test_malformed_json_is_the_documented_400_on_every_json_endpoint() -> None:
    world = CloudWorld.from_scenario(scenario())
    broken = b'{"accountId": '
    answers, transport = exchange(world, [
        ("POST", lifecycle(HAL, "disable"), broken),
        ("POST", lifecycle(HAL, "enable"), b"[1, 2"),
        ("POST", lifecycle(HAL, "delete"), b"\xff\xfe"),
        ("POST", f"{DIR}/users/search", broken),
        ("POST", f"{DIR}/groups/search", broken),
        ("POST", f"{DIR}/groups/9f1c0000-0000-4000-8000-0000000000a5/memberships", broken),
        ("POST", f"{DC}/rest/api/admin/group", broken),
    ])
    assert [a.status_code for a in answers] == [400] * 7, [a.text for a in answers]
    assert [a.json() for a in answers[:3]] == [{"key": "bodyParseFailure"}] * 3
    for answer in answers[3:6]:
        assert answer.json()["errors"][0]["code"] == "ADMIN-400-24"
    assert answers[6].json()["statusCode"] == 400
    assert world.users[HAL].account_status == "active" and not world.users[HAL].for_deletion
    # the documents reject the requests themselves; every 400 the simulator answered conforms
    assert [v for v in transport.violations if ": request: " not in v] == []


def test_body_fields_of_the_wrong_type_are_refused_as_the_documents_say() -> None:
    world = CloudWorld.from_scenario(scenario())
    answers, transport = exchange(world, [
        ("POST", lifecycle(HAL, "disable"), {"message": 5}),
        ("POST", f"{DIR}/users/search", {"accountIds": ALICE}),
        ("POST", f"{DIR}/users/search", {"limit": "10"}),
        ("POST", f"{DIR}/groups/search", {"groupNames": [7]}),
        ("POST", f"{DIR}/groups/9f1c0000-0000-4000-8000-0000000000a5/memberships", {"accountId": 42}),
    ])
    assert [a.status_code for a in answers] == [400] * 5, [a.text for a in answers]
    assert answers[0].json() == {"key": "fieldConstraintsViolated", "context": {
        "fieldViolations": [{"field": "message", "violations": [{"key": "type"}]}]}}
    assert world.users[HAL].account_status == "active"
    assert all(ALICE not in g.members or g.name != "team-platform" for g in world.groups.values())
    # the document itself rejects these requests; the simulator's 400s are what it documents
    assert all(": request: " in v for v in transport.violations), transport.violations


def test_unrouted_paths_answer_in_each_apis_json_error_format() -> None:
    world = CloudWorld.from_scenario(scenario())
    answers, _ = exchange(world, [
        ("GET", f"{DC}/rest/api/no-such-resource", None),
        ("GET", f"{DC}/rest/api/admin/group", None),  # POST only: 405
        ("GET", f"{CLOUD}/admin/v2/orgs/{ORG}/no-such-thing", None),
        ("GET", f"{CLOUD}/users/{HAL}/manage/no-such-thing", None),
        ("GET", f"{CLOUD}/rest/api/3/no-such-thing", None),
    ])
    assert [a.status_code for a in answers] == [404, 405, 404, 404, 404]
    assert all(a.headers["content-type"].startswith("application/json") for a in answers)
    dc, dc_method, org, user_management, jira = (a.json() for a in answers)
    assert dc["statusCode"] == 404 and dc["message"].startswith("null for uri: ")
    assert dc_method["statusCode"] == 405 and "POST" in answers[1].headers["allow"]
    assert org["errors"][0]["status"] == "404" and org["errors"][0]["detail"]
    assert user_management == {"key": "notFound"}
    assert jira["errorMessages"] and jira["errors"] == {}
    # and the client's error line shows the server's own words, not a page of text
    line = str(error_for(answers[0], "check target.url")).splitlines()[0]
    assert line.startswith(f"GET {DC}/rest/api/no-such-resource -> 404") and ": null for uri: " in line


def test_the_variant_settings_are_checked_when_set() -> None:
    app = build_app(parse_scenario(DC_WORLD))

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=DC) as client:
            return [await client.put("/_sim/faults", json=body) for body in (
                {"links_next": "sometimes"}, {"json_charset": "yes"}, {"reset_precision": "hours"},
                {"links_next": "url", "retry_after_header": False, "forget_finished_tasks": True})]

    answers = asyncio.run(go())
    assert [a.status_code for a in answers] == [400, 400, 400, 200]
    assert "links_next is one of cursor, url, null" in answers[0].json()["error"]
    faults = answers[3].json()["faults"]
    assert (faults["links_next"], faults["retry_after_header"], faults["forget_finished_tasks"]) == (
        "url", False, True)
