"""`LdapSource`: users and mapped group memberships from OpenLDAP or Active Directory.

A user is keyed by its email when it has one, else by its username; both keys are kept (SPEC §4).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from ldap3.utils.conv import escape_filter_chars

from reconcile.errors import SourceError
from reconcile.model import DesiredState, DesiredUser, Identity, Location, Status, norm
from reconcile.settings import LdapFlavor, LdapGroupsSettings, LdapSourceSettings
from reconcile.sources.ldap.client import RANGE_STEP, LdapClient
from reconcile.sources.ldap.dn import dn_key, member_dn
from reconcile.sources.ldap.mapping import GroupMap

log = logging.getLogger(__name__)

IN_CHAIN = "1.2.840.113556.1.4.1941"  # AD LDAP_MATCHING_RULE_IN_CHAIN: transitive membership
AD_DISABLED = 0x2  # userAccountControl ACCOUNTDISABLE


def wrap(ldap_filter: str) -> str:
    """A filter with its outer parentheses (`objectClass=person` -> `(objectClass=person)`)."""
    text = ldap_filter.strip()
    return text if text.startswith("(") else f"({text})"


def in_chain_filter(users_filter: str, group_dn: str) -> str:
    """Users that are members of `group_dn`, directly or through nested groups (AD only)."""
    return f"(&{wrap(users_filter)}(memberOf:{IN_CHAIN}:={escape_filter_chars(group_dn)}))"


@dataclass(slots=True)
class _User:
    dn: str
    username: str | None
    email: str | None
    name: str | None
    disabled: bool
    member_of: Sequence[str]  # dn keys, memberOf mode only
    groups: set[str] | None = None  # mapped Atlassian names; None until the first one


@dataclass(slots=True)
class _Group:
    dn: str
    name: str
    mapped: str | None
    contains: set[str] = field(default_factory=set)  # dn keys of member users and groups
    parents: list[str] = field(default_factory=list)  # dn keys from the group's memberOf


class LdapSource:
    """`sources.<name>` with `type: ldap`: read() returns the users and their mapped groups."""

    def __init__(self, config: LdapSourceSettings) -> None:
        self.config = config
        self.name = config.name
        self._client = LdapClient(config)  # validates the URL before any network call
        where = self._client.where
        self.group_map = GroupMap.parse(config.groups.map, where=where) if config.groups else None

    async def read(self) -> DesiredState:
        return await asyncio.to_thread(self._read)  # ldap3 blocks: other sources read meanwhile

    def _read(self) -> DesiredState:
        cfg = self.config
        with self._client as client:
            flavor = cfg.flavor
            if flavor is LdapFlavor.AUTO:
                flavor = LdapFlavor.ACTIVE_DIRECTORY if client.root_dse().is_active_directory else LdapFlavor.OPENLDAP
                log.info("%s: directory flavor detected: %s", client.where, flavor)
            users = self._read_users(client, flavor)
            mapped: set[str] = set()
            if cfg.groups is not None and self.group_map is not None:
                mapped = self._read_memberships(client, flavor, cfg.groups, self.group_map, users)
        return self._desired(users, mapped)

    # ------------------------------------------------------------------------------------------ users

    def _read_users(self, client: LdapClient, flavor: LdapFlavor) -> dict[str, _User]:
        ucfg = self.config.users
        attrs = [ucfg.username, ucfg.email, ucfg.name]
        if flavor is LdapFlavor.ACTIVE_DIRECTORY:
            attrs.append("userAccountControl")
        gcfg = self.config.groups
        by_member_of = (gcfg is not None and gcfg.member_attribute.lower() == "memberof"
                        and not _in_chain(gcfg, flavor))
        if by_member_of:
            attrs.append("memberOf")
        users: dict[str, _User] = {}
        username, email, name = ucfg.username.lower(), ucfg.email.lower(), ucfg.name.lower()
        group_keys: dict[str, str] = {}  # memberOf value -> its key: one string per group, not per user
        for entry in client.search(ucfg.base, wrap(ucfg.filter), attrs, what="users.filter"):
            values = entry.attributes
            disabled = False
            if flavor is LdapFlavor.ACTIVE_DIRECTORY:
                uac = entry.first("userAccountControl")
                disabled = bool(uac and uac.lstrip("-").isdigit() and int(uac) & AD_DISABLED)
            users[dn_key(entry.dn)] = _User(
                dn=entry.dn, username=_first(values, username), email=_first(values, email),
                name=_first(values, name), disabled=disabled,
                member_of=[_key(group_keys, v) for v in entry.all("memberOf")] if by_member_of else (),
            )
        if ucfg.disabled:
            query = f"(&{wrap(ucfg.filter)}{wrap(ucfg.disabled)})"
            for entry in client.search(ucfg.base, query, ["1.1"], what="users.disabled"):
                user = users.get(dn_key(entry.dn))
                if user is not None:
                    user.disabled = True
        log.info("%s: %d users read", client.where, len(users))
        return users

    # ------------------------------------------------------------------------------------------ groups

    def _read_memberships(self, client: LdapClient, flavor: LdapFlavor, gcfg: LdapGroupsSettings,
                          group_map: GroupMap, users: dict[str, _User]) -> set[str]:
        """Put every user's mapped groups into `user.groups`; return every mapped group name."""
        attribute = gcfg.member_attribute.lower()
        in_chain = _in_chain(gcfg, flavor)
        attrs = [gcfg.name]
        if in_chain:
            pass  # the server resolves membership; only names are needed
        elif attribute == "memberof":
            attrs.append("memberOf")  # a group's own memberOf names its parents
        elif flavor is LdapFlavor.ACTIVE_DIRECTORY:
            attrs.append(f"{gcfg.member_attribute};range=0-{RANGE_STEP - 1}")  # the rest: LdapClient
        else:
            attrs.append(gcfg.member_attribute)
        by_username = ({norm(u.username): key for key, u in users.items() if u.username}
                       if attribute == "memberuid" else {})

        groups: dict[str, _Group] = {}
        # member value -> dn key: a user is a member of many groups, and values are mostly written as
        # the directory returns the user's own DN, whose key is known already
        by_dn = not in_chain and attribute not in ("memberuid", "memberof")  # member values are DNs
        memo = {u.dn: key for key, u in users.items() if not u.dn.endswith("'B")} if by_dn else {}
        for entry in client.search(gcfg.base, wrap(gcfg.filter), attrs, what="groups.filter"):
            name = entry.first(gcfg.name)
            if not name:
                log.warning("%s: group %s has no %s; ignored", client.where, entry.dn, gcfg.name)
                continue
            group = _Group(dn=entry.dn, name=name, mapped=group_map.target(name))
            groups[dn_key(entry.dn)] = group
            if in_chain:
                continue
            if attribute == "memberuid":
                group.contains.update(k for uid in entry.all(gcfg.member_attribute)
                                      if (k := by_username.get(norm(uid))) is not None)
            elif attribute == "memberof":
                group.parents = [dn_key(v) for v in entry.all("memberOf")]
            else:
                for value in entry.all(gcfg.member_attribute):
                    key = memo.get(value)
                    if key is None:
                        key = memo[value] = dn_key(member_dn(value))
                    group.contains.add(key)
        if attribute == "memberof" and not in_chain:
            for key, user in users.items():
                for group_key in user.member_of:
                    if group_key in groups:
                        groups[group_key].contains.add(key)
            for key, group in groups.items():
                for parent in group.parents:
                    if parent in groups:
                        groups[parent].contains.add(key)
        mapped = [g for g in groups.values() if g.mapped]
        log.info("%s: %d groups read, %d mapped", client.where, len(groups), len(mapped))

        for group in mapped:
            if in_chain:
                members = {dn_key(e.dn) for e in client.search(
                    self.config.users.base, in_chain_filter(self.config.users.filter, group.dn), ["1.1"],
                    what=f"members of {group.dn!r} (in chain)")}
            elif gcfg.nested:
                members = _closure(group, groups)
            else:
                members = group.contains
            target = group.mapped
            for key in members:
                member = users.get(key)
                if member is not None and target:
                    if member.groups is None:
                        member.groups = {target}
                    else:
                        member.groups.add(target)
        return {g.mapped for g in mapped if g.mapped}

    # ------------------------------------------------------------------------------------- desired state

    def _desired(self, users: dict[str, _User], mapped: set[str]) -> DesiredState:
        out: dict[str, DesiredUser] = {}
        first_dn: dict[str, str] = {}
        same: dict[frozenset[str], frozenset[str]] = {}  # one set per combination of groups
        prefix = f"{self.config.url}/"
        for user in users.values():
            email = user.email.strip().lower() if user.email else None  # norm(), inlined: 100,000 calls
            username = user.username.strip().lower() if user.username else None
            key = email or username
            if key is None:
                log.warning("%s: %s has neither %s nor %s; ignored", self._client.where, user.dn,
                            self.config.users.email, self.config.users.username)
                continue
            if key in out:
                raise SourceError(
                    f"{self._client.where}: two directory entries have the key {key!r}: {first_dn[key]!r} and "
                    f"{user.dn!r}", hint="fix the directory, or narrow users.filter so that one of them is excluded")
            first_dn[key] = user.dn
            groups = frozenset(user.groups) if user.groups else _NO_GROUPS
            out[key] = DesiredUser(
                key=key, status=Status.DISABLED if user.disabled else Status.ACTIVE,
                groups=same.setdefault(groups, groups), identity=Identity(username=username, email=email),
                display_name=user.name, source=self.name, origin=Location(prefix + user.dn),
            )
        return DesiredState.build(out.values(), groups=mapped)


