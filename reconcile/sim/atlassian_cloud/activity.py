"""Activity and user counts of the simulated organization: v1 `last-active-dates` and v2 `users/count`.

`last-active-dates` keeps the documented "Rate limit per organization: 200 requests per minute": a
fixed one-minute window on the simulator's clock; past it, 429 with a `ProxyError` body and the documented
`X-RateLimit-*` headers, so a tool must prefer the bulk read (users/search with `expand: productAccess`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconcile.sim.atlassian_cloud.matching import count as matching_count
from reconcile.sim.atlassian_cloud.matching import status_only
from reconcile.sim.atlassian_cloud.shapes import OrgError, decode_cursor, user_matches
from reconcile.sim.atlassian_cloud.world import CloudUser, CloudWorld

LAST_ACTIVE_LIMIT = 200  # requests per minute per organization [V: the Organizations document]
WINDOW_SECONDS = 60.0
V1_KEYS = frozenset({"jira-software", "jira-service-desk", "jira-core", "jira-ops", "stride", "hipchat",
                     "confluence", "bitbucket", "trello", "opsgenie", "statuspage"})
V1_KEY_OF = {"jira": "jira-software", "jira-servicedesk": "jira-service-desk"}  # v2 key -> v1 enum [I]
PRODUCT_ROLES = frozenset({"atlassian/user", "atlassian/admin"})  # held through a group granting the product
COUNT_LISTS = ("accountIds", "directoryIds", "resourceIds", "groupIds", "status", "accountStatus",
               "membershipStatus", "roleIds", "emailDomains")

Handler = Callable[[Request], Awaitable[Response]]


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class Activity:
    """Handlers over one world; `clock` (monotonic) runs the rate window, `wall` (epoch s) dates its reset."""

    def __init__(self, world: CloudWorld, bearer: Callable[[Request], str | None],
                 clock: Callable[[], float], wall: Callable[[], float]) -> None:
        self.world, self.bearer, self.clock, self.wall = world, bearer, clock, wall
        self.window_start: float | None = None
        self.used = 0
        self._counts: dict[str, tuple[int, int, int]] = {}  # query -> (world version, users, count)

    def _org(self, request: Request) -> None:
        if self.bearer(request) is None:
            raise OrgError(401, "ADMIN-401-2", "You need to authenticate with an organization API key.")
        if request.path_params["org"] != self.world.org_id:
            raise OrgError(404, "ADMIN-404-2", "We couldn’t find the organization.")

    def _take(self) -> tuple[bool, dict[str, str]]:
        """Count one request against the org's window; (allowed, the X-RateLimit-* headers)."""
        now = self.clock()
        if self.window_start is None or now - self.window_start >= WINDOW_SECONDS:
            self.window_start, self.used = now, 0
        allowed = self.used < LAST_ACTIVE_LIMIT
        if allowed:
            self.used += 1
        left = self.window_start + WINDOW_SECONDS - now
        reset = datetime.fromtimestamp(self.wall() + left, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {"X-RateLimit-Limit": str(LAST_ACTIVE_LIMIT),
                   "X-RateLimit-Remaining": str(LAST_ACTIVE_LIMIT - self.used), "X-RateLimit-Reset": reset}
        if not allowed:
            headers["Retry-After"] = str(max(1, math.ceil(left)))
        return allowed, headers

    async def last_active_dates(self, request: Request) -> Response:
        allowed, headers = self._take()
        if not allowed:
            return JSONResponse({"code": 429, "message": "Rate limit exceeded: 200 requests per minute per "
                                 "organization for last-active-dates."}, status_code=429, headers=headers)
        try:
            self._org(request)
            if request.query_params.get("cursor"):
                decode_cursor(request.query_params["cursor"])  # one page only: any valid cursor is past it
            user = self.world.users.get(request.path_params["account"])
            if user is None:
                raise OrgError(404, "ADMIN-404-8", "We couldn’t find the user.")
        except OrgError as exc:
            failed = exc.response()
            failed.headers.update(headers)
            return failed
        data = last_active_model(user) if not request.query_params.get("cursor") else {"product_access": []}
        return JSONResponse({"data": data, "links": {}}, headers=headers)

    async def count_users(self, request: Request) -> Response:
        self._org(request)
        query = request.query_params
        body: dict[str, Any] = {k: query.getlist(k) for k in COUNT_LISTS if k in query}
        for name in ("claimStatus", "searchTerm"):
            if name in query:
                body[name] = query[name]
        if query.get("mfaEnabled", "false").lower() not in ("true", "false"):
            raise OrgError(400, "ADMIN-400-4", "mfaEnabled must be true or false.")
        dirs = list(self.world.directories)
        if request.path_params["directory"] != "-":
            if request.path_params["directory"] not in self.world.directories:
                raise OrgError(404, "ADMIN-404-9", "We couldn’t find the directory.")
            dirs = [request.path_params["directory"]]
        if body.get("directoryIds"):
            dirs = [d for d in dirs if d in body["directoryIds"]]
        everywhere = request.path_params["directory"] == "-" and not body.get("directoryIds")
        resources = set(body.pop("resourceIds", []))
        roles = set(body.pop("roleIds", []))
        if query.get("mfaEnabled", "").lower() == "true":
            return JSONResponse({"count": 0})  # the simulator's accounts never have two-step verification
        # the split Cloud read counts the same query before and after: once per world version (not when
        # filtering by resources or roles, which depend on group products as well)
        key = repr((sorted(query.multi_items()), request.path_params["directory"]))
        cached = self._counts.get(key) if not resources and not roles else None
        if cached is None or cached[0] != self.world.version or cached[1] != len(self.world.users):
            if not resources and not roles and status_only(body, frozenset()):  # the split read's counts
                count = matching_count(self.world, body, dirs, everywhere)
            else:
                count = sum(1 for u in self.world.users.values()
                            if (any(d in u.membership for d in dirs) or (everywhere and u.claim_status == "managed"))
                            and user_matches(self.world, u, body, dirs) and self._holds(u, resources, roles))
            cached = self._counts[key] = (self.world.version, len(self.world.users), count)
        return JSONResponse({"count": cached[2]})

    def _holds(self, user: CloudUser, resources: set[str], roles: set[str]) -> bool:
        """Whether the user has one of `roles` (product roles through groups, else platform roles) on `resources`."""
        if not resources and not roles:  # no such filter: skip the scan of every group (100k users x 2k groups)
            return True
        products = {p for g in self.world.groups.values() if user.account_id in g.members for p in g.products}
        on = {p for p in products if not resources or self.world.resource_ari(p) in resources}
        if resources and not on:
            return False
        if not roles:
            return True
        return bool(roles & PRODUCT_ROLES and on) or bool(roles & set(user.platform_roles))

    def routes(self, wrap: Callable[[Handler], Handler]) -> list[BaseRoute]:
        return [
            Route("/admin/v1/orgs/{org}/directory/users/{account}/last-active-dates", wrap(self.last_active_dates),
                  methods=["GET"]),
            Route("/admin/v2/orgs/{org}/directories/{directory}/users/count", wrap(self.count_users),
                  methods=["GET"]),
        ]


def last_active_model(user: CloudUser) -> dict[str, Any]:
    """`UserProductAccessModel`: products never accessed are left out ("the field will be empty")."""
    access = []
    for item in user.product_access:
        key = V1_KEY_OF.get(item["key"], item["key"])
        if key not in V1_KEYS or not item.get("lastActiveTimestamp"):
            continue
        when = stamp(item["lastActiveTimestamp"])
        access.append({"id": item["id"], "key": key, "last_active": when.strftime("%Y-%m-%d"),
                       "last_active_timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ")})
    added = stamp(user.added_to_org) if user.added_to_org else None
    return {"product_access": access,
            "added_to_org": added.strftime("%Y-%m-%d") if added else None,
            "added_to_org_timestamp": added.strftime("%Y-%m-%dT%H:%M:%SZ") if added else None}
