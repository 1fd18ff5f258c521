"""The simulated Okta org: users (8 statuses), groups with user members, API tokens, service apps.

Built from a scenario's `okta:` section (`from_scenario`) or generated (`generate`); ids sort in
creation order, which is the order lists are served in and what the `after` cursor compares against.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconcile.sim.draw import memberships as draw_memberships
from reconcile.sim.sections import At, plain, unknown_keys

STATUSES = ("STAGED", "PROVISIONED", "ACTIVE", "RECOVERY", "LOCKED_OUT", "PASSWORD_EXPIRED", "SUSPENDED",
            "DEPROVISIONED")
GROUP_TYPES = ("OKTA_GROUP", "APP_GROUP", "BUILT_IN")
READ_SCOPES = ("okta.users.read", "okta.groups.read")
EPOCH = "2025-01-01T00:00:00.000Z"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # ASCII order: sorts as numbers do

TOP_KEYS = {"org_url", "api_tokens", "service_apps", "rate_limits", "users", "groups"}
APP_KEYS = {"client_id", "public_keys", "scopes"}
USER_KEYS = {"id", "login", "email", "first_name", "last_name", "status", "groups"}
GROUP_KEYS = {"id", "name", "description", "type", "members"}
LIMIT_KEYS = {"users", "groups", "token", "concurrency"}



def okta_id(prefix: str, number: int) -> str:
    """A 20-character Okta-style id (`00u…` users, `00g…` groups) that sorts in `number` order."""
    digits = ""
    for _ in range(10):
        number, rest = divmod(number, 62)
        digits = _ALPHABET[rest] + digits
    return f"{prefix}{'0' * 7}{digits}"


@dataclass(slots=True)
class OktaUser:
    id: str
    login: str
    email: str
    first_name: str
    last_name: str
    status: str = "ACTIVE"


@dataclass(slots=True)
class OktaGroup:
    id: str
    name: str
    description: str = ""
    type: str = "OKTA_GROUP"
    members: list[str] = field(default_factory=list)  # user ids, sorted


@dataclass(frozen=True, slots=True)
class ServiceApp:
    """An OAuth service app: its registered public keys (PEM or JWK) and the Okta scopes granted to it."""

    client_id: str
    public_keys: tuple[Any, ...]
    scopes: tuple[str, ...] = READ_SCOPES


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests per minute per bucket (Okta's defaults for /api/v1/users and /api/v1/groups) and the
    org-wide concurrency limit (75 simultaneous transactions)."""

    users: int = 600
    groups: int = 500
    token: int = 600
    concurrency: int = 75


