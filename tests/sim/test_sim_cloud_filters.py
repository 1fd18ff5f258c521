"""The simulated Organizations users/search filters the split Cloud read relies on: `sortBy` (nick_name,
asc/desc), `claimStatus` x `accountStatus` counts that add up, an account without `claimStatus`.
Every answer is checked against the Organizations document."""

from __future__ import annotations

from typing import Any

from reconcile.sim.atlassian_cloud.world import CloudWorld
from tests.sim.test_sim_fidelity import DIR, exchange
from tests.targets.test_cloud_split import mixed_world

COUNT = f"{DIR}/users/count"
SEARCH = f"{DIR}/users/search"


def order(direction: str) -> dict[str, object]:
    return {"sortBy": [{"field": "nick_name", "direction": direction}], "limit": 100}


def test_sort_by_nick_name_orders_both_ways_and_desc_is_the_exact_reverse() -> None:
    world = mixed_world()
    up = {**order("asc"), "claimStatus": "unmanaged", "accountStatus": ["active"]}
    down = {**order("desc"), "claimStatus": "unmanaged", "accountStatus": ["active"]}
    answers, transport = exchange(world, [("POST", SEARCH, up), ("POST", SEARCH, down), ("POST", SEARCH, {})])
    assert [a.status_code for a in answers] == [200, 200, 200]
    asc = [u["accountId"] for u in answers[0].json()["data"]]
    desc = [u["accountId"] for u in answers[1].json()["data"]]
    assert len(asc) == len(desc) == 100 and asc[30:] == desc[::-1][:70]  # 130 users: 70 in both, reversed
    nicks = [u["nickname"].casefold() for u in answers[0].json()["data"]]
    assert nicks == sorted(nicks)
    assert transport.violations == []


def test_a_malformed_sort_by_is_a_documented_400() -> None:
    bad = [{"sortBy": [{"field": "email", "direction": "asc"}]},
           {"sortBy": [{"field": "nick_name", "direction": "up"}]},
           {"sortBy": {"field": "nick_name", "direction": "asc"}}]
    answers, transport = exchange(mixed_world(), [("POST", SEARCH, b) for b in bad])
    assert [a.status_code for a in answers] == [400, 400, 400]
    assert all("sortBy" in a.json()["errors"][0]["detail"] for a in answers)
    assert len(transport.violations) == 3  # the requests break the document; the 400s answering them do not
    assert all(": request: request body $.sortBy" in v for v in transport.violations)


def test_partition_counts_add_up_to_the_total_unless_a_claim_status_is_absent() -> None:
    parts = [f"?claimStatus={c}&accountStatus={a}" for c in ("managed", "unmanaged")
             for a in ("active", "inactive", "closed")]
    for absent, short in ((False, 0), (True, 1)):
        answers, transport = exchange(mixed_world(absent_claim=absent),
                                      [("GET", COUNT, None), *(("GET", COUNT + q, None) for q in parts),
                                       ("POST", SEARCH, {"searchTerm": "nobody"})])
        total, *counts = [a.json()["count"] for a in answers[:-1]]
        assert all(counts) and total - sum(counts) == short
        found = answers[-1].json()["data"]
        assert [("claimStatus" in u) for u in found] == ([False] if absent else [])  # absent, not null
        assert transport.violations == []


