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
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (BIN / "reconcile").exists(), reason="the reconcile script is not installed"),
]


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
    port = free_port()
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


NOTHING_LEFT = "Nothing left to change, but"


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
    assert "11 done" in log and NOTHING_LEFT in log  # the example world keeps its warnings
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


def test_strict_fails_the_pull_request_check_on_warnings(ci: Runner) -> None:
    # The commented `RECONCILE_STRICT: "true"` of reconcile-plan.yml, switched on: the example world
    # warns (quentin has no account; a read-only group; the protected admin).
    workflow = (ROOT / "examples" / "github-actions" / "reconcile-plan.yml").read_text(encoding="utf-8")
    assert '# RECONCILE_STRICT: "true"' in workflow
    code, outputs, log = ci.run(step("github-actions/reconcile-plan.yml", "Plan"), RECONCILE_STRICT="true")
    assert code == 0, log  # the comment is posted; a later step fails the job
    assert outputs["exitcode"] == "1"
    comment = (ci.workspace / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith(f"{COMMENT_MARKER}\n## reconcile plan failed (exit 1)")
    assert "--strict: the plan has" in comment and "missing_user: quentin" in comment
    assert "| **total** | **11** |" in comment  # the plan itself is still shown for review
    assert not (ci.workspace / "plan.json").exists()  # nothing to upload, nothing to apply


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


# ------------------------------------------------------------------------------------------ GitLab


class GitLab:
    """The few GitLab REST v4 routes the .gitlab-ci.yml scripts call, served on a loopback port."""

    def __init__(self, artifact_dir: Path) -> None:
        self.notes: list[dict[str, Any]] = []
        self.artifact_dir = artifact_dir
        self.head = "c0ffee" * 6 + "abcd"
        self.requests: list[tuple[str, str]] = []
        self.tokens: set[str] = set()

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        self.requests.append((method, path))
        route = path.split("?", 1)[0].removeprefix("/api/v4/projects/42")
        notes = "/merge_requests/7/notes"
        if method == "GET" and route == notes:
            return 200, json.dumps(self.notes).encode()
        if method == "POST" and route == notes:
            note = {"id": 1000 + len(self.notes), "body": json.loads(body)["body"]}
            self.notes.append(note)
            return 201, json.dumps(note).encode()
        if method == "PUT" and route.startswith(notes + "/"):
            note = next(n for n in self.notes if str(n["id"]) == route.rsplit("/", 1)[1])
            note["body"] = json.loads(body)["body"]
            return 200, json.dumps(note).encode()
        if method == "GET" and route == f"/repository/commits/{'m' * 40}/merge_requests":
            return 200, json.dumps([{"iid": 7, "state": "merged", "sha": self.head}]).encode()
        if method == "GET" and route == "/merge_requests/7/pipelines":
            return 200, json.dumps([{"id": 99, "sha": self.head}, {"id": 98, "sha": "old"}]).encode()
        if method == "GET" and route == "/pipelines/99/jobs":
            return 200, json.dumps([{"id": 555, "name": "reconcile:plan"}]).encode()
        if method == "GET" and route == "/jobs/555/artifacts/plan.json":
            return 200, (self.artifact_dir / "plan.json").read_bytes()
        return 404, b'{"message": "404 Not Found"}'


@pytest.fixture
def gitlab(tmp_path: Path) -> Iterator[tuple[GitLab, str]]:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    api = GitLab(tmp_path / "artifacts")

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            api.tokens.add(self.headers.get("PRIVATE-TOKEN", ""))
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, payload = api.handle(self.command, self.path, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield api, f"http://127.0.0.1:{server.server_address[1]}/api/v4"
    server.shutdown()
    server.server_close()


def gitlab_script(job: str) -> str:
    doc = YAML(typ="safe").load((ROOT / "examples" / "gitlab-ci" / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    return "\n".join(str(line) for line in doc[job]["script"])


def test_gitlab_merge_request_note_then_apply(ci: Runner, gitlab: tuple[GitLab, str]) -> None:
    api, url = gitlab
    env = {"CI_API_V4_URL": url, "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7",
           "RECONCILE_GITLAB_TOKEN": "glpat-test-token", "CONFLUENCE_PLAN_TOKEN": "example-admin-token"}
    plan = gitlab_script("reconcile:plan")
    code, _, log = ci.run(plan, **env)
    assert code == 0, log
    code, _, log = ci.run(plan, **env)  # a second push edits the same note
    assert code == 0, log
    assert len(api.notes) == 1 and api.notes[0]["body"].startswith(COMMENT_MARKER)
    assert [m for m, _ in api.requests].count("POST") == 1 and [m for m, _ in api.requests].count("PUT") == 1
    assert api.tokens == {"glpat-test-token"}

    # The merge: the apply job finds the MR, the digest in its note and the plan artifact.
    artifacts = api.artifact_dir
    artifacts.mkdir()
    shutil.copy(ci.workspace / "plan.json", artifacts / "plan.json")
    code, _, log = ci.run(gitlab_script("reconcile:apply"), **env, CI_COMMIT_SHA="m" * 40,
                          CONFLUENCE_WRITE_TOKEN="example-admin-token", RECONCILE_OPERATOR="bob")
    assert code == 0, log
    assert "11 done" in log and NOTHING_LEFT in log  # the example world keeps its warnings

    # A refused plan (an empty desired state) is posted in the note and fails the job.
    teams = ci.workspace / "desired" / "teams.yaml"
    teams.write_text("version: 1\n")
    code, _, log = ci.run(plan, **env)
    assert code != 0
    assert api.notes[0]["body"].startswith(f"{COMMENT_MARKER}\n## reconcile plan failed (exit 4)")
    assert "the desired state has no users" in api.notes[0]["body"]
