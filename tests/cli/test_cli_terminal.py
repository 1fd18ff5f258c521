"""On a terminal (a real pseudo-terminal), apply draws a rich progress bar with counts and ETA; piped,
the same run prints only the plain lines. `--quiet` draws nothing.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.support.apply import EXPECTED, write_desired, write_world

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_a_terminal(args: list[str], env: dict[str, str], *, raw: bool = False) -> tuple[int, str]:
    """Run the CLI with stdin, stdout and stderr on a pseudo-terminal; everything it drew, escapes
    removed (kept with `raw`)."""
    master, slave = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "reconcile.cli", *args], stdin=slave, stdout=slave,
                               stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the other side closed (Linux: EIO)
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(master)
    code = process.wait(timeout=30)
    drawn = b"".join(chunks).decode("utf-8", "replace")
    return code, drawn if raw else ANSI.sub("", drawn.replace("\r", "\n"))


def test_apply_draws_a_progress_bar_with_counts_and_eta_on_a_terminal(tmp_path: Path) -> None:
    state = write_world(tmp_path / "world.json")
    desired = write_desired(tmp_path / "desired", state)
    text = (desired / "reconcile.yaml").read_text().replace("  type: memory\n", "  type: memory\n  delay: 0.3\n")
    (desired / "reconcile.yaml").write_text(text)
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    base = ["--desired", str(desired), "--state-dir", str(tmp_path / "state")]

    code, drawn = on_a_terminal([*base, "apply", "--auto-approve"], env)

    assert code == 0, drawn
    bars = [line for line in drawn.splitlines() if line.startswith("apply ") and "ETA" in line]
    assert any(re.search(r"\b[1-4]/5\b", line) for line in bars), drawn  # drawn while it ran
    assert all(f"Did {line}" in drawn for line in EXPECTED)
    assert "5 done" in drawn

    write_world(state)  # the same run again, piped: plain lines only
    piped = subprocess.run([sys.executable, "-m", "reconcile.cli", *base, "apply", "--auto-approve"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert piped.returncode == 0, piped.stderr
    assert "ETA" not in piped.stdout + piped.stderr and "\x1b[" not in piped.stdout
    assert f"Did {EXPECTED[0]}" in piped.stdout

    write_world(state)
    code, drawn = on_a_terminal(["--quiet", *base, "apply", "--auto-approve"], env)
    assert code == 0, drawn
    assert "ETA" not in drawn and "5 done" in drawn
