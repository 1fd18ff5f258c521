"""Plans under injected faults (5% 5xx, 1% connection resets, 429 bursts) equal the fault-free plans."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support.desired import CLOUD, DC
from tests.support.faults import FAULTS, NO_FAULTS, ctx_of, drifted_config, fake_time, faults, plan, world


@pytest.mark.slow
@pytest.mark.parametrize("target", [DC, CLOUD])
def test_plan_under_faults_has_the_fault_free_digest(tmp_path: Path, target: str) -> None:
    app = world()
    config = drifted_config(tmp_path / "desired", app, target)
    transport = httpx.ASGITransport(app=app)
    fake = fake_time(app)
    clean = asyncio.run(plan(config, transport, fake))
    assert clean.actions, "the drifted desired state must give the planner work"
    requests = sum(ctx_of(app).log.counts.values())
    bursts = {"burst_429_every": max(10, requests // 2)}  # two bursts per plan, whatever the target

    seen: Counter[str] = Counter()
    for runs, seed in enumerate(range(11, 19), 1):  # at least two runs, until every kind of fault happened
        ctx_of(app).log.entries.clear()
        faults(app, {**FAULTS, **bursts, "seed": seed})
        faulty = asyncio.run(plan(config, transport, fake))
        faults(app, NO_FAULTS)
        seen.update(e.note for e in ctx_of(app).log.entries if e.kind == "fault")
        assert faulty.digest == clean.digest, f"seed {seed}: the plan changed under faults"
        assert faulty.actions == clean.actions
        resets = seen["reset before processing"] + seen["reset after processing"]
        if runs >= 2 and seen["injected 5xx"] and seen["429 burst"] and resets:
            break

    assert seen["injected 5xx"] > 0 and seen["429 burst"] > 0, seen
    assert seen["reset before processing"] + seen["reset after processing"] > 0, seen
    assert fake.sleeps, "retries and 429 pauses waited on the fake clock"
