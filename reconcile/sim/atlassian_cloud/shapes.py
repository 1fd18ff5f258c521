"""What the simulated Organizations API says and accepts: error bodies, typed request fields, cursors,
user/group JSON and the search filters (routes.py serves them)."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

from reconcile.sim.atlassian_cloud.world import CloudGroup, CloudUser, CloudWorld

GROUP_ARI = "ari:cloud:identity::group/"  # a group's id as the document's user example writes it


class OrgError(Exception):
    """An Organizations API error: `{"errors": [{id, status, code, title, detail}]}`."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail

    def response(self) -> Response:
        titles = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                  409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error"}
        body = {"errors": [{"id": str(uuid.uuid4()), "status": str(self.status), "code": self.code,
                            "title": titles.get(self.status, "Error"), "detail": self.detail}]}
        return JSONResponse(body, status_code=self.status)


STRINGS = "a list of strings"
BODY_FIELDS: dict[str, str] = {  # search and membership body fields, typed as the document types them
    "cursor": "a string", "searchTerm": "a string", "claimStatus": "a string", "accountId": "a string",
    "limit": "an integer", "mfaEnabled": "a boolean",
    **dict.fromkeys(("accountIds", "directoryIds", "resourceIds", "groupIds", "groupNames", "emails", "emailDomains",
                     "expand", "status", "accountStatus", "membershipStatus", "roleIds", "resourceOwners"), STRINGS),
}


def is_typed(value: Any, kind: str) -> bool:
    if kind == STRINGS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "an integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "a boolean":
        return isinstance(value, bool)
    return isinstance(value, str)


def encode_cursor(offset: int, limit: int | None = None) -> str:
    text = f"o:{offset}" if limit is None else f"o:{offset}:{limit}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _cursor_parts(cursor: str) -> list[int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith("o:"):
            return [int(part) for part in text[2:].split(":")]
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise OrgError(400, "ADMIN-400-1", "The cursor is invalid.")


def decode_cursor(cursor: str) -> int:
    return _cursor_parts(cursor)[0]


def cursor_limit(cursor: str) -> int:
    """The page size a GET cursor carries (GET discards every other parameter when given a cursor)."""
    parts = _cursor_parts(cursor)
    return parts[1] if len(parts) > 1 else 20


def basic_credentials(header: str) -> tuple[str | None, str | None]:
    if not header.startswith("Basic "):
        return None, None
    try:
        email, _, token = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return email, token


def user_matches(world: CloudWorld, u: CloudUser, body: dict[str, Any], dirs: list[str]) -> bool:
    if body.get("accountIds") and u.account_id not in body["accountIds"]:
        return False
    if body.get("emails") and u.email.lower() not in {e.lower() for e in body["emails"]}:
        return False
    if body.get("emailDomains") and u.email.rsplit("@", 1)[-1].lower() not in {
            d.lower() for d in body["emailDomains"]}:
        return False
    wanted = {g.removeprefix(GROUP_ARI) for g in body.get("groupIds") or ()}
    if wanted and not any(g.id in wanted for g in world.groups_of(u.account_id, dirs)):
        return False
    checks = (("status", u.status), ("accountStatus", u.account_status),
              ("membershipStatus", u.membership_status))
    if any(body.get(k) and v not in body[k] for k, v in checks):
        return False
    if body.get("claimStatus") and body["claimStatus"] != u.claim_status:
        return False
    if body.get("roleIds") and not set(body["roleIds"]) & set(u.platform_roles):
        return False
    term = str(body.get("searchTerm", "")).lower()
    return not term or term in u.name.lower() or term in u.email.lower()


def sort_direction(body: dict[str, Any]) -> str | None:
    """`sortBy` as the document allows it: null, or one `{field: nick_name, direction: asc|desc}`."""
    value = body.get("sortBy")
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict)
            or value[0].get("field") != "nick_name" or value[0].get("direction") not in ("asc", "desc")):
        raise OrgError(400, "ADMIN-400-4", "sortBy must be one {field: nick_name, direction: asc|desc}.")
    return str(value[0]["direction"])


def ordered(world: CloudWorld, ids: list[str], body: dict[str, Any]) -> list[str]:
    """Search results in `sortBy` order: nickname case-insensitively, ties by account id, and `desc`
    exactly the reverse of `asc` [I: the document names the field, not its collation or tie order]."""
    direction = sort_direction(body)
    if direction is None:
        return ids
    wanted = set(ids)
    order = [a for a in world.by_nickname() if a in wanted]
    return order[::-1] if direction == "desc" else order


def user_json(world: CloudWorld, u: CloudUser, dirs: list[str], expand: set[str]) -> dict[str, Any]:
    membership = u.membership_status
    data: dict[str, Any] = {
        "accountId": u.account_id,
        "accountType": "atlassian",
        "status": u.status_given(membership),
        "accountStatus": u.account_status,
        "membershipStatus": membership,
        "addedToOrg": u.added_to_org,
        "name": u.name,
        "nickname": u.name.split(" ")[0],
        "email": u.email,
        "emailVerified": True,
        "claimStatus": u.claim_status,  # absent when None (a field the document does not require)
        "managementSource": u.management_source,
        "mfaEnabled": False,
        "links": {"self": f"/admin/v2/orgs/{world.org_id}/directories/-/users/{u.account_id}"},
    }
    if u.added_to_org is None:  # not nullable in v2: absent when unknown
        del data["addedToOrg"]
    if u.claim_status is None:
        del data["claimStatus"]
    if "platformRoles" in expand:
        data["platformRoles"] = list(u.platform_roles)
    if "productAccess" in expand:
        # `id` is "the unique ID of the Product instance", an ARI in the document's example: the one
        # users/count's `resourceIds` takes, so a client can count a product's seats from what it read
        data["productAccess"] = [{**p, "id": world.resource_ari(p["key"])} for p in u.product_access]
    if "groups" in expand:
        prefix = GROUP_ARI if world.group_ids == "ari" else ""
        data["groups"] = [{"id": prefix + g.id, "name": g.name} for g in world.groups_of(u.account_id, dirs)]
    if "counts.resources" in expand:
        data["counts"] = {"resources": len(u.product_access)}
    return data


def group_json(g: CloudGroup, expand: set[str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": g.id,
        "name": g.name,
        "directoryId": g.directory,
        "externalSynced": g.external_synced,
        "managedBy": "external" if g.external_synced else "admins",
        "managementAccess": {"deletable": not g.external_synced, "modifiable": not g.external_synced,
                             "readable": True},
        "links": {"self": f"/admin/v2/orgs/-/directories/{g.directory}/groups/{g.id}"},
    }
    counts = {}
    if "counts.users" in expand:
        counts["users"] = len(g.members)
    if "counts.resources" in expand:
        counts["resources"] = len(g.products)
    if counts:
        data["counts"] = counts
    return data
