"""Build the Target a configuration names; the target modules are imported only when used."""

from __future__ import annotations

from typing import assert_never

import httpx

from reconcile.settings import AtlassianCloudConfig, ConfluenceDcConfig, MemoryConfig, TargetConfig
from reconcile.targets.base import Target


def build_target(config: TargetConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> Target:
    """The target for `config`; `transport` lets tests route HTTP targets to the in-process simulator."""
    match config:
        case ConfluenceDcConfig():
            from reconcile.targets.confluence_dc import ConfluenceDcTarget

            return ConfluenceDcTarget(config, transport=transport)
        case AtlassianCloudConfig():
            from reconcile.targets.atlassian_cloud import AtlassianCloudTarget

            return AtlassianCloudTarget(config, transport=transport)
        case MemoryConfig():
            from reconcile.targets.memory import MemoryTarget

            return MemoryTarget(config)
        case _:
            assert_never(config)
