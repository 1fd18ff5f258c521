"""A small memory-target world and its configuration, shared by the apply, journal and CLI tests.

The world, against the desired state below, plans exactly:
  enable erin; add alice -> team-eng; add carol -> team-docs; remove alice <- team-docs;
  disable dave (absent from the desired state). `admin` is protected (confluence-administrators).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from reconcile.model import DesiredState, DesiredUser, Globs, Policy, Scope, Status
from reconcile.settings import Config, MemorySettings

WORLD: dict[str, Any] = {
    "me": "u-admin",
    "users": [
        {"ref": "u-admin", "username": "admin", "email": "admin@example.com"},
        {"ref": "u-alice", "username": "alice", "email": "alice@example.com", "display_name": "Alice"},
        {"ref": "u-bob", "username": "bob", "email": "bob@example.com"},
        {"ref": "u-carol", "username": "carol", "email": "carol@example.com"},
        {"ref": "u-dave", "username": "dave", "email": "dave@example.com"},
        {"ref": "u-erin", "username": "erin", "email": "erin@example.com", "status": "disabled"},
        {"ref": "u-out", "username": "outsider", "email": "outsider@elsewhere.org"},
    ],
    "groups": [
        {"name": "confluence-administrators", "members": ["u-admin"]},
        {"name": "team-docs", "members": ["u-alice", "u-dave", "u-out"]},
        {"name": "team-eng", "members": ["u-bob"]},
        {"name": "team-ldap", "members": [], "readonly": True},
    ],
}

EXPECTED = [
    "enable erin@example.com (u-erin)",
    "add alice@example.com (u-alice) to team-eng",
    "add carol@example.com (u-carol) to team-docs",
    "remove alice@example.com (u-alice) from team-docs",
    "disable dave (u-dave)",
]

DESIRED_YAML = """\
version: 1
target:
  type: memory
  state: {state}
scope:
  users: ["*@example.com"]
  groups: ["team-*"]
users:
  alice@example.com:
    groups: [team-eng]
  bob@example.com:
    groups: [team-eng]
  carol@example.com:
    groups: [team-docs]
  erin@example.com: {{}}
"""


def desired_users() -> list[DesiredUser]:
    return [
        DesiredUser("alice@example.com", groups=frozenset({"team-eng"})),
        DesiredUser("bob@example.com", groups=frozenset({"team-eng"})),
        DesiredUser("carol@example.com", groups=frozenset({"team-docs"})),
        DesiredUser("erin@example.com", status=Status.ACTIVE),
    ]


def write_world(path: Path, world: dict[str, Any] | None = None) -> Path:
    path.write_text(json.dumps(world if world is not None else WORLD, indent=2), encoding="utf-8")
    return path


def read_world(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def world() -> dict[str, Any]:
    return copy.deepcopy(WORLD)


def make_config(state: Path, users: list[DesiredUser] | None = None, *, delay: float = 0.0,
                policy: Policy | None = None) -> Config:
    """The configuration `DESIRED_YAML` describes, built directly (no YAML parsing involved)."""
    return Config(
        target=MemorySettings(state=str(state), delay=delay),
        scope=Scope(users=Globs(("*@example.com",)), groups=Globs(("team-*",))),
        policy=policy or Policy(),
        inline=DesiredState.build(desired_users() if users is None else users),
    )


def write_desired(directory: Path, state: Path, extra: str = "") -> Path:
    """A desired directory with one file, for the CLI tests."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "reconcile.yaml").write_text(DESIRED_YAML.format(state=state) + extra, encoding="utf-8")
    return directory


def member_of(data: dict[str, Any], group: str) -> list[str]:
    return next(sorted(g["members"]) for g in data["groups"] if g["name"] == group)


def status_of(data: dict[str, Any], ref: str) -> str:
    return str(next(u.get("status", "active") for u in data["users"] if u["ref"] == ref))
