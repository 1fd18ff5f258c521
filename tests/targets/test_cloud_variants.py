"""Items 17 and 19(b-e, g): answers the real Cloud APIs give that the simulator used to avoid, and the
Cloud target coping with each — ARI group ids, paged directories, every `links.next` form, 429s
without Retry-After, minute-precision resets, `application/json;charset=UTF-8`. The client's time is
a fake clock shared with the simulator: backoff and pacing never sleep for real."""

from __future__ import annotations

import pytest

from reconcile.diff import diff
from reconcile.http import Backoff
from reconcile.model import (
    AbsentPolicy,
    DesiredState,
    DesiredUser,
    Globs,
    Policy,
    Scope,
)
from reconcile.sim.atlassian_cloud.world import CloudWorld
from reconcile.sim.control import Faults, RateLimit, SimSettings
from tests.support.builders import NOW
from tests.support.cloud import ALICE, HAL, Rig, rig, scenario
from tests.support.fake_clock import FakeClock

pytestmark = pytest.mark.anyio
ALL = Scope(users=Globs(("*",)), groups=Globs(("*",)))


def with_clock(r: Rig, fake: FakeClock) -> Rig:
    """The simulator's time through `fake` too (the target's goes through it from `rig(clock=…)`)."""
    r.ctx.clock, r.ctx.wall = fake.monotonic, fake.wall
    return r


async def test_user_group_ids_in_ari_form_give_the_same_memberships_and_plan() -> None:
    desired = DesiredState.build([
        DesiredUser("alice@example.com", groups=frozenset({"confluence-users"})),  # drops Team-Docs etc.
        DesiredUser(HAL, groups=frozenset({"jira-software-users", "team-platform"})),
    ])
    results = {}
    for form in ("bare", "ari"):
        r = rig(CloudWorld.from_scenario({**scenario(), "group_ids": form}))
        actual = await r.target.fetch(ALL)
        plan = diff(desired, actual, scope=ALL, policy=Policy(absent=AbsentPolicy.IGNORE), target={}, now=NOW)
        await r.target.aclose()
        r.contract.check()  # the ARI form validates against the Organizations document too
        results[form] = (actual.members, plan.actions)
    bare, ari = results["bare"], results["ari"]
    assert bare == ari
    assert ALICE in bare[0]["team-docs"] and HAL in bare[0]["jira-software-users"]
    kinds = sorted((str(a.kind), a.group) for a in ari[1])
    assert kinds == [("add_member", "team-platform"), ("remove_member", "jira-software-users"),
                     ("remove_member", "team-docs")]


async def test_ari_ids_are_what_the_simulator_sends_in_that_world() -> None:
    r = rig(CloudWorld.from_scenario({**scenario(), "group_ids": "ari"}))
    response = await r.target.http.request(
        "POST", f"/admin/v2/orgs/{r.world.org_id}/directories/-/users/search",
        json={"accountIds": [ALICE], "expand": ["groups"]})
    await r.target.aclose()
    ids = [g["id"] for g in response.json()["data"][0]["groups"]]
    assert ids and all(i.startswith("ari:cloud:identity::group/") for i in ids)


async def test_directory_listing_is_paged_and_the_target_finds_a_directory_on_a_later_page() -> None:
    world = CloudWorld.from_scenario(scenario())
    home = next(iter(world.directories))
    world.directories = {f"d{i:03d}-0000-4000-8000-000000000000": f"Extra {i:03d}" for i in range(150)}
    world.directories[home] = "Atlassian"  # the users' directory comes last: page 2
    r = rig(world, directory="Atlassian")
    actual = await r.target.fetch(ALL)
    await r.target.aclose()
    assert ALICE in actual.users
    listings = [p for m, p in r.api.requests if p.endswith("/directories")]
    assert len(listings) == 2  # limit 100: two pages
    r.contract.check()


@pytest.mark.parametrize("style", ["cursor", "url", "null"])
async def test_every_form_of_links_next_is_followed_to_the_end(style: str) -> None:
    world = CloudWorld.generate(users=230, groups=120, memberships=400, seed=3, org_id="0a7f6c1e-55b1-4c2e-9d61-"
                                "5b0c1f2e3d4a")
    r = rig(world, settings=SimSettings(faults=Faults(links_next=style)))
    actual = await r.target.fetch(ALL)
    await r.target.aclose()
    members = [u for u in world.users.values() if u.membership and u.status not in ("not_invited", "for_deletion")]
    assert len(actual.users) == len(members)
    assert len(actual.groups) == 120
    searches = [p for m, p in r.api.requests if p.endswith("/groups/search")]
    assert len(searches) == 2  # 100 + 20: the last page ended the listing in every form (users stop by count)
    r.contract.check()


async def test_429_without_retry_after_backs_off_on_the_clients_own_schedule() -> None:
    fake = FakeClock()
    settings = SimSettings(faults=Faults(burst_429_every=2, burst_429_length=1, retry_after_header=False))
    r = with_clock(rig(settings=settings, clock=fake.clock(), backoff=Backoff()), fake)
    actual = await r.target.fetch(ALL)
    await r.target.aclose()
    limited = [e for e in r.ctx.log.entries if e.status == 429]
    assert limited and ALICE in actual.users
    backoff = r.target.http.backoff
    assert fake.sleeps and all(0 < s <= backoff.cap * backoff.jitter[1] for s in fake.sleeps)
    assert r.target.http.gate.pauses >= 1  # every worker held back, not only the one refused
    r.contract.check()


@pytest.mark.parametrize("with_retry_after", [True, False])
async def test_minute_precision_resets_neither_hot_loop_nor_sleep_absurdly(with_retry_after: bool) -> None:
    fake = FakeClock(start=1000.0, epoch=1_790_000_030.0)  # 30 s into a minute: resets round down
    settings = SimSettings(rate_limit=RateLimit(fill_rate=2, interval_seconds=1, max=3),
                           faults=Faults(reset_precision="minutes", retry_after_header=with_retry_after))
    world = CloudWorld.generate(users=450, groups=30, memberships=300, seed=5, org_id="0a7f6c1e-55b1-4c2e-9d61-"
                                "5b0c1f2e3d4a")
    r = with_clock(rig(world, settings=settings, concurrency=4, clock=fake.clock(), backoff=Backoff()), fake)
    actual = await r.target.fetch(ALL)
    await r.target.aclose()
    assert len(actual.users) > 400
    resets = {e.note for e in r.ctx.log.entries if e.status == 429}
    sent = r.target.http.requests
    refused = sum(1 for e in r.ctx.log.entries if e.status == 429)
    assert resets and refused <= sent // 2 + 2, (refused, sent)  # no hot loop against the limiter
    assert max(fake.sleeps) <= r.target.http.backoff.max_wait  # nothing absurd
    assert sum(fake.sleeps) < 60, sum(fake.sleeps)  # ~8 requests at 2 per second, not minutes


async def test_json_with_a_charset_parameter_is_read_and_written_through() -> None:
    r = rig(settings=SimSettings(faults=Faults(json_charset=True)))
    response = await r.target.http.request("GET", f"/admin/v2/orgs/{r.world.org_id}/directories")
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    actual = await r.target.fetch(ALL)
    await r.target.aclose()
    assert ALICE in actual.users and actual.members["team-docs"] == frozenset({ALICE})
    r.contract.check()
