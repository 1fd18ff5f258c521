"""ConfluenceDcTarget: reads the actual state of a Confluence DC site and performs one action at a time.

Deletions run one at a time (a lock around submit and poll; the next one's checks may overlap), each
long task polled to completion; a write refused by a read-only directory fails with advice and is never retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import assert_never
from urllib.parse import quote

import httpx

from reconcile.collector import full_collections_paused
from reconcile.errors import TargetError
from reconcile.http import Backoff, Clock, all_of, basic, bearer
from reconcile.impact import Impact
from reconcile.model import NO_ACTIVITY, Activity, ActualState, Group, Licence, Scope, Status, User
from reconcile.plan import Action, ActionKind
from reconcile.settings import ConfluenceDcSettings
from reconcile.targets import atlassian
from reconcile.targets.atlassian import error_for, request_id
from reconcile.targets.base import ALL_KINDS, Outcome, Progress, Result
from reconcile.targets.confluence_dc import read
from reconcile.targets.confluence_dc.impact import read_impacts
from reconcile.targets.confluence_dc.licence import read_licence
from reconcile.targets.confluence_dc.polling import Answer, PollSchedule, poll_round
from reconcile.targets.confluence_dc.unsynced import AdminPages, UnsyncedEntry

log = logging.getLogger(__name__)

PRODUCT = "confluence"  # the product key of DC's one last-activity fact (its last login), as on Cloud
_READONLY_MARKERS = ("read-only", "read only", "readonly", "does not allow updates")


class ConfluenceDcTarget:
    """The `confluence-dc` target (Confluence Data Center 8.4 - 10.x)."""

    def __init__(
        self,
        config: ConfluenceDcSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff | None = None,
        poll_interval: float = 0.02,
        task_timeout: float = 600.0,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        if config.token is not None:
            auth: httpx.Auth | None = bearer(config.token)
        elif config.username and config.password is not None:
            auth = basic(config.username, config.password)
        else:
            auth = None
        self.client = atlassian.client(config.url, auth=auth, settings=config.http, flavor="dc",
                                       transport=transport, backoff=backoff, permanent=readonly_refusal, clock=clock)
        self.admin = AdminPages(self.client, password=config.password if config.token is None else None)
        self.poll_interval = poll_interval
        self.polls = PollSchedule(first=poll_interval)  # learns the tasks' durations across deletions
        self.task_timeout = task_timeout
        self._users: dict[str, User] = {}  # ref -> user, from the last fetch
        self._members: dict[str, frozenset[str]] = {}  # group -> member refs, from the last fetch
        self._unsynced: list[UnsyncedEntry] | None = None
        self._delete_lock = asyncio.Lock()
        self._stragglers: set[asyncio.Task[Answer]] = set()  # polls answered after their round ended

    supports = ALL_KINDS

    def address(self) -> dict[str, str]:
        return self.config.address()

    def concurrency(self, kind: ActionKind) -> int:
        match kind:
            case ActionKind.DELETE:
                # Each deletion is a long task on the server, submitted one at a time (`_delete_lock`);
                # a second lets the next deletion's identity check run while the previous task does.
                return 2
            case (ActionKind.ENABLE | ActionKind.ADD_MEMBER | ActionKind.REMOVE_MEMBER | ActionKind.REMOVE_LICENCE
                  | ActionKind.DISABLE):
                return max(1, self.config.http.concurrency)
            case _:
                assert_never(kind)

    async def aclose(self) -> None:
        await asyncio.gather(*self._stragglers, return_exceptions=True)
        await self.client.aclose()

    # -- fetch -----------------------------------------------------------------------------------

    async def fetch(self, scope: Scope, progress: Progress | None = None) -> ActualState:
        # A 100,000-user fetch keeps ~a million objects; each full collection walks them all (eight
        # passes were ~0.8 s of its ~5 s of CPU). None is needed after it either: a response is freed when its
        # page is done with (`HttpClient.request` leaves it in no cycle), and a pass found nothing to collect.
        with full_collections_paused():
            return await self._fetch(scope, progress)

    async def _fetch(self, scope: Scope, progress: Progress | None) -> ActualState:
        me = await read.current_user(self.client, token=self.config.token is not None)
        window = max(1, self.config.http.concurrency)

        def on_users(done: int) -> None:
            if progress:
                progress("users", done, None)

        names: list[str] = []
        wanted: list[str] = []
        done = 0

        async def members_of(group: str) -> list[str]:
            nonlocal done
            keys = await read.list_member_keys(self.client, group, window)
            done += 1
            if progress:
                progress("group members", done, len(wanted))
            return keys

        async def groups_and_members() -> list[list[str]]:
            names.extend(await read.list_groups(self.client, window))
            wanted.extend(g for g in names if scope.owns_group(g) or self.config.admin_groups.matches(g))
            return await all_of(*(members_of(g) for g in wanted))

        # Everything after the identity check overlaps; the lanes of the client bound concurrency.
        users = asyncio.ensure_future(read.list_users(self.client, window, on_users))
        active = asyncio.ensure_future(read.list_active(self.client, window))
        grouped = asyncio.ensure_future(groups_and_members())
        try:
            await asyncio.gather(users, active, grouped)
        except BaseException:
            for task in (users, active, grouped):  # no requests left running behind an error
                task.cancel()
            raise
        people, licensed, member_lists = users.result(), active.result(), grouped.result()
        members = dict(zip(wanted, member_lists, strict=True))
        known = {p.user_key for p in people}
        # a list's keys checked in C first: 400,000 memberships, all of them known users but for a race
        strangers = {k for keys in member_lists if not known.issuperset(keys) for k in keys if k not in known}
        for key in sorted(strangers):  # members the user list did not show: should not happen
            person = await read.person_by_key(self.client, key)
            if person is not None:
                people.append(person)
        unsynced = await self.admin.entries()
        if unsynced is None:
            log.warning("unsynced-from-directory entries were not read (%s); policy.unsynced has no "
                        "effect. Use username + password auth, or disable secure administrator "
                        "sessions, to manage them", self.admin.reason)
        self._unsynced = unsynced
        state = self._state(me, people, names, members, active=licensed, unsynced=unsynced or [])
        return replace(state, unsynced_unread=self.admin.reason if unsynced is None else None)

    def _state(
        self,
        me: read.Person,
        people: list[read.Person],
        names: list[str],
        members: dict[str, list[str]],
        *,
        active: list[read.ActiveUser] | None,
        unsynced: list[UnsyncedEntry],
    ) -> ActualState:
        by_key = {p.user_key: p for p in people}
        admins = {key for g, keys in members.items() if self.config.admin_groups.matches(g) for key in keys}
        licensed = {a.user_key: a for a in active} if active is not None else {}
        if any(p.status is None for p in by_key.values()):
            log.warning("the server did not report the status of some users; they are taken as active")
        users: dict[str, User] = {}
        listed, find, active_status = active is not None, licensed.get, Status.ACTIVE
        # 100,000 users: lookups bound once, `_activity` only when listed, and each User built positionally
        # (ref, username, email, account_id, display_name, status, unsynced, idp_managed, admin, last_active,
        # billable: the order tests/core/test_records.py pins), not by keyword
        for key, p in by_key.items():
            info = find(key)
            status = p.status or active_status
            if info is None:
                users[key] = User(key, p.username, None, None, p.display_name, status, p.unsynced, False,
                                  key in admins, None, not (listed and status is active_status))
            else:
                users[key] = User(key, p.username, info.email, None, p.display_name, status, p.unsynced, False,
                                  key in admins, _activity(info))
        for entry in unsynced:
            if entry.user_key in users:  # listed as a user too: the admin page knows it is unsynced
                users[entry.user_key] = replace(users[entry.user_key], unsynced=True, billable=False)
            else:
                users[entry.user_key] = User(
                    ref=entry.user_key, username=entry.username, display_name=entry.display_name,
                    status=Status.DISABLED, unsynced=True, billable=False,
                )
        groups = {n: Group(name=n, ref=n, readonly=self.config.readonly_groups.matches(n)) for n in names}
        self._users = users
        self._members = {g: _known(keys, users) for g, keys in members.items()}
        return ActualState(
            users=users,
            groups=groups,
            members=self._members,  # the same frozensets: one copy of 400,000 memberships, not two
            me=me.user_key,
            complete_groups=frozenset(members),
        )

    async def impact(self, users: Sequence[User]) -> Mapping[str, Impact]:
        live = (u.username for u in self._users.values() if u.username and not u.unsynced)
        shown = (u.display_name for u in self._users.values() if u.display_name)
        return await read_impacts(self.client, users, live_usernames=live, display_names=shown)

    async def licence(self, scope: Scope, product: str) -> Licence | None:
        async def member_keys(group: str) -> list[str]:
            return [k for k in await read.list_member_keys(self.client, group) if k in self._users]

        return await read_licence(self.client, self._members, member_keys)

    # -- perform ---------------------------------------------------------------------------------

    async def perform(self, action: Action) -> Outcome:
        try:
            match action.kind:
                case ActionKind.DELETE:
                    if not action.unsynced:
                        return await self._delete_user(action)  # takes the lock after its checks
                    async with self._delete_lock:
                        return await self._delete_unsynced(action)
                case ActionKind.ADD_MEMBER:
                    return await self._write(action, "PUT", "/rest/api/user/{user}/group/{group}")
                case ActionKind.REMOVE_MEMBER | ActionKind.REMOVE_LICENCE:  # out of the licence group
                    return await self._write(action, "DELETE", "/rest/api/user/{user}/group/{group}")
                case ActionKind.ENABLE:
                    return await self._write(action, "PUT", "/rest/api/admin/user/{user}/enable")
                case ActionKind.DISABLE:
                    return await self._write(action, "PUT", "/rest/api/admin/user/{user}/disable")
                case _:
                    assert_never(action.kind)
        except TargetError as exc:
            return Outcome(Result.FAILED, f"{action.describe()}: {exc}", exc.status)

    async def _write(self, action: Action, method: str, template: str) -> Outcome:
        """One request naming the user by its current username (and the action's group)."""
        username = await self._username(action.subject.ref)
        if username is None:
            return Outcome(Result.FAILED, f"{action.describe()}: the user no longer exists; re-run plan")
        path = template.format(user=quote(username, safe=""), group=quote(action.group or "", safe=""))
        response = await self.client.request(method, path)
        if response.is_success:
            return Outcome(Result.DONE, action.describe(), response.status_code, request_id(response))
        return self._refused(action, response)

    def _refused(self, action: Action, response: httpx.Response) -> Outcome:
        if readonly_refusal(response):
            if action.group:
                advice = (f"group {action.group!r} belongs to a read-only directory: add it to "
                          "target.readonly_groups so that plans leave its membership alone")
            else:
                advice = ("the user belongs to a read-only directory: change it in that directory "
                          "(LDAP/AD) instead, or leave it out of scope.users")
            message = f"{action.describe()}: {error_for(response, advice)}"
        else:
            message = f"{action.describe()}: {error_for(response, 're-run plan to see the current state')}"
        return Outcome(Result.FAILED, message, response.status_code, request_id(response))

    async def _username(self, ref: str) -> str | None:
        user = self._users.get(ref)
        if user is not None and user.username and not user.unsynced:
            return user.username
        return await read.username_of(self.client, ref)

    async def _delete_user(self, action: Action) -> Outcome:
        ref = action.subject.ref
        username = await self._username(ref)
        if username is None:
            return Outcome(Result.ALREADY, f"{action.describe()}: already deleted")
        # The REST delete names a username: make sure it still is this user (renames, reused names).
        if await read.user_key_of(self.client, username) != ref:
            if await read.username_of(self.client, ref) is None:
                return Outcome(Result.ALREADY, f"{action.describe()}: already deleted")
            return Outcome(Result.FAILED, f"{action.describe()}: username {username!r} no longer names "
                           "this user; re-run plan")
        async with self._delete_lock:  # one task at a time: submitted after the previous one finished
            sent = self.client.clock.monotonic()
            response = await self.client.request("DELETE", f"/rest/api/admin/user/{quote(username, safe='')}")
            rtt = self.client.clock.monotonic() - sent
            if response.status_code == 404:
                return Outcome(Result.ALREADY, f"{action.describe()}: already deleted", 404,
                               request_id(response))
            if response.status_code != 202 and not response.is_success:
                return self._refused(action, response)
            return await self._finish(action, _task_id(response), response, rtt)

    async def _delete_unsynced(self, action: Action) -> Outcome:
        ref = action.subject.ref
        entries = await self.admin.entries()
        if entries is not None:
            if not any(e.user_key == ref for e in entries):
                return await self._gone_or_changed(action)
            response, task = await self.admin.delete(ref)
            if response.status_code == 404:  # deleted since the page was read
                return await self._gone_or_changed(action)
            if response.is_error:
                return self._refused(action, response)
            return await self._finish(action, task, response)
        # No admin pages (websudo impossible): the REST delete is safe only when the username names
        # exactly this one entry and no live user.
        cached = self._unsynced or []
        mine = next((e for e in cached if e.user_key == ref), None)
        if mine is None or sum(e.username == mine.username for e in cached) != 1:
            return Outcome(Result.FAILED, f"{action.describe()}: {self.admin.reason}; its username is "
                           "shared or unknown, so it can only be deleted by userKey through the admin "
                           "pages: use username + password auth")
        if await read.user_key_of(self.client, mine.username) != ref:
            return Outcome(Result.FAILED, f"{action.describe()}: username {mine.username!r} also names "
                           "another user; use username + password auth to delete it by userKey")
        response = await self.client.request("DELETE",
                                             f"/rest/api/admin/user/{quote(mine.username, safe='')}")
        if response.status_code == 404:
            return Outcome(Result.ALREADY, f"{action.describe()}: already deleted", 404, request_id(response))
        if response.status_code != 202 and not response.is_success:
            return self._refused(action, response)
        return await self._finish(action, _task_id(response), response)

    async def _gone_or_changed(self, action: Action) -> Outcome:
        username = await read.username_of(self.client, action.subject.ref)
        if username is None:
            return Outcome(Result.ALREADY, f"{action.describe()}: already deleted")
        return Outcome(Result.FAILED, f"{action.describe()}: no longer unsynced (resynced from its "
                       "directory?); re-run plan")

    async def _finish(self, action: Action, task: str | None, submitted: httpx.Response,
                      rtt: float = 0.0) -> Outcome:
        """Poll the deletion's long task to completion (`PollSchedule` says when); confirm by userKey
        when there is no task. `rtt`: how long the submission took, the first guess of a round trip."""
        status, rid = submitted.status_code, request_id(submitted)
        clock = self.client.clock
        deadline = clock.monotonic() + self.task_timeout
        volley, rounds = self.polls.after_submit(rtt), 0
        ask = partial(self.client.request, "GET", f"/rest/api/longtask/{quote(task or '', safe='')}")
        while task is not None:
            response, rtt = await poll_round(volley, ask, clock, _settles, self._stragglers)
            rounds += 1
            if response.status_code == 404:
                break  # finished and forgotten, or run on another node: confirm below
            if response.is_error:
                return self._refused(action, response)
            body = response.json()
            percent = _number(body.get("percentageComplete"))
            elapsed = _number(body.get("elapsedTime"))
            seconds = elapsed / 1000.0 if elapsed is not None else None
            if _finished(body):
                self.polls.finished(seconds)
                if body.get("successful", True):
                    self._users.pop(action.subject.ref, None)
                    return Outcome(Result.DONE, action.describe(), status, rid)
                messages = "; ".join(_message(m) for m in body.get("messages") or [])
                return Outcome(Result.FAILED, f"{action.describe()}: the deletion task failed: "
                               f"{messages or 'no reason given'}", status, rid)
            if clock.monotonic() > deadline:
                return Outcome(Result.FAILED, f"{action.describe()}: the deletion task {task} did not "
                               f"finish within {self.task_timeout:.0f} s; re-run apply later", status, rid)
            volley = self.polls.next(rounds, rtt, seconds, percent)
        username = await read.username_of(self.client, action.subject.ref)
        if username is None:
            self._users.pop(action.subject.ref, None)
            return Outcome(Result.DONE, action.describe(), status, rid)
        return Outcome(Result.FAILED, f"{action.describe()}: the server accepted the deletion but the "
                       "user still exists; re-run plan", status, rid)


def _known(keys: list[str], users: Mapping[str, User]) -> frozenset[str]:
    """The member keys that are users: all of them, unless the lists changed while they were read."""
    found = frozenset(keys)
    return found if users.keys() >= found else frozenset(k for k in found if k in users)


def _activity(info: read.ActiveUser | None) -> Activity | None:
    """The last login, from the 9.3+ list of active users; None for users it does not list (disabled,
    unlicensed) and before 9.3; empty for a listed user who never logged in."""
    if info is None or not info.login_known:  # not listed, or the server ignored expand=lastLogin
        return None
    return Activity.one(PRODUCT, info.last_login) if info.last_login else NO_ACTIVITY


def readonly_refusal(response: httpx.Response) -> bool:
    """Whether the server refused a write because the directory is read-only (never worth a retry)."""
    if response.status_code not in (400, 403, 409, 500):
        return False
    text = response.text.lower()
    return any(marker in text for marker in _READONLY_MARKERS)


def _settles(response: httpx.Response) -> bool:
    """Whether a poll's answer ends the polling: the task finished, is forgotten, or the poll failed."""
    if response.is_error:
        return True
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and _finished(body)


def _finished(body: Mapping[str, object]) -> bool:
    """Whether a long task's status says it is over (`finished`, or 100 % complete), successful or not."""
    return bool(body.get("finished")) or (_number(body.get("percentageComplete")) or 0) >= 100


def _task_id(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        if body.get("id"):
            return str(body["id"])
        status = (body.get("links") or {}).get("status") or ""
        tail = str(status).rstrip("/").split("/")
        if "longtask" in tail:
            return tail[tail.index("longtask") + 1]
    return None


def _number(value: object) -> float | None:
    """A numeric field of the task status (`elapsedTime` ms, `percentageComplete`), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _message(item: object) -> str:
    if isinstance(item, dict):
        return str(item.get("translation") or item.get("key") or item)
    return str(item)
