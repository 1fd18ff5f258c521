"""What the SCIM source decodes (msgspec Structs, straight from the response bytes): the ListResponse envelope,
Users and Groups with only the attributes it reads. Values stay `Any` where the source checks them itself."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

R = TypeVar("R")


# gc=False: these hold only strings and lists of each other (no cycles), so the collector need not track
# the half million of them a large directory decodes into.
class ScimMember(msgspec.Struct, gc=False):
    value: Any = None
    type: Any = None


class ScimEmail(msgspec.Struct, gc=False):
    value: Any = None
    primary: Any = None


class ScimName(msgspec.Struct, gc=False):
    formatted: Any = None


class ScimUserResource(msgspec.Struct, gc=False):
    id: Any = None
    userName: Any = None
    externalId: Any = None
    active: Any = None
    displayName: Any = None
    name: ScimName | None = None
    emails: list[ScimEmail] | None = None


class ScimGroupResource(msgspec.Struct, gc=False):
    id: Any = None
    displayName: Any = None
    members: list[ScimMember] | None = None  # None: not sent (read the group alone)


class ListResponse(msgspec.Struct, Generic[R]):
    schemas: list[Any] = []
    totalResults: Any = None
    startIndex: Any = None
    Resources: list[R] = []


USER_PAGE = msgspec.json.Decoder(ListResponse[ScimUserResource])
GROUP_PAGE = msgspec.json.Decoder(ListResponse[ScimGroupResource])
GROUP = msgspec.json.Decoder(ScimGroupResource)
