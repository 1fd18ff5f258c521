"""Time for the HTTP client: retry delays, rate-limit headers read as waits, the shared pause and pacing.

`Clock` is the one seam through which the client reads time and sleeps (tests pass a fake one);
`RateHeaders` says which response headers carry an API's rate-limit state.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from reconcile.http.aimd import Aimd

log = logging.getLogger("reconcile.http")


@dataclass(frozen=True, slots=True)
class Clock:
    """Where the client reads time and how it sleeps; the defaults are the real ones."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time  # epoch seconds, for reset timestamps
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry timing: a few retries, doubling delays capped at 30 s, jitter (what most APIs advise)."""

    base: float = 0.5  # first delay without a Retry-After, seconds
    cap: float = 30.0  # longest computed delay
    max_wait: float = 60.0  # clamp for a server-sent Retry-After / reset (seen: 9223372036854775807)
    jitter: tuple[float, float] = (0.7, 1.3)  # multiplier range
    pace_below: int = 0  # pace when the remaining-requests header <= this; 0: 2 x concurrency
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> float:
        """The jittered exponential delay before retry number `attempt` (0-based)."""
        return float(min(self.cap, self.base * 2**attempt) * self.rng.uniform(*self.jitter))


@dataclass(frozen=True, slots=True)
class RateHeaders:
    """Which response headers carry an API's rate-limit state (names are case-insensitive).

    Only `Retry-After` is standard; the others are each vendor's: `remaining` requests left, the
    `reset` time (seconds, epoch or a timestamp), and a refill rate (`fill_rate` per `interval` s).
    `reset_from_date`: read the reset against the response's `Date`, not our clock (epoch resets
    from a server whose clock may differ from ours).
    """

    retry_after: str = "retry-after"
    remaining: str | None = None
    limit: str | None = None  # the bucket's size, when sent (helps measure the refill rate)
    reset: str | None = None
    fill_rate: str | None = None
    interval: str | None = None
    reset_from_date: bool = False


def seconds_until(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After (seconds or HTTP date) or a reset header (ISO 8601, epoch) as seconds from `now`.

    ISO timestamps may have minute precision (`2026-01-01T10:31Z`, as some APIs send them);
    a timestamp without a zone is UTC. `now` is epoch seconds (default: the wall clock).
    """
    if not value:
        return None
    value = value.strip()
    current = time.time() if now is None else now
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if number > 1e9 and number < 1e11:  # an epoch timestamp
            return number - current
        return number
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - current


class RateGate:
    """Shared by every caller of one client: a pause all workers honour, and proactive pacing.

    A 429 seen by one worker moves `resume_at` forward for all of them; while the server reports
    few remaining tokens, requests are spaced at the server's refill rate instead of bursting. A
    server that sends no refill rate gets the rate `aimd` learned from its counts and 429s.
    """

    def __init__(self, backoff: Backoff, concurrency: int, clock: Clock | None = None,
                 headers: RateHeaders | None = None) -> None:
        self.backoff = backoff
        self.clock = clock or Clock()
        self.headers = headers or RateHeaders()
        self.pace_below = backoff.pace_below or max(2, 2 * concurrency)
        self.resume_at = 0.0  # monotonic time before which nobody sends
        self.spacing = 0.0  # seconds between requests while pacing (0: not pacing)
        self.next_slot = 0.0
        self.pauses = 0  # how many times a 429/503 paused everyone (for tests and logs)
        self.aimd = Aimd()
        self.sent = 0
        self.first_sent: float | None = None

    def reserve(self, now: float) -> float:
        """When a caller ready at `now` may send: after any shared pause, in its pacing slot (reserved)."""
        start = max(now, self.resume_at)
        if self.spacing:
            start = max(start, self.next_slot)
            self.next_slot = start + self.spacing  # concurrent callers queue behind
        return start

    async def wait(self) -> None:
        """Return when this caller may send: after any shared pause, in its pacing slot."""
        while True:
            now = self.clock.monotonic()
            at = self.reserve(now)
            if at > now:
                await self.clock.sleep(at - now)
            if self.resume_at <= self.clock.monotonic():
                self.sending(at)
                return

    def sending(self, at: float) -> None:
        """Count a request sent at `at` (for `sent_rate`)."""
        self.sent += 1
        if self.first_sent is None:
            self.first_sent = at

    def sent_rate(self, now: float) -> float:
        """Our average send rate so far (the fallback guess of the allowed rate at a first 429)."""
        if self.first_sent is None or now <= self.first_sent:
            return float(max(self.sent, 1))
        return self.sent / (now - self.first_sent)

    def pause(self, seconds: float) -> None:
        seconds = min(max(seconds, 0.0), self.backoff.max_wait)
        until = self.clock.monotonic() + seconds
        if until > self.resume_at:
            self.resume_at = until
            self.pauses += 1

    def now(self, headers: httpx.Headers) -> float:
        """Epoch seconds to read this response's times against: ours, or its `Date` if so configured."""
        if self.headers.reset_from_date:
            try:
                return email.utils.parsedate_to_datetime(headers.get("date", "")).timestamp()
            except (TypeError, ValueError):
                pass
        return self.clock.wall()

    def retry_after(self, headers: httpx.Headers) -> float | None:
        """Seconds the server asked us to wait (`Retry-After`), or None."""
        return seconds_until(headers.get(self.headers.retry_after), self.now(headers))

    def reset_in(self, headers: httpx.Headers) -> float | None:
        """Seconds until the rate-limit reset, or None when absent, junk or already past.

        A reset with minute precision is often a little in the past: that means "now", not a
        reason to hot-loop, so the caller falls back to its own schedule.
        """
        if self.headers.reset is None:
            return None
        reset = seconds_until(headers.get(self.headers.reset), self.now(headers))
        if reset is None or reset <= 0:
            return None
        return min(reset, self.backoff.max_wait)

    def observe(self, headers: httpx.Headers, status: int = 200, sent_at: float | None = None) -> None:
        """Adjust pacing from the rate-limit headers: a refill rate if sent, else the learned rate
        (remaining counts and 429s, see `Aimd`), else remaining / reset."""
        names = self.headers
        remaining = _int(headers.get(names.remaining)) if names.remaining else None
        if remaining is None:
            return
        fill = _int(headers.get(names.fill_rate)) if names.fill_rate else None
        interval = _float(headers.get(names.interval)) if names.interval else None
        learned: float | None = None
        if not (fill and interval):
            now = self.clock.monotonic()
            if status == 429:
                self.aimd.refused(now, now if sent_at is None else sent_at, self.sent_rate(now))
                self._space(self.aimd.spacing, remaining)
                return
            self.aimd.accepted(now, remaining, _int(headers.get(names.limit)) if names.limit else None)
            if remaining <= self.pace_below:
                learned = self.aimd.start(now, remaining)
        if remaining > self.pace_below:
            self.spacing = 0.0
            return
        if fill and interval:
            spacing = interval / fill
        elif learned:
            spacing = 1.0 / learned  # remaining 0 is no reason to stop: a token comes every `spacing`
        else:
            reset = self.reset_in(headers)
            if reset is None:
                return
            spacing = reset / max(remaining, 1)
            if remaining == 0:
                self.pause(reset)
        self._space(spacing, remaining)

    def _space(self, spacing: float, remaining: int) -> None:
        spacing = min(spacing, self.backoff.max_wait)
        if spacing != self.spacing:
            log.debug("pacing: %d requests left, one request every %.3f s", remaining, spacing)
        self.spacing = spacing


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
