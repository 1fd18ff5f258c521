"""The Confluence Cloud impact reader (policy.delete_guard on atlassian-cloud): personal spaces by the v2 owner
fields, sole direct administrators from v2 space permissions, pages created by CQL `creator`; every refusal an
unknown fact. Against the in-process simulator, every exchange validated against Atlassian's v1/v2 documents
(tests/specs/confluence-cloud-*.slice.json).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from reconcile.impact import Impact
from reconcile.model import User
from reconcile.policies import GuardCondition
from reconcile.sim.atlassian_cloud.routes import Fault
from reconcile.sim.atlassian_cloud.wiki import SpaceError, spaces_from
from reconcile.sim.atlassian_cloud.world import CloudWorld, ScenarioError
from tests.support.cloud import ADA, ALICE, BOB, HAL, rig, scenario

pytestmark = pytest.mark.anyio

SPACES: list[dict[str, Any]] = [
    {"key": "DOCS", "name": "Documentation", "admins": [ALICE, ADA], "content": {ALICE: 40, BOB: 2}},
    {"key": "OPS", "admins": [BOB], "admin_groups": ["confluence-users"], "content": {BOB: 30}},
    {"key": "OLD", "status": "archived", "admins": [HAL], "content": {HAL: 5, BOB: 1}},
    {"key": "~bob", "personal": BOB, "content": {BOB: 4}},
    {"key": "~712020a11ce", "personal": "alice@example.com"},
]


def world(spaces: list[dict[str, Any]] = SPACES) -> CloudWorld:
    return CloudWorld.from_scenario({**scenario(), "spaces": spaces})


def person(account: str) -> User:
    return User(ref=account, account_id=account)


async def impacts(spaces: list[dict[str, Any]] = SPACES, *, faults: tuple[Fault, ...] = (), site: bool = True,
                  **config: Any) -> dict[str, Impact]:
    r = rig(world(spaces), **config)
    r.api.faults.extend(faults)
    if not site:
        r.target.site = None
    try:
        found = dict(await r.target.impact([person(a) for a in (ALICE, BOB, HAL, ADA)]))
    finally:
        await r.target.aclose()
    r.contract.check()
    assert not r.contract.uncovered, r.contract.uncovered
    return found


async def test_owner_fields_sole_admins_and_content_are_read() -> None:
    found = await impacts()
    assert found[BOB] == Impact(personal_space="~bob", sole_admin_of=("OPS",), content=37)  # archived OLD counts
    assert found[ALICE] == Impact(personal_space="~712020a11ce", content=40)  # DOCS has two direct admins
    assert found[HAL] == Impact(sole_admin_of=("OLD",), content=5)
    assert found[ADA] == Impact()


async def test_spaces_and_permissions_are_read_page_by_page() -> None:
    many = [{"key": f"S{n:03}", "admins": [HAL] if n % 100 == 7 else [ALICE, HAL]} for n in range(260)]
    found = await impacts(many)
    assert found[HAL].sole_admin_of == ("S007", "S107", "S207")  # 260 spaces: two pages of 250


@pytest.mark.parametrize(("fault", "unknown"), [
    (Fault("GET", "/wiki/api/v2/spaces", 401, times=99),  # CQL still answers: only the space facts
     {GuardCondition.PERSONAL_SPACE, GuardCondition.SOLE_SPACE_ADMIN}),
    (Fault("GET", "/permissions", 404), {GuardCondition.SOLE_SPACE_ADMIN}),
    (Fault("GET", "/wiki/rest/api/search", 403, times=99), {GuardCondition.CONTENT_CREATED}),
])
async def test_a_refused_read_is_an_unknown_fact_naming_the_request(fault: Fault,
                                                                    unknown: set[GuardCondition]) -> None:
    found = await impacts(faults=(fault,))
    assert set(found[BOB].unknown) == unknown
    assert all(f"-> {fault.status}" in why and "http://acme.atlassian.test/wiki/" in why
               for why in found[BOB].unknown.values())


async def test_wrong_site_credentials_make_every_fact_unknown() -> None:
    r = rig(world())
    site = r.target.config.site
    assert site is not None
    r.world.site_credentials[site.email] = "another-token"  # the site refuses the configured token: 401
    # v1 search documents 400 and 403 only; a real site answers a bad credential 401 on every route
    r.contract.recorder.undocumented = {"GET /wiki/rest/api/search": frozenset({401})}
    found = await r.target.impact([person(BOB)])
    await r.target.aclose()
    r.contract.check()
    assert set(found[BOB].unknown) == set(GuardCondition)
    assert found[BOB].unknown[GuardCondition.PERSONAL_SPACE] == (
        "GET http://acme.atlassian.test/wiki/api/v2/spaces -> 401")


async def test_without_target_site_nothing_is_read_and_everything_is_unknown() -> None:
    found = await impacts(site=False)
    assert found[BOB] == Impact.unread("target.site is not configured: Confluence Cloud is read through the "
                                       "site's REST API")


def test_scenario_spaces_name_known_users() -> None:
    with pytest.raises(ScenarioError, match=r"cloud.spaces\[0\] X: unknown user nobody@example.com in admins"):
        world([{"key": "X", "admins": ["nobody@example.com"]}])
    with pytest.raises(SpaceError, match="two spaces share a key"):
        spaces_from([{"key": "A"}, {"key": "A"}], lambda k: k)
    personal = spaces_from([{"key": "~a", "personal": "a"}], lambda k: k)[0]
    assert replace(personal, id=0).admins == ["a"] and personal.type == "personal" and personal.owner == "a"
