"""(d) The planner alone, no I/O: 100,000 users, 2,000 groups, 400,000 memberships, ~1% drift."""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from reconcile.diff import diff
from reconcile.model import (
    ActualState,
    DesiredState,
    DesiredUser,
    Globs,
    Group,
    Policy,
    Scope,
    Status,
    User,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)  # a fixed planning time: benchmarks compare runs


def world(users: int, groups: int, memberships: int, seed: int = 1) -> tuple[DesiredState, ActualState]:
    """An actual state and a desired state that differs from it in about 1% of users."""
    rnd = random.Random(seed)
    names = [f"team-{i:04}" for i in range(groups)]
    people = [
        User(ref=f"{i:032x}", username=f"user{i:06}", email=f"user{i:06}@example.com",
             status=Status.DISABLED if i % 50 == 0 else Status.ACTIVE)
        for i in range(users)
    ]
    members: dict[str, set[str]] = {g: set() for g in names}
    groups_of: dict[str, set[str]] = {}
    for _ in range(memberships):
        u = people[rnd.randrange(users)]
        g = names[rnd.randrange(groups)]
        members[g].add(u.ref)
        groups_of.setdefault(u.ref, set()).add(g)
    actual = ActualState(
        users={u.ref: u for u in people},
        groups={g: Group(g, ref=g) for g in names},
        members={g: frozenset(refs) for g, refs in members.items()},
    )
    wanted = []
    for i, u in enumerate(people):
        if i % 200 == 7:
            continue  # absent: disabled by policy
        gs = set(groups_of.get(u.ref, ()))
        if i % 100 == 3:
            gs.add(names[rnd.randrange(groups)])
        if i % 100 == 5 and gs:
            gs.remove(min(gs))  # not set.pop(): which element it gives depends on PYTHONHASHSEED
        wanted.append(DesiredUser(key=u.email or "", status=Status.ACTIVE, groups=frozenset(gs)))
    return DesiredState.build(wanted), actual


def run(users: int = 100_000, groups: int = 2_000, memberships: int = 400_000, repeat: int = 3) -> dict[str, Any]:
    desired, actual = world(users, groups, memberships)
    scope = Scope(users=Globs(("*",)), groups=Globs(("team-*",)))
    times, actions, digest = [], 0, ""
    for _ in range(repeat):
        # Timed: all `reconcile plan` does between both states in memory and a plan ready to write —
        # identity matching, the decisions, policies, ordering, both state digests and the plan's own.
        start = time.perf_counter()
        plan = diff(desired, actual, scope=scope, policy=Policy(), target={"type": "bench"}, now=NOW)
        digest = plan.digest
        times.append(time.perf_counter() - start)
        actions = len(plan.actions)
    return {"name": "planner alone (no I/O)", "users": users, "groups": groups, "memberships": memberships,
            "median_s": statistics.median(times), "runs": [round(t, 3) for t in times], "actions": actions,
            "digest": digest}
