"""The simulated Entra ID tenant: users (members, guests, disabled), groups nesting users, groups, devices and
service principals (cycles allowed), app registrations (secrets, certificates, granted permissions), tokens.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reconcile.sim.draw import memberships as draw_memberships

USER = "user"
GROUP = "group"
DEVICE = "device"
SERVICE_PRINCIPAL = "servicePrincipal"
MEMBER_KINDS = (USER, GROUP, DEVICE, SERVICE_PRINCIPAL)

# Application permissions (app roles) that allow each read, least privileged first (Graph permission reference).
READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
READ_GROUPS = ("GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All",
               "Directory.ReadWrite.All")
READ_MEMBERS = READ_GROUPS


V = TypeVar("V")


class Table(dict[str, V]):
    """A dict of directory objects that knows when its keys change, so a listing pages through one list of
    them (`ordered`) sliced in C, not an iteration from the first key to the page's offset per request (a
    page of 999 at offset 99,000 of 100,000 users). Replacing an object's value keeps the list."""

    __slots__ = ("_ordered",)

    def __init__(self, items: Mapping[str, V] | Iterable[tuple[str, V]] = (), /) -> None:
        super().__init__(items)
        self._ordered: list[str] | None = None

    def ordered(self) -> list[str]:
        """The keys in insertion order, made again only after a key was added or removed."""
        if self._ordered is None:
            self._ordered = list(self)
        return self._ordered

    def __setitem__(self, key: str, value: V) -> None:
        if key not in self:
            self._ordered = None
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._ordered = None
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self._ordered = None
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, V]:
        self._ordered = None
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self._ordered = None
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._ordered = None
        super().update(*args, **kwargs)

    def __ior__(self, other: Any) -> Table[V]:  # type: ignore[override,misc]
        self._ordered = None
        return super().__ior__(other)

    def clear(self) -> None:
        self._ordered = None
        super().clear()


def ordered_keys(table: dict[str, Any]) -> list[str]:
    """`table`'s keys as a list: a `Table`'s kept one, else a copy."""
    return table.ordered() if isinstance(table, Table) else list(table)


