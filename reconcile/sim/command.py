"""The `reconcile sim` command: its options and help. cli.py registers `sim` as a typer command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from reconcile.sim.scim.world import SCIM_TOKEN
from reconcile.sim.server import SimOptions, configured_app, serve


def sim(  # noqa: PLR0917 - typer maps each parameter to an option
    scenario: Annotated[Path | None, typer.Option(
        "--scenario", help="Scenario YAML (default: the packaged example world).",
        exists=True, dir_okay=False, readable=True)] = None,
    port: Annotated[int, typer.Option("--port", help="TCP port to listen on.")] = 8990,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (keep it on loopback).")] = "127.0.0.1",
    users: Annotated[int | None, typer.Option(
        "--users", help="Generate a world of this many users instead of reading a scenario.")] = None,
    groups: Annotated[int, typer.Option("--groups", help="Groups in a generated world.")] = 200,
    memberships: Annotated[int | None, typer.Option(
        "--memberships", help="Memberships in a generated world (default: 4 per user).")] = None,
    generate_cloud: Annotated[bool, typer.Option(
        "--generate-cloud/--no-generate-cloud",
        help="With --users: also generate an Atlassian Cloud organization of that size (else the scenario's).")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generator and of the fault dice.")] = 1,
    dc_version: Annotated[str | None, typer.Option(
        "--dc-version", help="Confluence DC version to behave like, e.g. 8.4 (no email/lastLogin) or 9.4.")] = None,
    latency_ms: Annotated[float | None, typer.Option(
        "--latency-ms", help="Delay added to every API request.")] = None,
    fault_5xx: Annotated[float | None, typer.Option(
        "--fault-5xx", help="Probability (0..1) that a request gets a 500/502/503.")] = None,
    fault_reset: Annotated[float | None, typer.Option(
        "--fault-reset", help="Probability (0..1) that the connection is dropped.")] = None,
    burst_429_every: Annotated[int | None, typer.Option(
        "--burst-429-every", help="After every N requests, send a burst of 429s.")] = None,
    burst_429_length: Annotated[int | None, typer.Option("--burst-429-length", help="429s per burst.")] = None,
    rate_limit: Annotated[float | None, typer.Option(
        "--rate-limit", help="Token-bucket limit in requests per second per credential (0: off).")] = None,
    delete_seconds: Annotated[float | None, typer.Option(
        "--delete-seconds", help="How long each Confluence DC user deletion task runs.")] = None,
    scim_users: Annotated[int | None, typer.Option(
        "--scim-users", help="Serve a generated SCIM 2.0 directory of this many users under /scim/v2 (with --groups, "
        "--memberships, --seed).")] = None,
    scim_directory: Annotated[Path | None, typer.Option(
        "--scim-directory", help="Serve this SCIM directory (JSON: users, groups) under /scim/v2.",
        exists=True, dir_okay=False, readable=True)] = None,
    scim_token: Annotated[str, typer.Option(
        "--scim-token", help="The SCIM directory's bearer token.")] = SCIM_TOKEN,
    instance: Annotated[str, typer.Option(
        "--instance", help="A label GET /_sim/stats echoes (with the pid): lets a script check it reached "
        "the simulator it started.")] = "",
) -> None:
    """Run the local Atlassian simulator: Confluence Data Center and Atlassian Cloud APIs on one port.

    Same paths, status codes, envelopes, pagination caps, long-running deletions, unsynced users,
    read-only directories, rate-limit headers and quirks as the real services, plus admin endpoints
    under /_sim/ (state, log, faults, mutate). Stop it with Ctrl-C.

    The example world's administrator token is `example-admin-token`; a generated world's is
    `sim-admin-token` (user `admin`, password `admin`).

    Examples:

      reconcile sim                                   # the example world on http://127.0.0.1:8990

      CONFLUENCE_TOKEN=example-admin-token reconcile plan --desired desired

      reconcile sim --users 100000 --groups 2000 --memberships 400000 --seed 1 --latency-ms 25

      reconcile sim --scim-users 100000 --groups 2000 --latency-ms 25   # SCIM 2.0 under /scim/v2

      reconcile sim --fault-5xx 0.05 --fault-reset 0.01 --burst-429-every 200 --burst-429-length 5

      curl -X PUT localhost:8990/_sim/faults -d '{"latency_ms": 50, "rate_limit": 100}'
    """
    overrides: dict[str, Any] = {}
    if latency_ms is not None:
        overrides["latency_ms"] = latency_ms
    if fault_5xx is not None:
        overrides["error_rate"] = fault_5xx
    if fault_reset is not None:
        overrides["reset_rate"] = fault_reset
    if burst_429_every is not None:
        overrides["burst_429_every"] = burst_429_every
        overrides.setdefault("burst_429_length", 3)
    if burst_429_length is not None:
        overrides["burst_429_length"] = burst_429_length
    if rate_limit is not None:
        overrides["rate_limit"] = rate_limit
    if fault_5xx is not None or fault_reset is not None or burst_429_every is not None:
        overrides["seed"] = seed
    options = SimOptions(scenario=scenario, users=users, groups=groups, memberships=memberships, seed=seed,
                         dc_version=dc_version, delete_seconds=delete_seconds, cloud=generate_cloud,
                         overrides=overrides, instance=instance, scim_users=scim_users,
                         scim_directory=scim_directory, scim_token=scim_token)
    serve(configured_app(options), host=host, port=port)
