"""The Cloud user read split into concurrent chains (reconcile/targets/atlassian_cloud/split.py), against
the in-process simulator with every exchange checked against the Organizations document."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconcile.diff import diff
from reconcile.digest import fingerprint
from reconcile.http import Backoff
from reconcile.model import AbsentPolicy, DesiredState, DesiredUser, Globs, Policy, Scope
from reconcile.sim.app import build_app
from reconcile.sim.atlassian_cloud.routes import Fault
from reconcile.sim.atlassian_cloud.world import DEFAULT_DIRECTORY, CloudWorld
from reconcile.sim.confluence_dc.world import DcWorld
from reconcile.sim.control import SimSettings
from reconcile.targets.atlassian_cloud import AtlassianCloudTarget
from reconcile.targets.atlassian_cloud.read import USER_EXPAND
from reconcile.targets.atlassian_cloud.split import SplitRead
from tests.support.builders import NOW
from tests.support.cloud import ORG, ORG_KEY, rig
from tests.support.contract import ContractTransport

pytestmark = pytest.mark.anyio
ALL = Scope(users=Globs(("*",)), groups=Globs(("*",)))
CELLS = [(c, a, m) for c in ("managed", "unmanaged") for a in ("active", "inactive", "closed")
         for m in ("active", "suspended", "no_membership")]  # claimStatus x accountStatus x membershipStatus


def person(name: str, email: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "email": email, **extra}


def mixed_world(*, absent_claim: bool = False, more: int = 0) -> CloudWorld:
    """Users in every claimStatus x accountStatus partition, and ones no obvious filter names: other
    email domains, no groups, tied, empty and accented nicknames, suspended, synced, scheduled for
    deletion, never invited; with `absent_claim`, one account whose response has no claimStatus; with
    `more`, that many more managed active users."""
    users = [person(f"Nick{i % 37} Active", f"a{i}@{('example.com', 'other.test', 'x.example.org')[i % 3]}")
             for i in range(260 + more)]  # managed/active, three pages, many tied nicknames
    users += [person(f"Un{i:03d} Outside", f"u{i}@gmail.test", claim_status="unmanaged") for i in range(130)]
    users += [person(f"De{i} Gone", f"d{i}@example.com", status="deactivated") for i in range(12)]
    users += [person(f"Ud{i} Gone", f"ud{i}@gmail.test", status="deactivated", claim_status="unmanaged")
              for i in range(7)]
    users += [person(f"Su{i} Paused", f"s{i}@example.com", status="suspended") for i in range(9)]
    users += [person(f"Sy{i} Synced", f"sy{i}@example.com", management_source="synced") for i in range(5)]
    users += [person("", "blank@example.com"), person("Émile Accent", "emile@example.com"),
              person("émile lower", "emile2@example.com"), person("Zoë Last", "zoe@example.com")]
    users += [person("Fo Deleted", "fd@example.com", status="for_deletion"),
              person("Ni Never", "ni@example.com", status="not_invited")]
    users += [person(f"Cl{i} Closed", f"c{i}@example.com") for i in range(4)]
    users += [person(f"Uc{i} Closed", f"uc{i}@gmail.test", claim_status="unmanaged") for i in range(3)]
    if absent_claim:
        users.append(person("Nobody Claims", "nobody@nowhere.test", claim_status=None))
    world = CloudWorld.from_scenario({"org_id": ORG, "api_keys": [ORG_KEY], "users": users, "groups": [
        {"name": "some-group", "members": [u["email"] for u in users[:50]]}]})
    for user in world.users.values():
        if user.name.startswith(("Cl", "Uc")) and user.name.endswith("Closed"):
            user.account_status = "closed"
    return world


async def read_ids(world: CloudWorld, transport: httpx.AsyncBaseTransport | None = None,
                   concurrency: int = 4) -> tuple[list[str], SplitRead, list[str]]:
    """(ids the split read handed on, in order; the split; ids one unfiltered chain reads)."""
    r = rig(world, concurrency=concurrency)
    target = r.target if transport is None else AtlassianCloudTarget(
        r.target.config, transport=transport, backoff=Backoff(base=0.01, cap=0.1, max_wait=2.0))
    split = SplitRead(target.reader, DEFAULT_DIRECTORY, {"expand": USER_EXPAND})
    ids = [item.account_id async for page in split.pages() for item in page]
    single = [str(item["accountId"]) async for page in target.reader.pages(
        "users", DEFAULT_DIRECTORY, {"expand": USER_EXPAND}) for item in page]
    await target.aclose()
    await r.target.aclose()
    r.contract.check()
    if isinstance(transport, ContractTransport):
        transport.check()
    return ids, split, single


async def test_chains_together_read_every_user_exactly_once() -> None:
    world = mixed_world()
    ids, split, single = await read_ids(world)
    assert len(ids) == len(set(ids))  # no user twice
    assert set(ids) == set(single)  # the union of the chains is what one chain reads
    stats = split.stats
    held = {(u.claim_status, u.account_status, u.membership_status) for u in world.users.values() if u.membership}
    assert len(held) == 7 and held <= set(CELLS)  # every claim x account cell, and suspended users among them
    assert {p.name for p in stats.partitions} == {f"{c}/{a}/{m}" for c, a, m in held}  # every cell with users
    for part in stats.partitions:  # each pair read its partition exactly, and stopped where they met
        cell = (part.query["claimStatus"], part.query["accountStatus"][0], part.query["membershipStatus"][0])
        expected = {a for a, u in world.users.items()
                    if u.membership and (u.claim_status, u.account_status, u.membership_status) == cell}
        assert set(part.seen) == expected, part.name
        # the pair's chains overlap by at most a page each where they meet; how the pages fall between the
        # two depends on scheduling here (no latency), in lockstep under latency (docs/performance.md)
        assert sum(part.requests.values()) <= math.ceil(part.count / 100) + 1, part.name
        assert len(part.requests) == (2 if part.count > 100 else 1), part.name
    assert (stats.duplicates, stats.strays, stats.reread) == (0, 0, None)


async def test_an_account_without_claim_status_is_read_with_everyone_unpartitioned() -> None:
    world = mixed_world(absent_claim=True)  # the counts of the partitions fall one short of the total
    ids, split, single = await read_ids(world)
    nobody = next(a for a, u in world.users.items() if u.claim_status is None)
    assert nobody in ids and set(ids) == set(single) and len(ids) == len(set(ids))
    assert [p.name for p in split.stats.partitions] == ["all"]
    assert sum(split.stats.partitions[0].requests.values()) <= 6  # 436 users from both ends


class After(httpx.AsyncBaseTransport):
    """The simulator, changed once behind the reader's back right after the first request `when` picks."""

    def __init__(self, inner: httpx.AsyncBaseTransport, when: Callable[[dict[str, Any]], bool],
                 then: Callable[[], None]) -> None:
        self.inner, self.when, self.then, self.done = inner, when, then, False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = json.loads(request.content) if request.content else {}
        if not self.done and request.url.path.endswith("/users/search") and self.when(body):
            self.done = True
            self.then()
        return response


