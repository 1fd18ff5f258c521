"""`type: scim`: a SCIM 2.0 service provider (RFC 7643/7644) as a source — its record and settings, together.

The record is the format (and the JSON Schema); `Into` builds `ScimSourceSettings` from it.
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
from reconcile.config.scalars import Boolean, Choice, Integer, Text
from reconcile.model import Globs, Location, norm
from reconcile.settings import HttpSettings, Secret


class ScimKey(StrEnum):
    """Which attribute of a SCIM User keys the desired user (and matches the target's users)."""

    EMAIL = "email"  # `emails[primary eq true].value` (the only email when none is marked primary)
    USERNAME = "username"  # `userName`
    EXTERNAL_ID = "external_id"  # `externalId`, when it holds the target's username or account id


@dataclass(frozen=True, slots=True)
class ScimUsersSettings:
    filter: str | None = None  # a SCIM filter passed to GET /Users as written
    active_when_missing: bool = True  # `active` is optional in RFC 7643: absent means active unless said


@dataclass(frozen=True, slots=True)
class ScimGroupsSettings:
    include: Globs = Globs(("*",))  # noqa: RUF009 (frozen) -- displayNames (each must exist) or globs
    filter: str | None = None  # a SCIM filter passed to GET /Groups as written
    nested: bool = True  # members of type Group are expanded, cycle-safe
    map: tuple[tuple[str, str], ...] = ()  # (SCIM group glob, target group pattern), as LDAP's groups.map


@dataclass(frozen=True, slots=True)
class ScimSourceSettings:
    """`sources.<name>` with `type: scim`: users and groups of a SCIM 2.0 server, read only."""

    name: str
    url: str  # the SCIM base: `{url}/Users`, `{url}/Groups`
    token: Secret
    key: ScimKey = ScimKey.EMAIL
    users: ScimUsersSettings = ScimUsersSettings()
    groups: ScimGroupsSettings | None = None  # None: no memberships are read
    page_size: int = 500  # `count`; servers may lower it (their filter.maxResults): itemsPerPage is followed
    http: HttpSettings = HttpSettings()  # noqa: RUF009 (a frozen dataclass)
    insecure: bool = False
    allow_empty: bool = False
    origin: Location | None = None
    type: str = "scim"


def _filter(doc: str) -> Text:
    return Text(r"^\S(?:.*\S)?$", "'{value}' is not a SCIM filter (it is empty or has leading or trailing spaces)",
                doc=doc)


SCIM = Record(
    {
        "url": url("the SCIM base URL, e.g. https://idp.example.com/scim/v2 (…/Users and …/Groups under it)"),
        **secret_pair("token", "the bearer token"),
        "key": Choice([str(k) for k in ScimKey], doc="the identity key that matches the target's users: "
                      "emails[primary] (email), userName (username) or externalId (external_id)",
                      default=str(ScimKey.EMAIL)),
        "users": Record(
            {"filter": _filter('a SCIM filter for GET /Users, e.g. \'userType eq "Employee"\' (default: every user)'),
             "active_when_missing": Boolean(doc="a user without `active` is active (false: disabled)", default=True)},
            doc="which SCIM users are desired users",
            into=Into(ScimUsersSettings),
        ),
        "groups": Record(
            {"include": globs("displayNames (each must exist) or globs of the groups to read", ["*"]),
             "filter": _filter('a SCIM filter for GET /Groups, e.g. \'displayName sw "team-"\''),
             "nested": Boolean(doc="expand members of type Group (cycle-safe)", default=True),
             "map": MapOf(glob(), group_name(), doc="SCIM group glob -> target group; unmapped groups are "
                          "ignored (no map: every included group under its own name)")},
            doc="which SCIM groups give memberships (none without this section)",
            into=Into(ScimGroupsSettings, convert={"map": lambda pairs: tuple((k, norm(v)) for k, v in pairs)}),
        ),
        "page_size": Integer(minimum=1, doc="`count` per page; the server may lower it", default=500),
        "http": http(),
        "insecure": insecure("an http:// url to another host (the token travels in clear)"),
        "allow_empty": Boolean(doc="allow this source to yield no users", default=False),
    },
    required=["url"],
    choices=[["token"], ["token_file"]],
    choices_message="give exactly one of: token, token_file",
    insecure=[Insecure(("url",), REMOTE_HTTP, SOURCE_HTTP_FIX)],
    doc="a SCIM 2.0 server (an identity provider's SCIM API), read only",
    into=Into(ScimSourceSettings, keys={"token": ("token", "token_file")}, convert={"url": lambda u: u.rstrip("/")},
              given=("name", "origin")),
)
