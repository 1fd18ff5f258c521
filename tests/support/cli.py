"""The CLI on the memory-target world of fixtures_apply, for the report, notification and option tests.

`Cli(...)("plan", ...)` runs `reconcile --desired D --state-dir S plan ...` in-process (typer's runner);
`reports` validates every report it reads against `reconcile.report.SCHEMA`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from typer.testing import CliRunner, Result

from reconcile.cli import app
from reconcile.plan import Plan
from reconcile.report import SCHEMA
from tests.support.apply import write_desired, write_world


@dataclass
class Cli:
    tmp: Path
    desired: Path
    state: Path  # the memory target's world file
    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        base = ["--desired", str(self.desired), "--state-dir", str(self.tmp / "state")]
        return CliRunner().invoke(app, [*base, *args], input=input,
                                  env={"NO_COLOR": "1", "USER": "tester", **self.env, **(env or {})})

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


def make_cli(tmp: Path, extra_yaml: str = "", env: dict[str, str] | None = None) -> Cli:
    state = write_world(tmp / "world.json")
    return Cli(tmp, write_desired(tmp / "desired", state, extra_yaml), state, dict(env or {}))
