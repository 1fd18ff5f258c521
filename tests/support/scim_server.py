"""A real SCIM 2.0 server for the tests: PyPI `scim2-server`, run as a subprocess on a free loopback port.

`scim_server` (session scope, registered in conftest.py) starts it with a bearer token and seeds it through
its own API with SEED_USERS and SEED_GROUPS: active and inactive users, nested groups and a group cycle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.net import free_port, wait_port

SCIM_TOKEN = "scim-test-bearer-token"  # a test credential of this throwaway server only
SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_RESULTS = 10  # the server's page-size cap (its default is 1000): small, so the seed spans several pages

# scim2-server's default configuration with `filter.maxResults` lowered: it then clamps `count` to it.
SERVICE_PROVIDER_CONFIG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": True},
    "bulk": {"supported": True, "maxOperations": 1000, "maxPayloadSize": 1048576},
    "filter": {"supported": True, "maxResults": MAX_RESULTS},
    "changePassword": {"supported": True},
    "sort": {"supported": True},
    "etag": {"supported": True},
}

# (userName, active, externalId, emails); every user has `active` set: scim2-server does not match
# `active eq true` on a user whose `active` was never set.
SEED_USERS: tuple[tuple[str, bool, str, tuple[str, ...]], ...] = (
    ("alice", True, "ext-alice", ("alice@example.com",)),
    ("bob", True, "ext-bob", ("bob@example.com", "robert@example.org")),
    ("carol", False, "ext-carol", ("carol@example.com",)),
    ("dave", True, "ext-dave", ("dave@example.com",)),
    ("erin", False, "ext-erin", ("erin@example.com",)),
    *((f"user{i:02d}", i % 5 != 0, f"ext-user{i:02d}", (f"user{i:02d}@example.com",)) for i in range(1, 21)),
)

# group -> (user members, group members). engineering contains backend, backend contains platform
# (nesting two deep); cycle-a and cycle-b contain each other.
SEED_GROUPS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "platform": (("dave",), ()),
    "backend": (("bob", "carol"), ("platform",)),
    "engineering": (("alice",), ("backend",)),
    "everyone": (tuple(u[0] for u in SEED_USERS), ()),
    "cycle-a": (("alice",), ("cycle-b",)),
    "cycle-b": (("erin",), ("cycle-a",)),
    "empty": ((), ()),
}


@dataclass
class ScimServer:
    """A running scim2-server: `base` is the SCIM base URL (…/v2); ids by userName / displayName."""

    base: str
    token: str
    process: subprocess.Popen[bytes]
    user_ids: dict[str, str] = field(default_factory=dict)
    group_ids: dict[str, str] = field(default_factory=dict)

    def client(self, *, token: str | None = None) -> httpx.Client:
        """A plain httpx client on the base URL with the bearer token (`token=""`: none)."""
        value = self.token if token is None else token
        headers = {"Accept": SCIM_JSON}
        if value:
            headers["Authorization"] = f"Bearer {value}"
        return httpx.Client(base_url=self.base, headers=headers, timeout=10)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_scim_server(directory: Path, token: str = SCIM_TOKEN) -> ScimServer:
    """Start scim2-server on a free 127.0.0.1 port with page size MAX_RESULTS; its output goes to
    directory/scim2-server.log."""
    log = directory / "scim2-server.log"
    config = directory / "service-provider-config.json"
    config.write_text(json.dumps(SERVICE_PROVIDER_CONFIG), encoding="utf-8")
    for attempt in range(3):  # the free port may be taken between the probe and the bind
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "scim2_server.testserver.cli", "--hostname", "127.0.0.1",
                 "--port", str(port), "--bearer-token", token, "--service-provider-config", str(config)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            wait_port(port, process, log, timeout=20)
        except RuntimeError:
            if attempt == 2:
                raise
            continue
        return ScimServer(base=f"http://127.0.0.1:{port}/v2", token=token, process=process)
    raise AssertionError("unreachable")


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, f"{response.request.method} {response.request.url} -> " \
        f"{response.status_code}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


def seed(server: ScimServer) -> None:
    """Create SEED_USERS and SEED_GROUPS through the server's API (groups first, members added after,
    so that a cycle can be formed)."""
    with server.client() as client:
        for username, active, external_id, emails in SEED_USERS:
            body = {"schemas": [USER_SCHEMA], "userName": username, "active": active, "externalId": external_id,
                    "displayName": username.capitalize(),
                    "emails": [{"value": e, "type": "work", "primary": i == 0} for i, e in enumerate(emails)]}
            server.user_ids[username] = _created(client.post("/Users", json=body))["id"]
        for name in SEED_GROUPS:
            body = {"schemas": [GROUP_SCHEMA], "displayName": name, "externalId": f"ext-{name}"}
            server.group_ids[name] = _created(client.post("/Groups", json=body))["id"]
        for name, (users, groups) in SEED_GROUPS.items():
            members = [{"value": server.user_ids[u], "type": "User"} for u in users]
            members += [{"value": server.group_ids[g], "type": "Group"} for g in groups]
            if not members:
                continue
            patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "members", "value": members}]}
            response = client.patch(f"/Groups/{server.group_ids[name]}", json=patch)
            assert response.status_code in (200, 204), f"PATCH group {name} -> {response.status_code}: {response.text}"


@pytest.fixture(scope="session", name="scim_server")
def scim_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimServer]:
    server = start_scim_server(tmp_path_factory.mktemp("scim2-server"))
    try:
        seed(server)
        yield server
    finally:
        server.stop()
