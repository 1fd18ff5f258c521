"""`ScimSource`: users (with `active`) and mapped, nested group memberships from a SCIM 2.0 server.

A user is keyed by `key` (its primary email, userName or externalId); userName and email are both kept.

Groups come with their `members` from the list when the server sends them; a group without them is read
alone (`GET /Groups/{id}?attributes=members`), concurrently. Nested groups are walked here, cycle-safe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from reconcile.config.idp_scim import ScimKey, ScimSourceSettings
from reconcile.errors import SourceError
from reconcile.http import Backoff, Clock, all_of
from reconcile.model import DesiredState, DesiredUser, Identity, Location, Status, norm
from reconcile.sources.ldap.mapping import GroupMap
from reconcile.sources.scim.client import Resource, ScimClient

log = logging.getLogger(__name__)

USER_ATTRIBUTES = "userName,externalId,active,displayName,name.formatted,emails"
GROUP_ATTRIBUTES = "displayName,members"


@dataclass(slots=True)
class _Group:
    id: str
    name: str | None  # None: reached only as a nested member, outside the groups listed
    members: list[Resource] | None  # None: not read yet
    users: set[str] = field(default_factory=set)  # ids of member users
    groups: set[str] = field(default_factory=set)  # ids of member groups


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

    async def read(self) -> DesiredState:
        client = ScimClient(self.config, transport=self._transport, backoff=self._backoff, clock=self._clock)
        try:
            return await self._read(client)
        finally:
            self.requests = client.requests
            await client.aclose()

    async def _read(self, client: ScimClient) -> DesiredState:
        cfg = self.config
        user_params = {"attributes": USER_ATTRIBUTES, **({"filter": cfg.users.filter} if cfg.users.filter else {})}
        reads = [client.list("/Users", user_params, setting="users.filter")]
        if cfg.groups is not None:
            group_params = {"attributes": GROUP_ATTRIBUTES,
                            **({"filter": cfg.groups.filter} if cfg.groups.filter else {})}
            reads.append(client.list("/Groups", group_params, setting="groups.filter"))
        listed = await all_of(*reads)
        users = {str(u["id"]): u for u in listed[0]}
        groups_of: dict[str, set[str]] = {}
        mapped: set[str] = set()
        if cfg.groups is not None:
            groups_of, mapped = await self._memberships(client, listed[1], users)
        return self._desired(users, groups_of, mapped)

    # ------------------------------------------------------------------------------------------ groups

    def _wanted(self, listed: dict[str, _Group], client: ScimClient) -> dict[str, str]:
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
                if g.name and include.matches(g.name) and (target := self.map.target(g.name)) is not None}

    async def _memberships(self, client: ScimClient, resources: list[Resource],
                           users: dict[str, Resource]) -> tuple[dict[str, set[str]], set[str]]:
        """User id -> the target groups it is in (through nesting when `nested`), and every mapped group."""
        assert self.config.groups is not None
        nested = self.config.groups.nested
        listed = {str(r["id"]): _Group(str(r["id"]), _text(r.get("displayName")), r.get("members")) for r in resources}
        wanted = self._wanted(listed, client)
        known = dict(listed)
        frontier = list(wanted)
        seen = set(frontier)
        untyped = 0
        while frontier:  # breadth-first over the groups reached from the wanted ones: each read once
            unread = [known.setdefault(gid, _Group(gid, None, None)) for gid in frontier]
            unread = [g for g in unread if g.members is None]
            bodies = await all_of(*(client.get(f"/Groups/{quote(g.id, safe='')}", {"attributes": "members"},
                                               setting="groups.include") for g in unread))
            for group, body in zip(unread, bodies, strict=True):
                group.members = body.get("members") or []  # an empty group has no `members` at all
            following: list[str] = []
            for gid in frontier:
                group = known[gid]
                for member in group.members or ():
                    value = str(member.get("value", ""))
                    kind = member.get("type") or ("User" if value in users else "Group" if value in known else None)
                    if kind == "User":
                        group.users.add(value)
                    elif kind == "Group":
                        group.groups.add(value)
                        if nested and value not in seen:
                            seen.add(value)
                            following.append(value)
                    else:
                        untyped += 1
            frontier = following
        if untyped:
            log.info("%s: %d group members of no type that are neither listed users nor groups: ignored",
                     self.where, untyped)
        groups_of: dict[str, set[str]] = {}
        for gid, target in wanted.items():
            for uid in _closure(gid, known) if nested else known[gid].users:
                if uid in users:  # a member outside users.filter is not a desired user
                    groups_of.setdefault(uid, set()).add(target)
        log.info("%s: %d groups listed, %d wanted, %d read", self.where, len(listed), len(wanted), len(seen))
        return groups_of, set(wanted.values())

    # ------------------------------------------------------------------------------------- desired state

    def _desired(self, users: dict[str, Resource], groups_of: dict[str, set[str]], mapped: set[str]) -> DesiredState:
        cfg = self.config
        out: dict[str, DesiredUser] = {}
        named: dict[str, str] = {}
        skipped = 0
        for uid, resource in users.items():
            username = _text(resource.get("userName"))
            external = _text(resource.get("externalId"))
            value = {ScimKey.EMAIL: _primary_email(resource), ScimKey.USERNAME: username,
                     ScimKey.EXTERNAL_ID: external}[cfg.key]
            if not value:
                skipped += 1
                log.info("%s: user %s has no %s; skipped", self.where, username or uid, cfg.key)
                continue
            key = norm(value)
            if key in out:
                raise SourceError(
                    f"{self.where}: users {named[key]!r} and {username or uid!r} have the same {cfg.key} {key!r}",
                    hint=f"fix the identity provider, or key users by another attribute (sources.{self.name}.key), "
                    f"or leave one out with sources.{self.name}.users.filter")
            active, fact = self._active(resource, username or uid)
            if cfg.key is ScimKey.EXTERNAL_ID:  # the externalId alone names the target's account
                identity = Identity(external_id=external)
            else:  # both kept, as LDAP does: DC matches the username first (disabled DC users show no email)
                email = _primary_email(resource)
                identity = Identity(username=norm(username) if username else None,
                                    email=norm(email) if email else None, external_id=external)
            named[key] = username or uid
            out[key] = DesiredUser(
                key=key, status=Status.ACTIVE if active else Status.DISABLED, groups=frozenset(groups_of.get(uid, ())),
                identity=identity, display_name=_display_name(resource), source=self.name,
                origin=Location(f"{cfg.url}/Users/{uid}"), fact=fact)
        if skipped:
            log.warning("source %s: %d users without %s skipped", self.name, skipped,
                        {ScimKey.EMAIL: "an email", ScimKey.USERNAME: "a userName",
                         ScimKey.EXTERNAL_ID: "an externalId"}[cfg.key])
        log.info("source %s (scim): %d users, %d mapped groups", self.name, len(out), len(mapped))
        return DesiredState.build(out.values(), groups=mapped)

    def _active(self, resource: Resource, who: str) -> tuple[bool, str]:
        """Whether the user is active, and the raw fact that says so (`scim active=false`)."""
        raw = resource.get("active")
        if raw is None:
            active = self.config.users.active_when_missing
            return active, f"scim active absent (users.active_when_missing: {str(active).lower()})"
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            raw = raw.lower() == "true"  # some servers send the boolean as text
        if not isinstance(raw, bool):
            raise SourceError(f"{self.where}: user {who!r} has active={raw!r}, not a boolean",
                              hint="nothing was planned; the server breaks RFC 7643 (active is a boolean)")
        return raw, f"scim active={str(raw).lower()}"


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _primary_email(resource: Resource) -> str | None:
    """`emails[primary eq true].value`; the only email when none is marked primary."""
    emails = [e for e in resource.get("emails") or () if isinstance(e, dict) and _text(e.get("value"))]
    primary = [e for e in emails if e.get("primary") is True]
    chosen = primary[0] if primary else emails[0] if len(emails) == 1 else None
    return _text(chosen.get("value")) if chosen else None


def _display_name(resource: Resource) -> str | None:
    name = resource.get("name")
    formatted = _text(name.get("formatted")) if isinstance(name, dict) else None
    return _text(resource.get("displayName")) or formatted


def _closure(gid: str, groups: dict[str, _Group]) -> set[str]:
    """Every user id in group `gid` and in the groups nested in it; cycle-safe."""
    users: set[str] = set()
    seen = {gid}
    stack = [gid]
    while stack:
        group = groups.get(stack.pop())
        if group is None:
            continue
        users |= group.users
        for inner in group.groups:
            if inner not in seen:
                seen.add(inner)
                stack.append(inner)
    return users
