"""Domain values: users, groups, desired and actual state, scope and policy.

Frozen, typed, no I/O. Identity keys are normalised here (lower-cased) so that every other
module compares the same strings (SPEC §3, §4).
Names: `unsynced` is Confluence DC's "unsynced from directory" entry; `idp_managed` an account or group an IdP
owns (Cloud's managementSource "synced").
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache

from reconcile.policies import DeleteGuard, Exemption, ExemptionRules, InactivePolicy, LicencePolicy
from reconcile.records import quick_init


class Status(StrEnum):
    """A user's status, the same word on every target."""

    ACTIVE = "active"
    DISABLED = "disabled"


class AbsentPolicy(StrEnum):
    """What happens to in-scope users missing from the desired state (`policy.absent`)."""

    DISABLE = "disable"
    DELETE = "delete"
    IGNORE = "ignore"


class UnsyncedPolicy(StrEnum):
    """What happens to in-scope Confluence DC "unsynced from directory" entries."""

    DELETE = "delete"
    IGNORE = "ignore"


def norm(value: str) -> str:
    """The comparison form of a username, email, account id or group name.

    `value` itself when it is already in that form (the usual case): a key kept by several records, or
    as a dict key, is then one string, not a copy each (100,000 users: ~6 MB per copy, issue 15)."""
    normal = value.strip().lower()
    return value if normal == value else normal


def is_email(key: str) -> bool:
    return "@" in key


@lru_cache(maxsize=4096)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(norm(pattern)))


@dataclass(frozen=True, slots=True)
class Globs:
    """A list of case-insensitive shell globs (`*`, `?`, `[...]`)."""

    patterns: tuple[str, ...] = ()

    def matches(self, *keys: str | None) -> bool:
        """True when any pattern matches any of the non-empty keys."""
        for pattern in self.patterns:
            if pattern == "*" and any(keys):
                return True
            rx = _glob_regex(pattern)
            for key in keys:
                if key and rx.match(norm(key)):
                    return True
        return False


def parse_instant(value: object) -> datetime | None:
    """A timestamp as targets send it (ISO-8601 text, or epoch milliseconds) as an aware UTC datetime.

    None for nothing, or for text that is no timestamp (a reader keeps going without that fact);
    ISO text without a zone is taken as UTC, as Atlassian's APIs mean it.
    """
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    try:
        stamp = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).astimezone(UTC)


def iso_instant(stamp: datetime) -> str:
    """An aware datetime as ISO-8601 UTC text with `Z` (milliseconds only when there are any)."""
    utc = stamp.astimezone(UTC)
    spec = "milliseconds" if utc.microsecond else "seconds"
    return utc.isoformat(timespec=spec).replace("+00:00", "Z")


class Activity(Mapping[str, datetime]):
    """When a user was last active, per product key (Cloud: `confluence`, `jira-software`, …; Confluence
    DC has one product, `confluence`, from its last login). Immutable and hashable, like `User`."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, datetime] | Iterable[tuple[str, datetime]] = ()) -> None:
        latest: dict[str, datetime] = {}
        for product, stamp in items.items() if isinstance(items, Mapping) else items:
            if stamp.tzinfo is None:
                raise ValueError(f"last activity of {product} has no time zone: {stamp!r}")
            if product not in latest or stamp > latest[product]:  # several instances of a product: the latest
                latest[product] = stamp
        self._items: tuple[tuple[str, datetime], ...] = tuple(sorted(latest.items()))

    @classmethod
    def one(cls, product: str, stamp: datetime) -> Activity:
        """The activity of a single product (Confluence DC's last login): no merging to do."""
        if stamp.tzinfo is None:
            raise ValueError(f"last activity of {product} has no time zone: {stamp!r}")
        made = cls.__new__(cls)
        made._items = ((product, stamp),)
        return made

    def __getitem__(self, product: str) -> datetime:
        for key, stamp in self._items:
            if key == product:
                return stamp
        raise KeyError(product)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Activity):
            return self._items == other._items
        return super().__eq__(other)  # a plain mapping of the same stamps is equal

    def __repr__(self) -> str:
        return f"Activity({dict(self._items)!r})"

    def latest(self, products: Iterable[str] = ()) -> datetime | None:
        """The latest activity in any of `products` (all products when none are named); None: never."""
        wanted = frozenset(products)
        return max((s for k, s in self._items if not wanted or k in wanted), default=None)


