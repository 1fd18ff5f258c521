"""Okta's read routes: `GET /api/v1/users`, `/api/v1/groups`, `/api/v1/groups/{id}/users`, and the token
endpoint, all under the `/okta` prefix (an org URL of `http://host:port/okta`).

Paging as Okta does it: `limit` (capped), `after` = the last id of the previous page, and `Link` headers
`rel="self"` and `rel="next"` sent as separate header lines; the list ends when there is no `next`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconcile.sim.context import SimContext
from reconcile.sim.fragments import Fragments
from reconcile.sim.jsonbody import FastJSONResponse, Raw
from reconcile.sim.okta import limits
from reconcile.sim.okta.auth import PREFIX, TOKEN_PATH, authenticate, okta_error, token, world_of
from reconcile.sim.okta.query import GROUP_FILTER_ATTRS, USER_FILTER_ATTRS, QueryError, parse
from reconcile.sim.okta.world import EPOCH, OktaGroup, OktaUser, OktaWorld

USERS_LIMIT = 200  # default and maximum
GROUPS_LIMIT = 10_000  # the document's maximum
GROUPS_Q_LIMIT = 300  # with `q`: "paging and searching are currently mutually exclusive"
MEMBERS_LIMIT = 1_000  # okta/okta-developer-docs#368: the maximum is 1,000 (not 10,000)
USERS_Q_LIMIT = 10


def user_json(base: str, user: OktaUser) -> dict[str, Any]:
    active = user.status not in ("STAGED", "PROVISIONED")
    return {
        "id": user.id, "status": user.status, "created": EPOCH, "activated": EPOCH if active else None,
        "statusChanged": EPOCH, "lastLogin": None, "lastUpdated": EPOCH, "passwordChanged": EPOCH if active else None,
        "type": {"id": "oty00000000000000000"},
        "profile": {"login": user.login, "email": user.email, "firstName": user.first_name,
                    "lastName": user.last_name},
        "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
        "_links": {"self": {"href": f"{base}/api/v1/users/{user.id}"}},
    }


def user_record(user: OktaUser) -> dict[str, Any]:
    """The attributes `filter`/`search` read (cheaper than the full JSON on large orgs)."""
    return {"id": user.id, "status": user.status, "created": EPOCH, "lastUpdated": EPOCH,
            "profile": {"login": user.login, "email": user.email, "firstName": user.first_name,
                        "lastName": user.last_name}}


def group_json(base: str, group: OktaGroup, stats: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": group.id, "created": EPOCH, "lastUpdated": EPOCH, "lastMembershipUpdated": EPOCH,
        "objectClass": ["okta:user_group"], "type": group.type,
        "profile": {"name": group.name, "description": group.description},
        "_links": {"users": {"href": f"{base}/api/v1/groups/{group.id}/users"},
                   "apps": {"href": f"{base}/api/v1/groups/{group.id}/apps"}},
    }
    if stats:
        out["_embedded"] = {"stats": {"usersCount": len(group.members)}}
    return out


def _limit(request: Request, default: int, cap: int) -> int:
    raw = request.query_params.get("limit")
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = default
    return max(1, min(value, cap))  # Okta serves at most the cap, silently


def _page(ids: list[str], keep: Callable[[str], bool], after: str | None, limit: int) -> tuple[list[str], bool]:
    """Up to `limit` ids after `after` that `keep` accepts, and whether more follow."""
    start = bisect.bisect_right(ids, after) if after else 0
    out: list[str] = []
    for i in range(start, len(ids)):
        if keep(ids[i]):
            if len(out) == limit:
                return out, True
            out.append(ids[i])
    return out, False


def _slice(ids: list[str], after: str | None, limit: int) -> tuple[list[str], bool]:
    """`_page` keeping every id: a slice, not a test per id."""
    start = bisect.bisect_right(ids, after) if after else 0
    return ids[start:start + limit], start + limit < len(ids)


def _links(response: Response, request: Request, base: str, after: str | None, more: bool) -> None:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
    self_url = f"{base}{request.url.path[len(PREFIX):]}"
    response.raw_headers.append((b"link", f'<{self_url}?{urlencode(params)}>; rel="self"'.encode()
                                 if params else f'<{self_url}>; rel="self"'.encode()))
    if more and after is not None:
        next_params = urlencode([*params, ("after", after)])
        response.raw_headers.append((b"link", f'<{self_url}?{next_params}>; rel="next"'.encode()))


_SHOWN = attrgetter("status", "login", "email", "first_name", "last_name")  # what a user's JSON changes with


def routes(ctx: SimContext) -> list[BaseRoute]:
    fragments = Fragments()  # each user's JSON encoded once (again when its fields change), not once per page

    def base(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}{PREFIX}"

    def users_raw(root: str, ids: list[str], users: Mapping[str, OktaUser]) -> list[Raw]:
        """The JSON of the users `ids`, each encoded once per org URL (again when a field it shows changes);
        each user's version (the fields it shows) taken in C, not by a Python call per user."""
        versions = list(map(_SHOWN, map(users.__getitem__, ids)))
        return fragments.rows(root, ids, ids, versions, lambda i: user_json(root, users[i]))

    def guard(request: Request, scope: str) -> tuple[Response | None, dict[str, str]]:
        world = world_of(ctx)
        allowed, headers = limits.take(ctx, world.rate_limits, limits.bucket_of(request.url.path[len(PREFIX):]))
        if not allowed:
            return okta_error(ctx, 429, "E0000047", limits.RATE_SUMMARY, headers=headers), headers
        denied = authenticate(ctx, request, scope)
        if denied is not None:
            denied.headers.update(headers)
        return denied, headers

    def predicate(request: Request, attrs: frozenset[str],
                  record: Callable[[str], Mapping[str, Any]]) -> Callable[[str], bool] | Response:
        tests = []
        try:
            for name, search in (("filter", False), ("search", True)):
                text = request.query_params.get(name)
                if text is not None:
                    tests.append(parse(text, search=search, filter_attrs=attrs))
        except QueryError as exc:
            return okta_error(ctx, 400, "E0000031", "Invalid search criteria.", [str(exc)])
        return lambda i: all(test(record(i)) for test in tests)

    async def list_users(request: Request) -> Response:
        denied, headers = guard(request, "okta.users.read")
        if denied is not None:
            return denied
        world: OktaWorld = world_of(ctx)
        root = base(request)
        params = request.query_params
        if "q" in params:
            q = params["q"].lower()
            fields = ("first_name", "last_name", "email", "login")
            hits = [u for u in map(world.users.__getitem__, world.user_ids()) if u.status != "DEPROVISIONED"
                    and any(getattr(u, f).lower().startswith(q) for f in fields)]
            return JSONResponse([user_json(root, u) for u in hits[:_limit(request, USERS_Q_LIMIT, USERS_LIMIT)]],
                                headers=headers)
        narrowed = "filter" in params or "search" in params
        keep = predicate(request, USER_FILTER_ATTRS, lambda i: user_record(world.users[i]))
        if isinstance(keep, Response):
            return keep
        plain: Callable[[str], bool] = keep if narrowed else (lambda i: world.users[i].status != "DEPROVISIONED")
        ids, more = _page(world.user_ids(), plain, params.get("after"), _limit(request, USERS_LIMIT, USERS_LIMIT))
        response = FastJSONResponse(users_raw(root, ids, world.users), headers=headers)
        _links(response, request, root, ids[-1] if ids else None, more)
        return response

    async def list_groups(request: Request) -> Response:
        denied, headers = guard(request, "okta.groups.read")
        if denied is not None:
            return denied
        world = world_of(ctx)
        root = base(request)
        params = request.query_params
        stats = "stats" in params.get("expand", "").split(",")
        if "q" in params:
            q = params["q"].lower()
            hits = [g for g in map(world.groups.__getitem__, world.group_ids()) if g.name.lower().startswith(q)]
            cap = _limit(request, GROUPS_Q_LIMIT, GROUPS_LIMIT)
            return JSONResponse([group_json(root, g, stats) for g in hits[:cap]], headers=headers)
        keep = predicate(request, GROUP_FILTER_ATTRS, lambda i: group_json(root, world.groups[i], False))
        if isinstance(keep, Response):
            return keep
        ids, more = _page(world.group_ids(), keep, params.get("after"), _limit(request, GROUPS_LIMIT, GROUPS_LIMIT))
        response = JSONResponse([group_json(root, world.groups[i], stats) for i in ids], headers=headers)
        _links(response, request, root, ids[-1] if ids else None, more)
        return response

    async def group_users(request: Request) -> Response:
        denied, headers = guard(request, "okta.groups.read")
        if denied is not None:
            return denied
        world = world_of(ctx)
        group = world.groups.get(request.path_params["group_id"])
        if group is None:
            return okta_error(ctx, 404, "E0000007", f"Not found: Resource not found: "
                              f"{request.path_params['group_id']} (UserGroup)", headers=headers)
        root = base(request)
        ids, more = _slice(group.members, request.query_params.get("after"),
                           _limit(request, MEMBERS_LIMIT, MEMBERS_LIMIT))
        response = FastJSONResponse(users_raw(root, ids, world.users), headers=headers)
        _links(response, request, root, ids[-1] if ids else None, more)
        return response

    async def token_endpoint(request: Request) -> Response:
        allowed, headers = limits.take(ctx, world_of(ctx).rate_limits, "token")
        if not allowed:
            return okta_error(ctx, 429, "E0000047", limits.RATE_SUMMARY, headers=headers)
        response = await token(ctx, request)
        response.headers.update(headers)
        return response

    return [
        Route(f"{PREFIX}/api/v1/users", list_users, methods=["GET"]),
        Route(f"{PREFIX}/api/v1/groups", list_groups, methods=["GET"]),
        Route(f"{PREFIX}/api/v1/groups/{{group_id}}/users", group_users, methods=["GET"]),
        Route(f"{PREFIX}{TOKEN_PATH}", token_endpoint, methods=["POST"]),
    ]
