"""The read-only commands: validate, plan, show, export, schema (and the simulator's `sim`)."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reconcile.cli.application import (
    LAZY_COMMANDS,
    Command,
    DesiredOption,
    Format,
    Lazy,
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
from reconcile.cli.exit import CHANGES_PENDING, guarded
from reconcile.cli.files import check_overwrite, check_writable, export_omits, read_plan_file, write_atomic

if TYPE_CHECKING:
    from reconcile.model import ActualState, DesiredState
    from reconcile.plan import Plan
    from reconcile.settings import Config


@app.command(cls=Command, epilog="Examples: `reconcile validate` (a pre-commit hook: no tokens needed)  ·  "
             "`reconcile validate --require-env` (CI: every ${VAR} must be set)")
@guarded
def validate(
    ctx: typer.Context,
    desired: DesiredOption = None,
    require_env: Annotated[bool, typer.Option(
        "--require-env", envvar=env("REQUIRE_ENV"),
        help="Also require every ${VAR} the files reference to be set, and check its value "
        "(plan and apply always do).")] = False,
) -> None:
    """Check the desired-state files (every problem as file:line:col); no network."""
    from reconcile.cli.clock import evaluation_time
    from reconcile.config import load

    g = globals_of(ctx, desired)
    config = load(g.desired, env=os.environ, require_env=require_env, now=evaluation_time(g.now))
    users = len(config.inline.users)
    sources = ", ".join(f"{n} ({s.type})" for n, s in config.sources.items()) or "none"
    where = " ".join(v for k, v in config.target.address().items() if k != "type")
    notify = ", ".join(c for c in ("email", "webhook") if config.notify and getattr(config.notify, c))
    out(f"{g.desired}: valid ({len(config.files)} file(s); target {config.target.type} {where}; "
        f"{users} inline user(s); sources: {sources}" + (f"; notify: {notify}" if notify else "") + ").")
    if config.unset:
        out(f"Not set, so not checked: {', '.join(config.unset)} (`validate --require-env` checks them).")


async def fresh_plan(config: Config, bars: Bars, *, now: datetime) -> tuple[DesiredState, Plan]:
    from reconcile.apply import make_plan
    from reconcile.targets.factory import build_target

    target = build_target(config.target)
    try:
        return await make_plan(config, target, now=now, progress=bars.update)
    finally:
        await target.aclose()


@app.command(cls=Command, epilog="Examples: `reconcile plan`  ·  `reconcile plan --out plan.json --format markdown "
             "--mask-emails`  ·  `reconcile plan --detailed-exitcode --report drift.json --notify` (0 no "
             "changes, 3 changes, 4 refused)")
@guarded
def plan(  # noqa: PLR0917 - typer maps parameters to options
    ctx: typer.Context,
    out_file: Annotated[Path | None, typer.Option("--out", envvar=env("OUT"),
                                                  help="Write the JSON plan here (for `apply PLAN_FILE`).")]
    = None,
    fmt: Annotated[Format, typer.Option("--format", envvar=env("FORMAT"), help="Output format.")]
    = Format.TEXT,
    detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode", envvar=env("DETAILED_EXITCODE"),
                                                    help="Exit 0 no changes, 3 changes pending, 4 refused.")]
    = False,
    force: Annotated[bool, typer.Option("--force", envvar=env("FORCE"), help="Plan beyond the safety limits.")]
    = False,
    mask_emails: Annotated[bool, typer.Option("--mask-emails", envvar=env("MASK_EMAILS"),
                                              help="Markdown: a***@example.com (public PR comments).")]
    = False,
    report: ReportOption = None,
    notify: Annotated[bool, typer.Option("--notify", envvar=env("NOTIFY"),
                                         help="Send the `notify:` notifications after planning "
                                         "(apply always sends them).")] = False,
    strict: StrictOption = False,
    desired: DesiredOption = None,
) -> None:
    """Compute the plan: what apply would change. Changes nothing."""
    from reconcile.cli.run import Run
    from reconcile.notify import Phase
    from reconcile.render import plan_sentence

    g = globals_of(ctx, desired)
    with Run(g, Phase.PLAN, report=report, notify=notify) as run:
        if out_file is not None:
            check_writable(out_file, "--out")
        config = run.load()
        with bars_for(g) as bars:
            assert run.now is not None  # set by run.load()
            _, planned = run_async(fresh_plan(config, bars, now=run.now))
        result = replace(planned, desired_dir=str(g.desired))  # outside the digest: apply reads it again
        run.plan = result
        if g.quiet and fmt is Format.TEXT:
            out(plan_sentence(result))  # --quiet: the summary line (and errors) only
        else:
            out(render(result, fmt, color=g.color, mask_emails=mask_emails,
                       plan_file=str(out_file or "plan.json")).rstrip("\n"))
        result.check_limits(config.policy.limits, force=force, licences=config.policy.licences)
        check_strict(result, strict=strict)
        if out_file is not None:
            write_atomic(out_file, result.dumps())
            if not g.quiet:
                err(f"Plan written to {out_file} (desired state from {g.desired}); apply it with: "
                    f"{apply_hint(out_file, g.desired, result.digest)}")
        if detailed_exitcode and not result.empty:
            raise typer.Exit(CHANGES_PENDING)


def apply_hint(out_file: Path, desired: Path, digest: str) -> str:
    """The command that applies a written plan, with the desired directory it was planned from."""
    return (f"reconcile apply {shlex.quote(str(out_file))} --desired {shlex.quote(str(desired))} "
            f"--approve {digest}")


@app.command(cls=Command, epilog="Example: `reconcile show plan.json --format markdown`")
@guarded
def show(
    ctx: typer.Context,
    plan_file: Annotated[Path, typer.Argument(help="A plan written by `reconcile plan --out`.")],
    fmt: Annotated[Format, typer.Option("--format", envvar=env("FORMAT"), help="Output format.")]
    = Format.TEXT,
    mask_emails: Annotated[bool, typer.Option("--mask-emails", envvar=env("MASK_EMAILS"),
                                              help="Markdown: mask emails.")]
    = False,
) -> None:
    """Print a saved plan. Reads no desired state and no target."""
    g = globals_of(ctx)
    saved = read_plan_file(plan_file)
    out(render(saved, fmt, color=g.color, mask_emails=mask_emails, plan_file=str(plan_file)).rstrip("\n"))


class ExportFormat(StrEnum):
    YAML = "yaml"
    CSV = "csv"


@app.command(cls=Command, epilog="Examples: `reconcile export --out desired/users.yaml` (bootstrap a site into "
             "git; then `reconcile plan` shows no changes)  ·  `reconcile export --format csv > users.csv`")
@guarded
def export(  # noqa: PLR0917 - typer maps each parameter to an option
    ctx: typer.Context,
    fmt: Annotated[ExportFormat, typer.Option("--format", envvar=env("EXPORT_FORMAT"),
                                              help="yaml: a desired-state file; csv: a user report with "
                                              "per-product last activity.")]
    = ExportFormat.YAML,
    out_file: Annotated[Path | None, typer.Option("--out", envvar=env("EXPORT_OUT"),
                                                  help="Write here instead of stdout.")] = None,
    by_group: Annotated[bool, typer.Option("--by-group", envvar=env("EXPORT_BY_GROUP"),
                                           help="yaml: write membership as group members, not user groups.")]
    = False,
    force: Annotated[bool, typer.Option("--force", envvar=env("EXPORT_FORCE"),
                                        help="Overwrite --out if it exists.")] = False,
    desired: DesiredOption = None,
) -> None:
    """Dump the actual state: as a desired-state file that plans to no changes, or as CSV."""
    from reconcile.cli.clock import evaluation_time
    from reconcile.config import load
    from reconcile.export import to_csv, to_yaml

    g = globals_of(ctx, desired)
    config = load(g.desired, env=os.environ, now=evaluation_time(g.now))
    omit: frozenset[str] = frozenset()
    beside: Path | None = None
    if out_file is not None:
        check_writable(out_file, "--out")
        check_overwrite(out_file, force=force)
        if fmt is ExportFormat.YAML:
            omit, beside = export_omits(out_file, config)
    with bars_for(g) as bars:
        actual = run_async(_fetch(config, bars))
    if fmt is ExportFormat.CSV:
        text = to_csv(actual, str(config.target.type))
    else:
        text = to_yaml(actual, config.scope, config.target, policy=config.policy, by_group=by_group, omit=omit,
                       beside=str(beside) if beside else None)
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


@app.command(cls=Command, epilog="Example: `reconcile schema > reconcile.schema.json`, then in a desired file: "
             "`# yaml-language-server: $schema=reconcile.schema.json`")
@guarded
def schema() -> None:
    """Print the JSON Schema of the desired-state files (for editors)."""
    from reconcile.config import json_schema

    out(json.dumps(json_schema(), indent=2, sort_keys=True))


# `reconcile --help` lists it by this summary without importing the simulator (a test keeps it equal
# to the first line of the command's docstring).
SIM_SUMMARY = "Run the local Atlassian simulator: Confluence Data Center and Atlassian Cloud APIs on one port."


def _load_sim() -> Command:
    from reconcile.sim.command import sim

    info = typer.models.CommandInfo(
        name="sim", cls=Command, callback=guarded(sim), epilog="Example: `reconcile sim --port 8990` then, in another "
        "shell, `CONFLUENCE_TOKEN=... reconcile plan`")
    command = typer.main.get_command_from_info(info, pretty_exceptions_short=app.pretty_exceptions_short,
                                               rich_markup_mode=app.rich_markup_mode)
    assert isinstance(command, Command)
    return command


if importlib.util.find_spec("reconcile.sim") is not None:  # absent from a build without the simulator
    LAZY_COMMANDS["sim"] = Lazy("sim", SIM_SUMMARY, _load_sim)
