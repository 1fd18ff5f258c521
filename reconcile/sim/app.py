"""Builds the simulator's ASGI app: `/_sim/*` plus every simulated API's routes (`APIS`), behind SimMiddleware.

Latency, faults, rate limiting and the request log come from the middleware; the APIs add only routes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from reconcile.sim import admin
from reconcile.sim.atlassian_cloud import routes as atlassian_cloud
from reconcile.sim.atlassian_cloud.world import CloudWorld
from reconcile.sim.confluence_dc import routes as confluence_dc
from reconcile.sim.confluence_dc.world import DcWorld
from reconcile.sim.context import CloudWorldLike, SimContext
from reconcile.sim.control import SimSettings
from reconcile.sim.entra_id import routes as entra_id
from reconcile.sim.entra_id.world import EntraWorld
from reconcile.sim.google_workspace import routes as google_workspace
from reconcile.sim.middleware import SimMiddleware
from reconcile.sim.okta import routes as okta
from reconcile.sim.scenario import Scenario, load_scenario
from reconcile.sim.scim import routes as scim
from reconcile.sim.unrouted import not_routed

# Each simulated API's entry (see reconcile/sim/__init__.py); the order is the routing order. Entra ID (one
# Mount, /entra), Okta (4 routes, all /okta/...) and Google (4 routes, all /google/...) match no other API's
# paths: first, each of their requests skips the ~65 route checks of DC and Cloud.
APIS: tuple[Callable[[SimContext], list[BaseRoute]], ...] = (
    entra_id.routes, okta.routes, google_workspace.routes, confluence_dc.routes, atlassian_cloud.routes, scim.routes,
)


def cloud_from_scenario(section: Mapping[str, Any] | None) -> CloudWorldLike:
    return CloudWorld.from_scenario(section or {})


def cloud_generated(users: int, groups: int, memberships: int, seed: int) -> CloudWorldLike:
    return CloudWorld.generate(users, groups, memberships, seed)


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
    for idp in ("okta", "google_workspace"):  # the IdP worlds live in ctx.extra (empty when not in the scenario)
        if scenario is not None and getattr(scenario, idp) is not None:
            ctx.extra[idp] = getattr(scenario, idp)
    return app_for(ctx)


def app_for(ctx: SimContext) -> Starlette:
    routes: list[BaseRoute] = [*admin.routes(ctx)]
    for api_routes in APIS:
        routes += api_routes(ctx)
    app = Starlette(routes=routes, middleware=[Middleware(SimMiddleware, ctx=ctx)],
                    exception_handlers={404: not_routed, 405: not_routed})
    app.router.redirect_slashes = False  # real servers answer 404 to a stray slash, never a redirect
    app.state.ctx = ctx
    return app
