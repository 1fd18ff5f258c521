"""The desired directory: `load()` turns its `*.yaml` files into a validated `settings.Config`
(or raises ConfigError listing every problem); `json_schema()` is the same format as JSON Schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconcile.config.format import json_schema
    from reconcile.config.loader import load

__all__ = ["json_schema", "load"]


def __getattr__(name: str) -> Any:
    # On first use, not with the package: the loader imports the target and source registries, which import
    # reconcile.config.format (so this package); loading it here made `import reconcile.targets.factory` a cycle.
    if name == "load":
        from reconcile.config.loader import load

        return load
    if name == "json_schema":
        from reconcile.config.format import json_schema

        return json_schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
