"""Every command in the docs' `sh` / `bash` / `console` blocks runs against the simulator, as written.

Each block is one bash session in a temporary directory holding a copy of `desired/` (pointed at a free
port), with `reconcile` (and `.venv/bin/reconcile`) on hand. A block that starts `reconcile sim` gets that
simulator (on the session's port); any other block gets one started for it, `CONFLUENCE_TOKEN` set to the
example world's token, and a `plan.json` planned beforehand when a command reads one before writing it.
`<digest>` stands for the digest of the `plan.json` at hand (as `$DIGEST` does). Commands that cannot run here
are listed in NOT_RUN with the reason; a command that is neither run nor listed fails the test.

A block that changes nothing (no apply, no `/_sim/` call) and needs the example world only (no simulator, or
a plain `reconcile sim`) runs against one example-world simulator shared by the pytest session, started by the
same `reconcile sim --port PORT`: its `reconcile sim` checks that simulator answers, and its `kill %1` (the
shared one outlives the block) is not run; blocks with their own simulator still run both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docs import ROOT, SHELL_LANGUAGES, Block, blocks, commands, pages
from tests.support.net import free_port
from tests.support.simproc import Sim, running

NOT_RUN = {
    "make demo": "run end to end, its Next: lines too, by tests/cli/test_demo.py (scripts/demo.sh)",
    "make test": "the test suite itself",
    "make test SEED=1234": "the test suite itself",
    "make unit": "the test suite itself",
    "make check": "the test suite itself (lint, types and the tests but real servers, kill -9 and slow ones)",
    "make lint typecheck": "part of the test suite itself (ruff and mypy)",
    "make docs": ("rewrites docs/cli.md in the checkout; tests/docs/test_docs.py compares that file with what it "
                  "generates"),
    "make bench": "minutes of 100,000-user benchmarks; tests/bench/test_bench_smoke.py runs every section at toy size",
    'python -m pip install "atlassian-reconcile @ git+https://github.com/reconcile-tool/reconcile@<40-hex commit sha>"':
        "a network install of a vetted commit (the reader's sha); tests/docs/test_examples_install.py checks its form",
    "reconcile --install-completion": "changes the start-up files of the shell of whoever runs the tests",
    "reconcile --show-completion bash > /etc/bash_completion.d/reconcile": "writes under /etc (root)",
    "reconcile sim --users 100000 --groups 2000 --memberships 400000 --seed 1 --latency-ms 25":
        "a 100,000-user world (5-12 s, 255 MB); tests/sim/test_sim_generate.py builds one that size",
}
# Exit codes other than 0 that a command is documented to give against the example world, and why.
EXPECTED = {
    "reconcile plan --out plan.json --format markdown --detailed-exitcode --strict > comment.md":
        (1, "the example world has standing warnings, and --strict fails the check on any"),
    "reconcile plan --out plan.json --detailed-exitcode --report plan-report.json":
        (3, "changes are pending in the example world"),
}
SIM = re.compile(r"(?:^|/)reconcile sim\b")
EXAMPLE_SIM = re.compile(r"^(?:\.venv/bin/)?reconcile sim\s*&?$")  # the example world, nothing else changed
CHANGES = re.compile(r"(?:^|/)reconcile apply\b|/_sim/")  # writes to the simulator's world or settings
PLAN_OUT = re.compile(r"(?:^|/)reconcile\b.* plan\b.*--out plan\.json\b")
SCENARIO = ROOT / "reconcile" / "sim" / "scenarios" / "example.yaml"


def documented() -> list[tuple[Block, list[str]]]:
    found = []
    for page in pages():
        for block in blocks(page):
            if block.language in SHELL_LANGUAGES and (cmds := commands(block)):
                found.append((block, cmds))
    return found


SESSIONS = [(block, cmds) for block, cmds in documented() if any(c not in NOT_RUN for c in cmds)]


def shares_sim(cmds: list[str]) -> bool:
    """Whether the block can run against the session's shared example-world simulator (see the docstring)."""
    run = [c for c in cmds if c not in NOT_RUN]
    return not any(CHANGES.search(c) for c in run) and all(EXAMPLE_SIM.match(c) for c in run if SIM.search(c))


def runs(command: str, shared: bool) -> bool:
    return command not in NOT_RUN and not (shared and command == "kill %1")


def needs_plan_file(cmds: list[str]) -> bool:
    """A command reads `plan.json` (or its digest) before any command of the block writes it (a plan exits 0, or
    3 for changes pending, when it writes its --out)."""
    for command in cmds:
        if PLAN_OUT.search(command) and EXPECTED.get(command, (0, ""))[0] in (0, 3):
            return False
        if "plan.json" in command or "<digest>" in command or "$DIGEST" in command:
            return True
    return False


@pytest.fixture(scope="session")
def shared_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """`reconcile sim --port PORT`: the example world, for the blocks that change nothing."""
    with running(workdir=tmp_path_factory.mktemp("shared-sim")) as sim:
        yield sim


def reconcile_bin() -> Path:
    found = Path(sys.executable).parent / "reconcile"
    return found if found.exists() else Path(shutil.which("reconcile") or "reconcile")


