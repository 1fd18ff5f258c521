"""A SCIM user made ready as its page arrives (`Ready`: its desired user but groups, or why it is none), and the
attribute readings that make it: the primary email, the display name, the raw `active` facts."""

from __future__ import annotations

from typing import Any

import msgspec

from reconcile.errors import SourceError
from reconcile.model import Identity, Location, Status
from reconcile.sources.scim.shapes import ScimUserResource

# the raw facts, one string each rather than one per user
FACT = {True: "scim active=true", False: "scim active=false"}
NO_IDENTITY = Identity()  # a user's who is skipped or in error
ABSENT_FACT = {flag: f"scim active absent (users.active_when_missing: {str(flag).lower()})" for flag in (True, False)}


# A Struct, not a dataclass: built in C, positionally, 100,000 times a read and thrown away; gc=False, as it holds
# only the page's Structs, strings and frozen records (no cycles), so the collector never walks them.
class Ready(msgspec.Struct, frozen=True, gc=False):
    """A listed user made ready as its page arrived: its desired user but groups, or why it is none."""

    resource: ScimUserResource  # the object it was made from (the list's own, or made again)
    key: str  # "": the user has no key and is skipped
    who: str  # its userName, else its id (for messages)
    status: Status = Status.ACTIVE
    fact: str = ""
    identity: Identity = NO_IDENTITY
    display_name: str | None = None
    origin: Location | None = None
    error: SourceError | None = None  # raised in list order, after the read


def text_of(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def primary_email(resource: ScimUserResource) -> str | None:
    """`emails[primary eq true].value`; the only email when none is marked primary."""
    emails = [e for e in resource.emails or () if text_of(e.value)]
    primary = [e for e in emails if e.primary is True]
    chosen = primary[0] if primary else emails[0] if len(emails) == 1 else None
    return text_of(chosen.value) if chosen else None


def display_name_of(resource: ScimUserResource) -> str | None:
    return text_of(resource.displayName) or (text_of(resource.name.formatted) if resource.name is not None else None)
