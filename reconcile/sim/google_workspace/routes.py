"""Admin SDK Directory API v1 reads under `/google`: users, groups, group members; plus `POST /google/token`.

Paging: `maxResults` (users: 1 to 500 or 400, as the discovery document says; groups and members: at most
200, larger values are served as 200) and an opaque `nextPageToken` passed back as `pageToken`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Hashable, Sequence
from operator import attrgetter
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from reconcile.sim.context import GOOGLE, SimContext
from reconcile.sim.fragments import Fragments
from reconcile.sim.google_workspace.auth import PREFIX, authenticate, token, world_of
from reconcile.sim.google_workspace.errors import google_error, invalid_value, not_authorized
from reconcile.sim.google_workspace.rows import Reversed, user_member_rows, user_rows
from reconcile.sim.google_workspace.world import GGroup, GMember, GoogleWorld, GUser
from reconcile.sim.jsonbody import FastJSONResponse

API = f"{PREFIX}/admin/directory/v1"
AUTH = "https://www.googleapis.com/auth/"
USER_SCOPES = [AUTH + s for s in ("admin.directory.user", "admin.directory.user.readonly", "cloud-platform")]
GROUP_SCOPES = [AUTH + s for s in ("admin.directory.group", "admin.directory.group.readonly")]
MEMBER_SCOPES = [*GROUP_SCOPES, *(AUTH + s for s in ("admin.directory.group.member",
                                                      "admin.directory.group.member.readonly"))]
USERS_MAX, GROUPS_MAX, MEMBERS_MAX = 500, 200, 200


def user_json(world: GoogleWorld, user: GUser) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "admin#directory#user", "id": user.id, "etag": f'"{user.id}"', "primaryEmail": user.primary_email,
        "name": {"givenName": user.given_name, "familyName": user.family_name,
                 "fullName": f"{user.given_name} {user.family_name}"},
        "isAdmin": user.admin, "isDelegatedAdmin": False, "lastLoginTime": "2026-01-01T00:00:00.000Z",
        "creationTime": "2025-01-01T00:00:00.000Z", "agreedToTerms": True, "suspended": user.suspended,
        "archived": user.archived, "changePasswordAtNextLogin": False, "ipWhitelisted": False,
        "emails": [{"address": user.primary_email, "primary": True}], "customerId": world.customer_id,
        "orgUnitPath": user.org_unit_path, "isMailboxSetup": True, "includeInGlobalAddressList": True,
    }
    if user.suspended:
        out["suspensionReason"] = "ADMIN"
    return out


def group_json(group: GGroup) -> dict[str, Any]:
    return {"kind": "admin#directory#group", "id": group.id, "etag": f'"{group.id}"', "email": group.email,
            "name": group.name, "description": group.description, "directMembersCount": str(len(group.members)),
            "adminCreated": True}


def member_json(world: GoogleWorld, member: GMember) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "admin#directory#member", "etag": f'"{member.ref}"', "id": member.ref,
                           "role": member.role, "type": member.type}
    if member.type == "USER":
        user = world.user_by_id[member.ref]
        out.update(email=user.primary_email, status="SUSPENDED" if user.suspended else "ACTIVE")
    elif member.type == "GROUP":
        out.update(email=world.group_by_id[member.ref].email, status="ACTIVE")
    return out  # CUSTOMER: "an email address is not returned and the ID returned is the customer ID"


def derived(world: GoogleWorld, group: GGroup) -> list[GMember]:
    """`includeDerivedMembership=true`: direct members, then the members of nested groups, the nested groups
    themselves included (GAM-team/GAM#1198); each member once, cycles followed once."""
    out: list[GMember] = []
    seen: set[tuple[str, str]] = set()
    visited = {group.id}
    queue = [group]
    while queue:
        current = queue.pop(0)
        for member in current.members:
            if (member.type, member.ref) not in seen:
                seen.add((member.type, member.ref))
                out.append(member)
            if member.type == "GROUP" and member.ref not in visited:
                visited.add(member.ref)
                queue.append(world.group_by_id[member.ref])
    return out


def _token(offset: int, query: str) -> str:
    digest = hashlib.sha256(query.encode()).hexdigest()[:8]
    return base64.urlsafe_b64encode(f"{offset}:{digest}".encode()).decode().rstrip("=")


def _offset(page_token: str | None, query: str) -> int | None:
    if not page_token:
        return 0
    try:
        offset, digest = base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)).decode().split(":")
        return int(offset) if digest == hashlib.sha256(query.encode()).hexdigest()[:8] else None
    except ValueError:
        return None