@dataclass(slots=True)
class OktaWorld:
    users: dict[str, OktaUser] = field(default_factory=dict)
    groups: dict[str, OktaGroup] = field(default_factory=dict)
    api_tokens: set[str] = field(default_factory=set)
    service_apps: dict[str, ServiceApp] = field(default_factory=dict)
    rate_limits: RateLimits = RateLimits()
    org_url: str | None = None  # when set, client assertions must name `{org_url}/oauth2/v1/token`
    by_login: dict[str, str] = field(default_factory=dict)
    access_tokens: dict[str, tuple[str, frozenset[str], float]] = field(default_factory=dict)  # client, scopes, expiry
    _user_ids: list[str] = field(default_factory=list)
    _group_ids: list[str] = field(default_factory=list)

    def add_user(self, user: OktaUser) -> OktaUser:
        if user.id in self.users or user.login.lower() in self.by_login:
            raise ValueError(f"user {user.login!r} is already in the Okta org")
        self.users[user.id] = user
        self.by_login[user.login.lower()] = user.id
        bisect.insort(self._user_ids, user.id)
        return user

    def add_group(self, group: OktaGroup) -> OktaGroup:
        if group.id in self.groups:
            raise ValueError(f"group id {group.id!r} is already in the Okta org")
        self.groups[group.id] = group
        bisect.insort(self._group_ids, group.id)
        return group

    def user_ids(self) -> list[str]:
        return self._user_ids

    def group_ids(self) -> list[str]:
        return self._group_ids

    def to_json(self) -> dict[str, Any]:
        return {
            "users": [{"id": u.id, "login": u.login, "status": u.status} for u in map(self.users.get, self._user_ids)
                      if u is not None],
            "groups": [{"id": g.id, "name": g.name, "type": g.type, "members": len(g.members)}
                       for g in map(self.groups.get, self._group_ids) if g is not None],
        }

    @classmethod
    def from_scenario(cls, node: Mapping[str, Any], at: At) -> OktaWorld:
        """The scenario's `okta:` section; each problem goes to `report(node, key, message)`."""
        unknown_keys(node, TOP_KEYS, "okta", at)
        world = cls(org_url=str(node["org_url"]).rstrip("/") if node.get("org_url") else None)
        world.api_tokens = {str(t) for t in node.get("api_tokens") or []}
        limits = node.get("rate_limits") or {}
        unknown_keys(limits, LIMIT_KEYS, "okta.rate_limits", at)
        try:
            world.rate_limits = RateLimits(**{k: int(v) for k, v in limits.items() if k in LIMIT_KEYS})
        except (TypeError, ValueError):
            at(node, "rate_limits", "okta.rate_limits values are whole numbers (requests per minute)")
        for item in node.get("service_apps") or []:
            unknown_keys(item, APP_KEYS, "an okta service app", at)
            if not item.get("client_id") or not item.get("public_keys"):
                at(item, None, "an okta service app needs a client_id and public_keys (PEM or JWK)")
                continue
            scopes = tuple(str(s) for s in item.get("scopes") or READ_SCOPES)
            world.service_apps[str(item["client_id"])] = ServiceApp(
                str(item["client_id"]), tuple(plain(k) for k in item["public_keys"]), scopes)
        memberships: list[tuple[Any, str, str]] = []  # (node, user login, group name)
        for i, item in enumerate(node.get("users") or []):
            unknown_keys(item, USER_KEYS, "an okta user", at)
            if not item.get("login"):
                at(item, None, "an okta user needs a login")
                continue
            status = str(item.get("status", "ACTIVE"))
            if status not in STATUSES:
                at(item, "status", f"okta status is one of {', '.join(STATUSES)}, not {status!r}")
            login = str(item["login"])
            first, _, last = login.split("@", maxsplit=1)[0].partition(".")
            user = OktaUser(id=str(item.get("id") or okta_id("00u", i + 1)), login=login,
                            email=str(item.get("email") or login),
                            first_name=str(item.get("first_name") or first.title()),
                            last_name=str(item.get("last_name") or last.title() or "User"), status=status)
            try:
                world.add_user(user)
            except ValueError as exc:
                at(item, "login", str(exc))
                continue
            memberships += [(item, login, str(g)) for g in item.get("groups") or []]
        names: dict[str, str] = {}
        for j, item in enumerate(node.get("groups") or []):
            unknown_keys(item, GROUP_KEYS, "an okta group", at)
            if not item.get("name"):
                at(item, None, "an okta group needs a name")
                continue
            kind = str(item.get("type", "OKTA_GROUP"))
            if kind not in GROUP_TYPES:
                at(item, "type", f"okta group type is one of {', '.join(GROUP_TYPES)}, not {kind!r}")
            group = OktaGroup(id=str(item.get("id") or okta_id("00g", j + 1)), name=str(item["name"]),
                              description=str(item.get("description") or ""), type=kind)
            try:
                world.add_group(group)
            except ValueError as exc:
                at(item, "name", str(exc))
                continue
            names[group.name] = group.id
            memberships += [(item, str(m), group.name) for m in item.get("members") or []]
        for owner, login, name in memberships:
            user_id = world.by_login.get(login.lower())
            if user_id is None:
                at(owner, None, f"okta member {login!r} is not a user of this org")
            elif name not in names:
                at(owner, None, f"okta group {name!r} is not a group of this org")
            elif user_id not in world.groups[names[name]].members:
                bisect.insort(world.groups[names[name]].members, user_id)
        return world

    @classmethod
    def generate(cls, users: int, groups: int, memberships: int, seed: int = 1, *,
                 api_token: str = "sim-okta-token", rate_limits: RateLimits | None = None) -> OktaWorld:
        """A deterministic org: `user000001@example.com`…, groups `team-0000`…, ~`memberships` members.

        Statuses: 90 % ACTIVE, the rest spread over the other seven. Rate limits default to ones a
        benchmark does not hit (1,000,000 a minute; concurrency 75 as in Okta).
        """
        if users < 1 or groups < 1:
            raise ValueError("a generated Okta org needs at least 1 user and 1 group")
        rng = random.Random(seed)
        world = cls(api_tokens={api_token},
                    rate_limits=rate_limits or RateLimits(users=1_000_000, groups=1_000_000, token=1_000_000))
        others = [s for s in STATUSES if s != "ACTIVE"]
        ids = [okta_id("00u", i + 1) for i in range(users)]
        for i, user_id in enumerate(ids):
            roll = rng.random()
            status = "ACTIVE" if roll < 0.9 else others[int((roll - 0.9) * 10 * len(others)) % len(others)]
            name = f"user{i + 1:06d}"
            world.users[user_id] = OktaUser(user_id, f"{name}@example.com", f"{name}@example.com", "User",
                                            f"{i + 1:06d}", status)
            world.by_login[f"{name}@example.com"] = user_id
        world._user_ids = ids
        for j, numbers in enumerate(draw_memberships(rng, users, groups, memberships)):
            group_id = okta_id("00g", j + 1)
            world.groups[group_id] = OktaGroup(group_id, f"team-{j:04d}", members=sorted(ids[n] for n in numbers))
            world._group_ids.append(group_id)
        return world



