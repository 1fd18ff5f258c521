"""run_async never formats its result: Python 3.11's runner reprs the main task when it restores SIGINT."""

from __future__ import annotations

from reconcile.cli.application import run_async


class Costly:
    reprs = 0

    def __repr__(self) -> str:
        Costly.reprs += 1  # a 100,000-user state's repr costs seconds of CPU
        return "Costly()"


async def _make() -> Costly:
    return Costly()


def test_the_result_is_returned_and_never_repred() -> None:
    Costly.reprs = 0
    assert isinstance(run_async(_make()), Costly)
    assert Costly.reprs == 0
