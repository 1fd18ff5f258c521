"""The merged desired state: the inline `yaml` source plus every configured source, read concurrently.

A user named by several sources gets the union of their groups and identity keys; two sources
stating different statuses, or different keys of one kind (emails, usernames, ...) for one user, is a
ConfigError. Each source, and the merged result, is refused when empty unless `allow_empty` says otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from reconcile import aio
from reconcile.errors import ConfigError, EmptySource
from reconcile.model import DesiredState, DesiredUser, Identity, Location, SourceNote, Status, norm
from reconcile.settings import Config, SourceSettings
from reconcile.sources.base import Source
from reconcile.sources.registry import SOURCES
from reconcile.sources.yaml import YamlSource

log = logging.getLogger(__name__)

SourceFactory = Callable[[SourceSettings], Source]


def open_source(config: SourceSettings) -> Source:
    """The Source a configuration names, built by its type's registry entry."""
    return SOURCES.get(config.type).open(config)


def read_desired(config: Config, *, factory: SourceFactory = open_source) -> DesiredState:
    """`gather_desired` for callers without an event loop (bench, scripts)."""
    return aio.run(gather_desired(config, factory=factory))  # asyncio.run would repr() the state


async def _read_all(sources: dict[str, Source]) -> dict[str, DesiredState]:
    """Every source read concurrently; a failure is raised for the first failing source by name."""
    names = list(sources)
    results = await asyncio.gather(*(sources[n].read() for n in names), return_exceptions=True)
    by_name = dict(zip(names, results, strict=True))
    failed = sorted(n for n, r in by_name.items() if isinstance(r, BaseException))
    for name in failed[1:]:
        log.error("source %s also failed: %s", name, by_name[name])
    if failed:
        error = by_name[failed[0]]
        assert isinstance(error, BaseException)
        raise error
    return {n: r for n, r in by_name.items() if isinstance(r, DesiredState)}


async def gather_desired(config: Config, *, factory: SourceFactory = open_source) -> DesiredState:
    """Read every source (concurrently) and merge them with the inline users; raises ConfigError,
    SourceError (the first failing source by name) or EmptySource."""
    merger = _Merger()
    merger.add(await YamlSource(config.inline).read(), "yaml", None)
    opened = {name: factory(source_config) for name, source_config in config.sources.items()}
    states = await _read_all(opened)
    for name, source_config in config.sources.items():
        state = states[name]
        log.info("source %s (%s): %d users", name, source_config.type, len(state.users))
        if not state.users and not (source_config.allow_empty or config.policy.allow_empty):
            where = f"{source_config.origin}: " if source_config.origin else ""
            raise EmptySource(
                f"{where}source '{name}' ({source_config.type}) returned no users; refusing to plan, "
                "since every user it should list would be treated as absent",
                hint=f"check the source; if it is really meant to be empty, set `allow_empty: true` on "
                f"source '{name}' (--force does not lift this guard)",
            )
        merger.add(state, name, source_config.origin)
    if merger.conflicts:
        raise ConfigError(merger.conflicts)
    merged = merger.result()
    guarded = {name: merger.keys_of(name) for name, source_config in config.sources.items()
               if not (source_config.allow_empty or config.policy.allow_empty)}
    merged = replace(merged, guarded=guarded)  # diff refuses a guarded source with no user in scope
    if not merged.users and not config.policy.allow_empty:
        raise EmptySource(
            f"{config.directory}: the desired state has no users (from the desired files"
            f"{''.join(f', source {n!r}' for n in config.sources)}); refusing to plan, since every "
            "in-scope user would be treated as absent",
            hint="name the users you want; if an empty desired state is really meant, set "
            "`policy: {allow_empty: true}` (--force does not lift this guard)",
        )
    return merged


@dataclass(slots=True)
class _Entry:
    """One merged user while sources are being added."""

    key: str
    sources: list[str]
    origin: Location | None
    status: Status = Status.ACTIVE
    stated_by: str | None = None  # the first source that stated a status
    identity: Identity = field(default_factory=Identity)
    display_name: str | None = None
    groups: frozenset[str] = frozenset()
    fact: str | None = None  # the stating source's raw fact behind `status`, for the plan's reason
    user: DesiredUser | None = None  # the one source's user this entry still equals: reused, not rebuilt

    def described(self) -> str:
        """`for 'carol', from desired/main.yaml:3:3`: which entry a conflict is with."""
        return f"for '{self.key}'" + (f", from {self.origin}" if self.origin else "")

    @staticmethod
    def of(user: DesiredUser) -> _Entry:
        """The entry a user kept as it is stands for (`_Merger.entries`): of one source, its own status."""
        stated = user.source != "yaml" or user.status is Status.DISABLED
        return _Entry(user.key, [user.source], user.origin, user.status, user.source if stated else None,
                      user.identity, user.display_name, user.groups, user.fact, user)


# Conflicts are reported for the first kind that differs, in this order.
_KINDS = (("email", "email"), ("username", "username"), ("account id", "account_id"),
          ("external id", "external_id"))


