"""Run the shell of the CI examples, as the CI runner would, against `reconcile sim` and `desired/`.

The steps that talk to GitHub itself (`gh api`, artifacts, caches) cannot run here; the reconcile
steps run verbatim with `bash -eo pipefail` (GitHub's `shell: bash`), with GITHUB_OUTPUT and
GITHUB_STEP_SUMMARY files, and the digest taken from the comment the way reconcile-apply.yml does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconcile.render import COMMENT_MARKER

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (BIN / "reconcile").exists(), reason="the reconcile script is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def step(workflow: str, name: str) -> str:
    """The `run:` script of the step called `name` in an example workflow."""
    doc = YAML(typ="safe").load((ROOT / "examples" / workflow).read_text(encoding="utf-8"))
    for job in doc["jobs"].values():
        for s in job["steps"]:
            if s.get("name") == name:
                return str(s["run"])
    raise AssertionError(f"{workflow}: no step {name!r}")


@dataclass
class Runner:
    """A CI workspace: a copy of desired/ pointed at a running simulator."""

    workspace: Path
    env: dict[str, str]

    def run(self, script: str, **extra: str) -> tuple[int, dict[str, str], str]:
        """Run a step like GitHub's `shell: bash`; returns exit code, step outputs, summary."""
        output = self.workspace / "github_output"
        summary = self.workspace / "github_summary"
        output.write_text("")
        summary.write_text("")
        env = {**self.env, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), **extra}
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                              cwd=self.workspace, env=env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL, check=False)
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        return proc.returncode, outputs, summary.read_text() + proc.stdout + proc.stderr


@pytest.fixture
def ci(tmp_path: Path) -> Iterator[Runner]:
    port = _free_port()
    workspace = tmp_path / "workspace"
    (workspace / "desired").mkdir(parents=True)
    for f in (ROOT / "desired").glob("*.yaml"):
        text = f.read_text(encoding="utf-8").replace("http://127.0.0.1:8990", f"http://127.0.0.1:{port}")
        (workspace / "desired" / f.name).write_text(text, encoding="utf-8")
    env = {"PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(tmp_path),
           "RECONCILE_DESIRED": "desired", "CONFLUENCE_TOKEN": "example-admin-token", "LANG": "C.UTF-8"}
    log = (tmp_path / "sim.log").open("w")
    sim = subprocess.Popen([str(BIN / "reconcile"), "sim", "--port", str(port)], env=env,
                           stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if sim.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "sim.log").read_text()) from None
                time.sleep(0.1)
        yield Runner(workspace, env)
    finally:
        sim.terminate()
        sim.wait(10)
        log.close()


def _digest_from_comment(comment: str) -> str:
    # The same extraction as reconcile-apply.yml: the last `--approve <64 hex>` in our comment.
    found = re.findall(r"--approve ([0-9a-f]{64})", comment)
    return found[-1] if found else ""


def test_pull_request_plan_then_apply_on_merge(ci: Runner) -> None:
    code, outputs, _ = ci.run(step("github-actions/reconcile-plan.yml", "Validate the desired state"))
    assert code == 0
    code, outputs, log = ci.run(step("github-actions/reconcile-plan.yml", "Plan"))
    assert code == 0, log
    assert outputs["exitcode"] == "3"  # changes pending
    comment = (ci.workspace / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith(COMMENT_MARKER)
    assert "| **total** | **11** |" in comment
    assert "\x1b" not in comment
    digest = _digest_from_comment(comment)
    saved: dict[str, Any] = json.loads((ci.workspace / "plan.json").read_text(encoding="utf-8"))
    assert digest == saved["digest"]

    # After the merge: the reviewed artifact is applied with the digest from the comment.
    (ci.workspace / "reviewed").mkdir()
    shutil.copy(ci.workspace / "plan.json", ci.workspace / "reviewed" / "plan.json")
    apply_step = step("github-actions/reconcile-apply.yml", "Apply")
    code, _, log = ci.run(apply_step, DIGEST=digest, RECONCILE_OPERATOR="alice (pull request 7)")
    assert code == 0, log
    assert "11 done" in log and "The target now matches the desired state." in log
    audit = [json.loads(line) for line in (ci.workspace / ".reconcile" / "audit.jsonl").read_text().splitlines()]
    assert {entry.get("operator") for entry in audit} == {"alice (pull request 7)"}

    # Planning again on the next pull request: no changes, no artifact to apply.
    code, outputs, log = ci.run(step("github-actions/reconcile-plan.yml", "Plan"))
    assert code == 0 and outputs["exitcode"] == "0", log
    assert _digest_from_comment((ci.workspace / "comment.md").read_text(encoding="utf-8")) == ""


def test_a_stale_reviewed_plan_fails_loudly_and_changes_nothing(ci: Runner) -> None:
    code, outputs, log = ci.run(step("github-actions/reconcile-plan.yml", "Plan"))
    assert outputs["exitcode"] == "3", log
    digest = _digest_from_comment((ci.workspace / "comment.md").read_text(encoding="utf-8"))
    (ci.workspace / "reviewed").mkdir()
    shutil.copy(ci.workspace / "plan.json", ci.workspace / "reviewed" / "plan.json")
    # Another pull request merged first: teams.yaml now also wants rupert (who the plan disables).
    teams = ci.workspace / "desired" / "teams.yaml"
    teams.write_text(re.sub(r"^users:\n", "users:\n  rupert: {}\n", teams.read_text(), count=1, flags=re.M))
    code, _, log = ci.run(step("github-actions/reconcile-apply.yml", "Apply"), DIGEST=digest)
    assert code == 4, log
    assert "stale" in log and "desired state changed" in log
    # Nothing was attempted: the site still needs every other action of the reviewed plan.
    assert not (ci.workspace / ".reconcile" / "audit.jsonl").exists()
    code, outputs, log = ci.run(step("github-actions/reconcile-plan.yml", "Plan"))
    assert outputs["exitcode"] == "3", log
    assert "| **total** | **10** |" in (ci.workspace / "comment.md").read_text(encoding="utf-8")


def test_a_refused_plan_is_posted_with_its_reason_and_fails(ci: Runner) -> None:
    policy = ci.workspace / "desired" / "confluence.yaml"
    policy.write_text(re.sub(r"limits: \{[^}]*\}", "limits: {disable: 1}", policy.read_text()))
    code, outputs, log = ci.run(step("github-actions/reconcile-plan.yml", "Plan"))
    assert code == 0, log  # the step itself succeeds: the comment is posted, a later step fails the job
    assert outputs["exitcode"] == "4"
    comment = (ci.workspace / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith(f"{COMMENT_MARKER}\n## reconcile plan failed (exit 4)")
    assert "exceeds the limit" in comment
    assert not (ci.workspace / "plan.json").exists()  # nothing to upload, nothing to apply


def test_nightly_drift_reports_then_corrects_within_limits(ci: Runner) -> None:
    plan_step = step("nightly-drift.yml", "Plan")
    code, outputs, log = ci.run(plan_step)
    assert code == 0 and outputs["exitcode"] == "3", log
    assert "| **total** | **11** |" in log  # the Markdown plan in the job summary
    code, _, log = ci.run(step("nightly-drift.yml", "Correct the drift within the safety limits"),
                          RECONCILE_OPERATOR="nightly drift correction")
    assert code == 0, log
    code, outputs, log = ci.run(plan_step)
    assert code == 0 and outputs["exitcode"] == "0", log
    assert "No drift" in log
