"""Applies under injected faults converge exactly; a lost answer to a POST is settled by re-reading.

"Duplicated" is judged on what reached the simulator's handlers (its request log plus the resets
that happened after processing): a non-idempotent write (POST) must reach them at most once per
(path, body). Idempotent PUT/DELETE may be repeated by retries; the end state is what counts.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from reconcile.apply import make_plan
from reconcile.plan import ActionKind
from reconcile.targets.base import Outcome, Result
from tests.support.builders import NOW
from tests.support.desired import CLOUD, DC
from tests.support.faults import (
    FAULTS,
    NO_FAULTS,
    LostResponse,
    apply,
    apply_config,
    build_target,
    ctx_of,
    fake_time,
    faults,
    plan,
    state_of,
    world,
    writes,
)
from tests.support.simproc import NON_IDEMPOTENT, duplicated


@pytest.mark.slow
@pytest.mark.parametrize("target", [DC, CLOUD])
def test_apply_under_faults_converges_with_no_duplicated_write(tmp_path: Path, target: str) -> None:
    app = world(users=600, groups=20, memberships=2400)
    config = apply_config(tmp_path / "desired", app, target, changes=40, absent=4)
    transport = httpx.ASGITransport(app=app)
    fake = fake_time(app)
    ctx_of(app).log.entries.clear()
    faults(app, {**FAULTS, "burst_429_every": 25, "seed": 5})

    planned, result = asyncio.run(apply(config, transport, tmp_path / "state", fake))

    faults(app, NO_FAULTS)
    kinds = Counter(a.kind for a in planned.actions)
    assert kinds[ActionKind.ADD_MEMBER] > 0 and kinds[ActionKind.REMOVE_MEMBER] > 0
    assert kinds[ActionKind.DISABLE] == 4
    assert result.failures == (), [r.outcome.message for r in result.failures]
    assert {r.action.id for r in result.outcomes} == {a.id for a in planned.actions}
    residual = asyncio.run(plan(config, transport, fake))
    assert residual.actions == (), "a second plan after the apply must be empty"
    injected = Counter(e.note for e in ctx_of(app).log.entries if e.kind == "fault")
    assert injected["injected 5xx"] > 0 and injected["429 burst"] > 0, injected
    assert duplicated(writes(app), methods=NON_IDEMPOTENT) == {}


def _cloud_add_member(tmp_path: Path, *, delivered: bool) -> tuple[Outcome, list[str]]:
    """Plan one membership addition on Cloud and perform it, losing the answer to (or the request of)
    its first POST; returns the outcome and the simulator's log as "METHOD what" lines."""
    app = world(users=200, groups=8, memberships=400)
    config = apply_config(tmp_path / "desired", app, CLOUD, changes=1, absent=0)
    transport = LostResponse(httpx.ASGITransport(app=app), "POST", "/memberships", delivered=delivered)
    fake = fake_time(app)

    async def run() -> Outcome:
        target = build_target(config.target, transport, fake)
        try:
            _, planned = await make_plan(config, target, now=NOW)
            (action,) = [a for a in planned.actions if a.kind is ActionKind.ADD_MEMBER]
            ctx_of(app).log.entries.clear()
            outcome = await target.perform(action)
            groups = {g["name"]: g for g in state_of(app, CLOUD)["groups"].values()}
            assert action.subject.ref in groups[str(action.group)]["members"], "the membership exists"
            return outcome
        finally:
            await target.aclose()

    outcome = asyncio.run(run())
    assert transport.tripped == 1
    what = {True: "memberships", False: "search"}
    return outcome, [f"{e.method} {what['/memberships' in e.path]}" for e in ctx_of(app).log.entries]


@pytest.mark.parametrize("delivered", [True, False], ids=["answer-lost", "request-lost"])
def test_a_timeout_after_a_post_is_settled_by_re_reading(tmp_path: Path, delivered: bool) -> None:
    outcome, log = _cloud_add_member(tmp_path, delivered=delivered)

    assert outcome.result is Result.DONE, outcome.message
    if delivered:
        # it landed: the re-read (a users search) shows the membership, so the POST is not sent again
        assert log == ["POST memberships", "POST search"], log
        assert "confirmed by re-reading" in outcome.message
    else:
        # it never arrived: the re-read shows no membership, so it is sent again, and lands once
        assert log == ["POST search", "POST memberships"], log
