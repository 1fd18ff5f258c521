"""Progress bars on a terminal (rich): fetch and apply, with counts, elapsed time and ETA; silent otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from reconcile.cli.application import Globals, out


class Bars:
    """rich progress bars on a terminal (fetch and apply); silent otherwise. Action lines go through it."""

    def __init__(self, enabled: bool, *, color: bool = True) -> None:
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                      transient=True,
                                      # --no-color (and NO_COLOR) cover the bars too: no style at all
                                      console=Console(color_system="auto" if color else None,
                                                      no_color=not color, highlight=False))

    @property
    def enabled(self) -> bool:
        return self._progress is not None

    def __enter__(self) -> Bars:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop drawing while the operator reads the plan and answers."""
        if self._progress is None:
            yield
            return
        self._progress.stop()
        try:
            yield
        finally:
            self._progress.start()

    def update(self, what: str, done: int, total: int | None) -> None:
        """The targets' `progress(what, done, total)` callback (total None while unknown)."""
        if self._progress is None:
            return
        task = self._tasks.get(what)
        if task is None:
            task = self._tasks[what] = self._progress.add_task(what, total=total)
        self._progress.update(task, completed=done, total=total)

    def clear(self) -> None:
        """Drop the finished fetch bars before the apply bar starts."""
        if self._progress is not None:
            for task in self._tasks.values():
                self._progress.remove_task(task)
        self._tasks.clear()

    def counting(self, what: str, total: int, report: Callable[[str], None] | None) -> Callable[[str], None]:
        """A report callback that also advances a bar of `total` steps."""
        done = 0
        self.update(what, 0, total)

        def step(text: str) -> None:
            nonlocal done
            done += 1
            self.update(what, done, total)
            if report is not None:
                report(text)

        return step

    def line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            out(text)


def bars_for(g: Globals) -> Bars:
    return Bars(not g.quiet and sys.stdout.isatty() and sys.stderr.isatty(), color=g.color)
