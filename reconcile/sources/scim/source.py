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
from collections.abc import Awaitable
from typing import cast
from urllib.parse import quote

import httpx

from reconcile.collector import collector_paused, full_collections_paused
from reconcile.config.idp_scim import ScimSourceSettings
from reconcile.errors import SourceError
from reconcile.http import Backoff, Clock, all_of
from reconcile.model import DesiredState, DesiredUser, norm
from reconcile.sources.ldap.mapping import GroupMap
from reconcile.sources.scim.client import Listing, ScimClient
from reconcile.sources.scim.desired import Admitted, DesiredUsers, Listed
from reconcile.sources.scim.members import Filer, Group, closure
from reconcile.sources.scim.shapes import GROUP, GROUP_PAGE, USER_PAGE, ScimGroupResource, ScimUserResource
from reconcile.sources.scim.users import Ready

log = logging.getLogger(__name__)

USER_ATTRIBUTES = "userName,externalId,active,displayName,name.formatted,emails"
GROUP_ATTRIBUTES = "displayName,members.value,members.type"  # not $ref, display: ~60% of the bytes


class ScimSource(DesiredUsers):
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
        self._admitted = Admitted()  # the desired users of the user list read so far, in its order (`_admit`)

    async def read(self) -> DesiredState:
        self._prepared, self._groups_of, self._built, self._admitted = {}, None, {}, Admitted()
        client = ScimClient(self.config, transport=self._transport, backoff=self._backoff, clock=self._clock)
        try:
            with full_collections_paused():
                return await self._read(client)
        finally:
            self.requests = client.requests
            self._prepared, self._groups_of, self._built, self._admitted = {}, None, {}, Admitted()
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
