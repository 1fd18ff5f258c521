"""The source types: each one's schema node, settings class and factory, in one place.

A new source type is one `SOURCES.register(Kind(...))` here plus its module; source modules are
imported only when a source of their type is opened.
"""

from __future__ import annotations

from reconcile.config.checks import ldap_problems
from reconcile.config.format import CSV, LDAP
from reconcile.config.registry import Kind, Registry
from reconcile.settings import CsvSourceConfig, LdapSourceConfig
from reconcile.sources.base import Source


def _ldap(config: LdapSourceConfig) -> Source:
    from reconcile.sources.ldap import LdapSource

    return LdapSource(config)


def _csv(config: CsvSourceConfig) -> Source:
    from reconcile.sources.csv import CsvSource

    return CsvSource(config)


SOURCES: Registry[Source] = Registry("source")
SOURCES.register(Kind("ldap", LDAP, LdapSourceConfig, _ldap, check=ldap_problems))
SOURCES.register(Kind("csv", CSV, CsvSourceConfig, _csv))
