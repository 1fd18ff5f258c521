"""reconcile.aio.run: the coroutine's result comes back without asyncio.run's repr() of it at exit."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading

import pytest

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


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_run_uses_uvloop_when_installed() -> None:
    pytest.importorskip("uvloop")
    assert aio.run(_loop_module()) == "uvloop"


def test_run_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError (as on Windows)
    assert aio.run(_loop_module()).startswith("asyncio")


def test_to_thread_runs_blocking_work_meanwhile() -> None:
    """The LDAP and CSV sources read in `asyncio.to_thread` while other sources' requests proceed."""
    started = threading.Event()

    def blocking() -> str:
        started.set()
        return threading.current_thread().name

    async def both() -> tuple[str, bool]:
        name = asyncio.create_task(asyncio.to_thread(blocking))
        await asyncio.to_thread(started.wait, 10)
        return await name, started.is_set()

    name, ran = aio.run(both())
    assert ran and name != threading.current_thread().name


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="the runner handles Ctrl-C only where SIGINT has Python's default handler")
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_ctrl_c_cancels_the_coroutine_then_raises_keyboard_interrupt(loop: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    else:
        monkeypatch.setitem(sys.modules, "uvloop", None)
    cleaned: list[str] = []

    async def interrupted() -> None:
        asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cleaned.append(type(asyncio.get_running_loop()).__module__)  # the apply's journal is flushed here
            raise

    with pytest.raises(KeyboardInterrupt):
        aio.run(interrupted())
    assert len(cleaned) == 1 and cleaned[0].startswith(loop)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