def test_status_filters_answered_from_the_index_select_exactly_what_a_scan_of_every_user_selects() -> None:
    """Searches and counts filtered by statuses only are decided once per kind of user (matching.py);
    every combination, in one directory or all, equals the per-user scan, also after a write."""
    from itertools import product

    from reconcile.sim.atlassian_cloud.matching import matching
    from reconcile.sim.atlassian_cloud.shapes import user_matches
    from reconcile.sim.atlassian_cloud.world import DEFAULT_DIRECTORY

    world = mixed_world(absent_claim=True)
    world.directories["d2"] = "Second"
    for i, user in enumerate(world.users.values()):  # two directories, mixed memberships, some in neither
        if i % 5 == 0:
            user.membership["d2"] = "suspended" if i % 10 else "active"
        elif i % 23 == 0:
            user.membership = {"d2": "active"}
        elif i % 29 == 0:
            user.membership = {}
    filters = product((None, "managed", "unmanaged"), (None, ["active"], ["inactive", "closed"]),
                      (None, ["active"], ["suspended", "no_membership"]), (None, ["deactivated", "for_deletion"]))

    def scan(body: dict[str, Any], dirs: list[str], everywhere: bool) -> list[str]:
        return [u.account_id for u in world.users.values()
                if (any(d in u.membership for d in dirs) or (everywhere and u.claim_status == "managed"))
                and user_matches(world, u, body, dirs)]

    def check() -> set[int]:
        sizes = set()
        for claim, account, membership, status in filters:
            body = {k: v for k, v in (("claimStatus", claim), ("accountStatus", account),
                                      ("membershipStatus", membership), ("status", status)) if v is not None}
            for dirs, everywhere in (([DEFAULT_DIRECTORY], False), (list(world.directories), True),
                                     (["d2"], False)):
                want = scan(body, dirs, everywhere)
                assert matching(world, body, dirs, everywhere) == want, (body, dirs)
                sizes.add(len(want))
        return sizes

    assert len(check()) > 20  # the combinations select many different sets, not all or nothing
    mover = next(u for u in world.users.values() if u.membership.get("d2") == "suspended")
    mover.membership["d2"] = "active"
    world.record("restore", account_id=mover.account_id, directory="d2")
    check()


def test_a_generated_world_starts_with_its_nickname_order_and_group_index_built() -> None:
    """Built at the simulator's start, not on a plan's first sorted search; what they answer is unchanged."""
    world = CloudWorld.generate(40, 4, 120, seed=5)
    assert world._by_nickname is not None and world._index is not None
    assert world._kinds is not None and world._kinds.by_nickname is not None  # the counts' and searches' index
    ordered, index = list(world.by_nickname()), {a: world.groups_of(a, world.directories) for a in world.users}
    world._by_nickname = world._index = None  # what a lazily built world computes
    assert world.by_nickname() == ordered
    assert {a: world.groups_of(a, world.directories) for a in world.users} == index


def test_indexed_counts_and_sorted_cells_are_what_a_pass_over_every_user_selects() -> None:
    """`matching.count` and the nickname-ordered `matching` (per kind, no pass over the users) against the plain
    filter over every user, for every claim x account x membership cell and both directions, also after a change."""
    from itertools import product

    from reconcile.sim.atlassian_cloud import matching
    from reconcile.sim.atlassian_cloud.shapes import ordered, user_matches

    def brute(world: CloudWorld, body: dict[str, Any]) -> list[str]:
        dirs = list(world.directories)
        return [u.account_id for u in world.users.values()
                if (any(d in u.membership for d in dirs) or u.claim_status == "managed")
                and user_matches(world, u, body, dirs)]

    def check(world: CloudWorld) -> int:
        cells = 0
        for claim, account, membership in product(("managed", "unmanaged"), ("active", "inactive", "closed"),
                                                  ("active", "suspended", "no_membership")):
            body: dict[str, Any] = {"claimStatus": claim, "accountStatus": [account], "membershipStatus": [membership]}
            want, dirs = brute(world, body), list(world.directories)
            assert matching.count(world, body, dirs, True) == len(want)
            for direction in ("asc", "desc"):
                sorted_body = {**body, **order(direction)}
                assert matching.matching(world, sorted_body, dirs, True, direction) == ordered(world, want, sorted_body)
            cells += bool(want)
        return cells

    world = mixed_world(absent_claim=True)
    assert check(world) >= 6  # several cells hold users: the comparison is not of empty lists
    suspended = next(u for u in world.users.values() if u.account_status == "active" and u.claim_status == "managed")
    suspended.account_status = "inactive"
    world.record("deactivate", account_id=suspended.account_id)  # a new version: the index is built again
    assert check(world) >= 6
    assert suspended.account_id in matching.matching(world, {"accountStatus": ["inactive"], **order("asc")},
                                                     list(world.directories), True, "asc")
