"""`type: entra-id` sources: their settings dataclasses and their record (keys, defaults, docs), declared
once; the registry (reconcile/sources/registry.py) names the record and builds the settings from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconcile.config.format import (
    REMOTE_HTTP,
    SOURCE_HTTP_FIX,
    glob,
    globs,
    group_name,
    http,
    insecure,
    secret_pair,
    url,
)
from reconcile.config.into import Into
from reconcile.config.nodes import MapOf
from reconcile.config.records import Insecure, Record
from reconcile.config.references import FilePath, SecretFile
from reconcile.config.scalars import Boolean, Choice, Text
from reconcile.model import Globs, Location, norm
from reconcile.settings import HttpSettings, Secret

LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class EntraKey(StrEnum):
    """The user property that is the identity key matched against the target's users."""

    MAIL = "mail"
    UPN = "upn"


class EntraGuests(StrEnum):
    """Whether guests (`userType: Guest`, B2B invitees) are desired users."""

    EXCLUDE = "exclude"
    INCLUDE = "include"


@dataclass(frozen=True, slots=True)
class EntraUsersSettings:
    filter: str | None = None  # Graph `$filter` on /users, passed through
    guests: EntraGuests = EntraGuests.EXCLUDE


@dataclass(frozen=True, slots=True)
class EntraGroupsSettings:
    include: Globs = Globs(("*",))  # noqa: RUF009 - frozen; names (must exist) or globs over displayName
    filter: str | None = None  # Graph `$filter` on /groups, passed through
    map: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class EntraSourceSettings:
    """`sources.<name>` with `type: entra-id`: users and transitive group members of a Microsoft Entra tenant."""

    name: str
    tenant: str
    client_id: str
    client_secret: Secret | None = None
    certificate_file: str | None = None
    private_key: Secret | None = None
    authority: str = LOGIN
    graph_url: str = GRAPH
    scope: str = GRAPH_SCOPE
    users: EntraUsersSettings = EntraUsersSettings()
    groups: EntraGroupsSettings | None = None  # None: no memberships are read
    key: EntraKey = EntraKey.MAIL
    http: HttpSettings = HttpSettings()  # noqa: RUF009 - frozen
    insecure: bool = False
    allow_empty: bool = False
    origin: Location | None = None
    type: str = "entra-id"


def _no_slash(value: str) -> str:
    return value.rstrip("/")


ENTRA_SOURCE = Record(
    {
        "tenant": Text(expand=True, doc="directory (tenant) id, or its domain (contoso.onmicrosoft.com)"),
        "client_id": Text(expand=True, doc="application (client) id of the app registration"),
        "auth": Record(
            {**secret_pair("client_secret", "the app registration's client secret"),
             "certificate_file": FilePath(doc="PEM certificate registered on the app (public; its SHA-256 "
                                          "thumbprint names it)"),
             "private_key_file": SecretFile(doc="PEM private key of that certificate (signs the assertion)")},
            choices=[["client_secret"], ["client_secret_file"], ["certificate_file", "private_key_file"]],
            choices_message="give exactly one of: client_secret, client_secret_file, "
            "certificate_file + private_key_file",
        ),
        "authority": url("the Microsoft identity platform (token endpoint: <authority>/<tenant>/oauth2/v2.0/token)",
                         LOGIN),
        "graph_url": url("Microsoft Graph root (v1.0 is appended)", GRAPH),
        "scope": Text(doc="the scope asked for (national clouds: their Graph's /.default)", default=GRAPH_SCOPE),
        "users": Record(
            {"filter": Text(doc="Graph $filter on /users, passed through (e.g. \"accountEnabled eq true\")"),
             "guests": Choice([str(v) for v in EntraGuests], doc="guests (userType Guest): excluded or included",
                              default=str(EntraGuests.EXCLUDE))},
            doc="which users are desired users",
            into=Into(EntraUsersSettings),
        ),
        "groups": Record(
            {"include": globs("group display names (each must exist) or globs", ["*"]),
             "filter": Text(doc="Graph $filter on /groups, passed through (e.g. \"startswith(displayName,'atl-')\")"),
             "map": MapOf(glob(), group_name(),
                          doc="Entra group glob -> target group; unmapped groups are ignored (no map: every "
                          "included group under its own name)")},
            doc="which groups give memberships (nested groups expanded by Graph's transitiveMembers)",
            into=Into(EntraGroupsSettings, convert={"map": lambda pairs: tuple((k, norm(v)) for k, v in pairs)}),
        ),
        "key": Choice([str(k) for k in EntraKey], doc="the identity key that matches the target's users: mail "
                      "or userPrincipalName", default=str(EntraKey.MAIL)),
        "http": http(),
        "insecure": insecure("an http:// authority or graph_url to another host (credentials travel in clear)"),
        "allow_empty": Boolean(doc="allow this source to yield no users", default=False),
    },
    required=["tenant", "client_id", "auth"],
    insecure=[Insecure(("authority",), REMOTE_HTTP, SOURCE_HTTP_FIX),
              Insecure(("graph_url",), REMOTE_HTTP, SOURCE_HTTP_FIX)],
    doc="a Microsoft Entra ID tenant through Microsoft Graph, read only",
    into=Into(EntraSourceSettings,
              keys={"client_secret": ("auth.client_secret", "auth.client_secret_file"),
                    "certificate_file": ("auth.certificate_file",), "private_key": ("auth.private_key_file",)},
              convert={"authority": _no_slash, "graph_url": _no_slash}, given=("name", "origin")),
)
