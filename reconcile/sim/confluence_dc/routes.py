"""The simulated Confluence Data Center REST API (`/rest/api/...`): reads, writes, long tasks.

Shapes follow confluence-dc-10.0.3.json and the reference notes; every inferred choice is listed in
docs/simulator.md. The admin UI pages (unsynced users, websudo) are in actions.py.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconcile.sim.confluence_dc import actions, facts_routes
from reconcile.sim.confluence_dc.common import (
    PROFILE_PICTURE,
    BadPaging,
    Caller,
    Unauthorized,
    anonymous_person,
    base_url,
    group_json,
    identify,
    no_content,
    page,
    paging,
    person,
    rest_error,
    unauthorized,
)
from reconcile.sim.confluence_dc.longtask import queue
from reconcile.sim.confluence_dc.world import DcUser, WorldError
from reconcile.sim.context import SimContext
from reconcile.sim.jsonbody import BodyCache

Handler = Callable[[Request, Caller], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

ANYONE, USER, ADMIN = "anyone", "user", "admin"
WRITE_API = (8, 2)  # membership, disable/enable, delete, admin groups
USER_LIST = (8, 4)
ACTIVE_LIST = (9, 3)


def routes(ctx: SimContext) -> list[BaseRoute]:
    world = ctx.dc
    deletions = queue(ctx)

    def endpoint(handler: Handler, need: str, since: tuple[int, int] = (0, 0)) -> Endpoint:
        async def run(request: Request) -> Response:
            if world.version < since:
                return rest_error(404, f"null for uri: {request.url}")
            ctx.tick()
            try:
                caller = identify(request, ctx)
            except Unauthorized:
                return unauthorized()
            if need != ANYONE and caller.user is None:
                return rest_error(403, "Anonymous users are not permitted to use this resource")
            if need == ADMIN and (caller.user is None or not world.is_admin(caller.user.key)):
                return rest_error(403, "You need admin permissions to use this endpoint")
            try:
                return await handler(request, caller)
            except BadPaging as exc:
                return rest_error(400, str(exc))

        return run

    pages = ctx.extra["dc_pages"] = BodyCache()  # in ctx.extra for tests and the bench (hit counts)

    def cached(handler: Handler) -> Handler:
        """A listing's 200 bodies, kept until the world changes (auth and tick() already ran in `endpoint`)."""
        async def run(request: Request, caller: Caller) -> Response:
            revision = (world.revision, world.version, world.last_login_field, id(world.licence))
            key = (request.url.path, request.url.query, base_url(request))
            body = pages.get(revision, key)
            if body is None:
                response = await handler(request, caller)
                if response.status_code != 200:
                    return response
                body = pages.put(revision, key, bytes(response.body))
            return Response(body, media_type="application/json")

        return run

    def expand(request: Request) -> str:
        return request.query_params.get("expand", "")

    def lookup(request: Request) -> DcUser | Response:
        username = request.query_params.get("username")
        key = request.query_params.get("key")
        if username and key:
            return rest_error(400, "Only one of username or userkey can be provided")
        if key:
            user = world.users.get(key)
            if user is None:
                return rest_error(404, f"No user found with key: {key}")
            return user
        if username:
            found = world.user_by_username(username)
            if found is None:
                return rest_error(404, f"No user found with username: {username}")
            return found
        return rest_error(400, "Either username or key must be provided")

    # -- reads ---------------------------------------------------------------------------------

    async def current(request: Request, caller: Caller) -> Response:
        if caller.user is None:
            return JSONResponse(anonymous_person(base_url(request)))
        return JSONResponse(person(caller.user, base_url(request), expand(request)))

    async def anonymous(request: Request, caller: Caller) -> Response:
        return JSONResponse(anonymous_person(base_url(request)))

    async def get_user(request: Request, caller: Caller) -> Response:
        key = request.query_params.get("key")
        if key and key in world.deleted and key not in world.users:
            alias = world.deleted[key]
            base = base_url(request)
            return JSONResponse({"type": "known", "username": key, "userKey": key, "displayName": alias,
                                 "profilePicture": PROFILE_PICTURE,
                                 "_links": {"self": f"{base}/rest/api/user?key={key}"}})
        found = lookup(request)
        if isinstance(found, Response):
            return found
        return JSONResponse(person(found, base_url(request), expand(request)))

    async def user_list(request: Request, caller: Caller) -> Response:
        start, limit = paging(request, 100, 100)
        base, exp = base_url(request), expand(request)
        return page(request, world.live_users(), start, limit, lambda k: person(world.users[k], base, exp))

    async def member_of(request: Request, caller: Caller) -> Response:
        found = lookup(request)
        if isinstance(found, Response):
            return found
        start, limit = paging(request, 200, 200)
        base = base_url(request)
        names = sorted(world.groups_of.get(found.key, {}))
        return page(request, names, start, limit, lambda n: group_json(world.groups[n], base))

    async def group_list(request: Request, caller: Caller) -> Response:
        start, limit = paging(request, 200, 200)
        base = base_url(request)
        return page(request, world.group_list(), start, limit, lambda n: group_json(world.groups[n], base))

    async def get_group(request: Request, caller: Caller) -> Response:
        name = unquote(request.path_params["groupName"]).lower()
        if name not in world.groups:
            return rest_error(404, f"Group {name} not found")
        return JSONResponse(group_json(world.groups[name], base_url(request)))

    async def group_members(request: Request, caller: Caller) -> Response:
        name = unquote(request.path_params["groupName"]).lower()
        if name not in world.groups:
            return rest_error(404, f"Group {name} not found")
        start, limit = paging(request, 200, 200)
        base, exp = base_url(request), expand(request)
        return page(request, world.member_list(name), start, limit, lambda k: person(world.users[k], base, exp))

    async def active_users(request: Request, caller: Caller) -> Response:
        start, limit = paging(request, 100, 100)
        base, exp = base_url(request), expand(request)

        def render(key: str) -> dict[str, object]:
            user = world.users[key]
            out = person(user, base, exp)
            out["email"] = user.email or ""
            if "lastLogin" in exp and world.last_login_field:
                out["lastLogin"] = user.last_login  # null: never logged in
            return out

        return page(request, world.active_by_login(), start, limit, render)

    async def longtask_list(request: Request, caller: Caller) -> Response:
        start, limit = paging(request, 100, 100)
        base = base_url(request)
        forget = ctx.settings.faults.forget_finished_tasks
        tasks = [t for t in deletions.tasks.values() if not (forget and t.done)]
        return page(request, tasks, start, limit, lambda t: deletions.status(t, base))

    async def longtask(request: Request, caller: Caller) -> Response:
        task = deletions.tasks.get(request.path_params["id"])
        if task is None or (task.done and ctx.settings.faults.forget_finished_tasks):  # finished, forgotten
            return rest_error(404, f"No long running task with id {request.path_params['id']}")
        return JSONResponse(deletions.status(task, base_url(request)))

    async def server_information(request: Request, caller: Caller) -> Response:
        if caller.user is None:
            return rest_error(401, "Returned if the calling User is not authenticated.")
        major, minor = world.version
        return JSONResponse({"baseUrl": base_url(request), "version": f"{major}.{minor}.0",
                             "buildNumber": major * 1000 + minor * 10, "buildDate": "2025-01-01T00:00:00.000Z"})

    # -- writes --------------------------------------------------------------------------------

    async def membership(request: Request, caller: Caller) -> Response:
        username = unquote(request.path_params["username"]).lower()
        group = unquote(request.path_params["groupName"]).lower()
        key = world.by_username.get(username)
        if key is None and group not in world.groups:
            return rest_error(404, f"User {username} and group {group} not found")
        if key is None:
            return rest_error(404, f"User {username} not found")
        if group not in world.groups:
            return rest_error(404, f"Group {group} not found")
        directory = world.directory_of_group(group)
        if directory.readonly:
            return rest_error(500, f"com.atlassian.crowd.exception.runtime.OperationFailedException: "
                                   f"ApplicationPermissionException: Cannot update group '{group}' because "
                                   f"directory '{directory.name}' does not allow updates.")
        if request.method == "PUT":
            world.add_member(key, group)
        else:
            world.remove_member(key, group)
        return no_content()

    def live_user(request: Request) -> DcUser | Response:
        username = unquote(request.path_params["username"]).lower()
        key = world.by_username.get(username)
        if key is None:
            return rest_error(404, "No User exists for the provided username")
        return world.users[key]

    async def set_status(request: Request, caller: Caller) -> Response:
        found = live_user(request)
        if isinstance(found, Response):
            return found
        enable = request.url.path.endswith("/enable")
        assert caller.user is not None
        if not enable and found.key == caller.user.key:
            return rest_error(403, "You cannot disable yourself")
        directory = world.directories[found.directory]
        if directory.readonly:
            return rest_error(500, f"com.atlassian.crowd.exception.runtime.OperationFailedException: "
                                   f"ApplicationPermissionException: Cannot update user '{found.username}' "
                                   f"because directory '{directory.name}' does not allow updates.")
        world.set_active(found.key, enable)
        return no_content()

    async def delete_user(request: Request, caller: Caller) -> Response:
        found = world.user_by_username(unquote(request.path_params["username"]))
        if found is None:
            return rest_error(404, "No User exists for the provided username")
        assert caller.user is not None
        if found.key == caller.user.key:
            return rest_error(403, "You cannot delete yourself")
        directory = world.directories[found.directory]
        if directory.readonly and not found.unsynced:
            return rest_error(403, f"User is not removable: directory '{directory.name}' does not allow "
                                   "updates. Remove the user from the directory; it becomes unsynced.")
        task = deletions.submit(found, method="DELETE", path=request.url.path)
        status = f"{base_url(request)}/rest/api/longtask/{task.id}"
        return JSONResponse({"id": task.id, "links": {"status": status}}, status_code=202)

    async def create_group(request: Request, caller: Caller) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            name = str(body["name"]).strip() if isinstance(body, dict) and body.get("name") else ""
        except ValueError:
            name = ""
        if not name:
            return rest_error(400, "A group name is required")
        try:
            group = world.add_group(name)
        except WorldError as exc:
            return rest_error(exc.status, exc.message)
        return JSONResponse(group_json(group, base_url(request)))

    async def delete_group(request: Request, caller: Caller) -> Response:
        name = unquote(request.path_params["groupName"]).lower()
        if name not in world.groups:
            return rest_error(404, f"Group {name} not found")
        if name in world.admin_groups and sum(g in world.groups for g in world.admin_groups) == 1:
            return rest_error(400, "You cannot delete the last admin group")
        world.remove_group(name)
        return no_content()

    return [
        Route("/rest/api/user/current", endpoint(current, ANYONE), methods=["GET"]),
        Route("/rest/api/user/anonymous", endpoint(anonymous, ANYONE), methods=["GET"]),
        Route("/rest/api/user/list", endpoint(cached(user_list), USER, USER_LIST), methods=["GET"]),
        Route("/rest/api/user/memberof", endpoint(member_of, USER), methods=["GET"]),
        Route("/rest/api/user", endpoint(get_user, USER), methods=["GET"]),
        Route("/rest/api/group", endpoint(cached(group_list), USER), methods=["GET"]),
        Route("/rest/api/group/{groupName}", endpoint(get_group, USER), methods=["GET"]),
        Route("/rest/api/group/{groupName}/member", endpoint(cached(group_members), ADMIN), methods=["GET"]),
        Route("/rest/api/admin/users/list/active", endpoint(cached(active_users), ADMIN, ACTIVE_LIST), methods=["GET"]),
        Route("/rest/api/longtask", endpoint(longtask_list, ADMIN), methods=["GET"]),
        Route("/rest/api/longtask/{id}", endpoint(longtask, ADMIN), methods=["GET"]),
        Route("/rest/api/server-information", endpoint(server_information, ANYONE), methods=["GET"]),
        Route("/rest/api/user/{username}/group/{groupName}", endpoint(membership, ADMIN, WRITE_API),
              methods=["PUT", "DELETE"]),
        Route("/rest/api/admin/user/{username}/disable", endpoint(set_status, ADMIN, WRITE_API), methods=["PUT"]),
        Route("/rest/api/admin/user/{username}/enable", endpoint(set_status, ADMIN, WRITE_API), methods=["PUT"]),
        Route("/rest/api/admin/user/{username}", endpoint(delete_user, ADMIN, WRITE_API), methods=["DELETE"]),
        Route("/rest/api/admin/group", endpoint(create_group, ADMIN, WRITE_API), methods=["POST"]),
        Route("/rest/api/admin/group/{groupName}", endpoint(delete_group, ADMIN, WRITE_API), methods=["DELETE"]),
        *facts_routes.routes(ctx, endpoint),
        *actions.routes(ctx),
    ]
