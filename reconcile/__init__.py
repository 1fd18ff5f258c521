"""reconcile: declarative reconciliation of Atlassian users and groups."""

__version__ = "0.1.0"
