"""From checked files to typed values: the target, sources, scope, policy and the inline desired state.

Cross-file rules live here: one `target`, each section once, each user and group defined once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reconcile.config.format import POLICY, SCOPE
from reconcile.config.into import build
from reconcile.config.nodes import Fields, Item, unknown_value
from reconcile.errors import ConfigError
from reconcile.model import (
    DesiredState,
    DesiredUser,
    Identity,
    Location,
    Policy,
    Scope,
    Status,
    is_email,
    norm,
)
from reconcile.policies import Exemption
from reconcile.settings import SourceSettings, TargetSettings
from reconcile.sources.registry import SOURCES
from reconcile.targets.registry import TARGETS

log = logging.getLogger(__name__)

Problems = list[tuple[Location, str]]
SECTIONS = ("target", "scope", "policy", "sources", "notify")


def _v(fields: Fields | None, key: str, default: Any = None) -> Any:
    item = (fields or {}).get(key)
    return default if item is None or item.value is None else item.value


def sections(docs: Sequence[Fields], problems: Problems) -> dict[str, Item]:
    """The once-only sections across files; a second definition is a problem naming the first."""
    seen: dict[str, Item] = {}
    for doc in docs:
        for name in SECTIONS:
            item = doc.get(name)
            if item is None:
                continue
            if name in seen:
                problems.append((item.key_loc, f"'{name}' is already defined at {seen[name].key_loc}; "
                                 "write it once across the desired files"))
                continue
            seen[name] = item
    return seen


def _type_problem(fields: Fields, path: str, known: Sequence[str]) -> tuple[Location, str]:
    """An unknown `type:`: the loader's checks refuse it first; the builder never guesses one."""
    item = fields.get("type")
    where = item.loc if item is not None else Location("<configuration>")
    value = None if item is None else item.value
    return where, f"{path}.type: {unknown_value(value, known)}"


def target(fields: Fields) -> TargetSettings:
    """The target configuration; ConfigError for a type this version does not know."""
    kind = TARGETS.kind_of(fields)
    if kind is None:
        where, message = _type_problem(fields, "target", TARGETS.names())
        raise ConfigError([f"{where}: {message}"])
    config: TargetSettings = kind.build(fields)
    return config


def sources(item: Item | None, problems: Problems) -> dict[str, SourceSettings]:
    out: dict[str, SourceSettings] = {}
    entries: dict[str, Item] = (item.value if item else None) or {}
    for name, entry in entries.items():
        fields: Fields = entry.value
        kind = SOURCES.kind_of(fields)
        if kind is None:
            problems.append(_type_problem(fields, f"sources.{name}", SOURCES.names()))
            continue
        if kind.check is not None:
            kind.check(name, fields, problems)
        out[name] = kind.build(fields, name=name, origin=entry.key_loc)
    return out


def scope(fields: Fields | None) -> Scope:
    return build(SCOPE, Scope, fields)


def policy(fields: Fields | None, exemptions: tuple[Exemption, ...] = ()) -> Policy:
    return build(POLICY, Policy, fields, exemptions=exemptions)


@dataclass(slots=True)
class _Draft:
    key: str
    origin: Location
    status: Status = Status.ACTIVE
    groups: set[str] = field(default_factory=set)
    username: str | None = None
    email: str | None = None
    name: str | None = None

    def freeze(self) -> DesiredUser:
        extra = Identity(username=self.username, email=self.email)
        identity = Identity.of_key(self.key).merged(extra) if extra.items() else Identity()  # empty: the key alone
        return DesiredUser(key=self.key, status=self.status, groups=frozenset(self.groups), identity=identity,
                           display_name=self.name, source="yaml", origin=self.origin)


@dataclass(slots=True)
class _Inline:
    """The inline users and groups being collected from every file."""

    problems: Problems
    users: dict[str, _Draft] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # a `username:`/`email:` -> that user's key
    named: dict[str, list[Location]] = field(default_factory=dict)  # group -> every place it is named
    defined_groups: dict[str, Location] = field(default_factory=dict)

    def user(self, key: str, item: Item) -> None:
        k = norm(key)
        if k in self.users:
            self.problems.append((item.key_loc, f"user '{key}' is defined twice (also at "
                                  f"{self.users[k].origin}); define each user once"))
            return
        if k in self.aliases:
            owner = self.users[self.aliases[k]]
            self.problems.append((item.key_loc, f"user '{key}' is already user '{owner.key}' (its username "
                                  f"or email) at {owner.origin}; define each user once"))
            return
        fields: Fields = item.value or {}
        draft = self.users[k] = _Draft(
            key=key.strip(), origin=item.key_loc, status=Status(_v(fields, "status", Status.ACTIVE)),
            username=_v(fields, "username"), email=_v(fields, "email"), name=_v(fields, "name"))
        for extra in ("username", "email"):
            alias = fields.get(extra)
            if alias is not None:
                self._alias(key, extra, alias)
        for group in _v(fields, "groups") or []:
            draft.groups.add(norm(group.value))
            self.named.setdefault(norm(group.value), []).append(group.loc)

    def _alias(self, key: str, extra: str, alias: Item) -> None:
        if (extra == "email") == is_email(key):
            other = "username" if extra == "email" else "email"
            self.problems.append((alias.key_loc, f"users.{key}.{extra}: the key is already the {extra}; "
                                  f"give the {other} instead"))
            return
        name, k = norm(alias.value), norm(key)
        owner = self.aliases.get(name) or (name if name in self.users else None)
        if owner is not None and owner != k:
            self.problems.append((alias.loc, f"users.{key}.{extra}: '{alias.value}' is also user "
                                  f"'{self.users[owner].key}' at {self.users[owner].origin}"))
            return
        self.aliases[name] = k

    def group(self, name: str, item: Item) -> None:
        group = norm(name)
        if group in self.defined_groups:
            self.problems.append((item.key_loc, f"group '{name}' is defined twice (also at "
                                  f"{self.defined_groups[group]}); define each group once"))
            return
        self.defined_groups[group] = item.key_loc
        self.named.setdefault(group, []).append(item.key_loc)
        for member in _v(item.value, "members") or []:
            key = norm(member.value)
            draft = self.users.get(self.aliases.get(key, key))
            if draft is None:
                draft = self.users[key] = _Draft(key=member.value.strip(), origin=member.loc)
            draft.groups.add(group)

    def outside(self, owned: Scope) -> None:
        for group, places in self.named.items():
            if not owned.owns_group(group):
                more = f" (and {len(places) - 1} more places)" if len(places) > 1 else ""
                self.problems.append((places[0], f"group '{group}' is outside scope.groups{more}; add it "
                                      "(or a glob matching it) to scope.groups, or remove it"))


def inline(docs: Sequence[Fields], owned: Scope | None, problems: Problems) -> DesiredState:
    """Users and groups written in the files; `owned` is None when scope itself was invalid."""
    state = _Inline(problems)
    for doc in docs:
        for key, item in (_v(doc, "users") or {}).items():
            state.user(key, item)
    for doc in docs:
        for name, item in (_v(doc, "groups") or {}).items():
            state.group(name, item)
    if owned is not None:
        state.outside(owned)
    return DesiredState(
        users={k: d.freeze() for k, d in state.users.items()},
        groups=frozenset(state.named),
        origins={g: places[0] for g, places in state.named.items()},
    )
