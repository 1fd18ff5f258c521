"""Typed, frozen configuration values: what `config.py` produces from the desired files.

Secrets are held in `Secret`, whose repr and str never show the value.
Names: each part is a `*Settings` dataclass; `Config` is only the whole merged configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from reconcile.model import DesiredState, Globs, Location, Policy, Scope


@dataclass(frozen=True, slots=True)
class Secret:
    """A credential read from `${ENV}` or a `*_file`; `reveal()` is the only way to the value."""

    value: str = field(repr=False)
    reference: str = ""  # "${CONFLUENCE_TOKEN}" or "file:/run/secrets/token", safe to print

    def reveal(self) -> str:
        return self.value

    def __str__(self) -> str:
        return f"<secret {self.reference}>"

    def __repr__(self) -> str:
        return f"Secret({self.reference!r})"


class TargetType(StrEnum):
    CONFLUENCE_DC = "confluence-dc"
    ATLASSIAN_CLOUD = "atlassian-cloud"
    MEMORY = "memory"  # a file-backed in-memory target, for tests and dry experiments


class CloudDisable(StrEnum):
    SUSPEND = "suspend"
    DEACTIVATE = "deactivate"


class CloudDelete(StrEnum):
    REMOVE_FROM_DIRECTORY = "remove-from-directory"
    DELETE_ACCOUNT = "delete-account"
    REMOVE_FROM_SITE = "remove-from-site"


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Client behaviour shared by the HTTP targets."""

    timeout: float = 30.0  # seconds, connect and read
    concurrency: int = 8  # parallel requests (reads, and writes other than DC deletes)
    max_retries: int = 4
    verify_tls: bool = True
    ca_file: str | None = None


# A Confluence DC site's reads default to 16 requests in flight, not 8: its REST API documents no
# concurrency limit (rate limiting is off unless an admin turns it on, and then its 429s and
# X-RateLimit-* headers are honoured), and a 100,000-user plan is 4,500 reads of small pages
# (docs/targets/confluence-dc.md). `http.concurrency` lowers it for a small node.
DC_CONCURRENCY = 16
DC_HTTP = HttpSettings(concurrency=DC_CONCURRENCY)


@dataclass(frozen=True, slots=True)
class ConfluenceDcSettings:
    url: str
    token: Secret | None = None  # personal access token (Bearer)
    username: str | None = None  # Basic auth, with password
    password: Secret | None = None
    admin_groups: Globs = Globs(("confluence-administrators",))
    readonly_groups: Globs = Globs()
    http: HttpSettings = DC_HTTP
    insecure: bool = False  # an http:// url to another host was accepted explicitly
    type: TargetType = TargetType.CONFLUENCE_DC

    def address(self) -> dict[str, str]:
        return {"type": str(self.type), "url": self.url}


@dataclass(frozen=True, slots=True)
class CloudSiteSettings:
    url: str
    email: str
    token: Secret


@dataclass(frozen=True, slots=True)
class AtlassianCloudSettings:
    org_id: str
    api_key: Secret
    url: str = "https://api.atlassian.com"
    directory: str = "-"
    disable: CloudDisable = CloudDisable.SUSPEND
    delete: CloudDelete = CloudDelete.REMOVE_FROM_DIRECTORY
    site: CloudSiteSettings | None = None
    http: HttpSettings = HttpSettings()
    insecure: bool = False  # an http:// url or site.url to another host was accepted explicitly
    type: TargetType = TargetType.ATLASSIAN_CLOUD

    def address(self) -> dict[str, str]:
        return {"type": str(self.type), "url": self.url, "org": self.org_id}


@dataclass(frozen=True, slots=True)
class MemorySettings:
    """`target: {type: memory, state: world.json}`: the state file is read and written in place."""

    state: str
    admin_groups: Globs = Globs(("confluence-administrators",))
    readonly_groups: Globs = Globs()
    delay: float = 0.0  # seconds per performed action (lets tests interrupt an apply)
    type: TargetType = TargetType.MEMORY

    def address(self) -> dict[str, str]:
        return {"type": str(self.type), "url": self.state}


TargetSettings = ConfluenceDcSettings | AtlassianCloudSettings | MemorySettings


class LdapFlavor(StrEnum):
    AUTO = "auto"
    ACTIVE_DIRECTORY = "active-directory"
    OPENLDAP = "openldap"


@dataclass(frozen=True, slots=True)
class LdapUsersSettings:
    base: str
    filter: str = "(objectClass=inetOrgPerson)"
    username: str = "uid"
    email: str = "mail"
    name: str = "cn"
    disabled: str | None = None  # an LDAP filter; AD reads userAccountControl bit 2 without it


@dataclass(frozen=True, slots=True)
class LdapGroupsSettings:
    base: str
    filter: str = "(objectClass=groupOfNames)"
    name: str = "cn"
    member_attribute: str = "member"  # member | uniqueMember | memberUid | memberOf
    nested: bool = False
    map: tuple[tuple[str, str], ...] = ()  # (directory glob, Atlassian name pattern), in file order


