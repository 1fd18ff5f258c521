"""From checked files to typed values: the target, sources, scope, policy and the inline desired state.

Cross-file rules live here: one `target`, each section once, each user and group defined once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reconcile.config.nodes import Fields, Item, unknown_value
from reconcile.errors import ConfigError
from reconcile.model import (
    AbsentPolicy,
    DesiredState,
    DesiredUser,
    Globs,
    Location,
    Policy,
    Scope,
    Status,
    UnsyncedPolicy,
    is_email,
    norm,
)
from reconcile.settings import (
    AtlassianCloudConfig,
    CloudDelete,
    CloudDisable,
    CloudSiteConfig,
    ConfluenceDcConfig,
    CsvSourceConfig,
    HttpSettings,
    LdapFlavor,
    LdapGroupsConfig,
    LdapSourceConfig,
    LdapUsersConfig,
    MemoryConfig,
    SourceConfig,
    TargetConfig,
)

log = logging.getLogger(__name__)

Problems = list[tuple[Location, str]]
SECTIONS = ("target", "scope", "policy", "sources", "notify")
TARGET_TYPES = ("confluence-dc", "atlassian-cloud", "memory")
SOURCE_TYPES = ("ldap", "csv")


def _v(fields: Fields | None, key: str, default: Any = None) -> Any:
    item = (fields or {}).get(key)
    return default if item is None or item.value is None else item.value


def _globs(fields: Fields | None, key: str, default: Globs) -> Globs:
    items: list[Item] | None = _v(fields, key)
    return default if items is None else Globs(tuple(i.value for i in items))


def sections(docs: Sequence[Fields], problems: Problems) -> dict[str, Item]:
    """The once-only sections across files; a second definition is a problem naming the first."""
    seen: dict[str, Item] = {}
    for doc in docs:
        for name in SECTIONS:
            item = doc.get(name)
            if item is None:
                continue
            if name in seen:
                problems.append((item.key_loc, f"'{name}' is already defined at {seen[name].key_loc}; "
                                 "write it once across the desired files"))
                continue
            seen[name] = item
    return seen


def _http(fields: Fields | None) -> HttpSettings:
    d = HttpSettings()
    return HttpSettings(
        timeout=_v(fields, "timeout", d.timeout),
        concurrency=_v(fields, "concurrency", d.concurrency),
        max_retries=_v(fields, "max_retries", d.max_retries),
        ca_file=_v(fields, "ca_file", d.ca_file),
    )


def _type_problem(fields: Fields, path: str, known: Sequence[str]) -> tuple[Location, str]:
    """An unknown `type:`: the loader's checks refuse it first; the builder never guesses one."""
    item = fields.get("type")
    where = item.loc if item is not None else Location("<configuration>")
    value = None if item is None else item.value
    return where, f"{path}.type: {unknown_value(value, known)}"


def target(fields: Fields) -> TargetConfig:
    """The target configuration; ConfigError for a type this version does not know."""
    match _v(fields, "type"):
        case "confluence-dc":
            return _confluence_dc(fields)
        case "atlassian-cloud":
            return _atlassian_cloud(fields)
        case "memory":
            dm = MemoryConfig(state="")
            return MemoryConfig(
                state=_v(fields, "state", ""),
                admin_groups=_globs(fields, "admin_groups", dm.admin_groups),
                readonly_groups=_globs(fields, "readonly_groups", dm.readonly_groups),
                delay=_v(fields, "delay", dm.delay),
            )
        case _:
            where, message = _type_problem(fields, "target", TARGET_TYPES)
            raise ConfigError([f"{where}: {message}"])


def _confluence_dc(fields: Fields) -> ConfluenceDcConfig:
    auth = _v(fields, "auth")
    d = ConfluenceDcConfig(url="")
    return ConfluenceDcConfig(
        url=str(_v(fields, "url", "")).rstrip("/"),
        token=_v(auth, "token") or _v(auth, "token_file"),
        username=_v(auth, "username"),
        password=_v(auth, "password") or _v(auth, "password_file"),
        admin_groups=_globs(fields, "admin_groups", d.admin_groups),
        readonly_groups=_globs(fields, "readonly_groups", d.readonly_groups),
        http=_http(_v(fields, "http")),
        insecure=bool(_v(fields, "insecure", False)),
    )


