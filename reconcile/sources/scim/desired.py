"""What the SCIM source's users become (`DesiredUsers`, a part of `ScimSource`): each made ready as its page arrives,
taken into the desired state in list order as its page is checked, built once the memberships are final."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import cast

from reconcile.collector import collector_paused
from reconcile.config.idp_scim import ScimKey, ScimSourceSettings
from reconcile.errors import SourceError
from reconcile.model import DesiredState, DesiredUser, Identity, Location, Status, norm
from reconcile.sources.scim.shapes import ScimUserResource
from reconcile.sources.scim.users import ABSENT_FACT, FACT, Ready, display_name_of, primary_email, text_of

log = logging.getLogger("reconcile.sources.scim.source")  # its lines, where they always were

Listed = dict[str, ScimUserResource | None]  # every listed user by id; None: taken into the desired state already


class DesiredUsers:
    """The users of one read of a `ScimSource` (which sets these attributes and resets them per read)."""

    config: ScimSourceSettings
    name: str
    where: str
    _prepared: dict[str, Ready]  # user id -> its desired user but groups (`_ready`)
    _groups_of: dict[str, set[str]] | None  # user id -> target groups, once final (`_attach`)
    _built: dict[str, DesiredUser]  # user id -> its desired user, once its groups are final
    _admitted: Admitted  # the desired users of the user list read so far, in its order (`_admit`)

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
            self._admitted = admitted = Admitted()
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
class Admitted:
    """The desired state as the user list is read (`ScimSource._admit`): every listed user, and the desired users
    of the first `done` of them (`None` for one whose groups were not final when it was taken: `pending`)."""

    listed: Listed = field(default_factory=dict)
    out: dict[str, DesiredUser | None] = field(default_factory=dict)
    named: dict[str, str] = field(default_factory=dict)  # key -> the userName (else id) that has it
    pending: list[tuple[str, str]] = field(default_factory=list)  # (key, user id) of the users not built yet
    done: int = 0
    skipped: int = 0
    stuck: bool = False
