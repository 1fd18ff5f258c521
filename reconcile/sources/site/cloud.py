"""`type: atlassian-cloud` as a source: an organization's users, statuses and groups, read with the
atlassian-cloud target's reader (`OrgReader`) through a client that cannot write."""

from __future__ import annotations

import httpx

from reconcile.errors import SourceError
from reconcile.http import Backoff, Clock, all_of, bearer
from reconcile.model import DesiredState, Status, norm
from reconcile.settings import CloudSourceSettings
from reconcile.sources.site.common import Keyer, SiteUser, read_only_client, source_errors
from reconcile.targets.atlassian_cloud.account import Account, group_id
from reconcile.targets.atlassian_cloud.read import USER_EXPAND, OrgReader


def fact(account: Account) -> str:
    """The raw Organizations API field that decides the status (suspended or deactivated: disabled)."""
    if account.deactivated:
        return "atlassian-cloud accountStatus=inactive"
    if account.suspended:
        return "atlassian-cloud membershipStatus=suspended"
    return "atlassian-cloud status=active"


class CloudSource:
    """Reads an Atlassian Cloud organization: `read()` is its only operation."""

    def __init__(self, config: CloudSourceSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.name = config.name
        self._transport, self._backoff, self._clock = transport, backoff, clock
        self.keyer = Keyer(config, origin=f"{config.url} org {config.org_id}")

    async def read(self) -> DesiredState:
        cfg = self.config
        async with source_errors(self.name, cfg.type):
            client = read_only_client(cfg.url, auth=bearer(cfg.api_key), settings=cfg.http, flavor="cloud",
                                    transport=self._transport, backoff=self._backoff, clock=self._clock)
            try:
                return await self._read(OrgReader(client, cfg.org_id))
            finally:
                await client.aclose()

    async def _directories(self, reader: OrgReader) -> list[str]:
        found = await reader.directories()
        wanted = self.config.directory
        if wanted == "-":
            if not found:
                raise SourceError(f"GET {reader.http.url(reader.org + '/directories')}: the API key may manage "
                                  "no directory", hint="create the key as an org admin, unscoped")
            return sorted(found)
        chosen = [d for d, name in found.items() if wanted in (d, name) or norm(wanted) == norm(name)]
        if not chosen:
            listing = ", ".join(f"{name} ({d})" for d, name in sorted(found.items())) or "none"
            raise SourceError(f"directory {wanted!r} is not a directory of organization {self.config.org_id}",
                              hint=f"set sources.{self.name}.directory to \"-\" or one of: {listing}")
        return chosen

    async def _read(self, reader: OrgReader) -> DesiredState:
        directories = await self._directories(reader)
        accounts: dict[str, Account] = {}
        names: dict[str, str] = {}  # group id -> lower-cased name
        read_groups = self.config.groups is not None

        async def users(directory: str) -> None:
            async for page in reader.pages("users", directory, {"expand": USER_EXPAND}):
                for item in page:
                    account = Account.from_json(item, directory)
                    seen = accounts.get(account.account_id)
                    accounts[account.account_id] = account if seen is None else seen.merge(account)

        async def groups(directory: str) -> None:
            async for page in reader.pages("groups", directory, {}):
                for item in page:
                    names[group_id(item["id"])] = norm(str(item["name"]))

        jobs = [users(d) for d in directories] + ([groups(d) for d in directories] if read_groups else [])
        await all_of(*jobs)  # a failure cancels the other reads
        skipped: dict[str, int] = {}
        out: list[SiteUser] = []
        for account in accounts.values():
            if not account.member:  # removed, closed or scheduled for deletion: not a user
                skipped["accounts no longer members (removed, closed or deleted)"] = skipped.get(
                    "accounts no longer members (removed, closed or deleted)", 0) + 1
                continue
            disabled = account.suspended or account.deactivated
            out.append(SiteUser(
                username=None, email=account.email, account_id=account.account_id, display_name=account.name,
                status=Status.DISABLED if disabled else Status.ACTIVE, fact=fact(account),
                groups=frozenset(names[g] for g in account.groups if g in names)))
        return self.keyer.desired(out, skipped=skipped)