def _atlassian_cloud(fields: Fields) -> AtlassianCloudConfig:
    auth = _v(fields, "auth")
    site = _v(fields, "site")
    dc = AtlassianCloudConfig(org_id="", api_key=None)  # type: ignore[arg-type]
    return AtlassianCloudConfig(
        org_id=_v(fields, "org_id", ""),
        api_key=_v(auth, "api_key") or _v(auth, "api_key_file"),
        url=str(_v(fields, "url", dc.url)).rstrip("/"),
        directory=_v(fields, "directory", dc.directory),
        disable=CloudDisable(_v(fields, "disable", dc.disable)),
        delete=CloudDelete(_v(fields, "delete", dc.delete)),
        site=None if site is None else CloudSiteConfig(
            url=str(_v(site, "url", "")).rstrip("/"),
            email=_v(site, "email", ""),
            token=_v(site, "token") or _v(site, "token_file"),
        ),
        http=_http(_v(fields, "http")),
        insecure=bool(_v(fields, "insecure", False)),
    )


def _filter_problems(fields: Fields | None, problems: Problems, path: str) -> None:
    for key in ("filter", "disabled"):
        item = (fields or {}).get(key)
        if item is None:
            continue
        depth = 0
        for ch in item.value:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth < 0:
                break
        if depth != 0:
            problems.append((item.loc, f"{path}.{key}: unbalanced parentheses in LDAP filter '{item.value}'"))


def _ldap(name: str, item: Item, problems: Problems) -> LdapSourceConfig:
    fields: Fields = item.value
    users, groups, bind = _v(fields, "users"), _v(fields, "groups"), _v(fields, "bind")
    url: str = _v(fields, "url", "")
    start_tls = bool(_v(fields, "start_tls", False))
    if start_tls and url.lower().startswith("ldaps://"):
        problems.append((fields["start_tls"].loc, f"sources.{name}.start_tls: an ldaps:// URL is already TLS; "
                         "use ldap:// with start_tls: true, or drop start_tls"))
    _filter_problems(users, problems, f"sources.{name}.users")
    _filter_problems(groups, problems, f"sources.{name}.groups")
    du = LdapUsersConfig(base="")
    dg = LdapGroupsConfig(base="")
    mapping: dict[str, Item] = _v(groups, "map", {})
    d = LdapSourceConfig(name=name, url=url, users=du)
    return LdapSourceConfig(
        name=name,
        url=url,
        users=LdapUsersConfig(
            base=_v(users, "base", ""),
            filter=_v(users, "filter", du.filter),
            username=_v(users, "username", du.username),
            email=_v(users, "email", du.email),
            name=_v(users, "name", du.name),
            disabled=_v(users, "disabled", du.disabled),
        ),
        groups=None if groups is None else LdapGroupsConfig(
            base=_v(groups, "base", ""),
            filter=_v(groups, "filter", dg.filter),
            name=_v(groups, "name", dg.name),
            member_attribute=_v(groups, "member_attribute", dg.member_attribute),
            nested=_v(groups, "nested", dg.nested),
            map=tuple((k, norm(v.value)) for k, v in mapping.items()),
        ),
        start_tls=start_tls,
        ca_file=_v(fields, "ca_file"),
        timeout=_v(fields, "timeout", d.timeout),
        bind_dn=_v(bind, "dn"),
        bind_password=_v(bind, "password") or _v(bind, "password_file"),
        flavor=LdapFlavor(_v(fields, "flavor", d.flavor)),
        page_size=_v(fields, "page_size", d.page_size),
        allow_empty=bool(_v(fields, "allow_empty", False)),
        origin=item.key_loc,
        insecure=bool(_v(fields, "insecure", False)),
    )


def sources(item: Item | None, problems: Problems) -> dict[str, SourceConfig]:
    out: dict[str, SourceConfig] = {}
    entries: dict[str, Item] = (item.value if item else None) or {}
    for name, entry in entries.items():
        fields: Fields = entry.value
        match _v(fields, "type"):
            case "ldap":
                out[name] = _ldap(name, entry, problems)
            case "csv":
                out[name] = CsvSourceConfig(name=name, path=_v(fields, "path", ""),
                                            allow_empty=bool(_v(fields, "allow_empty", False)),
                                            origin=entry.key_loc)
            case _:
                problems.append(_type_problem(fields, f"sources.{name}", SOURCE_TYPES))
    return out


def scope(fields: Fields | None) -> Scope:
    d = Scope()
    return Scope(users=_globs(fields, "users", d.users), groups=_globs(fields, "groups", d.groups),
                 protect=_globs(fields, "protect", d.protect))


