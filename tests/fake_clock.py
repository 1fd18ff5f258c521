"""A fake clock for the HTTP client and the simulator: sleeps advance time instantly and are recorded."""

from __future__ import annotations

import asyncio

from reconcile.targets.http import Clock


class FakeClock:
    """Monotonic and wall time that move only when someone sleeps; `sleeps` lists every sleep asked."""

    def __init__(self, start: float = 1000.0, epoch: float = 1_790_000_000.0) -> None:
        self.now = start
        self.epoch = epoch - start  # wall = epoch + monotonic
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.epoch + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would

    def clock(self) -> Clock:
        return Clock(monotonic=self.monotonic, wall=self.wall, sleep=self.sleep)
