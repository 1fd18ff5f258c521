"""One run of `plan` or `apply`, seen from outside: after the command ends (however it ends) the
error is printed, notifications are sent (`notify:`) and the JSON report is written (`--report`).

A notification failure never changes the exit code; a report that cannot be written (the path is
checked first, so rarely) turns a success into exit 1: a pipeline that asked for it would otherwise
read a stale or missing file.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import typer

from reconcile.cli.application import Globals, err
from reconcile.cli.exit import ErrorPrinted, describe_error, exit_code_of, print_error
from reconcile.cli.files import check_writable, write_atomic
from reconcile.errors import ReconcileError, SafetyRefusal, UsageError
from reconcile.journal import now
from reconcile.notify import Event, Phase
from reconcile.report import ErrorFacts, Notification, RunFacts, dumps

if TYPE_CHECKING:
    from reconcile.apply import ApplyResult
    from reconcile.plan import Plan
    from reconcile.settings import Config


class Run:
    """Collects what a command learns (config, plan, apply result) for the report and notifications."""

    def __init__(self, g: Globals, phase: Phase, *, report: Path | None, notify: bool) -> None:
        self.g = g
        self.phase = phase
        self.report_path = report
        self.notify_wanted = notify  # plan: --notify; apply: whenever `notify:` is configured
        self.config: Config | None = None
        self.now: datetime | None = None  # this run's `now` (--now or the wall clock), read once by load()
        self.plan: Plan | None = None
        self.pending: tuple[str, ...] | None = None
        self.result: ApplyResult | None = None
        self.approval: str | None = None
        self.operator: str | None = None
        self.cancelled = False
        self.dry_run = False
        self._started_at = now()
        self._t0 = time.monotonic()

    def __enter__(self) -> Run:
        if self.report_path is not None:
            check_writable(self.report_path, "--report")
        return self

    def load(self) -> Config:
        """The desired files' configuration; `plan --notify` needs a `notify:` section in them."""
        from reconcile.cli.clock import evaluation_time
        from reconcile.config import load

        self.now = evaluation_time(self.g.now)
        self.config = load(self.g.desired, env=os.environ, now=self.now)
        if self.phase is Phase.PLAN and self.notify_wanted and self.config.notify is None:
            raise UsageError("--notify: the desired files have no `notify:` section",
                             hint="add one (see docs/notifications.md), or drop --notify")
        return self.config

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None and not isinstance(exc, Exception | KeyboardInterrupt):
            return  # SystemExit and the like pass untouched
        failed = exc is not None and not isinstance(exc, typer.Exit)
        code = 0 if exc is None else exit_code_of(exc)
        if failed:
            assert exc is not None
            print_error(exc, verbose=self.g.verbose)
        error = None
        if failed and not self.cancelled:
            assert exc is not None
            error = ErrorFacts(type(exc).__name__, describe_error(exc), refused=isinstance(exc, SafetyRefusal))
            result = getattr(exc, "result", None)  # ActionsFailed carries the apply's result
            if result is not None:
                self.result = result
        deliveries = self._notify(error)
        if self.report_path is not None and not self._write_report(code, error, deliveries):
            code = 1 if code in (0, 3) else code
            failed = True
        if failed:
            raise ErrorPrinted(code)

    def _event(self, error: ErrorFacts | None) -> Event | None:
        if self.cancelled or self.dry_run:
            return None
        if self.phase is Phase.APPLY and self.result is not None and self.plan is not None:
            return Event.from_apply(self.plan, self.result)
        if error is not None:
            target = self.config.target.address() if self.config is not None else {}
            return Event.stopped(self.phase, error.message, refused=error.refused, plan=self.plan, target=target)
        if self.plan is None:
            return None
        if self.phase is Phase.PLAN:
            return Event.planned(self.plan)
        return Event.nothing_to_apply(self.plan)

    def _notify(self, error: ErrorFacts | None) -> tuple[Notification, ...]:
        settings = self.config.notify if self.config is not None else None
        if settings is None or not self.notify_wanted:
            return ()
        event = self._event(error)
        if event is None:
            return ()
        from reconcile.notify import notify

        deliveries = notify(settings, event)
        for delivery in deliveries:
            if not delivery.ok or not self.g.quiet:
                err(str(delivery))
        return tuple(Notification(d.channel, d.ok, d.detail) for d in deliveries)

    def _write_report(self, code: int, error: ErrorFacts | None, deliveries: tuple[Notification, ...]) -> bool:
        assert self.report_path is not None
        facts = RunFacts(
            command=str(self.phase), started_at=self._started_at, finished_at=now(),
            seconds=time.monotonic() - self._t0, exit_code=code,
            target=self.config.target.address() if self.config is not None else {},
            plan=self.plan, pending=self.pending, result=self.result, approval=self.approval,
            operator=self.operator, cancelled=self.cancelled, error=error, notifications=deliveries,
        )
        try:
            write_atomic(self.report_path, dumps(facts))
        except ReconcileError as exc:
            err(f"Error: the report was not written: {exc}")
            return False
        if not self.g.quiet:
            err(f"Report written to {self.report_path}.")
        return True
