"""Writes to an Atlassian Cloud organization: one `Action` -> the calls it needs -> an `Outcome`.

Never blindly repeats a POST: when a write times out or answers 5xx, the account or group is read
again and the write is repeated only if it did not take effect. Ambiguous answers (409 on
add-membership: "already a member" or a licence limit) are settled the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, assert_never

import httpx

from reconcile.errors import TargetError
from reconcile.http import HttpClient
from reconcile.model import User
from reconcile.plan import Action, ActionKind
from reconcile.settings import AtlassianCloudSettings, CloudDelete, CloudDisable
from reconcile.targets.atlassian import error_for, request_id
from reconcile.targets.atlassian_cloud.account import Account, CloudGroup, Facts, Held
from reconcile.targets.atlassian_cloud.read import OrgReader
from reconcile.targets.base import Outcome, Result

log = logging.getLogger(__name__)

IDP_OWNS = "is managed by your identity provider (SCIM): change it there, not in Atlassian"
REASONS = {
    "externalDirectory.scim": "the user " + IDP_OWNS,
    "externalDirectory.google": "the user is managed by Google Workspace sync: change it there",
    "administrative.notMyself": "this is the API key's own account",
    "blocked.exportControl": "the account is blocked by US export control",
    "managedAccount": "only the user's organization administrator may do this",
}
Landed = Callable[[], Awaitable[bool]]


class Writer:
    def __init__(self, config: AtlassianCloudSettings, http: HttpClient, site: HttpClient | None,
                 reader: OrgReader) -> None:
        self.config, self.http, self.site, self.reader = config, http, site, reader
        self.users: Mapping[str, User] = {}  # the last fetch's members, with their `facts`
        self.facts: Mapping[str, Facts] = {}
        self.fresh: dict[str, Held | None] = {}  # re-read since (None: not a member any more)
        self.groups: dict[str, CloudGroup] = {}  # lower-cased name -> group
        self.directory = "-"  # where re-reads look: the configured directory's id, or all

    def remember(self, users: Mapping[str, User], facts: Mapping[str, Facts],
                 groups: Mapping[str, CloudGroup]) -> None:
        """The state the last fetch saw (kept, not copied): directory ids and group ids come from here."""
        self.users, self.facts, self.fresh, self.groups = users, facts, {}, dict(groups)

    async def perform(self, action: Action) -> Outcome:
        try:
            match action.kind:
                case ActionKind.ADD_MEMBER:
                    return await self.add_member(action)
                case ActionKind.REMOVE_MEMBER | ActionKind.REMOVE_LICENCE:  # out of the licence group
                    return await self.remove_member(action)
                case ActionKind.DISABLE:
                    return await self.disable(action.subject.ref)
                case ActionKind.ENABLE:
                    return await self.enable(action.subject.ref)
                case ActionKind.DELETE:
                    return await self.delete(action.subject.ref)
                case _:
                    assert_never(action.kind)
        except TargetError as exc:
            return Outcome(Result.FAILED, str(exc), http_status=exc.status)

    # ---------------------------------------------------------------- reads the decisions rest on
    async def _account(self, account_id: str) -> Held | None:
        """The account as last seen; read again when unknown, or found gone by the last re-read."""
        if account_id in self.fresh:
            known = self.fresh[account_id]
            if known is not None:
                return known
        elif account_id in self.users:
            return Held.of(self.users[account_id], self.facts[account_id])
        acct = await self.reader.account(account_id, self.directory)
        held = acct.held() if acct is not None and acct.member else None
        self.fresh[account_id] = held
        return held

    async def _group(self, name: str) -> CloudGroup | None:
        key = name.lower()
        if key not in self.groups:
            found = await self.reader.group(name, self.directory)
            if len(found) > 1:
                raise TargetError(f"two groups are named {name!r}", hint="set target.directory")
            if found:
                self.groups[key] = found[0]
        return self.groups.get(key)

    async def _is_member(self, account_id: str, group: CloudGroup) -> bool:
        acct = await self.reader.account(account_id, group.directory)
        return acct is not None and group.id in acct.groups

    # ---------------------------------------------------------------- the one careful write
    async def _send(self, method: str, path: str, *, landed: Landed, json: Any = None,
                    client: HttpClient | None = None, params: Mapping[str, str] | None = None,
                    ) -> httpx.Response | Outcome:
        """Send a write; on 5xx or a lost response re-read (`landed`) before ever sending it again."""
        client = client or self.http
        last = ""
        for attempt in range(self.config.http.max_retries + 1):
            try:
                response = await client.request(method, path, json=json, params=params, idempotent=False)
            except TargetError as exc:
                if exc.status is not None:
                    raise
                last = str(exc)
            else:
                if response.status_code < 500:
                    return response
                last = str(error_for(response, "the server failed"))
            if await landed():
                return Outcome(Result.DONE, f"confirmed by re-reading after: {last.splitlines()[0]}")
            if attempt < self.config.http.max_retries:
                log.warning("retrying %s %s (%d/%d) after re-reading: it did not take effect (%s)", method,
                            client.url(path), attempt + 1, self.config.http.max_retries, last.splitlines()[0])
                await client.clock.sleep(client.backoff.delay(attempt))
        return Outcome(Result.FAILED, f"{last}\n  → the change was not made; a later apply retries it")

    def _refused(self, response: httpx.Response, hint: str, idp: bool = False) -> Outcome:
        message = str(error_for(response, hint))
        if response.status_code == 403 and idp:
            message = f"{message}\n  → refused because the object {IDP_OWNS}"
        return Outcome(Result.FAILED, message, http_status=response.status_code,
                       request_id=request_id(response))

    @staticmethod
    def _ok(response: httpx.Response, result: Result = Result.DONE, message: str = "") -> Outcome:
        return Outcome(result, message, http_status=response.status_code, request_id=request_id(response))

    def _dir(self, directory: str) -> str:
        return f"{self.reader.org}/directories/{directory}"

    # ---------------------------------------------------------------- memberships
    async def add_member(self, action: Action) -> Outcome:
        account_id, name = action.subject.ref, str(action.group)
        group = await self._group(name)
        if group is None:
            return Outcome(Result.FAILED, f"group {name} no longer exists in organization {self.config.org_id}")
        if group.idp_managed:
            return Outcome(Result.FAILED, f"group {name} {IDP_OWNS}")
        path = f"{self._dir(group.directory)}/groups/{group.id}/memberships"
        sent = await self._send("POST", path, json={"accountId": account_id},
                                landed=lambda: self._is_member(account_id, group))
        if isinstance(sent, Outcome):
            return sent
        if sent.status_code == 204:
            return self._ok(sent)
        if sent.status_code == 409:
            if await self._is_member(account_id, group):
                return self._ok(sent, Result.ALREADY, "already a member")
            return self._refused(sent, f"not a member after 409: adding to {name} would exceed the user "
                                 "limit of an app the group grants access to; free seats or raise the limit")
        return self._refused(sent, f"check that {account_id} and {name} are in the same directory",
                             idp=group.idp_managed)

    async def remove_member(self, action: Action) -> Outcome:
        account_id, name = action.subject.ref, str(action.group)
        group = await self._group(name)
        if group is None:
            return Outcome(Result.ALREADY, f"group {name} no longer exists")
        if group.idp_managed:
            return Outcome(Result.FAILED, f"group {name} {IDP_OWNS}")
        path = f"{self._dir(group.directory)}/groups/{group.id}/memberships/{account_id}"
        sent = await self._send("DELETE", path, landed=lambda: self._not_member(account_id, group))
        if isinstance(sent, Outcome):
            return sent
        if sent.status_code == 204:
            return self._ok(sent)
        if sent.status_code == 404 and await self._not_member(account_id, group):
            return self._ok(sent, Result.ALREADY, "not a member")
        return self._refused(sent, "re-run plan to see the current state", idp=group.idp_managed)

    async def _not_member(self, account_id: str, group: CloudGroup) -> bool:
        return not await self._is_member(account_id, group)

    # ---------------------------------------------------------------- disable / enable
    async def _user_or_failed(self, account_id: str) -> Held | Outcome:
        acct = await self._account(account_id)
        if acct is None:
            return Outcome(Result.FAILED, f"{account_id} is not a member of organization "
                           f"{self.config.org_id} any more; re-run plan")
        return acct

    async def _per_directory(self, acct: Held, verb: str, method: str, done: Callable[[Account], bool],
                             ) -> Outcome:
        """suspend | restore | remove a user in every directory it is in."""
        outcome = Outcome(Result.ALREADY)
        for directory in sorted(acct.directories):
            path = f"{self._dir(directory)}/users/{acct.account_id}" + (f"/{verb}" if verb else "")

            async def landed(directory: str = directory) -> bool:
                fresh = await self.reader.account(acct.account_id, directory)
                return fresh is None or done(fresh)

            sent = await self._send(method, path, landed=landed)
            if isinstance(sent, Outcome):
                outcome = sent
                if not sent.ok:
                    return sent
            elif sent.status_code == 204:
                outcome = self._ok(sent)
            elif sent.status_code == 404 and method == "DELETE":
                outcome = self._ok(sent, Result.ALREADY, "not in the directory")
            else:
                return self._refused(sent, "re-run plan to see the current state", idp=acct.idp_managed)
        return outcome

    async def _lifecycle(self, acct: Held, verb: str, done: Callable[[Account], bool]) -> Outcome:
        path = f"/users/{acct.account_id}/manage/lifecycle/{verb}"

        async def landed() -> bool:
            fresh = await self.reader.account(acct.account_id, "-")
            return fresh is None or done(fresh)

        sent = await self._send("POST", path, json={} if verb == "disable" else None, landed=landed)
        if isinstance(sent, Outcome):
            return sent
        if sent.status_code in (200, 204):
            return self._ok(sent)
        if sent.status_code == 404 and verb == "delete":
            return self._ok(sent, Result.ALREADY, "the account does not exist")
        if sent.status_code == 409 and await landed():
            return self._ok(sent, Result.ALREADY, f"already {verb}d")
        return self._refused(sent, _lifecycle_hint(sent, verb))

    async def disable(self, account_id: str) -> Outcome:
        acct = await self._user_or_failed(account_id)
        if isinstance(acct, Outcome):
            return acct
        match self.config.disable:
            case CloudDisable.DEACTIVATE:
                return await self._lifecycle(acct, "disable", lambda a: a.deactivated)
            case CloudDisable.SUSPEND:
                return await self._per_directory(acct, "suspend", "POST", lambda a: a.suspended)
            case _:
                assert_never(self.config.disable)

    async def enable(self, account_id: str) -> Outcome:
        """Undo whichever way the user is disabled: lifecycle enable, restore, or both."""
        acct = await self._user_or_failed(account_id)
        if isinstance(acct, Outcome):
            return acct
        outcome = Outcome(Result.ALREADY, "already active")
        if acct.deactivated:
            outcome = await self._lifecycle(acct, "enable", lambda a: not a.deactivated)
            if not outcome.ok:
                return outcome
        if acct.suspended:
            outcome = await self._per_directory(acct, "restore", "POST", lambda a: not a.suspended)
        return outcome

    # ---------------------------------------------------------------- delete
    async def delete(self, account_id: str) -> Outcome:
        mode = self.config.delete
        if mode is CloudDelete.REMOVE_FROM_SITE:
            return await self._remove_from_site(account_id)
        acct = await self._account(account_id)
        if acct is None:
            return Outcome(Result.ALREADY, "not a member of the organization any more")
        match mode:
            case CloudDelete.DELETE_ACCOUNT:
                return await self._lifecycle(acct, "delete", lambda a: a.status == "for_deletion")
            case CloudDelete.REMOVE_FROM_DIRECTORY:
                return await self._per_directory(acct, "", "DELETE", lambda a: False)
            case CloudDelete.REMOVE_FROM_SITE:
                return await self._remove_from_site(account_id)
            case _:
                assert_never(mode)

    async def _remove_from_site(self, account_id: str) -> Outcome:
        if self.site is None or self.config.site is None:
            return Outcome(Result.FAILED, "target.delete is remove-from-site but target.site is not set")
        site = self.site

        async def gone() -> bool:
            return False  # the site REST has no cheap re-read; DELETE is idempotent (404 = gone)

        sent = await self._send("DELETE", "/rest/api/2/user", client=site, params={"accountId": account_id},
                                landed=gone)
        if isinstance(sent, Outcome):
            return sent
        if sent.status_code == 204:
            return self._ok(sent)
        if sent.status_code == 404:
            return self._ok(sent, Result.ALREADY, "not a user of the site")
        return self._refused(sent, "target.site needs a site admin's email and API token")


def _lifecycle_hint(response: httpx.Response, verb: str) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    key = body.get("key") if isinstance(body, dict) else None
    if key == "forbidden.targetUnverified":
        return ("not a managed account (its email domain is not verified by the organization): "
                + ("use target.disable: suspend" if verb != "delete" else "use target.delete: "
                   "remove-from-directory"))
    if key == "forbidden.action":
        reason = (body.get("context") or {}).get("reason", {}).get("key", "")
        return REASONS.get(reason, f"not allowed ({reason})")
    if key == "conflict.lifecycleErrors":
        codes = (body.get("context") or {}).get("errorCodes") or []
        return "; ".join(f"{c.get('code')}: {c.get('message', '')}" for c in codes) or "not eligible"
    return "check that the API key is an organization API key without scopes"
