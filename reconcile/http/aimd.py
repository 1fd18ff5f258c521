"""The request rate a server allows when its headers carry no refill rate: learned
from the remaining-requests count and from 429s, by additive increase and multiplicative decrease.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Aimd:
    """A pacing rate (requests/s) for a token bucket whose refill rate nobody tells us.

    The refill is *measured*: requests accepted since an anchor minus the drop of the remaining
    count, over the time elapsed (tokens taken = tokens refilled + tokens the bucket lost). That
    estimate seeds the rate and caps the additive increase. A 429 means the bucket is empty: the
    rate is cut by `decrease`, once per congestion event (429s of requests sent before the cut are
    the same event), and the anchor moves there (remaining 0: the next estimate is exact).
    """

    increase: float = 0.02  # additive step per second without a 429, as a fraction of the first rate
    decrease: float = 0.85  # multiplicative cut on a 429
    margin: float = 0.95  # pace this fraction of the measured refill (spare tokens are spent in bursts)
    min_window: float = 0.25  # seconds of observations before the measurement is trusted
    floor: float = 0.2  # requests/s: never slower
    rate: float | None = None  # None: not learned yet
    cuts: int = 0  # congestion events (for tests and logs)
    _anchor: tuple[float, int, int] | None = None  # (time, remaining, accepted count) at the anchor
    _accepted: int = 0
    _high: int = 0  # the highest remaining count seen: the bucket is (nearly) full there
    _step: float = 0.0
    _last: float = 0.0  # time of the last increase or cut
    _cut_at: float = float("-inf")

    def accepted(self, now: float, remaining: int, limit: int | None = None) -> None:
        """A response that was not refused, with the server's remaining count (and its limit, if sent)."""
        self._accepted += 1
        self._high = max(self._high, remaining)
        if self._anchor is None or remaining >= (limit or self._high) - 1:
            # A full bucket wastes its refill: measure only from where it stopped being full.
            self._anchor = (now, remaining, self._accepted)
            return
        if self.rate is None:
            return
        ceiling = self.measured(now, remaining)
        grown = self.rate + self._step * max(0.0, now - self._last)
        self._last = now
        self.rate = max(self.floor, grown if ceiling is None else min(grown, ceiling * self.margin))

    def measured(self, now: float, remaining: int, window: float | None = None) -> float | None:
        """The refill rate the counts since the anchor show, or None before `window` seconds."""
        if self._anchor is None:
            return None
        at, left, count = self._anchor
        elapsed = now - at
        if elapsed < (self.min_window if window is None else window) or elapsed <= 0:
            return None
        return max(0.0, ((self._accepted - count) - (left - remaining)) / elapsed)

    def start(self, now: float, remaining: int) -> float | None:
        """The rate to pace at now that few requests remain: the learned one, else the measured one."""
        if self.rate is None:
            refill = self.measured(now, remaining)
            if refill is not None and refill > 0:
                self._learn(now, refill * self.margin)
        return self.rate

    def refused(self, now: float, sent_at: float, sent_rate: float) -> None:
        """A 429 for a request sent at `sent_at`; `sent_rate`: our recent send rate, the fallback."""
        if sent_at <= self._cut_at:
            return  # in flight when we last cut: the same congestion event
        base = self.rate
        if base is None:
            # The bucket is empty now, a sure end point: a shorter window is good enough.
            base = self.measured(now, 0, self.min_window / 4) or sent_rate
            self._learn(now, base)
        self.rate = max(self.floor, base * self.decrease)
        self._cut_at = now
        self._last = now
        self.cuts += 1
        self._anchor = (now, 0, self._accepted)

    def _learn(self, now: float, rate: float) -> None:
        self.rate = max(self.floor, rate)
        self._step = self.increase * self.rate
        self._last = now

    @property
    def spacing(self) -> float:
        return 1.0 / self.rate if self.rate else 0.0
