"""The typed shape of a `users/search` page: only the fields reconcile reads, decoded by msgspec straight
from the response bytes (no dict per user, the other fields skipped unparsed); `item_of` converts an
item the typed decoder refused, with the same coercions, so both paths agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec


class Access(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    """One `productAccess[]` entry."""

    key: str | None = None
    id: str | None = None
    last_active_timestamp: str | int | float | None = None


class GroupRef(msgspec.Struct, frozen=True, gc=False):
    """One `groups[]` entry (its name is not read: group ids are matched against the group search)."""

    id: str


class UserItem(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    """One `MultiDirectoryUser` as the reader uses it (`expand: [groups, productAccess, platformRoles]`)."""

    account_id: str
    email: str | None = None
    name: str | None = None
    status: str | None = None
    account_status: str | None = None
    membership_status: str | None = None
    claim_status: str | None = None
    management_source: str | None = None
    platform_roles: list[str] | None = None
    product_access: list[Access] | None = None
    groups: list[GroupRef] | None = None
    added_to_org: str | int | float | None = None


class Links(msgspec.Struct, frozen=True, gc=False):
    next: str | None = None


class UserPage(msgspec.Struct, frozen=True, gc=False):
    data: list[UserItem] | None = None
    links: Links | None = None


USER_PAGE = msgspec.json.Decoder(UserPage)


def item_of(data: Mapping[str, Any]) -> UserItem:
    """A user item from a generically decoded one (the typed decoder refused the page: a field of an
    unexpected type); the coercions are the reader's historical ones (`str()`, non-objects skipped)."""
    def text(value: object) -> str | None:
        return str(value) if value else None

    def instant(value: object) -> str | int | float | None:
        return value if isinstance(value, str | int | float) and not isinstance(value, bool) else None

    access = [Access(key=text(p.get("key")), id=text(p.get("id")),
                     last_active_timestamp=instant(p.get("lastActiveTimestamp")))
              for p in data.get("productAccess") or [] if isinstance(p, Mapping)]
    roles = data.get("platformRoles") or []
    return UserItem(
        account_id=str(data["accountId"]),
        email=text(data.get("email")),
        name=text(data.get("name")),
        status=text(data.get("status")),
        account_status=text(data.get("accountStatus")),
        membership_status=text(data.get("membershipStatus")),
        claim_status=text(data.get("claimStatus")),
        management_source=text(data.get("managementSource")),
        platform_roles=[str(r) for r in roles if isinstance(r, str)],
        product_access=access,
        groups=[GroupRef(str(g["id"])) for g in data.get("groups") or [] if isinstance(g, Mapping)],
        added_to_org=instant(data.get("addedToOrg")),
    )