def policy(fields: Fields | None) -> Policy:
    d = Policy()
    limits: Fields = _v(fields, "limits", {})
    return Policy(
        absent=AbsentPolicy(_v(fields, "absent", d.absent)),
        unsynced=UnsyncedPolicy(_v(fields, "unsynced", d.unsynced)),
        limits={kind: item.value for kind, item in limits.items()},
        allow_empty=bool(_v(fields, "allow_empty", d.allow_empty)),
    )


@dataclass(slots=True)
class _Draft:
    key: str
    origin: Location
    status: Status = Status.ACTIVE
    groups: set[str] = field(default_factory=set)
    username: str | None = None
    email: str | None = None
    name: str | None = None

    def freeze(self) -> DesiredUser:
        return DesiredUser(key=self.key, status=self.status, groups=frozenset(self.groups),
                           username=self.username, email=self.email, display_name=self.name,
                           source="yaml", origin=self.origin)


@dataclass(slots=True)
class _Inline:
    """The inline users and groups being collected from every file."""

    problems: Problems
    users: dict[str, _Draft] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # a `username:`/`email:` -> that user's key
    named: dict[str, list[Location]] = field(default_factory=dict)  # group -> every place it is named
    defined_groups: dict[str, Location] = field(default_factory=dict)

    def user(self, key: str, item: Item) -> None:
        k = norm(key)
        if k in self.users:
            self.problems.append((item.key_loc, f"user '{key}' is defined twice (also at "
                                  f"{self.users[k].origin}); define each user once"))
            return
        if k in self.aliases:
            owner = self.users[self.aliases[k]]
            self.problems.append((item.key_loc, f"user '{key}' is already user '{owner.key}' (its username "
                                  f"or email) at {owner.origin}; define each user once"))
            return
        fields: Fields = item.value or {}
        draft = self.users[k] = _Draft(
            key=key.strip(), origin=item.key_loc, status=Status(_v(fields, "status", Status.ACTIVE)),
            username=_v(fields, "username"), email=_v(fields, "email"), name=_v(fields, "name"))
        for extra in ("username", "email"):
            alias = fields.get(extra)
            if alias is not None:
                self._alias(key, extra, alias)
        for group in _v(fields, "groups") or []:
            draft.groups.add(norm(group.value))
            self.named.setdefault(norm(group.value), []).append(group.loc)

    def _alias(self, key: str, extra: str, alias: Item) -> None:
        if (extra == "email") == is_email(key):
            other = "username" if extra == "email" else "email"
            self.problems.append((alias.key_loc, f"users.{key}.{extra}: the key is already the {extra}; "
                                  f"give the {other} instead"))
            return
        name, k = norm(alias.value), norm(key)
        owner = self.aliases.get(name) or (name if name in self.users else None)
        if owner is not None and owner != k:
            self.problems.append((alias.loc, f"users.{key}.{extra}: '{alias.value}' is also user "
                                  f"'{self.users[owner].key}' at {self.users[owner].origin}"))
            return
        self.aliases[name] = k

    def group(self, name: str, item: Item) -> None:
        group = norm(name)
        if group in self.defined_groups:
            self.problems.append((item.key_loc, f"group '{name}' is defined twice (also at "
                                  f"{self.defined_groups[group]}); define each group once"))
            return
        self.defined_groups[group] = item.key_loc
        self.named.setdefault(group, []).append(item.key_loc)
        for member in _v(item.value, "members") or []:
            key = norm(member.value)
            draft = self.users.get(self.aliases.get(key, key))
            if draft is None:
                draft = self.users[key] = _Draft(key=member.value.strip(), origin=member.loc)
            draft.groups.add(group)

    def outside(self, owned: Scope) -> None:
        for group, places in self.named.items():
            if not owned.owns_group(group):
                more = f" (and {len(places) - 1} more places)" if len(places) > 1 else ""
                self.problems.append((places[0], f"group '{group}' is outside scope.groups{more}; add it "
                                      "(or a glob matching it) to scope.groups, or remove it"))


def inline(docs: Sequence[Fields], owned: Scope | None, problems: Problems) -> DesiredState:
    """Users and groups written in the files; `owned` is None when scope itself was invalid."""
    state = _Inline(problems)
    for doc in docs:
        for key, item in (_v(doc, "users") or {}).items():
            state.user(key, item)
    for doc in docs:
        for name, item in (_v(doc, "groups") or {}).items():
            state.group(name, item)
    if owned is not None:
        state.outside(owned)
    return DesiredState(
        users={k: d.freeze() for k, d in state.users.items()},
        groups=frozenset(state.named),
        origins={g: places[0] for g, places in state.named.items()},
    )
