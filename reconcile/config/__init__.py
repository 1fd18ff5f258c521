"""The desired directory: `load()` turns its `*.yaml` files into a validated `settings.Config`
(or raises ConfigError listing every problem); `json_schema()` is the same format as JSON Schema.
"""

from reconcile.config.format import json_schema
from reconcile.config.loader import load

__all__ = ["json_schema", "load"]
