"""`OktaSource`: users (by status), groups (names, globs, `search` or `q`) and their members, read
concurrently within `concurrency`, as a desired state. Fail closed: any page that fails after retries
stops the read with a SourceError; a partial read never becomes a desired state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import msgspec

from reconcile.collector import full_collections_paused
from reconcile.errors import SourceError
from reconcile.http import Backoff, Clock
from reconcile.model import DesiredState, DesiredUser, Identity, Location, Status, norm
from reconcile.sources.ldap.mapping import GroupMap
from reconcile.sources.okta.client import OktaClient
from reconcile.sources.okta.settings import Desired, OktaGroupsSettings, OktaKey, OktaSourceSettings

log = logging.getLogger(__name__)

USERS_LIMIT = 200  # Okta's maximum for /api/v1/users
GROUPS_LIMIT = 10_000  # the document's maximum for /api/v1/groups
MEMBERS_LIMIT = 1_000  # the maximum for /api/v1/groups/{id}/users (okta-developer-docs#368)
GLOB_CHARS = frozenset("*?[")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OktaUser:
    id: str
    login: str
    email: str | None
    name: str | None
    status: str
    key: str | None  # the identity key (email or login, normalised); None: the user has none
    identity: Identity  # made while the user list is read, not in a pass over every user after it
    origin: Location


@dataclass(frozen=True, slots=True)
class OktaGroup:
    id: str
    name: str
    mapped: str


class _UserItem(msgspec.Struct):
    """The fields of Okta's user object the source reads (the rest of each page is skipped while decoding);
    `Any`, so that a missing or odd value reaches the same one-line error as before, not a decoder's."""

    id: Any = None
    status: Any = None
    profile: Any = None


class _GroupItem(msgspec.Struct):
    id: Any = None
    profile: Any = None


class _Member(msgspec.Struct):
    id: Any = None


USER_PAGE = msgspec.json.Decoder(list[_UserItem])
GROUP_PAGE = msgspec.json.Decoder(list[_GroupItem])
MEMBER_PAGE = msgspec.json.Decoder(list[_Member])