NO_ACTIVITY = Activity()


@quick_init
@dataclass(frozen=True, slots=True)
class Location:
    """Where something was written: `file:line:column` (1-based)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file


@quick_init
@dataclass(frozen=True, slots=True)
class User:
    """A user as a target reports it (actual state).

    `ref` is the target's stable reference: the Confluence DC `userKey` or the Cloud `account_id`.
    """

    ref: str
    username: str | None = None  # DC username, lower-cased
    email: str | None = None
    account_id: str | None = None
    display_name: str | None = None
    status: Status = Status.ACTIVE
    unsynced: bool = False  # DC "unsynced from directory" entry
    idp_managed: bool = False  # Cloud managementSource == "synced" (IdP/SCIM-managed)
    admin: bool = False  # org/site admin (Cloud) or member of target.admin_groups (DC)
    # Per product. None: the target does not reveal it for this user (DC before 9.3, or not in its
    # list of active users); empty: revealed, and never active.
    last_active: Activity | None = None
    billable: bool = True  # counts towards a licence seat when active
    added_to_org: datetime | None = None  # Cloud `addedToOrg` (None: unknown; Data Center never says)

    def keys(self) -> tuple[str, ...]:
        """Every identity key of this user, normalised, for glob matching."""
        # unrolled: the planner and the fingerprint ask this of every one of 100,000 users
        # norm(), inlined: a key already normal is itself, not a copy (the planner keeps these tuples)
        u, e, a = self.username, self.email, self.account_id
        if u and e:
            nu, ne = u.strip().lower(), e.strip().lower()
            nu, ne = u if nu == u else nu, e if ne == e else ne
            if a:
                return (nu, ne, a if (na := a.strip().lower()) == a else na)
            return (nu, ne)  # Data Center: no account id
        if e and a and not u:
            ne, na = e.strip().lower(), a.strip().lower()
            return (e if ne == e else ne, a if na == a else na)  # Cloud: no username
        return tuple(norm(k) for k in (u, e, a) if k)

    @property
    def label(self) -> str:
        """How a user outside the desired state is shown: username (DC), else email, else account id."""
        return self.username or self.email or self.account_id or self.ref


@dataclass(frozen=True, slots=True)
class Group:
    """A group as a target reports it. `ref` is Cloud's group id (DC: the name)."""

    name: str  # lower-cased
    ref: str = ""
    idp_managed: bool = False  # Cloud externalSynced: managed by an IdP, never written
    readonly: bool = False  # DC group of a read-only directory, as detected by the target


@dataclass(frozen=True, slots=True)
class Licence:
    """Seats of one product, and which groups grant one, as far as the target reveals them (issue 14).

    `granting` maps each licence-granting group to its member refs; None when the target does not say
    which groups grant a seat (then `policy.licences.groups` stand in for them).
    """

    product: str
    used: int | None  # seats in use now; None: not read
    maximum: int | None = None  # None: unlimited, or not revealed (Cloud)
    approximate: bool = False  # Cloud: a user count standing in for the billed seats
    source: str = ""  # where `used` comes from, for people
    granting: Mapping[str, frozenset[str]] | None = None
    note: str = ""  # what could not be read, said once in the plan


