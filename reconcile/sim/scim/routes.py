"""SCIM 2.0 read routes under `/scim/v2` (a base URL of `http://host:port/scim/v2`): `GET /Users`, `/Users/{id}`,
`/Groups`, `/Groups/{id}`, `/ServiceProviderConfig`; bearer tokens; a per-token rate limit answered 429 + Retry-After.

Lists page by startIndex (1-based; below 1 means 1) and count (capped at the world's `max_results`, silently, as
servers do; negative means 0) and answer a ListResponse with totalResults, itemsPerPage and startIndex.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from reconcile.sim.context import SimContext
from reconcile.sim.control import RateLimit, TokenBucket
from reconcile.sim.scim import resources as r
from reconcile.sim.scim.filter import FilterError, parse
from reconcile.sim.scim.world import ScimWorld

PREFIX = "/scim/v2"
MEDIA = "application/scim+json"


def scim_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, media_type=MEDIA, headers=headers)


def scim_error(status: int, detail: str, scim_type: str | None = None,
               headers: dict[str, str] | None = None) -> Response:
    return scim_response(r.error_body(status, detail, scim_type), status, headers)


def _int(raw: str | None, default: int) -> int | None:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        return None


def routes(ctx: SimContext) -> list[BaseRoute]:
    def guard(request: Request) -> tuple[ScimWorld | None, Response | None]:
        world: ScimWorld | None = ctx.extra.get("scim")
        if world is None:
            return None, scim_error(404, "this simulator holds no SCIM directory (reconcile sim --scim-users N)")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in world.tokens:
            return None, scim_error(401, "Authentication failure: a valid bearer token is required",
                                    headers={"WWW-Authenticate": 'Bearer realm="scim"'})
        if world.rate_limit > 0:
            buckets: dict[str, TokenBucket] = ctx.extra.setdefault("scim.buckets", {})
            bucket = buckets.get(token)
            if bucket is None:
                limit = RateLimit(max=max(1, int(world.rate_limit)), interval_seconds=1,
                                  fill_rate=max(1, int(world.rate_limit)))
                bucket = buckets[token] = TokenBucket(limit, ctx.clock())
            if not bucket.take(ctx.clock()):
                return None, scim_error(429, "Too many requests", headers={"Retry-After": str(bucket.retry_after())})
        return world, None

    def base(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}{PREFIX}"

    def listing(request: Request, world: ScimWorld, items: list[Any], paths: frozenset[str],
                render: Callable[[Any], dict[str, Any]], *,
                match: Callable[[Any], dict[str, Any]] | None = None) -> Response:
        params = request.query_params
        start, count = _int(params.get("startIndex"), 1), _int(params.get("count"), world.max_results)
        if start is None or count is None:
            return scim_error(400, "startIndex and count are integers", "invalidValue")
        text = params.get("filter")
        if text is not None:
            try:
                keep = parse(text, paths)
            except FilterError as exc:
                return scim_error(400, f"Invalid filter: {exc}", "invalidFilter")
            items = [item for item in items if keep((match or render)(item))]
        start, count = max(1, start), max(0, min(count, world.max_results))
        shape = r.projector(params.get("attributes"), params.get("excludedAttributes"))
        page = items[start - 1:start - 1 + count]
        return scim_response(r.page_of((shape(render(i)) for i in page), len(items), start))

    async def list_users(request: Request) -> Response:
        world, denied = guard(request)
        if world is None:
            return denied or scim_error(500, "no world")
        root = base(request)
        return listing(request, world, world.user_list(), r.USER_PATHS, lambda u: r.user_json(root, u))

    async def list_groups(request: Request) -> Response:
        world, denied = guard(request)
        if world is None:
            return denied or scim_error(500, "no world")
        root = base(request)
        params = request.query_params
        wanted = r.wanted_top(params.get("attributes"))
        excluded = r.wanted_top(params.get("excludedAttributes")) or set()
        # members are rendered only when they will be sent, and never by a server that omits them on lists
        members = world.members_on_list and "members" not in excluded and (wanted is None or "members" in wanted)
        encoded = r.sent_members(params.get("attributes"))  # members as pre-encoded JSON, as projected
        return listing(request, world, world.group_list(), r.GROUP_PATHS,
                       lambda g: r.group_json(root, world, g, members=members, encoded=encoded),
                       match=lambda g: r.group_json(root, world, g))  # a filter may name members.value

    async def get_user(request: Request) -> Response:
        world, denied = guard(request)
        if world is None:
            return denied or scim_error(500, "no world")
        user = world.users.get(request.path_params["id"])
        if user is None:
            return scim_error(404, f"Resource {request.path_params['id']} not found")
        params = request.query_params
        return scim_response(r.project(r.user_json(base(request), user), params.get("attributes"),
                                       params.get("excludedAttributes")))

    async def get_group(request: Request) -> Response:
        world, denied = guard(request)
        if world is None:
            return denied or scim_error(500, "no world")
        group = world.groups.get(request.path_params["id"])
        if group is None:
            return scim_error(404, f"Resource {request.path_params['id']} not found")
        params = request.query_params
        return scim_response(r.project(r.group_json(base(request), world, group), params.get("attributes"),
                                       params.get("excludedAttributes")))

    async def config(request: Request) -> Response:
        world, denied = guard(request)
        if world is None:
            return denied or scim_error(500, "no world")
        return scim_response(r.service_provider_config(world))

    return [
        Route(f"{PREFIX}/Users", list_users, methods=["GET"]),
        Route(f"{PREFIX}/Users/{{id}}", get_user, methods=["GET"]),
        Route(f"{PREFIX}/Groups", list_groups, methods=["GET"]),
        Route(f"{PREFIX}/Groups/{{id}}", get_group, methods=["GET"]),
        Route(f"{PREFIX}/ServiceProviderConfig", config, methods=["GET"]),
    ]

