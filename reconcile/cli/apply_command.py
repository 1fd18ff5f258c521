"""`reconcile apply`: approval (typed `yes`, `--approve DIGEST`, `--auto-approve`), stale-plan refusal,
progress, resume; then the run's notifications and report.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reconcile.cli.application import (
    Command,
    DesiredOption,
    Format,
    Globals,
    ReportOption,
    StrictOption,
    app,
    check_strict,
    env,
    err,
    globals_of,
    out,
    render,
    run_async,
)
from reconcile.cli.bars import Bars, bars_for
from reconcile.cli.exit import FAILED, guarded
from reconcile.cli.files import check_directory, check_writable, read_plan_file
from reconcile.errors import ActionsFailed, ReconcileError, UsageError

if TYPE_CHECKING:
    from reconcile.apply import ApplyResult, Approval, Prepared
    from reconcile.cli.run import Run
    from reconcile.plan import Plan
    from reconcile.settings import Config


@app.command(cls=Command, epilog="Examples: `reconcile apply` (plan, show, ask)  ·  `reconcile apply plan.json "
             "--approve 3f2a9c1b7d4e` (pipelines)  ·  `reconcile apply --auto-approve --report applied.json` "
             "(scheduled drift correction)  ·  `reconcile apply plan.json --approve 3f2a9c1b7d4e --limit 1` "
             "(try one action first)")
@guarded
def apply(  # noqa: PLR0917 - typer maps parameters to options
    ctx: typer.Context,
    plan_file: Annotated[Path | None, typer.Argument(help="A plan from `plan --out`; without it, plan afresh.")]
    = None,
    approve: Annotated[str | None, typer.Option(envvar=env("APPROVE"),
                                                help="The plan digest (or a prefix of >= 12 hex chars; "
                                                "upper or lower case).")]
    = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", envvar=env("AUTO_APPROVE"),
                                               help="Apply without asking (limits still apply).")] = False,
    limit: Annotated[int | None, typer.Option(min=1, envvar=env("LIMIT"),
                                              help="Apply only the first N actions not yet done.")] = None,
    force: Annotated[bool, typer.Option("--force", envvar=env("FORCE"), help="Apply beyond the safety limits.")]
    = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", envvar=env("DRY_RUN"),
                                          help="Check approval, staleness and limits; print what would be "
                                          "done; change nothing.")] = False,
    operator: Annotated[str | None, typer.Option(envvar=env("OPERATOR"),
                                                 help="Who applies (audit log); default: CI actor, $USER or "
                                                 "the login name.")]
    = None,
    audit_log: Annotated[Path | None, typer.Option(envvar=env("AUDIT_LOG"),
                                                   help="Audit log path (default: STATE_DIR/audit.jsonl).")]
    = None,
    report: ReportOption = None,
    strict: StrictOption = False,
    desired: DesiredOption = None,
) -> None:
    """Apply a plan after explicit approval: typed `yes`, `--approve DIGEST` or `--auto-approve`.

    A plan file is applied with the desired directory it was planned from (recorded in it), unless
    --desired names the same one. Sends the `notify:` notifications (when configured) after applying,
    or after a refusal or error.
    """
    from reconcile.apply import Approval, check_approval
    from reconcile.cli.run import Run
    from reconcile.journal import operator_from_env
    from reconcile.notify import Phase
    from reconcile.plan import check_target

    g = globals_of(ctx, desired)
    with Run(g, Phase.APPLY, report=report, notify=True) as run:
        if approve is not None and auto_approve:
            raise UsageError("--approve and --auto-approve exclude each other", hint="give one of them")
        approval = Approval.given(approve) if approve is not None else Approval.auto() if auto_approve else None
        run.dry_run = dry_run
        run.operator = operator_from_env(os.environ, operator)
        check_directory(g.state_dir, "--state-dir (journals, audit log, apply lock)")
        check_writable(audit_log or g.state_dir / "audit.jsonl", "the audit log (--audit-log)")
        saved = read_plan_file(plan_file) if plan_file is not None else None
        if saved is not None and plan_file is not None:
            run.g = g = _planned_from(g, saved, plan_file)
        config = run.load()
        if saved is not None:
            run.plan = saved
            check_target(saved, config.target.address())  # before the limits: another site's are moot
            if approval is not None:
                check_approval(saved, approval)  # before any network call
            check_strict(saved, strict=strict)
        try:
            with bars_for(g) as bars:
                result = run_async(_apply(config, g, bars, run, saved, approval, limit=limit, force=force,
                                          dry_run=dry_run, audit_log=audit_log, strict=strict))
        except _Cancelled:
            run.cancelled = True
            err("Apply cancelled, nothing changed.")
            if not sys.stdin.isatty():
                err("  → no terminal to answer on: approve with --approve DIGEST, or --auto-approve")
            raise typer.Exit(FAILED) from None
        if result is not None:
            _conclude(result, quiet=g.quiet)


def _planned_from(g: Globals, saved: Plan, plan_file: Path) -> Globals:
    """The globals with the desired directory the plan was made from (plan files since 0.2 record it)."""
    if not saved.desired_dir:
        return g
    recorded = Path(saved.desired_dir)
    if g.desired_given:
        if g.desired.resolve() != recorded.resolve():
            raise UsageError(
                f"--desired {g.desired} is not the desired directory {recorded} that {plan_file} was "
                "planned from; nothing was changed",
                hint=f"drop --desired to use {recorded}, or plan again with --desired {g.desired}",
            )
        return g
    if not recorded.is_dir():
        raise UsageError(
            f"{plan_file} was planned from the desired directory {recorded}, which does not exist "
            "here; nothing was changed",
            hint="run apply from the directory you planned in, or give --desired DIR",
        )
    return replace(g, desired=recorded)


def undo_hint(result: ApplyResult) -> str:
    """Where the undo plan is, and the command that applies it."""
    assert result.undo is not None and result.undo_path is not None
    irreversible = len(result.undo.warnings)
    also = f" ({irreversible} change(s) cannot be undone: see its warnings)" if irreversible else ""
    return (f"Undo plan written to {result.undo_path}{also}; reverse this apply with: "
            f"reconcile apply {shlex.quote(result.undo_path)} --approve {result.undo.digest}")


def _conclude(result: ApplyResult, *, quiet: bool) -> None:
    out(result.summary())
    if result.undo_path and not result.dry_run:
        out(undo_hint(result))
    if result.dry_run or quiet:
        return
    if result.drift:
        err(f"Warning: {len(result.drift)} change(s) still differ after apply (changed concurrently?):")
        for action in result.drift:
            err(f"  {action.describe()}")
    elif result.not_run:
        out(f"{len(result.not_run)} action(s) left: run the same apply again to continue.")
    elif result.residual is not None:
        warnings = len(result.residual.warnings)
        out("The target now matches the desired state." if not warnings else
            f"Nothing left to change, but {warnings} warning{'s need' if warnings != 1 else ' needs'} "
            "attention (`reconcile plan` lists them).")


async def _apply(config: Config, g: Globals, bars: Bars, run: Run, saved: Plan | None,  # noqa: PLR0917
                 approval: Approval | None, *, limit: int | None, force: bool, dry_run: bool,
                 audit_log: Path | None, strict: bool) -> ApplyResult | None:
    from reconcile.apply import Approval, apply, check_approval, execute, make_plan, prepare, prepare_fresh
    from reconcile.journal import AuditContext, AuditLog, apply_lock
    from reconcile.render import no_changes
    from reconcile.targets.factory import build_target

    target = build_target(config.target)
    try:
        with apply_lock(g.state_dir):
            if saved is None:
                assert run.now is not None  # set by run.load()
                desired, fresh = await make_plan(config, target, now=run.now, progress=bars.update)
                run.plan = fresh
                fresh.check_limits(config.policy.limits, force=force, licences=config.policy.licences)
                if approval is not None:
                    check_approval(fresh, approval)
                check_strict(fresh, strict=strict)
                # the undo plan records where the desired state came from, as plan files do
                prepared = prepare_fresh(replace(fresh, desired_dir=str(g.desired)), desired)
                if approval is not None and not g.quiet and not fresh.empty:
                    with bars.paused():  # the plan being applied is shown first, as `terraform apply` does
                        out(render(fresh, Format.TEXT, color=g.color).rstrip("\n") + "\n")
            elif saved.undoes:
                from reconcile.undo import prepare_undo

                prepared = await prepare_undo(saved, config, target, state_dir=g.state_dir, force=force,
                                              progress=bars.update)
            else:
                prepared = await prepare(saved, config, target, state_dir=g.state_dir, force=force,
                                         progress=bars.update)
            chosen = prepared.plan
            run.pending = (tuple(a.id for a in prepared.run) + tuple(a.id for a in prepared.confirmed)
                           + tuple(s.action.id for s in prepared.skipped))
            if not prepared.run and not prepared.confirmed and not prepared.skipped:
                bars.line(no_changes(len(chosen.warnings)) if chosen.empty else
                          f"Nothing to do: every action of plan {chosen.digest[:12]} is already done.")
                return None
            if approval is None and not dry_run:
                approval = _ask(chosen, prepared, g, bars)
                if approval is None:
                    raise _Cancelled()
            audit = AuditLog(audit_log or g.state_dir / "audit.jsonl")
            mode = (approval or Approval.auto()).mode
            run.approval = None if dry_run and approval is None else str(mode)
            context = AuditContext(operator=run.operator or "unknown", approval=mode,
                                   plan_digest=chosen.digest, target=chosen.target)
            if dry_run:
                result = await execute(prepared, target, state_dir=g.state_dir, audit=audit, context=context,
                                       limit=limit, dry_run=True, on_line=bars.line)
            else:
                _open_audit_log(audit.path)  # before the first action: never a change the audit log misses
                bars.clear()
                todo = len(prepared.run) if limit is None else min(limit, len(prepared.run))
                on_line = bars.counting("apply", todo + len(prepared.confirmed) + len(prepared.skipped),
                                       None if g.quiet else bars.line)
                try:
                    result = await apply(prepared, config, target, state_dir=g.state_dir, audit=audit,
                                         context=context, limit=limit, on_line=on_line)
                except ActionsFailed as exc:  # the changes that were made can still be reversed
                    if exc.result.undo_path:
                        err(undo_hint(exc.result))
                    raise
            run.result = result
            return result
    finally:
        await target.aclose()


def _open_audit_log(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    except OSError as exc:
        raise ReconcileError(f"cannot open the audit log {path}: {exc.strerror or exc}; nothing was changed",
                             hint="give --audit-log a file you can write, or fix the permissions") from exc


class _Cancelled(Exception):
    """The operator did not type `yes` (exit 1, like Terraform)."""


def _ask(chosen: Plan, prepared: Prepared, g: Globals, bars: Bars) -> Approval | None:
    from reconcile.apply import Approval

    run, skipped = prepared.run, prepared.skipped
    with bars.paused():
        out(render(chosen, Format.TEXT, color=g.color).rstrip("\n"))
        done = len(chosen.actions) - len(run) - len(skipped)
        if done:
            out(f"{done} action(s) of this plan are already done; {len(run)} remain.")
        for s in skipped:
            out(f"Will skip {s.action.describe()}: {s.why}")
        typer.echo(f"Type yes to apply PLAN {chosen.digest[:12]}: ", nl=False)
        answer = sys.stdin.readline().strip()
    if answer != "yes":
        return None
    return Approval.interactive(chosen.digest)
