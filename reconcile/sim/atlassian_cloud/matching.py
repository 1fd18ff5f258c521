"""Which users a search or count selects when it filters by statuses only: one pass over the world per
version (a real server answers these from an index; scanning 100,000 users per query made the simulator
the bottleneck of the split Cloud read: ~0.4 s of CPU per count and per partition's first page).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconcile.sim.atlassian_cloud.shapes import user_matches
from reconcile.sim.atlassian_cloud.world import CloudUser, CloudWorld

# the request fields whose answer depends only on what `Kind` records (user_matches reads nothing else)
STATUS_FILTERS = frozenset({"claimStatus", "accountStatus", "membershipStatus", "status"})
Kind = tuple[tuple[tuple[str, str], ...], str | None, str, str, str]  # membership, claim, account, memb., status


def _index(world: CloudWorld) -> tuple[list[tuple[str, Kind]], dict[Kind, CloudUser]]:
    """Every user's kind in world order, and one user of each kind; rebuilt when the world changes."""
    held = world._kinds
    if held is not None and held[:2] == (world.version, len(world.users)):
        return held[2], held[3]
    kinds: dict[Kind, Kind] = {}
    sample: dict[Kind, CloudUser] = {}
    rows = []
    for account, user in world.users.items():
        membership = user.membership_status
        kind: Kind = (tuple(user.membership.items()), user.claim_status, user.account_status, membership,
                      user.status_given(membership))
        kind = kinds.setdefault(kind, kind)
        sample.setdefault(kind, user)
        rows.append((account, kind))
    world._kinds = (world.version, len(world.users), rows, sample)
    return rows, sample


def status_only(body: Mapping[str, Any], paging: frozenset[str]) -> bool:
    return all(k in STATUS_FILTERS or k in paging for k in body)


def matching(world: CloudWorld, body: dict[str, Any], dirs: list[str], everywhere: bool) -> list[str]:
    """The account ids, in world order, of users in `dirs` (or anywhere, managed, when `everywhere`) that
    match `body`, whose filters must be `STATUS_FILTERS` only: decided once per kind of user."""
    rows, sample = _index(world)
    chosen = {kind for kind, u in sample.items()
              if (any(d in u.membership for d in dirs) or (everywhere and u.claim_status == "managed"))
              and user_matches(world, u, body, dirs)}
    if len(chosen) == len(sample):
        return [account for account, _ in rows]
    return [account for account, kind in rows if kind in chosen]
