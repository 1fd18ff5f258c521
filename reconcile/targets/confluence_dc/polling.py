"""When to poll a DC long task next: soon after the 202, then at the finish its own `elapsedTime` and
`percentageComplete` (or the durations of earlier tasks) predict, never faster than a gently growing gap.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from reconcile.http import Clock

Answer = tuple[httpx.Response, float]  # a poll's answer and its round trip (seconds)


@dataclass(frozen=True, slots=True)
class Volley:
    """The polls of one round: the first `delay` seconds from now, the others `spread` seconds after it.

    A round aimed at a predicted finish sends a few polls a couple of ms apart, so that one is answered
    just after the finish even when a round trip comes quicker or slower than the last ones; the
    caller stops sending them once one has answered that the task finished.
    """

    delay: float
    spread: tuple[float, ...] = ()


@dataclass(slots=True)
class PollSchedule:
    """Delays between polls of one target's deletion tasks (shared: later tasks learn from earlier ones).

    A poll sent `d` seconds from now is answered about a round trip later, so a round aimed at a
    predicted finish times its first *answer* for the finish plus `margin`, using the quickest recent
    round trip. Past the durations of the tasks before, the gap below which rounds never come grows by
    `growth` per round of the same task, up to `cap`, so a stuck task is polled ever more slowly.
    """

    first: float = 0.02  # seconds after the 202 when nothing is known yet
    growth: float = 1.3
    cap: float = 2.0
    # A round's first poll is meant to come a little early: an answer before the finish is dealt with
    # before it, while each one after the one that sees the finish competes with the next submission.
    margin: float = -0.0025
    spread: tuple[float, ...] = (0.002, 0.0045)  # the round's later polls, seconds after its first
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=9))
    rtts: deque[float] = field(default_factory=lambda: deque(maxlen=8))

    def typical(self) -> float | None:
        """The median duration of the last finished tasks (seconds), if any."""
        return statistics.median(self.durations) if self.durations else None

    def round_trip(self, rtt: float) -> float:
        """Record a round trip (seconds) and return the quickest of the recent ones."""
        if rtt > 0:
            self.rtts.append(rtt)
        return min(self.rtts, default=0.0)

    def after_submit(self, rtt: float) -> Volley:
        """The first round, right after the 202 (elapsed time ~0); `rtt`: the submission's round trip."""
        rtt = self.round_trip(rtt)
        typical = self.typical()
        if typical is None:
            return Volley(self.first)
        return self._aimed(typical - rtt, self.first)

    def next(self, rounds: int, rtt: float, elapsed: float | None, percent: float | None) -> Volley:
        """Round `rounds` + 1 of a task that answered `elapsed` s, `percent` % done (after `rtt` s)."""
        rtt = self.round_trip(rtt)
        typical = self.typical()
        if elapsed is not None and typical is not None and elapsed < typical:
            # Not yet as long as the tasks before: aim at their duration, at once if a round just missed
            # it (each round takes a round trip of elapsed time, so this path ends by itself).
            return self._aimed(typical - elapsed - rtt, 0.0)
        gap = min(self.first * self.growth ** rounds, self.cap)
        if elapsed is not None and percent is not None and 0 < percent < 100:
            left = elapsed * (100 - percent) / percent  # linear progress, as the server reports it
            return self._aimed(left - rtt, gap)
        return Volley(gap)

    def _aimed(self, delay: float, floor: float) -> Volley:
        """A round whose first answer comes `margin` after a finish `delay` + a round trip from now."""
        if delay + self.margin < floor or delay + self.margin >= self.cap:
            return Volley(min(max(delay + self.margin, floor), self.cap))  # not aimed: one poll
        return Volley(delay + self.margin, self.spread)

    def finished(self, elapsed: float | None) -> None:
        """A task finished after `elapsed` seconds (its last `elapsedTime`)."""
        if elapsed is not None and elapsed > 0:
            self.durations.append(elapsed)


async def poll_round(volley: Volley, ask: Callable[[], Awaitable[httpx.Response]], clock: Clock,
                     settles: Callable[[httpx.Response], bool], stragglers: set[asyncio.Task[Answer]]) -> Answer:
    """Send one round's polls; return the first answer that `settles` the task, else the latest sent.

    Polls still in flight when it returns go to `stragglers` (the caller awaits them before closing
    its client): cancelling one would close its connection, and the next submission must not wait.
    """
    async def one() -> Answer:
        sent = clock.monotonic()
        response = await ask()
        return response, clock.monotonic() - sent

    def settled(task: asyncio.Task[Answer]) -> bool:
        return task.done() and not task.cancelled() and task.exception() is None and settles(task.result()[0])

    await clock.sleep(volley.delay)
    begun = clock.monotonic()
    sent = [asyncio.ensure_future(one())]
    for offset in volley.spread:
        await clock.sleep(max(0.0, begun + offset - clock.monotonic()))
        if any(settled(t) for t in sent):
            break  # answered already (no latency): no more polls
        sent.append(asyncio.ensure_future(one()))
    pending: set[asyncio.Task[Answer]] = set(sent)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            found = next((t for t in sent if t in done and settled(t)), None)
            if found is not None:
                return found.result()
        latest = next((t for t in reversed(sent) if t.exception() is None), None)
        return (latest or sent[-1]).result()  # re-raises the error when no poll was answered
    finally:
        for task in pending:
            stragglers.add(task)
            task.add_done_callback(_forget(stragglers))


def _forget(stragglers: set[asyncio.Task[Answer]]) -> Callable[[asyncio.Task[Answer]], None]:
    def done(task: asyncio.Task[Answer]) -> None:
        stragglers.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a late poll's failure matters to no one
    return done
