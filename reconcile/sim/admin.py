"""`/_sim/*`: the simulator's own admin endpoints (no auth, never rate limited or faulted).

GET /_sim/state, GET /_sim/log, DELETE /_sim/log, GET /_sim/stats, GET|PUT /_sim/faults,
POST /_sim/mutate (change the world behind the tool's back). Documented in docs/simulator.md.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconcile.sim.confluence_dc.mutate import mutate_dc
from reconcile.sim.confluence_dc.world import WorldError
from reconcile.sim.context import CLOUD, DC, GOOGLE, OKTA, SimContext


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
            "cpu_seconds": time.process_time(),  # the simulator's own CPU, to the microsecond (bench/sim_bench.py)
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

