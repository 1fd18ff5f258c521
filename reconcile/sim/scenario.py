"""Scenario YAML -> a simulated world plus run-time settings (format in docs/simulator.md).

Every problem is collected and reported as `file:line:col: message` in one errors.ConfigError.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from reconcile.errors import ConfigError
from reconcile.sim.confluence_dc.facts import DcSpace, Licence
from reconcile.sim.confluence_dc.world import (
    INTERNAL_DIRECTORY,
    DcUser,
    DcWorld,
    Directory,
    WorldError,
    parse_version,
    user_key,
)
from reconcile.sim.control import SimSettings, faults_from, rate_limit_from
from reconcile.sim.entra_id.scenario import world_from_scenario as entra_world
from reconcile.sim.entra_id.world import EntraWorld
from reconcile.sim.google_workspace.world import GoogleWorld
from reconcile.sim.okta.world import OktaWorld
from reconcile.sim.sections import plain, unknown_keys

EXAMPLE = Path(__file__).with_name("scenarios") / "example.yaml"
SMALL_TEXT = 256 * 1024  # characters: scenario texts up to this size keep their parsed tree (_load_small)

TOP_KEYS = {"confluence_dc", "cloud", "sim", "okta", "google_workspace", "entra_id"}
DC_KEYS = {"version", "websudo", "delete_seconds", "directories", "admin_groups", "users", "unsynced", "groups",
           "licence", "spaces", "last_login_field"}
DIRECTORY_KEYS = {"name", "readonly"}
USER_KEYS = {"username", "key", "display_name", "email", "status", "directory", "last_login", "password",
             "tokens", "groups"}
UNSYNCED_KEYS = {"username", "key", "display_name", "directory"}
GROUP_KEYS = {"name", "directory", "members"}
LICENCE_KEYS = {"max_users", "can_use"}
SPACE_KEYS = {"key", "name", "type", "status", "creator", "admins", "admin_groups", "content"}
SIM_KEYS = {"latency_ms", "rate_limit", "faults", "seed"}


@dataclass(frozen=True, slots=True)
class Scenario:
    dc: DcWorld
    settings: SimSettings
    cloud: Mapping[str, Any] | None  # the raw `cloud:` section, for CloudWorld.from_scenario
    source: str
    okta: OktaWorld | None = None  # the `okta:` section (reconcile/sim/okta/world.py)
    google_workspace: GoogleWorld | None = None  # the `google_workspace:` section
    entra_id: EntraWorld | None = None  # the `entra_id:` section (reconcile/sim/entra_id/scenario.py)


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[str] = []

    def at(self, node: Any, key: Any, message: str) -> None:
        line = col = 0
        try:
            if isinstance(node, CommentedMap) and key in node:
                line, col = node.lc.key(key)
            elif isinstance(node, CommentedSeq) and isinstance(key, int):
                line, col = node.lc.item(key)
            elif hasattr(node, "lc"):
                line, col = node.lc.line, node.lc.col
        except (KeyError, IndexError, TypeError):
            pass
        self.items.append(f"{self.file}:{line + 1}:{col + 1}: {message}")

    def unknown_keys(self, node: Any, allowed: set[str], what: str) -> None:
        unknown_keys(node, allowed, what, self.at)


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Read a scenario file (default: the packaged example world)."""
    file = Path(path) if path is not None else EXAMPLE
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read the scenario: {exc.strerror}"], subject="the scenario") from exc
    return parse_scenario(text, str(file))


def parse_scenario(text: str, file: str = "<scenario>") -> Scenario:
    problems = _Problems(file)
    try:
        data = _load_small(text) if len(text) <= SMALL_TEXT else YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        problem = f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"
        raise ConfigError([problem], subject="the scenario") from exc
    if data is None:
        data = CommentedMap()
    if not isinstance(data, Mapping):
        problem = f"{file}:1:1: a scenario is a mapping with confluence_dc/cloud/sim sections"
        raise ConfigError([problem], subject="the scenario")
    problems.unknown_keys(data, TOP_KEYS, "the scenario")
    world = _dc_world(data.get("confluence_dc") or CommentedMap(), problems)
    settings = _settings(data.get("sim") or CommentedMap(), problems)
    cloud = data.get("cloud")
    idps: dict[str, Any] = {}
    for name, kind in (("okta", OktaWorld), ("google_workspace", GoogleWorld)):
        if data.get(name) is not None and not isinstance(data[name], Mapping):
            problems.at(data, name, f"{name} is a mapping")
        elif data.get(name) is not None:
            idps[name] = kind.from_scenario(data[name], problems.at)
    if data.get("entra_id") is not None:
        try:
            idps["entra_id"] = entra_world(data["entra_id"], problems.at)
        except (ValueError, TypeError) as exc:
            problems.at(data, "entra_id", f"entra_id: {exc}")
    if problems.items:
        raise ConfigError(problems.items, subject="the scenario")
    return Scenario(dc=world, settings=settings, cloud=plain(cloud) if cloud is not None else None, source=file,
                    **idps)


