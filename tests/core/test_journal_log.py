"""The journal tells finished / in-flight / failed actions apart; the audit log holds who, how, what."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest

from reconcile.errors import ReconcileError
from reconcile.journal import (
    ApprovalMode,
    AuditContext,
    AuditLog,
    Journal,
    apply_lock,
    operator_from_env,
)
from reconcile.plan import Action, ActionKind, Subject
from reconcile.targets.base import Outcome, Result


def action(kind: ActionKind, who: str, group: str | None = None) -> Action:
    return Action(kind, Subject(f"{who}@example.com", f"u-{who}"), group=group)


ADD = action(ActionKind.ADD_MEMBER, "alice", "team-eng")
DISABLE = action(ActionKind.DISABLE, "dave")
ENABLE = action(ActionKind.ENABLE, "erin")
DELETE = action(ActionKind.DELETE, "frank")


def test_last_line_about_an_action_decides_its_state(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "d" * 64)
    journal.started(ADD)
    journal.finished(ADD, Outcome(Result.DONE, http_status=204))
    journal.started(DISABLE)  # killed before its outcome
    journal.started(ENABLE)
    journal.finished(ENABLE, Outcome(Result.FAILED, "read-only", http_status=403))
    journal.started(DELETE)
    journal.finished(DELETE, Outcome(Result.FAILED, "timeout"))
    journal.started(DELETE)  # a later apply retried it
    journal.finished(DELETE, Outcome(Result.ALREADY, "404"))

    view = journal.read()

    assert view.finished == {ADD.id, DELETE.id}
    assert view.in_flight == {DISABLE.id}
    assert dict(view.failed) == {ENABLE.id: "read-only"}
    assert journal.path == tmp_path / "journal" / f"{'d' * 64}.jsonl"


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "e" * 64)
    journal.started(ADD)
    journal.finished(ADD, Outcome(Result.DONE))
    journal.started(DISABLE)
    with journal.path.open("a", encoding="utf-8") as fh:
        fh.write('{"event": "done", "id": "' + DISABLE.id[:5])  # crash in the middle of a write

    view = journal.read()

    assert view.finished == {ADD.id}
    assert view.in_flight == {DISABLE.id}


def test_missing_journal_means_nothing_done(tmp_path: Path) -> None:
    view = Journal(tmp_path, "f" * 64).read()
    assert not view.finished and not view.in_flight and not view.failed


def test_audit_line_has_who_how_what_and_result(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    context = AuditContext(operator="ops-bot (ci)", approval=ApprovalMode.DIGEST, plan_digest="a" * 64,
                           target={"type": "memory", "url": "world.json"})
    audit.record(context, ADD, Outcome(Result.DONE, "added", http_status=204, request_id="req-1"))
    audit.record(context, DISABLE, Outcome(Result.FAILED, "boom", http_status=500))

    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]

    assert [line["outcome"] for line in lines] == ["done", "failed"]
    first = lines[0]
    assert first["operator"] == "ops-bot (ci)"
    assert first["approval"] == "digest"
    assert first["plan_digest"] == "a" * 64
    assert first["action"] == {"id": ADD.id, "kind": "add_member", "subject": "alice@example.com",
                               "ref": "u-alice", "group": "team-eng"}
    assert (first["http_status"], first["request_id"]) == (204, "req-1")
    assert first["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    ("env", "explicit", "expected"),
    [
        ({"USER": "alice"}, None, "alice"),
        ({"USER": "alice", "GITHUB_ACTOR": "octocat"}, None, "octocat (ci)"),
        ({"USER": "alice", "GITLAB_USER_LOGIN": "gl-user"}, None, "gl-user (ci)"),
        ({"USER": "alice", "GITHUB_ACTOR": "octocat"}, "change-1234", "change-1234"),
        ({"LOGNAME": "bob"}, None, "bob"),
        ({}, None, pwd.getpwuid(os.getuid()).pw_name),  # USER unset (cron, containers): the uid's name
    ],
)
def test_operator(env: dict[str, str], explicit: str | None, expected: str) -> None:
    assert operator_from_env(env, explicit) == expected


def test_one_apply_at_a_time_per_state_directory(tmp_path: Path) -> None:
    with apply_lock(tmp_path), pytest.raises(ReconcileError, match="another apply is running"), \
            apply_lock(tmp_path):
        pass
    with apply_lock(tmp_path):  # released on exit
        pass
