"""The simulated Atlassian Cloud organization: directories, users, groups, licences, one Jira site.

Plain mutable state plus the rules the real APIs enforce (managed accounts, IdP-synced objects,
app user limits). `reconcile/sim/atlassian_cloud/routes.py` serves it over HTTP.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from reconcile.sim.atlassian_cloud.wiki import SpaceError, WikiSpace, spaces_from

DEFAULT_ORG = "9a1b2c3d-0000-4000-8000-00000000c10d"
DEFAULT_DIRECTORY = "5d2f0a1e-0000-4000-8000-0000000000d1"

ACCOUNT_STATUSES = ("active", "inactive", "closed")
MEMBERSHIP_STATUSES = ("active", "suspended", "no_membership")
PLATFORM_ROLES = ("atlassian/org-admin", "atlassian/site-admin", "atlassian/user-access-admin",
                  "atlassian/ai-access")


class ScenarioError(ValueError):
    """The `cloud:` section of a scenario is invalid (the message names the entry)."""


@dataclass
class CloudUser:
    account_id: str
    email: str
    name: str
    account_status: str = "active"  # active | inactive (deactivated) | closed
    membership: dict[str, str] = field(default_factory=dict)  # directory id -> active | suspended
    management_source: str | None = "invited"  # invited | synced | None
    claim_status: str | None = "managed"  # managed | unmanaged | None (the field absent)
    platform_roles: list[str] = field(default_factory=list)
    product_access: list[dict[str, str]] = field(default_factory=list)  # {key, id, lastActiveTimestamp}
    for_deletion: bool = False
    added_to_org: str | None = "2024-01-03T09:00:00Z"  # None: unknown (the old user management experience)
    on_site: bool = True  # in the Jira site's user base

    @property
    def membership_status(self) -> str:
        if not self.membership:
            return "no_membership"
        for state in self.membership.values():  # a loop, not all(<generator>): every user of every page asks
            if state != "suspended":
                return "active"
        return "suspended"

    @property
    def status(self) -> str:
        return self.status_given(self.membership_status)

    def status_given(self, membership_status: str) -> str:
        """`status` when `membership_status` is already known (a page of users computes it once per user)."""
        if self.for_deletion:
            return "for_deletion"
        if self.account_status != "active":
            return "deactivated"
        return "not_invited" if membership_status == "no_membership" else membership_status

    def uses(self) -> bool:
        """Whether this user holds licence seats (active in some directory, account active)."""
        return self.account_status == "active" and not self.for_deletion and "active" in self.membership.values()


@dataclass
class CloudGroup:
    id: str
    name: str
    directory: str
    external_synced: bool = False
    products: list[str] = field(default_factory=list)  # product keys this group grants access to
    members: set[str] = field(default_factory=set)  # account ids
    description: str = ""


@dataclass
class CloudWorld:
    """One organization. Mutated by the HTTP handlers; read by tests through `users`/`groups`."""

    org_id: str = DEFAULT_ORG
    api_keys: dict[str, str | None] = field(default_factory=dict)  # key -> owner account id (or None)
    directories: dict[str, str] = field(default_factory=lambda: {DEFAULT_DIRECTORY: "Atlassian"})
    users: dict[str, CloudUser] = field(default_factory=dict)  # account id -> user
    groups: dict[str, CloudGroup] = field(default_factory=dict)  # group id -> group
    licences: dict[str, int] = field(default_factory=dict)  # product key -> user limit
    site_url: str = "https://acme.atlassian.net"
    site_credentials: dict[str, str] = field(default_factory=dict)  # email -> API token
    spaces: list[WikiSpace] = field(default_factory=list)  # the site's Confluence spaces (wiki.py)
    mutations: list[dict[str, Any]] = field(default_factory=list)  # every change, in order
    version: int = 0  # bumped by `record`; keys the handlers' caches
    # How a user's `groups[].id` is written: "bare" (the group's id, as group search gives it) or
    # "ari" (`ari:cloud:identity::group/<id>`, as the Organizations document's example gives it).
    group_ids: str = "bare"
    _index: tuple[int, dict[str, list[CloudGroup]]] | None = field(default=None, repr=False)
    _by_nickname: tuple[int, int, list[str]] | None = field(default=None, repr=False)  # version, size, ids
    _aris: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    _kinds: Any = field(default=None, repr=False)  # matching.py's status index (`_Index`)

    # ---------------------------------------------------------------- queries used by the handlers
    def resource_ari(self, product: str) -> str:
        """The product instance's ARI (`resourceIds` of users/count): one site, so one per product [I]."""
        key = (product, self.site_url)
        cached = self._aris.get(key)
        if cached is None:  # a uuid5 per product per user made a page of users 2x dearer
            cached = self._aris[key] = f"ari:cloud:{product}::site/{_stable_id('site', self.site_url)}"
        return cached

    def seats_used(self, product: str) -> int:
        holders = {m for g in self.groups.values() if product in g.products for m in g.members}
        return sum(1 for a in holders if a in self.users and self.users[a].uses())

    def would_exceed_licence(self, group: CloudGroup, account_id: str) -> str | None:
        """The product whose user limit adding `account_id` to `group` would exceed, if any."""
        user = self.users[account_id]
        for product in group.products:
            limit = self.licences.get(product)
            if limit is None or not user.uses():
                continue
            has = any(account_id in g.members for g in self.groups.values() if product in g.products)
            if not has and self.seats_used(product) >= limit:
                return product
        return None

    def groups_of(self, account_id: str, directories: Iterable[str]) -> list[CloudGroup]:
        if self._index is None or self._index[0] != self.version:
            index: dict[str, list[CloudGroup]] = {}
            for group in self.groups.values():
                for member in group.members:
                    index.setdefault(member, []).append(group)
            self._index = (self.version, index)
        wanted = set(directories)
        return [g for g in self._index[1].get(account_id, ()) if g.directory in wanted]

    def by_nickname(self) -> list[str]:
        """Every account id in `sortBy nick_name asc` order: the nickname (the name's first word)
        case-insensitively, ties by account id [I]; sorted once per version, not once per search."""
        size = len(self.users)
        if self._by_nickname is None or self._by_nickname[:2] != (self.version, size):
            users = self.users
            order = sorted(users, key=lambda a: (users[a].name.split(" ")[0].casefold(), a))
            self._by_nickname = (self.version, size, order)
        return self._by_nickname[2]

    def warm(self) -> None:
        """Build the nickname order, the group index and the status index now, at a generated world's start
        (~0.4 s of CPU at 100,000 users): a plan's counts and first sorted searches paid them otherwise, on its
        longest cursor chain."""
        from reconcile.sim.atlassian_cloud import matching  # it reads this module's types

        self.by_nickname()
        self.groups_of("", ())
        matching.warm(self)

    def record(self, action: str, **details: Any) -> None:
        """Log a change (the mutation log) and invalidate cached views; call after every change."""
        self.version += 1
        self.mutations.append({"action": action, **details})

    def to_json(self) -> dict[str, Any]:
        """A JSON-able view of the whole organization (`GET /_sim/state`, tests)."""
        return {
            "org_id": self.org_id,
            "users": {a: {"email": u.email, "status": u.status, "membership": dict(u.membership),
                          "account_status": u.account_status, "on_site": u.on_site}
                      for a, u in self.users.items()},
            "groups": {g.id: {"name": g.name, "directory": g.directory, "members": sorted(g.members)}
                       for g in self.groups.values()},
        }

    def mutate(self, op: str, args: Mapping[str, Any]) -> Any:
        """A change behind the tool's back (`POST /_sim/mutate` with `"api": "atlassian-cloud"`).

        Users are named by `user` (account id or email), groups by `group` (name). Ops: add_member,
        remove_member, suspend, restore, deactivate, activate, remove_from_directory, set_roles
        (`roles: [...]`), add_user (`email`, optional `name`, `account_id`, `status`, `synced`),
        active (`product`, `at`: the user used that product at that ISO-8601 time).
        Raises KeyError (unknown user/group, 404) or ValueError (bad op/arguments, 400).
        """
        if op == "add_user":
            user = _user_from(dict(args), next(iter(self.directories)), "add_user")
            if args.get("synced"):
                user.management_source = "synced"
            self.users[user.account_id] = user
            self.record(op, account_id=user.account_id)
            return user.account_id
        found = self.find(str(args.get("user", "")))
        if found is None:
            raise KeyError(f"user {args.get('user')!r}")
        user = found
        if op in ("add_member", "remove_member"):
            name = str(args.get("group", "")).lower()
            group = next((g for g in self.groups.values() if g.name.lower() == name), None)
            if group is None:
                raise KeyError(f"group {args.get('group')!r}")
            (group.members.add if op == "add_member" else group.members.discard)(user.account_id)
        elif op in ("suspend", "restore"):
            for directory in user.membership:
                user.membership[directory] = "suspended" if op == "suspend" else "active"
        elif op in ("deactivate", "activate"):
            user.account_status = "inactive" if op == "deactivate" else "active"
        elif op == "remove_from_directory":
            user.membership.clear()
            for group in self.groups.values():
                group.members.discard(user.account_id)
        elif op == "active":
            product, at = str(args.get("product", "")), _timestamp(args.get("at", ""), "active: at")
            if not product:
                raise ValueError("active needs a product key and an ISO-8601 `at`")
            entry = next((p for p in user.product_access if p["key"] == product), None)
            if entry is None:
                user.product_access.append({"key": product, "id": _stable_id("product", product),
                                            "lastActiveTimestamp": at})
            else:
                entry["lastActiveTimestamp"] = at
        elif op == "set_roles":
            roles = [str(r) for r in args.get("roles", [])]
            if any(r not in PLATFORM_ROLES for r in roles):
                raise ValueError(f"platform roles are {', '.join(PLATFORM_ROLES)}")
            user.platform_roles = roles
        else:
            raise ValueError(f"unknown Cloud op {op!r}")
        self.record(op, account_id=user.account_id, **{k: v for k, v in args.items() if k != "user"})
        return None

    # ---------------------------------------------------------------- construction
    @staticmethod
    def from_scenario(data: Mapping[str, Any]) -> CloudWorld:
        """Build from a scenario's `cloud:` mapping (see scenarios/example.yaml for every key)."""
        world = CloudWorld(org_id=str(data.get("org_id", DEFAULT_ORG)))
        world.group_ids = str(data.get("group_ids", "bare"))
        if world.group_ids not in ("bare", "ari"):
            raise ScenarioError(f"cloud.group_ids is bare or ari, not {world.group_ids!r}")
        keys = data.get("api_keys") or []
        for entry in keys:
            if isinstance(entry, Mapping):
                world.api_keys[str(entry["key"])] = entry.get("owner")
            else:
                world.api_keys[str(entry)] = None
        dirs = data.get("directories")
        if dirs:
            world.directories = {str(d["id"]): str(d.get("name", d["id"])) for d in dirs}
        default_dir = next(iter(world.directories))
        world.licences = {str(k): int(v) for k, v in (data.get("licences") or {}).items()}
        site = data.get("site") or {}
        world.site_url = str(site.get("url", world.site_url))
        world.site_credentials = {str(c["email"]): str(c["token"]) for c in site.get("credentials", [])}
        for i, raw in enumerate(data.get("users") or []):
            user = _user_from(raw, default_dir, f"cloud.users[{i}]")
            if user.account_id in world.users:
                raise ScenarioError(f"cloud.users[{i}]: duplicate accountId {user.account_id}")
            world.users[user.account_id] = user
        for i, raw in enumerate(data.get("groups") or []):
            group = CloudGroup(
                id=str(raw.get("id") or _stable_id("group", str(raw["name"]))),
                name=str(raw["name"]),
                directory=str(raw.get("directory", default_dir)),
                external_synced=bool(raw.get("external_synced", False)),
                products=[str(p) for p in raw.get("products", [])],
                description=str(raw.get("description", "")),
            )
            for member in raw.get("members", []):
                account = world.find(str(member))
                if account is None:
                    raise ScenarioError(f"cloud.groups[{i}] {group.name}: unknown member {member}")
                group.members.add(account.account_id)
            world.groups[group.id] = group
        try:
            world.spaces = spaces_from(data.get("spaces"), world.account_of)
        except SpaceError as exc:
            raise ScenarioError(str(exc)) from exc
        return world

    def account_of(self, key: str) -> str | None:
        found = self.find(key)
        return found.account_id if found is not None else None

    def find(self, key: str) -> CloudUser | None:
        """A user by account id or (case-insensitive) email."""
        if key in self.users:
            return self.users[key]
        lowered = key.lower()
        return next((u for u in self.users.values() if u.email.lower() == lowered), None)

    @staticmethod
    def generate(users: int, groups: int, memberships: int, seed: int = 1, *,
                 org_id: str = DEFAULT_ORG, api_key: str = "sim-cloud-key",
                 epoch: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> CloudWorld:
        """A deterministic organization of the given size (same arguments, same world).

        Activity is relative to `epoch`, never the wall clock: confluence last active within 400 days
        before it, added to the org 400-1100 days before it; a third also use Jira, half of those never
        active there (an entry without a timestamp: the product granted, never opened).
        """
        rng = random.Random(seed)
        facts = random.Random(seed * 7919 + 1)  # a second stream: the first one's worlds stay as they were
        world = CloudWorld(org_id=org_id, api_keys={api_key: None})
        directory = next(iter(world.directories))
        # The draws are the ones rng.randrange/choice make (same seed, same world), without their call overhead.
        bits, fact_bits, fact_random = rng.getrandbits, facts.getrandbits, facts.random
        stamp = Stamps(epoch)
        users_out = world.users
        minutes_last, days_added, minutes_jira = 60 * 24 * 400, 700, 60 * 24 * 400
        for i in range(users):
            account_id = f"712020:{uuid4_text(bits(128))}"
            last = stamp.minutes_before(below(bits, minutes_last))
            roll = rng.random()
            users_out[account_id] = CloudUser(
                account_id=account_id,
                email=f"user{i:06d}@example.com",
                name=f"User {i:06d}",
                membership={directory: "suspended" if roll < 0.03 else "active"},
                account_status="inactive" if 0.03 <= roll < 0.05 else "active",
                management_source="synced" if 0.05 <= roll < 0.08 else "invited",
                platform_roles=["atlassian/org-admin"] if i == 0 else [],
                product_access=[{"key": "confluence", "id": "c0ffee00-0000-4000-8000-000000000001",
                                 "lastActiveTimestamp": last}],
                added_to_org=stamp.minutes_before(60 * 24 * (400 + below(fact_bits, days_added))),
            )
            if fact_random() < 1 / 3:
                jira = {"key": "jira", "id": "c0ffee00-0000-4000-8000-000000000002"}
                if fact_random() < 0.5:
                    jira["lastActiveTimestamp"] = stamp.minutes_before(below(fact_bits, minutes_jira))
                users_out[account_id].product_access.append(jira)
        ids = list(world.users)
        for j in range(groups):
            gid = uuid4_text(bits(128))
            world.groups[gid] = CloudGroup(id=gid, name=f"group-{j:05d}", directory=directory,
                                           external_synced=j % 50 == 49)
        gids = list(world.groups)
        if gids and ids:
            member_sets = [world.groups[g].members for g in gids]
            n_groups, n_ids = len(gids), len(ids)
            k_groups, k_ids = n_groups.bit_length(), n_ids.bit_length()
            for _ in range(memberships):  # below() inlined: 800,000 calls were a third of the start time
                g = bits(k_groups)
                while g >= n_groups:
                    g = bits(k_groups)
                a = bits(k_ids)
                while a >= n_ids:
                    a = bits(k_ids)
                member_sets[g].add(ids[a])
        world.warm()
        return world


def below(bits: Callable[[int], int], n: int) -> int:
    """`Random.randrange(n)` (and `choice`'s index) drawn from `bits` (a Random's getrandbits), as CPython draws it."""
    k = n.bit_length()
    r = bits(k)
    while r >= n:
        r = bits(k)
    return r


def uuid4_text(value: int) -> str:
    """`str(uuid.UUID(int=value, version=4))` without building the UUID object."""
    value = (value & ~(0xC000 << 48) | (0x8000 << 48)) & ~(0xF000 << 64) | (4 << 76)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Stamps:
    """`(epoch - timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ")` from two tables: dates, times of day."""

    def __init__(self, epoch: datetime) -> None:
        self.seconds = int(epoch.timestamp())
        self.days: dict[int, str] = {}
        second = self.seconds % 60  # whole minutes back never change the second
        self.times = [f"T{m // 60:02d}:{m % 60:02d}:{second:02d}Z" for m in range(24 * 60)]

    def minutes_before(self, minutes: int) -> str:
        day, second = divmod(self.seconds - 60 * minutes, 86400)
        date = self.days.get(day)
        if date is None:
            date = self.days[day] = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
        return date + self.times[second // 60]


def _stable_id(kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"reconcile-sim:{kind}:{name}"))


def _user_from(raw: Mapping[str, Any], default_dir: str, where: str) -> CloudUser:
    try:
        email = str(raw["email"])
    except KeyError:
        raise ScenarioError(f"{where}: every user needs an email") from None
    status = str(raw.get("status", "active"))
    directory = str(raw.get("directory", default_dir))
    account_status, membership, for_deletion = "active", {directory: "active"}, False
    if status == "suspended":
        membership = {directory: "suspended"}
    elif status == "deactivated":
        account_status = "inactive"
    elif status == "not_invited":
        membership = {}
    elif status == "for_deletion":
        account_status, for_deletion = "inactive", True
    elif status != "active":
        raise ScenarioError(f"{where} {email}: unknown status {status!r} "
                            "(active | suspended | deactivated | not_invited | for_deletion)")
    roles = [str(r) for r in raw.get("platform_roles", [])]
    for role in roles:
        if role not in PLATFORM_ROLES:
            raise ScenarioError(f"{where} {email}: unknown platform role {role!r}")
    access = []
    for product in raw.get("product_access", []):
        item = {"key": str(product["key"]), "id": str(product.get("id", _stable_id("product", product["key"])))}
        if product.get("last_active"):  # absent or null: granted, never active in this product
            item["lastActiveTimestamp"] = _timestamp(product["last_active"], f"{where} {product['key']}")
        access.append(item)
    added = raw.get("added_to_org", "2024-01-03T09:00:00Z")
    claim = raw.get("claim_status", "managed")
    return CloudUser(
        account_id=str(raw.get("account_id") or f"712020:{_stable_id('user', email.lower())}"),
        email=email,
        name=str(raw.get("name", email.split("@", maxsplit=1)[0])),
        account_status=account_status,
        membership=membership,
        management_source=raw.get("management_source", "invited"),
        claim_status=None if claim is None else str(claim),  # null: the response leaves claimStatus out
        platform_roles=roles,
        product_access=access,
        for_deletion=for_deletion,
        on_site=bool(raw.get("on_site", True)),
        added_to_org=_timestamp(added, f"{where} {email} added_to_org") if added is not None else None,
    )


def _timestamp(value: Any, where: str) -> str:
    """An ISO-8601 UTC timestamp as the scenario gives it; ScenarioError when it is not one."""
    if isinstance(value, datetime):  # an unquoted YAML timestamp
        value = (value.astimezone(UTC) if value.tzinfo else value).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = str(value)
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ScenarioError(f"{where}: {text!r} is not an ISO-8601 timestamp") from None
    return text
