"""Shared by the fault-injection tests: a generated simulator world in-process, a desired directory for
it, and plan/apply through the real targets over httpx.ASGITransport (no sockets).

`LostResponse` is a fault of the network, not of the server: the request reaches the simulator (or
not), and the client gets a timeout instead of the answer. Time is a fake clock shared by the
simulator and the targets (`fake_time`): backoff and 429 pauses cost no real waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from reconcile.apply import ApplyResult, execute, make_plan, prepare_fresh
from reconcile.config import load
from reconcile.journal import ApprovalMode, AuditContext, AuditLog
from reconcile.plan import Plan
from reconcile.settings import AtlassianCloudSettings, Config, ConfluenceDcSettings, TargetSettings
from reconcile.sim.context import SimContext
from reconcile.sim.server import SimOptions, configured_app
from reconcile.targets.atlassian_cloud import AtlassianCloudTarget
from reconcile.targets.base import Target
from reconcile.targets.confluence_dc import ConfluenceDcTarget
from tests.support import desired
from tests.support.builders import NOW
from tests.support.fake_clock import FakeClock
from tests.support.simproc import Write, writes_of

# SPEC §11: 5% 5xx, 1% connection resets, 429 bursts (2 every 60 requests, Retry-After: 1).
FAULTS: dict[str, Any] = {"error_rate": 0.05, "reset_rate": 0.01, "burst_429_every": 60,
                          "burst_429_length": 2, "burst_retry_after": 1}
NO_FAULTS: dict[str, Any] = {"error_rate": 0.0, "reset_rate": 0.0, "burst_429_every": 0, "burst_429_length": 0}


def world(users: int = 2000, groups: int = 40, memberships: int = 8000, seed: int = 7) -> Starlette:
    """A generated world (Confluence DC and Cloud) served in-process."""
    return configured_app(SimOptions(users=users, groups=groups, memberships=memberships, seed=seed))


def ctx_of(app: Starlette) -> SimContext:
    ctx: SimContext = app.state.ctx
    return ctx


def fake_time(app: Starlette) -> FakeClock:
    """A fake clock that the simulator reads too (rate-limit buckets, long tasks, websudo)."""
    fake = FakeClock()
    ctx = ctx_of(app)
    ctx.clock, ctx.wall = fake.monotonic, fake.wall
    return fake


def build_target(config: TargetSettings, transport: httpx.AsyncBaseTransport, fake: FakeClock) -> Target:
    """The configured HTTP target (as targets/factory.py builds it) with its time on `fake`."""
    if isinstance(config, ConfluenceDcSettings):
        return ConfluenceDcTarget(config, transport=transport, clock=fake.clock())
    assert isinstance(config, AtlassianCloudSettings)
    return AtlassianCloudTarget(config, transport=transport, clock=fake.clock())


def faults(app: Starlette, changes: dict[str, Any]) -> None:
    ctx = ctx_of(app)
    ctx.apply_settings(ctx.settings.updated(changes))


def state_of(app: Starlette, target: str) -> dict[str, Any]:
    ctx = ctx_of(app)
    ctx.tick()
    if target == desired.DC:
        return ctx.dc.to_json()
    assert ctx.cloud is not None
    return ctx.cloud.to_json()


def configure(directory: Path, app: Starlette, target: str, people: Sequence[desired.Person],
              groups: Sequence[str], **kwargs: Any) -> Config:
    # An in-process app: the "http://" URL never leaves the process, hence insecure: true.
    want = desired.write(directory, target, "http://sim.test", people, groups, insecure=True, **kwargs)
    return load(want.directory, env=want.env)


def drifted_config(directory: Path, app: Starlette, target: str) -> Config:
    people, groups = desired.people_of(state_of(app, target), target)
    return configure(directory, app, target, desired.drifted(people, groups), groups)


def apply_config(directory: Path, app: Starlette, target: str, changes: int = 60, absent: int = 4) -> Config:
    """Membership changes on internal groups plus a few absent users (DC: internal directory only)."""
    state = state_of(app, target)
    people, groups = desired.people_of(state, target)
    changed = desired.membership_changes(people, groups, changes)
    if target == desired.DC:
        movable = [u["username"] for u in state["users"]
                   if u["directory"] == "Confluence Internal Directory" and u["active"] and not u["unsynced"]]
    else:
        movable = [a for a, u in state["users"].items() if u["status"] == "active"]
    changed = desired.without(changed, absent, only=movable[-50:])
    return configure(directory, app, target, changed, groups,
                     limits={"add_member": changes, "remove_member": changes, "disable": absent})


async def plan(config: Config, transport: httpx.AsyncBaseTransport, fake: FakeClock) -> Plan:
    target = build_target(config.target, transport, fake)
    try:
        _, result = await make_plan(config, target, now=NOW)
        return result
    finally:
        await target.aclose()


async def apply(config: Config, transport: httpx.AsyncBaseTransport, state_dir: Path,
                fake: FakeClock) -> tuple[Plan, ApplyResult]:
    """Plan and execute every action (what `apply --auto-approve` does, minus the residual check)."""
    target = build_target(config.target, transport, fake)
    try:
        wanted, result = await make_plan(config, target, now=NOW)
        context = AuditContext(operator="test", approval=ApprovalMode.AUTO, plan_digest=result.digest,
                               target=result.target)
        applied = await execute(prepare_fresh(result, wanted), target, state_dir=state_dir,
                                audit=AuditLog(state_dir / "audit.jsonl"), context=context)
        return result, applied
    finally:
        await target.aclose()


def writes(app: Starlette) -> list[Write]:
    return writes_of(e.to_json() for e in ctx_of(app).log.entries)


@dataclass
class LostResponse(httpx.AsyncBaseTransport):
    """For the first request matching (`method`, `path_part`), the client gets a ReadTimeout.

    `delivered=True`: the simulator received and acted on it (the answer was lost);
    `delivered=False`: it never arrived. Every other request passes through.
    """

    inner: httpx.AsyncBaseTransport
    method: str
    path_part: str
    delivered: bool = True
    tripped: int = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        hit = request.method == self.method and self.path_part in request.url.path and not self.tripped
        if not hit:
            return await self.inner.handle_async_request(request)
        self.tripped += 1
        if self.delivered:
            response = await self.inner.handle_async_request(request)
            await response.aread()
        raise httpx.ReadTimeout("simulated: no response within the read timeout", request=request)
