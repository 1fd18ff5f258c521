"""The command line (typer): the only module that prints or exits.

Commands: validate, plan, show, apply, schema, sim. Exit codes (SPEC §8): 0 success / no changes,
1 error (including failed actions), 2 usage, 3 changes pending (`plan --detailed-exitcode`),
4 refused for safety (limit exceeded, empty source, stale plan, approval mismatch).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import click
import typer

from reconcile import __version__
from reconcile.errors import ReconcileError, UsageError
from reconcile.plan import Action, Plan

if TYPE_CHECKING:
    from reconcile.apply import ApplyResult, Approval
    from reconcile.model import ActualState, DesiredState
    from reconcile.settings import Config

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="reconcile",
    help="Declarative reconciliation of Atlassian users and groups: a Terraform plan for users.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
log = logging.getLogger("reconcile")


class Format(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    JSON = "json"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Globals:
    desired: Path
    state_dir: Path
    quiet: bool
    verbose: bool
    color: bool


def _env(name: str) -> str:
    return f"RECONCILE_{name}"


def _globals(ctx: typer.Context | None) -> Globals:
    obj = ctx.find_root().obj if ctx is not None else None
    if isinstance(obj, Globals):
        return obj
    return Globals(Path("desired"), Path(".reconcile"), quiet=False, verbose=False, color=False)


def err(message: str) -> None:
    typer.echo(message, err=True)


def out(message: str) -> None:
    typer.echo(message)


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn every error into one clear message on stderr and its exit code; no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except ReconcileError as exc:
            err(f"Error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err("Interrupted. A later run of the same apply resumes where this one stopped.")
            raise typer.Exit(130) from None
        except Exception as exc:
            err(f"Error: internal error: {type(exc).__name__}: {exc}")
            ctx = kwargs.get("ctx")
            if _globals(ctx if isinstance(ctx, typer.Context) else None).verbose:
                err(traceback.format_exc())
            else:
                err("  → run again with --verbose for the traceback, and please report it")
            raise typer.Exit(1) from None

    return wrapper


def run_async(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"time": self.formatTime(record), "level": record.levelname.lower(),
                "logger": record.name, "message": record.getMessage()}
        return json.dumps(data, ensure_ascii=False)


def _configure_logging(quiet: bool, verbose: bool, log_format: LogFormat) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.JSON:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_reconcile", False):
            root.removeHandler(old)
    handler._reconcile = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reconcile {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(  # noqa: PLR0917 - typer maps parameters to options
    ctx: typer.Context,
    desired: Annotated[Path, typer.Option(envvar=_env("DESIRED"), help="Directory of desired-state *.yaml files.")]
    = Path("desired"),
    state_dir: Annotated[Path, typer.Option(envvar=_env("STATE_DIR"),
                                            help="Where journals, the audit log and the apply lock live.")]
    = Path(".reconcile"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", envvar=_env("QUIET"),
                                        help="Only errors and results; no progress.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", envvar=_env("VERBOSE"),
                                          help="Debug logs (secrets masked); tracebacks.")] = False,
    log_format: Annotated[LogFormat, typer.Option(envvar=_env("LOG_FORMAT"), help="Log lines on stderr.")]
    = LogFormat.TEXT,
    no_color: Annotated[bool, typer.Option("--no-color", envvar=_env("NO_COLOR"),
                                           help="Plain text even on a terminal.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version.")] = False,
) -> None:
    """Declarative reconciliation of Atlassian users and groups: a Terraform plan for users.

    Every option can also be set with a RECONCILE_* environment variable (e.g. RECONCILE_DESIRED).
    """
    _configure_logging(quiet, verbose, log_format)
    color = not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    ctx.obj = Globals(desired=desired, state_dir=state_dir, quiet=quiet, verbose=verbose, color=color)


class Bars:
    """rich progress bars on a terminal (fetch and apply); silent otherwise. Action lines go through it."""

    def __init__(self, enabled: bool) -> None:
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), transient=True)

    def __enter__(self) -> Bars:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop drawing while the operator reads the plan and answers."""
        if self._progress is None:
            yield
            return
        self._progress.stop()
        try:
            yield
        finally:
            self._progress.start()

    def update(self, what: str, done: int, total: int | None) -> None:
        if self._progress is None:
            return
        task = self._tasks.get(what)
        if task is None:
            task = self._tasks[what] = self._progress.add_task(what, total=total)
        self._progress.update(task, completed=done, total=total)

    def clear(self) -> None:
        """Drop the finished fetch bars before the apply bar starts."""
        if self._progress is not None:
            for task in self._tasks.values():
                self._progress.remove_task(task)
        self._tasks.clear()

    def counting(self, what: str, total: int, report: Callable[[str], None] | None) -> Callable[[str], None]:
        """A report callback that also advances a bar of `total` steps."""
        done = 0
        self.update(what, 0, total)

        def step(text: str) -> None:
            nonlocal done
            done += 1
            self.update(what, done, total)
            if report is not None:
                report(text)

        return step

    def line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            out(text)


