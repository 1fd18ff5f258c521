"""Build the Target a configuration names, through the target registry."""

from __future__ import annotations

import httpx

from reconcile.settings import TargetSettings
from reconcile.targets.base import Target
from reconcile.targets.registry import TARGETS


def build_target(config: TargetSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> Target:
    """The target for `config`; `transport` lets tests route HTTP targets to the in-process simulator."""
    return TARGETS.get(str(config.type)).open(config, transport)
