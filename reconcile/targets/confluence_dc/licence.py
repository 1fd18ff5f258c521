"""Confluence DC seats and "Can use" groups: `/rest/license/1.0/license/*` and 9.3+ `/rest/api/permissions`.

Read only when a policy needs them (issue 14). A server without them yields what it has and a note the
plan shows once: no counts, or `policy.licences.groups` standing in for the licence-granting groups.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from reconcile.http import HttpClient
from reconcile.model import Licence, norm
from reconcile.targets.atlassian import raise_for

LICENCE = "/rest/license/1.0/license"
UNLIMITED = -1  # maxUsers of an unlimited licence


async def _count(client: HttpClient, which: str) -> int | None:
    response = await client.request("GET", f"{LICENCE}/{which}")
    if response.status_code == 404:
        return None
    raise_for(response, "the account needs Confluence system administrator permission to read the licence")
    body = response.json()
    count = body.get("count") if isinstance(body, Mapping) else None
    return int(count) if isinstance(count, int | float) and not isinstance(count, bool) else None


async def _can_use(client: HttpClient) -> list[str] | None:
    """The groups holding the global `application use` permission; None before 9.3 (404)."""
    response = await client.request("GET", "/rest/api/permissions")
    if response.status_code == 404:
        return None
    raise_for(response, "the account needs Confluence system administrator permission")
    body = response.json()
    grants: list[Any] = body if isinstance(body, list) else (body.get("results") or [])
    out = set()
    for grant in grants:
        operation = grant.get("operation") or {} if isinstance(grant, Mapping) else {}
        subject = grant.get("subject") or {} if isinstance(grant, Mapping) else {}
        if (operation.get("targetType"), operation.get("operationKey")) == ("application", "use") \
                and subject.get("type") == "group" and subject.get("displayName"):
            out.add(norm(str(subject["displayName"])))
    return sorted(out)


async def read_licence(client: HttpClient, members: Mapping[str, frozenset[str]],
                       member_keys: Callable[[str], Awaitable[list[str]]]) -> Licence:
    """Seats in use and the maximum, and the "Can use" groups with their members (`members` first)."""
    used = await _count(client, "userCount")
    maximum = await _count(client, "maxUsers") if used is not None else None
    notes = []
    if used is None:
        notes.append(f"GET {client.url(LICENCE + '/userCount')} -> 404: seats in use are not known; "
                     "policy.licences.warn_at and fail_at are not evaluated")
    groups = await _can_use(client)
    granting: dict[str, frozenset[str]] | None = None
    if groups is None:
        notes.append("which groups grant \"Can use\" is not revealed before Confluence 9.3 "
                     "(GET /rest/api/permissions -> 404): policy.licences.groups stand in for them")
    else:
        granting = {}
        for group in groups:
            known = members.get(group)
            granting[group] = known if known is not None else frozenset(await member_keys(group))
    return Licence(product="confluence", used=used,
                   maximum=None if maximum is None or maximum == UNLIMITED else maximum,
                   source="/rest/license/1.0/license/userCount", granting=granting, note="; ".join(notes))
