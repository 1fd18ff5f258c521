"""The simulated Confluence Data Center: a mutable in-memory world of users, groups and directories.

Owns the state and every change to it (the REST routes, the admin UI actions, `/_sim/mutate` and the
deletion queue all call these methods). No HTTP here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reconcile.sim.confluence_dc.facts import DcSpace, Licence, holds_licence

INTERNAL_DIRECTORY = "Confluence Internal Directory"


def user_key(seed: str) -> str:
    """A deterministic 32-hex Confluence userKey derived from `seed`."""
    return hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()


def parse_version(text: str) -> tuple[int, int]:
    """`"9.4"`, `"9.4.1"` or `"10"` -> (9, 4)."""
    parts = str(text).strip().split(".")
    major = int(parts[0])
    minor = int(parts[1]) if len(parts) > 1 else 0
    return (major, minor)


@dataclass(slots=True)
class Directory:
    name: str
    readonly: bool = False  # an LDAP/AD connector in "Read Only" mode: no user/group updates


@dataclass(slots=True)
class DcUser:
    key: str
    username: str  # lower-cased
    display_name: str
    email: str | None = None
    active: bool = True
    directory: str = INTERNAL_DIRECTORY
    last_login: str | None = None  # ISO-8601
    unsynced: bool = False  # "unsynced from directory": no longer in its directory, still mapped
    password: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "username": self.username,
            "display_name": self.display_name,
            "email": self.email,
            "active": self.active,
            "directory": self.directory,
            "last_login": self.last_login,
            "unsynced": self.unsynced,
        }


@dataclass(slots=True)
class DcGroup:
    name: str  # lower-cased
    directory: str = INTERNAL_DIRECTORY


class WorldError(Exception):
    """A change the world refuses; `status` is the HTTP status the simulator answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DcWorld:
    """Users by userKey, groups by name, memberships as insertion-ordered sets of userKeys.

    Unsynced entries live in `users` too (flag `unsynced`); several may share one username, so
    `by_username` indexes live (not unsynced) users only and `unsynced_by_username` keeps every entry.
    """

    def __init__(
        self,
        *,
        version: tuple[int, int] = (9, 4),
        directories: list[Directory] | None = None,
        admin_groups: tuple[str, ...] = ("confluence-administrators",),
        websudo: bool = True,
        delete_seconds: float = 0.2,
    ) -> None:
        self.version = version
        self.directories: dict[str, Directory] = {
            d.name: d for d in (directories or [Directory(INTERNAL_DIRECTORY)])
        }
        self.admin_groups = tuple(g.lower() for g in admin_groups)
        self.websudo = websudo
        self.delete_seconds = delete_seconds
        self.users: dict[str, DcUser] = {}
        self.by_username: dict[str, str] = {}  # live users: username -> key
        self.unsynced_by_username: dict[str, list[str]] = {}
        self.groups: dict[str, DcGroup] = {}
        self.members: dict[str, dict[str, None]] = {}  # group -> ordered set of user keys
        self.groups_of: dict[str, dict[str, None]] = {}  # user key -> ordered set of groups
        self.tokens: dict[str, str] = {}  # personal access token -> user key
        self.deleted: dict[str, str] = {}  # user key -> anonymised alias ("user-1a2b3")
        self.revision = 0  # bumped by every change made through these methods: keys the routes' page cache
        self._user_list: list[str] | None = None
        self._active_list: list[str] | None = None
        self._member_lists: dict[str, list[str]] = {}
        self._group_list: list[str] | None = None
        self.licence: Licence | None = None  # None: not modelled, every active user counts (facts.py)
        self.spaces: dict[str, DcSpace] = {}  # by key
        self.last_login_field = True  # False: a 9.3-10.1 server that ignores expand=lastLogin [U]

    # -- reads ---------------------------------------------------------------------------------

    def user_by_username(self, username: str) -> DcUser | None:
        """The live user, else the first unsynced entry with that username (like user_mapping)."""
        name = username.lower()
        key = self.by_username.get(name)
        if key is None:
            keys = self.unsynced_by_username.get(name)
            key = keys[0] if keys else None
        return self.users.get(key) if key else None

    def live_users(self) -> list[str]:
        """Keys of every live (not unsynced) user (active or disabled), in creation order; cached."""
        if self._user_list is None:
            self._user_list = [k for k, u in self.users.items() if not u.unsynced]
        return self._user_list

    def active_by_login(self) -> list[str]:
        """Keys of licensed (active, not unsynced, "Can use") users, least recent login first (never: first); cached."""
        if self._active_list is None:
            live = [self.users[k] for k in self.live_users()]
            active = [u for u in live if holds_licence(self, u.key)]
            active.sort(key=lambda u: (u.last_login or "", u.username))
            self._active_list = [u.key for u in active]
        return self._active_list

    def _lists_dirty(self) -> None:
        self.revision += 1
        self._user_list = None
        self._active_list = None

    def member_list(self, group: str) -> list[str]:
        cached = self._member_lists.get(group)
        if cached is None:
            cached = list(self.members.get(group, {}))
            self._member_lists[group] = cached
        return cached

    def group_list(self) -> list[str]:
        if self._group_list is None:
            self._group_list = sorted(self.groups)
        return self._group_list

    def is_admin(self, key: str) -> bool:
        groups = self.groups_of.get(key, {})
        return any(g in groups for g in self.admin_groups)

    def directory_of_group(self, name: str) -> Directory:
        return self.directories[self.groups[name].directory]

    def unsynced(self) -> Iterator[DcUser]:
        return (u for u in self.users.values() if u.unsynced)

    def unsynced_list(self) -> list[DcUser]:
        """Unsynced entries by (username, key), as the admin page lists them: from `unsynced_by_username`, so a
        page costs the few unsynced entries, not a walk over every user."""
        entries = [self.users[k] for keys in self.unsynced_by_username.values() for k in keys
                   if k in self.users and self.users[k].unsynced]
        return sorted(entries, key=lambda u: (u.username, u.key))

    def invalidate(self) -> None:
        """Drop cached listings after bulk changes made directly to the dictionaries."""
        self._lists_dirty()
        self._group_list = None
        self._member_lists.clear()

    # -- changes -------------------------------------------------------------------------------

    def add_directory(self, directory: Directory) -> None:
        self.revision += 1
        self.directories[directory.name] = directory

    def add_user(self, user: DcUser) -> DcUser:
        if user.key in self.users:
            raise WorldError(409, f"a user with userKey {user.key} already exists")
        if user.directory not in self.directories:
            raise WorldError(400, f"unknown directory {user.directory!r}")
        user.username = user.username.lower()
        if user.unsynced:
            self.unsynced_by_username.setdefault(user.username, []).append(user.key)
        else:
            if user.username in self.by_username:
                raise WorldError(409, f"a user named {user.username!r} already exists")
            self.by_username[user.username] = user.key
        self.users[user.key] = user
        self._lists_dirty()
        return user

    def add_group(self, name: str, directory: str = INTERNAL_DIRECTORY) -> DcGroup:
        name = name.lower()
        if name in self.groups:
            raise WorldError(409, f"A group with name {name} already exists")
        if directory not in self.directories:
            raise WorldError(400, f"unknown directory {directory!r}")
        group = DcGroup(name, directory)
        self.groups[name] = group
        self.members[name] = {}
        self._group_list = None
        self.revision += 1
        return group

    def remove_group(self, name: str) -> None:
        name = name.lower()
        if name not in self.groups:
            raise WorldError(404, f"Group {name} not found")
        self._licence_changed(name)
        for key in self.members.pop(name):
            self.groups_of.get(key, {}).pop(name, None)
        del self.groups[name]
        self._member_lists.pop(name, None)
        self._group_list = None
        self.revision += 1

    def add_member(self, key: str, group: str) -> bool:
        """Add; False when already a member."""
        members = self.members[group]
        if key in members:
            return False
        members[key] = None
        self.groups_of.setdefault(key, {})[group] = None
        self._member_lists.pop(group, None)
        self.revision += 1
        self._licence_changed(group)
        return True

    def remove_member(self, key: str, group: str) -> bool:
        members = self.members[group]
        if key not in members:
            return False
        del members[key]
        self.groups_of.get(key, {}).pop(group, None)
        self._member_lists.pop(group, None)
        self.revision += 1
        self._licence_changed(group)
        return True

    def _licence_changed(self, group: str) -> None:
        if self.licence is not None and group in self.licence.can_use:
            self._active_list = None

    def set_active(self, key: str, active: bool) -> None:
        self.users[key].active = active
        self._lists_dirty()

    def make_unsynced(self, key: str) -> None:
        """The user vanished from its directory: it keeps its key, loses its memberships."""
        user = self.users[key]
        if user.unsynced:
            return
        self.by_username.pop(user.username, None)
        user.unsynced = True
        user.active = False
        self.unsynced_by_username.setdefault(user.username, []).append(key)
        for group in list(self.groups_of.get(key, {})):
            self.remove_member(key, group)
        self._lists_dirty()

    def remove_user(self, key: str) -> None:
        """Delete: the mapping survives as an anonymised alias (`GET /rest/api/user?key=`)."""
        user = self.users.pop(key)
        if user.unsynced:
            keys = self.unsynced_by_username.get(user.username, [])
            if key in keys:
                keys.remove(key)
            if not keys:
                self.unsynced_by_username.pop(user.username, None)
        else:
            self.by_username.pop(user.username, None)
        for group in list(self.groups_of.pop(key, {})):
            self.members[group].pop(key, None)
            self._member_lists.pop(group, None)
        for token in [t for t, k in self.tokens.items() if k == key]:
            del self.tokens[token]
        self.deleted[key] = "user-" + key[:5]
        self._lists_dirty()

    def to_json(self) -> dict[str, Any]:
        """The whole state, for `/_sim/state` (tokens and passwords are never included)."""
        return {
            "version": f"{self.version[0]}.{self.version[1]}",
            "directories": [{"name": d.name, "readonly": d.readonly} for d in self.directories.values()],
            "admin_groups": list(self.admin_groups),
            "users": [u.to_json() for u in self.users.values()],
            "groups": [
                {"name": g.name, "directory": g.directory, "members": [self.users[k].username for k in m]}
                for g, m in ((self.groups[n], self.members[n]) for n in self.group_list())
            ],
            "deleted": sorted(self.deleted),
            **({"licence": {"max_users": self.licence.max_users, "can_use": list(self.licence.can_use)}}
               if self.licence is not None else {}),
            **({"spaces": [s.to_json(self) for s in self.spaces.values()]} if self.spaces else {}),
        }
