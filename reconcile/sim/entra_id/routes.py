"""Graph v1.0 and the token endpoint under `/entra`: a client's Graph base URL and its login authority are
both `http://host:port/entra` (for `https://graph.microsoft.com` and `https://login.microsoftonline.com`).

    POST /entra/{tenant}/oauth2/v2.0/token          GET /entra/v1.0/users
    GET  /entra/v1.0/groups                         GET /entra/v1.0/groups/{id}/members | /transitiveMembers
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any, cast
from urllib.parse import quote

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from reconcile.sim.context import SimContext
from reconcile.sim.entra_id.odata import (
    GraphError,
    offset_of,
    parse_filter,
    parse_select,
    parse_top,
    project,
    skiptoken,
)
from reconcile.sim.entra_id.token import token_endpoint
from reconcile.sim.entra_id.world import (
    DEVICE,
    GROUP,
    READ_GROUPS,
    READ_MEMBERS,
    READ_USERS,
    SERVICE_PRINCIPAL,
    USER,
    EntraWorld,
    ordered_keys,
    stable_id,
)
from reconcile.sim.fragments import Fragments
from reconcile.sim.jsonbody import FastJSONResponse

PREFIX = "/entra"
AHEAD_SLICE = 100  # rows of a next page rendered per loop turn (~1 ms): answers due meanwhile are not held up
CREATED = "2024-01-01T00:00:00Z"

# Returned without $select (Graph's user-list documentation; the other properties only when selected).
USER_DEFAULT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
                "preferredLanguage", "surname", "userPrincipalName", "id")
USER_FIELDS = {"id": "Edm.String", "userPrincipalName": "Edm.String", "displayName": "Edm.String",
               "mail": "Edm.String", "userType": "Edm.String", "accountEnabled": "Edm.Boolean",
               "givenName": "Edm.String", "surname": "Edm.String", "jobTitle": "Edm.String"}
GROUP_FIELDS = {"id": "Edm.String", "displayName": "Edm.String", "mail": "Edm.String", "mailNickname": "Edm.String",
                "mailEnabled": "Edm.Boolean", "securityEnabled": "Edm.Boolean", "description": "Edm.String"}


def _constant(value: Any) -> Callable[[Any], Any]:
    return lambda _: value


_NONE = _constant(None)
# Each property of each kind of directory object, in the order a full rendering lists them (after `@odata.type`).
GETTERS: dict[str, dict[str, Callable[[Any], Any]]] = {
    USER: {"id": attrgetter("id"), "deletedDateTime": _NONE, "businessPhones": lambda u: [],
           "displayName": attrgetter("display_name"), "givenName": attrgetter("given_name"),
           "jobTitle": attrgetter("job_title"), "mail": attrgetter("mail"), "mobilePhone": _NONE,
           "officeLocation": _NONE, "preferredLanguage": _NONE, "surname": attrgetter("surname"),
           "userPrincipalName": attrgetter("user_principal_name"), "accountEnabled": attrgetter("account_enabled"),
           "userType": attrgetter("user_type"), "otherMails": lambda u: list(u.other_mails),
           "externalUserState": attrgetter("external_user_state"), "createdDateTime": _constant(CREATED),
           "department": _NONE, "employeeId": _NONE, "onPremisesSamAccountName": _NONE,
           "onPremisesSyncEnabled": _NONE},
    GROUP: {"id": attrgetter("id"), "deletedDateTime": _NONE, "createdDateTime": _constant(CREATED),
            "description": attrgetter("description"), "displayName": attrgetter("display_name"),
            "groupTypes": lambda g: list(g.group_types), "mail": attrgetter("mail"),
            "mailEnabled": attrgetter("mail_enabled"), "mailNickname": attrgetter("mail_nickname"),
            "membershipRule": _NONE, "securityEnabled": attrgetter("security_enabled"), "visibility": _NONE,
            "onPremisesSyncEnabled": _NONE},
    DEVICE: {"id": attrgetter("id"), "deletedDateTime": _NONE, "displayName": attrgetter("display_name"),
             "deviceId": attrgetter("device_id"), "accountEnabled": attrgetter("account_enabled"),
             "operatingSystem": attrgetter("operating_system")},
    SERVICE_PRINCIPAL: {"id": attrgetter("id"), "deletedDateTime": _NONE, "displayName": attrgetter("display_name"),
                         "appId": attrgetter("app_id"), "accountEnabled": _constant(True),
                         "servicePrincipalType": attrgetter("service_principal_type")},
}


# The properties of GETTERS that are a plain attribute of the object (read together by one attrgetter).
ATTRIBUTES: dict[str, dict[str, str]] = {
    USER: {"id": "id", "displayName": "display_name", "givenName": "given_name", "jobTitle": "job_title",
           "mail": "mail", "surname": "surname", "userPrincipalName": "user_principal_name",
           "accountEnabled": "account_enabled", "userType": "user_type", "externalUserState": "external_user_state"},
    GROUP: {"id": "id", "description": "description", "displayName": "display_name", "mail": "mail",
            "mailEnabled": "mail_enabled", "mailNickname": "mail_nickname", "securityEnabled": "security_enabled"},
    DEVICE: {"id": "id", "displayName": "display_name", "deviceId": "device_id", "accountEnabled": "account_enabled",
             "operatingSystem": "operating_system"},
    SERVICE_PRINCIPAL: {"id": "id", "displayName": "display_name", "appId": "app_id",
                        "servicePrincipalType": "service_principal_type"},
}


def _object(world: EntraWorld, kind: str, object_id: str) -> Any:
    table = world.users if kind == USER else world.groups if kind == GROUP else world.devices if kind == DEVICE \
        else world.service_principals
    return table[object_id]


def render(world: EntraWorld, kind: str, object_id: str) -> dict[str, Any]:
    """Every property the simulator knows of a directory object, with its `@odata.type`."""
    obj = _object(world, kind, object_id)
    return {"@odata.type": f"#microsoft.graph.{kind}", **{name: get(obj) for name, get in GETTERS[kind].items()}}


def selected(world: EntraWorld, kind: str, object_id: str, names: Sequence[str]) -> dict[str, Any]:
    """`project(render(...), names)` without rendering the properties not asked for (a member page selects `id`
    alone, a user page six of 21)."""
    return _plan(kind, tuple(names))(_object(world, kind, object_id))


_PLANS: dict[tuple[str, tuple[str, ...]], Callable[[Any], dict[str, Any]]] = {}


def _plan(kind: str, names: tuple[str, ...]) -> Callable[[Any], dict[str, Any]]:
    """How one object of `kind` shows `names`, made once per `$select`: when each name is a plain attribute
    (most selects), an `attrgetter` of them all and a `zip`, in C; otherwise the getters one by one."""
    plan = _PLANS.get((kind, names))
    if plan is not None:
        return plan
    getters, odata_type = GETTERS[kind], f"#microsoft.graph.{kind}"
    shown = tuple(name for name in names if name in getters)  # a name another kind has: not shown
    attrs = tuple(ATTRIBUTES[kind].get(name) for name in shown)
    if shown and None not in attrs:
        fetch = attrgetter(*cast(tuple[str, ...], attrs))
        single = len(shown) == 1

        def plan(obj: Any) -> dict[str, Any]:
            out: dict[str, Any] = {"@odata.type": odata_type}
            out.update(zip(shown, (fetch(obj),) if single else fetch(obj), strict=True))
            return out
    else:
        steps = tuple(getters[name] for name in shown)

        def plan(obj: Any) -> dict[str, Any]:
            out: dict[str, Any] = {"@odata.type": odata_type}
            for name, get in zip(shown, steps, strict=True):
                out[name] = get(obj)
            return out

    _PLANS[(kind, names)] = plan
    return plan


USER_PROPERTIES = ("id", "deletedDateTime", "businessPhones", "displayName", "givenName", "jobTitle", "mail",
                   "mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName",
                   "accountEnabled", "userType", "otherMails", "externalUserState", "createdDateTime", "department",
                   "employeeId", "onPremisesSamAccountName", "onPremisesSyncEnabled")
GROUP_PROPERTIES = ("id", "deletedDateTime", "createdDateTime", "description", "displayName", "groupTypes", "mail",
                    "mailEnabled", "mailNickname", "membershipRule", "securityEnabled", "visibility",
                    "onPremisesSyncEnabled")
MEMBER_PROPERTIES = tuple(sorted({*USER_PROPERTIES, *GROUP_PROPERTIES, "deviceId", "operatingSystem", "appId",
                                  "servicePrincipalType"}))


def version(world: EntraWorld, kind: str, object_id: str) -> Hashable:
    """What a directory object's rendering depends on: the frozen object itself, or a group's own fields."""
    if kind == GROUP:
        g = world.groups[object_id]
        return (g.display_name, g.description, g.group_types, g.security_enabled, g.mail_enabled, g.mail,
                g.mail_nickname)
    if kind == USER:
        return world.users[object_id]
    if kind == DEVICE:
        return world.devices[object_id]
    return world.service_principals[object_id]


class Graph:
    """The request pipeline every Graph read shares: token, throttling, permission, then the page."""

    def __init__(self, ctx: SimContext, world: EntraWorld) -> None:
        self.ctx, self.world = ctx, world
        self.filtered: dict[tuple[str, str, bool], list[Any]] = {}  # reads never change the world: cache matches
        self.fragments = Fragments()  # each object's projected row, encoded once per $select
        self.ahead: set[asyncio.Task[None]] = set()  # next pages being rendered (referenced until done)

    def error(self, exc: GraphError, headers: dict[str, str] | None = None) -> Response:
        request_id = stable_id("request", str(self.world.requests))
        date = datetime.fromtimestamp(self.ctx.wall(), UTC).strftime("%Y-%m-%dT%H:%M:%S")
        body = {"error": {"code": exc.code, "message": exc.message,
                          "innerError": {"date": date, "request-id": request_id, "client-request-id": request_id}}}
        return JSONResponse(body, status_code=exc.status, headers=headers)

    def authorize(self, request: Request, needs: Sequence[str]) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if not value.strip() or scheme.lower() != "bearer":
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        token = self.world.tokens.get(value.strip())
        if token is None:
            raise GraphError(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed, there are no dots "
                                                                "(.).")
        if self.ctx.clock() >= token.expires_at:
            raise GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        self.world.requests += 1
        every = self.world.throttle_every
        if every and self.world.requests % every == 0:
            raise GraphError(429, "TooManyRequests", "Too many requests.")
        if not token.roles & set(needs):
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")

    def endpoint(self, needs: Sequence[str], page: Callable[[Request], dict[str, Any]]
                 ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                self.authorize(request, needs)
                return FastJSONResponse(page(request))
            except GraphError as exc:
                headers: dict[str, str] = {}
                if exc.status == 401:
                    headers["WWW-Authenticate"] = ('Bearer realm="", authorization_uri="https://login.microsoftonline'
                                                   '.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-'
                                                   '000000000000"')
                if exc.status == 429:
                    headers["Retry-After"] = str(self.world.retry_after)
                    headers["x-ms-throttle-information"] = "ResourceUnitLimitExceeded"
                    headers["x-ms-throttle-scope"] = "Tenant_Application/ReadWrite/sim/" + self.world.tenant_id
                return self.error(exc, headers)

        return run

    def listing(self, request: Request, entity: str, keys: Sequence[Any], draw: Callable[[Any], dict[str, Any]], *,
                known: Sequence[str], default: Sequence[str], type_name: str, fields: dict[str, str] | None,
                version: Callable[[Any], Hashable] | None,
                pick: Callable[[Any, Sequence[str]], dict[str, Any]] | None = None,
                ids: Callable[[Sequence[Any]], list[Any]] | None = None) -> dict[str, Any]:
        """One page of a collection: $filter, $select, $top, $count, and `@odata.nextLink` while more remain.
        `ids(rows)`: the rows of a `$select=id` page of an untyped collection, made at once."""
        query = dict(request.query_params)
        advanced = request.headers.get("consistencylevel", "").lower() == "eventual" and query.get("$count") == "true"
        for option in ("$search", "$orderby", "$expand", "$skip"):
            if option in query:
                raise GraphError(400, "Request_UnsupportedQuery", f"The query option '{option}' is not supported "
                                                                  f"by this simulator's '{entity}'.")
        if "$count" in query and not advanced:
            raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
        top = parse_top(query.get("$top"))
        select = parse_select(query.get("$select"), known, type_name)
        rows = keys
        if "$filter" in query:
            if fields is None:
                raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
            predicate = parse_filter(query["$filter"], fields, type_name.capitalize(), advanced=advanced)
            cache = (request.url.path, query["$filter"], advanced)
            if cache not in self.filtered:
                if len(self.filtered) > 64:
                    self.filtered.clear()
                self.filtered[cache] = [key for key in keys if predicate(draw(key))]
            rows = self.filtered[cache]
        offset = offset_of(query.get("$skiptoken"), query)
        origin = f"{request.url.scheme}://{request.url.netloc}{PREFIX}"
        context = f"{origin}/v1.0/$metadata#{entity}" + (f"({','.join(select)})" if select else "")
        body: dict[str, Any] = {"@odata.context": context}
        if advanced:
            body["@odata.count"] = len(rows)
        if offset + top < len(rows):
            following = {k: v for k, v in query.items() if k != "$skiptoken"}
            following["$skiptoken"] = skiptoken(offset + top, query)
            encoded = "&".join(f"{k}={quote(v, safe=',()')}" for k, v in following.items())
            body["@odata.nextLink"] = f"{request.url.scheme}://{request.url.netloc}{request.url.path}?{encoded}"
        typed = type_name != "directoryObject"
        shape = tuple(select) if select is not None else None
        if shape is not None and set(shape) <= {"id"}:  # a row of ids (member pages) never changes for its key
            version = None

        def row(key: Any) -> dict[str, Any]:
            out = pick(key, select) if pick is not None and select is not None else project(draw(key), select, default)
            if typed:
                out.pop("@odata.type", None)  # a typed collection names the type once, in @odata.context
            return out

        if ids is not None and shape == ("id",) and not typed:  # made in C: cheaper than cached rows looked up
            body["value"] = ids(rows[offset:offset + top])
            return body
        ahead = "@odata.nextLink" in body
        window = rows[offset:offset + (2 * top if ahead else top)]  # one slice of the live keys: this page and the next
        body["value"] = self.fragments.many((type_name, shape), window[:top], version, row)
        if ahead:
            self._render_ahead((type_name, shape), window[top:], version, row)
        return body

    def _render_ahead(self, scope: Hashable, rows: Sequence[Any], version: Callable[[Any], Hashable] | None,
                      row: Callable[[Any], dict[str, Any]]) -> None:
        """Render the next page's rows into the fragment cache while the client's next request travels, a
        slice per loop turn: its answer is then a join of cached rows, and no answer due meanwhile waits behind
        a whole page of 999 users rendered at once (~10 ms: the head of the line of every lane)."""

        async def render() -> None:
            for start in range(0, len(rows), AHEAD_SLICE):
                await asyncio.sleep(0)  # this page's answer goes out first
                try:
                    self.fragments.many(scope, rows[start:start + AHEAD_SLICE], version, row)
                except LookupError:  # the world changed meanwhile: the request itself renders what is there
                    return

        task = asyncio.get_running_loop().create_task(render())
        self.ahead.add(task)
        task.add_done_callback(self.ahead.discard)


def _transitive(world: EntraWorld, group_id: str) -> Sequence[tuple[str, str]]:
    """`world.transitive(group_id)` as a list; a group without nested groups or repeated members (most) is
    its own member list, told in C (no generator step and set entry per member, on every member page)."""
    members = world.groups[group_id].members
    if GROUP not in map(_KIND, members) and len(set(map(_MEMBER_ID, members))) == len(members):
        return members
    return list(world.transitive(group_id))


_KIND, _MEMBER_ID = itemgetter(0), itemgetter(1)
_ODATA_TYPES = {kind: f"#microsoft.graph.{kind}" for kind in (USER, GROUP, DEVICE, SERVICE_PRINCIPAL)}


class _IdRow(msgspec.Struct):
    """A `$select=id` row of a directory object, encoded as `selected` renders it: `@odata.type`, then `id`."""

    odata_type: str = msgspec.field(name="@odata.type")
    id: str


def routes(ctx: SimContext) -> list[BaseRoute]:
    world: EntraWorld | None = ctx.entra_id
    if world is None:
        return []
    graph = Graph(ctx, world)

    def users(request: Request) -> dict[str, Any]:
        return graph.listing(request, "users", ordered_keys(world.users), lambda uid: render(world, USER, uid),
                             known=USER_PROPERTIES, default=USER_DEFAULT, type_name="user", fields=USER_FIELDS,
                             version=world.users.__getitem__, pick=lambda uid, names: selected(world, USER, uid, names))

    def groups(request: Request) -> dict[str, Any]:
        return graph.listing(request, "groups", list(world.groups), lambda gid: render(world, GROUP, gid),
                             known=GROUP_PROPERTIES, default=GROUP_PROPERTIES, type_name="group",
                             fields=GROUP_FIELDS, version=lambda gid: version(world, GROUP, gid))

    def members(transitive: bool) -> Callable[[Request], dict[str, Any]]:
        def page(request: Request) -> dict[str, Any]:
            group_id = request.path_params["id"]
            if group_id not in world.groups:
                raise GraphError(404, "Request_ResourceNotFound", f"Resource '{group_id}' does not exist or one of "
                                                                  f"its queried reference-property objects are not "
                                                                  f"present.")
            found = _transitive(world, group_id) if transitive else world.groups[group_id].members
            return graph.listing(request, "directoryObjects", found, lambda member: render(world, *member),
                                 known=MEMBER_PROPERTIES, default=MEMBER_PROPERTIES, type_name="directoryObject",
                                 fields=None, version=member_version,
                                 pick=lambda member, names: selected(world, member[0], member[1], names),
                                 ids=id_rows)

        def id_rows(rows: Sequence[tuple[str, str]]) -> list[Any]:
            """A page's `{"@odata.type", "id"}` rows made in C from the member pairs alone, as `selected` makes
            each (an object's id is its key in the world): no object looked up, nothing cached per row."""
            return list(map(_IdRow, map(_ODATA_TYPES.__getitem__, map(_KIND, rows)), map(_MEMBER_ID, rows)))

        def member_version(member: tuple[str, str]) -> Hashable:
            kind, object_id = member
            user = world.users.get(object_id) if kind == USER else None  # most members: no dispatch
            return user if user is not None else version(world, kind, object_id)

        return page

    async def unknown(request: Request) -> Response:
        segment = request.url.path.removeprefix(PREFIX + "/v1.0/").split("/")[0]
        return graph.error(GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'."))

    return [Mount(PREFIX, routes=[
        Route("/{tenant}/oauth2/v2.0/token", token_endpoint(ctx, world), methods=["POST"]),
        Route("/v1.0/users", graph.endpoint(READ_USERS, users), methods=["GET"]),
        Route("/v1.0/groups", graph.endpoint(READ_GROUPS, groups), methods=["GET"]),
        Route("/v1.0/groups/{id}/members", graph.endpoint(READ_MEMBERS, members(False)), methods=["GET"]),
        Route("/v1.0/groups/{id}/transitiveMembers", graph.endpoint(READ_MEMBERS, members(True)), methods=["GET"]),
        Route("/v1.0/{rest:path}", unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ])]
