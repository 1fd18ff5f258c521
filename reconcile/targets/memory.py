"""The memory target: a real Target whose actual state is one JSON file, read and written in place.

It is what the core's, the CLI's and the kill -9 tests run against, and a way to try a
configuration without a server (`target: {type: memory, state: world.json}`).

State file format (JSON, UTF-8)::

    {
      "me": "u-admin",                       # ref of the account "the credentials" belong to
      "users": [
        {"ref": "u-alice",                   # stable reference (the Confluence DC userKey)
         "username": "alice",                # optional; lower-cased on read
         "email": "alice@example.com",       # optional
         "display_name": "Alice",            # optional
         "status": "active",                 # active | disabled (default active)
         "last_active": {"confluence": "2026-11-20T09:00:00Z"},  # per product (optional: unknown; {}: never)
         "unsynced": false,                  # a DC "unsynced from directory" entry (default false)
         "impact": {"personal_space": "~alice", "sole_admin_of": ["DOCS"], "content": 214}}
                                             # what deleting it destroys (policy.delete_guard); a fact
                                             # left out, or no `impact`, is unknown
      ],
      "licence": {"max": 30,                 # optional: seats (null: unlimited); absent: not modelled
                  "groups": ["confluence-users"]},  # the licence-granting groups: active members hold a seat
      "groups": [
        {"name": "team-docs",                # lower-cased on read
         "members": ["u-alice"],             # user refs
         "readonly": false}                  # the group's directory refuses writes (default false)
      ],
      "log": [                               # written by the target: one entry per change it made
        {"kind": "add_member", "ref": "u-alice", "group": "team-docs"}
      ]
    }

`readonly` in the file is the server's truth (writes to the group fail, like a Confluence group
of a read-only LDAP directory); `Group.readonly` in the fetched state comes from the
configuration's `readonly_groups` globs, exactly as on the Confluence DC target. Users that are
members of a group matching `admin_groups` are reported as admins (protected).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, assert_never

from reconcile.errors import TargetError
from reconcile.impact import Impact
from reconcile.model import Activity, ActualState, Group, Licence, Scope, Status, User, norm, parse_instant
from reconcile.plan import Action, ActionKind
from reconcile.policies import GuardCondition
from reconcile.settings import MemorySettings
from reconcile.targets.base import ALL_KINDS, Outcome, Progress, Result

log = logging.getLogger(__name__)

# The same advice as the Confluence DC target gives for a read-only directory's group.
READONLY_MESSAGE = (
    "group '{group}' belongs to a read-only directory\n"
    "  → add it to target.readonly_groups so that plans leave its membership alone"
)
AGAIN = "the state file changed since planning: run plan again"


class MemoryTarget:
    """A file-backed target. Each performed action is one atomic rewrite of the state file."""

    supports = ALL_KINDS

    def __init__(self, config: MemorySettings) -> None:
        self.config = config
        self.path = Path(config.state)

    def address(self) -> dict[str, str]:
        return self.config.address()

    def concurrency(self, kind: ActionKind) -> int:
        # Like Confluence DC: deletions one at a time, everything else a few at once.
        match kind:
            case ActionKind.DELETE:
                return 1
            case (ActionKind.ENABLE | ActionKind.ADD_MEMBER | ActionKind.REMOVE_MEMBER | ActionKind.REMOVE_LICENCE
                  | ActionKind.DISABLE):
                return 4
            case _:
                assert_never(kind)

    async def fetch(self, scope: Scope, progress: Progress | None = None) -> ActualState:
        data = self._read()
        users = [_user(u, self.path) for u in data.get("users", [])]
        groups: list[Group] = []
        members: dict[str, list[str]] = {}
        for g in data.get("groups", []):
            name = norm(str(g["name"]))
            groups.append(Group(name=name, ref=name, readonly=self.config.readonly_groups.matches(name)))
            members[name] = [str(ref) for ref in g.get("members", [])]
        admins = {
            ref for name, refs in members.items() if self.config.admin_groups.matches(name) for ref in refs
        }
        users = [_with_admin(u, u.ref in admins) for u in users]
        if progress is not None:
            progress("users", len(users), len(users))
        me = data.get("me")
        return ActualState.build(users, groups, members, me=str(me) if me else None)

    async def impact(self, users: Sequence[User]) -> Mapping[str, Impact]:
        raw = {str(u["ref"]): u.get("impact") for u in self._read().get("users", [])}
        return {user.ref: _impact(raw.get(user.ref), self.path) for user in users}

    async def licence(self, scope: Scope, product: str) -> Licence | None:
        raw = self._read().get("licence")
        if not isinstance(raw, dict):
            return None
        data = self._read()
        members = {norm(str(g["name"])): frozenset(str(m) for m in g.get("members", []))
                   for g in data.get("groups", [])}
        granting = {norm(str(g)): members.get(norm(str(g)), frozenset()) for g in raw.get("groups") or []}
        active = {str(u["ref"]) for u in data.get("users", [])
                  if u.get("status", "active") == "active" and not u.get("unsynced")}
        used = len(active & frozenset().union(*granting.values()))
        maximum = raw.get("max")
        return Licence(product=product, used=used, maximum=int(maximum) if maximum is not None else None,
                       source="the state file", granting=granting)

    async def perform(self, action: Action) -> Outcome:
        if self.config.delay:
            await asyncio.sleep(self.config.delay)
        # No await between read and write: within one event loop this is a critical section.
        data = self._read()
        outcome, changed = _apply(data, action)
        if changed:
            data.setdefault("log", []).append(
                {"kind": str(action.kind), "ref": action.subject.ref, "group": action.group}
            )
            self._write(data)
        log.debug("memory %s: %s %s", self.path, action.describe(), outcome.result)
        return outcome

    async def aclose(self) -> None:
        return None

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise TargetError(
                f"memory target: state file {self.path} does not exist",
                hint="create it (see reconcile/targets/memory.py for the format) or fix target.state",
            ) from exc
        except (OSError, ValueError) as exc:
            raise TargetError(
                f"memory target: cannot read {self.path}: {exc}", hint="fix or recreate the state file"
            ) from exc
        if not isinstance(data, dict):
            raise TargetError(f"memory target: {self.path} is not a JSON object")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        """Write atomically: a temporary file in the same directory, fsync, rename, fsync the directory."""
        directory = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _user(raw: dict[str, Any], path: Path) -> User:
    try:
        return User(
            ref=str(raw["ref"]),
            username=norm(raw["username"]) if raw.get("username") else None,
            email=str(raw["email"]) if raw.get("email") else None,
            display_name=raw.get("display_name"),
            status=Status(raw.get("status", "active")),
            unsynced=bool(raw.get("unsynced", False)),
            last_active=_activity(raw["last_active"]) if "last_active" in raw else None,
            added_to_org=parse_instant(raw.get("added_to_org")),
        )
    except (KeyError, ValueError, AttributeError) as exc:
        raise TargetError(f"memory target: bad user entry {raw!r} in {path}: {exc}") from exc


def _activity(raw: dict[str, Any]) -> Activity:
    stamps = {str(product): parse_instant(text) for product, text in raw.items()}
    bad = sorted(p for p, stamp in stamps.items() if stamp is None)
    if bad:
        raise ValueError(f"last_active of {bad[0]} is not an ISO-8601 timestamp")
    return Activity({p: stamp for p, stamp in stamps.items() if stamp is not None})


def _impact(raw: Any, path: Path) -> Impact:
    """A user's `impact` entry; each fact it leaves out is unknown."""
    if raw is None:
        return Impact.unread(f"{path.name} records no impact for this user")
    if not isinstance(raw, dict):
        raise TargetError(f"memory target: impact {raw!r} in {path} is not an object")
    unknown = {c: f"not in {path.name}" for c, name in _FACTS.items() if name not in raw}
    try:
        space = raw.get("personal_space")
        return Impact(personal_space=str(space) if space else None,
                      sole_admin_of=tuple(str(k) for k in raw.get("sole_admin_of") or ()),
                      content=int(raw.get("content") or 0), unknown=unknown)
    except (TypeError, ValueError) as exc:
        raise TargetError(f"memory target: bad impact {raw!r} in {path}: {exc}") from exc


