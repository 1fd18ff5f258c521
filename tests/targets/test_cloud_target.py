"""The atlassian-cloud target against the in-process simulator, every exchange checked against the
Organizations / user-management / Jira OpenAPI documents (tests/support/contract.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from reconcile.diff import diff
from reconcile.errors import AuthError, TargetError
from reconcile.model import (
    AbsentPolicy,
    ActualState,
    DesiredState,
    DesiredUser,
    Globs,
    Policy,
    Scope,
    Status,
)
from reconcile.plan import Action, ActionKind, Subject, WarningKind
from reconcile.settings import CloudDelete, CloudDisable
from reconcile.sim.atlassian_cloud.routes import Fault
from reconcile.sim.atlassian_cloud.world import CloudWorld
from reconcile.sim.control import Faults, RateLimit, SimSettings
from reconcile.targets.base import Result
from tests.support.builders import NOW
from tests.support.cloud import ADA, ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GINA, HAL, Rig, rig, scenario
from tests.support.fake_clock import FakeClock

pytestmark = pytest.mark.anyio
ALL = Scope(users=Globs(("*",)), groups=Globs(("*",)))


def act(kind: ActionKind, ref: str, group: str | None = None) -> Action:
    return Action(kind=kind, subject=Subject(identity=ref, ref=ref), group=group)


async def fetch(r: Rig, scope: Scope = ALL) -> ActualState:
    return await r.target.fetch(scope)


def memberships(r: Rig, name: str) -> set[str]:
    return next(set(g.members) for g in r.world.groups.values() if g.name.lower() == name)


async def test_fetch_maps_statuses_roles_idp_and_last_active() -> None:
    r = rig()
    state = await fetch(r)
    await r.target.aclose()
    assert set(state.users) == {ADA, ALICE, BOB, CAROL, DAVE, ERIN, HAL}  # FRANK, GINA: not members
    assert FRANK not in state.users and GINA not in state.users
    alice = state.users[ALICE]
    assert (alice.email, alice.account_id, alice.display_name) == ("alice@example.com", ALICE, "Alice Archer")
    assert alice.last_active == {"confluence": datetime(2026, 3, 2, 8, 15, tzinfo=UTC),  # per product
                                 "jira-software": datetime(2026, 5, 17, 12, 0, tzinfo=UTC)}
    assert alice.last_active.latest() == datetime(2026, 5, 17, 12, 0, tzinfo=UTC)  # the latest of its products
    assert state.users[BOB].status is Status.DISABLED  # suspended
    assert state.users[CAROL].status is Status.DISABLED  # deactivated
    assert state.users[ALICE].status is Status.ACTIVE
    assert state.users[ADA].admin and not alice.admin
    assert state.users[DAVE].idp_managed and not alice.idp_managed
    assert state.groups["idp-engineering"].idp_managed and not state.groups["team-docs"].idp_managed
    assert state.members["team-docs"] == {ALICE}  # group names are lower-cased
    assert state.members["confluence-users"] == {ADA, ALICE, BOB}
    assert state.me == ADA  # the site credentials' account (an org API key has none of its own)
    r.contract.check()


async def test_members_only_of_managed_groups() -> None:
    r = rig()
    state = await fetch(r, Scope(users=Globs(("*",)), groups=Globs(("team-*",))))
    await r.target.aclose()
    assert set(state.members) == {"team-docs", "team-platform"}
    assert "confluence-users" in state.groups  # every group is known, memberships only where managed


async def test_pagination_reads_every_page_of_100() -> None:
    world = CloudWorld.generate(users=250, groups=3, memberships=400, seed=7, org_id="org-p", api_key="k")
    r = rig(world)
    state = await fetch(r)
    await r.target.aclose()
    assert len(state.users) == sum(1 for u in world.users.values() if u.membership)
    searches = [p for m, p in r.api.requests if p.endswith("/users/search")]
    # the active users (235) from both ends, two pages of 100 each, the suspended (10) and the inactive
    # ones (5) in one page each: two requests on the longest chain where one chain took three
    # (tests/targets/test_cloud_split.py)
    assert len(searches) == 6
    r.contract.check()


async def test_a_repeated_cursor_stops_with_a_clear_error() -> None:
    world = CloudWorld.generate(users=150, groups=1, memberships=0, seed=1, org_id="org-c", api_key="k")
    r = rig(world)
    r.api.stuck_cursor = True
    with pytest.raises(TargetError, match=r"returned the cursor .* twice"):
        await fetch(r)
    await r.target.aclose()
    assert len([p for _, p in r.api.requests if p.endswith("/search")]) <= 4


async def test_a_named_directory_and_an_unknown_one() -> None:
    r = rig(directory="Atlassian")
    assert ALICE in (await fetch(r)).users
    await r.target.aclose()
    r = rig(directory="Nope")
    with pytest.raises(TargetError, match="'Nope' is not a directory") as caught:
        await fetch(r)
    await r.target.aclose()
    assert "Atlassian (" in str(caught.value.hint)


async def test_wrong_api_key_is_an_auth_error() -> None:
    world = CloudWorld.from_scenario({"api_keys": ["right"], "users": [{"email": "a@example.com"}]})
    r = rig(world)
    r.world.api_keys = {"other": None}
    with pytest.raises(AuthError, match=r"GET .*/directories\?limit=100 -> 401.*organization API key"):
        await fetch(r)
    await r.target.aclose()


async def test_add_member_then_409_already_member() -> None:
    r = rig()
    await fetch(r)
    first = await r.target.perform(act(ActionKind.ADD_MEMBER, HAL, "team-docs"))
    again = await r.target.perform(act(ActionKind.ADD_MEMBER, HAL, "team-docs"))
    await r.target.aclose()
    assert (first.result, first.http_status) == (Result.DONE, 204)
    assert (again.result, again.http_status) == (Result.ALREADY, 409)
    assert HAL in memberships(r, "team-docs")
    r.contract.check()


async def test_409_licence_limit_fails_with_the_reason() -> None:
    r = rig()  # jira-software: 3 seats, held by ADA, ALICE, HAL
    await fetch(r)
    outcome = await r.target.perform(act(ActionKind.ADD_MEMBER, ERIN, "jira-software-users"))
    await r.target.aclose()
    assert outcome.result is Result.FAILED and outcome.http_status == 409
    assert "user limit" in outcome.message and "free seats" in outcome.message
    assert ERIN not in memberships(r, "jira-software-users")


async def test_remove_member_and_remove_of_a_non_member() -> None:
    r = rig()
    await fetch(r)
    done = await r.target.perform(act(ActionKind.REMOVE_MEMBER, ALICE, "team-docs"))
    again = await r.target.perform(act(ActionKind.REMOVE_MEMBER, ALICE, "team-docs"))
    await r.target.aclose()
    assert done.result is Result.DONE and again.ok
    assert ALICE not in memberships(r, "team-docs")


async def test_synced_groups_and_users_are_never_written() -> None:
    r = rig(disable=CloudDisable.DEACTIVATE)
    await fetch(r)
    group = await r.target.perform(act(ActionKind.ADD_MEMBER, ALICE, "idp-engineering"))
    assert group.result is Result.FAILED and "identity provider" in group.message
    assert not any("memberships" in p for _, p in r.api.requests)  # refused before any write
    user = await r.target.perform(act(ActionKind.DISABLE, DAVE))
    await r.target.aclose()
    assert user.result is Result.FAILED and user.http_status == 403
    assert "identity provider (SCIM)" in user.message
    assert r.world.users[DAVE].account_status == "active"
    r.contract.check()


async def test_a_synced_user_cannot_be_suspended_either() -> None:
    r = rig()
    await fetch(r)
    outcome = await r.target.perform(act(ActionKind.DISABLE, DAVE))
    await r.target.aclose()
    assert outcome.result is Result.FAILED and "identity provider" in outcome.message
    assert r.world.users[DAVE].membership_status == "active"


async def test_org_admins_are_never_planned() -> None:
    r = rig()
    actual = await fetch(r)
    await r.target.aclose()
    desired = DesiredState.build([DesiredUser("alice@example.com")])
    plan = diff(desired, actual, scope=ALL, policy=Policy(absent=AbsentPolicy.DELETE), target={}, now=NOW)
    assert ADA not in {a.subject.ref for a in plan.actions}
    assert DAVE not in {a.subject.ref for a in plan.actions}
    assert any(w.subject.startswith("ada@") for w in plan.warnings)


async def test_suspend_and_restore() -> None:
    r = rig()
    await fetch(r)
    assert (await r.target.perform(act(ActionKind.DISABLE, HAL))).result is Result.DONE
    assert r.world.users[HAL].membership_status == "suspended"
    await fetch(r)
    assert (await r.target.perform(act(ActionKind.ENABLE, HAL))).result is Result.DONE
    assert r.world.users[HAL].membership_status == "active"
    await r.target.aclose()
    assert [m["action"] for m in r.world.mutations] == ["suspend", "restore"]
    r.contract.check()


async def test_deactivate_and_enable_through_the_lifecycle_api() -> None:
    r = rig(disable=CloudDisable.DEACTIVATE)
    await fetch(r)
    assert (await r.target.perform(act(ActionKind.DISABLE, HAL))).result is Result.DONE
    assert r.world.users[HAL].account_status == "inactive"
    assert (await r.target.perform(act(ActionKind.DISABLE, HAL))).result is Result.ALREADY  # 409 + re-read
    state = await fetch(r)
    assert state.users[HAL].status is Status.DISABLED
    assert (await r.target.perform(act(ActionKind.ENABLE, HAL))).result is Result.DONE
    await r.target.aclose()
    assert r.world.users[HAL].account_status == "active"
    r.contract.check()


async def test_enable_matches_how_the_user_was_disabled() -> None:
    r = rig()  # default disable: suspend; CAROL was deactivated elsewhere, BOB suspended
    await fetch(r)
    assert (await r.target.perform(act(ActionKind.ENABLE, CAROL))).result is Result.DONE
    assert (await r.target.perform(act(ActionKind.ENABLE, BOB))).result is Result.DONE
    await r.target.aclose()
    assert r.world.users[CAROL].status == "active" and r.world.users[BOB].status == "active"
    assert [m["action"] for m in r.world.mutations] == ["lifecycle_enable", "restore"]


async def test_deactivating_an_unmanaged_account_says_what_to_do() -> None:
    r = rig(disable=CloudDisable.DEACTIVATE)
    await fetch(r)
    outcome = await r.target.perform(act(ActionKind.DISABLE, ERIN))
    await r.target.aclose()
    assert outcome.result is Result.FAILED and outcome.http_status == 403
    assert "not a managed account" in outcome.message and "target.disable: suspend" in outcome.message


@pytest.mark.parametrize(
    ("mode", "check"),
    [
        (CloudDelete.REMOVE_FROM_DIRECTORY, lambda u: u.membership == {}),
        (CloudDelete.DELETE_ACCOUNT, lambda u: u.status == "for_deletion"),
        (CloudDelete.REMOVE_FROM_SITE, lambda u: not u.on_site and u.membership != {}),
    ],
)
async def test_each_delete_mapping(mode: CloudDelete, check) -> None:
    r = rig(delete=mode)
    await fetch(r)
    first = await r.target.perform(act(ActionKind.DELETE, HAL))
    assert first.result is Result.DONE, first.message
    assert check(r.world.users[HAL])
    if mode is not CloudDelete.REMOVE_FROM_SITE:
        assert HAL not in (await fetch(r)).users  # gone from the actual state: the plan converges
    again = await r.target.perform(act(ActionKind.DELETE, HAL))
    await r.target.aclose()
    assert again.result is Result.ALREADY
    r.contract.check()


async def test_a_lost_response_is_re_read_not_blindly_retried() -> None:
    r = rig()
    await fetch(r)
    r.api.faults.append(Fault("POST", "/memberships", 500, after=True))  # applied, answer lost
    outcome = await r.target.perform(act(ActionKind.ADD_MEMBER, HAL, "team-platform"))
    assert outcome.result is Result.DONE and "confirmed by re-reading" in outcome.message
    assert [m["action"] for m in r.world.mutations] == ["add_member"]  # sent once
    r.api.faults.append(Fault("POST", "/suspend", 503, times=1))  # refused before processing
    outcome = await r.target.perform(act(ActionKind.DISABLE, HAL))
    await r.target.aclose()
    assert outcome.result is Result.DONE
    assert [m["action"] for m in r.world.mutations] == ["add_member", "suspend"]
    posts = [p for m, p in r.api.requests if m == "POST" and p.endswith("/suspend")]
    assert len(posts) == 2  # sent again only after the re-read showed it had not happened


async def test_x_ratelimit_headers_pace_requests_below_the_limit() -> None:
    limited = SimSettings(rate_limit=RateLimit(fill_rate=20, interval_seconds=1, max=5))
    world = CloudWorld.generate(users=700, groups=5, memberships=900, seed=3, org_id="org-r", api_key="k")
    fake = FakeClock()  # the pacing waits on this clock, which the simulator's bucket refills on: no real waits
    r = rig(world, settings=limited, clock=fake.clock())
    r.ctx.clock, r.ctx.wall = fake.monotonic, fake.wall
    state = await fetch(r)
    await r.target.aclose()
    assert len(state.users) == sum(1 for u in world.users.values() if u.membership)
    assert len(r.api.requests) >= 9  # more than the bucket's 5 tokens ...
    assert [e for e in r.ctx.log.entries if e.status == 429] == []  # ... yet never refused: paced
    r.contract.check()


async def test_429_bursts_with_retry_after_pause_every_worker_and_lose_nothing() -> None:
    bursts = SimSettings(faults=Faults(burst_429_every=4, burst_429_length=2, burst_retry_after=1))
    world = CloudWorld.generate(users=250, groups=5, memberships=300, seed=5, org_id="org-b", api_key="k")
    fake = FakeClock()  # Retry-After: 1 is waited on this clock, shared with the simulator: no real second passes
    r = rig(world, settings=bursts, clock=fake.clock())
    r.ctx.clock, r.ctx.wall = fake.monotonic, fake.wall
    state = await fetch(r)
    await r.target.aclose()
    assert len(state.users) == sum(1 for u in world.users.values() if u.membership)
    assert [e for e in r.ctx.log.entries if e.status == 429]
    assert r.target.http.gate.pauses > 0
    r.contract.check()


async def test_apply_converges_against_the_simulator() -> None:
    r = rig()
    desired = DesiredState.build([
        DesiredUser("alice@example.com", groups=frozenset({"confluence-users", "team-platform"})),
        DesiredUser(HAL, groups=frozenset({"jira-software-users"})),
        DesiredUser("bob@example.com", groups=frozenset({"confluence-users"})),
        DesiredUser("carol@example.com", status=Status.DISABLED),
    ])
    scope = Scope(users=Globs(("*@example.com",)), groups=Globs(("confluence-users", "team-*")))
    plan = diff(desired, await fetch(r, scope), scope=scope, policy=Policy(), target={}, now=NOW)
    kinds = sorted({str(a.kind) for a in plan.actions})
    assert kinds == ["add_member", "enable", "remove_member"]
    outcomes = [await r.target.perform(a) for a in plan.actions]
    assert all(o.ok for o in outcomes), [o.message for o in outcomes]
    again = diff(desired, await fetch(r, scope), scope=scope, policy=Policy(), target={}, now=NOW)
    await r.target.aclose()
    assert again.actions == ()
    r.contract.check()


@pytest.mark.slow
async def test_a_5000_user_organization() -> None:
    world = CloudWorld.generate(users=5000, groups=200, memberships=20000, seed=11, org_id="org-5k",
                                api_key="k")
    r = rig(world, contract=False)
    state = await fetch(r)
    await r.target.aclose()
    members = {u.account_id for u in world.users.values() if u.membership}
    assert set(state.users) == members
    expected = sum(len(g.members & members) for g in world.groups.values())
    assert sum(len(m) for m in state.members.values()) == expected


# Review finding on the atlassian-cloud target: the credentials' own account is protected (SPEC §5).
#
# The organization API key belongs to no account the Organizations API reveals, but the optional site
# credentials (`target.site.email` + token, used for `delete: remove-from-site`) do: that account is
# the tool's own and must never be planned, even when it holds no admin role.
def fetch_all(world: CloudWorld) -> ActualState:
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
    actual = fetch_all(CloudWorld.from_scenario(data))
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
    assert fetch_all(CloudWorld.from_scenario(data)).me is None
