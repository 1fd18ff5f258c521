"""When to poll a DC long task next: soon after the 202, then at the finish its own `elapsedTime` and
`percentageComplete` (or the durations of earlier tasks) predict, never faster than a gently growing gap.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class PollSchedule:
    """Delays between polls of one target's deletion tasks (shared: later tasks learn from earlier ones).

    A poll sent `d` seconds from now is answered about a round trip later, so each delay aims the
    *answer* at the predicted finish plus `margin`. The gap below which polls never come grows by
    `growth` per poll of the same task, up to `cap`, so a stuck task is polled ever more slowly.
    """

    first: float = 0.02  # seconds after the 202 when nothing is known yet
    growth: float = 1.3
    cap: float = 2.0
    margin: float = 0.004  # aim just after the predicted finish: a poll that comes early costs a round trip
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=9))

    def typical(self) -> float | None:
        """The median duration of the last finished tasks (seconds), if any."""
        return statistics.median(self.durations) if self.durations else None

    def after_submit(self, rtt: float) -> float:
        """The delay before the first poll, right after the 202 (elapsed time ~0)."""
        typical = self.typical()
        if typical is None:
            return self.first
        return min(max(typical - rtt + self.margin, self.first), self.cap)

    def next(self, polls: int, rtt: float, elapsed: float | None, percent: float | None) -> float:
        """The delay before poll number `polls` + 1 of a task that answered `elapsed` s, `percent` % done."""
        gap = min(self.first * self.growth ** polls, self.cap)
        left: float | None = None
        typical = self.typical()
        if elapsed is not None:
            if typical is not None and elapsed + self.margin < typical:
                left = typical - elapsed
            elif percent is not None and 0 < percent < 100:
                left = elapsed * (100 - percent) / percent  # linear progress, as the server reports it
        if left is None:
            return gap
        return min(max(left - rtt + self.margin, gap), self.cap)

    def finished(self, elapsed: float | None) -> None:
        """A task finished after `elapsed` seconds (its last `elapsedTime`)."""
        if elapsed is not None and elapsed > 0:
            self.durations.append(elapsed)
