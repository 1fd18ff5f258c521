"""Ctrl-C during a command (the client's event loop is uvloop when installed, reconcile/aio.py): the command
stops promptly with exit 130 and one line, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from reconcile.sim.app import build_app
from reconcile.sim.confluence_dc.generate import generate_dc
from reconcile.sim.scenario import load_scenario
from reconcile.sim.server import running
from tests.support import desired


def test_ctrl_c_during_a_plan_exits_130_with_one_line(tmp_path: Path) -> None:
    app = build_app(load_scenario(), dc=generate_dc(40, 4, 80, 1))
    ctx = app.state.ctx
    ctx.apply_settings(ctx.settings.updated({"latency_ms": 2_000}))  # each request outlasts the signal
    with running(app) as url:
        want = desired.write(tmp_path / "desired", desired.DC, url,
                             [desired.Person("someone", "someone@example.com", True)], ["team-*"])
        child = subprocess.Popen([sys.executable, "-m", "reconcile.cli", "--desired", str(want.directory), "plan"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "NO_COLOR": "1", **want.env})
        try:
            deadline = time.monotonic() + 60
            while not ctx.log.in_flight and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)  # until the plan's first request is in flight
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert child.returncode == 130, err
    assert err.strip().splitlines() == ["Interrupted. A later run of the same apply resumes where this one stopped."]
    assert out == ""
