"""reconcile.aio.run: the coroutine's result comes back without asyncio.run's repr() of it at exit."""

from __future__ import annotations

import asyncio

from reconcile import aio


class Counted:
    """A result that counts how often it is rendered (a 100,000-user state renders for seconds)."""

    def __init__(self) -> None:
        self.renders = 0

    def __repr__(self) -> str:
        self.renders += 1
        return "Counted()"


async def _make(value: Counted) -> Counted:
    await asyncio.sleep(0)
    return value


def test_run_returns_the_result_without_rendering_it() -> None:
    value = Counted()
    assert aio.run(_make(value)) is value
    assert value.renders == 0


def test_asyncio_run_does_render_it_which_is_why_aio_run_exists() -> None:
    value = Counted()
    assert asyncio.run(_make(value)) is value
    assert value.renders >= 1  # CPython's signal.getsignal -> enum ValueError -> repr(handler partial -> task)


def test_run_raises_what_the_coroutine_raises() -> None:
    async def fail() -> None:
        raise LookupError("boom")

    try:
        aio.run(fail())
    except LookupError as exc:
        assert str(exc) == "boom"
    else:
        raise AssertionError("the error was swallowed")
