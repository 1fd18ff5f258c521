"""The simulated Google Workspace account: users (suspended/archived), groups whose members are users,
groups (nesting, cycles allowed so clients can prove they cope) or the whole customer, service accounts.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconcile.sim.draw import memberships as draw_memberships
from reconcile.sim.sections import At, plain, unknown_keys

USER_SCOPE = "https://www.googleapis.com/auth/admin.directory.user.readonly"
GROUP_SCOPE = "https://www.googleapis.com/auth/admin.directory.group.readonly"
READ_SCOPES = (USER_SCOPE, GROUP_SCOPE)
MEMBER_TYPES = ("USER", "GROUP", "CUSTOMER")
ROLES = ("OWNER", "MANAGER", "MEMBER")

TOP_KEYS = {"customer_id", "domain", "service_accounts", "quota", "users", "groups"}
SA_KEYS = {"client_email", "client_id", "public_keys", "scopes", "admin_role"}
USER_KEYS = {"id", "primary_email", "given_name", "family_name", "suspended", "archived", "admin", "org_unit_path"}
GROUP_KEYS = {"id", "email", "name", "description", "members"}
MEMBER_KEYS = {"email", "type", "role"}
QUOTA_KEYS = {"queries_per_minute", "concurrent_requests", "account_concurrent_requests"}



@dataclass(slots=True)
class GUser:
    id: str
    primary_email: str
    given_name: str
    family_name: str
    suspended: bool = False
    archived: bool = False
    admin: bool = False
    org_unit_path: str = "/"


@dataclass(slots=True)
class GMember:
    type: str  # USER | GROUP | CUSTOMER
    ref: str  # user id, group id, or the customer id
    role: str = "MEMBER"


@dataclass(slots=True)
class GGroup:
    id: str
    email: str
    name: str
    description: str = ""
    members: list[GMember] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A service account key's public half, its domain-wide delegation grant (`scopes`), and whether it
    holds an admin role itself (then it may call without `sub`)."""

    client_email: str
    client_id: str
    public_keys: tuple[Any, ...]
    scopes: tuple[str, ...] = READ_SCOPES
    admin_role: bool = False


@dataclass(frozen=True, slots=True)
class Quota:
    queries_per_minute: int = 2400  # per user per project (developers.google.com admin-sdk limits)
    concurrent_requests: int | None = None  # per user: 403 quotaExceeded beyond it
    account_concurrent_requests: int | None = None  # per account: 429 rateLimitExceeded beyond it


