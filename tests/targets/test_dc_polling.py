"""Deletion tasks polled on an exact timeline: the simulator's 25 ms latency and a seeded 0-4 ms network
jitter run on virtual time, so how soon each deletion follows the previous task's finish is measured,
not estimated, and the submissions are checked to wait for a poll that saw the finish."""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
from dataclasses import dataclass

import httpx

from reconcile.http import Clock
from reconcile.model import Globs, Scope
from reconcile.plan import Action, ActionKind, Subject
from reconcile.sim.confluence_dc.generate import ADMIN_TOKEN as GENERATED_TOKEN
from reconcile.sim.confluence_dc.generate import generate_dc
from reconcile.sim.confluence_dc.world import INTERNAL_DIRECTORY, DcUser
from reconcile.sim.control import SimSettings
from reconcile.targets.base import Outcome, Result
from reconcile.targets.confluence_dc import ConfluenceDcTarget
from reconcile.targets.confluence_dc.polling import PollSchedule
from tests.support.dc import FAST, DcSim
from tests.support.virtual_time import run_virtual

TASK = 0.25
LATENCY = 0.025


@dataclass(frozen=True, slots=True)
class Exchange:
    method: str
    path: str
    sent: float
    answered: float  # the simulator handles a request and answers at the same instant
    finished: bool  # a long task's status that says it finished


class Network(httpx.AsyncBaseTransport):
    """Each request reaches the simulator 0-4 ms later than it was sent (seeded), on top of the
    simulator's own latency; every exchange is kept with its times."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seed: int) -> None:
        self.inner = inner
        self.rng = random.Random(seed)
        self.log: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        await asyncio.sleep(self.rng.uniform(0.0, 0.004))
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        finished = "/longtask/" in request.url.path and b'"percentageComplete":100' in body.replace(b" ", b"")
        self.log.append(Exchange(request.method, request.url.path, sent, loop.time(), finished))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def delete_on_virtual_time(count: int, seed: int) -> tuple[list[Outcome], list[Exchange], DcSim]:
    sim = DcSim(generate_dc(80, 4, 10, seed=3), SimSettings(latency_ms=LATENCY * 1000))
    sim.world.delete_seconds = TASK
    network = Network(sim.transport(), seed)
    victims = [u for u in sim.world.users.values() if not u.unsynced and u.active and u.username != "admin"
               and u.directory == INTERNAL_DIRECTORY][:count]

    async def go() -> list[Outcome]:
        loop = asyncio.get_running_loop()
        sim.ctx.clock = loop.time
        clock = Clock(monotonic=loop.time, wall=lambda: 1_790_000_000.0 + loop.time(), sleep=asyncio.sleep)
        target = ConfluenceDcTarget(sim.config(token=GENERATED_TOKEN), transport=network, backoff=FAST, clock=clock)
        await target.fetch(Scope(users=Globs(("*",))))
        slots = asyncio.Semaphore(target.concurrency(ActionKind.DELETE))  # as apply runs them

        async def one(u: DcUser) -> Outcome:
            async with slots:
                return await target.perform(Action(ActionKind.DELETE, Subject(u.username, u.key)))

        try:
            return list(await asyncio.gather(*(one(u) for u in victims)))
        finally:
            await target.aclose()

    assert len(victims) == count
    return run_virtual(go()), network.log, sim


def test_each_deletion_follows_the_previous_tasks_finish_within_a_few_ms() -> None:
    outcomes, log, sim = delete_on_virtual_time(12, seed=7)
    assert [o.result for o in outcomes] == [Result.DONE] * 12, [o.message for o in outcomes][:2]
    assert sim.violations() == []
    deletes = [e for e in log if e.method == "DELETE"]
    idle = []
    for before, after in itertools.pairwise(deletes):
        finish = before.answered + TASK
        seen = min(e.answered for e in log if e.finished and before.answered < e.answered)
        assert finish <= seen <= after.sent  # never submitted before a poll saw the previous task finish
        idle.append(after.sent - finish)
    learned = idle[1:]  # the first task's duration is not known yet
    # The floor is 0: the poll that sees the finish is answered at the finish itself in this model.
    assert max(learned) <= 0.005, [round(i * 1000, 1) for i in idle]
    assert statistics.mean(learned) <= 0.003, [round(i * 1000, 1) for i in idle]
    polls = [e for e in log if "/longtask/" in e.path]
    assert len(polls) <= 3 * len(deletes) + 4  # a round of three polls per task, once learned


def test_a_round_aimed_at_a_predicted_finish_has_several_polls_a_stuck_task_one() -> None:
    schedule = PollSchedule(first=0.02)
    assert schedule.after_submit(LATENCY).spread == ()  # nothing known yet: one poll
    schedule.finished(TASK)
    aimed = schedule.after_submit(LATENCY)
    assert aimed.spread and aimed.delay == TASK - LATENCY + schedule.margin
    assert schedule.next(1, LATENCY, TASK - 0.1, 60.0).spread  # the finish is predicted
    assert schedule.next(3, LATENCY, 5.0, 99.0).spread == ()  # slower than every task before: backing off
    # The quickest recent round trip: a poll aimed with a slow one would be answered before the finish.
    schedule.after_submit(0.040)
    assert schedule.after_submit(0.030).delay == TASK - LATENCY + schedule.margin
