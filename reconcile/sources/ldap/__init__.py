"""The LDAP / Active Directory source: `LdapSource(config).read() -> DesiredState`."""

from reconcile.sources.ldap.source import LdapSource

__all__ = ["LdapSource"]
