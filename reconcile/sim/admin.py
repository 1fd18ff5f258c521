"""`/_sim/*`: the simulator's own admin endpoints (no auth, never rate limited or faulted).

GET /_sim/state, GET /_sim/log, DELETE /_sim/log, GET /_sim/stats, GET|PUT /_sim/faults,
POST /_sim/mutate (change the world behind the tool's back). Documented in the README (The simulator).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconcile.sim.context import CLOUD, DC, GOOGLE, OKTA, SimContext
from reconcile.sim.world import INTERNAL_DIRECTORY, DcUser, DcWorld, WorldError, user_key


def routes(ctx: SimContext) -> list[BaseRoute]:
    async def state(request: Request) -> Response:
        ctx.tick()
        api = request.query_params.get("api")
        body: dict[str, Any] = {}
        if api in (None, DC):
            body[DC] = ctx.dc.to_json()
        if api in (None, CLOUD):
            body[CLOUD] = ctx.cloud.to_json() if ctx.cloud is not None else None
        for idp, key in ((OKTA, "okta"), (GOOGLE, "google_workspace")):  # only when asked: ?api=okta
            if api == idp and ctx.extra.get(key) is not None:
                body[idp] = ctx.extra[key].to_json()
        return JSONResponse(body)

    async def get_log(request: Request) -> Response:
        since = int(request.query_params.get("since", "0"))
        kind = request.query_params.get("kind")
        entries = [e.to_json() for e in ctx.log.entries[since:] if kind is None or e.kind == kind]
        return JSONResponse({"entries": entries, "next": len(ctx.log.entries)})

    async def clear_log(request: Request) -> Response:
        ctx.log.entries.clear()
        ctx.log.counts.clear()
        ctx.log.max_in_flight = ctx.log.in_flight
        return Response(status_code=204)

    async def stats(request: Request) -> Response:
        return JSONResponse({
            "requests": dict(ctx.log.counts),
            "max_in_flight": ctx.log.max_in_flight,
            "violations": len(ctx.log.violations()),
            "faults": sum(1 for e in ctx.log.entries if e.kind == "fault"),
            "instance": ctx.instance,
            "pid": os.getpid(),
        })

    async def faults(request: Request) -> Response:
        if request.method == "PUT":
            try:
                changes = json.loads(await request.body() or b"{}")
                if not isinstance(changes, Mapping):
                    raise ValueError("the body is a JSON object of settings")
                ctx.apply_settings(ctx.settings.updated(changes))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            ctx.log.add("PUT", "/_sim/faults", 200, body=changes, api="sim", kind="mutate")
        return JSONResponse(ctx.settings.to_json())

    async def mutate(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, Mapping) or "op" not in body:
                raise ValueError('the body is {"op": ..., ...}')
            api = body.get("api", DC)
            if api == CLOUD:
                if ctx.cloud is None:
                    return JSONResponse({"error": "this simulator has no Cloud world"}, status_code=404)
                args = {k: v for k, v in body.items() if k not in ("op", "api")}
                result = ctx.cloud.mutate(str(body["op"]), args)
            else:
                ctx.tick()
                result = mutate_dc(ctx.dc, str(body["op"]), body)
        except WorldError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except KeyError as exc:
            return JSONResponse({"error": f"not found: {exc}"}, status_code=404)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        ctx.log.add("POST", "/_sim/mutate", 200, body=body, api="sim", kind="mutate")
        return JSONResponse({"ok": True, "result": result})

    return [
        Route("/_sim/state", state, methods=["GET"]),
        Route("/_sim/log", get_log, methods=["GET"]),
        Route("/_sim/log", clear_log, methods=["DELETE"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/_sim/faults", faults, methods=["GET", "PUT"]),
        Route("/_sim/mutate", mutate, methods=["POST"]),
    ]


def _user(world: DcWorld, args: Mapping[str, Any]) -> DcUser:
    if "key" in args:
        return world.users[str(args["key"])]
    user = world.user_by_username(str(args["username"]))
    if user is None:
        raise KeyError(f"user {args['username']!r}")
    return user


def _group(world: DcWorld, args: Mapping[str, Any]) -> str:
    name = str(args["group"]).lower()
    if name not in world.groups:
        raise KeyError(f"group {name!r}")
    return name


def mutate_dc(world: DcWorld, op: str, args: Mapping[str, Any]) -> Any:
    """One change behind the tool's back; `args` names the user by `username` or `key`."""
    if op == "add_member":
        return world.add_member(_user(world, args).key, _group(world, args))
    if op == "remove_member":
        return world.remove_member(_user(world, args).key, _group(world, args))
    if op == "disable_user":
        world.set_active(_user(world, args).key, False)
        return None
    if op == "enable_user":
        world.set_active(_user(world, args).key, True)
        return None
    if op == "delete_user":
        world.remove_user(_user(world, args).key)
        return None
    if op == "unsync_user":
        world.make_unsynced(_user(world, args).key)
        return None
    if op == "add_user":
        username = str(args["username"]).lower()
        user = DcUser(
            key=str(args.get("key") or user_key(f"user:{username}")),
            username=username,
            display_name=str(args.get("display_name") or username),
            email=args.get("email"),
            active=args.get("status", "active") != "disabled",
            directory=str(args.get("directory", INTERNAL_DIRECTORY)),
        )
        return world.add_user(user).key
    if op == "add_group":
        world.add_group(str(args["group"]), str(args.get("directory", INTERNAL_DIRECTORY)))
        return None
    if op == "remove_group":
        world.remove_group(str(args["group"]))
        return None
    raise ValueError(
        f"unknown op {op!r}: add_member, remove_member, disable_user, enable_user, delete_user, "
        "unsync_user, add_user, add_group, remove_group"
    )