def prepare(tmp: Path, port: int) -> None:
    shutil.copytree(ROOT / "desired", tmp / "desired")
    for path in (tmp / "desired").rglob("*.yaml"):
        path.write_text(path.read_text(encoding="utf-8").replace("127.0.0.1:8990", f"127.0.0.1:{port}"),
                        encoding="utf-8")
    shutil.copytree(SCENARIO.parent, tmp / "reconcile" / "sim" / "scenarios")  # `reconcile sim --scenario` paths
    shutil.copy(SCENARIO, tmp / "my-world.yaml")  # the name the simulator page gives a scenario of your own
    (tmp / ".venv" / "bin").mkdir(parents=True)
    (tmp / ".venv" / "bin" / "reconcile").symlink_to(reconcile_bin())


PRELUDE = r"""
wait_for_sim() {  # until the session's port accepts connections (the simulator is up), 30 s at most
  for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0; sleep 0.1; done; return 1
}
stop_sim() { [ -n "${SIM_PID:-}" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null; SIM_PID=; true; }
note_digest() {  # $DIGEST (and <digest>): the digest of the plan.json at hand
  [ -f plan.json ] && DIGEST=$("$PYTHON" -c 'import json; print(json.load(open("plan.json"))["digest"])'); true
}
trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT
"""


def script(cmds: list[str], own_sim: bool, shared: bool) -> str:
    lines = [PRELUDE]
    if shared:
        lines += ["wait_for_sim || exit 90"]
    elif not own_sim:
        lines += ['reconcile sim --port "$PORT" > setup-sim.log 2>&1 &', "SIM_PID=$!", "wait_for_sim || exit 90"]
    if not own_sim and needs_plan_file(cmds):
        lines += ["reconcile plan --out plan.json > setup-plan.log 2>&1 || exit 91", "note_digest"]
    for n, command in enumerate(cmds):
        if not runs(command, shared):
            lines.append(f"echo skip >> rc.{n}")
        elif shared and SIM.search(command):
            lines.append(f"wait_for_sim; echo $? > rc.{n}")
        elif SIM.search(command):
            base = command.removesuffix("&").strip()
            lines += ["stop_sim", f'{base} --port "$PORT" > sim.{n}.log 2>&1 &', "SIM_PID=$!",
                      f"wait_for_sim; echo $? > rc.{n}"]
        else:
            # a URL of the default simulator port (`export SCIM_URL=http://127.0.0.1:8990/...`) is this session's
            runnable = command.replace("<digest>", '"$DIGEST"').replace("127.0.0.1:8990", "127.0.0.1:$PORT")
            lines += [f"{{ {runnable} ; }} > out.{n} 2>&1; echo $? > rc.{n}", "note_digest"]
    return "\n".join(lines) + "\n"


def test_every_command_is_run_or_listed_with_a_reason() -> None:
    listed = {c for _, cmds in documented() for c in cmds}
    assert set(NOT_RUN) <= listed, f"NOT_RUN names commands no page has any more: {set(NOT_RUN) - listed}"
    assert set(EXPECTED) <= listed, f"EXPECTED names commands no page has any more: {set(EXPECTED) - listed}"
    # every block with a shell command is either a session below or wholly listed in NOT_RUN
    for block, cmds in documented():
        assert (block, cmds) in SESSIONS or all(c in NOT_RUN for c in cmds), block.where


@pytest.mark.slow  # a simulator and a reconcile process per command: seconds per block (make test runs them)
@pytest.mark.parametrize(("block", "cmds"), SESSIONS, ids=[b.where for b, _ in SESSIONS])
def test_the_commands_of_a_block_run_against_the_simulator(block: Block, cmds: list[str], tmp_path: Path,
                                                           request: pytest.FixtureRequest) -> None:
    if any(c.startswith("jq ") for c in cmds) and shutil.which("jq") is None:
        pytest.skip(f"{block.where} uses jq, which is not installed here")
    shared = shares_sim(cmds)
    port = int(request.getfixturevalue("shared_sim").url.rsplit(":", 1)[1]) if shared else free_port()
    prepare(tmp_path, port)
    own_sim = any(SIM.search(c) for c in cmds if c not in NOT_RUN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    env |= {"PORT": str(port), "PYTHON": sys.executable, "HOME": str(tmp_path), "NO_COLOR": "1", "COLUMNS": "120",
            "PATH": f"{reconcile_bin().parent}{os.pathsep}{env.get('PATH', '')}"}
    env.pop("CONFLUENCE_TOKEN", None)
    if not own_sim:
        env["CONFLUENCE_TOKEN"] = "example-admin-token"  # the example world's administrator
    done = subprocess.run(["bash", "-c", script(cmds, own_sim, shared)], cwd=tmp_path, env=env, timeout=300,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{block.where}: set-up failed ({done.returncode}): {done.stderr}" + "".join(
        p.read_text() for p in tmp_path.glob("setup-*.log"))
    for n, command in enumerate(cmds):
        rc_file = tmp_path / f"rc.{n}"
        assert rc_file.exists(), f"{block.where}: `{command}` was not reached"
        if not runs(command, shared):
            continue
        output = "".join(p.read_text() for p in (tmp_path / f"out.{n}", tmp_path / f"sim.{n}.log") if p.exists())
        expected, why = EXPECTED.get(command, (0, ""))
        assert int(rc_file.read_text()) == expected, (
            f"{block.where}: `{command}` exited {rc_file.read_text().strip()}, documented {expected} {why}:\n{output}")
        assert "Traceback" not in output, f"{block.where}: `{command}`:\n{output}"
