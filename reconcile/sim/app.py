"""Builds the simulator's ASGI app: Confluence DC + Atlassian Cloud APIs + `/_sim/*`, behind SimMiddleware.

Seam for the Cloud part (`reconcile/sim/cloud.py`, owned by the "atlassian-cloud" engineer):

    class CloudWorld:
        @classmethod
        def from_scenario(cls, mapping: Mapping[str, Any]) -> CloudWorld   # the scenario's `cloud:`
        @classmethod                                                        # section ({} when absent)
        def generate(cls, users: int, groups: int, memberships: int, seed: int) -> CloudWorld
        def to_json(self) -> dict[str, Any]                                 # GET /_sim/state
        def mutate(self, op: str, args: Mapping[str, Any]) -> Any           # POST /_sim/mutate with
            # {"api": "atlassian-cloud", "op": ..., **args}; raise KeyError -> 404, ValueError -> 400
    def routes(ctx: SimContext) -> list[starlette.routing.BaseRoute]

`ctx.cloud` is the CloudWorld; `ctx.clock`, `ctx.log`, `ctx.settings`, `ctx.tickers` are shared.
Cloud paths must start with one of `context.CLOUD_PREFIXES` (the middleware picks Cloud rate-limit
headers by prefix). Latency, faults, rate limiting and the mutation log need nothing from the Cloud
routes. When cloud.py is missing the app serves Confluence DC only (logged at WARNING).
"""

from __future__ import annotations

import importlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from reconcile.sim import admin
from reconcile.sim.context import CloudWorldLike, SimContext
from reconcile.sim.control import SimSettings
from reconcile.sim.entra_id import routes as entra_id
from reconcile.sim.entra_id.world import EntraWorld
from reconcile.sim.middleware import SimMiddleware
from reconcile.sim.scenario import Scenario, load_scenario
from reconcile.sim.unrouted import not_routed
from reconcile.sim.world import DcWorld

log = logging.getLogger(__name__)


def _cloud_module() -> Any | None:
    try:
        return importlib.import_module("reconcile.sim.cloud")
    except ModuleNotFoundError as exc:
        if exc.name != "reconcile.sim.cloud":
            raise
        log.warning("reconcile/sim/cloud.py is missing: the simulator serves Confluence DC only")
        return None


def cloud_from_scenario(section: Mapping[str, Any] | None) -> CloudWorldLike | None:
    module = _cloud_module()
    if module is None:
        return None
    world: CloudWorldLike = module.CloudWorld.from_scenario(section or {})
    return world


def cloud_generated(users: int, groups: int, memberships: int, seed: int) -> CloudWorldLike | None:
    module = _cloud_module()
    if module is None:
        return None
    world: CloudWorldLike = module.CloudWorld.generate(users, groups, memberships, seed)
    return world


def build_app(
    scenario: Scenario | None = None,
    *,
    dc: DcWorld | None = None,
    cloud: CloudWorldLike | None = None,
    entra: EntraWorld | None = None,
    settings: SimSettings | None = None,
    clock: Callable[[], float] | None = None,
    wall: Callable[[], float] | None = None,
) -> Starlette:
    """The simulator app. Default: the packaged example world (`scenarios/example.yaml`).

    `dc`/`cloud` replace the scenario's worlds (e.g. generated ones); `settings` replaces its `sim:`
    section. The shared context is `app.state.ctx` (tests assert on `ctx.dc`, `ctx.log`).
    """
    if scenario is None and dc is None:
        scenario = load_scenario()
    if dc is None:
        assert scenario is not None
        dc = scenario.dc
    if cloud is None:
        cloud = cloud_from_scenario(scenario.cloud if scenario is not None else None)
    if settings is None:
        settings = scenario.settings if scenario is not None else SimSettings()
    if entra is None and scenario is not None:
        entra = scenario.entra_id
    ctx = SimContext(dc=dc, cloud=cloud, entra_id=entra, settings=settings, clock=clock or time.monotonic,
                     wall=wall or time.time, rng=random.Random(settings.seed))
    return app_for(ctx)


def app_for(ctx: SimContext) -> Starlette:
    from reconcile.sim import confluence_dc

    routes: list[BaseRoute] = [*admin.routes(ctx), *confluence_dc.routes(ctx), *entra_id.routes(ctx)]
    module = _cloud_module() if ctx.cloud is not None else None
    if module is not None:
        routes += module.routes(ctx)
    app = Starlette(routes=routes, middleware=[Middleware(SimMiddleware, ctx=ctx)],
                    exception_handlers={404: not_routed, 405: not_routed})
    app.router.redirect_slashes = False  # real servers answer 404 to a stray slash, never a redirect
    app.state.ctx = ctx
    return app