_NO_GROUPS: frozenset[str] = frozenset()


def _key(keys: dict[str, str], dn: str) -> str:
    """`dn_key(dn)`, computed once per distinct `dn` and then shared."""
    key = keys.get(dn)
    if key is None:
        key = keys[dn] = dn_key(dn)
    return key


def _first(attributes: dict[str, list[str]], name: str) -> str | None:
    """`Entry.first` for a lower-cased attribute name."""
    values = attributes.get(name)
    return values[0] if values else None


def _in_chain(gcfg: LdapGroupsSettings, flavor: LdapFlavor) -> bool:
    """Whether the server resolves nested membership (AD's in-chain rule) instead of our own walk."""
    return gcfg.nested and flavor is LdapFlavor.ACTIVE_DIRECTORY and gcfg.member_attribute.lower() in (
        "member", "memberof")


def _closure(group: _Group, groups: dict[str, _Group]) -> set[str]:
    """Every non-group member of `group` and of the groups nested in it; cycle-safe."""
    members: set[str] = set()
    seen = {dn_key(group.dn)}
    stack = [group]
    while stack:
        current = stack.pop()
        for key in current.contains:
            inner = groups.get(key)
            if inner is None:
                members.add(key)
            elif key not in seen:
                seen.add(key)
                stack.append(inner)
    return members
