"""What the simulated Confluence DC endpoints share: who is calling, error bodies, pages, user JSON.

Authentication follows the real server: an unknown personal access token runs as anonymous (no 401),
wrong Basic credentials get 401, a JSESSIONID cookie from `/doauthenticate.action` is a session.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reconcile.sim.confluence_dc.world import DcGroup, DcUser
from reconcile.sim.context import SimContext
from reconcile.sim.jsonbody import FastJSONResponse

T = TypeVar("T")

PROFILE_PICTURE = {"path": "/images/icons/profilepics/default.svg", "width": 48, "height": 48, "isDefault": True}
ANONYMOUS_PICTURE = {"path": "/images/icons/profilepics/anonymous.svg", "width": 48, "height": 48,
                     "isDefault": True}
WEBSUDO_SECONDS = 600  # "secure administrator sessions": 10-minute rolling timeout


@dataclass(slots=True)
class Session:
    user_key: str
    atl_token: str
    websudo_until: float = 0.0


class Sessions:
    """JSESSIONID -> Session; kept in `ctx.extra["dc_sessions"]`."""

    def __init__(self) -> None:
        self.by_id: dict[str, Session] = {}

    def create(self, user_key: str) -> tuple[str, Session]:
        sid = secrets.token_hex(16).upper()
        session = Session(user_key=user_key, atl_token=secrets.token_hex(20))
        self.by_id[sid] = session
        return sid, session


def sessions(ctx: SimContext) -> Sessions:
    found = ctx.extra.get("dc_sessions")
    if not isinstance(found, Sessions):
        found = ctx.extra["dc_sessions"] = Sessions()
    return found


@dataclass(frozen=True, slots=True)
class Caller:
    user: DcUser | None  # None: anonymous
    via: str  # token | basic | session | anonymous
    session_id: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.user is None


class Unauthorized(Exception):
    """Wrong Basic credentials: the real server answers 401."""


def identify(request: Request, ctx: SimContext) -> Caller:
    """Who is calling; raises Unauthorized for wrong Basic credentials."""
    caller = _identify(request, ctx)
    if caller.user is not None and caller.session_id is None:
        sid = request.cookies.get("JSESSIONID")
        session = sessions(ctx).by_id.get(sid) if sid else None
        if session is not None and session.user_key == caller.user.key:
            return Caller(caller.user, caller.via, sid)
    return caller


def _identify(request: Request, ctx: SimContext) -> Caller:
    world = ctx.dc
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        key = world.tokens.get(value.strip())
        user = world.users.get(key) if key else None
        if user is None or not user.active or user.unsynced:
            return Caller(None, "anonymous")  # the real quirk: no 401 for a bad PAT
        return Caller(user, "token")
    if scheme.lower() == "basic":
        try:
            username, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized from exc
        user = world.user_by_username(username)
        if user is None or user.unsynced or not user.active or user.password is None or user.password != password:
            raise Unauthorized
        return Caller(user, "basic")
    sid = request.cookies.get("JSESSIONID")
    if sid:
        session = sessions(ctx).by_id.get(sid)
        if session is not None and session.user_key in world.users:
            return Caller(world.users[session.user_key], "session", sid)
    return Caller(None, "anonymous")


def rest_error(status: int, message: str) -> JSONResponse:
    """The RestError body Confluence DC sends (`statusCode`, `data`, `message`, `reason`)."""
    return JSONResponse(
        {
            "statusCode": status,
            "data": {"authorized": status not in (401, 403), "valid": False, "successful": False,
                     "allowedInReadOnlyMode": True},
            "message": message,
            "reason": HTTPStatus(status).phrase,
        },
        status_code=status,
    )


def unauthorized() -> JSONResponse:
    response = rest_error(401, "Basic authentication failed: the username or password is wrong")
    response.headers["WWW-Authenticate"] = 'Basic realm="Confluence"'
    return response


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def person(user: DcUser, base: str, expand: str = "") -> dict[str, Any]:
    """A DC user object; `expand=status` adds `status` ("Active" / "Deactivated" / "Unsynced")."""
    out: dict[str, Any] = {
        "type": "known",
        "username": user.username,
        "userKey": user.key,
        "profilePicture": PROFILE_PICTURE,
        "displayName": user.display_name,
        "_links": {"self": f"{base}/rest/api/user?key={user.key}"},
    }
    if "status" in expand:
        out["status"] = "Unsynced" if user.unsynced else ("Active" if user.active else "Deactivated")
    else:
        out["_expandable"] = {"status": ""}
    return out


def anonymous_person(base: str) -> dict[str, Any]:
    return {
        "type": "anonymous",
        "profilePicture": ANONYMOUS_PICTURE,
        "displayName": "Anonymous",
        "_links": {"self": f"{base}/rest/api/user/anonymous"},
    }


def group_json(group: DcGroup, base: str) -> dict[str, Any]:
    return {"type": "group", "name": group.name, "_links": {"self": f"{base}/rest/api/group/{quote(group.name)}"}}


class BadPaging(Exception):
    pass


def paging(request: Request, default: int, cap: int) -> tuple[int, int]:
    """(start, limit) with the server's silent cap applied; raises BadPaging on junk."""
    try:
        start = int(request.query_params.get("start", "0"))
        limit = int(request.query_params.get("limit", str(default)))
    except ValueError as exc:
        raise BadPaging("start and limit must be integers") from exc
    if start < 0:
        raise BadPaging("start must be non-negative")
    if limit < 1:
        limit = default
    return start, min(limit, cap)


def page(request: Request, items: Sequence[T], start: int, limit: int,
         render: Callable[[T], dict[str, Any]]) -> Response:
    """The paged envelope: `results`, `start`, `limit`, `size`, `_links` (+ relative `next`)."""
    chunk = items[start:start + limit]
    base = base_url(request)
    path = request.url.path
    links: dict[str, str] = {"base": base, "context": "", "self": f"{base}{path}"}
    if start + len(chunk) < len(items):
        params = {k: v for k, v in request.query_params.items() if k not in ("start", "limit")}
        params.update({"limit": str(limit), "start": str(start + len(chunk))})
        links["next"] = f"{path}?{urlencode(params)}"
    if start > 0:
        params = {k: v for k, v in request.query_params.items() if k not in ("start", "limit")}
        params.update({"limit": str(limit), "start": str(max(0, start - limit))})
        links["prev"] = f"{path}?{urlencode(params)}"
    return FastJSONResponse({
        "results": [render(item) for item in chunk],
        "start": start,
        "limit": limit,
        "size": len(chunk),
        "_links": links,
    })


def no_content() -> Response:
    return Response(status_code=204)
