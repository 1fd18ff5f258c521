"""The JSON of SCIM Users and Groups (RFC 7643 §4.1, §4.2), `attributes`/`excludedAttributes` (RFC 7644 §3.9),
and SCIM Error bodies (§3.12)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from reconcile.sim.jsonbody import Raw, dumps
from reconcile.sim.scim.world import ENCODED_BASE, MEMBER_FIELDS, ScimGroup, ScimUser, ScimWorld

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
CREATED = "2025-01-01T00:00:00Z"
ALWAYS = frozenset({"id", "schemas"})  # `returned: always`: neither attributes nor excludedAttributes drop them

# The lower-case attribute paths a filter may name, per resource type.
USER_PATHS = frozenset({"id", "externalid", "username", "displayname", "active", "name", "name.formatted", "emails",
                        "emails.value", "emails.type", "emails.primary", "meta.created", "meta.lastmodified",
                        "meta.resourcetype"})
GROUP_PATHS = frozenset({"id", "externalid", "displayname", "members", "members.value", "members.type",
                         "members.display", "members.$ref", "meta.created", "meta.lastmodified", "meta.resourcetype"})


def error_body(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return body


def _meta(base: str, kind: str, rid: str) -> dict[str, str]:
    return {"resourceType": kind, "created": CREATED, "lastModified": CREATED, "location": f"{base}/{kind}s/{rid}"}


def user_json(base: str, user: ScimUser) -> dict[str, Any]:
    out: dict[str, Any] = {"schemas": [USER], "id": user.id, "userName": user.user_name}
    if user.external_id is not None:
        out["externalId"] = user.external_id
    if user.display_name is not None:
        out["displayName"] = user.display_name
        out["name"] = {"formatted": user.display_name}
    if user.active is not None:
        out["active"] = user.active
    if user.emails:
        out["emails"] = [{"value": v, "type": t, "primary": p} for v, t, p in user.emails]
    out["meta"] = _meta(base, "User", user.id)
    return out


def group_json(base: str, world: ScimWorld, group: ScimGroup, *, members: bool = True,
               encoded: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A group's JSON; `encoded`: its members as the world's pre-encoded JSON (`members_json`) of these
    sub-attributes, for a page whose projection sends `members` so (`sent_members`)."""
    out: dict[str, Any] = {"schemas": [GROUP], "id": group.id, "displayName": group.display_name}
    if group.external_id is not None:
        out["externalId"] = group.external_id
    if members and group.members:  # an empty multi-valued attribute is absent (RFC 7643 §2.5)
        listed = world.members_json(group, encoded or MEMBER_FIELDS)
        if "$ref" in (encoded or MEMBER_FIELDS):
            listed = listed.replace(ENCODED_BASE, dumps(base)[1:-1])
        out["members"] = Raw(listed) if encoded else msgspec.json.decode(listed)
    out["meta"] = _meta(base, "Group", group.id)
    return out


def _paths(raw: str | None) -> list[tuple[str, ...]]:
    if not raw:
        return []
    out = []
    for item in raw.split(","):
        name = item.strip().rsplit(":", 1)[-1] if item.strip().startswith("urn:") else item.strip()
        if name:
            out.append(tuple(name.lower().split(".")))
    return out


def wanted_top(attributes: str | None) -> set[str] | None:
    """The top-level attribute names `attributes` asks for (None: all by default)."""
    paths = _paths(attributes)
    return {p[0] for p in paths} if paths else None


_DROP: set[str] = set()  # `wanted.get`'s default: an attribute not asked for


def sent_members(attributes: str | None) -> tuple[str, ...] | None:
    """The sub-attributes of `members` a projection by `attributes` sends (all of them when it sends `members`
    whole), in rendering order; None when it sends none."""
    paths = _paths(attributes)
    if not paths or ("members",) in paths:
        return MEMBER_FIELDS
    subs = {p[1] for p in paths if len(p) == 2 and p[0] == "members"}
    return tuple(f for f in MEMBER_FIELDS if f.lower() in subs) or None


def projector(attributes: str | None, excluded: str | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A resource as `attributes` asks (only these, plus id and schemas) or `excludedAttributes` (all but these);
    parsed once per request, applied to each resource of the page."""
    wanted: dict[str, set[str] | None] = {}  # top-level name -> sub-attributes (None: all of it)
    for path in _paths(attributes):
        if len(path) == 1 or wanted.get(path[0], set()) is None:
            wanted[path[0]] = None
        else:
            subs = wanted.setdefault(path[0], set())
            assert subs is not None
            subs.add(path[1])
    if wanted:
        lowered: dict[str, str] = {}  # attribute name -> its lower case: a page repeats the same few names

        def only(resource: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, value in resource.items():
                if key in ALWAYS:
                    out[key] = value
                    continue
                name = lowered.get(key)
                if name is None:
                    name = lowered[key] = key.lower()
                keep = wanted.get(name, _DROP)
                if keep is _DROP:
                    continue
                if keep is None or isinstance(value, Raw):  # Raw: encoded as projected (`sent_members`)
                    out[key] = value
                elif isinstance(value, dict):
                    out[key] = {k: v for k, v in value.items() if k.lower() in keep}
                elif isinstance(value, list):
                    out[key] = [{k: v for k, v in item.items() if k.lower() in keep} for item in value]
            return out
        return only
    dropped = {p[0] for p in _paths(excluded) if len(p) == 1} - ALWAYS
    if not dropped:
        return lambda resource: resource
    return lambda resource: {k: v for k, v in resource.items() if k.lower() not in dropped}


def project(resource: dict[str, Any], attributes: str | None, excluded: str | None) -> dict[str, Any]:
    """One resource through `projector`."""
    return projector(attributes, excluded)(resource)


def service_provider_config(world: ScimWorld) -> dict[str, Any]:
    return {
        "schemas": [CONFIG], "patch": {"supported": False}, "bulk": {"supported": False, "maxOperations": 0,
                                                                     "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": world.max_results}, "changePassword": {"supported": False},
        "sort": {"supported": False}, "etag": {"supported": False},
        "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token",
                                   "description": "Authentication with a bearer token", "primary": True}],
    }


def page_of(items: Iterable[dict[str, Any]], total: int, start: int) -> dict[str, Any]:
    resources = list(items)
    return {"schemas": [LIST], "totalResults": total, "itemsPerPage": len(resources), "startIndex": start,
            "Resources": resources}
