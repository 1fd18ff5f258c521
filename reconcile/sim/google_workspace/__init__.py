"""The simulated Google Workspace account (Admin SDK Directory API v1 reads + the OAuth token endpoint)
under `/google`. `routes(ctx)` is what app.py mounts; the world is `ctx.extra["google_workspace"]`.
"""

from reconcile.sim.google_workspace.routes import routes
from reconcile.sim.google_workspace.world import GoogleWorld

__all__ = ["GoogleWorld", "routes"]
