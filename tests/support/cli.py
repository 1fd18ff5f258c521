"""The one way tests run the command line: `reconcile(...)` in-process (typer's runner), `reconcile_process(...)`
as a child process, and `Cli`, the two bound to one desired directory and state directory.

`make_cli(tmp)` builds a `Cli` on the memory-target world of tests.support.apply; `Cli.report` validates every
report it reads against `reconcile.report.SCHEMA`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from typer.testing import CliRunner, Result

from reconcile.cli import app
from reconcile.plan import Plan
from reconcile.report import SCHEMA
from tests.support.apply import write_desired, write_world


def reconcile(*args: str, env: Mapping[str, str | None] | None = None, input: str | None = None) -> Result:
    """`reconcile ARGS` in this process; NO_COLOR=1 unless `env` says otherwise (None unsets a variable)."""
    return CliRunner().invoke(app, list(args), input=input, env={"NO_COLOR": "1", **(env or {})})


def reconcile_process(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                      timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m reconcile.cli ARGS` as a child process with stdin closed; NO_COLOR=1 unless `env` says otherwise."""
    return subprocess.run([sys.executable, "-m", "reconcile.cli", *args], check=False, capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL,
                          env={**os.environ, "NO_COLOR": "1", **(env or {})})


@dataclass
class Cli:
    """`reconcile --desired D --state-dir TMP/state ...`: `cli(...)` in-process, `cli.run(...)` as a child process."""

    tmp: Path
    desired: Path
    state: Path  # the memory target's world file
    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        base = ["--desired", str(self.desired), "--state-dir", str(self.tmp / "state")]
        return reconcile(*base, *args, input=input, env={"USER": "tester", **self.env, **(env or {})})

    def run(self, *args: str, desired: Path | None = None) -> subprocess.CompletedProcess[str]:
        return reconcile_process("--desired", str(desired or self.desired), "--state-dir", str(self.tmp / "state"),
                                 *args, env=self.env)

    def plan_file(self, *extra: str) -> tuple[Path, Plan]:
        path = self.tmp / "plan.json"
        result = self("plan", "--out", str(path), *extra)
        assert result.exit_code == 0, result.output
        return path, Plan.loads(path.read_text())

    def report(self, name: str = "report.json") -> dict[str, Any]:
        """The report file `name` (in tmp), checked against the published schema."""
        data: dict[str, Any] = json.loads((self.tmp / name).read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator(SCHEMA).validate(data)
        return data

    @property
    def journal(self) -> Path:
        return self.tmp / "state" / "journal"

    @property
    def audit(self) -> list[dict[str, object]]:
        path = self.tmp / "state" / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def make_cli(tmp: Path, extra_yaml: str = "", env: dict[str, str] | None = None) -> Cli:
    state = write_world(tmp / "world.json")
    return Cli(tmp, write_desired(tmp / "desired", state, extra_yaml), state, dict(env or {}))
