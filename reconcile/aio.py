"""`run(coro)`: asyncio.run on uvloop when installed, without rendering the result. asyncio.run's final
`signal.getsignal(SIGINT)` builds a ValueError message holding repr(its SIGINT handler), a partial bound to the
main task, and so repr()s the task's result: a whole 100,000-user desired state (seconds of CPU, ~100 MB of text)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

R = TypeVar("R")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop if installed (C: less CPU per request than asyncio's, on cores the client shares
    with the servers it talks to), else None: asyncio's default (e.g. on Windows, where uvloop does not exist)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, R]) -> R:
    """Run `coro` to completion in a new event loop; its result travels outside the main task."""
    box: list[R] = []

    async def main() -> None:
        box.append(await coro)

    # asyncio.Runner is what asyncio.run uses (same SIGINT handling: Ctrl-C cancels the main task, then
    # KeyboardInterrupt); asyncio.run takes no loop factory before Python 3.12.
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main())
    return box[0]
