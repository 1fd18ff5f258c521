"""The simulated Okta org (Management API v1 reads + the OAuth token endpoint) under `/okta`.

`routes(ctx)` is what app.py mounts; the world is `ctx.extra["okta"]` (an `OktaWorld`).
"""

from reconcile.sim.okta.routes import routes
from reconcile.sim.okta.world import OktaWorld

__all__ = ["OktaWorld", "routes"]
