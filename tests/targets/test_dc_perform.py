"""ConfluenceDcTarget.perform against the in-process simulator: each action kind, read-only refusals,
serialized deletions, unsynced entries sharing a username, and idempotence."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from reconcile.model import Globs, Scope
from reconcile.plan import Action, ActionKind, Subject
from reconcile.sim.confluence_dc.generate import ADMIN_TOKEN as GENERATED_TOKEN
from reconcile.sim.confluence_dc.generate import generate_dc
from reconcile.sim.confluence_dc.mutate import mutate_dc
from reconcile.sim.confluence_dc.world import INTERNAL_DIRECTORY, DcUser
from reconcile.sim.control import RateLimit, SimSettings
from reconcile.targets.base import Outcome, Result
from reconcile.targets.confluence_dc import ConfluenceDcTarget
from reconcile.targets.confluence_dc.polling import PollSchedule
from tests.support.dc import FAST, DcSim, run
from tests.support.fake_clock import FakeClock

SCOPE = Scope(groups=Globs(("team-*", "confluence-users", "ldap-*")))
GONE_1, GONE_2, SOLO = (f"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0{i}" for i in (1, 2, 3))


def act(sim: DcSim, kind: ActionKind, username: str, group: str | None = None) -> Action:
    return Action(kind, Subject(username, sim.key(username)), group=group)


def unsynced_delete(ref: str, name: str = "gone") -> Action:
    return Action(ActionKind.DELETE, Subject(name, ref), unsynced=True)


async def fetch_then(target: ConfluenceDcTarget, *actions: Action) -> list[Outcome]:
    await target.fetch(SCOPE)
    out = [await target.perform(a) for a in actions]
    await target.aclose()
    return out


def test_membership_and_status_changes_reach_the_server() -> None:
    sim = DcSim.from_yaml()
    alice, bob = sim.key("alice"), sim.key("bob")
    outcomes = run(fetch_then(
        sim.target(),
        act(sim, ActionKind.ADD_MEMBER, "alice", "team-ops"),
        act(sim, ActionKind.REMOVE_MEMBER, "alice", "team-docs"),
        act(sim, ActionKind.ENABLE, "bob"),
        act(sim, ActionKind.DISABLE, "dave"),
    ))
    assert [o.result for o in outcomes] == [Result.DONE] * 4
    assert [o.http_status for o in outcomes] == [204] * 4
    assert all(o.request_id for o in outcomes)  # X-AREQUESTID, for the audit log
    assert alice in sim.world.members["team-ops"] and alice not in sim.world.members["team-docs"]
    assert sim.world.users[bob].active and not sim.world.users[sim.key("dave")].active
    assert sim.writes() == [
        "PUT /rest/api/user/alice/group/team-ops -> 204",
        "DELETE /rest/api/user/alice/group/team-docs -> 204",
        "PUT /rest/api/admin/user/bob/enable -> 204",
        "PUT /rest/api/admin/user/dave/disable -> 204",
    ]
    sim.check_contracts()


def test_perform_without_a_prior_fetch_looks_the_username_up_by_user_key() -> None:
    sim = DcSim.from_yaml()
    target = sim.target()
    outcome = run(target.perform(act(sim, ActionKind.ADD_MEMBER, "dave", "team-docs")))
    assert outcome.result is Result.DONE
    assert ("GET", f"/rest/api/user?key={sim.key('dave')}", 200) in sim.sent()
    assert sim.key("dave") in sim.world.members["team-docs"]


def test_a_write_refused_by_a_read_only_directory_fails_once_with_advice() -> None:
    sim = DcSim.from_yaml()
    outcomes = run(fetch_then(
        sim.target(readonly=()),  # the admin forgot readonly_groups
        act(sim, ActionKind.ADD_MEMBER, "dave", "ldap-eng"),
        act(sim, ActionKind.DISABLE, "carol"),
        act(sim, ActionKind.DELETE, "carol"),
    ))
    add, disable, delete = outcomes
    assert [o.result for o in outcomes] == [Result.FAILED] * 3
    assert "add it to target.readonly_groups" in add.message
    assert "PUT http://confluence.test/rest/api/user/dave/group/ldap-eng -> 500" in add.message
    assert "read-only directory" in disable.message and "read-only directory" in delete.message
    # never retried: one request each
    assert sim.writes() == [
        "PUT /rest/api/user/dave/group/ldap-eng -> 500",
        "PUT /rest/api/admin/user/carol/disable -> 500",
        "DELETE /rest/api/admin/user/carol -> 403",
    ]
    assert sim.key("dave") not in sim.world.members["ldap-eng"]


def test_deletions_run_one_at_a_time_even_when_called_concurrently() -> None:
    sim = DcSim.from_yaml()
    sim.world.delete_seconds = 0.15
    target = sim.target()
    assert target.concurrency(ActionKind.DELETE) == 2  # checks overlap; the lock serializes the tasks
    assert target.concurrency(ActionKind.ADD_MEMBER) == 4

    async def go() -> list[Outcome]:
        await target.fetch(SCOPE)
        deletes = [act(sim, ActionKind.DELETE, n) for n in ("alice", "bob", "dave")]
        return list(await asyncio.gather(*(target.perform(a) for a in deletes)))

    keys = [sim.key(n) for n in ("alice", "bob", "dave")]
    outcomes = run(go())
    assert [o.result for o in outcomes] == [Result.DONE] * 3
    assert all(o.http_status == 202 for o in outcomes)
    assert sim.violations() == []  # the simulator flags a deletion submitted while another runs
    assert not any(k in sim.world.users for k in keys)
    assert set(keys) <= set(sim.world.deleted)
    sim.check_contracts()


def test_delete_is_idempotent_404_and_already_gone_users_are_already() -> None:
    sim = DcSim.from_yaml()
    target = sim.target()
    alice, dave = act(sim, ActionKind.DELETE, "alice"), act(sim, ActionKind.DELETE, "dave")

    async def go() -> list[Outcome]:
        await target.fetch(SCOPE)
        first = await target.perform(alice)
        again = await target.perform(alice)
        mutate_dc(sim.world, "delete_user", {"username": "dave"})  # someone else was quicker
        behind = await target.perform(dave)
        fresh = sim.target()  # a resumed apply without the earlier fetch
        resumed = await fresh.perform(alice)
        return [first, again, behind, resumed]

    first, again, behind, resumed = run(go())
    assert first.result is Result.DONE
    assert again.result is behind.result is resumed.result is Result.ALREADY
    assert sim.writes() == ["DELETE /rest/api/admin/user/alice -> 202"]


def test_unsynced_entries_sharing_a_username_are_deleted_by_user_key() -> None:
    sim = DcSim.from_yaml()
    outcomes = run(fetch_then(sim.basic_target(), unsynced_delete(GONE_2), unsynced_delete(GONE_2)))
    assert [o.result for o in outcomes] == [Result.DONE, Result.ALREADY]
    assert GONE_2 not in sim.world.users
    assert GONE_1 in sim.world.users and SOLO in sim.world.users  # the twin and the others are left
    writes = sim.writes()
    assert writes[0] == "POST /doauthenticate.action -> 302"
    assert writes[1] == "POST /admin/users/removeunsynceduser-confirm.action -> 200"
    assert len(writes) == 2
    assert not any("/rest/api/admin/user/gone" in w for w in writes)  # never by the shared username
    assert sim.violations() == []
    sim.check_contracts()


def test_without_admin_pages_only_an_unsynced_entry_with_a_unique_username_is_deleted_by_rest() -> None:
    sim = DcSim.from_yaml()
    sim.world.websudo = False  # the PAT can read the admin pages ...
    target = sim.target()

    async def go() -> list[Outcome]:
        await target.fetch(SCOPE)
        sim.world.websudo = True  # ... until secure administrator sessions are switched back on
        return [await target.perform(unsynced_delete(GONE_1)),
                await target.perform(unsynced_delete(SOLO, "solo"))]

    shared, unique = run(go())
    assert shared.result is Result.FAILED
    assert "by userKey" in shared.message and "username + password" in shared.message
    assert unique.result is Result.DONE
    assert GONE_1 in sim.world.users and SOLO not in sim.world.users
    assert [w for w in sim.writes() if "/rest/api/admin/user/" in w] == ["DELETE /rest/api/admin/user/solo -> 202"]


def test_an_unsynced_entry_that_was_resynced_is_not_deleted() -> None:
    sim = DcSim.from_yaml()
    target = sim.basic_target()

    async def go() -> Outcome:
        await target.fetch(SCOPE)
        entry = sim.world.users[SOLO]  # the directory brings the user back
        entry.unsynced = False
        sim.world.unsynced_by_username.pop("solo", None)
        sim.world.by_username["solo"] = SOLO
        return await target.perform(unsynced_delete(SOLO, "solo"))

    outcome = run(go())
    assert outcome.result is Result.FAILED
    assert "no longer unsynced" in outcome.message
    assert SOLO in sim.world.users


@pytest.mark.parametrize("kind", [ActionKind.ADD_MEMBER, ActionKind.DISABLE])
def test_actions_on_a_user_that_vanished_fail_with_a_reason(kind: ActionKind) -> None:
    sim = DcSim.from_yaml()
    action = act(sim, kind, "dave", "team-docs" if kind is ActionKind.ADD_MEMBER else None)
    mutate_dc(sim.world, "delete_user", {"username": "dave"})
    outcome = run(sim.target().perform(action))
    assert outcome.result is Result.FAILED
    assert "no longer exists" in outcome.message


def test_every_exchange_of_a_fetch_and_each_action_kind_follows_the_contract() -> None:
    """Requests sent and simulator responses, against Atlassian's Confluence DC 10.0.3 document."""
    sim = DcSim.from_yaml()
    outcomes = run(fetch_then(
        sim.basic_target(),
        act(sim, ActionKind.ADD_MEMBER, "dave", "team-docs"),
        act(sim, ActionKind.REMOVE_MEMBER, "alice", "team-docs"),
        act(sim, ActionKind.DISABLE, "dave"),
        act(sim, ActionKind.ENABLE, "bob"),
        act(sim, ActionKind.DELETE, "alice"),
        unsynced_delete(GONE_1),
    ))
    assert all(o.ok for o in outcomes)
    assert sim.request_violations() == []
    assert sim.response_violations() == []
    covered = {op for c in sim.contracts for op in c.recorder.operations}
    assert {"GET /rest/api/user/current", "GET /rest/api/user/list", "GET /rest/api/group",
            "GET /rest/api/group/{groupName}/member", "GET /rest/api/admin/users/list/active",
            "PUT /rest/api/user/{username}/group/{groupName}",
            "DELETE /rest/api/user/{username}/group/{groupName}",
            "PUT /rest/api/admin/user/{username}/disable", "PUT /rest/api/admin/user/{username}/enable",
            "DELETE /rest/api/admin/user/{username}", "GET /rest/api/longtask/{id}"} <= covered