def _bars(g: Globals) -> Bars:
    return Bars(not g.quiet and sys.stdout.isatty() and sys.stderr.isatty())


def _load(g: Globals) -> Config:
    from reconcile.config import load

    return load(g.desired, env=os.environ)


def _render(plan: Plan, fmt: Format, *, color: bool, mask_emails: bool = False,
            plan_file: str = "plan.json") -> str:
    from reconcile import render

    if fmt is Format.MARKDOWN:
        return render.markdown(plan, mask_emails=mask_emails, plan_file=plan_file)
    if fmt is Format.JSON:
        return render.json_text(plan)
    return render.text(plan, color=color)


async def _fresh_plan(config: Config, bars: Bars) -> tuple[DesiredState, Plan]:
    from reconcile.apply import make_plan
    from reconcile.targets.factory import build_target

    target = build_target(config.target)
    try:
        return await make_plan(config, target, progress=bars.update)
    finally:
        await target.aclose()


@app.command(epilog="Example: `reconcile --desired desired/ validate`")
@guarded
def validate(ctx: typer.Context) -> None:
    """Check the desired-state files (every problem as file:line:col); no network."""
    g = _globals(ctx)
    config = _load(g)
    users = len(config.inline.users)
    sources = ", ".join(f"{n} ({s.type})" for n, s in config.sources.items()) or "none"
    where = " ".join(v for k, v in config.target.describe().items() if k != "type")
    out(f"{g.desired}: valid ({len(config.files)} file(s); target {config.target.type} {where}; "
        f"{users} inline user(s); sources: {sources}).")


@app.command(epilog="Examples: `reconcile plan`  ·  `reconcile plan --out plan.json --format markdown "
             "--mask-emails`  ·  `reconcile plan --detailed-exitcode` (0 no changes, 3 changes, 4 refused)")
@guarded
def plan(  # noqa: PLR0917 - typer maps parameters to options
    ctx: typer.Context,
    out_file: Annotated[Path | None, typer.Option("--out", envvar=_env("OUT"),
                                                  help="Write the JSON plan here (for `apply PLAN_FILE`).")]
    = None,
    fmt: Annotated[Format, typer.Option("--format", envvar=_env("FORMAT"), help="Output format.")]
    = Format.TEXT,
    detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode", envvar=_env("DETAILED_EXITCODE"),
                                                    help="Exit 0 no changes, 3 changes pending, 4 refused.")]
    = False,
    force: Annotated[bool, typer.Option("--force", envvar=_env("FORCE"), help="Plan beyond the safety limits.")]
    = False,
    mask_emails: Annotated[bool, typer.Option("--mask-emails", envvar=_env("MASK_EMAILS"),
                                              help="Markdown: a***@example.com (public PR comments).")]
    = False,
) -> None:
    """Compute the plan: what apply would change. Changes nothing."""
    g = _globals(ctx)
    config = _load(g)
    with _bars(g) as bars:
        _, result = run_async(_fresh_plan(config, bars))
    out(_render(result, fmt, color=g.color, mask_emails=mask_emails,
                plan_file=str(out_file or "plan.json")).rstrip("\n"))
    result.check_limits(config.policy.limits, force=force)
    if out_file is not None:
        write_atomic(out_file, result.dumps())
        err(f"Plan written to {out_file}; apply it with: reconcile apply {out_file} --approve {result.digest}")
    if detailed_exitcode and not result.empty:
        raise typer.Exit(3)


@app.command(epilog="Example: `reconcile show plan.json --format markdown`")
@guarded
def show(
    ctx: typer.Context,
    plan_file: Annotated[Path, typer.Argument(help="A plan written by `reconcile plan --out`.")],
    fmt: Annotated[Format, typer.Option("--format", envvar=_env("FORMAT"), help="Output format.")]
    = Format.TEXT,
    mask_emails: Annotated[bool, typer.Option("--mask-emails", envvar=_env("MASK_EMAILS"),
                                              help="Markdown: mask emails.")]
    = False,
) -> None:
    """Print a saved plan. Reads no desired state and no target."""
    g = _globals(ctx)
    saved = read_plan_file(plan_file)
    out(_render(saved, fmt, color=g.color, mask_emails=mask_emails, plan_file=str(plan_file)).rstrip("\n"))


