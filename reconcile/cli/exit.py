"""The one place errors become a message on stderr and an exit code; every command runs `guarded`.

Exit codes (SPEC §8): 0 success / no changes, 1 error (including failed actions), 2 usage,
3 changes pending (`plan --detailed-exitcode`), 4 refused for safety, 130 interrupted.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from typer.exceptions import TyperException

from reconcile.cli.application import err, globals_of
from reconcile.errors import ReconcileError

P = ParamSpec("P")
R = TypeVar("R")
FAILED = 1
CHANGES_PENDING = 3
INTERRUPTED = 130


def exit_code_of(exc: BaseException) -> int:
    """The exit code an exception ends the command with (typer.Exit carries its own)."""
    if isinstance(exc, typer.Exit):
        return int(exc.exit_code)
    if isinstance(exc, ReconcileError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, TyperException):
        return int(getattr(exc, "exit_code", FAILED))
    return FAILED


def describe_error(exc: BaseException) -> str:
    """The one message for an error, as printed after `Error: ` (never a secret: errors carry none)."""
    if isinstance(exc, ReconcileError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"internal error: {type(exc).__name__}: {exc}"


def print_error(exc: BaseException, *, verbose: bool) -> None:
    if isinstance(exc, KeyboardInterrupt):
        err("Interrupted. A later run of the same apply resumes where this one stopped.")
        return
    err(f"Error: {describe_error(exc)}")
    if not isinstance(exc, ReconcileError):
        if verbose:
            err(traceback.format_exc())
        else:
            err("  → run again with --verbose for the traceback, and please report it")


class ErrorPrinted(Exception):
    """The error was already printed (by a run's report step); exit with `code`."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn every error into one clear message on stderr and its exit code; no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except ErrorPrinted as done:
            raise typer.Exit(done.code) from None
        except (Exception, KeyboardInterrupt) as exc:
            ctx = kwargs.get("ctx")
            print_error(exc, verbose=globals_of(ctx if isinstance(ctx, typer.Context) else None).verbose)
            raise typer.Exit(exit_code_of(exc)) from None

    return wrapper