def test_an_expired_websudo_session_is_renewed_before_an_unsynced_delete() -> None:
    sim = DcSim.from_yaml()
    target = sim.basic_target()

    async def go() -> Outcome:
        await target.fetch(SCOPE)
        for session in sim.ctx.extra["dc_sessions"].by_id.values():
            session.websudo_until = 0.0  # ten idle minutes later
        return await target.perform(unsynced_delete(GONE_1))

    outcome = run(go())
    assert outcome.result is Result.DONE, outcome.message
    assert GONE_1 not in sim.world.users and GONE_2 in sim.world.users
    assert [w for w in sim.writes() if "doauthenticate" in w] == ["POST /doauthenticate.action -> 302"] * 2


def test_membership_changes_under_a_rate_limit_are_paced_not_refused() -> None:
    """100 requests/s with a burst of 40: the client slows to the fill rate instead of meeting 429s."""
    sim = DcSim(generate_dc(400, 4, 10, seed=5),
                SimSettings(rate_limit=RateLimit(fill_rate=100, interval_seconds=1, max=40)))
    group = next(g for g in sim.world.groups if g.startswith("team-"))
    writable = [u for u in sim.world.users.values()
                if not u.unsynced and u.username != "admin" and u.key not in sim.world.members[group]][:250]
    # The bucket refills and the client waits on one fake clock (concurrent waits overlap, as in real time).
    fake = FakeClock(overlapping=True)
    sim.ctx.clock = fake.monotonic
    target = ConfluenceDcTarget(sim.config(token=GENERATED_TOKEN, concurrency=8), transport=sim.transport(),
                                backoff=FAST, poll_interval=0.02, clock=fake.clock())

    async def go() -> list[Outcome]:
        await target.fetch(Scope(groups=Globs((group,))))
        slots = asyncio.Semaphore(target.concurrency(ActionKind.ADD_MEMBER))

        async def one(user_key: str, username: str) -> Outcome:
            async with slots:
                return await target.perform(Action(ActionKind.ADD_MEMBER, Subject(username, user_key),
                                                   group=group))

        return list(await asyncio.gather(*(one(u.key, u.username) for u in writable)))

    outcomes = run(go())
    assert [o.result for o in outcomes] == [Result.DONE] * len(writable)
    assert {u.key for u in writable} <= set(sim.world.members[group])
    puts = [w for w in sim.writes() if w.startswith("PUT ")]
    assert len(puts) == len(writable)  # each change sent once: nothing refused, nothing repeated
    assert sum(1 for e in sim.ctx.log.entries if e.status == 429) <= 3


