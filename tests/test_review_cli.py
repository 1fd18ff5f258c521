"""Review findings through the real command line (a subprocess), on the file-backed memory target.

Bad input must give one clear message and the right exit code, never a traceback or an "internal
error", and never a partial apply (SPEC §5, §8, §11). The findings in cli/apply (a binary plan file,
an unwritable audit log, unusable output paths) were strict xfails until their owner fixed them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.apply import WORLD, read_world, write_desired, write_world


@dataclass
class Cli:
    tmp: Path
    desired: Path
    world: Path

    def __call__(self, *args: str, desired: Path | None = None) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "reconcile.cli", "--desired", str(desired or self.desired),
                   "--state-dir", str(self.tmp / "state"), *args]
        return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "NO_COLOR": "1"}, stdin=subprocess.DEVNULL)

    def unchanged(self) -> bool:
        return read_world(self.world) == WORLD


def clean(done: subprocess.CompletedProcess[str]) -> str:
    """stderr, after checking it is one clear message: no traceback, no internal error."""
    assert "Traceback" not in done.stderr, done.stderr
    assert "internal error" not in done.stderr, done.stderr
    return done.stderr


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    world = write_world(tmp_path / "world.json")
    return Cli(tmp_path, write_desired(tmp_path / "desired", world), world)


def test_a_source_of_only_out_of_scope_users_is_refused_even_with_force(cli: Cli) -> None:
    # The CSV export of the wrong organization: 2 users, none of them *@example.com. Before the
    # fix, `--force` (which lifts only limits) disabled every in-scope user the source should list.
    export = cli.tmp / "export.csv"
    export.write_text("User id,User name,Email,User status,Group name\n"
                      ",Xavier,xavier@other.org,Active,\n,Yolanda,yolanda@other.org,Active,\n")
    (cli.desired / "sources.yaml").write_text(f"sources:\n  hr:\n    type: csv\n    path: {export}\n"
                                              "policy:\n  absent: disable\n")
    for args in (("plan", "--force"), ("apply", "--auto-approve", "--force")):
        done = cli(*args)
        assert done.returncode == 4, done.stderr
        message = clean(done)
        assert "source 'hr' returned 2 users, none of them in scope" in message
        assert "--force does not lift" in message
    assert cli.unchanged()


def test_an_edited_plan_file_is_refused_with_what_to_do(cli: Cli) -> None:
    plan_file = cli.tmp / "plan.json"
    assert cli("plan", "--out", str(plan_file)).returncode == 0
    data = json.loads(plan_file.read_text())
    digest = data["digest"]
    data["actions"][0]["subject"]["identity"] = "admin"
    plan_file.write_text(json.dumps(data))
    done = cli("apply", str(plan_file), "--approve", digest)
    assert done.returncode == 1
    message = clean(done)
    assert "edited" in message and "reconcile plan --out" in message and "desired state" not in message
    assert cli.unchanged()


def test_a_plan_for_another_target_is_stale_and_changes_nothing(cli: Cli) -> None:
    plan_file = cli.tmp / "plan.json"
    assert cli("plan", "--out", str(plan_file)).returncode == 0
    other = write_world(cli.tmp / "other.json")
    elsewhere = write_desired(cli.tmp / "elsewhere", other)
    done = cli("apply", str(plan_file), "--auto-approve", desired=elsewhere)
    # the plan records the desired directory it was planned from: another one is refused by name
    assert done.returncode == 2
    assert f"is not the desired directory {cli.desired}" in clean(done)
    assert cli.unchanged() and read_world(other) == WORLD


def test_a_binary_plan_file_is_one_clear_error(cli: Cli) -> None:
    plan_file = cli.tmp / "plan.json"
    plan_file.write_bytes(b"\xff\xfe\x00garbage")
    done = cli("show", str(plan_file))
    assert done.returncode in (1, 2)
    assert "plan.json" in clean(done)


def test_an_unwritable_audit_log_changes_nothing(cli: Cli) -> None:
    blocker = cli.tmp / "not-a-directory"
    blocker.write_text("")
    done = cli("apply", "--auto-approve", "--audit-log", str(blocker / "audit.jsonl"))
    assert done.returncode == 1
    assert "audit" in clean(done)
    assert cli.unchanged(), "an action was performed that the audit log does not record"


@pytest.mark.parametrize("args", [("--state-dir", "{blocker}", "apply", "--auto-approve"),
                                  ("plan", "--out", "{blocker}/plan.json"),
                                  ("export", "--out", "{blocker}/export.yaml")])
def test_an_unusable_output_path_is_one_clear_error(cli: Cli, args: tuple[str, ...]) -> None:
    blocker = cli.tmp / "not-a-directory"
    blocker.write_text("")
    argv = [a.format(blocker=blocker) for a in args]
    if argv[0] == "--state-dir":
        command = [sys.executable, "-m", "reconcile.cli", "--desired", str(cli.desired), *argv]
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})
    else:
        done = cli(*argv)
    assert done.returncode == 1
    assert str(blocker) in clean(done)
    assert cli.unchanged()


def test_dc_disabled_account_with_a_hidden_email_is_not_deleted_as_absent(tmp_path: Path) -> None:
    # The example world is Confluence DC 9.4: the disabled zoe and yusuf have emails on the site,
    # but the API shows emails only for licensed active users. The desired state names them by
    # email; before the fix `absent: delete` deleted both accounts it wants kept.
    from reconcile.sim.app import build_app
    from reconcile.sim.server import running

    token = "review-hidden-email-token"
    app = build_app()
    dc = app.state.ctx.dc
    dc.tokens[token] = dc.by_username["admin"]
    desired = tmp_path / "desired"
    desired.mkdir()
    with running(app) as url:
        (desired / "site.yaml").write_text(
            "version: 1\ntarget:\n  type: confluence-dc\n  url: " + url + "\n  auth:\n    token: ${TOKEN}\n"
            "scope:\n  users: ['*']\n  groups: ['team-*']\n  protect: [admin, 'svc-*']\n"
            "policy:\n  absent: delete\n  limits: {delete: 100, remove_member: 100}\n"
            "users:\n  zoe@example.com: {}\n  yusuf@example.com: {status: disabled}\n  rupert: {}\n")
        command = [sys.executable, "-m", "reconcile.cli", "--desired", str(desired), "--state-dir",
                   str(tmp_path / "state"), "plan", "--format", "json"]
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "TOKEN": token, "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    deleted = {a["subject"]["identity"] for a in plan["actions"] if a["kind"] == "delete"}
    assert "sybil" in deleted and "alice" in deleted, "absent users with a known email are still deleted"
    assert not deleted & {"zoe", "yusuf"}
    assert {(w["kind"], w["subject"]) for w in plan["warnings"]} >= {("ambiguous", "zoe"), ("ambiguous", "yusuf")}