@app.command(epilog="Examples: `reconcile apply` (plan, show, ask)  ·  `reconcile apply plan.json --approve "
             "3f2a9c1b7d4e` (pipelines)  ·  `reconcile apply --auto-approve` (scheduled drift correction)  ·  "
             "`reconcile apply plan.json --approve 3f2a9c1b7d4e --limit 1` (try one action first)")
@guarded
def apply(  # noqa: PLR0917 - typer maps parameters to options
    ctx: typer.Context,
    plan_file: Annotated[Path | None, typer.Argument(help="A plan from `plan --out`; without it, plan afresh.")]
    = None,
    approve: Annotated[str | None, typer.Option(envvar=_env("APPROVE"),
                                                help="The plan digest (or a prefix of >= 12 hex chars).")]
    = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", envvar=_env("AUTO_APPROVE"),
                                               help="Apply without asking (limits still apply).")] = False,
    limit: Annotated[int | None, typer.Option(min=1, envvar=_env("LIMIT"),
                                              help="Apply only the first N actions not yet done.")] = None,
    force: Annotated[bool, typer.Option("--force", envvar=_env("FORCE"), help="Apply beyond the safety limits.")]
    = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", envvar=_env("DRY_RUN"),
                                          help="Check approval, staleness and limits; print what would be "
                                          "done; change nothing.")] = False,
    operator: Annotated[str | None, typer.Option(envvar=_env("OPERATOR"),
                                                 help="Who applies (audit log); default: CI actor or $USER.")]
    = None,
    audit_log: Annotated[Path | None, typer.Option(envvar=_env("AUDIT_LOG"),
                                                   help="Audit log path (default: STATE_DIR/audit.jsonl).")]
    = None,
) -> None:
    """Apply a plan after explicit approval: typed `yes`, `--approve DIGEST` or `--auto-approve`."""
    from reconcile.apply import Approval, check_approval

    g = _globals(ctx)
    if approve is not None and auto_approve:
        raise UsageError("--approve and --auto-approve exclude each other", hint="give one of them")
    approval = Approval.given(approve) if approve is not None else Approval.auto() if auto_approve else None
    config = _load(g)
    saved = read_plan_file(plan_file) if plan_file is not None else None
    if saved is not None and approval is not None:
        check_approval(saved, approval)  # before any network call
    try:
        with _bars(g) as bars:
            result = run_async(_apply(config, g, bars, saved, approval, limit=limit, force=force,
                                      dry_run=dry_run, operator=operator, audit_log=audit_log))
    except _Cancelled:
        err("Apply cancelled, nothing changed.")
        if not sys.stdin.isatty():
            err("  → no terminal to answer on: approve with --approve DIGEST, or --auto-approve")
        raise typer.Exit(1) from None
    if result is None:
        return
    out(result.summary())
    if result.dry_run:
        return
    if result.drift:
        err(f"Warning: {len(result.drift)} change(s) still differ after apply (changed concurrently?):")
        for action in result.drift:
            err(f"  {action.describe()}")
    elif result.not_run:
        out(f"{len(result.not_run)} action(s) left: run the same apply again to continue.")
    elif result.residual is not None:
        out("The target now matches the desired state.")


async def _apply(config: Config, g: Globals, bars: Bars, saved: Plan | None, approval: Approval | None, *,
                 limit: int | None, force: bool, dry_run: bool, operator: str | None,
                 audit_log: Path | None) -> ApplyResult | None:
    from reconcile.apply import Approval, apply, check_approval, execute, make_plan, prepare, prepare_fresh
    from reconcile.journal import AuditContext, AuditLog, apply_lock, operator_from_env
    from reconcile.targets.factory import build_target

    target = build_target(config.target)
    try:
        with apply_lock(g.state_dir):
            if saved is None:
                desired, fresh = await make_plan(config, target, progress=bars.update)
                fresh.check_limits(config.policy.limits, force=force)
                if approval is not None:
                    check_approval(fresh, approval)
                prepared = prepare_fresh(fresh, desired)
                if approval is not None and not g.quiet and not fresh.empty:
                    with bars.paused():  # the plan being applied is shown first, as `terraform apply` does
                        out(_render(fresh, Format.TEXT, color=g.color).rstrip("\n") + "\n")
            else:
                prepared = await prepare(saved, config, target, state_dir=g.state_dir, force=force,
                                         progress=bars.update)
            chosen = prepared.plan
            if not prepared.run and not prepared.confirmed:
                bars.line("No changes. The target matches the desired state." if chosen.empty else
                          f"Nothing to do: every action of plan {chosen.digest[:12]} is already done.")
                return None
            if approval is None and not dry_run:
                approval = _ask(chosen, prepared.run, g, bars)
                if approval is None:
                    raise _Cancelled()
            audit = AuditLog(audit_log or g.state_dir / "audit.jsonl")
            context = AuditContext(operator=operator_from_env(os.environ, operator),
                                   approval=(approval or Approval.auto()).mode,
                                   plan_digest=chosen.digest, target=chosen.target)
            if dry_run:
                return await execute(prepared, target, state_dir=g.state_dir, audit=audit, context=context,
                                     limit=limit, dry_run=True, report=bars.line)
            bars.clear()
            todo = len(prepared.run) if limit is None else min(limit, len(prepared.run))
            report = bars.counting("apply", todo + len(prepared.confirmed), None if g.quiet else bars.line)
            return await apply(prepared, config, target, state_dir=g.state_dir, audit=audit,
                               context=context, limit=limit, report=report)
    finally:
        await target.aclose()