def _user_query(text: str) -> Callable[[GUser], bool] | None:
    """The search subset: `isSuspended=`, `isArchived=`, `isAdmin=` (true/false), `email:pre*`, `email=`,
    `orgUnitPath=`, clauses ANDed by spaces; None when a clause is outside it."""
    clauses: list[tuple[str, str, str]] = []  # (attribute, how, value)
    flags = {"issuspended": "suspended", "isarchived": "archived", "isadmin": "admin"}
    for clause in text.split():
        name, op, value = clause.partition("=") if "=" in clause else clause.partition(":")
        value = value.strip("'\"").lower()
        if name.lower() in flags and op == "=" and value in ("true", "false"):
            clauses.append((flags[name.lower()], "flag", value))
        elif name.lower() == "email":
            clauses.append(("primary_email", "prefix" if op == ":" else "equal", value.rstrip("*")))
        elif name == "orgUnitPath" and op == "=":
            clauses.append(("org_unit_path", "equal", value))
        else:
            return None

    def test(user: GUser) -> bool:
        for attr, how, value in clauses:
            have = getattr(user, attr)
            if how == "flag" and have is not (value == "true"):
                return False
            if how == "prefix" and not have.lower().startswith(value):
                return False
            if how == "equal" and have.lower() != value:
                return False
        return True

    return test


_TYPE = attrgetter("type")


def _member_key(member: GMember) -> Hashable:
    return member.ref if member.type == "USER" else (member.type, member.ref)  # a user id is never a tuple


