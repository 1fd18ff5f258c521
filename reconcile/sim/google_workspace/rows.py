"""Pages of Directory users and USER members made at once in C (msgspec structs that encode to the same bytes
as `user_json` and `member_json`), and `Reversed`, a list read backwards for `sortOrder=DESCENDING`."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any, overload

import msgspec

from reconcile.sim.google_workspace.world import GMember, GoogleWorld, GUser

_ID, _REF, _ROLE = attrgetter("id"), attrgetter("ref"), attrgetter("role")
_EMAIL, _SUSPENDED = attrgetter("primary_email"), attrgetter("suspended")


class _Name(msgspec.Struct):
    """A user's `name` (the fields keep Google's names: the struct encodes as the dict would)."""

    givenName: str
    familyName: str
    fullName: str


class _Email(msgspec.Struct):
    address: str
    primary: bool


class _User(msgspec.Struct):
    """A user as `user_json` shows it, field for field in its order (`suspensionReason` only when suspended)."""

    kind: str
    id: str
    etag: str
    primaryEmail: str
    name: _Name
    isAdmin: bool
    isDelegatedAdmin: bool
    lastLoginTime: str
    creationTime: str
    agreedToTerms: bool
    suspended: bool
    archived: bool
    changePasswordAtNextLogin: bool
    ipWhitelisted: bool
    emails: tuple[_Email]
    customerId: str
    orgUnitPath: str
    isMailboxSetup: bool
    includeInGlobalAddressList: bool
    suspensionReason: str | msgspec.UnsetType = msgspec.UNSET


_REASON: dict[bool, str | msgspec.UnsetType] = {True: "ADMIN", False: msgspec.UNSET}
_GIVEN, _FAMILY, _ADMIN = attrgetter("given_name"), attrgetter("family_name"), attrgetter("admin")
_ARCHIVED, _ORG_UNIT = attrgetter("archived"), attrgetter("org_unit_path")


def user_rows(world: GoogleWorld, users: Sequence[GUser]) -> list[_User]:
    """A page of users made in C from their fields as they are now (none cached: a change in place shows at
    once), the same JSON as `user_json` gives each."""
    ids, emails, givens, families = (list(map(get, users)) for get in (_ID, _EMAIL, _GIVEN, _FAMILY))
    suspended = list(map(_SUSPENDED, users))
    names = map(_Name, givens, families, map("{} {}".format, givens, families))
    return list(map(_User, repeat("admin#directory#user"), ids, map('"{}"'.format, ids), emails, names,
                    map(_ADMIN, users), repeat(False), repeat("2026-01-01T00:00:00.000Z"),
                    repeat("2025-01-01T00:00:00.000Z"), repeat(True), suspended, map(_ARCHIVED, users),
                    repeat(False), repeat(False), zip(map(_Email, emails, repeat(True))), repeat(world.customer_id),
                    map(_ORG_UNIT, users), repeat(True), repeat(True), map(_REASON.__getitem__, map(bool, suspended))))


class _UserMember(msgspec.Struct):
    """A member of type USER as `member_json` shows it, field for field in its order."""

    kind: str
    etag: str
    id: str
    role: str
    type: str
    email: str
    status: str


_STATUS = {True: "SUSPENDED", False: "ACTIVE"}


def user_member_rows(world: GoogleWorld, members: Sequence[GMember]) -> list[_UserMember]:
    """A page of USER members, made in C from the members and their users as they are now (no row cached:
    a user or role changed in place shows at once, and no table is looked up per row)."""
    refs = list(map(_REF, members))
    users = list(map(world.user_by_id.__getitem__, refs))
    return list(map(_UserMember, repeat("admin#directory#member"), map('"{}"'.format, refs), refs,
                    map(_ROLE, members), repeat("USER"), map(_EMAIL, users),
                    map(_STATUS.__getitem__, map(bool, map(_SUSPENDED, users)))))


class Reversed(Sequence[Any]):
    """A list read backwards (`sortOrder=DESCENDING`) without a reversed copy of 100,000 users per page."""

    def __init__(self, items: Sequence[Any]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self._items))
            if step != 1:
                return list(self._items[::-1][index])
            if stop <= start:
                return []
            last = len(self._items) - 1  # items start..stop-1 of the reversed list, in one C slice
            return self._items[last - start:last - stop if stop <= last else None:-1]
        if not -len(self._items) <= index < len(self._items):
            raise IndexError(index)
        return self._items[len(self._items) - 1 - index] if index >= 0 else self._items[-1 - index]
