"""ConfluenceDcTarget.fetch against the in-process simulator, every exchange contract-checked."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from reconcile.errors import AuthError, TargetError
from reconcile.model import Globs, Scope, Status
from reconcile.settings import HttpSettings
from reconcile.sim.confluence_dc.generate import ADMIN_TOKEN as GENERATED_TOKEN
from reconcile.sim.confluence_dc.generate import generate_dc
from reconcile.sim.control import Faults, RateLimit, SimSettings
from reconcile.targets import atlassian
from reconcile.targets.confluence_dc import read
from tests.support.cli import reconcile_process
from tests.support.dc import ADMIN_PASSWORD, DcSim, run

SCOPE = Scope(groups=Globs(("team-*", "confluence-users")))


def test_fetch_reads_identity_users_groups_members_emails_and_unsynced_entries() -> None:
    sim = DcSim.from_yaml()
    target = sim.basic_target()
    state = run(target.fetch(SCOPE))

    admin, alice, bob, carol = (sim.key(n) for n in ("admin", "alice", "bob", "carol"))
    assert state.me == admin
    assert state.users[alice].username == "alice"  # lower-cased, though the scenario wrote "Alice"
    assert state.users[alice].email == "alice@example.com"
    assert state.users[alice].last_active == {"confluence": datetime(2025, 12, 1, 10, 0, tzinfo=UTC)}  # last login
    assert state.users[bob].status is Status.DISABLED
    assert state.users[bob].last_active is None  # 9.3+ lists the last login of licensed active users only
    assert state.users[bob].email is None  # 9.3+ reveals emails of licensed active users only
    assert state.users[admin].admin and not state.users[alice].admin
    assert state.groups["ldap-eng"].readonly and not state.groups["team-docs"].readonly
    # members of the managed groups and of the admin groups, nothing else
    assert set(state.members) == {"confluence-administrators", "confluence-users", "team-docs", "team-ops"}
    assert state.members["team-ops"] == {bob, sim.key("dave")}
    assert state.members["confluence-users"] == {admin, alice, bob}
    assert state.complete_groups == frozenset(state.members)
    assert carol in state.users and "ldap-eng" not in state.members
    unsynced = {u.ref: u for u in state.users.values() if u.unsynced}
    assert {u.username for u in unsynced.values()} == {"gone", "solo"}
    assert sorted(unsynced) == [f"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0{i}" for i in (1, 2, 3)]
    assert unsynced["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa02"].display_name == "Gone Two"
    sim.check_contracts()
    run(target.aclose())


def test_identity_is_checked_first_and_an_unknown_pat_is_refused_as_anonymous() -> None:
    sim = DcSim.from_yaml()
    target = sim.target(token="pat-that-was-revoked")
    with pytest.raises(AuthError) as err:
        run(target.fetch(SCOPE))
    message = str(err.value)
    assert "GET http://confluence.test/rest/api/user/current -> 200 as anonymous" in message
    assert "unknown, expired or revoked" in message
    assert "pat-that-was-revoked" not in message
    assert sim.sent() == [("GET", "/rest/api/user/current", 200)]  # nothing else was asked
    sim.check_contracts()


def test_wrong_basic_credentials_are_a_clear_auth_error() -> None:
    sim = DcSim.from_yaml()
    target = sim.target(token=None, username="admin", password="not-the-password")
    with pytest.raises(AuthError) as err:
        run(target.fetch(SCOPE))
    assert "-> 401: wrong username or password in target.auth" in str(err.value)
    assert "not-the-password" not in str(err.value)


def test_with_a_pat_websudo_is_impossible_so_unsynced_entries_are_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = DcSim.from_yaml()
    with caplog.at_level(logging.WARNING, logger="reconcile"):
        state = run(sim.target().fetch(SCOPE))
    assert not any(u.unsynced for u in state.users.values())
    assert len(state.users) == 5
    assert "unsynced-from-directory entries were not read" in caplog.text
    assert "secure administrator session" in caplog.text
    assert not any(path.startswith("/doauthenticate") for _, path, _ in sim.sent())


def test_websudo_disabled_lets_a_pat_read_unsynced_entries() -> None:
    sim = DcSim.from_yaml()
    sim.world.websudo = False
    state = run(sim.target().fetch(SCOPE))
    assert sum(u.unsynced for u in state.users.values()) == 3


def _paged_world(users: int, members: int) -> str:
    people = "\n".join(f"    - {{username: u{i:04d}, groups: [{'team-big' if i < members else 'team-small'}]}}"
                       for i in range(users))
    return f"""
