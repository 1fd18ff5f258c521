"""The SCIM 2.0 source: `ScimSource(config).read() -> DesiredState`."""

from reconcile.sources.scim.source import ScimSource

__all__ = ["ScimSource"]
