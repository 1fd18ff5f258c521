"""The settings of an Okta source (`sources.<name>` with `type: okta`): frozen values built from the
desired files by reconcile/config/okta.py. Secrets are `Secret`s (`${VAR}` or `*_file`), never values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconcile.model import Globs, Location
from reconcile.settings import HttpSettings, Secret

READ_SCOPES = ("okta.users.read", "okta.groups.read")


class OktaKey(StrEnum):
    """Which Okta profile attribute becomes the desired user's key."""

    EMAIL = "email"  # profile.email: matches the target's emails
    LOGIN = "login"  # profile.login: matches the target's usernames first (then emails, if it is one)


class Desired(StrEnum):
    """What an Okta status makes of a user in the desired state."""

    ACTIVE = "active"
    DISABLED = "disabled"
    ABSENT = "absent"  # not a desired user at all (policy.absent decides what happens to its account)


@dataclass(frozen=True, slots=True)
class OktaStatusMap:
    """Okta `status` -> desired status, one field per value of Okta's `UserStatus` (lower-cased)."""

    active: Desired = Desired.ACTIVE
    recovery: Desired = Desired.ACTIVE  # a password reset is pending: the account still works
    locked_out: Desired = Desired.ACTIVE  # locked-out people still work here
    password_expired: Desired = Desired.ACTIVE
    suspended: Desired = Desired.DISABLED
    deprovisioned: Desired = Desired.DISABLED  # "deactivated" in the admin console
    staged: Desired = Desired.ABSENT  # never activated: not yet a user
    provisioned: Desired = Desired.ABSENT  # activation pending: not yet a user

    def of(self, status: str) -> Desired | None:
        """The mapping of an Okta status (`LOCKED_OUT`), or None for a status Okta did not document."""
        value = getattr(self, status.lower(), None) if status.lower() in _FIELDS else None
        return value if isinstance(value, Desired) else None


_FIELDS = frozenset(OktaStatusMap.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class OktaUsersSettings:
    """Which users are read: all (but see `status`), or those an Okta `search` or `filter` expression selects."""

    search: str | None = None  # passed verbatim as `search=` (any profile attribute; eventually consistent)
    filter: str | None = None  # passed verbatim as `filter=` (status, id, profile.login/email/names)
    status: OktaStatusMap = OktaStatusMap()


@dataclass(frozen=True, slots=True)
class OktaGroupsSettings:
    """Which groups give memberships: `include` names/globs, optionally narrowed by Okta first."""

    include: Globs = Globs(("*",))  # noqa: RUF009 (a frozen dataclass)
    search: str | None = None  # Okta `search=` on groups (e.g. `type eq "OKTA_GROUP"`), paged
    q: str | None = None  # Okta `q=` (name prefix); not paged by Okta, so a full page is refused
    map: tuple[tuple[str, str], ...] = ()  # (Okta group glob, target name pattern), as LDAP's groups.map


@dataclass(frozen=True, slots=True)
class OktaSourceSettings:
    """`sources.<name>` with `type: okta`: an Okta org, read only."""

    name: str
    url: str  # the org URL, e.g. https://acme.okta.com
    token: Secret | None = None  # API token, sent as `Authorization: SSWS …`
    client_id: str | None = None  # OAuth service app (client credentials + private_key_jwt)
    private_key: Secret | None = None  # its private key, PEM
    key_id: str | None = None  # the `kid` of that key, when the app has several
    scopes: tuple[str, ...] = READ_SCOPES
    users: OktaUsersSettings = OktaUsersSettings()
    groups: OktaGroupsSettings | None = None  # None: no memberships are read
    key: OktaKey = OktaKey.EMAIL
    concurrency: int = 4  # group member reads in flight (Okta's concurrency limit is org-wide)
    http: HttpSettings = HttpSettings()  # noqa: RUF009 (a frozen dataclass)
    insecure: bool = False
    allow_empty: bool = False
    origin: Location | None = None
    type: str = "okta"
