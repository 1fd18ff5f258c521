"""The typer application, its global and shared options (RECONCILE_* environment variables), logging.

Errors become messages and exit codes in exit.py. Only reconcile.cli prints or exits.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from reconcile import __version__, aio
from reconcile.cli.argv import hoist_globals
from reconcile.errors import ReconcileError

if TYPE_CHECKING:
    from collections.abc import Callable

    from reconcile.plan import Plan

R = TypeVar("R")


def _bare_flags(params: list[Any]) -> list[Any]:
    """On/off flags take no value: show no metavar for them in --help (typer shows `<bool>`)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _bare_flags(super().get_params(ctx))


class Lazy(Command):
    """A command `reconcile --help` lists by its summary; its module is imported only when it is resolved
    (run, or asked for its own --help). Every process pays its imports otherwise: the simulator's cost
    every other command ~0.5 s CPU at start."""

    def __init__(self, name: str, summary: str, load: Callable[[], Command]) -> None:
        super().__init__(name=name, help=summary)
        self._load = load
        self._loaded: Command | None = None

    def loaded(self) -> Command:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded


# name -> its Lazy placeholder, in the order `reconcile --help` lists them (after the other commands)
LAZY_COMMANDS: dict[str, Lazy] = {}


class Group(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands.update(LAZY_COMMANDS)

    def get_params(self, ctx: Any) -> list[Any]:
        return _bare_flags(super().get_params(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_globals(list(args), self.commands))

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, Lazy) and name is not None:
            command = self.commands[name] = command.loaded()
        return name, command, rest


app = typer.Typer(
    name="reconcile",
    cls=Group,
    help="Declarative reconciliation of Atlassian users and groups: a Terraform plan for users.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


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
    desired_given: bool = False  # --desired or RECONCILE_DESIRED was given (not the default)
    now: str | None = None  # --now / RECONCILE_NOW as given; reconcile.cli.clock reads it


def env(name: str) -> str:
    return f"RECONCILE_{name}"


# `--desired` on each command that reads desired state (SPEC §3); no envvar of its own, so that
# RECONCILE_DESIRED (read by the global option) never overrides a global `--desired` given on the line.
DesiredOption = Annotated[
    Path | None,
    typer.Option("--desired", show_default=False,
                 help="Directory of desired-state *.yaml files; overrides the global --desired "
                 "(and RECONCILE_DESIRED). Default: desired."),
]

ReportOption = Annotated[
    Path | None,
    typer.Option("--report", envvar=env("REPORT"), show_default=False,
                 help="Also write a machine-readable JSON report of this run here (counts, actions, "
                 "outcomes, warnings, duration, exit status; no secrets). Written on failure too."),
]


StrictOption = Annotated[
    bool,
    typer.Option("--strict", envvar=env("STRICT"),
                 help="Warnings are errors: exit 1 when the plan has any (a misspelt user or group, a "
                 "read-only group the desired state would change, ...); nothing is written or applied."),
]


def check_strict(plan: Plan, *, strict: bool) -> None:
    """Under --strict, a plan with warnings is an error (exit 1): nothing is written or applied."""
    from reconcile.render import clean

    if strict and plan.warnings:
        count = len(plan.warnings)
        shown = [f"  {w.kind}: {w.subject}: {w.message}" for w in plan.warnings[:5]]
        if count > len(shown):
            shown.append(f"  ... and {count - len(shown)} more (see the plan)")
        raise ReconcileError(
            f"--strict: the plan has {count} warning{'s' if count != 1 else ''}; nothing was written or "
            "changed:\n" + "\n".join(clean(line) for line in shown),
            hint="fix the desired state (or the target), or drop --strict to accept them",
        )


def globals_of(ctx: typer.Context | None, desired: Path | None = None) -> Globals:
    """The global options, with a command-level `--desired` winning over the global one."""
    obj = ctx.find_root().obj if ctx is not None else None
    g = obj if isinstance(obj, Globals) else Globals(Path("desired"), Path(".reconcile"), quiet=False,
                                                     verbose=False, color=False)
    return g if desired is None else replace(g, desired=desired, desired_given=True)


def err(message: str) -> None:
    typer.echo(message, err=True)


def out(message: str) -> None:
    typer.echo(message)


def run_async(coro: Coroutine[Any, Any, R]) -> R:
    return aio.run(coro)  # not asyncio.run: it would repr() the (large) result


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"time": self.formatTime(record), "level": record.levelname.lower(),
                "logger": record.name, "message": record.getMessage()}
        return json.dumps(data, ensure_ascii=False)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is now: while progress bars draw, rich redirects it so that log
    lines appear above the bars instead of through them."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _configure_logging(quiet: bool, verbose: bool, log_format: LogFormat) -> None:
    handler = _Stderr()
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
    # --verbose shows our one line per request (reconcile.http), not the libraries' internals.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


QUIET_LIBRARIES = ("httpx", "httpcore", "hpack", "h11", "asyncio", "ldap3", "markdown_it")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reconcile {__version__}")
        raise typer.Exit()


@app.callback(epilog="Example: `reconcile --desired desired/ plan` (or `reconcile plan --desired desired/`). "
              "Shell completion: `reconcile --install-completion`.")
def main_options(  # noqa: PLR0917 - typer maps parameters to options
    ctx: typer.Context,
    desired: Annotated[Path, typer.Option(envvar=env("DESIRED"), help="Directory of desired-state *.yaml files.")]
    = Path("desired"),
    state_dir: Annotated[Path, typer.Option(envvar=env("STATE_DIR"),
                                            help="Where journals, the audit log and the apply lock live.")]
    = Path(".reconcile"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", envvar=env("QUIET"),
                                        help="Only errors and results; no progress.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", envvar=env("VERBOSE"),
                                          help="Debug logs (secrets masked); tracebacks.")] = False,
    log_format: Annotated[LogFormat, typer.Option(envvar=env("LOG_FORMAT"), help="Log lines on stderr.")]
    = LogFormat.TEXT,
    no_color: Annotated[bool, typer.Option("--no-color", envvar=env("NO_COLOR"),
                                           help="Plain text even on a terminal.")] = False,
    now: Annotated[str | None, typer.Option(
        "--now", envvar=env("NOW"), show_default=False,
        help="Evaluate as of this time instead of the wall clock (ISO 8601 with a zone, e.g. "
        "2026-03-01T00:00:00Z; a date alone is 00:00 UTC): exemption horizons, inactivity cutoffs.")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version.")] = False,
) -> None:
    """Declarative reconciliation of Atlassian users and groups: a Terraform plan for users.

    Every option can also be set with a RECONCILE_* environment variable (e.g. RECONCILE_DESIRED).
    --quiet, --verbose, --no-color, --state-dir, --log-format and --now may also follow the command.
    """
    _configure_logging(quiet, verbose, log_format)
    color = not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    source = ctx.get_parameter_source("desired")  # (typer vendors click: compare by name)
    given = source is not None and source.name != "DEFAULT"
    ctx.obj = Globals(desired=desired, state_dir=state_dir, quiet=quiet, verbose=verbose, color=color,
                      desired_given=given, now=now)


def render(plan: Plan, fmt: Format, *, color: bool, mask_emails: bool = False,
           plan_file: str = "plan.json") -> str:
    from reconcile import render as renderers

    if fmt is Format.MARKDOWN:
        return renderers.markdown(plan, mask_emails=mask_emails, plan_file=plan_file)
    if fmt is Format.JSON:
        return renderers.json_text(plan)
    return renderers.text(plan, color=color)
