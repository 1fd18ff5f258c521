"""The Google Workspace source: `GoogleSource(config).read() -> DesiredState` (Admin SDK Directory API)."""

from reconcile.sources.google_workspace.source import GoogleSource

__all__ = ["GoogleSource"]
