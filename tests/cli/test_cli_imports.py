"""Start-up cost: a command imports what it needs. Every `reconcile` process (docs blocks, CI steps, the
demo) would pay the simulator's modules (~0.4 s CPU) and httpx/rich otherwise."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconcile.cli.commands import SIM_SUMMARY
from tests.support.cli import make_cli, reconcile

EXAMPLE_DESIRED = Path(__file__).resolve().parents[2] / "desired"

# Runs the console script's main() with ARGS, then prints the imported module names on the last line.
_PROBE = """
import json, sys
from reconcile.cli import main
sys.argv = ["reconcile", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("\\n" + json.dumps(sorted(sys.modules)))
"""


def _modules_after(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=60,
                          check=False, stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return set(modules)


def _loaded(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(package + "."))


def test_help_imports_neither_the_simulator_nor_the_core() -> None:
    modules = _modules_after("--help")
    for package in ("reconcile.sim", "reconcile.config", "reconcile.plan", "httpx"):
        assert not _loaded(modules, package), f"`reconcile --help` imported {_loaded(modules, package)}"


@pytest.mark.parametrize("world", ["example", "memory"])
def test_validate_imports_no_simulator_and_no_http(world: str, tmp_path: Path) -> None:
    desired = EXAMPLE_DESIRED if world == "example" else make_cli(tmp_path).desired
    modules = _modules_after("validate", "--desired", str(desired))
    assert "reconcile.config.loader" in modules  # it did validate
    for package in ("reconcile.sim", "httpx", "reconcile.notify", "reconcile.cli.run"):
        assert not _loaded(modules, package), f"`reconcile validate` imported {_loaded(modules, package)}"


def test_sim_summary_is_the_first_line_of_its_help() -> None:
    from reconcile.sim.command import sim

    assert (inspect.getdoc(sim) or "").split("\n\n")[0] == SIM_SUMMARY
    listed = reconcile("--help", env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert f"sim {SIM_SUMMARY}" in " ".join(listed.output.replace("│", " ").split())


def test_sim_is_loaded_when_resolved() -> None:
    shown = reconcile("sim", "--help", env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "--scenario" in shown.output and "--delete-seconds" in shown.output
    assert "reconcile sim --port 8990" in shown.output  # its epilog


@pytest.mark.parametrize("module", ["reconcile.targets.factory", "reconcile.targets.registry",
                                    "reconcile.sources.registry", "reconcile.config.build"])
def test_a_registry_imports_first(module: str) -> None:
    """Importing a registry before anything else works: the CLI no longer loads the config first."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60,
                          check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
