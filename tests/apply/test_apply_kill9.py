"""A real `kill -9` of `reconcile apply` mid-flight, then the same apply again: converged, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconcile.plan import Plan
from tests.support.apply import read_world, world, write_world

ROOT = Path(__file__).resolve().parents[2]
EXTRA = 10  # users k0..k9, each to be added to team-eng: a phase long enough to be cut in the middle


def setup_world(tmp: Path) -> tuple[Path, Path]:
    data = world()
    for i in range(EXTRA):
        data["users"].append({"ref": f"u-k{i}", "username": f"k{i}", "email": f"k{i}@example.com"})
    state = write_world(tmp / "world.json", data)
    desired = tmp / "desired"
    desired.mkdir()
    users = "".join(f"  k{i}@example.com:\n    groups: [team-eng]\n" for i in range(EXTRA))
    (desired / "reconcile.yaml").write_text(
        f"version: 1\ntarget:\n  type: memory\n  state: {state}\n  delay: 0.15\n"
        'scope:\n  users: ["*@example.com"]\n  groups: ["team-*"]\n'
        "policy:\n  limits: {add_member: 100, disable: 100, remove_member: 100}\n"
        "users:\n  alice@example.com:\n    groups: [team-eng]\n  bob@example.com:\n    groups: [team-eng]\n"
        "  carol@example.com:\n    groups: [team-docs]\n  erin@example.com: {}\n" + users
    )
    return state, desired


def reconcile(tmp: Path, desired: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "reconcile.cli", "--desired", str(desired),
            "--state-dir", str(tmp / "state"), *args]


def started_lines(journal: Path) -> int:
    try:
        return journal.read_text().count('"event": "started"')
    except FileNotFoundError:
        return 0


@pytest.mark.slow
@pytest.mark.kill
@pytest.mark.parametrize("kill_after_started", [1, 4, 9, 14])
def test_kill9_then_same_apply_converges_without_repeating(tmp_path: Path, kill_after_started: int) -> None:
    state, desired = setup_world(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    planned = subprocess.run(reconcile(tmp_path, desired, "plan", "--out", str(tmp_path / "plan.json")),
                             env=env, capture_output=True, text=True, check=False)
    assert planned.returncode == 0, planned.stderr
    plan = Plan.loads((tmp_path / "plan.json").read_text())
    assert len(plan.actions) == 5 + EXTRA
    apply_cmd = reconcile(tmp_path, desired, "apply", str(tmp_path / "plan.json"), "--approve", plan.digest)
    journal = tmp_path / "state" / "journal" / f"{plan.digest}.jsonl"

    victim = subprocess.Popen(apply_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while started_lines(journal) < kill_after_started and victim.poll() is None:
        assert time.monotonic() < deadline, "apply never started"
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, "the apply finished before it could be killed"
    performed_before = len(read_world(state).get("log", []))
    assert performed_before < len(plan.actions)

    resumed = subprocess.run(apply_cmd, env=env, capture_output=True, text=True, check=False)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    log = [(e["kind"], e["ref"], e["group"]) for e in read_world(state)["log"]]
    assert sorted(log) == sorted((str(a.kind), a.subject.ref, a.group) for a in plan.actions), \
        "every action performed exactly once"
    events = [json.loads(line) for line in journal.read_text().splitlines() if line.endswith("}")]
    finished = {e["id"] for e in events if e["event"] in ("done", "already")}
    assert finished == {a.id for a in plan.actions}
    check = subprocess.run(reconcile(tmp_path, desired, "plan", "--detailed-exitcode"),
                           env=env, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
