"""The LDAP bench row at toy size: the reader's own peak RSS and CPU, slapd's CPU, the read's digest."""

from __future__ import annotations

import re

import pytest

from bench import ldap_bench
from tests.support.ldap_servers import require_slapd

pytestmark = pytest.mark.ldap


def test_the_peak_rss_is_the_readers_own_not_the_bench_drivers() -> None:
    require_slapd()
    ballast = bytearray(400 * 1024 * 1024)  # the driver's peak, as after the plan sections of `make bench`
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1  # touched: resident
    row = ldap_bench.run(users=300, groups=20, page_size=100)
    del ballast
    # a child's ru_maxrss starts at its parent's peak (Linux keeps it across fork + exec): the row read
    # at least 400 MB for a reader of a few tens of MB
    assert 0 < row["peak_rss_mb"] < 200
    assert (row["users"], row["groups"], row["memberships"]) == (300, 20, 1200)
    assert re.fullmatch(r"[0-9a-f]{64}", row["digest"])
    assert row["cpu_seconds"] > 0 and row["server_cpu_seconds"] >= 0


def test_the_same_directory_reads_to_the_same_digest() -> None:
    require_slapd()
    first, second = (ldap_bench.run(users=200, groups=8, page_size=page) for page in (50, 1000))
    assert first["digest"] == second["digest"]  # page size changes requests, never the desired state
