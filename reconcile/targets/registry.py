"""The target types: each one's schema node, settings class and factory, in one place.

Target modules are imported only when a target of their type is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from reconcile.config.format import CLOUD, CONFLUENCE_DC, MEMORY
from reconcile.config.registry import Kind, Registry
from reconcile.settings import AtlassianCloudSettings, ConfluenceDcSettings, MemorySettings, TargetType
from reconcile.targets.base import Target

if TYPE_CHECKING:  # httpx (and the rich it imports) load when a target is built: `validate` needs neither
    import httpx

    Transport = httpx.AsyncBaseTransport | None


def _confluence_dc(config: ConfluenceDcSettings, transport: Transport) -> Target:
    from reconcile.targets.confluence_dc import ConfluenceDcTarget

    return ConfluenceDcTarget(config, transport=transport)


def _atlassian_cloud(config: AtlassianCloudSettings, transport: Transport) -> Target:
    from reconcile.targets.atlassian_cloud import AtlassianCloudTarget

    return AtlassianCloudTarget(config, transport=transport)


def _memory(config: MemorySettings, transport: Transport) -> Target:
    from reconcile.targets.memory import MemoryTarget

    return MemoryTarget(config)


def _kind(type_: TargetType) -> Kind[object, Target]:
    """The registry entry of each target type; exhaustive, so a new TargetType fails mypy here."""
    match type_:
        case TargetType.CONFLUENCE_DC:
            return Kind(str(type_), CONFLUENCE_DC, ConfluenceDcSettings, _confluence_dc)
        case TargetType.ATLASSIAN_CLOUD:
            return Kind(str(type_), CLOUD, AtlassianCloudSettings, _atlassian_cloud)
        case TargetType.MEMORY:
            return Kind(str(type_), MEMORY, MemorySettings, _memory)
        case _:
            assert_never(type_)


TARGETS: Registry[Target] = Registry("target")
for _type in TargetType:
    TARGETS.register(_kind(_type))