def test_deletion_tasks_are_polled_at_their_predicted_finish() -> None:
    """Issue 15 item 5: 12 serialized 0.25 s deletions take ~ the sum of their durations (fake time),
    with at most two polls per task once the first task's duration is known."""
    sim = DcSim(generate_dc(60, 4, 10, seed=3))
    sim.world.delete_seconds = 0.25
    fake = FakeClock()
    sim.ctx.clock = fake.monotonic  # tasks progress on the client's clock
    target = ConfluenceDcTarget(sim.config(token=GENERATED_TOKEN), transport=sim.transport(), backoff=FAST,
                                clock=fake.clock())
    victims = [u for u in sim.world.users.values() if not u.unsynced and u.active and u.username != "admin"
               and u.directory == INTERNAL_DIRECTORY][:12]

    async def go() -> list[Outcome]:
        await target.fetch(Scope(users=Globs(("*",))))
        out = []
        for u in victims:
            out.append(await target.perform(Action(ActionKind.DELETE, Subject(u.username, u.key))))
        return out

    started = fake.monotonic()
    outcomes = run(go())
    assert [o.result for o in outcomes] == [Result.DONE] * len(victims), [o.message for o in outcomes][:2]
    assert sim.violations() == []
    polls = [e for e in sim.ctx.log.entries if e.kind == "request" and "/rest/api/longtask/" in e.path]
    assert len(polls) <= 2 * len(victims) + 6, len(polls)  # the first task is learned, then ~1 poll each
    assert fake.monotonic() - started <= 1.05 * 0.25 * len(victims) + 0.1  # (the fetch takes no fake time)


