"""The simulated DC routes the inactivity/licence policies read: licence counts, global and space permissions,
spaces and CQL content counts (state in facts.py; shapes in the README, The simulator).

`/rest/license/1.0/license/*` is in no carried document (an undocumented simulator extension, shaped as
public scripts read it: `{"count": N}`); every other route here is in confluence-dc-10.0.3.json.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, unquote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconcile.sim.confluence_dc.common import Caller, base_url, page, paging, person, rest_error
from reconcile.sim.confluence_dc.facts import DcSpace, can_use_groups, global_grants, seats, space_grants
from reconcile.sim.context import SimContext

Handler = Callable[[Request, Caller], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
MakeEndpoint = Callable[[Handler, str, tuple[int, int]], Endpoint]  # routes.py's `endpoint(handler, need, since)`

USER, ADMIN = "user", "admin"  # as routes.py names them
GLOBAL_PERMISSIONS = (9, 3)  # /rest/api/permissions* [V 10.2 doc; 9.3 per the reference note]
SPACE_PERMISSIONS = (9, 2)  # /rest/api/space/{key}/permissions: 9.2 docs, exact version [U]
SEARCH_CAP = 100  # "limit may be restricted by fixed system limits" [I: the value]
PAGE_MODIFIED = "2025-01-01T00:00:00.000Z"  # every simulated page's lastModified
_CLAUSE = re.compile(r'\s*([\w.]+)\s*(=|!=|\bin\b)\s*("[^"]*"|\'[^\']*\'|\([^)]*\)|[^\s()]+)\s*', re.IGNORECASE)


class BadCql(Exception):
    pass


def parse_cql(cql: str) -> dict[str, list[str]]:
    """`creator = x AND type in (page, blogpost) AND space = KEY` -> {field: values}; raises BadCql."""
    out: dict[str, list[str]] = {}
    for part in re.split(r"\s+and\s+", cql.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.fullmatch(part)
        if match is None or match.group(2) == "!=":
            raise BadCql(f"Could not parse cql : {cql}")
        name, raw = match.group(1).lower(), match.group(3)
        if name not in ("creator", "type", "space", "space.key"):
            raise BadCql(f"Could not parse cql : {cql} (the simulator knows creator, type and space)")
        values = raw[1:-1].split(",") if raw.startswith("(") else [raw]
        out.setdefault("space" if name == "space.key" else name, []).extend(v.strip().strip("\"'") for v in values)
    return out


def routes(ctx: SimContext, endpoint: MakeEndpoint) -> list[BaseRoute]:
    world = ctx.dc

    async def licence_count(request: Request, caller: Caller) -> Response:
        used, most, left = seats(world)
        which = request.url.path.rsplit("/", 1)[-1]
        return JSONResponse({"count": {"userCount": used, "maxUsers": most, "remainingSeats": left}[which]})

    def grant(target: str, operation: str, subject: dict[str, str]) -> dict[str, Any]:
        return {"operation": {"targetType": target, "operationKey": operation}, "subject": subject}

    async def group_permissions(request: Request, caller: Caller) -> Response:
        name = unquote(request.path_params["groupName"]).lower()
        if name not in world.groups:
            return rest_error(404, f"Group {name} not found")
        subject = {"type": "group", "displayName": name}
        return JSONResponse([grant(t, o, subject) for t, o in global_grants(world, name)])

    async def all_permissions(request: Request, caller: Caller) -> Response:
        names = sorted(set(can_use_groups(world)) | {g for g in world.admin_groups if g in world.groups})
        return JSONResponse([grant(t, o, {"type": "group", "displayName": n})
                             for n in names for t, o in global_grants(world, n)])

    def space_json(space: DcSpace, base: str, expand: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": space.id, "key": space.key, "name": space.name, "type": space.type, "status": space.status,
            "_links": {"webui": f"/display/{quote(space.key)}", "self": f"{base}/rest/api/space/{quote(space.key)}"},
            "_expandable": {"description": "", "homepage": "", "icon": "", "metadata": ""},
        }
        creator = world.users.get(space.creator) if space.creator else None
        if "creator" in expand and creator is not None:
            out["creator"] = person(creator, base)
        elif creator is not None:
            out["_expandable"]["creator"] = ""
        return out

    async def space_list(request: Request, caller: Caller) -> Response:
        start, limit = paging(request, 25, 500)
        query = request.query_params
        keys = set(query.getlist("spaceKey"))
        found = [s for s in sorted(world.spaces.values(), key=lambda s: s.key)
                 if (not query.get("type") or s.type == query["type"])
                 and (not query.get("status") or s.status == query["status"]) and (not keys or s.key in keys)]
        base, exp = base_url(request), query.get("expand", "")
        return page(request, found, start, limit, lambda s: space_json(s, base, exp))

    def find_space(request: Request) -> DcSpace | Response:
        key = unquote(request.path_params["spaceKey"])
        space = world.spaces.get(key) or world.spaces.get(key.upper())
        return space if space is not None else rest_error(404, f"No space with key : {key}")

    async def get_space(request: Request, caller: Caller) -> Response:
        space = find_space(request)
        if isinstance(space, Response):
            return space
        return JSONResponse(space_json(space, base_url(request), request.query_params.get("expand", "")))

    def permission(space: DcSpace, kind: str, who: str, operation: str) -> dict[str, Any]:
        shown = world.users[who].display_name if kind == "user" and who in world.users else who
        return {"operation": {"targetType": "space", "operationKey": operation},
                "subject": {"type": kind, "displayName": shown}, "spaceKey": space.key, "spaceId": space.id}

    async def space_permissions(request: Request, caller: Caller) -> Response:
        space = find_space(request)
        if isinstance(space, Response):
            return space
        return JSONResponse([permission(space, *g) for g in space_grants(world, space)])

    async def user_space_permissions(request: Request, caller: Caller) -> Response:
        space = find_space(request)
        if isinstance(space, Response):
            return space
        key = request.path_params["userKey"]
        if key not in world.users:
            return rest_error(404, f"No user found with key: {key}")
        return JSONResponse([permission(space, *g) for g in space_grants(world, space) if g[:2] == ("user", key)])

    async def search(request: Request, caller: Caller) -> Response:
        cql = request.query_params.get("cql", "")
        if not cql.strip():
            return rest_error(400, "CQL query parameter is required")
        try:
            terms = parse_cql(cql)
        except BadCql as exc:
            return rest_error(400, str(exc))
        start, limit = paging(request, 25, SEARCH_CAP)
        buckets = content_buckets(terms)
        total = sum(n for _, _, n in buckets)
        base = base_url(request)
        results: list[dict[str, Any]] = []
        skip = start
        for space, key, count in buckets:
            if skip >= count:
                skip -= count
                continue
            for n in range(skip, min(count, skip + limit - len(results))):
                results.append(search_result(space, key, n, base))
            skip = 0
            if len(results) >= limit:
                break
        links = {"base": base, "context": "", "self": f"{base}{request.url.path}"}
        if start + len(results) < total:
            params = {k: v for k, v in request.query_params.items() if k not in ("start", "limit")}
            links["next"] = f"{request.url.path}?{urlencode({**params, 'limit': limit, 'start': start + len(results)})}"
        return JSONResponse({"results": results, "start": start, "limit": limit, "size": len(results),
                             "totalSize": total, "cqlQuery": cql, "searchDuration": 0, "_links": links})

    def content_buckets(terms: dict[str, list[str]]) -> list[tuple[DcSpace, str, int]]:
        """(space, creator userKey, pages) matching the query, in space-key then creation order."""
        types = {t.lower() for t in terms.get("type", ["page"])}
        if "page" not in types:
            return []  # only pages are simulated: no blog posts, comments, attachments
        creators = None
        if "creator" in terms:
            creators = {world.by_username.get(name.lower()) for name in terms["creator"]} - {None}
        spaces = {k.upper() for k in terms.get("space", [])}
        return [(s, key, n) for s in sorted(world.spaces.values(), key=lambda s: s.key)
                if not spaces or s.key.upper() in spaces
                for key, n in s.content.items() if n > 0 and (creators is None or key in creators)]

    def search_result(space: DcSpace, key: str, n: int, base: str) -> dict[str, Any]:
        index = list(space.content).index(key)
        page_id = str(space.id * 1_000_000 + index * 10_000 + n + 1)
        title = f"{space.key} page {index + 1}.{n + 1}"
        url = f"/pages/viewpage.action?pageId={page_id}"
        return {
            "content": {"id": page_id, "type": "page", "status": "current", "title": title,
                        "_links": {"webui": url, "self": f"{base}/rest/api/content/{page_id}"}},
            "title": title, "excerpt": "", "url": url, "entityType": "content",
            "resultGlobalContainer": {"title": space.name, "displayUrl": f"/display/{quote(space.key)}"},
            "iconCssClass": "aui-icon content-type-page", "lastModified": PAGE_MODIFIED,
            "friendlyLastModified": "Jan 01, 2025",
        }

    licence = endpoint(licence_count, ADMIN, (0, 0))
    return [
        Route("/rest/license/1.0/license/userCount", licence, methods=["GET"]),
        Route("/rest/license/1.0/license/maxUsers", licence, methods=["GET"]),
        Route("/rest/license/1.0/license/remainingSeats", licence, methods=["GET"]),
        Route("/rest/api/permissions", endpoint(all_permissions, ADMIN, GLOBAL_PERMISSIONS), methods=["GET"]),
        Route("/rest/api/permissions/group/{groupName}", endpoint(group_permissions, ADMIN, GLOBAL_PERMISSIONS),
              methods=["GET"]),
        Route("/rest/api/space", endpoint(space_list, USER, (0, 0)), methods=["GET"]),
        Route("/rest/api/space/{spaceKey}", endpoint(get_space, USER, (0, 0)), methods=["GET"]),
        Route("/rest/api/space/{spaceKey}/permissions", endpoint(space_permissions, ADMIN, SPACE_PERMISSIONS),
              methods=["GET"]),
        Route("/rest/api/space/{spaceKey}/permissions/user/{userKey}",
              endpoint(user_space_permissions, ADMIN, SPACE_PERMISSIONS), methods=["GET"]),
        Route("/rest/api/search", endpoint(search, USER, (0, 0)), methods=["GET"]),
    ]
