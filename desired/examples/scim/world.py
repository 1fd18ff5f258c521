"""The SCIM example's identity provider: a local `scim2-server` seeded with directory.json.

    python desired/examples/scim/world.py start [--port 8991] [--token example-scim-token]
    python desired/examples/scim/world.py stop

`start` runs scim2-server in the background (its pid in ./scim2-server.pid, its log in ./scim2-server.log),
waits until it answers, and creates the users and groups of directory.json through its SCIM API (groups
first, members after: dept-platform and platform-oncall contain each other). `seed(base, token)` is what
the tests call. Needs `scim2-server` (`pip install scim2-server`; part of reconcile's test extras).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

DIRECTORY = Path(__file__).with_name("directory.json")
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
PID_FILE = Path("scim2-server.pid")


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code not in (200, 201, 204):
        sys.exit(f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text}")
    return response.json() if response.content else {}


def seed(base: str, token: str, directory: Path = DIRECTORY) -> dict[str, str]:
    """Create directory.json's users and groups on the SCIM server at `base`; returns name -> SCIM id."""
    world = json.loads(directory.read_text(encoding="utf-8"))
    ids: dict[str, str] = {}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json"}
    with httpx.Client(base_url=base.rstrip("/"), headers=headers, timeout=30) as client:
        for user in world["users"]:
            ids[user["userName"]] = _ok(client.post("/Users", json={"schemas": [USER], **user}))["id"]
        for group in world["groups"]:
            body = {"schemas": [GROUP], "displayName": group["displayName"]}
            ids[group["displayName"]] = _ok(client.post("/Groups", json=body))["id"]
        for group in world["groups"]:
            members = [{"value": ids[u], "type": "User"} for u in group.get("users", [])]
            members += [{"value": ids[g], "type": "Group"} for g in group.get("groups", [])]
            if members:
                operation = {"op": "add", "path": "members", "value": members}
                _ok(client.patch(f"/Groups/{ids[group['displayName']]}",
                                 json={"schemas": [PATCH], "Operations": [operation]}))
    return ids


def _server_command() -> list[str]:
    beside = Path(sys.executable).with_name("scim2-server")
    found = str(beside) if beside.exists() else shutil.which("scim2-server")
    if found is None:
        sys.exit("scim2-server is not installed: pip install scim2-server (reconcile's test extras have it)")
    return [found]


def start(port: int, token: str) -> None:
    log = Path("scim2-server.log").open("wb")  # noqa: SIM115 (the server writes it after we exit)
    process = subprocess.Popen([*_server_command(), "--hostname", "127.0.0.1", "--port", str(port),
                                "--bearer-token", token], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    PID_FILE.write_text(str(process.pid), encoding="utf-8")
    base = f"http://127.0.0.1:{port}/v2"
    for _ in range(200):  # up to 20 s
        if process.poll() is not None:
            sys.exit(f"scim2-server exited ({process.returncode}); see scim2-server.log (is port {port} taken?)")
        try:
            httpx.get(f"{base}/ServiceProviderConfig", headers={"Authorization": f"Bearer {token}"}, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        sys.exit(f"scim2-server did not answer on port {port}; see scim2-server.log")
    ids = seed(base, token)
    print(f"scim2-server on {base} (pid {process.pid}): {len(ids)} users and groups from {DIRECTORY.name}")


def stop() -> None:
    if PID_FILE.exists():
        os.kill(int(PID_FILE.read_text(encoding="utf-8")), signal.SIGTERM)
        PID_FILE.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--port", type=int, default=8991)
    parser.add_argument("--token", default="example-scim-token")
    args = parser.parse_args()
    start(args.port, args.token) if args.action == "start" else stop()


if __name__ == "__main__":
    main()