def test_a_task_that_does_not_progress_is_polled_ever_more_slowly() -> None:
    schedule = PollSchedule(first=0.02)
    delays = [schedule.next(n, 0.0, 1.0 + n, 99.0).delay for n in range(1, 30)]  # stuck at 99 %
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[0] < 0.1 and max(delays) == 2.0  # starts soon, backs off to the cap, never beyond
    schedule.finished(0.25)
    assert abs(schedule.after_submit(0.025).delay - (0.25 - 0.025 + schedule.margin)) < 1e-9
    assert schedule.next(1, 0.025, 0.1, 40.0).delay == 0.25 - 0.1 - 0.025 + schedule.margin  # the learned duration


def test_the_next_deletions_check_runs_while_the_previous_task_does() -> None:
    """The identity check (GET /rest/api/user) of the next deletion is not on the serialized path:
    it is sent before the previous task's last poll; the submissions still never overlap."""
    sim = DcSim(generate_dc(60, 4, 10, seed=3))
    sim.world.delete_seconds = 0.25
    fake = FakeClock(overlapping=True)
    sim.ctx.clock = fake.monotonic
    transport = sim.transport()
    target = ConfluenceDcTarget(sim.config(token=GENERATED_TOKEN), transport=transport, backoff=FAST,
                                clock=fake.clock())
    victims = [u for u in sim.world.users.values() if not u.unsynced and u.active and u.username != "admin"
               and u.directory == INTERNAL_DIRECTORY][:4]

    async def go() -> list[Outcome]:
        await target.fetch(Scope(users=Globs(("*",))))
        slots = asyncio.Semaphore(target.concurrency(ActionKind.DELETE))

        async def one(u: DcUser) -> Outcome:
            async with slots:
                return await target.perform(Action(ActionKind.DELETE, Subject(u.username, u.key)))

        return list(await asyncio.gather(*(one(u) for u in victims)))

    assert [o.result for o in run(go())] == [Result.DONE] * len(victims)
    assert sim.violations() == []
    seen = [(m, p) for m, p, _ in transport.seen]
    start = next(i for i, (m, _) in enumerate(seen) if m == "DELETE")  # after the fetch
    order = seen[start - 1:]
    checks = [i for i, (m, p) in enumerate(order) if m == "GET" and p.startswith("/rest/api/user?username=")]
    deletes = [i for i, (m, _) in enumerate(order) if m == "DELETE"]
    assert len(checks) == len(deletes) == len(victims)
    for k in range(1, len(victims)):  # task k-1 was still being polled after check k was sent
        assert any(p.startswith("/rest/api/longtask/") for _, p in order[checks[k] + 1:deletes[k]]), order
