"""`type: google-workspace`: the record (schema and checks) and the settings it builds, declared together;
the source itself is reconcile/sources/google_workspace/."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconcile.config.format import REMOTE_HTTP, SOURCE_HTTP_FIX, glob, globs, group_name, http, secret_pair, url
from reconcile.config.into import Into
from reconcile.config.nodes import Fields, MapOf
from reconcile.config.records import Insecure, Record
from reconcile.config.scalars import Boolean, Choice, Text
from reconcile.model import Globs, Location, norm
from reconcile.settings import HttpSettings, Secret

GOOGLE_API = "https://admin.googleapis.com"
AUTH = "https://www.googleapis.com/auth/"
READ_SCOPES = (AUTH + "admin.directory.user.readonly", AUTH + "admin.directory.group.readonly")


class GoogleKey(StrEnum):
    """Which value of a Google user matches the target's users."""

    PRIMARY_EMAIL = "primary_email"
    USERNAME = "username"  # the local part of the primary email (a DC username such as `alice`)


class CustomerMembers(StrEnum):
    """What a `CUSTOMER` member (every user of the account) of a read group means."""

    REPORT = "report"  # a plan warning; the group's users come from its other members only
    EXPAND = "expand"  # every user read (users.query applies) is a member


@dataclass(frozen=True, slots=True)
class GoogleUsersSettings:
    query: str | None = None  # users.list `query`, passed through (e.g. `orgUnitPath=/Staff`)


@dataclass(frozen=True, slots=True)
class GoogleGroupsSettings:
    include: Globs = Globs(("*",))  # noqa: RUF009 (frozen) group emails or names, or globs of them
    query: str | None = None  # groups.list `query`, passed through (e.g. `email:team-*`)
    nested: bool = True  # expand members of type GROUP, client-side
    customer: CustomerMembers = CustomerMembers.REPORT
    map: tuple[tuple[str, str], ...] = ()  # (group name or email glob, target name pattern)


@dataclass(frozen=True, slots=True)
class GoogleSourceSettings:
    """`sources.<name>` with `type: google-workspace`: a Google Workspace account, read only."""

    name: str
    credentials: Secret  # the service account's JSON key
    subject: str | None = None  # the admin to act as (domain-wide delegation)
    customer: str | None = None  # default: my_customer (unless `domain`)
    domain: str | None = None
    api_url: str = GOOGLE_API
    token_uri: str | None = None  # default: the key file's token_uri
    users: GoogleUsersSettings = GoogleUsersSettings()
    groups: GoogleGroupsSettings | None = None  # None: no memberships are read
    key: GoogleKey = GoogleKey.PRIMARY_EMAIL
    http: HttpSettings = HttpSettings()  # noqa: RUF009 (frozen)
    insecure: bool = False
    allow_empty: bool = False
    origin: Location | None = None
    type: str = "google-workspace"

    def scopes(self) -> tuple[str, ...]:
        """What the token asks for: users, and groups when memberships are read (groups.list needs
        group.readonly; the narrower group.member.readonly covers members.list only)."""
        return READ_SCOPES if self.groups is not None else READ_SCOPES[:1]


def _no_slash(value: str) -> str:
    return value.rstrip("/")


GOOGLE_WORKSPACE = Record(
    {
        **secret_pair("credentials", "the service account's JSON key"),
        "subject": Text(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "invalid email '{value}'", expand=True,
                        doc="the admin the service account acts as (domain-wide delegation); omit when the "
                        "service account holds an admin role itself"),
        "customer": Text(expand=True, doc="customer id (default my_customer: the account of the subject)"),
        "domain": Text(expand=True, doc="read one domain of the account instead of the whole customer"),
        "api_url": url("Admin SDK API root", GOOGLE_API),
        "token_uri": url("token endpoint (default: the key file's token_uri)"),
        "users": Record(
            {"query": Text(doc="users.list query, passed through (e.g. `orgUnitPath=/Staff isAdmin=false`); "
                           "never needed for suspended/archived: those flags are read")},
            doc="which users of the account are desired users",
            into=Into(GoogleUsersSettings),
        ),
        "groups": Record(
            {"include": globs("groups to read: emails or names, or globs of them", ["*"]),
             "query": Text(doc="groups.list query, passed through (e.g. `email:team-*`)"),
             "nested": Boolean(doc="expand members that are groups (client-side, cycle-safe)", default=True),
             "customer": Choice([str(v) for v in CustomerMembers], doc="a CUSTOMER member (every user of the "
                                "account): reported as a warning, or expanded to every user read",
                                default="report"),
             "map": MapOf(glob(), group_name(),
                          doc="Google group name or email glob -> target group; unmapped groups are ignored "
                          "(no map: every included group under its own name)")},
            doc="which groups give memberships (none without this section)",
            into=Into(GoogleGroupsSettings, convert={"map": lambda pairs: tuple((k, norm(v)) for k, v in pairs)}),
        ),
        "key": Choice([str(k) for k in GoogleKey], doc="the identity key that matches the target's users: "
                      "the primary email, or its local part as a username", default=str(GoogleKey.PRIMARY_EMAIL)),
        "http": http(),
        "insecure": Boolean(doc="accept an http:// api_url or token_uri to another host (the token travels "
                            "in clear)", default=False),
        "allow_empty": Boolean(doc="allow this source to yield no users", default=False),
    },
    choices=[["credentials"], ["credentials_file"]],
    choices_message="give exactly one of: credentials (a ${VAR} holding the key's JSON), credentials_file",
    insecure=[Insecure(("api_url",), REMOTE_HTTP, SOURCE_HTTP_FIX), Insecure(("token_uri",), REMOTE_HTTP,
                                                                             SOURCE_HTTP_FIX)],
    doc="a Google Workspace account (Admin SDK Directory API), read only",
    into=Into(GoogleSourceSettings, keys={"credentials": ("credentials", "credentials_file")},
              convert={"api_url": _no_slash}, given=("name", "origin")),
)


def google_problems(name: str, fields: Fields, problems: list[tuple[Location, str]]) -> None:
    """`customer` and `domain` together: Google takes one or the other."""
    domain = fields.get("domain")
    if domain is not None and fields.get("customer") is not None:
        problems.append((domain.loc, f"sources.{name}: give customer or domain, not both (domain reads one "
                         "domain of the customer's account)"))