def chain(claim: str, direction: str) -> Callable[[dict[str, Any]], bool]:
    return lambda body: (body.get("claimStatus") == claim and "cursor" not in body
                         and body.get("sortBy", [{}])[0].get("direction") == direction)


def moving_world(managed: str = "CP") -> tuple[CloudWorld, str]:
    """Managed: 200 each of the `managed` nickname prefixes; unmanaged: B000-B149 and M000-M149; the mover
    K sorts in the middle of both (with "CP") or first among the managed (with "PX")."""
    users = [person(f"{p}{i:03d} Person", f"{p.lower()}{i}@example.com") for p in managed for i in range(200)]
    users += [person(f"{p}{i:03d} Person", f"{p.lower()}{i}@gmail.test", claim_status="unmanaged")
              for p in "BM" for i in range(150)]
    users.append(person("K Mover", "k@gmail.test", claim_status="unmanaged"))
    world = CloudWorld.from_scenario({"org_id": ORG, "api_keys": [ORG_KEY], "users": users})
    return world, next(a for a, u in world.users.items() if u.name == "K Mover")


def move(world: CloudWorld, account: str, claim: str) -> Callable[[], None]:
    def then() -> None:
        world.users[account].claim_status = claim
        world.record("claim", account_id=account)
    return then


def transport(world: CloudWorld, when: Callable[[dict[str, Any]], bool], then: Callable[[], None]) -> ContractTransport:
    app = build_app(dc=DcWorld(), cloud=world, settings=SimSettings())
    return ContractTransport(After(httpx.ASGITransport(app=app), when, then))


