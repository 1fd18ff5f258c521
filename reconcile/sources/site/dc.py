"""`type: confluence-dc` as a source: another Confluence DC site's users, statuses, emails and groups,
read with the confluence-dc target's readers through a client that cannot write."""

from __future__ import annotations

import asyncio
import logging

import httpx

from reconcile.errors import SourceError
from reconcile.http import Backoff, Clock, all_of, basic, bearer
from reconcile.model import DesiredState, Status
from reconcile.settings import DcSourceSettings, SiteKey
from reconcile.sources.site.common import Keyer, ReadOnlyClient, SiteUser, read_only_client, source_errors
from reconcile.targets.confluence_dc import read

log = logging.getLogger(__name__)


class DcSource:
    """Reads a Confluence DC site: `read()` is its only operation."""

    def __init__(self, config: DcSourceSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.name = config.name
        self._transport, self._backoff, self._clock = transport, backoff, clock
        self.keyer = Keyer(config, origin=config.url)

    def _client(self) -> ReadOnlyClient:
        cfg = self.config
        auth = (bearer(cfg.token) if cfg.token is not None
                else basic(cfg.username, cfg.password) if cfg.username and cfg.password is not None else None)
        return read_only_client(cfg.url, auth=auth, settings=cfg.http, flavor="dc", transport=self._transport,
                              backoff=self._backoff, clock=self._clock)

    async def read(self) -> DesiredState:
        async with source_errors(self.name, self.config.type):
            client = self._client()
            try:
                return await self._read(client)
            finally:
                await client.aclose()

    async def _read(self, client: ReadOnlyClient) -> DesiredState:
        cfg = self.config
        await read.current_user(client, token=cfg.token is not None)  # a bad token reads as anonymous
        window = max(1, cfg.http.concurrency)
        listing = asyncio.ensure_future(read.list_users(client, window))
        emails = asyncio.ensure_future(read.list_active(client, window))
        groups = asyncio.ensure_future(read.list_groups(client, window))
        await all_of(listing, emails, groups)  # a failure cancels the other reads
        people, active, names = listing.result(), emails.result(), groups.result()
        if active is None and cfg.key is SiteKey.EMAIL:
            raise SourceError(
                f"{client.url('/rest/api/admin/users/list/active')} -> 404: this Confluence version (before "
                "9.3) reveals no emails, so its users cannot be keyed by email",
                hint=f"set `key: username` on source '{self.name}' (the target must then know the same "
                "usernames), or upgrade the source site to 9.3 or later")
        wanted = [g for g in names if self.keyer.wanted_group(g) is not None]
        member_lists = await all_of(*(read.list_member_keys(client, g) for g in wanted))
        groups_of: dict[str, set[str]] = {}
        for group, keys in zip(wanted, member_lists, strict=True):
            for key in keys:
                groups_of.setdefault(key, set()).add(group)
        email_of = {a.user_key: a.email for a in active or ()}
        skipped: dict[str, int] = {}
        users: list[SiteUser] = []
        unknown = [p.username for p in people if p.status is None and not p.unsynced]
        if unknown:
            raise SourceError(
                f"{client.url('/rest/api/user/list')}: the server did not report the status of "
                f"{len(unknown)} users (e.g. {unknown[0]}); cannot tell active from deactivated users",
                hint="the account needs Confluence system administrator permission; nothing was planned")
        for p in people:
            if p.unsynced:  # left behind by its directory: not a user
                skipped["unsynced-from-directory entries (not users)"] = skipped.get(
                    "unsynced-from-directory entries (not users)", 0) + 1
                continue
            status = p.status or Status.ACTIVE
            word = "deactivated" if status is Status.DISABLED else "active"
            users.append(SiteUser(username=p.username, email=email_of.get(p.user_key), account_id=None,
                                  display_name=p.display_name, status=status,
                                  fact=f"confluence-dc status={word}",
                                  groups=frozenset(groups_of.get(p.user_key, ()))))
        strangers = set(groups_of) - {p.user_key for p in people}
        if strangers:
            log.info("source %s: %d group members not in the user list ignored", self.name, len(strangers))
        return self.keyer.desired(users, skipped=skipped)
