"""The journal (append-only JSONL per plan digest, makes apply resumable) and the audit log.

A completed apply closes its journal (a `closed` line): the same digest planned again later is the
same change recurring, and its next apply starts afresh instead of finding everything done.

Every line is written with one `write` on an O_APPEND file and fsync'd before the call returns,
so after a crash or kill -9 the journal holds every line that was acknowledged. No secrets are
ever written: lines hold action ids, kinds, subjects, groups, outcomes and HTTP metadata only.
Names: a line's kind is a `LineKind` (its JSON key stays `event`); *Event* is a notification's.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from reconcile.errors import ReconcileError
from reconcile.plan import Action, Plan
from reconcile.targets.base import Outcome

log = logging.getLogger(__name__)


class LineKind(StrEnum):
    STARTED = "started"
    DONE = "done"
    ALREADY = "already"
    FAILED = "failed"
    SKIPPED = "skipped"  # its precondition no longer held: reported, not performed, not retried
    CLOSED = "closed"  # not about an action: every action of the plan finished; what follows is a new apply


class ApprovalMode(StrEnum):
    INTERACTIVE = "interactive"  # the operator typed `yes`
    DIGEST = "digest"  # --approve DIGEST
    AUTO = "auto"  # --auto-approve


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def operator_from_env(env: Mapping[str, str], explicit: str | None = None) -> str:
    """Who is applying: `--operator`, else the CI actor, else $USER / $LOGNAME, else the uid's name."""
    if explicit:
        return explicit
    for name in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "BUILD_REQUESTEDFOR"):
        if env.get(name):
            return f"{env[name]} (ci)"
    return env.get("USER") or env.get("LOGNAME") or _login_name() or "unknown"


def _login_name() -> str | None:
    """The name of the process's uid (containers and cron often leave USER unset)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name or None
    except (ImportError, KeyError, OSError):  # no passwd entry for this uid (e.g. an arbitrary container uid)
        return None


def _append_line(path: Path, record: Mapping[str, Any]) -> None:
    line = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _action_fields(action: Action) -> dict[str, Any]:
    return {
        "id": action.id,
        "kind": str(action.kind),
        "subject": action.subject.identity,
        "ref": action.subject.ref,
        "group": action.group,
    }


@dataclass(frozen=True, slots=True)
class JournalView:
    """What a journal says about each action id (the last line about an id wins)."""

    finished: frozenset[str]  # done, already or skipped: never performed again
    in_flight: frozenset[str]  # started, no outcome recorded: the change may or may not have happened
    failed: Mapping[str, str]  # id -> message of its last failure; retried by the next apply
    closed: bool = False  # the last line closes a completed apply
    lines: int = 0  # lines of the current apply (after the last `closed` line, or of the closed one)
    done: frozenset[str] = frozenset()  # the part of `finished` this tool changed (not already, not skipped)

    @staticmethod
    def empty() -> JournalView:
        return JournalView(frozenset(), frozenset(), {})

    def complete(self, plan: Plan) -> bool:
        """Every action of `plan` finished: closed, or the apply died between its last action and closing."""
        return self.closed or (bool(plan.actions) and {a.id for a in plan.actions} <= self.finished)


class Journal:
    """The journal of one plan: `<state_dir>/journal/<digest>.jsonl`."""

    def __init__(self, state_dir: Path, digest: str) -> None:
        self.path = Path(state_dir) / "journal" / f"{digest}.jsonl"
        self.digest = digest

    def started(self, action: Action) -> None:
        _append_line(self.path, {"at": now(), "event": str(LineKind.STARTED), **_action_fields(action)})

    def finished(self, action: Action, outcome: Outcome) -> None:
        record = {
            "at": now(),
            "event": str(LineKind(str(outcome.result))),
            **_action_fields(action),
            "message": outcome.message,
            "http_status": outcome.http_status,
            "request_id": outcome.request_id,
        }
        _append_line(self.path, record)

    def close(self) -> None:
        """Mark the apply complete; the next line written starts a new apply of this plan."""
        _append_line(self.path, {"at": now(), "event": str(LineKind.CLOSED), "id": None})

    def begin(self) -> None:
        """Start a new apply: earlier lines (an unclosed, completed or superseded apply) stop counting."""
        view = self.read()
        if view.lines and not view.closed:
            self.close()

    def read(self) -> JournalView:
        """What the current apply of this plan did: the lines after the last `closed` line, or, when
        that is the last line, those of the apply it closed. A torn last line (crash mid-write) is ignored."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return JournalView.empty()
        last: dict[str, tuple[LineKind, str]] = {}
        closed = False
        count = 0
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                event = LineKind(record["event"])
                if event is LineKind.CLOSED:
                    closed = True
                    continue
                entry = (str(record["id"]), (event, str(record.get("message") or "")))
            except (ValueError, KeyError, TypeError):
                log.warning("%s:%d: ignoring an unreadable journal line", self.path, number)
                continue
            if closed:  # the first line after a close: a new apply of the same plan
                last, closed, count = {}, False, 0
            last[entry[0]] = entry[1]
            count += 1
        return JournalView(
            finished=frozenset(i for i, (e, _) in last.items()
                               if e in (LineKind.DONE, LineKind.ALREADY, LineKind.SKIPPED)),
            in_flight=frozenset(i for i, (e, _) in last.items() if e is LineKind.STARTED),
            failed={i: m for i, (e, m) in last.items() if e is LineKind.FAILED},
            closed=closed,
            lines=count,
            done=frozenset(i for i, (e, _) in last.items() if e is LineKind.DONE),
        )


@dataclass(frozen=True, slots=True)
class AuditContext:
    """What every audit line of one apply shares."""

    operator: str
    approval: ApprovalMode
    plan_digest: str
    target: Mapping[str, str]


class AuditLog:
    """Append-only JSONL of every attempted action: who, under which approval, what happened."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def record(self, context: AuditContext, action: Action, outcome: Outcome) -> None:
        _append_line(
            self.path,
            {
                "timestamp": now(),
                "operator": context.operator,
                "approval": str(context.approval),
                "plan_digest": context.plan_digest,
                "target": dict(context.target),
                "action": _action_fields(action),
                "outcome": str(outcome.result),
                "message": outcome.message,
                "http_status": outcome.http_status,
                "request_id": outcome.request_id,
            },
        )


@contextmanager
def apply_lock(state_dir: Path) -> Iterator[None]:
    """One apply at a time per state directory; the OS releases the lock if the process dies."""
    path = Path(state_dir) / "apply.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise ReconcileError(
                f"another apply is running with state directory {state_dir} (pid {holder})",
                hint="wait for it to finish; applies of one state directory never run concurrently",
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)

