"""`run(coro)`: asyncio.run without rendering the result. asyncio.run's final `signal.getsignal(SIGINT)`
builds a ValueError message holding repr(its SIGINT handler), a partial bound to the main task, and so
repr()s the task's result: a whole 100,000-user desired state (seconds of CPU, ~100 MB of text)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

R = TypeVar("R")


def run(coro: Coroutine[Any, Any, R]) -> R:
    """Run `coro` to completion in a new event loop; its result travels outside the main task."""
    box: list[R] = []

    async def main() -> None:
        box.append(await coro)

    asyncio.run(main())
    return box[0]