confluence_dc:
  groups: [{{name: confluence-administrators}}, {{name: team-big}}, {{name: team-small}}]
  users:
    - {{username: admin, tokens: [{GENERATED_TOKEN}], groups: [confluence-administrators]}}
{people}
"""


def test_silent_page_caps_lose_nothing_and_pages_are_fetched_concurrently() -> None:
    sim = DcSim.from_yaml(_paged_world(users=1234, members=450))
    target = sim.target(token=GENERATED_TOKEN, concurrency=4)
    state = run(target.fetch(SCOPE))
    assert len(state.users) == 1235
    assert len(state.members["team-big"]) == 450
    assert len(state.members["team-small"]) == 1234 - 450
    user_pages = [p for _, p, _ in sim.sent("/rest/api/user/list")]
    # the server capped limit=1000 at 100; the tool advanced by the returned size
    starts = sorted(int(p.split("start=")[1].split("&")[0]) for p in user_pages)
    assert starts[:13] == [i * 100 for i in range(13)]
    assert len(user_pages) <= 13 + 3  # at most one window of speculative pages past the end
    sim.check_contracts()


def test_a_cap_that_changes_between_pages_skips_nothing() -> None:
    """A server whose cap drops from 100 to 40 after the first page (another node, another setting)."""
    items = [{"name": f"g{i:03d}"} for i in range(500)]
    served = 0

    async def server(request: httpx.Request) -> httpx.Response:
        nonlocal served
        served += 1
        start = int(request.url.params["start"])
        limit = min(int(request.url.params["limit"]), 100 if served == 1 else 40)
        chunk = items[start:start + limit]
        links = {"next": f"/rest/api/group?start={start + len(chunk)}"} if start + len(chunk) < len(items) else {}
        return httpx.Response(200, json={"results": chunk, "start": start, "limit": limit,
                                         "size": len(chunk), "_links": links})

    async def go() -> list[str]:
        client = atlassian.client("http://dc.test", auth=None, settings=HttpSettings(concurrency=4), flavor="dc",
                                  transport=httpx.MockTransport(server))
        try:
            return await read.list_groups(client, window=4)
        finally:
            await client.aclose()

    assert run(go()) == [f"g{i:03d}" for i in range(500)]


def test_a_large_groups_member_pages_are_read_a_window_at_a_time_and_a_small_one_costs_no_extra_page() -> None:
    """Members are capped at 200 a page: the 3,000 of `big` (15 pages) must not be 15 round trips in a row,
    and the 250 of `small` (2 pages) must not cost speculative requests past its end."""
    groups = {"big": [f"k{i:05d}" for i in range(3000)], "small": [f"s{i:05d}" for i in range(250)]}
    in_flight = {"big": 0, "small": 0}
    most = dict(in_flight)
    sent: list[tuple[str, int]] = []

    async def server(request: httpx.Request) -> httpx.Response:
        group = request.url.path.split("/")[-2]
        start = int(request.url.params["start"])
        sent.append((group, start))
        in_flight[group] += 1
        most[group] = max(most[group], in_flight[group])
        for _ in range(3):  # let the other requests of a window arrive before this one is answered
            await asyncio.sleep(0)
        in_flight[group] -= 1
        members = groups[group]
        limit = min(int(request.url.params["limit"]), 200)
        chunk = members[start:start + limit]
        links = {"next": f"/rest/api/group/{group}/member?start={start + len(chunk)}"} \
            if start + len(chunk) < len(members) else {}
        return httpx.Response(200, json={"results": [{"type": "known", "userKey": k} for k in chunk],
                                         "start": start, "limit": limit, "size": len(chunk), "_links": links})

    async def go() -> dict[str, list[str]]:
        client = atlassian.client("http://dc.test", auth=None, settings=HttpSettings(concurrency=8), flavor="dc",
                                  transport=httpx.MockTransport(server))
        try:
            return {g: await read.list_member_keys(client, g, window=8) for g in groups}
        finally:
            await client.aclose()

    assert run(go()) == groups
    assert sorted(s for g, s in sent if g == "small") == [0, 200]  # no speculative page
    assert most["big"] == 8  # the big group's pages overlapped, up to the window
    assert len([s for g, s in sent if g == "big"]) <= 15 + 7  # at most one window past the end


@pytest.mark.slow  # a large world is the point: make test runs it, make check leaves it out
def test_a_5000_user_world_is_fetched_completely() -> None:
    world = generate_dc(5000, 60, 12000, seed=7)
    sim = DcSim(world)
    state = run(sim.target(token=GENERATED_TOKEN, concurrency=8).fetch(Scope(groups=Globs(("*",)))))
    live = [u for u in world.users.values() if not u.unsynced]
    assert len([u for u in state.users.values() if not u.unsynced]) == len(live) == 5000
    assert {u.ref for u in state.users.values() if u.status is Status.DISABLED and not u.unsynced} == {
        u.key for u in live if not u.active}
    for group, members in world.members.items():
        assert state.members[group] == frozenset(members), group
    sim.check_contracts()


def test_a_429_storm_and_injected_errors_give_the_same_state_as_a_calm_server() -> None:
    calm = run(DcSim(generate_dc(800, 12, 2000, seed=3)).target(token=GENERATED_TOKEN).fetch(SCOPE))
    stormy = SimSettings(
        rate_limit=RateLimit(fill_rate=200, interval_seconds=1, max=30),
        faults=Faults(error_rate=0.05, error_statuses=(500, 502, 503), burst_429_every=15,
                      burst_429_length=3, burst_retry_after=0),
    )
    sim = DcSim(generate_dc(800, 12, 2000, seed=3), stormy, allowed_statuses=frozenset({429, 500, 502, 503}))
    target = sim.target(token=GENERATED_TOKEN, concurrency=6, retries=8)
    state = run(target.fetch(SCOPE))
    assert state == calm
    statuses = [s for _, _, s in sim.sent()]
    assert statuses.count(429) >= 3, "the storm did not happen"
    assert any(s >= 500 for s in statuses)
    sim.check_contracts()


@pytest.mark.parametrize(("version", "emails"), [("8.4", False), ("9.2", False), ("9.3", True), ("10.0", True)])
def test_versions_before_9_3_reveal_no_email_or_last_login(version: str, emails: bool) -> None:
    text = f"""
