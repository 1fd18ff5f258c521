"""What the Organizations API says about one user and one group, parsed once into frozen values.

Owns the mapping from Cloud's status fields (`accountStatus`, `membershipStatus`, `status`,
`managementSource`, `platformRoles`, `productAccess`) to the domain's `User` and `Group`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconcile.model import Activity, Group, Status, User, norm, parse_instant
from reconcile.records import quick_init

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


@quick_init
@dataclass(frozen=True, slots=True)
class Account:
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
        access = [p for p in data.get("productAccess") or [] if isinstance(p, Mapping)]
        stamps = [(str(p.get("key") or p.get("id")), parse_instant(p.get("lastActiveTimestamp")))
                  for p in access if p.get("key") or p.get("id")]
        email = data.get("email")
        return Account(
            account_id=str(data["accountId"]),
            email=norm(str(email)) if email else None,
            name=str(data["name"]) if data.get("name") else None,
            status=str(data.get("status") or ""),
            account_status=str(data.get("accountStatus") or "active"),
            membership_status=str(data.get("membershipStatus") or "active"),
            idp_managed=data.get("managementSource") == "synced",
            admin=bool(ADMIN_ROLES & set(data.get("platformRoles") or [])),
            last_active=Activity((key, stamp) for key, stamp in stamps if stamp is not None),
            licensed=bool(access),
            groups=frozenset(group_id(g["id"]) for g in data.get("groups") or [] if isinstance(g, Mapping)),
            directories=frozenset({directory}),
            added_to_org=parse_instant(data.get("addedToOrg")),
        )

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
