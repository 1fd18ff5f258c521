"""Loopback ports for the servers tests start: one free port, and waiting until a server listens on it."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A loopback port nothing listens on now (the OS picks it; a server started next may take it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Wait until something accepts on 127.0.0.1:port; fail with the server's log if it died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"server did not start on port {port}:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.05)  # polling a child process that is starting: there is no clock to inject
