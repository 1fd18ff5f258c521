"""Planning reads the desired state while the actual state is fetched; errors stay those of a desired-first read."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from reconcile import config as config_module
from reconcile.apply import make_plan
from reconcile.errors import SourceError
from reconcile.settings import Config
from tests.support.builders import NOW
from tests.support.dc import ADMIN_TOKEN, URL, DcSim, run

WORLD = """
confluence_dc:
  version: "9.4"
  groups: [{name: confluence-administrators}, {name: confluence-users}, {name: team-docs}]
  users:
    - {username: admin, tokens: [pat-admin-7f3e9c], groups: [confluence-administrators, confluence-users]}
    - {username: alice, email: alice@example.com, groups: [confluence-users, team-docs]}
sim:
  latency_ms: 5
"""


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: str) -> Config:
    monkeypatch.setenv("CONFLUENCE_TOKEN", ADMIN_TOKEN)
    (tmp_path / "desired.csv").write_text("User id,email,User status,Group name\n" + rows, encoding="utf-8")
    (tmp_path / "reconcile.yaml").write_text(
        f"version: 1\ntarget:\n  type: confluence-dc\n  url: {URL}\n  insecure: true\n"
        "  auth:\n    token: ${CONFLUENCE_TOKEN}\n"
        "sources:\n  hr:\n    type: csv\n    path: desired.csv\nscope:\n  users: [\"*\"]\n  groups: [\"team-*\"]\n",
        encoding="utf-8")
    return config_module.load(tmp_path)


def _slow_desired(sim: DcSim, *, requests: int, then: BaseException) -> Any:
    """A desired read that lasts until the fetch has sent `requests` requests, then fails with `then`."""

    async def gather(config: Config, **_: Any) -> Any:
        deadline = time.monotonic() + 10
        while len(sim.sent()) < requests:
            if time.monotonic() > deadline:
                raise AssertionError("the fetch made no progress while the desired state was read")
            await asyncio.sleep(0.005)
        raise then

    return gather


def test_the_fetch_runs_while_the_desired_state_is_read_and_a_desired_error_stops_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = DcSim.from_yaml(WORLD)
    config = _config(tmp_path, monkeypatch, "admin,,Active,\n")
    monkeypatch.setattr("reconcile.desired.gather_desired",
                        _slow_desired(sim, requests=3, then=SourceError("desired.csv:2: a bad row")))
    target = sim.target()

    async def go() -> tuple[int, int, str]:
        try:
            await make_plan(config, target, now=NOW)
        except SourceError as exc:
            at_error = len(sim.sent())
            others = asyncio.all_tasks() - {asyncio.current_task()}
            await asyncio.gather(*others, return_exceptions=True)  # whatever was left running may finish
            return at_error, len(sim.sent()), str(exc)
        raise AssertionError("the plan succeeded with a bad desired state")

    at_error, later, message = run(go())
    assert at_error >= 3  # the target was read while the desired state was: the reads overlapped
    assert later == at_error  # the error cancelled the fetch: no request after it
    assert message == "desired.csv:2: a bad row"


def test_a_desired_error_wins_over_a_fetch_error_that_came_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = DcSim.from_yaml(WORLD)
    config = _config(tmp_path, monkeypatch, "admin,,Active,\n")
    # The revoked token fails the fetch on its first request; the desired read fails after that.
    monkeypatch.setattr("reconcile.desired.gather_desired",
                        _slow_desired(sim, requests=1, then=SourceError("desired.csv:2: a bad row")))
    with pytest.raises(SourceError, match="a bad row"):
        run(make_plan(config, sim.target(token="pat-that-was-revoked"), now=NOW))


def test_a_bad_desired_file_and_a_refused_token_give_the_desired_files_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = DcSim.from_yaml(WORLD)
    config = _config(tmp_path, monkeypatch, "admin,,Active,\nalice,alice@example.com,Sleeping,team-docs\n")
    with pytest.raises(SourceError) as err:
        run(make_plan(config, sim.target(token="pat-that-was-revoked"), now=NOW))
    assert "desired.csv:3: unknown user status 'Sleeping'" in str(err.value)


def test_a_good_desired_state_and_a_refused_token_give_the_fetch_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconcile.errors import AuthError

    sim = DcSim.from_yaml(WORLD)
    config = _config(tmp_path, monkeypatch, "admin,,Active,\nalice,alice@example.com,Active,team-docs\n")
    with pytest.raises(AuthError, match="anonymous"):
        run(make_plan(config, sim.target(token="pat-that-was-revoked"), now=NOW))


def test_no_full_collection_starts_while_the_desired_state_is_read_and_the_target_fetched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full collection started by either thread stops both: paused for the overlap, restored after."""
    import gc
    import sys

    from reconcile.apply import OVERLAP_SWITCH
    from reconcile.collector import PAUSED
    from reconcile.desired import gather_desired

    sim = DcSim.from_yaml(WORLD)
    config = _config(tmp_path, monkeypatch, "admin,,Active,\n")
    seen: dict[str, float] = {}
    target = sim.target()
    fetch = target.fetch

    async def desired(config: Config, **kwargs: Any) -> Any:
        seen["desired"] = gc.get_threshold()[2]
        seen["switch"] = sys.getswitchinterval()
        return await gather_desired(config, **kwargs)

    async def fetched(*args: Any, **kwargs: Any) -> Any:
        seen["fetch"] = gc.get_threshold()[2]
        return await fetch(*args, **kwargs)

    monkeypatch.setattr("reconcile.desired.gather_desired", desired)
    monkeypatch.setattr(target, "fetch", fetched)
    before, switch = gc.get_threshold(), sys.getswitchinterval()
    run(make_plan(config, target, now=NOW))
    # and the GIL changes hands often while the read's thread runs (the loop thread waits less for it)
    assert seen == {"desired": PAUSED, "fetch": PAUSED, "switch": OVERLAP_SWITCH}
    assert switch > OVERLAP_SWITCH
    assert (gc.get_threshold(), sys.getswitchinterval()) == (before, switch)


def test_the_desired_digest_is_computed_in_the_reading_thread_and_is_the_one_diff_computes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """~0.8 s at 100,000 users: computed while the target is fetched, not after; a plan given its desired state
    (apply's fresh plan) computes it in diff, and both give the same digest (else every apply would be stale)."""
    import threading

    from reconcile import apply as apply_module
    from reconcile.digest import desired_digest

    sim = DcSim.from_yaml(WORLD)
    config = _config(tmp_path, monkeypatch, "admin,,Active,\nalice,alice@example.com,Active,team-docs\n")
    threads: list[str] = []

    def recorded(*args: Any) -> str:
        threads.append(threading.current_thread().name)
        return desired_digest(*args)

    monkeypatch.setattr(apply_module, "desired_digest", recorded)
    desired, plan = run(make_plan(config, sim.target(), now=NOW))
    assert len(threads) == 1 and threads[0] != threading.main_thread().name
    _, again = run(make_plan(config, sim.target(), now=NOW, desired=desired))
    assert len(threads) == 1  # given the desired state, the planner computed it itself
    assert plan.desired_digest == again.desired_digest == desired_digest(desired, config.scope, config.policy)
