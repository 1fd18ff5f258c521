"""`make demo` (scripts/demo.sh): never plans against a server it did not start; its "Next:" lines run as printed."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconcile.sim.app import build_app
from reconcile.sim.server import SimOptions, configured_app, running
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]


def _stop(pid_file: Path) -> None:
    if pid_file.exists():
        pid = int(pid_file.read_text().split()[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


@pytest.fixture
def demo_dir(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "demo"
    yield where
    _stop(where / "sim.pid")  # the demo leaves its simulator running; the Next: lines normally stop it


def _stops_answering(url: str) -> bool:
    for _ in range(100):  # another process shutting down: poll (≤ 10 s)
        try:
            httpx.get(url, timeout=1)
        except httpx.ConnectError:
            return True
        time.sleep(0.1)
    return False


def _demo(port: int, demo_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECONCILE_BIN": str(Path(sys.executable).parent), "RECONCILE_DEMO_DIR": str(demo_dir),
           "NO_COLOR": "1"}
    env.pop("CONFLUENCE_TOKEN", None)
    return subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), str(port)], env=env, cwd=demo_dir.parent,
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL, check=False)


@pytest.mark.slow
def test_demo_on_a_taken_port_uses_its_own_simulator_and_its_next_lines_run_as_printed(demo_dir: Path) -> None:
    foreign = build_app()  # another program's world on the port the demo is asked to use
    with running(foreign) as url:
        taken = int(url.rsplit(":", 1)[1])
        proc = _demo(taken, demo_dir)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = proc.stdout
        assert f"Port {taken} is in use by another program: using port" in out
        port = int(re.search(r"using port (\d+) instead", out).group(1))  # type: ignore[union-attr]
        assert port != taken
        assert f"reconcile plan for confluence-dc http://127.0.0.1:{port}" in out
        assert f":{taken}" not in out.split("using port", 1)[1]  # nothing planned against the foreign server
        assert not foreign.state.ctx.log.counts, "the demo sent API requests to a server it did not start"

    pid, sim_port, instance = (demo_dir / "sim.pid").read_text().split()
    assert int(sim_port) == port
    stats = httpx.get(f"http://127.0.0.1:{port}/_sim/stats").json()
    assert (stats["instance"], stats["pid"]) == (instance, int(pid))  # still running, and the demo's own

    lines = out.split("\nNext:", 1)[1].splitlines()[1:]
    assert [line.split()[0] for line in lines] == ["export", str(Path(sys.executable).parent / "reconcile"),
                                                   str(Path(sys.executable).parent / "reconcile"), "kill"]
    script = "\n".join(lines)  # exactly as printed, in a fresh shell elsewhere
    elsewhere = demo_dir.parent / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CONFLUENCE_TOKEN"}
    run = subprocess.run(["bash", "-e", "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=180, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "11 done" in run.stdout and "0 actions" in run.stdout
    assert _stops_answering(f"http://127.0.0.1:{port}/_sim/stats")  # the last line stopped the simulator


def test_make_demo_installs_only_what_running_needs_and_make_test_the_tools() -> None:
    def commands(target: str) -> str:
        return subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout

    demo = commands("demo")
    installs = [line for line in demo.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all("install -q -e . " in line for line in installs), installs
    assert "[test" not in demo and "dev]" not in demo
    assert "-e '.[test,dev]'" in commands("test")


def test_the_simulator_names_itself_in_its_stats() -> None:
    app = configured_app(SimOptions(instance="demo-1234"))
    with running(app) as url:
        stats = httpx.get(f"{url}/_sim/stats").json()
    assert stats["instance"] == "demo-1234"
    assert stats["pid"] == os.getpid()


@pytest.mark.slow
def test_a_second_demo_replaces_its_own_earlier_simulator_on_the_same_port(demo_dir: Path) -> None:
    port = free_port()
    first = _demo(port, demo_dir)
    assert first.returncode == 0, first.stdout + first.stderr
    old_pid = int((demo_dir / "sim.pid").read_text().split()[0])
    second = _demo(port, demo_dir)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "in use" not in second.stdout  # the port held by its own earlier simulator is taken back
    new_pid, sim_port, _ = (demo_dir / "sim.pid").read_text().split()
    assert int(sim_port) == port and int(new_pid) != old_pid
    assert httpx.get(f"http://127.0.0.1:{port}/_sim/stats").json()["pid"] == int(new_pid)
