"""The Confluence Cloud routes the delete guard reads: v2 `GET /spaces`, `GET /spaces/{id}/permissions` (cursor
pages, `_links.next` and a `Link` header) and v1 `GET /wiki/rest/api/search` (CQL `creator = "<accountId>"`).
Basic auth with a site credential (`cloud.site.credentials`), as the Jira site route.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconcile.sim.atlassian_cloud.shapes import OrgError, basic_credentials, decode_cursor, encode_cursor
from reconcile.sim.atlassian_cloud.wiki import WikiSpace
from reconcile.sim.atlassian_cloud.world import CloudWorld

V2 = "/wiki/api/v2"
SEARCH = "/wiki/rest/api/search"
CREATOR = re.compile(r'creator\s*=\s*"((?:[^"\\]|\\.)*)"')
TYPES = re.compile(r"\btype\s+in\s*\(([^)]*)\)|\btype\s*=\s*(\w+)")
Handler = Callable[[Request], Awaitable[Response]]


def _error(status: int, message: str) -> Response:
    return JSONResponse({"statusCode": status, "message": message}, status_code=status)


class WikiApi:
    """Handlers over one world's `spaces`."""

    def __init__(self, world: CloudWorld) -> None:
        self.world = world

    def _denied(self, request: Request) -> Response | None:
        email, token = basic_credentials(request.headers.get("authorization", ""))
        if email is None or self.world.site_credentials.get(email) != token:
            return _error(401, "Unauthorized; scope does not match")
        return None

    def _page(self, request: Request, items: list[dict[str, Any]], path: str) -> Response:
        """One cursor page of `items`, the next one named in `_links.next` and the `Link` header."""
        query = request.query_params
        try:
            limit = int(query.get("limit", "25"))
            start = decode_cursor(query["cursor"]) if "cursor" in query else 0
        except (ValueError, OrgError):  # a bad cursor or limit: the document's 400, no body
            return Response(status_code=400)
        if not 1 <= limit <= 250:
            return Response(status_code=400)
        links: dict[str, str] = {"base": f"{self.world.site_url.rstrip('/')}/wiki"}
        headers: dict[str, str] = {}
        if start + limit < len(items):
            kept = {k: v for k, v in query.items() if k != "cursor"}
            links["next"] = f"{path}?{urlencode({**kept, 'cursor': encode_cursor(start + limit)})}"
            headers["Link"] = f'<{links["next"]}>; rel="next", <{links["base"]}>; rel="base"'
        return JSONResponse({"results": items[start:start + limit], "_links": links}, headers=headers)

    async def spaces(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        query = request.query_params
        keys = {k for k in query.get("keys", "").split(",") if k}
        found = [s for s in sorted(self.world.spaces, key=lambda s: s.id)
                 if (not query.get("type") or s.type == query["type"])
                 and (not query.get("status") or s.status == query["status"])
                 and (not keys or s.key in keys)]
        return self._page(request, [s.to_json() for s in found], V2 + "/spaces")

    async def permissions(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        wanted = request.path_params["id"]
        space = next((s for s in self.world.spaces if str(s.id) == wanted), None)
        if space is None:
            return Response(status_code=404)
        return self._page(request, self._grants(space), f"{V2}/spaces/{space.id}/permissions")

    def _grants(self, space: WikiSpace) -> list[dict[str, Any]]:
        """`administer` for the direct admins and admin groups; `read` for every other contributor."""
        group_ids = {g.name.lower(): g.id for g in self.world.groups.values()}
        grants: list[tuple[str, str, str]] = [("user", a, "administer") for a in space.admins]
        grants += [("group", group_ids.get(g.lower(), g), "administer") for g in space.admin_groups]
        grants += [("user", a, "read") for a in space.content if a not in space.admins]
        return [{"id": f"{space.id}-{n}", "principal": {"type": kind, "id": who},
                 "operation": {"key": op, "targetType": "space"}} for n, (kind, who, op) in enumerate(grants)]

    async def search(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        query = request.query_params
        cql = query.get("cql", "")
        creator = CREATOR.search(cql)
        if creator is None:  # the simulator answers only the delete guard's query
            return Response(status_code=400)
        account = creator.group(1).replace('\\"', '"').replace("\\\\", "\\")
        types = TYPES.search(cql)
        kinds = ({t.strip() for t in (types.group(1) or types.group(2)).split(",")} if types
                 else {"page", "blogpost"})
        archived = query.get("includeArchivedSpaces", "false") == "true"
        total = sum(s.content.get(account, 0) for s in self.world.spaces
                    if archived or s.status == "current") if kinds & {"page", "blogpost"} else 0
        limit = int(query.get("limit", "25"))
        results = [{"title": f"Page {n + 1}", "excerpt": "", "url": "", "entityType": "content",
                    "iconCssClass": "aui-icon content-type-page", "breadcrumbs": [],
                    "lastModified": "2026-01-05T10:00:00.000Z",
                    "content": {"type": "page", "status": "current"}} for n in range(min(limit, total))]
        return JSONResponse({"results": results, "start": 0, "limit": limit, "size": len(results),
                             "totalSize": total, "cqlQuery": cql, "searchDuration": 3,
                             "_links": {"base": f"{self.world.site_url.rstrip('/')}/wiki", "context": "/wiki"}})

    def routes(self, wrap: Callable[[Handler], Handler]) -> list[BaseRoute]:
        return [
            Route(V2 + "/spaces", wrap(self.spaces), methods=["GET"]),
            Route(V2 + "/spaces/{id}/permissions", wrap(self.permissions), methods=["GET"]),
            Route(SEARCH, wrap(self.search), methods=["GET"]),
        ]
