"""The simulated Google Workspace account (Admin SDK Directory API v1 reads + the OAuth token endpoint)
under `/google`. `routes.routes(ctx)` is what app.py mounts; the world is `ctx.extra["google_workspace"]`.
"""