@dataclass(slots=True)
class GoogleWorld:
    customer_id: str = "C01simul8"
    domain: str = "example.com"
    users: list[GUser] = field(default_factory=list)  # sorted by primary email
    groups: list[GGroup] = field(default_factory=list)  # sorted by email
    service_accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    quota: Quota = Quota()
    access_tokens: dict[str, tuple[str, str | None, frozenset[str], float]] = field(default_factory=dict)
    user_by_id: dict[str, GUser] = field(default_factory=dict)
    user_by_email: dict[str, GUser] = field(default_factory=dict)
    group_by_id: dict[str, GGroup] = field(default_factory=dict)
    group_by_email: dict[str, GGroup] = field(default_factory=dict)

    def index(self) -> None:
        self.users.sort(key=lambda u: u.primary_email)
        self.groups.sort(key=lambda g: g.email)
        self.user_by_id = {u.id: u for u in self.users}
        self.user_by_email = {u.primary_email: u for u in self.users}
        self.group_by_id = {g.id: g for g in self.groups}
        self.group_by_email = {g.email: g for g in self.groups}

    def group(self, key: str) -> GGroup | None:
        """A group by its id or email (a `groupKey`)."""
        return self.group_by_id.get(key) or self.group_by_email.get(key.lower())

    def to_json(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id, "domain": self.domain,
                "users": [{"primaryEmail": u.primary_email, "suspended": u.suspended, "archived": u.archived}
                          for u in self.users],
                "groups": [{"email": g.email, "members": len(g.members)} for g in self.groups]}

    @classmethod
    def from_scenario(cls, node: Mapping[str, Any], at: At) -> GoogleWorld:
        unknown_keys(node, TOP_KEYS, "google_workspace", at)
        world = cls(customer_id=str(node.get("customer_id") or "C01simul8"),
                    domain=str(node.get("domain") or "example.com"))
        quota = node.get("quota") or {}
        unknown_keys(quota, QUOTA_KEYS, "google_workspace.quota", at)
        try:
            values = {k: None if v is None else int(v) for k, v in quota.items() if k in QUOTA_KEYS}
            world.quota = Quota(int(values.get("queries_per_minute") or 2400), values.get("concurrent_requests"),
                                values.get("account_concurrent_requests"))
        except (TypeError, ValueError):
            at(node, "quota", "google_workspace.quota values are whole numbers")
        for item in node.get("service_accounts") or []:
            unknown_keys(item, SA_KEYS, "a google service account", at)
            if not item.get("client_email") or not item.get("public_keys"):
                at(item, None, "a google service account needs a client_email and public_keys (PEM or JWK)")
                continue
            email = str(item["client_email"])
            world.service_accounts[email] = ServiceAccount(
                email, str(item.get("client_id") or int(hashlib.sha256(email.encode()).hexdigest()[:16], 16)),
                tuple(plain(k) for k in item["public_keys"]),
                tuple(str(s) for s in item.get("scopes") or READ_SCOPES), bool(item.get("admin_role", False)))
        for i, item in enumerate(node.get("users") or []):
            unknown_keys(item, USER_KEYS, "a google user", at)
            if not item.get("primary_email"):
                at(item, None, "a google user needs a primary_email")
                continue
            email = str(item["primary_email"]).lower()
            if email in world.user_by_email:
                at(item, "primary_email", f"google user {email!r} is listed twice")
                continue
            local = email.split("@")[0]
            user = GUser(str(item.get("id") or f"1{i + 1:020d}"), email, str(item.get("given_name") or local.title()),
                         str(item.get("family_name") or "User"), bool(item.get("suspended", False)),
                         bool(item.get("archived", False)), bool(item.get("admin", False)),
                         str(item.get("org_unit_path") or "/"))
            world.users.append(user)
            world.user_by_email[email] = user
        for j, item in enumerate(node.get("groups") or []):
            unknown_keys(item, GROUP_KEYS, "a google group", at)
            if not item.get("email"):
                at(item, None, "a google group needs an email")
                continue
            email = str(item["email"]).lower()
            group = GGroup(str(item.get("id") or f"0{j + 1:014x}"), email, str(item.get("name") or email),
                           str(item.get("description") or ""))
            world.groups.append(group)
            world.group_by_email[email] = group
        for item in node.get("groups") or []:
            if not isinstance(item, Mapping) or not item.get("email"):
                continue
            group = world.group_by_email[str(item["email"]).lower()]
            for member in item.get("members") or []:
                parsed = world._member(member, item, at)
                if parsed is not None:
                    group.members.append(parsed)
        world.index()
        return world

    def _member(self, member: Any, owner: Any, at: At) -> GMember | None:
        spec = dict(member) if isinstance(member, Mapping) else {"email": str(member)}
        unknown_keys(spec, MEMBER_KEYS, "a google group member", at)
        role = str(spec.get("role", "MEMBER"))
        kind = spec.get("type")
        if role not in ROLES or (kind is not None and kind not in MEMBER_TYPES):
            at(owner, "members", f"a member's role is one of {ROLES} and its type one of {MEMBER_TYPES}")
            return None
        if kind == "CUSTOMER":
            return GMember("CUSTOMER", self.customer_id, role)
        email = str(spec.get("email") or "").lower()
        if email in self.user_by_email and kind in (None, "USER"):
            return GMember("USER", self.user_by_email[email].id, role)
        if email in self.group_by_email and kind in (None, "GROUP"):
            return GMember("GROUP", self.group_by_email[email].id, role)
        at(owner, "members", f"google member {email!r} is not a user or group of this account")
        return None

    @classmethod
    def generate(cls, users: int, groups: int, memberships: int, seed: int = 1) -> GoogleWorld:
        """A deterministic account: `user000001@example.com`… (3 % suspended, 1 % archived; user 1 is the
        admin), groups `team-0000@example.com`…; every 20th group also holds the next group (nesting)."""
        if users < 1 or groups < 1:
            raise ValueError("a generated Google account needs at least 1 user and 1 group")
        rng = random.Random(seed)
        world = cls(quota=Quota(queries_per_minute=1_000_000))
        for i in range(users):
            roll = rng.random()
            name = f"user{i + 1:06d}"
            world.users.append(GUser(f"1{i + 1:020d}", f"{name}@example.com", "User", f"{i + 1:06d}",
                                     suspended=roll < 0.03, archived=0.03 <= roll < 0.04, admin=i == 0))
        world.groups = [GGroup(f"0{j + 1:014x}", f"team-{j:04d}@example.com", f"team-{j:04d}")
                        for j in range(groups)]
        drawn = draw_memberships(rng, users, groups, memberships)
        for j, group in enumerate(world.groups):
            group.members = [GMember("USER", world.users[n].id) for n in sorted(drawn[j])]
            if j % 20 == 19 and j + 1 < groups:
                group.members.append(GMember("GROUP", world.groups[j + 1].id))
        world.index()
        return world



