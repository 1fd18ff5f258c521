"""The source types: each one's schema node, settings class and factory, in one place.

A new source type is one `SOURCES.register(Kind(...))` here plus its module; source modules are
imported only when a source of their type is opened.
"""

from __future__ import annotations

from reconcile.config.checks import ldap_problems
from reconcile.config.format import CLOUD_SOURCE, CSV, DC_SOURCE, LDAP
from reconcile.config.idp_entra import ENTRA_SOURCE, EntraSourceSettings
from reconcile.config.idp_google import GOOGLE_WORKSPACE, GoogleSourceSettings, google_problems
from reconcile.config.idp_scim import SCIM, ScimSourceSettings
from reconcile.config.okta import OKTA
from reconcile.config.registry import Kind, Registry
from reconcile.settings import CloudSourceSettings, CsvSourceSettings, DcSourceSettings, LdapSourceSettings
from reconcile.sources.base import Source
from reconcile.sources.okta.settings import OktaSourceSettings


def _ldap(config: LdapSourceSettings) -> Source:
    from reconcile.sources.ldap import LdapSource

    return LdapSource(config)


def _csv(config: CsvSourceSettings) -> Source:
    from reconcile.sources.csv import CsvSource

    return CsvSource(config)


def _confluence_dc(config: DcSourceSettings) -> Source:
    from reconcile.sources.site.dc import DcSource

    return DcSource(config)


def _atlassian_cloud(config: CloudSourceSettings) -> Source:
    from reconcile.sources.site.cloud import CloudSource

    return CloudSource(config)


def _entra_id(config: EntraSourceSettings) -> Source:
    from reconcile.sources.entra_id import EntraSource

    return EntraSource(config)
def _okta(config: OktaSourceSettings) -> Source:
    from reconcile.sources.okta.source import OktaSource

    return OktaSource(config)
def _scim(config: ScimSourceSettings) -> Source:
    from reconcile.sources.scim import ScimSource

    return ScimSource(config)
def _google_workspace(config: GoogleSourceSettings) -> Source:
    from reconcile.sources.google_workspace import GoogleSource

    return GoogleSource(config)


SOURCES: Registry[Source] = Registry("source")
SOURCES.register(Kind("ldap", LDAP, LdapSourceSettings, _ldap, check=ldap_problems))
SOURCES.register(Kind("csv", CSV, CsvSourceSettings, _csv))
SOURCES.register(Kind("confluence-dc", DC_SOURCE, DcSourceSettings, _confluence_dc))
SOURCES.register(Kind("atlassian-cloud", CLOUD_SOURCE, CloudSourceSettings, _atlassian_cloud))
SOURCES.register(Kind("entra-id", ENTRA_SOURCE, EntraSourceSettings, _entra_id))
SOURCES.register(Kind("okta", OKTA, OktaSourceSettings, _okta))
SOURCES.register(Kind("scim", SCIM, ScimSourceSettings, _scim))
SOURCES.register(Kind("google-workspace", GOOGLE_WORKSPACE, GoogleSourceSettings, _google_workspace,
                      check=google_problems))
