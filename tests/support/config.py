"""Helpers for the config tests: write a desired directory, load it, collect the problem lines."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconcile import config
from reconcile.config import yamlfile
from reconcile.errors import ConfigError
from reconcile.settings import Config

# A valid head used by most cases: lines 1-9 (users/groups appended from line 10).
HEAD = """\
version: 1
target:
  type: confluence-dc
  url: https://confluence.example.com
  auth:
    token: ${TOKEN}
scope:
  groups: ["team-*"]
  users: ["*"]
"""
ENV = {"TOKEN": "t0ken-VALUE-never-shown"}
# The `now` exemption horizons are measured from: fixed, so that no test reads the wall clock.
NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def write(root: Path, files: Mapping[str, str]) -> Path:
    """Write `files` (name -> YAML text, dedented) into `root` and return it."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def problems(directory: str | Path, env: Mapping[str, str] = ENV, *, now: datetime = NOW) -> list[str]:
    """The `file:line:col: message` lines load() reports (empty when the directory is valid)."""
    try:
        config.load(directory, env, now=now)
    except ConfigError as exc:
        return exc.problems
    return []


def load(directory: str | Path, env: Mapping[str, str] = ENV, *, now: datetime = NOW) -> Config:
    return config.load(directory, env, now=now)


def as_json(path: Path) -> Any:
    """A YAML file as plain JSON data, the way an editor's schema validator sees it (YAML 1.2 core
    schema, as the loader reads it: `until: 2027-03-01` is a string, not a date)."""
    return json.loads(json.dumps(yamlfile.load(path.read_text(encoding="utf-8"), [])))