@functools.lru_cache(maxsize=16)
def _load_small(text: str) -> Any:
    """The YAML tree of a small scenario text, kept for the next simulator built from the same text (the example
    world is built again and again in a test run: ~55 ms of round-trip parsing each time). Only read, never changed:
    the worlds are built from it anew each time. A large text is not kept: its tree would outweigh its world."""
    return YAML(typ="rt").load(text)


def _settings(node: Any, problems: _Problems) -> SimSettings:
    problems.unknown_keys(node, SIM_KEYS, "sim")
    settings = SimSettings()
    try:
        changes: dict[str, Any] = {}
        for key in ("latency_ms", "seed"):
            if key in node:
                changes[key] = node[key]
        settings = settings.updated(changes)
        if "rate_limit" in node:
            settings = SimSettings(settings.latency_ms, settings.faults, rate_limit_from(plain(node["rate_limit"])),
                                   settings.seed)
        if "faults" in node:
            settings = SimSettings(settings.latency_ms, faults_from(plain(node["faults"])), settings.rate_limit,
                                   settings.seed)
    except (ValueError, TypeError) as exc:
        problems.at(node, None, f"sim: {exc}")
    return settings


def _dc_world(node: Any, problems: _Problems) -> DcWorld:
    problems.unknown_keys(node, DC_KEYS, "confluence_dc")
    version = (9, 4)
    if "version" in node:
        try:
            version = parse_version(str(node["version"]))
        except ValueError:
            problems.at(node, "version", f"version {node['version']!r} is not like 8.4 or 9.3")
    directories = [Directory(INTERNAL_DIRECTORY)]
    for i, item in enumerate(node.get("directories") or []):
        problems.unknown_keys(item, DIRECTORY_KEYS, "a directory")
        if not isinstance(item, Mapping) or not item.get("name"):
            problems.at(node["directories"], i, "a directory needs a name")
            continue
        if item["name"] == INTERNAL_DIRECTORY:
            directories[0] = Directory(INTERNAL_DIRECTORY, bool(item.get("readonly", False)))
        else:
            directories.append(Directory(str(item["name"]), bool(item.get("readonly", False))))
    world = DcWorld(
        version=version,
        directories=directories,
        admin_groups=tuple(str(g) for g in (node.get("admin_groups") or ["confluence-administrators"])),
        websudo=bool(node.get("websudo", True)),
        delete_seconds=float(node.get("delete_seconds", 0.2)),
    )
    world.last_login_field = bool(node.get("last_login_field", True))
    for i, item in enumerate(node.get("groups") or []):
        problems.unknown_keys(item, GROUP_KEYS, "a group")
        if not isinstance(item, Mapping) or not item.get("name"):
            problems.at(node["groups"], i, "a group needs a name")
            continue
        try:
            world.add_group(str(item["name"]), str(item.get("directory", INTERNAL_DIRECTORY)))
        except WorldError as exc:
            problems.at(item, "name", exc.message)
    memberships: list[tuple[Any, Any, str, str]] = []  # (node, key, username, group)
    for i, item in enumerate(node.get("users") or []):
        problems.unknown_keys(item, USER_KEYS, "a user")
        if not isinstance(item, Mapping) or not item.get("username"):
            problems.at(node["users"], i, "a user needs a username")
            continue
        status = str(item.get("status", "active"))
        if status not in ("active", "disabled"):
            problems.at(item, "status", f"status is active or disabled, not {status!r}")
        username = str(item["username"]).lower()
        if item.get("last_login") is not None and not _is_timestamp(item["last_login"]):
            problems.at(item, "last_login", f"last_login {item['last_login']!r} is not an ISO-8601 timestamp "
                                            "(null: never logged in)")
        user = DcUser(
            key=str(item.get("key") or user_key(f"user:{username}")),
            username=username,
            display_name=str(item.get("display_name") or username),
            email=str(item["email"]) if item.get("email") else None,
            active=status != "disabled",
            directory=str(item.get("directory", INTERNAL_DIRECTORY)),
            last_login=str(item["last_login"]) if item.get("last_login") else None,
            password=str(item["password"]) if item.get("password") is not None else None,
        )
        try:
            world.add_user(user)
        except WorldError as exc:
            problems.at(item, "username", exc.message)
            continue
        for token in item.get("tokens") or []:
            world.tokens[str(token)] = user.key
        for group in item.get("groups") or []:
            memberships.append((item, "groups", username, str(group).lower()))
    for i, item in enumerate(node.get("unsynced") or []):
        problems.unknown_keys(item, UNSYNCED_KEYS, "an unsynced entry")
        if not isinstance(item, Mapping) or not item.get("username"):
            problems.at(node["unsynced"], i, "an unsynced entry needs a username")
            continue
        username = str(item["username"]).lower()
        entry = DcUser(
            key=str(item.get("key") or user_key(f"unsynced:{i}:{username}")),
            username=username,
            display_name=str(item.get("display_name") or username),
            active=False,
            directory=str(item.get("directory", INTERNAL_DIRECTORY)),
            unsynced=True,
        )
        try:
            world.add_user(entry)
        except WorldError as exc:
            problems.at(item, "username", exc.message)
    for item in node.get("groups") or []:
        if isinstance(item, Mapping) and item.get("name"):
            for member in item.get("members") or []:
                memberships.append((item, "members", str(member).lower(), str(item["name"]).lower()))
    for owner, key, username, group in memberships:
        user_ref = world.by_username.get(username)
        if user_ref is None:
            problems.at(owner, key, f"member {username!r} is not a user of this scenario")
        elif group not in world.groups:
            problems.at(owner, key, f"group {group!r} is not a group of this scenario")
        else:
            world.add_member(user_ref, group)
    if "licence" in node:
        _licence(node, world, problems)
    for i, item in enumerate(node.get("spaces") or []):
        _space(node["spaces"], i, item, world, problems)
    return world


