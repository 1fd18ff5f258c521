"""The LDAP source's pure parts: DN comparison, the group map, filter building (no server)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcile.errors import SourceError
from reconcile.sources.ldap.dn import dn_key, member_dn
from reconcile.sources.ldap.mapping import GroupMap
from reconcile.sources.ldap.source import in_chain_filter, wrap


@pytest.mark.parametrize(("a", "b"), [
    ("CN=Eng-Platform, OU=Groups, DC=example, DC=org", "cn=eng-platform,ou=groups,dc=example,dc=org"),
    ("cn=Smith\\, John,ou=people,dc=x", "CN=smith\\2C john, OU=People, DC=X"),  # \, and \2C are one character
    ("uid=a+cn=b,dc=x", "cn=B + uid=A,dc=x"),  # multi-valued RDN: order does not matter
    ("cn=evil*)(cn\\3D*,ou=g,dc=x", "cn=evil*)(cn=*,ou=g,dc=x"),  # slapd escapes '=' in values as \3D
    ("cn=caf\\C3\\A9,dc=x", "cn=CAFÉ,dc=x"),  # hex-escaped UTF-8
])
def test_equivalent_dns_have_one_key(a: str, b: str) -> None:
    assert dn_key(a) == dn_key(b)


@pytest.mark.parametrize(("a", "b"), [
    ("cn=a\\,b,dc=x", "cn=a,cn=b,dc=x"),  # an escaped comma is not a separator
    ("cn=alice,ou=people,dc=x", "cn=alice,ou=staff,dc=x"),
])
def test_different_dns_have_different_keys(a: str, b: str) -> None:
    assert dn_key(a) != dn_key(b)


NAME = st.text(alphabet="abcdeXYZ0189éÅ-_ .*()", min_size=1, max_size=12).map(str.strip).filter(bool)


@given(st.lists(st.tuples(st.sampled_from(["cn", "ou", "uid", "dc"]), NAME), min_size=1, max_size=5))
def test_case_spacing_and_escaping_never_change_the_key(rdns: list[tuple[str, str]]) -> None:
    plain = ",".join(f"{a}={v}" for a, v in rdns)
    shouted = " , ".join(f"{a.upper()} = {v.upper()}" for a, v in rdns)
    hexed = ",".join(f"{a}=" + "".join(f"\\{ord(c):02X}" if c == "." else c for c in v) for a, v in rdns)
    assert dn_key(plain) == dn_key(shouted) == dn_key(hexed) == dn_key(dn_key(plain))


def test_unique_member_suffix_is_dropped() -> None:
    assert member_dn("uid=bob,dc=x#'0101'B") == "uid=bob,dc=x"
    assert member_dn("cn=#hash,dc=x") == "cn=#hash,dc=x"


@pytest.mark.parametrize(("name", "expected"), [
    ("eng-platform", "confluence-eng-platform"),
    ("ENG-Docs", "confluence-eng-docs"),  # globs match case-insensitively; names are lower-cased
    ("staff", "confluence-users"),
    ("team x docs", "x-docs"),  # two '*': the n-th star of the pattern gets the n-th capture
    ("ops-b", "cyc"),
    ("ops-c", None),  # `[ab]` is a class
    ("hr", None),  # unmapped: ignored
])
def test_group_map_first_match_wins_and_stars_carry_over(name: str, expected: str | None) -> None:
    group_map = GroupMap.parse((("eng-*", "confluence-eng-*"), ("staff", "confluence-users"),
                                ("team * *", "*-*"), ("ops-[ab]", "cyc"), ("eng-docs", "never-reached")),
                               where="corp")
    assert group_map.target(name) == expected


def test_an_empty_map_keeps_names() -> None:
    assert GroupMap.parse((), where="corp").target("Eng Team") == "eng team"


def test_a_pattern_with_more_stars_than_the_glob_is_refused() -> None:
    with pytest.raises(SourceError, match="the pattern has 3 '\\*' but the glob captures 2"):
        GroupMap.parse((("a*b*", "x*y*z*"),), where="corp")


def test_filters_are_wrapped_and_values_escaped() -> None:
    assert wrap("objectClass=person") == "(objectClass=person)"
    assert wrap(" (uid=*) ") == "(uid=*)"
    assert in_chain_filter("(objectClass=user)", "CN=a\\,b (x)*,DC=x") == (
        "(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:=CN=a\\5c,b \\28x\\29\\2a,DC=x))")
