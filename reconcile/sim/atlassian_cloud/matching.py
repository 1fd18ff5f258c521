"""Which users a search or count selects when it filters by statuses only: one pass over the world per
version (a real server answers these from an index; scanning 100,000 users per query made the simulator
the bottleneck of the split Cloud read: ~0.4 s of CPU per count and per partition's first page). Counts
add up the users of each kind; sorted searches filter one list of every user in nickname order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconcile.sim.atlassian_cloud.shapes import user_matches
from reconcile.sim.atlassian_cloud.world import CloudUser, CloudWorld

# the request fields whose answer depends only on what `Kind` records (user_matches reads nothing else)
STATUS_FILTERS = frozenset({"claimStatus", "accountStatus", "membershipStatus", "status"})
Kind = tuple[tuple[tuple[str, str], ...], str | None, str, str, str]  # membership, claim, account, memb., status


class _Index:
    """Every user's kind (a number) in world order, one user and the number of users of each kind, and, once
    a sorted search asks, every user's kind in nickname order; rebuilt when the world changes."""

    __slots__ = ("by_nickname", "kinds", "rows", "sample", "size", "tally", "version")

    def __init__(self, world: CloudWorld) -> None:
        numbers: dict[Kind, int] = {}
        self.sample: list[CloudUser] = []
        self.tally: list[int] = []
        self.rows: list[tuple[str, int]] = []
        for account, user in world.users.items():
            membership = user.membership_status
            kind: Kind = (tuple(user.membership.items()), user.claim_status, user.account_status, membership,
                          user.status_given(membership))
            number = numbers.get(kind)
            if number is None:
                number = numbers[kind] = len(self.sample)
                self.sample.append(user)
                self.tally.append(0)
            self.tally[number] += 1
            self.rows.append((account, number))
        self.version, self.size = world.version, len(world.users)
        self.by_nickname: list[tuple[str, int]] | None = None

    def nickname_rows(self, world: CloudWorld) -> list[tuple[str, int]]:
        if self.by_nickname is None:
            kind_of = dict(self.rows)
            self.by_nickname = [(account, kind_of[account]) for account in world.by_nickname()]
        return self.by_nickname


def _index(world: CloudWorld) -> _Index:
    held = world._kinds
    if isinstance(held, _Index) and (held.version, held.size) == (world.version, len(world.users)):
        return held
    world._kinds = held = _Index(world)
    return held


def status_only(body: Mapping[str, Any], paging: frozenset[str]) -> bool:
    return all(k in STATUS_FILTERS or k in paging for k in body)


def _chosen(index: _Index, world: CloudWorld, body: dict[str, Any], dirs: list[str], everywhere: bool) -> set[int]:
    """The kinds (numbers) of users in `dirs` (or anywhere, managed, when `everywhere`) that match `body`."""
    return {number for number, u in enumerate(index.sample)
            if (any(d in u.membership for d in dirs) or (everywhere and u.claim_status == "managed"))
            and user_matches(world, u, body, dirs)}


def matching(world: CloudWorld, body: dict[str, Any], dirs: list[str], everywhere: bool,
             direction: str | None = None) -> list[str]:
    """The account ids of users in `dirs` (or anywhere, managed, when `everywhere`) that match `body`, whose
    filters must be `STATUS_FILTERS` only: decided once per kind of user. In world order, or in `sortBy
    nick_name` order when `direction` is given (`shapes.ordered`'s order: `desc` the reverse of `asc`)."""
    index = _index(world)
    chosen = _chosen(index, world, body, dirs, everywhere)
    rows = index.rows if direction is None else index.nickname_rows(world)
    ids = [account for account, _ in rows] if len(chosen) == len(index.sample) else \
        [account for account, number in rows if number in chosen]
    return ids[::-1] if direction == "desc" else ids


def count(world: CloudWorld, body: dict[str, Any], dirs: list[str], everywhere: bool) -> int:
    """How many users `matching` selects, from the number of users of each kind (no pass over the users)."""
    index = _index(world)
    return sum(index.tally[number] for number in _chosen(index, world, body, dirs, everywhere))


def warm(world: CloudWorld) -> None:
    """Build the status index and its nickname order (`CloudWorld.warm`)."""
    _index(world).nickname_rows(world)