def _is_timestamp(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _licence(node: Any, world: DcWorld, problems: _Problems) -> None:
    """`licence: {max_users: 30, can_use: [groups]}` (max_users null: unlimited)."""
    item = node["licence"] or CommentedMap()
    problems.unknown_keys(item, LICENCE_KEYS, "licence")
    most = item.get("max_users") if isinstance(item, Mapping) else None
    if most is not None and (not isinstance(most, int) or isinstance(most, bool) or most < 0):
        problems.at(item, "max_users", f"max_users is a whole number of seats (or null: unlimited), not {most!r}")
        most = None
    default = [g for g in ("confluence-users", *world.admin_groups) if g in world.groups]
    groups = [str(g).lower() for g in (item.get("can_use", default) or [])] if isinstance(item, Mapping) else default
    for group in groups:
        if group not in world.groups:
            problems.at(item, "can_use", f"can_use group {group!r} is not a group of this scenario")
    world.licence = Licence(most, tuple(g for g in groups if g in world.groups))


def _space(parent: Any, i: int, item: Any, world: DcWorld, problems: _Problems) -> None:
    problems.unknown_keys(item, SPACE_KEYS, "a space")
    if not isinstance(item, Mapping) or not item.get("key"):
        problems.at(parent, i, "a space needs a key")
        return
    key = str(item["key"])
    kind = str(item.get("type", "personal" if key.startswith("~") else "global"))
    if kind not in ("personal", "global"):
        problems.at(item, "type", f"a space's type is personal or global, not {kind!r}")
    status = str(item.get("status", "current"))
    if status not in ("current", "archived"):
        problems.at(item, "status", f"a space's status is current or archived, not {status!r}")
    if key in world.spaces:
        problems.at(item, "key", f"space {key} is listed twice")

    def user(name: Any, field: str) -> str | None:
        found = world.by_username.get(str(name).lower())
        if found is None:
            problems.at(item, field, f"{field}: {name!r} is not a user of this scenario")
        return found

    creator_name = item.get("creator", key[1:] if kind == "personal" else None)
    creator = user(creator_name, "creator") if creator_name is not None else None
    admins = [k for k in (user(n, "admins") for n in item.get("admins", [creator_name] if creator else [])) if k]
    groups = [str(g).lower() for g in item.get("admin_groups") or []]
    for group in groups:
        if group not in world.groups:
            problems.at(item, "admin_groups", f"admin_groups: {group!r} is not a group of this scenario")
    content: dict[str, int] = {}
    for name, count in (item.get("content") or {}).items():
        found = user(name, "content")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            problems.at(item, "content", f"content: {name}'s page count is a whole number, not {count!r}")
        elif found:
            content[found] = count
    world.spaces[key] = DcSpace(key=key, name=str(item.get("name", key)), type=kind, status=status,
                                id=int(user_key(f"space:{key}")[:6], 16), creator=creator, admins=admins,
                                admin_groups=[g for g in groups if g in world.groups], content=content)
