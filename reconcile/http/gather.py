"""Concurrent requests that fail together: the first error cancels the rest of the batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def all_of(*aws: Awaitable[T]) -> list[T]:
    """`asyncio.gather`, but a failure cancels the others: no request keeps running behind an error."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
