"""The command line (typer): the only package that prints or exits.

`application` holds the typer app and global options; `exit` the error → message and exit-code
path; `commands` the read-only commands; `apply_command` the apply; `run` the report and notifications
after plan/apply; `bars` the progress bars; `files` atomic writes, output-path checks and plan files.
"""

from reconcile.cli import apply_command, commands  # noqa: F401 - registers the commands on `app`
from reconcile.cli.application import app
from reconcile.cli.files import read_plan_file, write_atomic

__all__ = ["app", "main", "read_plan_file", "write_atomic"]


def main() -> None:
    """The console script."""
    app(prog_name="reconcile")


if __name__ == "__main__":
    main()