confluence_dc:
  version: "{version}"
  groups: [{{name: confluence-administrators}}]
  users:
    - {{username: admin, password: {ADMIN_PASSWORD}, tokens: [{GENERATED_TOKEN}], groups: [confluence-administrators],
        email: admin@example.com, last_login: "2026-02-03T04:05:06.000Z"}}
    - {{username: alice, email: alice@example.com}}
"""
    sim = DcSim.from_yaml(text)
    state = run(sim.target(token=GENERATED_TOKEN).fetch(SCOPE))
    alice = state.users[sim.key("alice")]
    admin = state.users[sim.key("admin")]
    if emails:
        assert alice.email == "alice@example.com"
        assert admin.last_active == {"confluence": datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)}
        assert alice.last_active == {}  # listed, never logged in: known to be never active
    else:
        assert alice.email is None and admin.last_active is None  # not revealed before 9.3
        assert ("GET", "/rest/api/admin/users/list/active?expand=lastLogin&start=0&limit=1", 404) in sim.sent()
    assert alice.username == "alice"


def test_a_non_admin_account_is_refused_and_no_request_keeps_running_after_the_error() -> None:
    groups = "\n".join(f"    - {{name: team-{i:03d}}}" for i in range(60))
    sim = DcSim.from_yaml(f"""
confluence_dc:
  groups:
    - {{name: confluence-administrators}}
{groups}
  users:
    - {{username: admin, groups: [confluence-administrators]}}
    - {{username: viewer, tokens: [viewer-token], groups: [team-001]}}
sim:
  latency_ms: 20
