"""The simulated Confluence Cloud site's spaces: what the pre-delete impact guard reads (owner fields, direct
`administer` grants, pages created). Plain state hung on `CloudWorld.spaces`; wiki_routes.py serves it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SPACE_TYPES = ("global", "collaboration", "knowledge_base", "personal")  # of the v2 document's SpaceType


@dataclass
class WikiSpace:
    """One space. `admins` hold `administer` directly (account ids); `admin_groups` through a group, which
    never makes anyone the only administrator. `content`: account id -> pages and blog posts created."""

    id: int
    key: str
    name: str
    type: str = "global"
    status: str = "current"  # current | archived
    author: str | None = None  # authorId: who created the space
    owner: str | None = None  # spaceOwnerId
    admins: list[str] = field(default_factory=list)
    admin_groups: list[str] = field(default_factory=list)
    content: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The v2 `SpaceBulk` shape."""
        body: dict[str, Any] = {"id": str(self.id), "key": self.key, "name": self.name, "type": self.type,
                                "status": self.status, "createdAt": "2024-01-03T09:00:00.000Z"}
        if self.author:
            body["authorId"] = self.author
        if self.owner:
            body["spaceOwnerId"] = self.owner
        return body


class SpaceError(ValueError):
    """A `cloud.spaces` entry is invalid (the message names it)."""


def spaces_from(raw: Any, find: Callable[[str], str | None]) -> list[WikiSpace]:
    """`cloud.spaces` of a scenario; `find` turns an email or account id into an account id (None: unknown).

    A personal space (`personal: <user>`) is created and owned by that user, who administers it.
    """
    out: list[WikiSpace] = []
    for i, entry in enumerate(raw or []):
        where = f"cloud.spaces[{i}]"
        if not isinstance(entry, Mapping) or not entry.get("key"):
            raise SpaceError(f"{where}: a space is a mapping with a key")

        key = str(entry["key"])

        def account(name: Any, what: str, where: str = f"{where} {key}") -> str:
            found = find(str(name))
            if found is None:
                raise SpaceError(f"{where}: unknown user {name} in {what}")
            return found

        personal = entry.get("personal")
        kind = "personal" if personal else str(entry.get("type", "global"))
        if kind not in SPACE_TYPES:
            raise SpaceError(f"{where} {key}: type is one of {', '.join(SPACE_TYPES)}, not {kind!r}")
        owner = account(personal, "personal") if personal else (
            account(entry["owner"], "owner") if entry.get("owner") else None)
        author = account(entry["author"], "author") if entry.get("author") else owner
        admins = [account(a, "admins") for a in entry.get("admins", [])]
        if owner is not None and personal and owner not in admins:
            admins.insert(0, owner)  # the owner of a personal space administers it
        content = {account(u, "content"): int(n) for u, n in (entry.get("content") or {}).items()}
        space_id = int(entry.get("id", zlib.crc32(key.encode()) % 10**9))
        out.append(WikiSpace(space_id, key, str(entry.get("name", key)), kind, str(entry.get("status", "current")),
                             author, owner, admins, [str(g) for g in entry.get("admin_groups", [])], content))
    keys = [s.key for s in out]
    if len(set(keys)) != len(keys):
        raise SpaceError("cloud.spaces: two spaces share a key")
    return out
