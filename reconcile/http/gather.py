"""Concurrent requests that fail together: the first error cancels the rest of the batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def all_of(*aws: Awaitable[T]) -> list[T]:
    """`asyncio.gather`, but a failure cancels the others and waits for them: no request keeps running behind
    an error. Of several failures the first by position is raised (not the first to happen), and every other
    one is retrieved, so none is reported later as "never retrieved"."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException as first:
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        if isinstance(first, asyncio.CancelledError):
            raise  # this batch itself was cancelled
        failures = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, asyncio.CancelledError)]
        if failures and failures[0] is not first:
            raise failures[0] from None
        raise
