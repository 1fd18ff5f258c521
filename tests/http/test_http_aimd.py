"""Pacing without a refill header (issue 15 item 4): the rate learned from remaining counts and 429s.

A discrete-event run of the real `RateGate` against the simulator's own `TokenBucket`, in virtual
time: workers wait for their slot (`reserve`), the bucket answers with Cloud's headers (remaining,
limit, a seconds-precision reset, `Retry-After` on a 429), and a 429 pauses everyone as the transport does.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import httpx

from reconcile.http import Backoff, Clock, RateGate
from reconcile.http.aimd import Aimd
from reconcile.sim.control import RateLimit, TokenBucket
from reconcile.targets.atlassian import RATE_HEADERS


@dataclass
class Run:
    finished: float
    refused: list[float] = field(default_factory=list)  # times of the 429s
    gate: RateGate | None = None


def drive(requests: int, *, rate: int, concurrency: int = 8, latency: float = 0.025,
          change_at: tuple[float, int] | None = None) -> Run:
    """`requests` accepted requests through one gate against a bucket of `rate`/s (size `rate`)."""
    now = [0.0]
    gate = RateGate(Backoff(), concurrency, Clock(monotonic=lambda: now[0]), RATE_HEADERS)
    bucket = TokenBucket(RateLimit(fill_rate=rate, interval_seconds=1, max=rate), 0.0)
    # (time a worker is ready to send, worker, whether it holds a slot at that time)
    ready = [(0.0, w, False) for w in range(concurrency)]
    heapq.heapify(ready)
    done, run = 0, Run(0.0)
    while done < requests:
        t, worker, slotted = heapq.heappop(ready)
        now[0] = t
        if not slotted or gate.resume_at > t:  # as `RateGate.wait`: a pause begun meanwhile sends it back
            sent = gate.reserve(t)
            if sent > t:  # it sleeps until its slot: others may go first
                heapq.heappush(ready, (sent, worker, True))
                continue
        if change_at and t >= change_at[0] and bucket.limit.fill_rate != change_at[1]:
            bucket.limit = RateLimit(fill_rate=change_at[1], interval_seconds=1, max=change_at[1])
        gate.sending(t)
        answered = t + latency
        now[0] = answered
        ok = bucket.take(answered)
        retry = bucket.retry_after()
        headers = httpx.Headers({"x-ratelimit-limit": str(bucket.limit.max),
                                 "x-ratelimit-remaining": str(bucket.remaining),
                                 "x-ratelimit-reset": "1970-01-01T00:00:00Z"})  # seconds precision: "now"
        gate.observe(headers, 200 if ok else 429, t)
        if ok:
            done += 1
        else:
            run.refused.append(answered)
            gate.pause(retry)  # the transport honours Retry-After (whole seconds, as the simulator sends)
        heapq.heappush(ready, (answered, worker, False))
    run.finished, run.gate = now[0], gate
    return run


def test_2000_requests_at_100_per_second_take_within_1_10x_of_the_bound() -> None:
    run = drive(2_000, rate=100)
    bound = (2_000 - 100) / 100 + 0.025  # the full bucket's 100 tokens are free
    assert run.finished <= 1.10 * bound, (run.finished, len(run.refused))
    assert len(run.refused) <= 8, run.refused  # at most one burst (one per worker in flight)
    assert run.gate is not None and run.gate.aimd.rate is not None
    assert 85 <= run.gate.aimd.rate <= 101, run.gate.aimd.rate  # converged just under the refill rate


def test_no_burst_of_429s_in_any_second() -> None:
    run = drive(3_000, rate=50, concurrency=8)
    for start in run.refused:
        in_window = [t for t in run.refused if start <= t < start + 1.0]
        assert len(in_window) <= 8, in_window  # never more than one per worker in flight
    assert run.finished <= 1.10 * ((3_000 - 50) / 50 + 0.025)
    assert run.gate is not None and run.gate.aimd.rate is not None and 40 <= run.gate.aimd.rate <= 50.5


def test_a_lower_limit_later_is_learned_by_backing_off() -> None:
    run = drive(1_500, rate=100, change_at=(5.0, 40))
    assert run.gate is not None and run.gate.aimd.rate is not None
    assert run.gate.aimd.rate <= 42, run.gate.aimd.rate  # followed the limit down
    assert run.gate.aimd.cuts >= 1
    late = [t for t in run.refused if t > 10.0]
    assert len(late) <= 8, late  # settled: no stream of 429s after it learned


def test_a_burst_of_429s_is_one_multiplicative_cut() -> None:
    aimd = Aimd()
    aimd.refused(10.0, 9.9, sent_rate=200.0)  # nothing learned yet: our own send rate is the guess
    assert aimd.rate is not None and math.isclose(aimd.rate, 200.0 * aimd.decrease)
    first = aimd.rate
    for sent in (9.95, 9.97, 10.0):  # in flight when we cut: the same congestion event
        aimd.refused(10.01, sent, sent_rate=200.0)
    assert aimd.rate == first and aimd.cuts == 1
    aimd.refused(11.0, 10.5, sent_rate=200.0)  # sent after the cut: a new event
    assert math.isclose(aimd.rate, first * aimd.decrease) and aimd.cuts == 2


def test_the_increase_is_additive_and_capped_by_the_measured_refill() -> None:
    aimd = Aimd()
    aimd.accepted(0.0, 99, 100)
    aimd.refused(0.5, 0.45, sent_rate=100.0)  # anchor: the bucket is empty at 0.5 s
    cut = aimd.rate
    assert cut is not None
    for k in range(1, 101):  # 1 s at 100 accepted/s, remaining steady at 0: refill measured at 100/s
        aimd.accepted(0.5 + k / 100, 0, 100)
    assert aimd.rate is not None and cut < aimd.rate <= 100 * aimd.margin + 1e-9
    for k in range(101, 1001):  # long after: still capped, never above the refill
        aimd.accepted(0.5 + k / 100, 0, 100)
    assert math.isclose(aimd.rate, 100 * aimd.margin, rel_tol=0.01)
    aimd.refused(11.0, 10.9, sent_rate=300.0)
    for k in range(1, 201):  # refill measured again from the empty bucket: a guess above it is pulled down
        aimd.rate = 300.0
        aimd.accepted(11.0 + k / 100, 0, 100)
    assert aimd.rate <= 100 * aimd.margin + 1e-9


def test_a_header_with_a_refill_rate_is_used_as_is() -> None:
    gate = RateGate(Backoff(), 8, Clock(monotonic=lambda: 0.0), RATE_HEADERS)
    gate.observe(httpx.Headers({"x-ratelimit-remaining": "3", "x-ratelimit-fillrate": "20",
                                "x-ratelimit-interval-seconds": "1"}))
    assert gate.spacing == 1 / 20 and gate.aimd.rate is None
