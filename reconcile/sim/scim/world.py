"""The simulated SCIM directory: users (`active`, emails, externalId), groups whose members are users or groups.

Built from a directory document (`from_directory`: desired/examples/scim/directory.json's shape) or generated
(`generate`); ids are UUID-shaped and deterministic, and lists are served in creation order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from reconcile.sim.draw import memberships as draw_memberships

SCIM_TOKEN = "sim-scim-token"  # the bearer token of a generated directory
MAX_RESULTS = 1000  # the page-size cap (ServiceProviderConfig filter.maxResults), as scim2-server's default
BASE = "\x00base\x00"  # where the base URL goes in pre-encoded members (no URL holds a NUL)
ENCODED_BASE = msgspec.json.encode(BASE)[1:-1]
MEMBER_FIELDS = ("value", "$ref", "type", "display")  # a group member's sub-attributes, in the order rendered
# the members' forms encoded at generation: whole, and `attributes=members.value,members.type` (RFC 7644 §3.9), what
# a reader that needs only the memberships asks (ours does); another is encoded on its first request
PRE_ENCODED = (MEMBER_FIELDS, ("value", "type"))


def scim_id(kind: int, number: int) -> str:
    """A UUID-shaped id, deterministic: kind 1 users, 2 groups."""
    return f"{kind:08x}-0000-4000-8000-{number:012x}"


@dataclass(slots=True)
class ScimUser:
    id: str
    user_name: str
    active: bool | None = True  # None: the attribute is absent (RFC 7643 gives it no default)
    external_id: str | None = None
    display_name: str | None = None
    emails: tuple[tuple[str, str, bool], ...] = ()  # (value, type, primary)


@dataclass(slots=True)
class ScimGroup:
    id: str
    display_name: str
    external_id: str | None = None
    members: list[tuple[str, str]] = field(default_factory=list)  # (id, "User" | "Group"), in the order added


@dataclass(slots=True)
class ScimWorld:
    """The directory, its bearer tokens and how the server behaves (page cap, members on lists, a rate limit)."""

    users: dict[str, ScimUser] = field(default_factory=dict)  # insertion order = list order
    groups: dict[str, ScimGroup] = field(default_factory=dict)
    tokens: frozenset[str] = frozenset({SCIM_TOKEN})
    max_results: int = MAX_RESULTS
    members_on_list: bool = True  # False: GET /Groups omits `members` (INDIGO IAM, graphql-hive): read per group
    rate_limit: float = 0.0  # requests per second per token (burst of the same size); 0: unlimited
    _lists: dict[str, list[Any]] = field(default_factory=dict)  # list order, kept while the counts stay
    revision: int = 0  # bumped by every change (`changed()`): it invalidates the pre-encoded members
    _members: dict[tuple[str, tuple[str, ...]], tuple[tuple[int, int], bytes]] = field(default_factory=dict)

    def user_list(self) -> list[ScimUser]:
        """The users in list order (cached: a 100,000-user list is not rebuilt for every page)."""
        return self._ordered("users", self.users)

    def group_list(self) -> list[ScimGroup]:
        return self._ordered("groups", self.groups)

    def _ordered(self, name: str, items: dict[str, Any]) -> list[Any]:
        cached = self._lists.get(name)
        if cached is None or len(cached) != len(items):
            cached = self._lists[name] = list(items.values())
        return cached

    def changed(self) -> None:
        """Say that users or groups changed (a member, a user replaced): pre-encoded members and lists are stale."""
        self.revision += 1
        self._lists.clear()

    def members_json(self, group: ScimGroup, keep: tuple[str, ...] = MEMBER_FIELDS) -> bytes:
        """The JSON array of `group.members` with the sub-attributes `keep` (of value, $ref, type, display; `$ref`
        holding `BASE` for the base URL): encoded once per revision, since a page of 100 groups lists ~20,000
        members (~30 ms to render each time, on the core the reader shares)."""
        version = (self.revision, len(group.members))
        hit = self._members.get((group.id, keep))
        if hit is not None and hit[0] == version:
            return hit[1]
        user_of, group_of = self.users.get, self.groups.get
        listed = []
        ref, display = "$ref" in keep, "display" in keep
        for mid, kind in group.members:
            member = {"value": mid, "$ref": f"{BASE}/{kind}s/{mid}", "type": kind} if ref else \
                {"value": mid, "type": kind}
            if display:  # a lookup per member: what makes rendering slow
                other = user_of(mid) if kind == "User" else None
                member["display"] = other.user_name if other is not None else (
                    g.display_name if (g := group_of(mid)) else mid)
            listed.append(member if keep == MEMBER_FIELDS else {k: member[k] for k in keep})
        body = msgspec.json.encode(listed)
        self._members[(group.id, keep)] = (version, body)
        return body

    def add_user(self, user: ScimUser) -> ScimUser:
        if user.id in self.users or user.id in self.groups:
            raise ValueError(f"SCIM id {user.id!r} is taken")
        self.users[user.id] = user
        self.changed()
        return user

    def add_group(self, group: ScimGroup) -> ScimGroup:
        if group.id in self.groups or group.id in self.users:
            raise ValueError(f"SCIM id {group.id!r} is taken")
        self.groups[group.id] = group
        self.changed()
        return group

    def to_json(self) -> dict[str, Any]:
        return {"users": [{"id": u.id, "userName": u.user_name, "active": u.active} for u in self.users.values()],
                "groups": [{"id": g.id, "displayName": g.display_name, "members": len(g.members)}
                           for g in self.groups.values()]}

    @classmethod
    def from_directory(cls, document: Mapping[str, Any], *, token: str = SCIM_TOKEN,
                       max_results: int = MAX_RESULTS) -> ScimWorld:
        """`{"users": [SCIM User JSON...], "groups": [{"displayName", "users": [userName], "groups": [name]}]}`:
        the document desired/examples/scim/world.py seeds scim2-server with (ValueError on an unknown name)."""
        world = cls(tokens=frozenset({token}), max_results=max_results)
        ids: dict[str, str] = {}
        for i, item in enumerate(document.get("users") or ()):
            emails = tuple((str(e["value"]), str(e.get("type", "work")), bool(e.get("primary", False)))
                           for e in item.get("emails") or ())
            active = item.get("active")
            user = world.add_user(ScimUser(scim_id(1, i + 1), str(item["userName"]),
                                           None if active is None else bool(active), item.get("externalId"),
                                           item.get("displayName"), emails))
            ids[user.user_name] = user.id
        groups = list(document.get("groups") or ())
        for j, item in enumerate(groups):
            group = world.add_group(ScimGroup(scim_id(2, j + 1), str(item["displayName"]), item.get("externalId")))
            ids[group.display_name] = group.id
        for item in groups:
            group = world.groups[ids[str(item["displayName"])]]
            for kind, names in (("User", item.get("users") or ()), ("Group", item.get("groups") or ())):
                for name in names:
                    if name not in ids:
                        raise ValueError(f"SCIM group {group.display_name!r}: member {name!r} is not in the directory")
                    group.members.append((ids[name], kind))
        world.changed()
        return world

    @classmethod
    def generate(cls, users: int, groups: int, memberships: int, seed: int = 1, *, token: str = SCIM_TOKEN,
                 nested: int = 0) -> ScimWorld:
        """A deterministic directory: `user000001` (user000001@example.com)…, groups `team-0000`…, about
        `memberships` user memberships spread at random; every tenth user inactive. `nested`: that many groups
        get the next group as a member (groups in groups; the last of them contains the first: a cycle)."""
        if users < 1 or groups < 1:
            raise ValueError("a generated SCIM directory needs at least 1 user and 1 group")
        rng = random.Random(seed)
        world = cls(tokens=frozenset({token}))
        user_ids = [scim_id(1, i + 1) for i in range(users)]
        for i, uid in enumerate(user_ids):
            name = f"user{i + 1:06d}"
            world.users[uid] = ScimUser(uid, name, i % 10 != 9, f"emp-{i + 1:06d}", f"User {i + 1:06d}",
                                        ((f"{name}@example.com", "work", True),))
        for j, numbers in enumerate(draw_memberships(rng, users, groups, memberships)):
            gid = scim_id(2, j + 1)
            listed = [(user_ids[n], "User") for n in sorted(numbers)]
            world.groups[gid] = ScimGroup(gid, f"team-{j:04d}", members=listed)
        order, chained = list(world.groups.values()), min(nested, groups)
        for j in range(chained):  # team-0000 contains team-0001 ... contains the last, which contains team-0000
            order[j].members.append((order[(j + 1) % chained].id, "Group"))
        for group in order:  # encoded now, as a server's index is built before it serves, not during a read
            for keep in PRE_ENCODED:
                world.members_json(group, keep)
        return world
