"""The desired-file format, declared once: `FILE` checks one YAML document and is the JSON Schema.

Patterns here are used verbatim by both the loader and the schema.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconcile.config.into import Into, check_into
from reconcile.config.nodes import ListOf, MapOf, Node, Nullable
from reconcile.config.notify import NOTIFY
from reconcile.config.policies import DELETE_GUARD, EXEMPTION, EXEMPTION_RULES, INACTIVE, LICENCES
from reconcile.config.records import Condition, Insecure, Record, Tagged
from reconcile.config.references import FilePath, SecretFile, SecretRef
from reconcile.config.scalars import Boolean, Choice, Const, Integer, LimitValue, Number, Text, Url
from reconcile.model import AbsentPolicy, Policy, Scope, Status, UnsyncedPolicy, norm
from reconcile.plan import ActionKind
from reconcile.settings import (
    DC_CONCURRENCY,
    AtlassianCloudSettings,
    CloudDelete,
    CloudDisable,
    CloudSiteSettings,
    CloudSourceSettings,
    ConfluenceDcSettings,
    CsvSourceSettings,
    DcSourceSettings,
    HttpSettings,
    LdapFlavor,
    LdapGroupsSettings,
    LdapSourceSettings,
    LdapUsersSettings,
    MemorySettings,
    SiteDisabled,
    SiteGroupsSettings,
    SiteKey,
    SiteUsersSettings,
)

EMAIL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
USERNAME = r"[^@\s](?:[^@]*[^@\s])?"
URL_PATTERN = r"^https?://[^\s/@?#]+(?:/[^\s@]*)?$"
LDAP_URL_PATTERN = r"^ldaps?://[^\s/@?#]+/?$"
GLOB_PATTERN = r"^(?:[^\[]|\[!?\]?[^\]]*\])+$"
GROUP_PATTERN = r"^\S(?:.*\S)?$"
SOURCE_NAME_PATTERN = r"^(?!yaml$)[A-Za-z0-9][A-Za-z0-9_.-]*$"
FILTER_PATTERN = r"^\(.*\)$"
NOT_A_FILTER = "'{value}' is not an LDAP filter"
MEMBER_ATTRIBUTES = ("member", "uniqueMember", "memberUid", "memberOf")
SCHEMA_ID = "urn:reconcile:desired-state:1"
# An http:// URL to anything but this machine (127.0.0.0/8, ::1, localhost): credentials in clear.
REMOTE_HTTP = r"^http://(?!(?:localhost|127(?:\.[0-9]{1,3}){3}|\[::1\])(?::[0-9]*)?(?:/|$))"
PLAIN_LDAP = r"^ldap://"
HTTP_FIX = ("http:// to a host that is not this machine sends the credentials in clear; use https://, "
            "or write `insecure: true` on the target to accept that")
LDAP_FIX = ("the bind password would cross the network in clear over ldap://; use ldaps://, or "
            "start_tls: true, or write `insecure: true` on this source to accept that")
SCOPE_USERS_HINT = ('say which accounts this configuration manages, e.g. users: ["*@example.com"] '
                    '(users: ["*"] manages every account on the target; there is no default)')


def insecure(what: str) -> Boolean:
    return Boolean(doc=f"accept {what}; certificate verification is never turned off", default=False)


def glob(doc: str = "") -> Text:
    return Text(GLOB_PATTERN, "bad glob '{value}': a '[' is not closed by ']'", doc=doc)


def globs(doc: str, default: list[str] | None = None) -> ListOf:
    return ListOf(glob(), doc=doc, default=default)


def group_name() -> Text:
    return Text(GROUP_PATTERN, "'{value}' is not a group name (no leading or trailing spaces)")


def user_key() -> Text:
    return Text(f"^(?:{EMAIL}|{USERNAME})$",
                "invalid email or username '{value}' (an email needs name@domain.tld; a username has no '@')")


def url(doc: str, default: str | None = None) -> Text:
    return Url(URL_PATTERN, "expected an http(s) URL such as https://confluence.example.com, without "
                "credentials in it (they go under auth:)", expand=True, doc=doc, default=default)


def secret_pair(name: str, doc: str) -> dict[str, Node]:
    """`name: ${VAR}` or `name_file: path`: the two ways to give a credential."""
    return {
        name: SecretRef(name, doc=f"{doc}: a ${{ENV_VAR}} reference, never the value"),
        f"{name}_file": SecretFile(doc=f"{doc}: a file holding it (relative to the desired directory)"),
    }


def http(concurrency: int = HttpSettings().concurrency) -> Record:
    return Record(
        {
            "timeout": Number(above=0, doc="seconds, connect and read", default=30.0),
            "concurrency": Integer(minimum=1, doc="parallel requests", default=concurrency),
            "max_retries": Integer(minimum=0, doc="retries of a failed idempotent request", default=4),
            "ca_file": FilePath(doc="PEM bundle to verify the server with (default: system store)"),
        },
        doc="HTTP client settings",
        into=Into(HttpSettings, fixed=("verify_tls",), defaults={"concurrency": concurrency}),
    )


def _no_slash(url: str) -> str:
    return url.rstrip("/")


def _secret(key: str, under: str = "auth") -> tuple[str, ...]:
    """The record keys a credential field is read from: `auth.token`, else `auth.token_file`."""
    prefix = f"{under}." if under else ""
    return (f"{prefix}{key}", f"{prefix}{key}_file")


def dc_auth() -> Record:
    return Record(
        {**secret_pair("token", "personal access token (Bearer)"),
         "username": Text(f"^{USERNAME}$", "'{value}' is not a username", expand=True,
                          doc="Basic auth user, with password"),
         **secret_pair("password", "Basic auth password")},
        choices=[["token"], ["token_file"], ["username", "password"], ["username", "password_file"]],
        choices_message="give exactly one of: token, token_file, username + password, "
        "username + password_file",
    )


def cloud_auth() -> Record:
    return Record(secret_pair("api_key", "organization API key (Bearer)"),
                  choices=[["api_key"], ["api_key_file"]],
                  choices_message="give exactly one of: api_key, api_key_file")


ADMIN_GROUPS = ["confluence-administrators"]

CONFLUENCE_DC = Record(
    {
        "url": url("base URL of the Confluence site"),
        "auth": dc_auth(),
        "admin_groups": globs("members are protected", ADMIN_GROUPS),
        "readonly_groups": globs("groups of read-only directories: warnings, never written", []),
        "http": http(DC_CONCURRENCY),
        "insecure": insecure("an http:// url to another host (the token travels in clear)"),
    },
    required=["url", "auth"],
    insecure=[Insecure(("url",), REMOTE_HTTP, HTTP_FIX)],
    doc="a Confluence Data Center site",
    into=Into(ConfluenceDcSettings, keys={"token": _secret("token"), "username": ("auth.username",),
                                        "password": _secret("password")},
              convert={"url": _no_slash}),
)

CLOUD = Record(
    {
        "org_id": Text(expand=True, doc="organization id"),
        "auth": cloud_auth(),
        "url": url("admin API base", "https://api.atlassian.com"),
        "directory": Text(expand=True, doc="directory id; '-' means all", default="-"),
        "disable": Choice([str(v) for v in CloudDisable], doc="how `disable` is done", default="suspend"),
        "delete": Choice([str(v) for v in CloudDelete], doc="how `delete` is done",
                         default="remove-from-directory"),
        "site": Record(
            {"url": url("site URL, e.g. https://acme.atlassian.net (Confluence is read under /wiki)"),
             "email": Text(f"^{EMAIL}$", "invalid email '{value}'", expand=True, doc="site admin email"),
             **secret_pair("token", "site API token")},
            required=["url", "email"],
            choices=[["token"], ["token_file"]],
            choices_message="give exactly one of: token, token_file",
            doc="the site REST API (Basic email:token): delete: remove-from-site, the delete guard's Confluence reads",
            into=Into(CloudSiteSettings, keys={"token": _secret("token", "")}, convert={"url": _no_slash}),
        ),
        "http": http(),
        "insecure": insecure("an http:// url or site.url to another host (the keys travel in clear)"),
    },
    required=["org_id", "auth"],
    conditions=[Condition("delete", "remove-from-site", "site")],
    insecure=[Insecure(("url",), REMOTE_HTTP, HTTP_FIX), Insecure(("site", "url"), REMOTE_HTTP, HTTP_FIX)],
    doc="an Atlassian Cloud organization",
    into=Into(AtlassianCloudSettings, keys={"api_key": _secret("api_key")}, convert={"url": _no_slash}),
)

MEMORY = Record(
    {
        "state": FilePath(must_exist=False, doc="JSON state file, relative to the desired directory"),
        "admin_groups": globs("members are protected", ADMIN_GROUPS),
        "readonly_groups": globs("groups that are never written", []),
        "delay": Number(minimum=0, doc="seconds per performed action", default=0.0),
    },
    required=["state"],
    doc="a file-backed target for tests and experiments",
    into=Into(MemorySettings),
)

LDAP = Record(
    {
        "url": Text(LDAP_URL_PATTERN, "expected ldaps://host[:port] or ldap://host[:port]", expand=True),
        "start_tls": Boolean(doc="upgrade an ldap:// connection with StartTLS", default=False),
        "insecure": insecure("a bind over ldap:// without start_tls, to this machine too (the password travels in "
                         "clear)"),
        "ca_file": FilePath(doc="PEM bundle to verify the server with (default: system store)"),
        "timeout": Number(above=0, doc="seconds, connect and per operation", default=10.0),
        "bind": Record({"dn": Text(expand=True), **secret_pair("password", "bind password")},
                       required=["dn"], choices=[["password"], ["password_file"]],
                       choices_message="give exactly one of: password, password_file"),
        "users": Record(
            {
                "base": Text(expand=True, doc="search base"),
                "filter": Text(FILTER_PATTERN, NOT_A_FILTER, default="(objectClass=inetOrgPerson)"),
                "username": Text(doc="attribute holding the username", default="uid"),
                "email": Text(doc="attribute holding the email", default="mail"),
                "name": Text(doc="attribute holding the display name", default="cn"),
                "disabled": Text(FILTER_PATTERN, NOT_A_FILTER,
                                 doc="filter matching disabled users"),
            },
            required=["base"],
            into=Into(LdapUsersSettings),
        ),
        "groups": Record(
            {
                "base": Text(expand=True, doc="search base"),
                "filter": Text(FILTER_PATTERN, NOT_A_FILTER, default="(objectClass=groupOfNames)"),
                "name": Text(doc="attribute holding the group name", default="cn"),
                "member_attribute": Choice(MEMBER_ATTRIBUTES, default="member"),
                "nested": Boolean(doc="follow groups inside groups", default=False),
                "map": MapOf(glob(), group_name(),
                             doc="directory group glob -> Atlassian group; unmapped groups are ignored"),
            },
            required=["base"],
            into=Into(LdapGroupsSettings, convert={"map": lambda pairs: tuple((k, norm(v)) for k, v in pairs)}),
        ),
        "flavor": Choice([str(v) for v in LdapFlavor], default="auto"),
        "page_size": Integer(minimum=1, default=500),
        "allow_empty": Boolean(doc="allow this source to yield no users", default=False),
    },
    required=["url", "users"],
    insecure=[Insecure(("url",), PLAIN_LDAP, LDAP_FIX, needs=("bind",), unless=("start_tls",))],
    doc="an LDAP or Active Directory query",
    into=Into(LdapSourceSettings, keys={"bind_dn": ("bind.dn",), "bind_password": _secret("password", "bind")},
              given=("name", "origin")),
)

CSV = Record(
    {
        "path": FilePath(doc="admin.atlassian.com 'Export users' CSV, relative to the desired directory"),
        "allow_empty": Boolean(doc="allow this source to yield no users", default=False),
    },
    required=["path"],
    doc="an admin.atlassian.com 'Export users' CSV file",
    into=Into(CsvSourceSettings, given=("name", "origin")),
)

SOURCE_HTTP_FIX = ("http:// to a host that is not this machine sends the credentials in clear; use https://, "
                   "or write `insecure: true` on the source to accept that")


def site_users() -> Record:
    return Record(
        {"include": globs("the source's users to list: globs on username or email (Cloud: email or "
                          "account id)", ["*"]),
         "disabled": Choice([str(v) for v in SiteDisabled], doc="deactivated/suspended users: listed as "
                            "`disabled`, or skipped", default="disabled")},
        doc="which of the source site's users are desired users",
        into=Into(SiteUsersSettings),
    )


def site_groups() -> Record:
    return Record(
        {"include": globs("the source's groups to read: names or globs", ["*"]),
         "map": MapOf(glob(), group_name(),
                      doc="source group glob -> target group; unmapped groups are ignored (no map: every "
                      "included group under its own name)")},
        doc="which of the source site's groups give memberships (none without this section)",
        into=Into(SiteGroupsSettings, convert={"map": lambda pairs: tuple((k, norm(v)) for k, v in pairs)}),
    )


def site_key(*kinds: SiteKey) -> Choice:
    return Choice([str(k) for k in kinds], doc="the identity key that matches the target's users",
                  default=str(SiteKey.EMAIL))


DC_SOURCE = Record(
    {
        "url": url("base URL of the Confluence site read"),
        "auth": dc_auth(),
        "users": site_users(),
        "groups": site_groups(),
        "key": site_key(SiteKey.EMAIL, SiteKey.USERNAME),
        "http": http(DC_CONCURRENCY),
        "insecure": insecure("an http:// url to another host (the token travels in clear)"),
        "allow_empty": Boolean(doc="allow this source to yield no users", default=False),
    },
    required=["url", "auth"],
    insecure=[Insecure(("url",), REMOTE_HTTP, SOURCE_HTTP_FIX)],
    doc="another Confluence Data Center site, read only",
    into=Into(DcSourceSettings, keys={"token": _secret("token"), "username": ("auth.username",),
                                    "password": _secret("password")},
              convert={"url": _no_slash}, given=("name", "origin")),
)

CLOUD_SOURCE = Record(
    {
        "org_id": Text(expand=True, doc="organization id"),
        "auth": cloud_auth(),
        "url": url("admin API base", "https://api.atlassian.com"),
        "directory": Text(expand=True, doc="directory id or name; '-' means all", default="-"),
        "users": site_users(),
        "groups": site_groups(),
        "key": site_key(SiteKey.EMAIL, SiteKey.ACCOUNT_ID),
        "http": http(),
        "insecure": insecure("an http:// url to another host (the key travels in clear)"),
        "allow_empty": Boolean(doc="allow this source to yield no users", default=False),
    },
    required=["org_id", "auth"],
    insecure=[Insecure(("url",), REMOTE_HTTP, SOURCE_HTTP_FIX)],
    doc="an Atlassian Cloud organization, read only",
    into=Into(CloudSourceSettings, keys={"api_key": _secret("api_key")}, convert={"url": _no_slash},
              given=("name", "origin")),
)

SCOPE = Record(
    {
        "users": globs("managed users: globs over username, email, account id; required "
                       '(["*"] manages every account on the target)'),
        "groups": globs("managed groups: their membership is made exact", []),
        "protect": globs("principals never touched", []),
    },
    required=["users"],
    hints={"users": SCOPE_USERS_HINT},
    doc="what this configuration owns",
    into=Into(Scope),
)

POLICY = Record(
    {
        "absent": Choice([str(v) for v in AbsentPolicy], default="disable"),
        "unsynced": Choice([str(v) for v in UnsyncedPolicy], default="ignore"),
        "limits": Record({str(k): LimitValue() for k in ActionKind},
                         doc="safety limits per action kind: a count or a percentage"),
        "allow_empty": Boolean(doc="lift every empty-source guard", default=False),
        "inactive": INACTIVE,
        "licences": LICENCES,
        "delete_guard": DELETE_GUARD,
        "exemptions": EXEMPTION_RULES,
    },
    into=Into(Policy, keys={"exemption_rules": ("exemptions",)}, given=("exemptions",)),
)
check_into(SCOPE)
check_into(POLICY)


def _targets() -> Mapping[str, Record]:
    from reconcile.targets.registry import TARGETS  # the registry names these records: read when used

    return TARGETS.schemas()


def _sources() -> Mapping[str, Record]:
    from reconcile.sources.registry import SOURCES

    return SOURCES.schemas()

USER = Record(
    {
        "status": Choice([str(s) for s in Status], default="active"),
        "groups": ListOf(group_name(), doc="managed groups this user is a member of"),
        "username": Text(f"^{USERNAME}$", "'{value}' is not a username (no '@')",
                         doc="the username, when the key is an email"),
        "email": Text(f"^{EMAIL}$", "invalid email '{value}'", doc="the email, when the key is a username"),
        "name": Text(doc="display name"),
    },
)

FILE = Record(
    {
        "version": Const(1, "unsupported version; this tool reads `version: 1`", doc="format version"),
        "target": Tagged(_targets, doc="the one system this configuration reconciles"),
        "sources": Nullable(MapOf(
            Text(SOURCE_NAME_PATTERN, "'{value}' is not a source name (letters, digits, _ . -; not 'yaml')"),
            Tagged(_sources),
            doc="where else desired users come from; users/groups below are the inline `yaml` source",
        )),
        "scope": Nullable(SCOPE),
        "policy": Nullable(POLICY),
        "notify": NOTIFY,
        "users": Nullable(MapOf(user_key(), Nullable(USER), doc="desired users, keyed by email or username")),
        "groups": Nullable(MapOf(
            group_name(),
            Nullable(Record({"members": ListOf(user_key(), doc="users (email or username)")})),
            doc="desired groups and their members",
        )),
        "exemptions": Nullable(ListOf(EXEMPTION, doc="users exempt from policy.inactive / policy.licences, "
                                      "each with a reason, an owner and an end date; merged across files")),
    },
    dependent={"target": ["version"]},
)


def json_schema() -> dict[str, object]:
    """The JSON Schema (draft 2020-12) of one desired-state file."""
    schema: dict[str, object] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "reconcile desired-state file",
        "description": "One *.yaml file of a reconcile desired directory (all files there are merged).",
    }
    schema.update(FILE.schema())
    return schema
