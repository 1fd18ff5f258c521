"""The scenario's `entra_id:` section -> an EntraWorld; problems reported through `at(node, key, message)`
(reconcile/sim/scenario.py turns them into `file:line:col: message`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from reconcile.sim.entra_id.world import (
    DEVICE,
    GROUP,
    SERVICE_PRINCIPAL,
    USER,
    Certificate,
    EntraApp,
    EntraDevice,
    EntraGroup,
    EntraServicePrincipal,
    EntraUser,
    EntraWorld,
    stable_id,
)
from reconcile.sim.sections import At, unknown_keys

TOP_KEYS = {"tenant_id", "domain", "token_lifetime", "throttle", "users", "groups", "devices",
            "service_principals", "apps"}
USER_KEYS = {"user_principal_name", "id", "display_name", "mail", "other_mails", "account_enabled", "user_type",
             "given_name", "surname", "job_title", "external_user_state"}
GROUP_KEYS = {"display_name", "id", "description", "group_types", "security_enabled", "mail_enabled", "mail",
              "mail_nickname", "members"}
MEMBER_KEYS = {"users": USER, "groups": GROUP, "devices": DEVICE, "service_principals": SERVICE_PRINCIPAL}
DEVICE_KEYS = {"display_name", "id", "device_id", "account_enabled", "operating_system"}
PRINCIPAL_KEYS = {"display_name", "id", "app_id"}
APP_KEYS = {"client_id", "display_name", "secrets", "certificates", "permissions"}
THROTTLE_KEYS = {"every", "retry_after"}




def _items(node: Any, key: str, needed: str, what: str, at: At) -> list[Mapping[str, Any]]:
    """The mappings listed under `key` that have `needed`; the others are reported."""
    found = []
    for i, item in enumerate(node.get(key) or []):
        if isinstance(item, Mapping) and item.get(needed):
            found.append(item)
        else:
            at(node[key], i, f"{what} needs a {needed}")
    return found


def _text(item: Mapping[str, Any], key: str) -> str | None:
    return str(item[key]) if item.get(key) is not None else None


def world_from_scenario(node: Mapping[str, Any], at: At) -> EntraWorld:
    unknown_keys(node, TOP_KEYS, "entra_id", at)
    world = EntraWorld()
    if node.get("tenant_id"):
        world.tenant_id = str(node["tenant_id"])
    if node.get("domain"):
        world.domain = str(node["domain"])
    world.token_lifetime = int(node.get("token_lifetime", world.token_lifetime))
    throttle = node.get("throttle") or {}
    unknown_keys(throttle, THROTTLE_KEYS, "entra_id.throttle", at)
    world.throttle_every = int(throttle.get("every", 0))
    world.retry_after = int(throttle.get("retry_after", world.retry_after))
    by_upn: dict[str, str] = {}
    for item in _items(node, "users", "user_principal_name", "a user", at):
        unknown_keys(item, USER_KEYS, "an entra_id user", at)
        upn = str(item["user_principal_name"])
        user_type = str(item.get("user_type", "Member"))
        if user_type not in ("Member", "Guest"):
            at(item, "user_type", f"user_type is Member or Guest, not {user_type!r}")
        user = EntraUser(id=_text(item, "id") or stable_id("user", upn.lower()), user_principal_name=upn,
                         display_name=str(item.get("display_name") or upn.partition("@")[0]), mail=_text(item, "mail"),
                         other_mails=tuple(str(m) for m in item.get("other_mails") or []),
                         account_enabled=bool(item.get("account_enabled", True)), user_type=user_type,
                         given_name=_text(item, "given_name"), surname=_text(item, "surname"),
                         job_title=_text(item, "job_title"), external_user_state=_text(item, "external_user_state"))
        if upn.lower() in by_upn:
            at(item, "user_principal_name", f"user {upn!r} is listed twice")
            continue
        by_upn[upn.lower()] = user.id
        world.users[user.id] = user
    names: dict[str, dict[str, str]] = {DEVICE: {}, SERVICE_PRINCIPAL: {}, GROUP: {}, USER: by_upn}
    for item in _items(node, "devices", "display_name", "a device", at):
        unknown_keys(item, DEVICE_KEYS, "an entra_id device", at)
        name = str(item["display_name"])
        device = EntraDevice(id=_text(item, "id") or stable_id("device", name), display_name=name,
                             device_id=_text(item, "device_id") or stable_id("device-id", name),
                             account_enabled=bool(item.get("account_enabled", True)),
                             operating_system=str(item.get("operating_system", "Windows")))
        world.devices[device.id] = device
        names[DEVICE][name.lower()] = device.id
    for item in _items(node, "service_principals", "display_name", "a service principal", at):
        unknown_keys(item, PRINCIPAL_KEYS, "an entra_id service principal", at)
        name = str(item["display_name"])
        principal = EntraServicePrincipal(id=_text(item, "id") or stable_id("sp", name), display_name=name,
                                          app_id=_text(item, "app_id") or stable_id("sp-app", name))
        world.service_principals[principal.id] = principal
        names[SERVICE_PRINCIPAL][name.lower()] = principal.id
    groups = _items(node, "groups", "display_name", "a group", at)
    for item in groups:
        unknown_keys(item, GROUP_KEYS, "an entra_id group", at)
        name = str(item["display_name"])
        group = EntraGroup(id=_text(item, "id") or stable_id("group", name.lower()), display_name=name,
                           description=_text(item, "description"),
                           group_types=tuple(str(t) for t in item.get("group_types") or []),
                           security_enabled=bool(item.get("security_enabled", True)),
                           mail_enabled=bool(item.get("mail_enabled", False)), mail=_text(item, "mail"),
                           mail_nickname=str(item.get("mail_nickname") or name.replace(" ", "")))
        world.groups[group.id] = group
        names[GROUP][name.lower()] = group.id
    for item in groups:
        members = item.get("members") or {}
        unknown_keys(members, set(MEMBER_KEYS), "a group's members", at)
        group = world.groups[names[GROUP][str(item["display_name"]).lower()]]
        for key, kind in MEMBER_KEYS.items():
            for ref in members.get(key) or []:
                object_id = names[kind].get(str(ref).lower())
                if object_id is None:
                    at(members, key, f"{key[:-1].replace('_', ' ')} {str(ref)!r} is not in this scenario")
                elif (kind, object_id) not in group.members:
                    group.members.append((kind, object_id))
    for item in _items(node, "apps", "client_id", "an app registration", at):
        unknown_keys(item, APP_KEYS, "an entra_id app", at)
        certificates = []
        for pem in item.get("certificates") or []:
            try:
                der = x509.load_pem_x509_certificate(str(pem).encode()).public_bytes(Encoding.DER)
            except ValueError as exc:
                at(item, "certificates", f"not a PEM certificate: {exc}")
                continue
            certificates.append(Certificate(der))
        app = EntraApp(client_id=str(item["client_id"]), display_name=str(item.get("display_name") or "app"),
                       secrets=tuple(str(s) for s in item.get("secrets") or []), certificates=tuple(certificates),
                       permissions=frozenset(str(p) for p in item.get("permissions") or []))
        world.apps[app.client_id] = app
    return world
