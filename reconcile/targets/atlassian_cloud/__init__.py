"""The atlassian-cloud target: an organization read through the Organizations API v2, written
through it, the user management lifecycle API and (optionally) a Jira site's REST API.

`AtlassianCloudTarget` is the Target; reading lives in read.py, writing in write.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

import httpx

from reconcile.collector import full_collections_paused
from reconcile.errors import TargetError
from reconcile.http import Backoff, Clock, HttpClient, basic, bearer
from reconcile.impact import Impact
from reconcile.model import ActualState, Licence, Scope, User, norm
from reconcile.plan import Action, ActionKind
from reconcile.settings import AtlassianCloudSettings
from reconcile.targets import atlassian
from reconcile.targets.atlassian import fail
from reconcile.targets.atlassian_cloud.account import CloudGroup, Facts, group_id, merge_users, user_of
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
        # one record per person: the domain's User, built from the decoded item; what Cloud adds (statuses,
        # directories) is a shared `Facts` value, and memberships go straight into a per-group list
        users: dict[str, User] = {}
        facts: dict[str, Facts] = {}
        interned: dict[tuple[object, ...], Facts] = {}
        instants: dict[object, datetime | None] = {}
        in_group: dict[str, list[str]] = {}  # group id as sent -> account ids (members or not; filtered below)
        groups: dict[str, CloudGroup] = {}
        read = {"users": 0, "groups": 0}

        async def user_list(directory: str) -> None:
            split = SplitRead(self.reader, directory, {"expand": USER_EXPAND})  # concurrent chains, each user once
            where = frozenset({directory})
            async for page in split.pages():
                for item in page:
                    for access in item.product_access or ():  # the product ARIs seats are counted by
                        if access.key and access.id and access.key not in self.products:
                            self.products[access.key] = access.id
                    user, fact = user_of(item, instants), Facts.of(item, where, interned)
                    ref = user.ref
                    seen = users.get(ref)
                    if seen is None:
                        users[ref], facts[ref] = user, fact
                    else:
                        fact = facts[ref].merge(fact)
                        fact = interned.setdefault(
                            (fact.status, fact.account_status, fact.membership_status, fact.directories), fact)
                        users[ref], facts[ref] = merge_users(seen, fact, user), fact
                    for g in item.groups or ():  # keyed by the id as sent: `group_id` once per group, below
                        held = in_group.get(g.id)
                        if held is None:
                            in_group[g.id] = [ref]
                        else:
                            held.append(ref)
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

        # no full collection mid-read (one pass over the ~million objects kept: ~0.23 s with the loop stopped),
        # and none after, as the DC fetch: the read leaves no cycle to collect (a pass after it found nothing)
        with full_collections_paused():
            await asyncio.gather(*(job(d) for d in directories for job in (user_list, group_list)))
        gone = [ref for ref, fact in facts.items() if not fact.member]
        for ref in gone:
            del users[ref], facts[ref]
        by_id: dict[str, list[str]] = {}  # a group id's memberships, however the users' items wrote it
        for gid, refs in in_group.items():
            by_id.setdefault(group_id(gid), []).extend(refs)
        members: dict[str, frozenset[str]] = {}
        for group in groups.values():
            name = norm(group.name)
            if scope.owns_group(name):
                refs = by_id.get(group.id, [])
                members[name] = frozenset(refs if not gone else (r for r in refs if r in users))
        self.writer.remember(users, facts, groups)
        log.info("atlassian-cloud %s: %d users (%d no longer members skipped), %d groups",
                 self.config.org_id, len(users), len(gone), len(groups))
        return ActualState(users=users, groups={norm(g.name): g.to_group() for g in groups.values()},
                           members=members, me=self._me(users))

    def _me(self, users: Mapping[str, User]) -> str | None:
        """The credentials' own account, protected by the planner: the site credentials' email.

        The organization API key belongs to no account the Organizations API reveals.
        """
        if self.config.site is None:
            return None
        email = norm(self.config.site.email)
        return next((ref for ref, user in users.items() if user.email == email), None)

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