@dataclass(slots=True)
class _Merger:
    # A user no other source named yet is kept as it is, not as an _Entry (100,000 of them, each walked by the
    # young collections): made one (`_Entry.of`) when another source names it too.
    entries: list[_Entry | DesiredUser] = field(default_factory=list)
    normals: list[str] = field(default_factory=list)  # norm(key) of each entry
    index: dict[str, int] = field(default_factory=dict)  # normalised username or email -> entry
    groups: set[str] = field(default_factory=set)
    origins: dict[str, Location] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    notes: list[SourceNote] = field(default_factory=list)

    def add(self, state: DesiredState, name: str, origin: Location | None) -> None:
        self.groups |= state.groups
        self.notes += state.notes
        for group, loc in state.origins.items():
            self.origins.setdefault(group, loc)
        for user in state.users.values():
            self._user(user, name, origin)

    def _user(self, user: DesiredUser, name: str, source_origin: Location | None) -> None:
        # 100,000 users a source: norm() and `_identity` inlined, and no set of hits unless one is found
        i = user.identity
        identity = i if (i.username or i.email or i.account_id or i.external_id) else Identity.of_key(user.key)
        ids: list[str] = []  # the normalised key and identity keys, first seen first
        for k in (user.key, identity.username, identity.email, identity.account_id, identity.external_id):
            if k:
                normal = k.strip().lower()
                if normal == k:
                    normal = k  # the key itself when normal: the index keeps no copies
                if normal not in ids:
                    ids.append(normal)
        index = self.index
        # the usual case, a user no earlier one named: one C call, no list of hits to build
        hits = [] if index.keys().isdisjoint(ids) else sorted({index[k] for k in ids if k in index})
        stated = name != "yaml" or user.status is Status.DISABLED  # inline `active` is the default
        if not hits:
            origin = user.origin or source_origin
            fact = user.fact if stated else None
            if identity is i and origin is user.origin and user.source == name and fact == user.fact:
                self.entries.append(user)  # stands for `_Entry.of(user)`
            else:
                self.entries.append(_Entry(user.key, [name], origin, user.status, name if stated else None,
                                           identity, user.display_name, user.groups, fact))
            self.normals.append(ids[0] if user.key else "")
            at = len(self.entries) - 1
            for k in ids:
                index[k] = at
            return
        here = f"{user.origin or source_origin or name}"
        if len(hits) > 1:
            a, b = (self._entry(h) for h in hits)
            self.conflicts.append(f"{here}: user '{user.key}' from source '{name}' is both '{a.key}' "
                                  f"(from {'+'.join(a.sources)}) and '{b.key}' (from {'+'.join(b.sources)}); "
                                  "make the sources agree on its username and email")
            return
        entry = self._entry(hits[0])
        entry.user = None  # merged with another source's user: built anew in result()
        for kind, attribute in _KINDS:
            mine, theirs = getattr(identity, attribute), getattr(entry.identity, attribute)
            if mine and theirs and norm(mine) != norm(theirs):
                self.conflicts.append(
                    f"{here}: user '{user.key}': source '{name}' gives {kind} '{mine}', source "
                    f"'{'+'.join(entry.sources)}' gives '{theirs}' ({entry.described()}); make the sources agree")
                return
        if stated and entry.stated_by and entry.status is not user.status:
            self.conflicts.append(
                f"{here}: user '{user.key}': source '{name}' says {user.status}, source '{entry.stated_by}' "
                f"says {entry.status} ({entry.described()}); make the sources agree")
            return
        if stated and not entry.stated_by:
            entry.status, entry.stated_by, entry.fact = user.status, name, user.fact
        entry.identity = entry.identity.merged(identity)
        entry.display_name = entry.display_name or user.display_name
        entry.groups = entry.groups | user.groups
        if name not in entry.sources:
            entry.sources.append(name)
        for k in ids:
            self.index.setdefault(k, hits[0])

    def _entry(self, at: int) -> _Entry:
        """Entry `at` as an _Entry, made one now if it was a user kept as it is."""
        e = self.entries[at]
        if isinstance(e, DesiredUser):
            e = self.entries[at] = _Entry.of(e)
        return e

    def keys_of(self, source: str) -> frozenset[str]:
        """The normalised `users` keys of the merged users this source named."""
        return frozenset(n for e, n in zip(self.entries, self.normals, strict=True)
                         if (e.source == source if isinstance(e, DesiredUser) else source in e.sources))

    def result(self) -> DesiredState:
        users: dict[str, DesiredUser] = {}
        for e, normal in zip(self.entries, self.normals, strict=True):
            if isinstance(e, DesiredUser):
                users[normal] = e
            else:
                users[normal] = e.user or DesiredUser(
                    key=e.key, status=e.status, groups=e.groups, identity=e.identity,
                    display_name=e.display_name, source="+".join(e.sources), origin=e.origin, fact=e.fact)
            self.groups.update(e.groups)
        return DesiredState(users=users, groups=frozenset(self.groups), origins=dict(self.origins),
                            notes=tuple(self.notes))