async def test_a_user_read_by_two_partitions_is_handed_on_once() -> None:
    world, mover = moving_world("PX")
    world.users[mover].claim_status = "managed"  # first in the managed asc order: read by its first page
    moved = transport(world, chain("managed", "asc"), move(world, mover, "unmanaged"))  # then mid-unmanaged
    ids, split, single = await read_ids(world, moved)
    assert split.stats.duplicates == 1  # read as managed, then again as unmanaged: detected, dropped
    assert ids.count(mover) == 1 and len(ids) == len(set(ids)) and set(ids) == set(single)
    # K counted towards unmanaged's count, taken before K joined: its pair stopped one of its own users
    # short, which the closing count caught and the re-read found
    assert split.stats.reread == "1 of 701 users unread"


async def test_a_user_every_chain_missed_is_found_by_the_closing_count() -> None:
    world, mover = moving_world()  # K leaves unmanaged before its chains reach it, joins managed behind theirs
    moved = transport(world, chain("unmanaged", "asc"), move(world, mover, "managed"))
    ids, split, single = await read_ids(world, moved)
    assert split.stats.reread == "1 of 701 users unread"
    assert mover in ids and len(ids) == len(set(ids)) and set(ids) == set(single)
    assert split.stats.reread_requests == 8  # the whole directory again, one chain: the price of a rare race


@pytest.mark.parametrize("absent_claim", [False, True])
async def test_the_plan_is_the_same_at_concurrency_1_and_8(absent_claim: bool) -> None:
    digests, prints = set(), set()
    for concurrency in (1, 8):
        r = rig(mixed_world(absent_claim=absent_claim), concurrency=concurrency)
        actual = await r.target.fetch(ALL)
        await r.target.aclose()
        desired = DesiredState.build([DesiredUser("a1@other.test"), DesiredUser("new@example.com")])
        plan = diff(desired, actual, scope=ALL, policy=Policy(absent=AbsentPolicy.DELETE), target={}, now=NOW)
        digests.add(plan.digest)
        prints.add(fingerprint(actual, ALL))
        r.contract.check()
    assert len(digests) == 1 and len(prints) == 1


async def test_without_user_counts_the_directory_is_read_as_one_chain() -> None:
    world = mixed_world()
    r = rig(world)
    r.api.faults.append(Fault("GET", "/users/count", 403, times=19))  # e.g. a key the count is refused to
    split = SplitRead(r.target.reader, DEFAULT_DIRECTORY, {"expand": USER_EXPAND})
    ids = [item.account_id async for page in split.pages() for item in page]
    await r.target.aclose()
    assert split.stats.reread == "users/count unavailable" and split.stats.partitions == []
    assert len(ids) == len(set(ids)) == sum(1 for u in world.users.values() if u.membership)
    assert split.stats.reread_requests == 5  # the single chain of before, not a failed plan
    r.contract.check()


class Undercount(httpx.AsyncBaseTransport):
    """The simulator behind a gateway whose users/count says 350 fewer managed active users than search
    returns (the partitions still add up), to prove a count alone never stops a pair."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        query = dict(request.url.params)
        if request.url.path.endswith("/users/count") and query in (
                {}, {"claimStatus": "managed", "accountStatus": "active", "membershipStatus": "active"}):
            await response.aread()
            count = json.loads(response.content)["count"] - 350
            return httpx.Response(200, json={"count": count}, headers={"content-type": "application/json"})
        return response


async def test_a_count_lower_than_the_search_does_not_stop_a_pair_before_its_chains_meet() -> None:
    world = mixed_world(more=222)  # 491 managed active users not suspended, counted as 141
    app = build_app(dc=DcWorld(), cloud=world, settings=SimSettings())
    ids, split, single = await read_ids(world, ContractTransport(Undercount(httpx.ASGITransport(app=app))))
    assert set(ids) == set(single) and len(ids) == len(set(ids))
    big = next(p for p in split.stats.partitions if p.name == "managed/active/active")
    assert (big.count, len(big.seen), big.met) == (141, 491, True)