@dataclass(frozen=True, slots=True)
class ActualState:
    """What a target holds, restricted to what the plan needs.

    `members` maps a lower-cased group name to the refs of its member users. Only managed groups
    need to be present; a group missing from `groups` does not exist on the target.
    """

    users: Mapping[str, User]  # ref -> User
    groups: Mapping[str, Group]  # lower-cased name -> Group
    members: Mapping[str, frozenset[str]]  # lower-cased group name -> user refs
    me: str | None = None  # ref of the account the credentials belong to
    complete_groups: frozenset[str] | None = None  # groups whose members were read (None: all)
    unsynced_unread: str | None = None  # why unsynced entries could not be read (DC, no websudo)
    licence: Licence | None = None  # read only when a policy needs it (policy.inactive, policy.licences)

    @staticmethod
    def build(
        users: Iterable[User],
        groups: Iterable[Group] = (),
        members: Mapping[str, Iterable[str]] | None = None,
        me: str | None = None,
    ) -> ActualState:
        """Convenience constructor used by targets and tests."""
        return ActualState(
            users={u.ref: u for u in users},
            groups={norm(g.name): g for g in groups},
            members={norm(g): frozenset(refs) for g, refs in (members or {}).items()},
            me=me,
        )

    def groups_of(self, only: Iterable[str] | None = None) -> dict[str, set[str]]:
        """ref -> lower-cased group names (inverse of `members`), optionally of some groups only."""
        out: dict[str, set[str]] = {}
        get = out.get
        for group in self.members if only is None else only:
            for ref in self.members.get(group, ()):
                held = get(ref)
                if held is None:  # not setdefault: it would build a throwaway set per membership
                    out[ref] = {group}
                else:
                    held.add(group)
        return out


@quick_init
@dataclass(frozen=True, slots=True)
class Identity:
    """The typed identity keys a source knows for one desired user (SPEC §4), as the source wrote them.

    A non-email key written in the desired files is a `username`: it names a Confluence DC username or
    a Cloud account id, whichever the target has (matching tries both).
    """

    username: str | None = None  # DC username (LDAP `users.username`, a YAML key without '@')
    email: str | None = None
    account_id: str | None = None  # Cloud account id (the CSV export's `User id`)
    external_id: str | None = None  # an IdP's own id (SCIM `externalId`); not matched to targets

    @staticmethod
    def of_key(key: str) -> Identity:
        """The identity a desired-file key states: an email if it has an '@', else a username."""
        return Identity(email=key) if is_email(key) else Identity(username=key)

    def items(self) -> tuple[tuple[str, str], ...]:
        """(kind, value) of every key given, in a fixed order: username, email, account id, external id."""
        out: list[tuple[str, str]] = []
        if self.username:
            out.append(("username", self.username))
        if self.email:
            out.append(("email", self.email))
        if self.account_id:
            out.append(("account id", self.account_id))
        if self.external_id:
            out.append(("external id", self.external_id))
        return tuple(out)

    def names(self) -> tuple[str, ...]:
        """The normalised keys matched exactly against target usernames and account ids."""
        if self.username is None and self.account_id is None:
            return ()
        return tuple(norm(k) for k in (self.username, self.account_id) if k)

    def merged(self, other: Identity) -> Identity:
        """This identity with the keys only `other` gives."""
        return Identity(username=self.username or other.username, email=self.email or other.email,
                        account_id=self.account_id or other.account_id,
                        external_id=self.external_id or other.external_id)


@quick_init
@dataclass(frozen=True, slots=True)
class DesiredUser:
    """A user the desired state names. `key` is how it is shown and keyed (SPEC §4); `identity` holds
    every identity key its sources gave (the key's own among them when a source built it from one).
    The fields' order is part of the contract: the Okta and Entra ID readers build 100,000 of them positionally
    (tests/core/test_records.py pins it)."""

    key: str
    status: Status = Status.ACTIVE
    groups: frozenset[str] = frozenset()  # lower-cased group names
    identity: Identity = Identity()  # empty: the key is the only one, typed by its form (`Identity.of_key`)
    display_name: str | None = None
    source: str = "yaml"
    origin: Location | None = None
    fact: str | None = None  # the raw source fact behind `status` (`confluence-dc status=deactivated`)

    def keys(self) -> tuple[str, ...]:
        """The key and the identity keys scope globs match (an IdP's external id is not one of them)."""
        i = self.identity
        key = norm(self.key)
        if key and i.username is None and i.account_id is None and (i.email is None or i.email.strip().lower() == key):
            return (key,)  # the common case (a key and at most its own email): no dict to build
        out = [key] if key else []
        for k in (i.username, i.email, i.account_id):  # first seen wins, as dict.fromkeys would
            if k and (k := norm(k)) not in out:
                out.append(k)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class SourceNote:
    """Something a source read but left out of the desired state, for the plan's reader: diff shows it as
    a warning, so a reviewer sees it where the plan is approved. `subject` names what it is about (a group);
    empty, it is about the source's read as a whole (`source entra: 2 group members skipped ...`)."""

    source: str
    message: str
    subject: str = ""