_FACTS = {GuardCondition.PERSONAL_SPACE: "personal_space", GuardCondition.SOLE_SPACE_ADMIN: "sole_admin_of",
          GuardCondition.CONTENT_CREATED: "content"}


def _with_admin(user: User, admin: bool) -> User:
    return replace(user, admin=True) if admin else user


def _apply(data: dict[str, Any], action: Action) -> tuple[Outcome, bool]:
    """Change `data` in place for one action; returns the outcome and whether anything changed."""
    ref = action.subject.ref
    user = next((u for u in data.get("users", []) if str(u["ref"]) == ref), None)
    match action.kind:
        case ActionKind.DELETE:
            return _delete(data, ref, user)
        case ActionKind.ENABLE:
            return _status(user, ref, Status.ACTIVE)
        case ActionKind.DISABLE:
            return _status(user, ref, Status.DISABLED)
        case ActionKind.ADD_MEMBER:
            return _membership(data, action, user, add=True)
        case ActionKind.REMOVE_MEMBER | ActionKind.REMOVE_LICENCE:  # a licence is a group membership
            return _membership(data, action, user, add=False)
        case _:
            assert_never(action.kind)


def _missing_user(ref: str) -> tuple[Outcome, bool]:
    return Outcome(Result.FAILED, f"user {ref} does not exist\n  → {AGAIN}", http_status=404), False


