"""`type: entra-id`: a Microsoft Entra ID tenant, read through Microsoft Graph."""

from reconcile.sources.entra_id.source import EntraSource

__all__ = ["EntraSource"]
