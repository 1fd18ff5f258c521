"""errors.py holds every ReconcileError subclass, and its drawn tree shows each one, its parent and exit code."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import reconcile
from reconcile import errors
from reconcile.errors import PlanFileError, ReconcileError
from reconcile.plan import Plan

LINE = re.compile(r"^(?P<indent>[\s│├└─]*)(?P<name>[A-Z]\w+)\s+exit (?P<code>\d+)")


def _all_modules() -> None:
    for info in pkgutil.walk_packages(reconcile.__path__, "reconcile."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)


def _subclasses(cls: type[ReconcileError]) -> set[type[ReconcileError]]:
    found: set[type[ReconcileError]] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def _drawing() -> dict[str, tuple[str | None, int]]:
    """name -> (parent name, exit code), read from the tree drawn in the errors.py docstring."""
    assert errors.__doc__ is not None
    drawn: dict[str, tuple[str | None, int]] = {}
    stack: list[tuple[int, str]] = []
    for line in errors.__doc__.splitlines():
        match = LINE.match(line)
        if match is None:
            continue
        column = len(match["indent"])
        while stack and stack[-1][0] >= column:
            stack.pop()
        drawn[match["name"]] = (stack[-1][1] if stack else None, int(match["code"]))
        stack.append((column, match["name"]))
    return drawn


def test_every_reconcile_error_is_defined_in_errors_py_and_drawn_with_its_parent_and_exit_code() -> None:
    _all_modules()
    drawn = _drawing()
    classes: set[type[ReconcileError]] = {ReconcileError, *_subclasses(ReconcileError)}
    outside = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes if c.__module__ != "reconcile.errors")
    assert outside == [], "define these in reconcile/errors.py and draw them in its docstring"
    for cls in classes:
        assert cls.__name__ in drawn, f"{cls.__name__} is missing from the tree in errors.py's docstring"
        parent, code = drawn[cls.__name__]
        expected_parent = None if cls is ReconcileError else cls.__bases__[0].__name__
        assert (parent, code) == (expected_parent, cls.exit_code), cls.__name__
    assert set(drawn) == {c.__name__ for c in classes}, "the drawing names a class that does not exist"


@pytest.mark.parametrize("text", ["[]", '{"format_version": 1}', "not json"])
def test_a_file_that_is_not_a_plan_raises_plan_file_error(text: str) -> None:
    with pytest.raises(PlanFileError, match="not a reconcile plan file"):
        Plan.loads(text, source="p.json")
