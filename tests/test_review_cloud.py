"""Review finding on the atlassian-cloud target: the credentials' own account is protected (SPEC §5).

The organization API key belongs to no account the Organizations API reveals, but the optional site
credentials (`target.site.email` + token, used for `delete: remove-from-site`) do: that account is
the tool's own and must never be planned, even when it holds no admin role.
"""

from __future__ import annotations

import asyncio

from reconcile.diff import diff
from reconcile.model import AbsentPolicy, ActualState, DesiredState, DesiredUser, Globs, Policy, Scope
from reconcile.plan import WarningKind
from reconcile.sim.atlassian_cloud.world import CloudWorld
from tests.support.builders import NOW
from tests.support.cloud import ADA, rig, scenario

ALL = Scope(users=Globs(("*",)), groups=Globs(("*",)))


def fetch(world: CloudWorld) -> ActualState:
    r = rig(world)  # site credentials: ada@example.com

    async def run() -> ActualState:
        try:
            return await r.target.fetch(ALL)
        finally:
            await r.target.aclose()

    return asyncio.run(run())


def test_the_site_credentials_account_is_the_credentials_own_and_never_planned() -> None:
    data = scenario()
    for user in data["users"]:
        if user["account_id"] == ADA:
            user["platform_roles"] = []  # a site-credentials account without an admin role
            user["email"] = "Ada@Example.com"
    actual = fetch(CloudWorld.from_scenario(data))
    assert actual.me == ADA and not actual.users[ADA].admin
    desired = DesiredState.build([DesiredUser("alice@example.com")])
    plan = diff(desired, actual, scope=ALL, policy=Policy(absent=AbsentPolicy.DELETE), target={}, now=NOW)
    assert ADA not in {a.subject.ref for a in plan.actions}
    assert (WarningKind.PROTECTED, "ada@example.com") in {(w.kind, w.subject) for w in plan.warnings}


def test_site_credentials_of_no_account_in_the_organization_protect_no_one() -> None:
    data = scenario()
    data["users"] = [u for u in data["users"] if u["account_id"] != ADA]
    data["api_keys"] = [{"key": data["api_keys"][0]["key"], "owner": None}]
    for group in data["groups"]:
        group["members"] = [m for m in group["members"] if m != ADA]
    assert fetch(CloudWorld.from_scenario(data)).me is None
