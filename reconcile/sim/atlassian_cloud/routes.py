"""The Atlassian Cloud half of the simulator: Organizations v2, user management lifecycle, Jira site.

Serves a `CloudWorld` (world.py) with the real paths, status codes, bodies and cursor
pagination. `routes(ctx)` is what the simulator app (app.py) mounts; latency, rate limits, random
faults and the request log come from its middleware, `CloudApi.faults` adds targeted ones.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconcile.sim.atlassian_cloud.activity import Activity
from reconcile.sim.atlassian_cloud.lifecycle import Keyed, Lifecycle
from reconcile.sim.atlassian_cloud.matching import matching, status_only
from reconcile.sim.atlassian_cloud.shapes import (
    BODY_FIELDS,
    OrgError,
    basic_credentials,
    cursor_limit,
    decode_cursor,
    encode_cursor,
    group_json,
    is_typed,
    ordered,
    sort_direction,
    user_json,
    user_matches,
)
from reconcile.sim.atlassian_cloud.wiki_routes import WikiApi
from reconcile.sim.atlassian_cloud.world import CloudGroup, CloudUser, CloudWorld
from reconcile.sim.context import SimContext
from reconcile.sim.control import SimSettings
from reconcile.sim.jsonbody import BodyCache, FastJSONResponse, dumps

__all__ = ["CloudApi", "CloudWorld", "Fault", "routes"]

log = logging.getLogger(__name__)

ORG = "/admin/v2/orgs/{org}"
DIR = ORG + "/directories/{directory}"
ALREADY_OR_LIMIT = ("The user is already in the group or you’ve exceeded your user limit for an app "
                    "that the group grants access to.")
USER_EXPANDS = {"platformRoles", "counts.resources", "productAccess", "groups"}
GROUP_EXPANDS = {"counts.resources", "counts.users"}
AHEAD = 256  # next pages rendered ahead at most (one per cursor chain under way)
PAGING_ONLY = frozenset({"cursor", "limit", "expand", "sortBy"})  # search body keys that select no users

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Fault:
    """An injected failure: the next `times` requests matching `method` and `path` (a substring).

    `after=True` answers `status` only after the request took effect (a lost response), which is
    how a client learns it must re-read instead of blindly retrying a POST.
    """

    method: str
    path: str
    status: int
    times: int = 1
    after: bool = False
    headers: dict[str, str] = field(default_factory=dict)


class CloudApi:
    """The HTTP handlers over one world; `faults` is consulted before and after each request."""

    def __init__(self, world: CloudWorld, settings: Callable[[], SimSettings] = SimSettings,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.world = world
        self.activity = Activity(world, self._bearer, clock, wall)  # last-active-dates' own 200/min window
        self.settings = settings  # the simulator's current settings (`links_next`)
        self.faults: list[Fault] = []
        self.stuck_cursor = False  # a server bug: every search page names the same `next` cursor
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests
        self._searches: dict[str, tuple[int, list[str]]] = {}  # query -> (world version, account ids)
        self._pages = BodyCache()  # rendered search pages, valid while the world's version stands
        self._ahead: dict[tuple[Any, ...], bytes] = {}  # (version, key) -> a next page rendered before asked for

    # ---------------------------------------------------------------- plumbing
    def _fault(self, request: Request, after: bool) -> Response | None:
        for fault in self.faults:
            if (fault.times > 0 and fault.after is after and fault.method == request.method
                    and fault.path in request.url.path):
                fault.times -= 1
                body = {"code": fault.status, "message": "Simulated failure"}
                return JSONResponse(body, status_code=fault.status, headers=fault.headers)
        return None

    def wrap(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.requests.append((request.method, request.url.path))
            failed = self._fault(request, after=False)
            if failed is not None:
                return failed
            try:
                response = await handler(request)
            except OrgError as exc:
                return exc.response()
            except Keyed as exc:
                return JSONResponse(exc.body, status_code=exc.status)
            return self._fault(request, after=True) or response

        return endpoint

    def _bearer(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer ") and header[7:] in self.world.api_keys:
            return header[7:]
        return None

    def _org(self, request: Request, *, writes: bool = False) -> list[str]:
        """Authenticate and resolve the path's org and directory into directory ids."""
        if self._bearer(request) is None:
            raise OrgError(401, "ADMIN-401", "You need to authenticate with an organization API key.")
        if request.path_params["org"] != self.world.org_id:
            raise OrgError(404, "ADMIN-404-2", "We couldn’t find the organization.")
        directory = request.path_params.get("directory")
        if directory is None:
            return list(self.world.directories)
        if directory == "-" and not writes:
            return list(self.world.directories)
        if directory not in self.world.directories:
            raise OrgError(404, "ADMIN-404-9", f"We couldn’t find the directory {directory}.")
        return [directory]

    async def _body(self, request: Request, *, required: bool = False) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            if required:
                raise OrgError(400, "ADMIN-400-24", "The request body is missing.")
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise OrgError(400, "ADMIN-400-24", "The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise OrgError(400, "ADMIN-400-24", "The request body must be a JSON object.")
        for name, value in data.items():
            kind = BODY_FIELDS.get(name)
            if kind is not None and not is_typed(value, kind):
                raise OrgError(400, "ADMIN-400-24", f"{name} must be {kind}.")
        return data

    def _page(self, request: Request, items: list[Any], body: dict[str, Any], default: int) -> dict[str, Any]:
        limit = body.get("limit", default)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
            raise OrgError(400, "ADMIN-400-3", "limit must be an integer between 1 and 100.")
        offset = 0
        if body.get("cursor"):
            offset = decode_cursor(str(body["cursor"]))
        page = items[offset:offset + limit]
        style = self.settings().faults.links_next
        links: dict[str, Any] = {"self": str(request.url)}
        if offset + limit < len(items) or self.stuck_cursor:
            cursor = encode_cursor(limit if self.stuck_cursor else offset + limit, limit)
            links["next"] = str(request.url.replace(query=f"cursor={cursor}")) if style == "url" else cursor
        elif style == "null":
            links["next"] = None
        if offset:
            links["prev"] = encode_cursor(max(0, offset - limit), limit)
        return {"data": page, "links": links}

    # ---------------------------------------------------------------- Organizations v2
    async def directories(self, request: Request) -> Response:
        """Paged like every v2 listing: `limit` (1-100, default 20) and an opaque `cursor`."""
        self._org(request)
        query = request.query_params
        data = [{"directoryId": d, "name": n, "icon": ""} for d, n in self.world.directories.items()]
        account = query.get("accountId")
        if account:
            user = self.world.users.get(account)
            data = [d for d in data if user is not None and d["directoryId"] in user.membership]
        paging: dict[str, Any] = {}
        if query.get("cursor"):
            paging["cursor"] = query["cursor"]  # "If present, all other parameters are discarded."
        elif "limit" in query:
            try:
                paging["limit"] = int(query["limit"])
            except ValueError:
                raise OrgError(400, "ADMIN-400-3", "limit must be an integer between 1 and 100.") from None
        if "cursor" in paging:
            paging["limit"] = cursor_limit(str(paging["cursor"]))
        return FastJSONResponse(self._page(request, data, paging, 20))

    async def search_users(self, request: Request) -> Response:
        dirs = self._org(request)
        body = await self._body(request)
        expand = set(body.get("expand", []))
        if expand - USER_EXPANDS:
            raise OrgError(400, "ADMIN-400-4", f"Unknown expand value(s): {sorted(expand - USER_EXPANDS)}")
        if body.get("emails") and body.get("searchTerm"):
            raise OrgError(400, "ADMIN-400-4", "Use either emails or searchTerm, not both.")
        if body.get("directoryIds"):
            dirs = [d for d in dirs if d in body["directoryIds"]]
        everywhere = request.path_params["directory"] == "-"
        query = json.dumps([dirs, everywhere, {k: v for k, v in body.items()
                                               if k not in ("cursor", "limit", "expand")}], sort_keys=True)
        cached = self._searches.get(query)
        if cached is None or cached[0] != self.world.version:
            if status_only(body, PAGING_ONLY):  # decided once per kind of user, not per user (matching.py)
                ids = matching(self.world, body, dirs, everywhere, sort_direction(body))
            else:
                ids = [u.account_id for u in self.world.users.values()
                       if (any(d in u.membership for d in dirs) or (everywhere and u.claim_status == "managed"))
                       and user_matches(self.world, u, body, dirs)]
                ids = ordered(self.world, ids, body)
            cached = self._searches[query] = (self.world.version, ids)
        version = (self.world.version, self.stuck_cursor, self.settings().faults.links_next)
        key = (query, str(request.url), body.get("cursor"), body.get("limit"), tuple(sorted(expand)))
        rendered = self._ahead.pop((version, key), None) or self._pages.get(version, key)
        if rendered is None:
            rendered = self._pages.put(version, key, self._render(request, ids=cached[1], body=body, dirs=dirs,
                                                                  expand=expand))
        if not self.stuck_cursor and version[2] == "cursor":
            self._render_next(request, version, key, ids=cached[1], body=body, dirs=dirs, expand=expand)
        return Response(rendered, media_type="application/json")

    def _render(self, request: Request, *, ids: list[str], body: dict[str, Any], dirs: list[str],
                expand: set[str]) -> bytes:
        page = self._page(request, ids, body, 50)
        users = self.world.users
        page["data"] = [user_json(self.world, users[a], dirs, expand) for a in page["data"]]
        return dumps(page)

    def _render_next(self, request: Request, version: tuple[Any, ...], key: tuple[Any, ...], *, ids: list[str],
                     body: dict[str, Any], dirs: list[str], expand: set[str]) -> None:
        """Render the page after this one once this answer is on its way: a cursor chain asks for it one
        round trip later, and rendering it then (~0.8 ms of 100 users) sat on every page's critical path.
        Kept aside until asked for (then dropped), not in `_pages`: 1,000 pages of 100 users outgrow its budget."""
        limit = body.get("limit", 50)
        offset = decode_cursor(str(body["cursor"])) + limit if body.get("cursor") else limit
        if offset >= len(ids):
            return
        cursor = encode_cursor(offset, limit)
        after = {**body, "cursor": cursor}
        following = (version, (key[0], key[1], cursor, key[3], key[4]))

        def render() -> None:
            if following in self._ahead or self._pages.bodies.get(following[1]) is not None:
                return
            if len(self._ahead) >= AHEAD:  # chains that stopped (or a world that changed) left theirs
                self._ahead.clear()
            self._ahead[following] = self._render(request, ids=ids, body=after, dirs=dirs, expand=expand)

        asyncio.get_running_loop().call_soon(render)

    async def search_groups(self, request: Request) -> Response:
        dirs = self._org(request)
        body = await self._body(request)
        expand = set(body.get("expand", []))
        if expand - GROUP_EXPANDS:
            raise OrgError(400, "ADMIN-400-4", f"Unknown expand value(s): {sorted(expand - GROUP_EXPANDS)}")
        if body.get("groupIds") and body.get("groupNames"):
            raise OrgError(400, "ADMIN-400-4", "Use either groupIds or groupNames, not both.")
        names = {n.lower() for n in body.get("groupNames", [])}
        ids = set(body.get("groupIds", []))
        members = set(body.get("accountIds", []))
        term = str(body.get("searchTerm", "")).lower()
        found = [g for g in self.world.groups.values()
                 if g.directory in dirs and (not names or g.name.lower() in names)
                 and (not ids or g.id in ids) and (not members or g.members & members)
                 and term in g.name.lower()]
        page = self._page(request, found, body, 20)  # only the page's groups are rendered
        page["data"] = [group_json(g, expand) for g in page["data"]]
        return FastJSONResponse(page)

    def _group(self, request: Request, dirs: list[str]) -> CloudGroup:
        group = self.world.groups.get(request.path_params["group"])
        if group is None or group.directory not in dirs:
            raise OrgError(404, "ADMIN-404-10", "We couldn’t find the group.")
        return group

    def _member(self, account_id: str, dirs: list[str]) -> CloudUser:
        user = self.world.users.get(account_id)
        if user is None or not any(d in user.membership for d in dirs):
            raise OrgError(404, "ADMIN-404-8", f"We couldn’t find the user {account_id} in the directory.")
        return user

    async def add_member(self, request: Request) -> Response:
        dirs = self._org(request, writes=True)
        group = self._group(request, dirs)
        account_id = (await self._body(request, required=True)).get("accountId")
        if not isinstance(account_id, str):
            raise OrgError(400, "ADMIN-400-24", "accountId is required.")
        self._member(account_id, [group.directory])
        if group.external_synced:
            raise OrgError(403, "ADMIN-403-5", f"The group {group.name} is synced from an identity "
                           "provider; change its members there.")
        if account_id in group.members or self.world.would_exceed_licence(group, account_id):
            raise OrgError(409, "ADMIN-409-3", ALREADY_OR_LIMIT)
        group.members.add(account_id)
        self.world.record("add_member", group=group.name, account_id=account_id)
        return Response(status_code=204)

    async def remove_member(self, request: Request) -> Response:
        dirs = self._org(request, writes=True)
        group = self._group(request, dirs)
        account_id = request.path_params["account"]
        self._member(account_id, [group.directory])
        if group.external_synced:
            raise OrgError(403, "ADMIN-403-5", f"The group {group.name} is synced from an identity "
                           "provider; change its members there.")
        if account_id in group.members:
            group.members.discard(account_id)
            self.world.record("remove_member", group=group.name, account_id=account_id)
        return Response(status_code=204)

    def _writable_user(self, request: Request) -> tuple[CloudUser, str]:
        dirs = self._org(request, writes=True)
        user = self._member(request.path_params["account"], dirs)
        if user.management_source == "synced":
            raise OrgError(403, "ADMIN-403-3", "This user is managed by an identity provider (SCIM); "
                           "change them there.")
        return user, dirs[0]

    async def suspend(self, request: Request) -> Response:
        user, directory = self._writable_user(request)
        if user.membership[directory] != "suspended":
            user.membership[directory] = "suspended"
            self.world.record("suspend", account_id=user.account_id, directory=directory)
        return Response(status_code=204)

    async def restore(self, request: Request) -> Response:
        user, directory = self._writable_user(request)
        if user.membership[directory] != "active":
            user.membership[directory] = "active"
            self.world.record("restore", account_id=user.account_id, directory=directory)
        return Response(status_code=204)

    async def remove_user(self, request: Request) -> Response:
        user, directory = self._writable_user(request)
        del user.membership[directory]
        for group in self.world.groups.values():
            if group.directory == directory:
                group.members.discard(user.account_id)
        self.world.record("remove_from_directory", account_id=user.account_id, directory=directory)
        return Response(status_code=204)

    # ---------------------------------------------------------------- Jira site
    async def jira_remove_user(self, request: Request) -> Response:
        email, token = basic_credentials(request.headers.get("authorization", ""))
        if email is None or self.world.site_credentials.get(email) != token:
            return Response("Client must be authenticated to access this resource.", status_code=401,
                            media_type="text/plain")
        account_id = request.query_params.get("accountId")
        if not account_id:
            raise Keyed(400, {"errorMessages": ["The accountId query parameter is required."], "errors": {}})
        user = self.world.users.get(account_id)
        if user is None or not user.on_site:
            raise Keyed(404, {"errorMessages": [f"User with accountId '{account_id}' does not exist."],
                              "errors": {}})
        user.on_site = False
        user.product_access = []
        for group in self.world.groups.values():
            if group.products:
                group.members.discard(account_id)
        self.world.record("remove_from_site", account_id=account_id)
        return Response(status_code=204)

    def routes(self) -> list[BaseRoute]:
        w = self.wrap
        return [
            Route(ORG + "/directories", w(self.directories), methods=["GET"]),
            Route(DIR + "/users/search", w(self.search_users), methods=["POST"]),
            Route(DIR + "/groups/search", w(self.search_groups), methods=["POST"]),
            Route(DIR + "/groups/{group}/memberships", w(self.add_member), methods=["POST"]),
            Route(DIR + "/groups/{group}/memberships/{account}", w(self.remove_member), methods=["DELETE"]),
            Route(DIR + "/users/{account}/suspend", w(self.suspend), methods=["POST"]),
            Route(DIR + "/users/{account}/restore", w(self.restore), methods=["POST"]),
            Route(DIR + "/users/{account}", w(self.remove_user), methods=["DELETE"]),
            *Lifecycle(self.world, self._bearer).routes(w),
            *self.activity.routes(w),
            Route("/rest/api/{version:int}/user", w(self.jira_remove_user), methods=["DELETE"]),
            *WikiApi(self.world).routes(w),  # Confluence Cloud: what the delete guard reads
        ]


def routes(ctx: SimContext) -> list[BaseRoute]:
    """The Cloud routes over `ctx.cloud` (none without one); the handlers are `ctx.extra["cloud_api"]` (for faults)."""
    if ctx.cloud is None:
        return []
    if not isinstance(ctx.cloud, CloudWorld):
        raise TypeError("the simulator's Cloud world is not a reconcile.sim.atlassian_cloud.world.CloudWorld")
    api = CloudApi(ctx.cloud, lambda: ctx.settings, clock=ctx.clock, wall=ctx.wall)
    ctx.extra["cloud_api"] = api
    return api.routes()
