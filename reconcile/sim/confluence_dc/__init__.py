"""The simulated Confluence Data Center: REST API, admin UI pages (unsynced users, websudo), long tasks.

Entry: `routes.routes(ctx)` over `ctx.dc` (a `world.DcWorld`); `generate.generate_dc` builds large worlds.
"""