def _delete(data: dict[str, Any], ref: str, user: dict[str, Any] | None) -> tuple[Outcome, bool]:
    if user is None:
        return Outcome(Result.ALREADY, "no such user (already deleted)", http_status=404), False
    data["users"] = [u for u in data["users"] if str(u["ref"]) != ref]
    for g in data.get("groups", []):
        g["members"] = [m for m in g.get("members", []) if str(m) != ref]
    return Outcome(Result.DONE, "deleted", http_status=204), True


def _status(user: dict[str, Any] | None, ref: str, wanted: Status) -> tuple[Outcome, bool]:
    if user is None:
        return _missing_user(ref)
    if user.get("status", "active") == wanted:
        return Outcome(Result.ALREADY, f"already {wanted}", http_status=204), False
    user["status"] = str(wanted)
    return Outcome(Result.DONE, str(wanted), http_status=204), True


def _membership(data: dict[str, Any], action: Action, user: dict[str, Any] | None, *, add: bool,
                ) -> tuple[Outcome, bool]:
    ref = action.subject.ref
    if user is None:
        return _missing_user(ref)
    group_name = norm(action.group or "")
    group = next((g for g in data.get("groups", []) if norm(str(g["name"])) == group_name), None)
    if group is None:
        return Outcome(Result.FAILED, f"group {group_name} does not exist\n  → {AGAIN}", http_status=404), False
    if group.get("readonly"):
        return Outcome(Result.FAILED, READONLY_MESSAGE.format(group=group_name), http_status=403), False
    members = [str(m) for m in group.get("members", [])]
    if add:
        if ref in members:
            return Outcome(Result.ALREADY, "already a member", http_status=204), False
        group["members"] = [*members, ref]
        return Outcome(Result.DONE, "added", http_status=204), True
    if ref not in members:
        return Outcome(Result.ALREADY, "not a member", http_status=204), False
    group["members"] = [m for m in members if m != ref]
    return Outcome(Result.DONE, "removed", http_status=204), True
