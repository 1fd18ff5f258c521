"""What the inactivity and licence policies read of a simulated Confluence DC: licence, "Can use", spaces.

Plain state hung on `DcWorld` (`world.licence`, `world.spaces`); no HTTP here (policy_routes.py serves it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconcile.sim.confluence_dc.world import DcWorld

# Global permissions as `/rest/api/permissions*` names them (targetType, operationKey) [V 10.2 doc].
APPLICATION_USE = ("application", "use")
ADMIN_GRANTS = (APPLICATION_USE, ("application", "administer"), ("system", "administer"))
USE_GRANTS = (APPLICATION_USE, ("personal_space", "create"))
UNLIMITED = -1  # what the licence resources answer for an unlimited licence [I]


@dataclass(slots=True)
class Licence:
    """`max_users` None: unlimited. `can_use`: the groups holding the global "Can use" permission."""

    max_users: int | None
    can_use: tuple[str, ...]


@dataclass(slots=True)
class DcSpace:
    """A space; `admins` are the users granted `administer` directly (never through a group)."""

    key: str
    name: str
    type: str  # personal | global
    id: int
    creator: str | None = None  # userKey
    status: str = "current"  # current | archived
    admins: list[str] = field(default_factory=list)  # userKeys
    admin_groups: list[str] = field(default_factory=list)
    content: dict[str, int] = field(default_factory=dict)  # userKey -> pages created in this space

    def to_json(self, world: DcWorld) -> dict[str, Any]:
        name = _username(world)
        return {"key": self.key, "name": self.name, "type": self.type, "status": self.status,
                "creator": name(self.creator) if self.creator else None,
                "admins": [name(k) for k in self.admins], "admin_groups": list(self.admin_groups),
                "content": {name(k): n for k, n in self.content.items()}}


def _username(world: DcWorld) -> Any:
    def name(key: str) -> str:
        user = world.users.get(key)
        return user.username if user is not None else key

    return name


def holds_licence(world: DcWorld, key: str) -> bool:
    """Active, not unsynced and in a "Can use" group (every active user when the licence is not modelled)."""
    user = world.users.get(key)
    if user is None or not user.active or user.unsynced:
        return False
    if world.licence is None:
        return True
    groups = world.groups_of.get(key, {})
    return any(g in groups for g in world.licence.can_use)


def can_use_groups(world: DcWorld) -> tuple[str, ...]:
    """The groups granting "Can use": the licence's, else a default install's (confluence-users, admins)."""
    if world.licence is not None:
        return world.licence.can_use
    return tuple(g for g in ("confluence-users", *world.admin_groups) if g in world.groups)


def global_grants(world: DcWorld, group: str) -> list[tuple[str, str]]:
    """The global permissions a group holds."""
    grants: list[tuple[str, str]] = []
    if group in can_use_groups(world):
        grants += USE_GRANTS
    if group in world.admin_groups:
        grants += [g for g in ADMIN_GRANTS if g not in grants]
    return grants


def seats(world: DcWorld) -> tuple[int, int, int]:
    """(userCount, maxUsers, remainingSeats); an unlimited licence answers -1 for the last two."""
    used = len(world.active_by_login())
    if world.licence is None or world.licence.max_users is None:
        return used, UNLIMITED, UNLIMITED
    return used, world.licence.max_users, max(0, world.licence.max_users - used)


def space_grants(world: DcWorld, space: DcSpace) -> list[tuple[str, str, str]]:
    """(subject type, subject name or userKey, operationKey) of a space's permissions, admins first."""
    out: list[tuple[str, str, str]] = []
    for key in space.admins:
        out += [("user", key, "administer"), ("user", key, "read")]
    for group in space.admin_groups:
        out += [("group", group, "administer"), ("group", group, "read")]
    return out