@dataclass(frozen=True, slots=True)
class DesiredState:
    """The merged desired state of every source.

    `users` is keyed by the normalised `key`. `groups` are the groups the desired state names
    (in `groups:` or in a user's `groups:`), lower-cased.
    """

    users: Mapping[str, DesiredUser]
    groups: frozenset[str] = frozenset()
    origins: Mapping[str, Location] = field(default_factory=dict)  # group -> where it was named
    # configured source -> the `users` keys it supplied, for the sources whose empty-source guard is
    # on: diff refuses a plan when one of them supplied users but none of them in scope (SPEC §5)
    guarded: Mapping[str, frozenset[str]] = field(default_factory=dict)
    notes: tuple[SourceNote, ...] = ()  # what the sources report about their read (plan warnings)

    @staticmethod
    def build(users: Iterable[DesiredUser], groups: Iterable[str] = (),
              notes: Iterable[SourceNote] = ()) -> DesiredState:
        """Normalise keys and group names; the desired groups include every user's groups."""
        names: dict[str, str] = {}  # one string per group name, however many users name it
        us: dict[str, DesiredUser] = {}
        for u in users:
            normal = frozenset(names.setdefault(n, n) for n in (norm(g) for g in u.groups))
            us[norm(u.key)] = u if normal == u.groups else replace(u, groups=normal)
        gs = {norm(g) for g in groups}
        gs.update(names)
        return DesiredState(users=us, groups=frozenset(gs), notes=tuple(notes))


@dataclass(frozen=True, slots=True)
class Scope:
    """Which users and groups this configuration owns, and which principals are never touched."""

    users: Globs = Globs(("*",))
    groups: Globs = Globs()
    protect: Globs = Globs()

    def owns_user(self, user: User | DesiredUser) -> bool:
        return self.users.matches(*user.keys())

    def owns_group(self, name: str) -> bool:
        return self.groups.matches(name)


@dataclass(frozen=True, slots=True)
class Limit:
    """A safety limit: an absolute count, or a percentage (`"10%"`)."""

    value: float
    percent: bool = False

    @staticmethod
    def parse(text: str | int) -> Limit:
        """Parse `25`, `"25"` or `"10%"`; raises ValueError on anything else."""
        if isinstance(text, bool):
            raise ValueError("a limit is a count or a percentage")
        if isinstance(text, int):
            if text < 0:
                raise ValueError("a limit cannot be negative")
            return Limit(float(text))
        s = str(text).strip()
        if s.endswith("%"):
            number = float(s[:-1])
            if not 0 <= number <= 100:
                raise ValueError("a percentage limit is between 0% and 100%")
            return Limit(number, percent=True)
        if not s.isdigit():
            raise ValueError(f"{text!r} is neither a count (25) nor a percentage (\"10%\")")
        return Limit(float(int(s)))

    def allows(self, count: int, base: int) -> bool:
        """Whether `count` actions are within this limit; a percentage is of `base`.

        Exceeded means strictly greater than the limit, comparing exact ratios (SPEC §5).
        """
        if self.percent:  # as a decimal fraction: 18.4% of 375 is 69 exactly, not 68.999…
            return count * 100 <= Fraction(repr(self.value)) * base
        return count <= self.value

    def __str__(self) -> str:
        if self.percent:
            return f"{self.value:g}%"
        return f"{int(self.value)}"


@dataclass(frozen=True, slots=True)
class Policy:
    absent: AbsentPolicy = AbsentPolicy.DISABLE
    unsynced: UnsyncedPolicy = UnsyncedPolicy.IGNORE
    limits: Mapping[str, Limit] = field(default_factory=dict)  # ActionKind value -> Limit
    allow_empty: bool = False
    # Issue 14: absent sections are off (reconcile/policies.py); `exemptions` is the top-level list.
    inactive: InactivePolicy | None = None
    licences: LicencePolicy = field(default_factory=LicencePolicy)
    delete_guard: DeleteGuard | None = None
    exemption_rules: ExemptionRules = field(default_factory=ExemptionRules)
    exemptions: tuple[Exemption, ...] = ()