def stable_id(*parts: str) -> str:
    """A GUID derived from `parts` (directory object ids are GUIDs; scenarios may omit them)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "entra-sim:" + ":".join(parts)))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class EntraUser:
    id: str
    user_principal_name: str
    display_name: str
    mail: str | None = None
    other_mails: tuple[str, ...] = ()
    account_enabled: bool = True
    user_type: str = "Member"  # Member | Guest
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    external_user_state: str | None = None  # guests: PendingAcceptance | Accepted


@dataclass(frozen=True, slots=True)
class EntraDevice:
    id: str
    display_name: str
    device_id: str
    account_enabled: bool = True
    operating_system: str = "Windows"


@dataclass(frozen=True, slots=True)
class EntraServicePrincipal:
    id: str
    display_name: str
    app_id: str
    service_principal_type: str = "Application"


@dataclass(slots=True)
class EntraGroup:
    id: str
    display_name: str
    description: str | None = None
    group_types: tuple[str, ...] = ()
    security_enabled: bool = True
    mail_enabled: bool = False
    mail: str | None = None
    mail_nickname: str = ""
    members: list[tuple[str, str]] = field(default_factory=list)  # (kind, object id), direct members in order


@dataclass(frozen=True, slots=True)
class Certificate:
    """A registered certificate: its DER bytes and the two thumbprints a client assertion may name."""

    der: bytes

    @property
    def x5t(self) -> str:  # SHA-1 thumbprint, base64url (older MSAL, RS256)
        return b64url(hashlib.sha1(self.der, usedforsecurity=False).digest())

    @property
    def x5t_s256(self) -> str:  # SHA-256 thumbprint, base64url (current docs, PS256)
        return b64url(hashlib.sha256(self.der).digest())


@dataclass(frozen=True, slots=True)
class EntraApp:
    client_id: str
    display_name: str
    secrets: tuple[str, ...] = ()
    certificates: tuple[Certificate, ...] = ()
    permissions: frozenset[str] = frozenset()  # granted application permissions (admin consent given)


@dataclass(frozen=True, slots=True)
class AccessToken:
    client_id: str
    roles: frozenset[str]
    expires_at: float  # on the simulator's clock (ctx.clock)


@dataclass(slots=True)
class EntraWorld:
    tenant_id: str = "00000000-0000-4000-8000-00000000e1d0"
    domain: str = "example.onmicrosoft.com"
    users: dict[str, EntraUser] = field(default_factory=Table)
    groups: dict[str, EntraGroup] = field(default_factory=dict)
    devices: dict[str, EntraDevice] = field(default_factory=dict)
    service_principals: dict[str, EntraServicePrincipal] = field(default_factory=dict)
    apps: dict[str, EntraApp] = field(default_factory=dict)
    token_lifetime: int = 3599  # seconds, as `expires_in` reports it
    throttle_every: int = 0  # every Nth Graph request is answered 429 (0: never)
    retry_after: int = 2  # the Retry-After of those 429s, in seconds
    tokens: dict[str, AccessToken] = field(default_factory=dict)
    requests: int = 0  # Graph requests seen, for throttle_every
    issued: int = 0  # tokens issued, for their values

    def kind_of(self, object_id: str) -> str | None:
        for kind, table in ((USER, self.users), (GROUP, self.groups), (DEVICE, self.devices),
                            (SERVICE_PRINCIPAL, self.service_principals)):
            if object_id in table:
                return kind
        return None

    def group_by_name(self, name: str) -> EntraGroup | None:
        return next((g for g in self.groups.values() if g.display_name.lower() == name.lower()), None)

    def transitive(self, group_id: str) -> Iterator[tuple[str, str]]:
        """Every member under a group, nested groups included (each once), breadth first; cycles end."""
        seen_groups = {group_id}
        seen: set[str] = set()
        queue = deque([group_id])
        while queue:
            current = self.groups[queue.popleft()]
            for kind, object_id in current.members:
                if object_id in seen:
                    continue
                seen.add(object_id)
                yield kind, object_id
                if kind == GROUP and object_id not in seen_groups and object_id in self.groups:
                    seen_groups.add(object_id)
                    queue.append(object_id)

    def issue(self, app: EntraApp, now: float) -> tuple[str, AccessToken]:
        self.issued += 1
        value = "sim-entra-" + hashlib.sha256(f"{self.tenant_id}:{app.client_id}:{self.issued}".encode()).hexdigest()
        token = AccessToken(app.client_id, app.permissions, now + self.token_lifetime)
        self.tokens[value] = token
        return value, token

    def to_json(self) -> dict[str, object]:
        """Counts for GET /_sim/state (the objects themselves are read through Graph)."""
        return {"tenant_id": self.tenant_id, "users": len(self.users), "groups": len(self.groups),
                "devices": len(self.devices), "service_principals": len(self.service_principals),
                "apps": sorted(self.apps)}


GENERATED_CLIENT_ID = "11111111-2222-4333-8444-555555555555"
GENERATED_SECRET = "sim-entra-secret"  # a simulator credential of generated tenants, like sim-admin-token


def generate(users: int, groups: int, memberships: int, seed: int = 1) -> EntraWorld:
    """A deterministic tenant: same arguments, same world.

    Users `user000001@example.onmicrosoft.com`… (3 % disabled, 2 % guests `…#EXT#`); groups `team-0000`…,
    every tenth containing the next one as a member (nesting), the last two containing each other (a cycle),
    every 50th also a device and a service principal. One app, `GENERATED_CLIENT_ID` with the secret
    `GENERATED_SECRET`, holding User.Read.All and GroupMember.Read.All.
    """
    if users < 1 or groups < 2 or memberships < 1:
        raise ValueError("a generated tenant needs at least 1 user, 2 groups and 1 membership")
    rng = random.Random(seed)
    world = EntraWorld()

    def guid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    user_ids = []
    for i in range(1, users + 1):
        roll = rng.random()
        guest = roll < 0.02
        name = f"user{i:06d}"
        upn = f"{name}_partner.example#EXT#@{world.domain}" if guest else f"{name}@{world.domain}"
        user = EntraUser(id=guid(), user_principal_name=upn, display_name=f"User {i:06d}",
                         mail=f"{name}@partner.example" if guest else f"{name}@example.com",
                         account_enabled=not 0.02 <= roll < 0.05, user_type="Guest" if guest else "Member",
                         given_name="User", surname=f"{i:06d}",
                         external_user_state="Accepted" if guest else None)
        world.users[user.id] = user
        user_ids.append(user.id)
    team = [EntraGroup(id=guid(), display_name=f"team-{j:04d}", mail_nickname=f"team-{j:04d}") for j in range(groups)]
    for group in team:
        world.groups[group.id] = group
    for j in range(0, groups - 1, 10):
        team[j].members.append((GROUP, team[j + 1].id))
    if groups >= 4:
        team[-1].members.append((GROUP, team[-2].id))
        team[-2].members.append((GROUP, team[-1].id))
    for j in range(0, groups, 50):
        device = EntraDevice(id=guid(), display_name=f"device-{j:04d}", device_id=guid())
        principal = EntraServicePrincipal(id=guid(), display_name=f"service-{j:04d}", app_id=guid())
        world.devices[device.id] = device
        world.service_principals[principal.id] = principal
        team[j].members += [(DEVICE, device.id), (SERVICE_PRINCIPAL, principal.id)]
    for g, numbers in enumerate(draw_memberships(rng, users, groups, memberships)):
        team[g].members += [(USER, user_ids[n]) for n in numbers]
    world.apps[GENERATED_CLIENT_ID] = EntraApp(GENERATED_CLIENT_ID, "reconcile", secrets=(GENERATED_SECRET,),
                                               permissions=frozenset({"User.Read.All", "GroupMember.Read.All"}))
    return world
