"""Serving the simulator: build the configured app, run it under uvicorn, or in a background thread.

`running(app)` is the test helper: a real HTTP server on a free loopback port, yielding its base URL.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from reconcile.aio import loop_factory
from reconcile.collector import collector_paused
from reconcile.errors import ConfigError
from reconcile.sim.app import build_app, cloud_generated
from reconcile.sim.confluence_dc.generate import generate_dc
from reconcile.sim.confluence_dc.world import parse_version
from reconcile.sim.middleware import ConnectionReset
from reconcile.sim.scenario import load_scenario
from reconcile.sim.scim.world import SCIM_TOKEN, ScimWorld

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SimOptions:
    """What `reconcile sim` was asked for; `overrides` use the `PUT /_sim/faults` keys."""

    scenario: Path | None = None
    users: int | None = None  # generate a world instead of reading a scenario
    groups: int = 200
    memberships: int | None = None  # default: 4 per user
    seed: int = 1
    dc_version: str | None = None
    delete_seconds: float | None = None
    cloud: bool = True  # with `users`: also generate a Cloud organization of the same size
    overrides: Mapping[str, Any] = field(default_factory=dict)
    instance: str = ""  # echoed by GET /_sim/stats
    scim_users: int | None = None  # generate a SCIM directory of this size (with `groups`, `memberships`)
    scim_directory: Path | None = None  # or load one (desired/examples/scim/directory.json's shape)
    scim_token: str = SCIM_TOKEN


def configured_app(options: SimOptions) -> Starlette:
    """The app for `options`: a scenario (default: the example world) or a generated world."""
    started = time.perf_counter()
    scenario = load_scenario(options.scenario)
    if options.users is not None:
        memberships = options.memberships if options.memberships is not None else 4 * options.users
        version = parse_version(options.dc_version) if options.dc_version else scenario.dc.version
        with collector_paused():  # millions of new objects, none of them garbage: collecting is pure cost
            dc = generate_dc(options.users, options.groups, memberships, options.seed, version=version)
            cloud = (cloud_generated(options.users, options.groups, memberships, options.seed)
                     if options.cloud else None)
            # Frozen before collection resumes: no collection ever walks these objects (the first one after
            # a million allocations would otherwise cost a few hundred ms of the start, later ones more).
            gc.freeze()
        app = build_app(scenario, dc=dc, cloud=cloud)
        described = f"generated world: {options.users} users, {options.groups} groups, {memberships} memberships"
    else:
        app = build_app(scenario)
        if options.dc_version:
            app.state.ctx.dc.version = parse_version(options.dc_version)
        described = f"scenario {scenario.source}"
    ctx = app.state.ctx
    ctx.instance = options.instance
    if options.scim_users is not None:
        scim_memberships = options.memberships if options.memberships is not None else 4 * options.scim_users
        ctx.extra["scim"] = ScimWorld.generate(options.scim_users, options.groups, scim_memberships, options.seed,
                                               token=options.scim_token)
        described += f"; SCIM directory: {options.scim_users} users"
    elif options.scim_directory is not None:
        try:
            document = json.loads(options.scim_directory.read_text(encoding="utf-8"))
            ctx.extra["scim"] = ScimWorld.from_directory(document, token=options.scim_token)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError([f"{options.scim_directory}: not a SCIM directory ({type(exc).__name__}: {exc}); "
                               "see desired/examples/scim/directory.json for the shape"],
                              subject="the SCIM directory") from None
        described += f"; SCIM directory {options.scim_directory}"
    if options.delete_seconds is not None:
        ctx.dc.delete_seconds = options.delete_seconds
    if options.overrides:
        ctx.apply_settings(ctx.settings.updated(options.overrides))
    log.info("simulator world ready in %.2f s (%s)", time.perf_counter() - started, described)
    return app


class _QuietResets(logging.Filter):
    """Simulated connection resets are the point, not an error: keep their tracebacks out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionReset))


def runtime() -> tuple[str, str]:
    """uvicorn's event loop and HTTP parser: uvloop and httptools when installed (C, a fraction of the CPU per
    request of asyncio and the pure-Python h11 on a busy 2-core machine), else asyncio and h11 (e.g. Windows)."""
    loop = "asyncio" if loop_factory() is None else "uvloop"  # the client's choice too (reconcile.aio)
    try:
        import httptools  # noqa: F401
    except ImportError:
        http = "h11"
    else:
        http = "httptools"
    return loop, http


def _server(app: Starlette, host: str, port: int, log_level: str = "warning") -> uvicorn.Server:
    loop, http = runtime()
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off",
                            loop=loop, http=http)
    quiet = _QuietResets()
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietResets) for f in error_log.filters):
        error_log.addFilter(quiet)
    return uvicorn.Server(config)


def serve(app: Starlette, *, host: str = "127.0.0.1", port: int = 8990) -> None:
    """Run until interrupted (Ctrl-C)."""
    log.info("Atlassian simulator on http://%s:%d (admin endpoints under /_sim/)", host, port)
    _server(app, host, port, log_level="info").run()  # uvicorn says where it listens, and when it stops


@contextmanager
def running(app: Starlette | None = None, *, host: str = "127.0.0.1", port: int = 0,
            timeout: float = 10.0) -> Iterator[str]:
    """A real HTTP server for `app` (default: the example world) in a background thread.

    Yields the base URL (`http://127.0.0.1:<free port>`); stops the server on exit.
    """
    if app is None:
        app = build_app()
    server = _server(app, host, port)
    thread = threading.Thread(target=server.run, name="reconcile-sim", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the simulator did not start on {host}:{port} within {timeout} s")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)