def routes(ctx: SimContext) -> list[BaseRoute]:
    fragments = Fragments()  # the JSON of members on pages with groups or CUSTOMER, encoded once (again on a change)

    def members_raw(world: GoogleWorld, members: Sequence[GMember]) -> list[Any]:
        if list(map(_TYPE, members)).count("USER") == len(members):  # most pages: users alone, made in C
            return user_member_rows(world, members)
        user_by_id = world.user_by_id

        def version(member: GMember) -> Hashable:
            if member.type == "USER":
                user = user_by_id[member.ref]
                return member.role, user.primary_email, user.suspended
            if member.type == "GROUP":
                return member.role, world.group_by_id[member.ref].email
            return (member.role,)

        return fragments.many("member", members, version, lambda member: member_json(world, member),
                              key=_member_key)

    def quota(caller: str) -> Response | None:
        world = world_of(ctx)
        in_flight = ctx.log.in_flight_by_api.get(GOOGLE, 0)
        if world.quota.account_concurrent_requests is not None and in_flight > world.quota.account_concurrent_requests:
            return google_error(429, "Rate Limit Exceeded", "rateLimitExceeded")
        if world.quota.concurrent_requests is not None and in_flight > world.quota.concurrent_requests:
            return google_error(403, "Quota exceeded", "quotaExceeded")
        window = int(ctx.wall() // 60)
        counts: dict[tuple[str, int], int] = ctx.extra.setdefault("google.queries", {})
        used = counts.get((caller, window), 0)
        if used >= world.quota.queries_per_minute:
            return google_error(403, "User Rate Limit Exceeded", "userRateLimitExceeded")
        counts[(caller, window)] = used + 1
        return None

    def guard(request: Request, scopes: Sequence[str]) -> Response | None:
        denied, caller = authenticate(ctx, request, scopes)
        return denied or quota(caller)

    def page_size(request: Request, default: int, cap: int, strict: bool) -> int | Response:
        raw = request.query_params.get("maxResults")
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            return invalid_value("maxResults", raw, 1, cap)
        if value < 1 or (strict and value > cap):
            return invalid_value("maxResults", raw, 1, cap)
        return min(value, cap)

    def page(request: Request, items: Sequence[Any], size: int | Response, kind: str, *, key: str,
             render: Callable[[Sequence[Any]], list[Any]]) -> Response:
        if isinstance(size, Response):
            return size
        query = "&".join(f"{k}={v}" for k, v in sorted(request.query_params.multi_items()) if k != "pageToken")
        offset = _offset(request.query_params.get("pageToken"), query)
        if offset is None:
            return google_error(400, "Invalid Input: pageToken", "invalid", location="pageToken",
                                locationType="parameter")
        body: dict[str, Any] = {"kind": kind, "etag": '"sim"', key: render(items[offset:offset + size])}
        if offset + size < len(items):
            body["nextPageToken"] = _token(offset + size, query)
        if not body[key]:
            del body[key]  # Google omits an empty list
        return FastJSONResponse(body)

    def scope_problem(request: Request, world: GoogleWorld) -> Response | None:
        customer, domain = request.query_params.get("customer"), request.query_params.get("domain")
        if customer is None and domain is None:
            return google_error(400, "Bad Request", "badRequest")
        if customer not in (None, "my_customer", world.customer_id) or domain not in (None, world.domain):
            return not_authorized()
        return None

    async def list_users(request: Request) -> Response:
        world = world_of(ctx)
        problem = guard(request, USER_SCOPES) or scope_problem(request, world)
        if problem is not None:
            return problem
        text = request.query_params.get("query", "")
        test = _user_query(text)
        if test is None:
            return google_error(400, "Invalid Input", "invalid")
        # no query: all of them
        users: Sequence[GUser] = world.users if not text.split() else [u for u in world.users if test(u)]
        if request.query_params.get("sortOrder") == "DESCENDING":
            users = Reversed(users)
        return page(request, users, page_size(request, 100, USERS_MAX, strict=True), "admin#directory#users",
                    key="users", render=lambda page: user_rows(world, page))

    async def list_groups(request: Request) -> Response:
        world = world_of(ctx)
        problem = guard(request, GROUP_SCOPES)
        if problem is None and "userKey" not in request.query_params:
            problem = scope_problem(request, world)
        if problem is not None:
            return problem
        groups = list(world.groups)
        user_key = request.query_params.get("userKey")
        if user_key is not None:
            user = world.user_by_email.get(user_key.lower()) or world.user_by_id.get(user_key)
            if user is None:
                return google_error(404, "Resource Not Found: userKey", "notFound")
            groups = [g for g in groups if any(m.type == "USER" and m.ref == user.id for m in g.members)]
        query = request.query_params.get("query")
        if query is not None:
            field, _, value = query.partition(":")
            if field not in ("email", "name") or not value:
                return google_error(400, "Invalid Input", "invalid")
            groups = [g for g in groups if getattr(g, field).lower().startswith(value.strip("'\"*").lower())]
        return page(request, groups, page_size(request, GROUPS_MAX, GROUPS_MAX, strict=False),
                    "admin#directory#groups", key="groups", render=lambda page: [group_json(g) for g in page])

    async def list_members(request: Request) -> Response:
        world = world_of(ctx)
        problem = guard(request, MEMBER_SCOPES)
        if problem is not None:
            return problem
        group = world.group(request.path_params["group_key"])
        if group is None:
            return google_error(404, "Resource Not Found: groupKey", "notFound")
        # the live member list: a page is sliced from it at once (no copy of every member per request)
        members: Sequence[GMember] = derived(world, group) \
            if request.query_params.get("includeDerivedMembership") == "true" else group.members
        roles = request.query_params.get("roles")
        if roles:
            wanted = {r.strip().upper() for r in roles.split(",")}
            members = [m for m in members if m.role in wanted]
        return page(request, members, page_size(request, MEMBERS_MAX, MEMBERS_MAX, strict=False),
                    "admin#directory#members", key="members", render=lambda page: members_raw(world, page))

    async def token_endpoint(request: Request) -> Response:
        return await token(ctx, request)

    return [
        Route(f"{API}/users", list_users, methods=["GET"]),
        Route(f"{API}/groups", list_groups, methods=["GET"]),
        Route(f"{API}/groups/{{group_key}}/members", list_members, methods=["GET"]),
        Route(f"{PREFIX}/token", token_endpoint, methods=["POST"]),
    ]
