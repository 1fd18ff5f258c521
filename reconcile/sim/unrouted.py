"""Unrouted paths and methods answered in the error format of the API the path belongs to.

Real services never answer plain text: Confluence DC sends its RestError (`statusCode`, `message`),
the Organizations API `{"errors": [...]}`, user management `{"key": ...}`, Jira `errorMessages`.
"""

from __future__ import annotations

import uuid
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconcile.sim.confluence_dc.common import rest_error


async def not_routed(request: Request, exc: Exception) -> Response:
    """Starlette's 404 (no route) and 405 (no such method) as the path's API would answer them."""
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    phrase = HTTPStatus(status).phrase
    path = request.url.path
    detail = f"No {request.method} operation at {path}" if status == 405 else f"No resource at {path}"
    if path.startswith("/_sim"):
        body: dict[str, object] = {"error": detail}
    elif path.startswith(("/admin/v1/", "/admin/v2/")):
        body = {"errors": [{"id": str(uuid.uuid4()), "status": str(status), "code": f"ADMIN-{status}",
                            "title": phrase, "detail": detail}]}
    elif path.startswith("/entra/"):  # Graph / the identity platform
        body = {"error": {"code": "Request_ResourceNotFound" if status == 404 else "BadRequest", "message": detail}}
    elif path.startswith("/scim/"):  # RFC 7644 §3.12
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail}
    elif path.startswith("/users/"):
        body = {"key": "notFound" if status == 404 else "methodNotAllowed"}
    elif path.startswith(("/rest/api/2/", "/rest/api/3/")):
        body = {"errorMessages": [detail], "errors": {}}
    else:  # Confluence DC (Jersey's wording for an unknown resource)
        response = rest_error(status, f"null for uri: {request.url}" if status == 404 else detail)
        response.headers.update(headers)
        return response
    return JSONResponse(body, status_code=status, headers=headers)
