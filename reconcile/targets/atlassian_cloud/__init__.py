"""The atlassian-cloud target: an organization read through the Organizations API v2, written
through it, the user management lifecycle API and (optionally) a Jira site's REST API.

`AtlassianCloudTarget` is the Target; reading lives in read.py, writing in write.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import httpx

from reconcile.errors import TargetError
from reconcile.http import Backoff, Clock, HttpClient, basic, bearer
from reconcile.impact import Impact
from reconcile.model import ActualState, Licence, Scope, User, norm
from reconcile.plan import Action, ActionKind
from reconcile.settings import AtlassianCloudSettings
from reconcile.targets import atlassian
from reconcile.targets.atlassian import fail
from reconcile.targets.atlassian_cloud.account import Account, CloudGroup
from reconcile.targets.atlassian_cloud.impact import read_impacts
from reconcile.targets.atlassian_cloud.read import READ_HINT, USER_EXPAND, OrgReader
from reconcile.targets.atlassian_cloud.split import SplitRead
from reconcile.targets.atlassian_cloud.write import Writer
from reconcile.targets.base import ALL_KINDS, Outcome, Progress

log = logging.getLogger(__name__)

__all__ = ["AtlassianCloudTarget"]


class AtlassianCloudTarget:
    """Reads users (with groups, product access and platform roles in one sweep) and groups.

    `ActualState.me` stays None: an organization API key belongs to the organization, and no admin
    API reveals which account created it. That account is an org admin (only org admins can create
    keys), and org admins are protected, so it is never planned either way.
    """

    def __init__(self, config: AtlassianCloudSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.http = atlassian.client(config.url, auth=bearer(config.api_key), settings=config.http,
                                     flavor="cloud", transport=transport, backoff=backoff, clock=clock)
        self.site: HttpClient | None = None
        if config.site is not None:
            self.site = atlassian.client(config.site.url, auth=basic(config.site.email, config.site.token),
                                         settings=config.http, flavor="cloud-site", transport=transport,
                                         backoff=backoff, clock=clock)
        self.reader = OrgReader(self.http, config.org_id)
        self.writer = Writer(config, self.http, self.site, self.reader)
        self.products: dict[str, str] = {}  # product key -> its ARI, as users/search showed it

    supports = ALL_KINDS

    def address(self) -> dict[str, str]:
        return self.config.address()

    def concurrency(self, kind: ActionKind) -> int:
        return max(1, self.config.http.concurrency)

    async def _directories(self) -> list[str]:
        found = await self.reader.directories()
        wanted = self.config.directory
        if wanted == "-":
            if not found:
                raise TargetError(f"GET {self.http.url(self.reader.org + '/directories')}: the API key "
                                  "may manage no directory", hint="create the key as an org admin, unscoped")
            return sorted(found)
        chosen = [d for d, name in found.items() if wanted in (d, name) or norm(wanted) == norm(name)]
        if not chosen:
            listing = ", ".join(f"{name} ({d})" for d, name in sorted(found.items())) or "none"
            raise TargetError(f"target.directory {wanted!r} is not a directory of organization "
                              f"{self.config.org_id}", hint=f"use \"-\" or one of: {listing}")
        return chosen

    async def fetch(self, scope: Scope, progress: Progress | None = None) -> ActualState:
        directories = await self._directories()
        self.writer.directory = directories[0] if self.config.directory != "-" else "-"
        accounts: dict[str, Account] = {}
        groups: dict[str, CloudGroup] = {}
        read = {"users": 0, "groups": 0}

        async def users(directory: str) -> None:
            split = SplitRead(self.reader, directory, {"expand": USER_EXPAND})  # concurrent chains, each user once
            async for page in split.pages():
                for item in page:
                    for access in item.get("productAccess") or []:  # the product ARIs seats are counted by
                        if isinstance(access, dict) and access.get("key") and access.get("id"):
                            self.products.setdefault(str(access["key"]), str(access["id"]))
                    acct = Account.from_json(item, directory)
                    seen = accounts.get(acct.account_id)
                    accounts[acct.account_id] = acct if seen is None else seen.merge(acct)
                read["users"] += len(page)
                if progress:
                    progress("users", read["users"], None)

        async def group_list(directory: str) -> None:
            async for page in self.reader.pages("groups", directory, {}):
                for item in page:
                    group = CloudGroup.from_json(item, directory)
                    other = groups.get(norm(group.name))
                    if other is not None and other.id != group.id:
                        raise TargetError(
                            f"two groups are named {group.name!r} (directories {other.directory} and "
                            f"{group.directory}); reconcile compares groups by name",
                            hint="set target.directory to one directory id")
                    groups[norm(group.name)] = group
                read["groups"] += len(page)
                if progress:
                    progress("groups", read["groups"], None)

        await asyncio.gather(*(job(d) for d in directories for job in (users, group_list)))
        members: dict[str, set[str]] = {name: set() for name in groups if scope.owns_group(name)}
        by_id = {g.id: norm(g.name) for g in groups.values()}
        live = {a: acct for a, acct in accounts.items() if acct.member}
        for acct in live.values():
            for gid in acct.groups:
                name = by_id.get(gid)
                if name in members:
                    members[name].add(acct.account_id)
        self.writer.remember(live, groups)
        log.info("atlassian-cloud %s: %d users (%d no longer members skipped), %d groups",
                 self.config.org_id, len(live), len(accounts) - len(live), len(groups))
        return ActualState.build(
            users=(acct.to_user() for acct in live.values()),
            groups=(g.to_group() for g in groups.values()),
            members=members,
            me=self._me(live),
        )

    def _me(self, live: dict[str, Account]) -> str | None:
        """The credentials' own account, protected by the planner: the site credentials' email.

        The organization API key belongs to no account the Organizations API reveals.
        """
        if self.config.site is None:
            return None
        email = norm(self.config.site.email)
        return next((a for a, acct in live.items() if acct.email == email), None)

    async def impact(self, users: Sequence[User]) -> Mapping[str, Impact]:
        """What deleting each user would destroy on the Confluence Cloud site of `target.site` (impact.py);
        every fact unknown without `target.site`."""
        return await read_impacts(self.site, users)

    async def licence(self, scope: Scope, product: str) -> Licence | None:
        """Cloud reveals no seat count: billable users holding `product` (users/count) approximate it."""
        ari = self.products.get(product)
        if ari is None:
            return Licence(product=product, used=None, approximate=True,
                           note=f"no user has {product} access, so its seats were not counted")
        path = f"{self.reader.org}/directories/-/users/count"
        params = {"resourceIds": ari, "roleIds": ["atlassian/user", "atlassian/admin"], "status": "active"}
        response = await self.http.request("GET", path, params=params)
        if response.status_code != 200:
            fail(response, READ_HINT)
        count = response.json().get("count")
        return Licence(product=product, used=int(count) if isinstance(count, int) else None, approximate=True,
                       source="billable users with the product (users/count; the invoice may differ)")

    async def perform(self, action: Action) -> Outcome:
        return await self.writer.perform(action)

    async def aclose(self) -> None:
        await self.http.aclose()
        if self.site is not None:
            await self.site.aclose()
