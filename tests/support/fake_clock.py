"""A fake clock for the HTTP client and the simulator: sleeps advance time instantly and are recorded."""

from __future__ import annotations

import asyncio

from reconcile.http import Clock


class FakeClock:
    """Monotonic and wall time that move only when someone sleeps; `sleeps` lists every sleep asked.

    By default each sleep adds its length to the time (sleeps never overlap). `overlapping=True`
    lets concurrent sleeps overlap: a sleeper first lets the others run, then time jumps to its own
    deadline if that is later, so a worker held back while another sleeps is seen to wait.
    """

    def __init__(self, start: float = 1000.0, epoch: float = 1_790_000_000.0, *, overlapping: bool = False) -> None:
        self.now = start
        self.epoch = epoch - start  # wall = epoch + monotonic
        self.sleeps: list[float] = []
        self.overlapping = overlapping

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.epoch + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.overlapping:
            deadline = self.now + max(0.0, seconds)
            await asyncio.sleep(0)  # the others run (and start their own sleeps) first
            self.now = max(self.now, deadline)
            return
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would

    def clock(self) -> Clock:
        return Clock(monotonic=self.monotonic, wall=self.wall, sleep=self.sleep)
