"""What both site sources share: a client that can only read, TargetError -> SourceError, and the
step from a site's users (with their raw status fact) to desired users keyed as configured."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from reconcile.errors import SourceError, TargetError
from reconcile.http import Backoff, Clock, HttpClient
from reconcile.model import DesiredState, DesiredUser, Identity, Location, Status, norm
from reconcile.settings import CloudSourceSettings, DcSourceSettings, HttpSettings, SiteDisabled, SiteKey
from reconcile.sources.ldap.mapping import GroupMap
from reconcile.targets.atlassian import ERRORS, RATE_HEADERS, Flavor

log = logging.getLogger(__name__)


class ReadOnlyClient(HttpClient):
    """An HttpClient that sends reads only: GET, and the POST `…/search` queries of the Organizations API.

    Anything else is refused before it leaves the process: a source never writes.
    """

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        verb = method.upper()
        if verb != "GET" and not (verb == "POST" and path.split("?", 1)[0].endswith("/search")):
            raise SourceError(f"{verb} {self.url(path)}: refused; a source only reads",
                              hint="this is a bug in reconcile: please report it")
        return await super().request(method, path, **kwargs)


def read_only_client(url: str, *, auth: httpx.Auth | None, settings: HttpSettings, flavor: Flavor,
                     transport: httpx.AsyncBaseTransport | None = None, backoff: Backoff | None = None,
                     clock: Clock | None = None) -> ReadOnlyClient:
    """A ReadOnlyClient with the Atlassian errors and rate-limit headers the target readers expect."""
    headers = {"X-Atlassian-Token": "no-check"} if flavor == "dc" else {}
    return ReadOnlyClient(url, auth=auth, settings=settings, errors=ERRORS, headers=headers,
                          rate_headers=RATE_HEADERS, transport=transport, backoff=backoff, clock=clock)


@dataclass(frozen=True, slots=True)
class SiteUser:
    """One user of the source site, as its reader saw it."""

    username: str | None  # DC only
    email: str | None
    account_id: str | None  # Cloud only
    display_name: str | None
    status: Status
    fact: str  # the raw status fact: `confluence-dc status=deactivated`
    groups: frozenset[str]  # source group names, lower-cased


@asynccontextmanager
async def source_errors(name: str, type_: str) -> AsyncIterator[None]:
    """Map what the readers raise into a SourceError naming the source (`sources raise source errors`)."""
    where = f"source '{name}' ({type_})"
    try:
        yield
    except SourceError as exc:
        if exc.message.startswith(where):
            raise
        raise SourceError(f"{where}: {exc.message}", hint=exc.hint) from exc
    except TargetError as exc:
        def here(text: str) -> str:
            return text.replace("target.", f"sources.{name}.")

        raise SourceError(f"{where}: {here(exc.message)}",
                          hint=here(exc.hint) if exc.hint else None) from exc
    except json.JSONDecodeError as exc:
        raise SourceError(f"{where}: the server answered something other than JSON (a proxy or login page?)",
                          hint=f"check sources.{name}.url") from exc


class Keyer:
    """Users and groups of a site -> desired users: selection, status, key and group mapping."""

    def __init__(self, config: DcSourceSettings | CloudSourceSettings, *, origin: str) -> None:
        self.name, self.type, self.key = config.name, config.type, config.key
        self.users, self.groups = config.users, config.groups
        self.origin = origin
        self.map = GroupMap.parse(self.groups.map, where=f"source '{self.name}'") if self.groups else None

    def wanted_group(self, name: str) -> str | None:
        """The target group a source group maps to; None when it is not read (not included or unmapped)."""
        if self.groups is None or self.map is None or not self.groups.include.matches(name):
            return None
        return self.map.target(name)

    def desired(self, users: Iterable[SiteUser], *, skipped: Mapping[str, int]) -> DesiredState:
        out: dict[str, DesiredUser] = {}
        counts = dict(skipped)
        mapped: set[str] = set()
        for user in users:
            value = {SiteKey.EMAIL: user.email, SiteKey.USERNAME: user.username,
                     SiteKey.ACCOUNT_ID: user.account_id}[self.key]
            if not value:  # counted before `include`: without the key, an email glob cannot be judged
                why = f"users without {'an' if self.key is SiteKey.EMAIL else 'a'} {self.key} ({user.fact})"
                counts[why] = counts.get(why, 0) + 1
                log.info("source %s: %s has no %s; skipped", self.name, user.username or user.account_id,
                         self.key)
                continue
            if not self.users.include.matches(user.username, user.email, user.account_id):
                continue
            if user.status is Status.DISABLED and self.users.disabled is SiteDisabled.SKIP:
                counts["disabled users (users.disabled: skip)"] = counts.get(
                    "disabled users (users.disabled: skip)", 0) + 1
                continue
            key = norm(value)
            if key in out:
                raise SourceError(
                    f"source '{self.name}' ({self.type}): two users have the {self.key} {key!r}",
                    hint=f"key them by another identity key (sources.{self.name}.key), or leave one out with "
                    f"sources.{self.name}.users.include")
            groups = frozenset(g for s in user.groups if (g := self.wanted_group(s)) is not None)
            mapped |= groups
            identity = {SiteKey.EMAIL: Identity(email=key), SiteKey.USERNAME: Identity(username=key),
                        SiteKey.ACCOUNT_ID: Identity(account_id=key)}[self.key]
            out[key] = DesiredUser(key=key, status=user.status, groups=groups, identity=identity,
                                   display_name=user.display_name, source=self.name,
                                   origin=Location(f"{self.origin} {user.username or user.account_id}"),
                                   fact=user.fact)
        for why, count in sorted(counts.items()):
            log.warning("source %s: %d %s skipped", self.name, count, why)
        log.info("source %s (%s): %d users, %d mapped groups", self.name, self.type, len(out), len(mapped))
        return DesiredState.build(out.values(), groups=mapped)