@dataclass(frozen=True, slots=True)
class LdapSourceSettings:
    name: str
    url: str
    users: LdapUsersSettings
    groups: LdapGroupsSettings | None = None
    start_tls: bool = False
    ca_file: str | None = None
    timeout: float = 10.0
    bind_dn: str | None = None
    bind_password: Secret | None = None
    flavor: LdapFlavor = LdapFlavor.AUTO
    page_size: int = 500
    allow_empty: bool = False
    origin: Location | None = None
    insecure: bool = False  # a bind over ldap:// without StartTLS was accepted explicitly
    type: str = "ldap"


@dataclass(frozen=True, slots=True)
class CsvSourceSettings:
    """An admin.atlassian.com "Export users" CSV file."""

    name: str
    path: str
    allow_empty: bool = False
    origin: Location | None = None
    type: str = "csv"


class SiteKey(StrEnum):
    """Which key of a site source's users matches the target's users."""

    EMAIL = "email"  # DC -> Cloud: usernames differ, emails do not
    USERNAME = "username"  # Confluence DC -> Confluence DC
    ACCOUNT_ID = "account_id"  # Atlassian Cloud -> Atlassian Cloud


class SiteDisabled(StrEnum):
    """What a site source does with its deactivated or suspended users."""

    DISABLED = "disabled"  # listed, with status disabled
    SKIP = "skip"  # not listed (so absent from the desired state)


@dataclass(frozen=True, slots=True)
class SiteUsersSettings:
    include: Globs = Globs(("*",))  # globs on username / email (Cloud: email / account id)
    disabled: SiteDisabled = SiteDisabled.DISABLED


@dataclass(frozen=True, slots=True)
class SiteGroupsSettings:
    include: Globs = Globs(("*",))  # names or globs of the source site's groups to read
    map: tuple[tuple[str, str], ...] = ()  # (source glob, target name pattern), as LDAP's groups.map


@dataclass(frozen=True, slots=True)
class DcSourceSettings:
    """`sources.<name>` with `type: confluence-dc`: another Confluence DC site, read only."""

    name: str
    url: str
    token: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    users: SiteUsersSettings = SiteUsersSettings()
    groups: SiteGroupsSettings | None = None  # None: no memberships are read
    key: SiteKey = SiteKey.EMAIL
    http: HttpSettings = DC_HTTP
    insecure: bool = False
    allow_empty: bool = False
    origin: Location | None = None
    type: str = "confluence-dc"


@dataclass(frozen=True, slots=True)
class CloudSourceSettings:
    """`sources.<name>` with `type: atlassian-cloud`: an Atlassian Cloud organization, read only."""

    name: str
    org_id: str
    api_key: Secret
    url: str = "https://api.atlassian.com"
    directory: str = "-"
    users: SiteUsersSettings = SiteUsersSettings()
    groups: SiteGroupsSettings | None = None
    key: SiteKey = SiteKey.EMAIL
    http: HttpSettings = HttpSettings()
    insecure: bool = False
    allow_empty: bool = False
    origin: Location | None = None
    type: str = "atlassian-cloud"


class SourceSettings(Protocol):
    """What every source type's settings carry (each type's own class is in its registry entry)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def allow_empty(self) -> bool: ...
    @property
    def origin(self) -> Location | None: ...


@dataclass(frozen=True, slots=True)
class Config:
    """The merged, validated desired files."""

    target: TargetSettings
    scope: Scope
    policy: Policy
    inline: DesiredState  # users/groups written in the desired files (the `yaml` source)
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    directory: str = "desired"
    notify: NotifySettings | None = None  # the `notify:` section, when written
    unset: tuple[str, ...] = ()  # `${VAR}`s not set, when loaded for validation only (never to connect)


class NotifyWhen(StrEnum):
    """`notify.on`: which events are sent."""

    ALWAYS = "always"
    CHANGES = "changes"  # a plan with actions, or an apply that changed something
    FAILURE = "failure"  # an apply with failed actions or residual drift; any refused or failed run


class SmtpSecurity(StrEnum):
    STARTTLS = "starttls"  # port 587: plain connect, then STARTTLS before anything else
    TLS = "tls"  # port 465: TLS from the first byte
    NONE = "none"  # a local relay only; never with credentials


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """`notify.email`: SMTP delivery."""

    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 587
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str | None = None
    password: Secret | None = None
    ca_file: str | None = None  # PEM bundle; default: the system trust store
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """`notify.webhook`: a Slack-compatible JSON POST."""

    url: Secret  # a Slack incoming-webhook URL is itself a credential
    headers: tuple[tuple[str, Secret], ...] = ()
    ca_file: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """`notify:`: where and when plan/apply notifications go."""

    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None
    on: frozenset[NotifyWhen] = frozenset({NotifyWhen.CHANGES, NotifyWhen.FAILURE})
    mask_emails: bool = True
    max_actions: int = 50
