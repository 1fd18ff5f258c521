"""The simulated Confluence Data Center: REST API, admin UI pages (unsynced users, websudo), long tasks,
and the policy facts (facts.py: licence seats, "Can use", spaces, CQL content counts; `/rest/license/1.0/*`
is an undocumented simulator extension: in no carried document).

Entry: `routes.routes(ctx)` over `ctx.dc` (a `world.DcWorld`); `generate.generate_dc` builds large worlds.
"""