""")
    target = sim.target(token="viewer-token", concurrency=8)

    async def go() -> tuple[int, int, str]:
        try:
            await target.fetch(Scope(groups=Globs(("*",))))
        except TargetError as exc:
            at_error = len(sim.sent())
            # Whatever the fetch left running is given the chance to send: every other task runs to its end.
            others = asyncio.all_tasks() - {asyncio.current_task()}
            await asyncio.gather(*others, return_exceptions=True)
            return at_error, len(sim.sent()), str(exc)
        raise AssertionError("a non-admin fetch succeeded")

    at_error, later, message = run(go())
    assert "-> 403" in message and "system administrator" in message
    assert later == at_error


def test_dc_disabled_account_with_a_hidden_email_is_not_deleted_as_absent(tmp_path: Path) -> None:
    # The example world is Confluence DC 9.4: the disabled zoe and yusuf have emails on the site,
    # but the API shows emails only for licensed active users. The desired state names them by
    # email; before the fix `absent: delete` deleted both accounts it wants kept.
    from reconcile.sim.app import build_app
    from reconcile.sim.server import running

    token = "review-hidden-email-token"
    app = build_app()
    dc = app.state.ctx.dc
    dc.tokens[token] = dc.by_username["admin"]
    desired = tmp_path / "desired"
    desired.mkdir()
    with running(app) as url:
        (desired / "site.yaml").write_text(
            "version: 1\ntarget:\n  type: confluence-dc\n  url: " + url + "\n  auth:\n    token: ${TOKEN}\n"
            "scope:\n  users: ['*']\n  groups: ['team-*']\n  protect: [admin, 'svc-*']\n"
            "policy:\n  absent: delete\n  limits: {delete: 100, remove_member: 100}\n"
            "users:\n  zoe@example.com: {}\n  yusuf@example.com: {status: disabled}\n  rupert: {}\n")
        done = reconcile_process("--desired", str(desired), "--state-dir", str(tmp_path / "state"), "plan",
                                 "--format", "json", env={"TOKEN": token})
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    deleted = {a["subject"]["identity"] for a in plan["actions"] if a["kind"] == "delete"}
    assert "sybil" in deleted and "alice" in deleted, "absent users with a known email are still deleted"
    assert not deleted & {"zoe", "yusuf"}
    assert {(w["kind"], w["subject"]) for w in plan["warnings"]} >= {("ambiguous", "zoe"), ("ambiguous", "yusuf")}


def test_no_full_garbage_collection_runs_while_the_target_is_fetched() -> None:
    """A 100,000-user fetch keeps ~a million objects: a full pass walks them all (issue 15). The threshold
    the caller set is back afterwards."""
    import gc

    from reconcile.collector import PAUSED

    sim = DcSim.from_yaml()
    target = sim.basic_target()
    during: list[int] = []
    before = gc.get_threshold()
    run(target.fetch(SCOPE, progress=lambda *_: during.append(gc.get_threshold()[2])))
    run(target.aclose())
    assert during and set(during) == {PAUSED}
    assert gc.get_threshold() == before


def test_member_sets_keep_only_keys_that_are_users() -> None:
    """A member the user list did not show and that could not be read alone is no member of the state."""
    from reconcile.model import User
    from reconcile.targets.confluence_dc.target import _known

    users = {k: User(ref=k, username=k) for k in ("k1", "k2")}
    assert _known(["k1", "k2", "k1"], users) == frozenset({"k1", "k2"})
    assert _known(["k1", "gone", "k2"], users) == frozenset({"k1", "k2"})
    assert _known([], users) == frozenset()


def test_a_read_page_leaves_no_response_for_the_cyclic_collector() -> None:
    """httpx binds a response and its stream in a cycle; a page's body must go when its response does,
    not at a full collection, which the fetch pauses (issue 15: memory)."""
    import gc

    sim = DcSim.from_yaml()
    target = sim.basic_target()
    gc.collect()
    gc.disable()
    try:
        run(read.list_users(target.client, 2))  # the pages alone: the fetch ends with a full collection
        run(read.list_member_keys(target.client, "confluence-users", 2))
        run(target.aclose())
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        pages = [o for o in gc.garbage if isinstance(o, httpx.Response)
                 and o.request.url.path.startswith(("/rest/api/user/list", "/rest/api/group", "/rest/api/admin/users"))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert pages == []
