"""The local simulator (`reconcile sim`): every simulated API in one ASGI app, laid out like `targets/`.

    reconcile/sim/                 the framework, shared by every API
        app.py                     build_app(): /_sim/* + each API's routes (`APIS`), behind SimMiddleware
        context.py                 SimContext: the worlds, settings, request log, clock, tickers
        middleware.py control.py   latency, faults, rate limits, the request log (no API needs code for them)
        admin.py                   /_sim/state, /_sim/log, /_sim/stats, /_sim/faults, /_sim/mutate
        scenario.py server.py command.py unrouted.py
    reconcile/sim/<api>/           one package per simulated API: confluence_dc/, atlassian_cloud/, (okta/, ...)
        __init__.py                what is simulated (docstring only: importing the package loads nothing)
        world.py                   the API's state and the rules the real service enforces
        routes.py                  def routes(ctx: SimContext) -> list[BaseRoute]: the API's one entry;
                                   [] when ctx holds no world for it; its paths never overlap another API's

A new API adds its package, its world on SimContext, its entry in `app.APIS`, its path prefixes to
`context.api_of` (per-API rate-limit headers and the request log's `api`) and its error body to unrouted.py.
"""
