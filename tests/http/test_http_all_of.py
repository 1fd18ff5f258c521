"""`all_of`: concurrent requests that fail together, with no request left running and no error lost."""

from __future__ import annotations

import asyncio
import gc

import pytest

from reconcile.http import all_of

pytestmark = pytest.mark.anyio


async def _fail_after(steps: int, name: str) -> str:
    for _ in range(steps):
        await asyncio.sleep(0)
    raise RuntimeError(name)


async def _forever(stopped: list[str]) -> str:
    try:
        await asyncio.Event().wait()
    finally:
        stopped.append("stopped")
    return "never"


async def test_the_results_come_in_the_order_of_the_awaitables() -> None:
    async def value(v: int, steps: int) -> int:
        for _ in range(steps):
            await asyncio.sleep(0)
        return v

    assert await all_of(value(1, 3), value(2, 0), value(3, 1)) == [1, 2, 3]


async def test_a_failure_stops_the_others_before_it_is_raised() -> None:
    stopped: list[str] = []
    with pytest.raises(RuntimeError, match="users"):
        await all_of(_forever(stopped), _fail_after(2, "users"))
    assert stopped == ["stopped"]  # already cancelled and finished when all_of raises


async def test_of_two_failures_the_first_by_position_is_raised_and_the_other_is_retrieved() -> None:
    lost: list[object] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: lost.append(context.get("message")))
    try:
        for _ in range(3):
            # `groups` fails first; `users` one step later, before the batch is cancelled; `members` is cancelled
            with pytest.raises(RuntimeError, match=r"^users$"):
                await all_of(_fail_after(2, "users"), _fail_after(1, "groups"), _fail_after(5, "members"))
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert lost == []
