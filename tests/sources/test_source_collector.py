"""The cyclic collector's full passes wait while sources read (reconcile/collector.py)."""

from __future__ import annotations

import gc

import pytest

from reconcile.collector import PAUSED, full_collections_paused


@pytest.fixture(autouse=True)
def _threshold() -> object:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_full_passes_wait_within_and_the_threshold_comes_back_after() -> None:
    with full_collections_paused():
        assert gc.get_threshold() == (700, 10, PAUSED)  # young collections still run
    assert gc.get_threshold() == (700, 10, 10)


def test_sources_read_at_once_share_the_pause_until_the_last_ends() -> None:
    first, second = full_collections_paused(), full_collections_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[2] == PAUSED  # the other read is still under way
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_failed_read_restores_the_threshold() -> None:
    with pytest.raises(RuntimeError), full_collections_paused():
        raise RuntimeError("the read failed")
    assert gc.get_threshold() == (700, 10, 10)
