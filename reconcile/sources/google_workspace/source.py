"""`GoogleSource`: users (suspended or archived: disabled) and the memberships of the selected groups, members
that are groups expanded client-side (cycle-safe), read with bounded concurrency and failing closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import msgspec

from reconcile.collector import collector_paused, full_collections_paused
from reconcile.config.idp_google import CustomerMembers, GoogleGroupsSettings, GoogleKey, GoogleSourceSettings
from reconcile.errors import SourceError
from reconcile.http import Backoff, Clock, all_of
from reconcile.model import DesiredState, DesiredUser, Globs, Identity, Location, SourceNote, Status, norm
from reconcile.sources.google_workspace.api import Directory
from reconcile.sources.ldap.mapping import GroupMap

log = logging.getLogger(__name__)
T = TypeVar("T")
USER_FIELDS = "nextPageToken,users(id,primaryEmail,suspended,archived,name/fullName)"
GROUP_FIELDS = "nextPageToken,groups(id,email,name)"
MEMBER_FIELDS = "nextPageToken,members(id,email,type,role)"
GLOB_CHARS = frozenset("*?[")


# A Struct, not a dataclass: built in C, positionally, 100,000 times a read; gc=False, as it holds only strings
# and frozen records (no cycles), so the collector never walks them.
class GUser(msgspec.Struct, frozen=True, gc=False):
    id: str
    email: str
    name: str | None
    suspended: bool
    archived: bool
    key: str  # made while the users are read (not in a pass over every user after the last page)
    identity: Identity
    origin: Location

    @property
    def fact(self) -> str:
        """The raw flags that decide the status, for the plan's reason (`google archived=true`)."""
        return _FACTS[self.suspended, self.archived]


def _fact(suspended: bool, archived: bool) -> str:
    said = [f"{flag}=true" for flag, on in (("suspended", suspended), ("archived", archived)) if on]
    return "google " + (" ".join(said) if said else "suspended=false archived=false")


_FACTS = {(s, a): _fact(s, a) for s in (False, True) for a in (False, True)}  # one string each, not one per user
_STATUS = {False: Status.ACTIVE, True: Status.DISABLED}  # by suspended or archived


@dataclass(slots=True)
class GGroup:
    id: str
    email: str
    name: str
    users: set[str] = field(default_factory=set)  # member user ids
    groups: set[str] = field(default_factory=set)  # member group ids
    customer: bool = False  # has a CUSTOMER member (every user of the account)
    other: int = 0  # members of other types (EXTERNAL...): not users of the account


@dataclass(slots=True)
class _Filing:
    """The mapped target of each chosen group, and the memberships already filed by user id: a chosen group
    without nested groups or a CUSTOMER member is filed as soon as its read ends (its members are its own
    users), so that little is left to do after the read's last page."""

    targets: dict[str, str]  # chosen group id -> mapped target (normalised; one string per name)
    nested: bool = True
    groups_of: dict[str, set[str]] = field(default_factory=dict)
    filed: set[str] = field(default_factory=set)  # chosen group ids whose members are in `groups_of`

    def file(self, group: GGroup, users: Iterable[str] | None = None) -> None:
        """File `users` (else the group's own, if they are all of its members) as members of its target."""
        target = self.targets.get(group.id)
        if target is None or (users is None and (group.customer or (self.nested and group.groups))):
            return
        held, groups_of = self.groups_of.get, self.groups_of
        with collector_paused():  # sets of strings: no cycles to find, ~200 new ones a group
            for user_id in group.users if users is None else users:
                mine = held(user_id)
                if mine is None:  # not setdefault: it would build a throwaway set per membership
                    groups_of[user_id] = {target}
                else:
                    mine.add(target)
        self.filed.add(group.id)