class OktaSource:
    """Reads an Okta org: `read()` is its only operation."""

    def __init__(self, config: OktaSourceSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.name = config.name
        self._transport, self._backoff, self._clock = transport, backoff, clock
        where = f"source '{config.name}' (okta)"
        self.group_map = GroupMap.parse(config.groups.map, where=where) if config.groups else None
        self.requests = 0  # requests the last read sent (retries included), for the bench and logs

    async def read(self) -> DesiredState:
        client = OktaClient(self.config, transport=self._transport, backoff=self._backoff, clock=self._clock)
        try:
            with full_collections_paused():
                return await self._read(client)
        finally:
            self.requests = client.requests
            await client.aclose()

    async def _read(self, client: OktaClient) -> DesiredState:
        # Users and memberships are read at once: each user list is one cursor chain (a page at a time), so
        # the member reads fill the other lanes meanwhile. A chain is the read's longest path, so it keeps a
        # lane of its own (never queued behind member reads); its lane joins the member reads when it ends.
        # A failure of either cancels the other.
        queries = self._queries(client)
        reserved = min(len(queries), self.config.concurrency - 1)
        window = asyncio.Semaphore(self.config.concurrency - reserved)  # member reads of groups at a time
        reading = asyncio.ensure_future(self._users(client, queries, window, reserved))
        members: dict[str, set[str]] = {}  # user id -> mapped group names, filed page by page
        try:
            groups = await self._memberships(client, members, window)
        except BaseException:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            raise
        users = await reading
        strangers = sum(len(names) for user_id, names in members.items() if user_id not in users)
        if strangers:
            log.info("source %s: %d group memberships of users not read (users.search/filter, or a status not "
                     "read) ignored", self.name, strangers)
        return self._desired(users, members, {g.mapped for g in groups})

    async def _memberships(self, client: OktaClient, members: dict[str, set[str]],
                           window: asyncio.Semaphore) -> list[OktaGroup]:
        """The mapped groups (none without a `groups:` section); their members filed into `members`, the
        groups read `window` at a time."""
        if self.config.groups is None or self.group_map is None:
            return []
        groups = await self._groups(client, self.config.groups, self.group_map)
        await _all_of(*(self._members(client, g, window, members) for g in groups))
        return groups

    # ------------------------------------------------------------------------------------------ users

    def _queries(self, client: OktaClient) -> list[tuple[dict[str, str], str]]:
        """The user lists to read: their query parameters and how an error names each."""
        ucfg = self.config.users
        if ucfg.search is not None:  # a search or filter finds every status, DEPROVISIONED included
            return [({"search": ucfg.search}, f"{client.setting}.users.search {ucfg.search!r}")]
        if ucfg.filter is not None:
            return [({"filter": ucfg.filter}, f"{client.setting}.users.filter {ucfg.filter!r}")]
        queries: list[tuple[dict[str, str], str]] = [({}, "the user list")]
        if ucfg.status.deprovisioned is not Desired.ABSENT:  # a plain list omits DEPROVISIONED users
            queries.append(({"filter": 'status eq "DEPROVISIONED"'}, "the DEPROVISIONED user list"))
        return queries

    async def _users(self, client: OktaClient, queries: list[tuple[dict[str, str], str]],
                     window: asyncio.Semaphore, reserved: int) -> dict[str, OktaUser]:
        """Every user of the `queries`; the first `reserved` lists each hand their lane to `window` when done."""
        lists = await _all_of(*(self._user_list(client, params, what, window if i < reserved else None)
                                for i, (params, what) in enumerate(queries)))
        users: dict[str, OktaUser] = {}
        for found in lists:
            for user in found:
                users[user.id] = user
        log.info("source %s: %d Okta users read", self.name, len(users))
        return users

    async def _user_list(self, client: OktaClient, params: dict[str, str], what: str,
                         lane: asyncio.Semaphore | None) -> list[OktaUser]:
        out: list[OktaUser] = []
        by_email, origin = self.config.key is OktaKey.EMAIL, f"{self.config.url} "
        pages = client.pages("/api/v1/users", {**params, "limit": str(USERS_LIMIT)}, what, USER_PAGE, chain=True)
        async with aclosing(pages):
            async for page in pages:  # each user made whole while the next page travels (not after the read)
                out.extend(_user(item, client.where, by_email, origin) for item in page)
        if lane is not None:
            lane.release()
        return out

    # ------------------------------------------------------------------------------------------ groups

    async def _groups(self, client: OktaClient, gcfg: OktaGroupsSettings, group_map: GroupMap) -> list[OktaGroup]:
        """The included, mapped groups; an included name without a glob that Okta does not have is an error."""
        params = {"limit": str(GROUPS_LIMIT)}
        what = "the group list"
        if gcfg.search is not None:
            params["search"], what = gcfg.search, f"{client.setting}.groups.search {gcfg.search!r}"
        elif gcfg.q is not None:
            params = {"q": gcfg.q, "limit": str(GROUPS_LIMIT)}
            what = f"{client.setting}.groups.q {gcfg.q!r}"
        found: list[tuple[str, str]] = []
        pages = client.pages("/api/v1/groups", params, what, GROUP_PAGE)
        async with aclosing(pages):
            async for page in pages:
                found.extend(_group(item, client.where) for item in page)
        if gcfg.q is not None and len(found) >= GROUPS_LIMIT:  # Okta does not page `q`: it may be cut short
            raise SourceError(f"{client.where}: GET {client.http.url('/api/v1/groups')}?q=…: {len(found)} groups "
                              "match, as many as Okta returns for a `q` query; the list may be cut short",
                              hint=f"narrow {client.setting}.groups.q, or use groups.search (which Okta pages)")
        names = {norm(name) for _, name in found}
        unknown = [p for p in gcfg.include.patterns if not GLOB_CHARS & set(p) and norm(p) not in names]
        if unknown:
            raise SourceError(
                f"{client.where}: no Okta group is named {', '.join(repr(u) for u in unknown)} (groups.include)",
                hint=f"check the spelling in {client.setting}.groups.include (Okta group names, case-insensitive)"
                + (", and that groups.search/q does not leave it out" if gcfg.search or gcfg.q else ""))
        groups = []
        normal: dict[str, str] = {}  # each mapped name normalised once: one string, however many members
        for group_id, name in found:
            if not gcfg.include.matches(name):
                continue
            target = group_map.target(name)
            if target is not None:
                groups.append(OktaGroup(group_id, name, normal.setdefault(norm(target), norm(target))))
        log.info("source %s: %d Okta groups read, %d mapped", self.name, len(found), len(groups))
        return groups

    async def _members(self, client: OktaClient, group: OktaGroup, window: asyncio.Semaphore,
                       members: dict[str, set[str]]) -> None:
        # each page is filed as it arrives (between requests, not in a pass at the end); a failed read
        # fails the whole read, so what was filed is never used
        async with window:  # each group's pages in order; `concurrency` groups at a time
            path = f"/api/v1/groups/{group.id}/users"
            what = f"the members of {group.name!r}"
            name, held = group.mapped, members.get
            pages = client.pages(path, {"limit": str(MEMBERS_LIMIT)}, what, MEMBER_PAGE)
            async with aclosing(pages):
                async for page in pages:
                    for item in page:
                        user_id = str(item.id)
                        mine = held(user_id)
                        if mine is None:
                            members[user_id] = {name}
                        else:
                            mine.add(name)

    # ------------------------------------------------------------------------------------- desired state

    def _desired(self, users: dict[str, OktaUser], members: dict[str, set[str]], mapped: set[str]) -> DesiredState:
        cfg = self.config
        out: dict[str, DesiredUser] = {}
        skipped: dict[str, int] = {}
        decided: dict[str, tuple[Desired | None, str]] = {}  # per status: its mapping and the plan's fact
        by_email, name, none = cfg.key is OktaKey.EMAIL, self.name, frozenset[str]()
        for user in users.values():
            seen = decided.get(user.status)
            if seen is None:
                seen = decided[user.status] = (cfg.users.status.of(user.status), f"okta status={user.status}")
            desired, fact = seen
            if desired is None:
                raise SourceError(
                    f"source '{self.name}' (okta): user {user.login!r} has the status {user.status!r}, which is "
                    "not one of Okta's documented statuses", hint="run again once Okta has finished changing the "
                    "user (a transitional status); nothing was planned")
            if desired is Desired.ABSENT:
                why = f"{fact} (users.status: absent)"
                skipped[why] = skipped.get(why, 0) + 1
                continue
            key = user.key
            if key is None:
                why = f"users without {'an email' if by_email else 'a login'}"
                skipped[why] = skipped.get(why, 0) + 1
                continue
            if key in out:
                raise SourceError(
                    f"source '{self.name}' (okta): two Okta users have the {cfg.key} {key!r}",
                    hint=f"key them by login (sources.{self.name}.key: login), or leave one out with users.search")
            held = members.get(user.id)
            # positional, in DesiredUser's field order (pinned by a test): a third less per call than by keyword, in the
            # one pass after the last answer
            out[key] = DesiredUser(key, Status.ACTIVE if desired is Desired.ACTIVE else Status.DISABLED,
                                   frozenset(held) if held else none, user.identity, user.name, name, user.origin,
                                   fact)
        for why, count in sorted(skipped.items()):
            log.warning("source %s: %d users skipped: %s", self.name, count, why)
        log.info("source %s (okta): %d users, %d mapped groups", self.name, len(out), len(mapped))
        # what DesiredState.build would make, without a second pass over every user: keys and group names are
        # normalised already (each group name one string), and every user's groups are among the mapped ones
        return DesiredState(users=out, groups=frozenset(mapped))


def _user(item: _UserItem, where: str, by_email: bool, origin: str) -> OktaUser:
    """The user of one item; `by_email`: keyed by email, else by login; `origin`: the org URL and a space."""
    profile = item.profile
    if not isinstance(profile, dict) or not item.id or not profile.get("login") or not item.status:
        raise SourceError(f"{where}: an Okta user without id, status or profile.login: {str(item.id)!r}",
                          hint="the answer is not Okta's user object; check the source's url")
    first, last = profile.get("firstName"), profile.get("lastName")
    name = " ".join(str(p) for p in (first, last) if p) or None
    email, login = profile.get("email"), str(profile["login"])
    email = str(email) if email else None
    value = email if by_email else login
    key = norm(value) if value else None
    identity = Identity() if key is None else Identity(email=key) if by_email else Identity(username=key)
    return OktaUser(str(item.id), login, email, name, str(item.status), key, identity, Location(origin + login))


def _group(item: _GroupItem, where: str) -> tuple[str, str]:
    profile = item.profile
    if not isinstance(profile, dict) or not item.id or not profile.get("name"):
        raise SourceError(f"{where}: an Okta group without id or profile.name: {str(item.id)!r}",
                          hint="the answer is not Okta's group object; check the source's url")
    return str(item.id), str(profile["name"])


async def _all_of(*reads: Awaitable[T]) -> list[T]:
    """Run the reads together; the first failure cancels the others and is raised (fail closed)."""
    tasks = [asyncio.ensure_future(r) for r in reads]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
