"""Shared pytest configuration: async backend, cassette location and scrubbing, long tests first."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Generator
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Everything that may carry a credential is dropped from recorded HTTP exchanges.
SECRET_HEADERS = ["authorization", "cookie", "set-cookie", "x-api-key", "x-atlassian-token"]
SECRET_FORM_FIELDS = ["password", "os_password", "atl_token", "token", "api_key", "client_secret"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in ("set-cookie", "date", "server"):
            del headers[name]
    return response


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "filter_headers": SECRET_HEADERS,
        "filter_post_data_parameters": SECRET_FORM_FIELDS,
        "filter_query_parameters": ["atl_token", "os_password"],
        "decode_compressed_response": True,
        "before_record_response": _scrub_response,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    return str(ROOT / "cassettes" / request.module.__name__.rsplit(".", 1)[-1])


def _weight(item: pytest.Item) -> int:
    """0 for the long tests (kill -9, `slow`), 1 for the property tests, 2 for the rest."""
    if item.get_closest_marker("kill") or item.get_closest_marker("slow"):
        return 0
    return 1 if getattr(getattr(item, "obj", None), "is_hypothesis_test", False) else 2


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle, which stays the order within each weight
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if getattr(config.option, "loadgroup", False):  # an xdist worker of `--dist loadgroup`
        lost = [item.nodeid for item in items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
        if lost:  # grouped tests would run on several workers at once, each with its own server on the same ports
            raise pytest.UsageError(
                f"--dist loadgroup did not group {lost[0]} (and {len(lost) - 1} more): this pytest and pytest-xdist "
                "do not work together (pytest-dev/pytest-xdist#1386); install the versions pyproject.toml asks for")
    # `--dist loadgroup` (the Makefile's) hands out tests in this order, alternately, as workers free up: long
    # ones last would leave one worker running them alone at the end (xdist_groups go first, largest first).
    items.sort(key=_weight)


# `make test` measures branch coverage (--cov, floors in scripts/coverage_floor.py) over the example-based tests of
# the planner, the apply engine and the command line, which drive every floored module. Under the tracer the other
# tests, which run simulators and servers in process, took twice as long, and added three lines of diff.py and five
# of apply.py to what these cover. Property tests (Hypothesis) and `slow` ones run untraced too: they doubled
# their CPU under the tracer, and a branch only they reached now has an example test of its own.
COVERAGE_TESTS = ("tests/core/", "tests/apply/", "tests/cli/")
UNTRACED_MARKS = ("hypothesis", "slow")


def traced(item: pytest.Item) -> bool:
    """Whether coverage measures `item` (see above)."""
    return item.nodeid.startswith(COVERAGE_TESTS) and not any(
        item.get_closest_marker(mark) for mark in UNTRACED_MARKS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    measuring = sys.modules.get("coverage")
    current = measuring.Coverage.current() if measuring is not None else None
    if current is None or traced(item):
        return (yield)
    current.stop()
    try:
        return (yield)
    finally:
        current.start()
