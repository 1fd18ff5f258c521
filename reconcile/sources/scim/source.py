"""`ScimSource`: users (with `active`) and mapped, nested group memberships from a SCIM 2.0 server.

A user is keyed by `key` (its primary email, userName or externalId); userName and email are both kept.

Groups come with their `members` from the list when the server sends them; a group without them is read
alone (`GET /Groups/{id}?attributes=members`), concurrently. Nested groups are walked here, cycle-safe.
Users are made ready and typed members filed as their pages arrive; once the group list is read, each user is
built whole as its page arrives, and the pass after the last page only checks keys in list order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import cast
from urllib.parse import quote

import httpx

from reconcile.collector import collector_paused, full_collections_paused
from reconcile.config.idp_scim import ScimKey, ScimSourceSettings
from reconcile.errors import SourceError
from reconcile.http import Backoff, Clock, all_of
from reconcile.model import DesiredState, DesiredUser, Identity, Location, Status, norm
from reconcile.sources.ldap.mapping import GroupMap
from reconcile.sources.scim.client import Listing, ScimClient
from reconcile.sources.scim.members import Filer, Group, closure
from reconcile.sources.scim.shapes import GROUP, GROUP_PAGE, USER_PAGE, ScimGroupResource, ScimUserResource
from reconcile.sources.scim.users import ABSENT_FACT, FACT, Ready, display_name_of, primary_email, text_of

log = logging.getLogger(__name__)

Listed = dict[str, ScimUserResource | None]  # every listed user by id; None: taken into the desired state already

USER_ATTRIBUTES = "userName,externalId,active,displayName,name.formatted,emails"
GROUP_ATTRIBUTES = "displayName,members.value,members.type"  # not $ref, display: ~60% of the bytes


class ScimSource:
    """`sources.<name>` with `type: scim`: read() returns the users and their mapped groups."""

    def __init__(self, config: ScimSourceSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.name = config.name
        self.where = f"source '{config.name}' (scim)"
        self._transport, self._backoff, self._clock = transport, backoff, clock
        self.map = GroupMap.parse(config.groups.map, where=self.where) if config.groups else None
        self.requests = 0  # requests of the last read (retries included)
        self._prepared: dict[str, Ready] = {}  # user id -> its desired user but groups (`_ready`)
        self._groups_of: dict[str, set[str]] | None = None  # user id -> target groups, once final (`_attach`)
        self._built: dict[str, DesiredUser] = {}  # user id -> its desired user, once its groups are final
        self._admitted = _Admitted()  # the desired users of the user list read so far, in its order (`_admit`)

    async def read(self) -> DesiredState:
        self._prepared, self._groups_of, self._built, self._admitted = {}, None, {}, _Admitted()
        client = ScimClient(self.config, transport=self._transport, backoff=self._backoff, clock=self._clock)
        try:
            with full_collections_paused():
                return await self._read(client)
        finally:
            self.requests = client.requests
            self._prepared, self._groups_of, self._built, self._admitted = {}, None, {}, _Admitted()
            await client.aclose()

    async def _read(self, client: ScimClient) -> DesiredState:
        cfg = self.config
        user_params = {"attributes": USER_ATTRIBUTES, **({"filter": cfg.users.filter} if cfg.users.filter else {})}
        users_at = ("/Users", user_params)
        if cfg.groups is None:
            listed = await client.list(*users_at, setting="users.filter", decoder=USER_PAGE, on_page=self._ready)
            users: Listed = {str(u.id): u for u in listed}
            with collector_paused():
                return self._desired(users, {}, set())
        group_params = {"attributes": GROUP_ATTRIBUTES, **({"filter": cfg.groups.filter} if cfg.groups.filter else {})}
        groups_at = ("/Groups", group_params)
        filer = Filer(cfg.groups.include, self._target)
        firsts = await all_of(client.first(*users_at, setting="users.filter", decoder=USER_PAGE, on_page=self._ready),
                              client.first(*groups_at, setting="groups.filter", decoder=GROUP_PAGE,
                                           on_page=filer.arrived))
        users_in: asyncio.Future[Listed] = asyncio.get_running_loop().create_future()

        async def users_read(_: list[ScimUserResource]) -> Listed:
            users_in.set_result(self._admitted.listed)  # every listed user, in order, as `_admit` took them
            return users_in.result()

        async def groups_read(resources: list[ScimGroupResource]) -> set[str]:
            groups_of, mapped = await self._memberships(client, resources, users_in, filer)
            await self._attach(groups_of)  # the users read so far become desired users, the others as they arrive
            await filer.release(resources)  # the members decoded, in slices while answers still arrive
            return mapped

        # the group pages (each every member of 100 groups) are spread over the first part of the user pages, and
        # their members filed as they arrive; once the group list is read the memberships are final, and each
        # user is built as its page arrives: little is left after the last response
        both = await client.rests(
            Listing(firsts[1], *groups_at, "groups.filter", GROUP_PAGE, filer.arrived, groups_read),
            Listing(firsts[0], *users_at, "users.filter", USER_PAGE, self._ready, users_read, self._admit))
        with collector_paused():
            return self._desired(cast(Listed, both[1]), self._groups_of or {},
                                 cast(set[str], both[0]))

    # ------------------------------------------------------------------------------------------ groups

    def _wanted(self, listed: dict[str, Group], client: ScimClient) -> dict[str, str]:
        """Group id -> target group, for the included, mapped groups; an included name not found is an error."""
        assert self.config.groups is not None and self.map is not None
        include = self.config.groups.include
        by_name = {norm(g.name): g for g in listed.values() if g.name}
        for pattern in include.patterns:
            if not any(c in pattern for c in "*?[") and norm(pattern) not in by_name:
                known = sorted(g.name for g in listed.values() if g.name)
                shown = ", ".join(known[:10]) + (f" (and {len(known) - 10} more)" if len(known) > 10 else "")
                narrowed = " that groups.filter selects" if self.config.groups.filter else ""
                raise SourceError(
                    f"{self.where}: group '{pattern}' (sources.{self.name}.groups.include) is not among the "
                    f"groups{narrowed} of GET {client.http.url('/Groups')}",
                    hint=f"check its displayName (case does not matter), or write a glob to allow no match; "
                    f"the server has: {shown or 'no groups'}")
        return {gid: target for gid, g in listed.items()
                if g.name and include.matches(g.name) and (target := self._target(g.name)) is not None}

    def _target(self, name: str) -> str | None:
        """The normalised target group of SCIM group `name` (one string per group, shared by all its members)."""
        assert self.map is not None
        target = self.map.target(name)
        return None if target is None else norm(target)

    async def _memberships(self, client: ScimClient, resources: list[ScimGroupResource],
                           listed_users: Awaitable[Listed], filer: Filer
                           ) -> tuple[dict[str, set[str]], set[str]]:
        """User id -> the target groups it is in (through nesting when `nested`), and every mapped group.

        `filer` has filed the typed members of the listed groups as their pages arrived; what is left here is
        what needs the whole group list: groups read alone, nesting, untyped members (these need the whole user
        list too, `listed_users`, awaited only then). When the pages it saw are not the list's (a server whose
        pages overlapped), everything is filed again from the list."""
        assert self.config.groups is not None
        nested = self.config.groups.nested
        if not filer.holds(resources):
            filer = Filer(self.config.groups.include, self._target)
            filer.page(resources)
        listed = {str(r.id): filer.listed[str(r.id)] for r in resources}  # in the list's order
        wanted = self._wanted(listed, client)
        known = dict(listed)
        frontier = list(wanted)
        seen = set(frontier)
        untyped = 0
        users: Listed | None = None  # the whole user list, once a member needs it
        while frontier:  # breadth-first over the groups reached from the wanted ones: each read once
            unread = [known.setdefault(gid, Group(gid, None, None)) for gid in frontier]
            unread = [g for g in unread if g.members is None]
            bodies = await all_of(*(client.get(f"/Groups/{quote(g.id, safe='')}", {"attributes": "members"},
                                               setting="groups.include", decoder=GROUP) for g in unread))
            for group, body in zip(unread, bodies, strict=True):
                group.members = body.members or []  # an empty group has no `members` at all
            following: list[str] = []
            if users is None and any(not m.type for gid in frontier for m in (
                    known[gid].late if known[gid].filed is not None else known[gid].members or ())):
                users = await listed_users  # a member of no type is told apart by the user list
            with collector_paused():
                for gid in frontier:
                    group = known[gid]
                    if group.filed is None:  # not filed as its page arrived: every member is judged here
                        group.late = list(group.members or ())
                    for member in group.late:
                        value = "" if member.value is None else str(member.value)
                        kind = member.type or ("User" if users is not None and value in users
                                               else "Group" if value in known else None)
                        if kind == "User":
                            group.users.add(value)
                        elif kind == "Group":
                            group.groups.add(value)
                            group.inner.append(value)
                        else:
                            untyped += 1
                    for value in group.inner if nested else ():
                        if value not in seen:
                            seen.add(value)
                            following.append(value)
            frontier = following
        if untyped:
            log.info("%s: %d group members of no type that are neither listed users nor groups: ignored",
                     self.where, untyped)
        groups_of = filer.groups_of
        with collector_paused():
            for gid, target in wanted.items():
                group = known[gid]
                if group.filed == target and not group.late and not (nested and group.groups):
                    continue  # its users were filed as its page arrived, and it has no others
                held = groups_of.get
                for uid in closure(gid, known) if nested else known[gid].member_users():
                    if users is None or uid in users:  # outside users.filter: not a desired user (nor looked up)
                        mine = held(uid)
                        if mine is None:  # not setdefault: it would build a throwaway set per membership
                            groups_of[uid] = {target}
                        else:
                            mine.add(target)
        log.info("%s: %d groups listed, %d wanted, %d read", self.where, len(listed), len(wanted), len(seen))
        return groups_of, set(wanted.values())

    # ------------------------------------------------------------------------------------- desired state

    def _ready(self, resources: list[ScimUserResource]) -> None:
        """What each user of a page becomes but its groups, made as the page arrives (`on_page`), so the pass
        after the last response only checks keys and attaches groups; errors wait for that pass, in list order."""
        cfg, ready = self.config, self._prepared
        by, url, groups_of, built, user = cfg.key, cfg.url, self._groups_of, self._built, self._user
        with collector_paused():
            for resource in resources:
                rid = resource.id
                uid = rid if type(rid) is str else str(rid)
                username = text_of(resource.userName)
                external = text_of(resource.externalId)
                emails = resource.emails
                # the usual one email: `primary_email`'s answer without its lists
                email = (text_of(emails[0].value) if emails is not None and len(emails) == 1
                         else primary_email(resource))
                value = email if by is ScimKey.EMAIL else username if by is ScimKey.USERNAME else external
                who = username or uid
                if not value:
                    ready[uid] = Ready(resource, "", who)
                    continue
                key = norm(value)
                raw = resource.active
                if raw is True or raw is False:  # the usual case of `_active`
                    active, fact = raw, FACT[raw]
                else:
                    try:
                        active, fact = self._active(resource, who)
                    except SourceError as exc:  # without its traceback: its frames would hold `ready` in a cycle
                        ready[uid] = Ready(resource, key, who, error=exc.with_traceback(None))
                        continue
                if by is ScimKey.EXTERNAL_ID:  # the externalId alone names the target's account
                    identity = Identity(external_id=external)
                else:  # both kept, as LDAP does: DC matches the username first (disabled DC users show no email)
                    identity = Identity(username=(key if by is ScimKey.USERNAME else norm(username)) if username
                                        else None, email=(key if by is ScimKey.EMAIL else norm(email)) if email
                                        else None, external_id=external)
                made = ready[uid] = Ready(resource, key, who, Status.ACTIVE if active else Status.DISABLED,
                                           fact, identity, display_name_of(resource), Location(f"{url}/Users/{uid}"))
                if groups_of is not None:
                    built[uid] = user(uid, made, groups_of)

    async def _attach(self, groups_of: dict[str, set[str]], slice_size: int = 2_000) -> None:
        """The memberships are final: the users made ready so far become desired users (in slices, the loop free
        in between for the responses still arriving), later ones as they arrive (`_ready`)."""
        pending = list(self._prepared.items())
        self._groups_of = groups_of
        built, user, held = self._built, self._user, self._prepared.get
        for at in range(0, len(pending), slice_size):
            if at:
                await asyncio.sleep(0)
            with collector_paused():
                for uid, ready in pending[at:at + slice_size]:
                    if ready.key and ready.error is None and held(uid) is ready:  # not made again since
                        built[uid] = user(uid, ready, groups_of)
        admitted = self._admitted  # the users taken into the desired state before their groups were final
        waiting, admitted.pending = admitted.pending, []
        for at in range(0, len(waiting), slice_size):
            await asyncio.sleep(0)
            self._resolve(waiting[at:at + slice_size], admitted.listed, groups_of, drop=True)

    def _resolve(self, pending: list[tuple[str, str]], users: Listed, groups_of: dict[str, set[str]], *,
                 drop: bool) -> None:
        """The desired users of `pending` (taken before their groups were final), built now; `drop`: their
        records dropped (freed while answers still arrive, not all after the last)."""
        admitted, built, prepared = self._admitted, self._built.get, self._prepared
        out = admitted.out
        with collector_paused():
            for key, uid in pending:
                resource, ready = users[uid], prepared.get(uid)
                assert resource is not None  # a pending user keeps its record
                if ready is None or ready.resource is not resource:  # made again since from a page not the list's
                    self._ready([resource])
                    ready = prepared[uid]
                made = built(uid)  # built from the `Ready` held now (`_ready` builds again whatever it makes again)
                out[key] = made if made is not None else self._user(uid, ready, groups_of)
                if drop:
                    users[uid] = None
                    del prepared[uid]

    def _user(self, uid: str, ready: Ready, groups_of: dict[str, set[str]]) -> DesiredUser:
        # positionally (the field order is pinned by tests/core/test_records.py): 100,000 a read
        return DesiredUser(ready.key, ready.status, frozenset(groups_of.get(uid, ())), ready.identity,
                           ready.display_name, self.name, ready.origin, ready.fact)

    def _admit(self, resources: list[ScimUserResource]) -> None:
        """`on_ordered` of the user list: its users in list order as their pages are checked, each taken into the
        desired state as `_desired` would, up to the first that fails (a key twice, an error): from there
        `_desired` goes on after the last answer, and raises it."""
        admitted = self._admitted
        users = [(rid if type(rid := r.id) is str else str(rid), r) for r in resources]
        admitted.listed.update(users)
        if not admitted.stuck:  # else each user taken so far was listed before these
            self._take(users, final=False)

    def _take(self, users: Iterable[tuple[str, ScimUserResource]], *, final: bool) -> None:
        cfg, admitted = self.config, self._admitted
        out, named, pending, listed = admitted.out, admitted.named, admitted.pending, admitted.listed
        prepared, built, drop = self._prepared.get, self._built.get, self._prepared.pop
        with collector_paused():
            for uid, resource in users:
                ready = prepared(uid)
                if ready is None or ready.resource is not resource:  # not the page the list kept: made again
                    self._ready([resource])
                    ready = self._prepared[uid]
                key, who = ready.key, ready.who
                if not key:
                    admitted.skipped += 1
                    admitted.done += 1
                    log.info("%s: user %s has no %s; skipped", self.where, who, cfg.key)
                    continue
                if key in out or ready.error is not None:
                    if not final:
                        admitted.stuck = True  # raised by `_desired`, in list order, once the read is complete
                        return
                    if key in out:
                        raise SourceError(
                            f"{self.where}: users {named[key]!r} and {who!r} have the same {cfg.key} {key!r}",
                            hint=f"fix the identity provider, or key users by another attribute "
                            f"(sources.{self.name}.key), or leave one out with sources.{self.name}.users.filter")
                    raise ready.error  # type: ignore[misc]
                named[key] = who
                made = built(uid)
                out[key] = made
                if made is None:  # its groups are not final yet: built once they are (`_resolve`)
                    pending.append((key, uid))
                elif not final:  # done with: its records are freed now, not all after the last answer
                    listed[uid] = None
                    drop(uid)
                admitted.done += 1

    def _desired(self, users: Listed, groups_of: dict[str, set[str]],
                 mapped: set[str]) -> DesiredState:
        cfg, admitted = self.config, self._admitted
        if admitted.listed is not users:  # not read through `_admit` (no groups): every user taken here
            self._admitted = admitted = _Admitted()
        # the users not taken yet keep their records (None marks only users taken)
        self._take(cast(Iterable[tuple[str, ScimUserResource]], islice(users.items(), admitted.done, None)), final=True)
        self._resolve(admitted.pending, users, groups_of, drop=False)
        out = admitted.out
        self._prepared, self._built = {}, {}
        if admitted.skipped:
            log.warning("source %s: %d users without %s skipped", self.name, admitted.skipped,
                        {ScimKey.EMAIL: "an email", ScimKey.USERNAME: "a userName",
                         ScimKey.EXTERNAL_ID: "an externalId"}[cfg.key])
        log.info("source %s (scim): %d users, %d mapped groups", self.name, len(out), len(mapped))
        # what DesiredState.build would make, without copying every user: keys and group names are normalised
        # already (the group names one string each), and every user's groups are among the mapped ones
        return DesiredState(users=cast(dict[str, DesiredUser], out), groups=frozenset(mapped))

    def _active(self, resource: ScimUserResource, who: str) -> tuple[bool, str]:
        """Whether the user is active, and the raw fact that says so (`scim active=false`)."""
        raw = resource.active
        if raw is None:
            active = self.config.users.active_when_missing
            return active, ABSENT_FACT[active]
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            raw = raw.lower() == "true"  # some servers send the boolean as text
        if not isinstance(raw, bool):
            raise SourceError(f"{self.where}: user {who!r} has active={raw!r}, not a boolean",
                              hint="nothing was planned; the server breaks RFC 7643 (active is a boolean)")
        return raw, FACT[raw]


@dataclass(slots=True)
class _Admitted:
    """The desired state as the user list is read (`ScimSource._admit`): every listed user, and the desired users
    of the first `done` of them (`None` for one whose groups were not final when it was taken: `pending`)."""

    listed: Listed = field(default_factory=dict)
    out: dict[str, DesiredUser | None] = field(default_factory=dict)
    named: dict[str, str] = field(default_factory=dict)  # key -> the userName (else id) that has it
    pending: list[tuple[str, str]] = field(default_factory=list)  # (key, user id) of the users not built yet
    done: int = 0
    skipped: int = 0
    stuck: bool = False
