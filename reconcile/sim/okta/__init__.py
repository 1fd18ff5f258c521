"""The simulated Okta org (Management API v1 reads + the OAuth token endpoint) under `/okta`.

`routes.routes(ctx)` is what app.py mounts; the world is `ctx.extra["okta"]` (a `world.OktaWorld`).
"""
