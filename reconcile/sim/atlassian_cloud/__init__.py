"""The simulated Atlassian Cloud: Organizations v2 (+ v1 last-active-dates, 200/min), user management
lifecycle, one Jira site.

Entry: `routes.routes(ctx)` over `ctx.cloud` (a `world.CloudWorld`; no routes without one).
"""