# gc=False: decoded from JSON, they hold strings, numbers and JSON containers only (no cycles)
class _UserItem(msgspec.Struct, gc=False):
    """The fields of a Directory user the source reads (`Any`: odd values are judged below, not by the decoder)."""

    id: Any = None
    primaryEmail: Any = None
    suspended: Any = None
    archived: Any = None
    name: Any = None


class _GroupItem(msgspec.Struct, gc=False):
    id: Any = None
    email: Any = None
    name: Any = None


class _MemberItem(msgspec.Struct, gc=False):
    id: Any = None
    email: Any = None
    type: Any = None


class GoogleSource:
    """`sources.<name>` with `type: google-workspace`: `read()` is its only operation."""

    def __init__(self, config: GoogleSourceSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.name = config.name
        self._transport, self._backoff, self._clock = transport, backoff, clock
        where = f"source '{config.name}' (google-workspace)"
        self.group_map = GroupMap.parse(config.groups.map, where=where) if config.groups else None
        self.requests = 0  # requests sent by the last read (for the benchmark)

    async def read(self) -> DesiredState:
        api = Directory(self.config, transport=self._transport, backoff=self._backoff, clock=self._clock)
        try:
            with full_collections_paused():
                gcfg = self.config.groups
                if gcfg is None:
                    return self._desired(api, await self._users(api), {}, [], _Filing({}))
                users = asyncio.ensure_future(self._users(api))  # in parallel with the groups' reads
                groups = asyncio.ensure_future(self._groups(api, gcfg))
                await all_of(users, groups)
                return self._desired(api, users.result(), *groups.result())
        finally:
            self.requests = api.requests
            await api.aclose()

    # ------------------------------------------------------------------------------------------ users

    async def _users(self, api: Directory) -> list[GUser]:
        """Every user, paged from both ends of the email order at once once there is a second page.

        Pages can only follow one another (`nextPageToken`), so one chain of them is the longest path of
        the read; two chains (`sortOrder` ASCENDING and DESCENDING) halve it. They stop when a page holds a
        user the other chain already has: proof, whatever Google's collation, that together they hold every
        user. A chain reaching its own end holds every user by itself."""
        base = {**api.scope_params(), "maxResults": 500, "orderBy": "email", "fields": USER_FIELDS}
        if self.config.users.query:
            base["query"] = self.config.users.query
        users: dict[str, GUser] = {}
        ids: dict[str, set[str]] = {"ASCENDING": set(), "DESCENDING": set()}
        key_of = _email if self.config.key is GoogleKey.PRIMARY_EMAIL else _local_part
        origin = f"{self.config.api_url} user "

        def take(order: str, items: list[_UserItem]) -> bool:
            """Keep a page's users; whether the other chain had one of them already (the chains met)."""
            other, mine, met = ids["DESCENDING" if order == "ASCENDING" else "ASCENDING"], ids[order], False
            for user in _parse_users(items, key_of, origin):
                met = met or user.id in other
                mine.add(user.id)
                users[user.id] = user
            return met

        async def chain(order: str, token: str | None, seen: set[str]) -> None:
            while True:
                items, token = await api.page("users", {**base, "sortOrder": order}, "users", token, seen=seen,
                                              item=_UserItem)
                if take(order, items) or token is None:
                    return

        tokens: set[str] = set()
        items, token = await api.page("users", {**base, "sortOrder": "ASCENDING"}, "users", seen=tokens,
                                      item=_UserItem)
        take("ASCENDING", items)
        if token is not None:
            up = asyncio.ensure_future(chain("ASCENDING", token, tokens))
            down = asyncio.ensure_future(chain("DESCENDING", None, set()))
            done, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            # a chain that failed fails the read; both may have failed at once: each error is retrieved (no
            # "never retrieved" report later) and the ascending chain's is the one raised, whatever the timing
            failures = [task.exception() for task in (up, down) if task in done]
            for failure in failures:
                if failure is not None:
                    raise failure
        log.info("%s: %d users read", api.where, len(users))
        return list(users.values())

    # ------------------------------------------------------------------------------------------ groups

    async def _groups(self, api: Directory,
                      gcfg: GoogleGroupsSettings) -> tuple[dict[str, GGroup], list[str], _Filing]:
        """Every group read (the chosen ones and the groups nested in them) by id, the chosen ids, and the
        memberships filed while the groups were read."""
        params: dict[str, Any] = {**api.scope_params(), "maxResults": 200, "fields": GROUP_FIELDS}
        if gcfg.query:
            params["query"] = gcfg.query
        listed: dict[str, GGroup] = {}
        async for page in api.pages("groups", params, "groups", _GroupItem):
            for item in page:
                if item.id and item.email:
                    listed[str(item.id)] = GGroup(str(item.id), norm(str(item.email)), str(item.name or item.email))
        chosen = [g.id for g in listed.values() if gcfg.include.matches(g.email, g.name)]
        self._check_named(api, gcfg.include, listed.values())
        filing = _Filing({}, gcfg.nested)
        normal: dict[str, str] = {}  # each mapped name normalised once: one string, however many members
        for group_id in chosen:
            group = listed[group_id]
            target = (self.group_map.target(group.name) or self.group_map.target(group.email)) \
                if self.group_map else None
            if target is not None:
                filing.targets[group_id] = normal.setdefault(norm(target), norm(target))
        await self._members(api, listed, chosen, filing)
        log.info("%s: %d groups listed, %d chosen, %d read", api.where, len(listed), len(chosen),
                 sum(1 for g in listed.values() if g.users or g.groups or g.customer))
        return listed, chosen, filing

    def _check_named(self, api: Directory, include: Globs, groups: Iterable[GGroup]) -> None:
        """An include entry without a wildcard names a group: it must exist (a typo would read nothing)."""
        known = {k for g in groups for k in (g.email, norm(g.name))}
        unknown = [p for p in include.patterns if not GLOB_CHARS & set(p) and norm(p) not in known]
        if unknown:
            where = f"customer {self.config.customer or 'my_customer'}" if not self.config.domain \
                else f"domain {self.config.domain}"
            query = f" matching groups.query {self.config.groups.query!r}" if self.config.groups and \
                self.config.groups.query else ""
            raise SourceError(f"{api.where}: no group {unknown[0]!r} in {where}{query}",
                              hint=f"check sources.{self.name}.groups.include (a group's email or name)")

    async def _members(self, api: Directory, groups: dict[str, GGroup], chosen: list[str], filing: _Filing) -> None:
        """Direct members of the chosen groups, and (nested) of every group inside them, by a pool of
        `http.concurrency` workers: each group's pages in order, the groups in parallel."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        queued = set(chosen)
        for group_id in chosen:
            queue.put_nowait(group_id)

        async def worker() -> None:
            while not queue.empty():
                group = groups[queue.get_nowait()]
                await self._read_group(api, group, groups)
                filing.file(group)
                for inner in sorted(group.groups) if filing.nested else ():
                    if inner not in queued:
                        queued.add(inner)
                        queue.put_nowait(inner)

        # Workers that find the queue empty end; nested groups found later are read by those still
        # running, and a last round picks up whatever the final worker left.
        while not queue.empty():
            await all_of(*(worker() for _ in range(max(1, self.config.http.concurrency))))

    async def _read_group(self, api: Directory, group: GGroup, groups: dict[str, GGroup]) -> None:
        params = {"maxResults": 200, "fields": MEMBER_FIELDS}
        async for page in api.pages(f"groups/{group.id}/members", params, "members", _MemberItem):
            for item in page:
                kind, ident = item.type, str(item.id or "")
                if kind == "USER" and ident:
                    group.users.add(ident)
                elif kind == "GROUP" and ident:
                    group.groups.add(ident)
                    if ident not in groups:  # nested from outside groups.query / another domain
                        email = str(item.email or ident)
                        groups[ident] = GGroup(ident, norm(email), email)
                elif kind == "CUSTOMER":
                    group.customer = True
                else:
                    group.other += 1

    # ---------------------------------------------------------------------------------- desired state

    def _closure(self, group: GGroup, groups: dict[str, GGroup]) -> tuple[set[str], bool]:
        """The user ids in `group` and the groups nested in it (once each: cycles end), and whether a
        CUSTOMER member is among them."""
        users, customer = set(group.users), group.customer
        seen, stack = {group.id}, [group]
        nested = self.config.groups is not None and self.config.groups.nested
        while stack and nested:
            current = stack.pop()
            for inner_id in current.groups:
                if inner_id in seen:
                    if inner_id == group.id:
                        log.warning("source %s: group %s contains itself (a cycle); its members count once",
                                    self.name, group.email)
                    continue
                seen.add(inner_id)
                inner = groups[inner_id]
                users |= inner.users
                customer = customer or inner.customer
                stack.append(inner)
        return users, customer

    def _desired(self, api: Directory, users: list[GUser], groups: dict[str, GGroup],
                 chosen: list[str], filing: _Filing) -> DesiredState:
        gcfg = self.config.groups
        groups_of = filing.groups_of
        notes: list[SourceNote] = []
        mapped: set[str] = set()
        for group_id in chosen:
            target = filing.targets.get(group_id)
            if gcfg is None or target is None:
                continue
            mapped.add(target)
            if group_id in filing.filed:
                continue
            group = groups[group_id]
            members, customer = self._closure(group, groups)
            if customer and gcfg.customer is CustomerMembers.EXPAND:
                members = {u.id for u in users}
            elif customer:
                notes.append(SourceNote(self.name, subject=group.email, message=(
                    f"Google group {group.email} has a CUSTOMER member (every user of the account): not expanded, "
                    f"so {target} gets its other members only; set groups.customer: expand to make every user "
                    "read a member")))
            filing.file(group, members)
        out: dict[str, DesiredUser] = {}
        name, none, held = self.name, frozenset[str](), groups_of.get
        with collector_paused():  # 100,000 records of strings and frozen records: no cycles
            for user in users:
                key = user.key
                if key in out:
                    other = next(u.email for u in users if u.key == key)  # the first with it, in read order
                    raise SourceError(f"{api.where}: two users have the key {key!r} ({other} and "
                                      f"{user.email})", hint=f"set sources.{self.name}.key: primary_email, or "
                                      "narrow users.query to one domain")
                mine = held(user.id)
                # positionally (the field order is pinned by tests/core/test_records.py)
                out[key] = DesiredUser(key, _STATUS[user.suspended or user.archived],
                                       frozenset(mine) if mine else none, user.identity, user.name, name,
                                       user.origin, _FACTS[user.suspended, user.archived])
        log.info("source %s (google-workspace): %d users, %d mapped groups", self.name, len(out), len(mapped))
        # what DesiredState.build would make, without a second pass over every user: keys are normalised
        # (emails by _parse_users), group names too (one string each), every user's groups among the mapped
        return DesiredState(users=out, groups=frozenset(mapped), notes=tuple(notes))


def _email(email: str) -> Identity:
    return Identity(email=email)


def _local_part(email: str) -> Identity:
    return Identity(username=email.split("@", 1)[0])


def _parse_users(items: list[_UserItem], key_of: Callable[[str], Identity], origin: str) -> Iterable[GUser]:
    """The users of a page; `key_of`: the identity of an email (its key its only field), `origin`: a prefix."""
    for item in items:
        if not item.primaryEmail or not item.id:
            continue
        full = item.name.get("fullName") if isinstance(item.name, dict) else None
        email = norm(str(item.primaryEmail))
        identity = key_of(email)
        yield GUser(str(item.id), email, full, item.suspended is True, item.archived is True,
                    identity.email or identity.username or "", identity, Location(origin + email))
