"""`EntraSource`: users (`accountEnabled` -> active/disabled, guests optional) and mapped group memberships of
a Microsoft Entra ID tenant, read through Microsoft Graph v1.0.

Members come from `/groups/{id}/transitiveMembers`: Graph expands nested groups (and ends cycles) itself,
so each selected group costs one paged read, against one per nested group with `/members` and a
client-side walk. Members that are not users (devices, service principals, contacts) are counted and
reported in the plan; the nested groups it also lists are skipped silently (their users are listed).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Coroutine
from itertools import repeat
from typing import Any, TypeVar

import httpx
import msgspec

from reconcile.collector import full_collections_paused
from reconcile.config.idp_entra import EntraGuests, EntraKey, EntraSourceSettings
from reconcile.errors import SourceError
from reconcile.http import Backoff, Clock, all_of
from reconcile.model import DesiredState, DesiredUser, Identity, Location, SourceNote, Status, norm
from reconcile.records import field_setter
from reconcile.sources.entra_id.graph import PAGE, Graph
from reconcile.sources.ldap.mapping import GroupMap

log = logging.getLogger(__name__)
T = TypeVar("T")

USER_SELECT = "id,userPrincipalName,mail,displayName,userType,accountEnabled"  # accountEnabled: only if selected
GLOB_CHARS = frozenset("*?[")
USERS_A_TURN = 128  # users made between two turns of the event loop (each member answer is handled in between)
USER_TYPE, GROUP_TYPE = "#microsoft.graph.user", "#microsoft.graph.group"
NOT_USERS = {"#microsoft.graph.device": "device", "#microsoft.graph.servicePrincipal": "service principal",
             "#microsoft.graph.orgContact": "organizational contact"}


class _UserRow(msgspec.Struct):
    """The selected user properties (`Any`: an odd value is judged below as before, not by the decoder)."""

    id: Any = None
    userPrincipalName: Any = None
    mail: Any = None
    displayName: Any = None
    userType: Any = None
    accountEnabled: Any = msgspec.UNSET  # UNSET: not sent at all


class _GroupRow(msgspec.Struct):
    id: Any = None
    displayName: Any = None


class _MemberRow(msgspec.Struct):
    id: Any = None
    kind: Any = msgspec.field(default=None, name="@odata.type")


class EntraSource:
    """Reads an Entra ID tenant: `read()` is its only operation (GETs only)."""

    def __init__(self, config: EntraSourceSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.name = config.name
        self.where = f"source '{config.name}' (entra-id)"
        self._transport, self._backoff, self._clock = transport, backoff, clock
        self.group_map = GroupMap.parse(config.groups.map, where=self.where) if config.groups else None
        self.requests = 0  # requests the last read sent (benchmarks)

    async def read(self) -> DesiredState:
        graph = Graph(self.config, transport=self._transport, backoff=self._backoff, clock=self._clock)
        try:
            with full_collections_paused():
                return await self._read(graph)
        finally:
            self.requests = graph.requests
            await graph.aclose()

    async def _read(self, graph: Graph) -> DesiredState:
        # Users and groups are read side by side: member reads need only the group ids, and the
        # user pages (sequential, by nextLink) would otherwise be a floor of their own.
        reads: list[Coroutine[Any, Any, Any]] = [self._users(graph)]
        if self.config.groups is not None and self.group_map is not None:
            reads.append(self._memberships(graph, self.group_map))
        results: list[Any] = await all_of(*reads)
        users, by_key, skipped_guests = results[0]
        member_of, mapped, strangers = results[1] if len(results) > 1 else ({}, set(), Counter())
        outside = len(member_of.keys() - users.keys())  # in C: this runs after the last answer
        if outside:
            log.info("%s: %d group members outside users.filter (or guests) ignored", self.where, outside)
        notes: list[SourceNote] = []
        if strangers:
            kinds = ", ".join(f"{n} {what}{'s' if n > 1 else ''}" for what, n in sorted(strangers.items()))
            notes.append(SourceNote(self.name, f"{sum(strangers.values())} group members skipped, not users: "
                                               f"{kinds} (only users are desired users)"))
        if skipped_guests:
            log.info("%s: %d guests left out (users.guests: exclude)", self.where, skipped_guests)
        return self._desired(users, by_key, member_of, mapped, notes)

    # ------------------------------------------------------------------------------------------ users

    async def _users(self, graph: Graph) -> tuple[dict[str, DesiredUser | None], dict[str, DesiredUser], int]:
        """Id -> the desired user (None: it has no key), key -> the same users, and the guests left out. Each
        desired user is made here, while member reads still run, without its groups: the pass after the last
        answer only attaches them (`_desired`)."""
        params = {"$select": USER_SELECT, "$top": str(PAGE)}
        if self.config.users.filter:
            params["$filter"] = self.config.users.filter
        users: dict[str, DesiredUser | None] = {}
        by_key: dict[str, DesiredUser] = {}
        guests = 0
        exclude_guests = self.config.users.guests is EntraGuests.EXCLUDE
        by_mail = self.config.key is EntraKey.MAIL
        origin = f"{self.config.graph_url}/v1.0/users/"
        name, none = self.name, frozenset[str]()
        enabled, disabled = (Status.ACTIVE, _ENABLED), (Status.DISABLED, _DISABLED)
        async for page in graph.pages("users", params, what="users", item=_UserRow, chain=True):
            for n, item in enumerate(page, 1):
                if not n % USERS_A_TURN:  # a page is ~4 ms of work: answers that arrive meanwhile go first
                    await asyncio.sleep(0)
                if item.accountEnabled is msgspec.UNSET:  # selected, so Graph sends it: never guess "enabled"
                    raise SourceError(f"{self.where}: GET {graph.client.url('/v1.0/users')}: user {item.id} "
                                      "came without accountEnabled, so active and disabled cannot be told apart",
                                      hint="the app needs User.Read.All (a lesser permission hides it)")
                if item.userType == "Guest" and exclude_guests:
                    guests += 1
                    continue
                uid = str(item.id or "")
                if (listed := users.pop(uid, None)) is not None:  # listed again (paged while the tenant
                    del by_key[listed.key]  # changed): its last listing counts, as one user
                value = _text(item.mail if by_mail else item.userPrincipalName)
                if not value:
                    users[uid] = None
                    continue
                key = norm(value)
                if key in by_key:
                    raise SourceError(f"{self.where}: two users have the {self.config.key} {key!r}",
                                      hint=f"key them by the other identity key (sources.{self.name}.key), or leave "
                                      f"one out with sources.{self.name}.users.filter")
                status, fact = enabled if item.accountEnabled is not False else disabled
                # positional, in DesiredUser's field order (pinned by a test): a third less per call than by keyword
                users[uid] = by_key[key] = DesiredUser(key, status, none, Identity(email=key), _text(item.displayName),
                                                       name, Location(origin + uid), fact)
        log.info("%s: %d users read", self.where, len(users))
        return users, by_key, guests

    # ------------------------------------------------------------------------------------------ groups

    async def _groups(self, graph: Graph) -> AsyncIterator[tuple[str, str]]:
        """(id, displayName) of the included groups, page by page as they arrive; after the last page, an
        explicit name that matches no group is an error."""
        gcfg = self.config.groups
        assert gcfg is not None
        params = {"$select": "id,displayName", "$top": str(PAGE)}
        if gcfg.filter:
            params["$filter"] = gcfg.filter
        names: set[str] = set()
        async for page in graph.pages("groups", params, what="groups", item=_GroupRow):
            found = [(str(g.id), str(g.displayName)) for g in page if g.id and g.displayName]
            names.update(norm(name) for _, name in found)
            for gid, name in found:
                if gcfg.include.matches(name):
                    yield gid, name
        missing = [p for p in gcfg.include.patterns if not GLOB_CHARS & set(p) and norm(p) not in names]
        if missing:
            narrowed = " (among those groups.filter selects)" if gcfg.filter else ""
            raise SourceError(f"{self.where}: no group named {', '.join(repr(m) for m in missing)} in the tenant"
                              f"{narrowed}", hint=f"check the spelling in sources.{self.name}.groups.include "
                              "(display names), or use a glob such as 'atl-*'")

    async def _memberships(self, graph: Graph, group_map: GroupMap
                           ) -> tuple[dict[str, list[str]], set[str], Counter[str]]:
        """User id -> mapped group names (every user member, read or not; a name twice when two groups map to
        it), every mapped name, and the members that are not users, counted by kind.

        A group's member read starts as soon as its page of the group list arrives (not after the last
        page); an error anywhere (the list, a missing name, a member read) cancels every member read."""
        names: dict[str, str] = {}  # each mapped name normalised once: one string, however many members
        # member reads in parallel, bounded: twice the lanes, so half wait with a request built and take a lane
        # the moment an answer frees one (the client's lanes bound the requests in flight to `concurrency`);
        # the user chain's next page goes before them (`chain`)
        window = asyncio.Semaphore(2 * max(1, self.config.http.concurrency))
        member_of: defaultdict[str, list[str]] = defaultdict(list)
        strangers: dict[str, str] = {}

        async def members(gid: str, target: str) -> None:
            # each page's members are filed as it arrives (between requests, not in one pass at the end); a
            # failed read fails the whole read, so what was filed is never used
            async with window:
                params = {"$select": "id", "$top": str(PAGE)}
                path = f"groups/{gid}/transitiveMembers"
                async for page in graph.pages(path, params, what="members", item=_MemberRow):
                    ids = [item.id for item in page if item.kind == USER_TYPE]
                    # filed in C (the reader's event loop is every lane's): each user's list, then the name
                    # appended to each; a Python loop per member was a fifth of the read's CPU
                    deque(map(list.append, map(member_of.__getitem__, map(str, ids)), repeat(target)), maxlen=0)
                    if len(ids) < len(page):
                        for item in page:
                            kind = item.kind
                            if kind not in (USER_TYPE, GROUP_TYPE):  # nested groups: their users are listed
                                kind = str(kind or "")
                                strangers[str(item.id)] = NOT_USERS.get(kind, kind.rsplit(".", 1)[-1] or "unknown")

        reads: list[asyncio.Future[None]] = []
        mapped: set[str] = set()
        try:
            async for gid, name in self._groups(graph):
                if (target := group_map.target(name)) is not None:
                    mapped.add(wanted := names.setdefault(norm(target), norm(target)))
                    reads.append(asyncio.ensure_future(members(gid, wanted)))
            await all_of(*reads)
        except BaseException:
            for read in reads:  # none keeps running behind the error; a failure already seen is retrieved
                if not read.done():
                    read.cancel()
                elif not read.cancelled():
                    read.exception()
            raise
        log.info("%s: %d groups read, %d mapped", self.where, len(reads), len(mapped))
        return member_of, mapped, Counter(strangers.values())

    # ------------------------------------------------------------------------------------- desired state

    def _desired(self, users: dict[str, DesiredUser | None], by_key: dict[str, DesiredUser],
                 groups_of: dict[str, list[str]], mapped: set[str], notes: list[SourceNote]) -> DesiredState:
        for uid, held in groups_of.items():  # after the last answer: only groups are attached here
            user = users.get(uid)
            if user is not None:
                _set_groups(user, frozenset(held))
        keyless = len(users) - len(by_key)
        if keyless:
            field = "mail" if self.config.key is EntraKey.MAIL else "userPrincipalName"
            notes.append(SourceNote(self.name, f"{keyless} users skipped without a {field} (key: {self.config.key})"))
        for note in notes:
            log.warning("source %s: %s", note.source, note.message)
        log.info("%s: %d users, %d mapped groups", self.where, len(by_key), len(mapped))
        # what DesiredState.build would make, without a second pass over every user: the keys are normalised
        # and the group names too (one string each), and every user's groups are among the mapped ones
        return DesiredState(users=by_key, groups=frozenset(mapped), notes=tuple(notes))


_ENABLED, _DISABLED = "entra accountEnabled=true", "entra accountEnabled=false"
_set_groups = field_setter(DesiredUser, "groups")  # on the users `_users` made, before `read` returns them


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, str) and value.strip() else None