class _Cancelled(Exception):
    """The operator did not type `yes` (exit 1, like Terraform)."""


def _ask(chosen: Plan, run: tuple[Action, ...], g: Globals, bars: Bars) -> Approval | None:
    from reconcile.apply import Approval

    with bars.paused():
        out(_render(chosen, Format.TEXT, color=g.color).rstrip("\n"))
        if len(run) != len(chosen.actions):
            out(f"{len(chosen.actions) - len(run)} action(s) of this plan are already done; {len(run)} remain.")
        typer.echo(f"Type yes to apply PLAN {chosen.digest[:12]}: ", nl=False)
        answer = sys.stdin.readline().strip()
    if answer != "yes":
        return None
    return Approval.interactive(chosen.digest)


class ExportFormat(StrEnum):
    YAML = "yaml"
    CSV = "csv"


@app.command(epilog="Examples: `reconcile export --out desired/users.yaml` (bootstrap a site into git; "
             "then `reconcile plan` shows no changes)  ·  `reconcile export --format csv > users.csv`")
@guarded
def export(
    ctx: typer.Context,
    fmt: Annotated[ExportFormat, typer.Option("--format", envvar=_env("EXPORT_FORMAT"),
                                              help="yaml: a desired-state file; csv: a user report.")]
    = ExportFormat.YAML,
    out_file: Annotated[Path | None, typer.Option("--out", envvar=_env("EXPORT_OUT"),
                                                  help="Write here instead of stdout.")] = None,
    by_group: Annotated[bool, typer.Option("--by-group", envvar=_env("EXPORT_BY_GROUP"),
                                           help="yaml: write membership as group members, not user groups.")]
    = False,
) -> None:
    """Dump the actual state: as a desired-state file that plans to no changes, or as CSV."""
    from reconcile.export import to_csv, to_yaml

    g = _globals(ctx)
    config = _load(g)
    with _bars(g) as bars:
        actual = run_async(_fetch(config, bars))
    if fmt is ExportFormat.CSV:
        text = to_csv(actual)
    else:
        text = to_yaml(actual, config.scope, config.target, policy=config.policy, by_group=by_group)
    if out_file is None:
        out(text.rstrip("\n"))
    else:
        write_atomic(out_file, text)
        err(f"Exported to {out_file}.")


async def _fetch(config: Config, bars: Bars) -> ActualState:
    from reconcile.targets.factory import build_target

    target = build_target(config.target)
    try:
        return await target.fetch(config.scope, bars.update)
    finally:
        await target.aclose()


@app.command(epilog="Example: `reconcile schema > reconcile.schema.json`, then in a desired file: "
             "`# yaml-language-server: $schema=reconcile.schema.json`")
@guarded
def schema() -> None:
    """Print the JSON Schema of the desired-state files (for editors)."""
    from reconcile.config import json_schema

    out(json.dumps(json_schema(), indent=2, sort_keys=True))


def _register_sim() -> None:
    try:
        from reconcile.sim.command import sim
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("reconcile.sim"):
            return
        raise
    app.command(name="sim", epilog="Example: `reconcile sim --port 8990` then, in another shell, "
                "`CONFLUENCE_TOKEN=... reconcile plan`")(sim)


_register_sim()


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_plan_file(path: Path) -> Plan:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read plan file {path}: {exc.strerror}",
                         hint="give the file written by `reconcile plan --out FILE`") from exc
    return Plan.loads(text, source=str(path))


def main() -> None:
    """The console script."""
    app(prog_name="reconcile")


if __name__ == "__main__":
    main()
