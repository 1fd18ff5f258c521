"""Desired directories generated from a running simulator's world: a target file plus a CSV source.

`drifted(...)` is the simulator's own state with about 1% of users changed (absent, status flipped,
a group added or removed), so a plan has work to do; `memberships(...)` asks for N membership
changes exactly (the apply benchmark); `deletions(...)` for N absent users under `absent: delete`.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.simproc import CLOUD_KEY, CLOUD_ORG, DC_TOKEN

DC = "confluence-dc"
CLOUD = "atlassian-cloud"
HEADER = ["User id", "email", "User name", "User status", "Group name"]


@dataclass(slots=True)
class Person:
    """A user of the desired CSV: `ident` is the DC username or the Cloud account id."""

    ident: str
    email: str | None
    active: bool
    groups: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Desired:
    directory: Path
    env: Mapping[str, str]  # the credentials the target file references
    people: int  # users in the CSV
    managed: tuple[str, ...]  # the managed group names that exist


def people_of(state: Mapping[str, Any], target: str) -> tuple[list[Person], list[str]]:
    """The simulator's world as desired users (exactly what is there) and its managed groups."""
    if target == DC:
        by_name = {u["username"]: u for u in state["users"] if not u["unsynced"]}
        people = {n: Person(n, u.get("email"), bool(u["active"])) for n, u in by_name.items()}
        groups = [g["name"] for g in state["groups"] if g["name"] != "confluence-administrators"]
        for g in state["groups"]:
            if g["name"] in groups:
                for member in g["members"]:
                    if member in people:
                        people[member].groups.add(g["name"])
        return sorted(people.values(), key=lambda p: p.ident), groups
    users = state["users"]
    people = {a: Person(a, u["email"], u["status"] == "active") for a, u in users.items()
              if u["status"] != "not_invited"}
    groups = [g["name"] for g in state["groups"].values()]
    for g in state["groups"].values():
        for member in g["members"]:
            if member in people:
                people[member].groups.add(g["name"])
    return sorted(people.values(), key=lambda p: p.ident), groups


def drifted(people: Sequence[Person], groups: Sequence[str], seed: int = 1) -> list[Person]:
    """About 1% of users changed: 0.5% absent, 1% gain a group, 1% lose one, 0.2% flip status."""
    rnd = random.Random(seed)
    pool = [g for g in groups if g.startswith(("team-", "group-"))] or list(groups)
    out = []
    for i, p in enumerate(people):
        if p.ident == "admin":
            out.append(p)
            continue
        if i % 200 == 7:
            continue  # absent
        q = Person(p.ident, p.email, p.active, set(p.groups))
        if i % 100 == 3:
            q.groups.add(rnd.choice(pool))
        if i % 100 == 5 and q.groups & set(pool):
            q.groups.discard(sorted(q.groups & set(pool))[0])
        if i % 500 == 11:
            q.active = not q.active
        out.append(q)
    return out


def membership_changes(people: Sequence[Person], groups: Sequence[str], changes: int,
                       seed: int = 1) -> list[Person]:
    """Exactly `changes` membership changes (half additions, half removals) on active users."""
    rnd = random.Random(seed)
    pool = sorted(g for g in groups if g.startswith(("team-", "group-")))
    out = [Person(p.ident, p.email, p.active, set(p.groups)) for p in people]
    candidates = [q for q in out if q.active and q.ident != "admin"]
    rnd.shuffle(candidates)
    adds, removes = changes - changes // 2, changes // 2
    for q in candidates:  # one removal and one addition per user at most
        removed = ""
        if removes and q.groups & set(pool):
            removed = sorted(q.groups & set(pool))[0]
            q.groups.discard(removed)
            removes -= 1
        spare = [g for g in pool if g not in q.groups and g != removed]
        if adds and spare:
            q.groups.add(rnd.choice(spare))
            adds -= 1
        if not adds and not removes:
            break
    if adds or removes:
        raise ValueError(f"the world is too small for {changes} membership changes")
    return out


def without(people: Sequence[Person], count: int, *, only: Iterable[str] | None = None) -> list[Person]:
    """All but `count` users (chosen from `only`, in order): absent users for `absent: delete`."""
    allowed = set(only) if only is not None else None
    gone: set[str] = set()
    for p in people:
        if len(gone) == count:
            break
        if p.ident != "admin" and (allowed is None or p.ident in allowed):
            gone.add(p.ident)
    if len(gone) < count:
        raise ValueError(f"only {len(gone)} users can be left out, not {count}")
    return [p for p in people if p.ident not in gone]


def write(directory: Path, target: str, url: str, people: Sequence[Person], managed: Sequence[str], *,
          concurrency: int | None = 8, absent: str = "disable", limits: Mapping[str, int | str] | None = None,
          timeout: float | None = None, max_retries: int | None = None, insecure: bool = False) -> Desired:
    """A desired directory: `reconcile.yaml` (target, scope, policy, a csv source) and `desired.csv`.

    `concurrency`: the target's `http.concurrency`; None leaves it out (the target's default).
    `insecure`: the target's `insecure: true`, for an http:// URL that is not loopback (an in-process app).
    """
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "desired.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER)
        for p in people:
            out.writerow([p.ident, p.email or "", "", "Active" if p.active else "Suspended",
                          ",".join(sorted(p.groups))])
    lim = "".join(f"    {k}: {v!r}\n" if isinstance(v, str) else f"    {k}: {v}\n"
                  for k, v in (limits or {}).items())
    policy = f"policy:\n  absent: {absent}\n" + (f"  limits:\n{lim}" if lim else "")
    http = f"    concurrency: {concurrency}\n" if concurrency is not None else ""
    if timeout is not None:
        http += f"    timeout: {timeout}\n"
    if max_retries is not None:
        http += f"    max_retries: {max_retries}\n"
    http = f"  http:\n{http}" if http else ""
    if insecure:
        http += "  insecure: true\n"
    if target == DC:
        head = (f"target:\n  type: confluence-dc\n  url: {url}\n  auth:\n    token: ${{CONFLUENCE_TOKEN}}\n"
                f'  readonly_groups: ["ldap-*"]\n{http}')
        scope = 'scope:\n  users: ["*"]\n  groups: [confluence-users, "team-*", "ldap-*"]\n'
        env = {"CONFLUENCE_TOKEN": DC_TOKEN}
    else:
        head = (f"target:\n  type: atlassian-cloud\n  org_id: ${{ATLASSIAN_ORG_ID}}\n  auth:\n"
                f"    api_key: ${{ATLASSIAN_ADMIN_KEY}}\n  url: {url}\n{http}")
        scope = 'scope:\n  users: ["*@example.com"]\n  groups: ["group-*"]\n'
        env = {"ATLASSIAN_ORG_ID": CLOUD_ORG, "ATLASSIAN_ADMIN_KEY": CLOUD_KEY}
    sources = "sources:\n  bench:\n    type: csv\n    path: desired.csv\n"
    (directory / "reconcile.yaml").write_text(f"version: 1\n{head}{sources}{scope}{policy}", encoding="utf-8")
    return Desired(directory, env, len(people), tuple(managed))
