"""What the Organizations API says about one user and one group, parsed once into frozen values.

Owns the mapping from Cloud's status fields (`accountStatus`, `membershipStatus`, `status`,
`managementSource`, `platformRoles`, `productAccess`) to the domain's `User` and `Group`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconcile.model import NO_ACTIVITY, Activity, Group, Status, User, norm, parse_instant
from reconcile.records import quick_init
from reconcile.targets.atlassian_cloud.items import UserItem, item_of

# Platform roles that administer users: such accounts are protected (SPEC §5).
ADMIN_ROLES = frozenset({"atlassian/org-admin", "atlassian/site-admin", "atlassian/user-access-admin"})
# `status` values of accounts that are no longer members: removed, scheduled for deletion, closed.
GONE = frozenset({"not_invited", "for_deletion"})
GROUP_ARI = "ari:cloud:identity::group/"


def group_id(value: object) -> str:
    """A group id in one form: group search gives bare ids, a user's `groups[]` may give the ARI
    (`ari:cloud:identity::group/<id>`, as in the Organizations document's example)."""
    # interned: 400,000 memberships name 2,000 group ids; one string each, not one per membership
    return sys.intern(str(value).removeprefix(GROUP_ARI))


def user_of(item: UserItem, instants: dict[object, datetime | None]) -> User:
    """The domain's user, built straight from the decoded item (`instants`: parsed `addedToOrg` values,
    shared: 100,000 users join on a few hundred days)."""
    email = item.email
    if email:
        normal = norm(email)
        email = email if normal == email else normal  # one string, not an equal copy
    else:
        email = None
    access = item.product_access or ()
    stamps = []
    for p in access:
        key = p.key or p.id
        if key:
            stamp = _instant(p.last_active_timestamp)
            if stamp is not None:
                stamps.append((sys.intern(key), stamp))
    added = item.added_to_org
    if added not in instants:
        instants[added] = parse_instant(added)
    disabled = item.membership_status == "suspended" or item.account_status == "inactive"
    return User(
        ref=item.account_id, email=email, account_id=item.account_id,
        display_name=item.name or None, status=Status.DISABLED if disabled else Status.ACTIVE,
        idp_managed=item.management_source == "synced",
        admin=any(r in ADMIN_ROLES for r in item.platform_roles or ()),
        last_active=(Activity.one(*stamps[0]) if len(stamps) == 1 else Activity(stamps) if stamps
                     else NO_ACTIVITY),
        billable=bool(access), added_to_org=instants[added],
    )


def _instant(value: object) -> datetime | None:
    """`parse_instant`, without its detours for the usual `…Z` text (the same value either way)."""
    if type(value) is str:
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            return parse_instant(value)
        if stamp.tzinfo is UTC:
            return stamp
    return parse_instant(value)


class Membership:
    """What an account's three statuses say (the fields of `Facts` and `Account`, which both carry them)."""

    __slots__ = ()
    status: str
    account_status: str
    membership_status: str

    @property
    def member(self) -> bool:
        """Whether the account is (still) a member of the directory: not removed, closed or deleted."""
        return (self.status not in GONE and self.account_status != "closed"
                and self.membership_status != "no_membership")

    @property
    def suspended(self) -> bool:
        return self.membership_status == "suspended"

    @property
    def deactivated(self) -> bool:
        return self.account_status == "inactive"


@dataclass(frozen=True, slots=True)
class Facts(Membership):
    """An account's statuses and directories as Cloud states them, beyond its `User`; a handful of
    distinct values in an organization, so each is one shared object (`Facts.of(..., interned)`)."""

    status: str  # active | suspended | not_invited | deactivated | for_deletion
    account_status: str  # active | inactive | closed
    membership_status: str  # active | suspended | no_membership
    directories: frozenset[str]  # directory ids this user was found in

    @staticmethod
    def of(item: UserItem, directories: frozenset[str],
           interned: dict[tuple[object, ...], Facts] | None = None) -> Facts:
        key = (item.status or "", item.account_status or "active", item.membership_status or "active",
               directories)
        if interned is None:
            return Facts(*key)
        found = interned.get(key)
        if found is None:
            found = interned[key] = Facts(*key)
        return found

    def merge(self, other: Facts) -> Facts:
        """The same account seen in another directory (as `Account.merge`)."""
        membership = self.membership_status if self.suspended and other.suspended else "active"
        return Facts(self.status, self.account_status, membership, self.directories | other.directories)


def merge_users(first: User, facts: Facts, other: User) -> User:
    """The user seen in two directories, `facts` already merged (as `Account.merge`, then `to_user`)."""
    last: list[tuple[str, datetime]] = [*(first.last_active or NO_ACTIVITY).items(),
                                        *(other.last_active or NO_ACTIVITY).items()]
    return User(
        ref=first.ref, email=first.email or other.email, account_id=first.account_id,
        display_name=first.display_name or other.display_name,
        status=Status.DISABLED if facts.suspended or facts.deactivated else Status.ACTIVE,
        idp_managed=first.idp_managed or other.idp_managed, admin=first.admin or other.admin,
        last_active=Activity(last), billable=first.billable or other.billable,
        added_to_org=min((d for d in (first.added_to_org, other.added_to_org) if d), default=None),
    )


@dataclass(frozen=True, slots=True)
class Held:
    """What the writer needs of an account it is about to change."""

    account_id: str
    directories: frozenset[str]
    idp_managed: bool
    suspended: bool
    deactivated: bool

    @staticmethod
    def of(user: User, facts: Facts) -> Held:
        return Held(user.ref, facts.directories, user.idp_managed, facts.suspended, facts.deactivated)


@quick_init
@dataclass(frozen=True, slots=True)
class Account(Membership):
    """One `MultiDirectoryUser` (with `expand: [groups, productAccess, platformRoles]`)."""

    account_id: str
    email: str | None
    name: str | None
    status: str  # active | suspended | not_invited | deactivated | for_deletion
    account_status: str  # active | inactive | closed
    membership_status: str  # active | suspended | no_membership
    idp_managed: bool  # managementSource == "synced": the IdP owns this user
    admin: bool
    last_active: Activity  # productAccess[].lastActiveTimestamp per product key (empty: never active)
    licensed: bool  # has product access (a seat), as far as the API tells
    groups: frozenset[str]  # group ids, in the directories read
    directories: frozenset[str]  # directory ids this user was found in
    added_to_org: datetime | None = None  # `addedToOrg` (absent when the organization does not know it)

    @staticmethod
    def from_json(data: Mapping[str, Any], directory: str) -> Account:
        return Account.from_item(item_of(data), directory)

    @staticmethod
    def from_item(item: UserItem, directory: str) -> Account:
        user = user_of(item, {})
        facts = Facts.of(item, frozenset({directory}))
        return Account(
            account_id=user.ref, email=user.email, name=user.display_name, status=facts.status,
            account_status=facts.account_status, membership_status=facts.membership_status,
            idp_managed=user.idp_managed, admin=user.admin, last_active=user.last_active or NO_ACTIVITY,
            licensed=user.billable, groups=frozenset(group_id(g.id) for g in item.groups or ()),
            directories=facts.directories, added_to_org=user.added_to_org,
        )

    def held(self) -> Held:
        return Held(self.account_id, self.directories, self.idp_managed, self.suspended, self.deactivated)

    def merge(self, other: Account) -> Account:
        """The same account seen in another directory."""
        return Account(
            account_id=self.account_id, email=self.email or other.email, name=self.name or other.name,
            status=self.status, account_status=self.account_status,
            membership_status=self.membership_status if self.suspended and other.suspended else "active",
            idp_managed=self.idp_managed or other.idp_managed, admin=self.admin or other.admin,
            last_active=Activity([*self.last_active.items(), *other.last_active.items()]),
            licensed=self.licensed or other.licensed, groups=self.groups | other.groups,
            directories=self.directories | other.directories,
            added_to_org=min((d for d in (self.added_to_org, other.added_to_org) if d), default=None),
        )

    def to_user(self) -> User:
        disabled = self.suspended or self.deactivated
        return User(
            ref=self.account_id,
            email=self.email,
            account_id=self.account_id,
            display_name=self.name,
            status=Status.DISABLED if disabled else Status.ACTIVE,
            idp_managed=self.idp_managed,
            admin=self.admin,
            last_active=self.last_active,
            billable=self.licensed,
            added_to_org=self.added_to_org,
        )


@dataclass(frozen=True, slots=True)
class CloudGroup:
    """One `MultiDirectoryGroup`."""

    id: str
    name: str
    directory: str
    idp_managed: bool  # externalSynced / managedBy external / not modifiable

    @staticmethod
    def from_json(data: Mapping[str, Any], directory: str) -> CloudGroup:
        access = data.get("managementAccess") or {}
        idp_managed = (bool(data.get("externalSynced")) or data.get("managedBy") == "external"
                  or access.get("modifiable") is False)
        return CloudGroup(id=group_id(data["id"]), name=str(data["name"]),
                          directory=str(data.get("directoryId") or directory), idp_managed=idp_managed)

    def to_group(self) -> Group:
        return Group(name=norm(self.name), ref=self.id, idp_managed=self.idp_managed)
