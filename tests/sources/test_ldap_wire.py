"""Search entries decoded from their BER bytes (reconcile/sources/ldap/wire.py) read exactly as ldap3's own
decoder reads them: hand-encoded messages of every shape, and every entry of the test slapd."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ldap3 import BASE, SUBTREE
from ldap3.operation.search import search_result_entry_response_to_dict_fast
from ldap3.strategy.sync import SyncStrategy
from ldap3.utils.asn1 import decode_message_fast

from reconcile.sources.ldap.client import LdapClient
from reconcile.sources.ldap.dn import _strip_ava, dn_key
from reconcile.sources.ldap.wire import Entry, EntryStrategy, decode_entry
from tests.sources.test_ldap_openldap import source_config
from tests.support.ldap_servers import Slapd


def tlv(tag: int, body: bytes) -> bytes:
    """One BER element, definite length (long form from 128 bytes)."""
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def entry_message(message_id: int, dn: bytes, attributes: list[tuple[bytes, list[bytes]]]) -> bytes:
    mid = message_id.to_bytes(max(1, (message_id.bit_length() + 8) // 8), "big", signed=True)
    partials = b"".join(tlv(0x30, tlv(0x04, name) + tlv(0x31, b"".join(tlv(0x04, v) for v in values)))
                        for name, values in attributes)
    return tlv(0x30, tlv(0x02, mid) + tlv(0x64, tlv(0x04, dn) + tlv(0x30, partials)))


def via_ldap3(message: bytes) -> tuple[int, Entry]:
    """What the client made of an entry before wire.py: ldap3's fast decoder, then LdapClient._entries."""
    decoded = decode_message_fast(message)
    item = search_result_entry_response_to_dict_fast(decoded["payload"], None, None, False)
    item["type"] = "searchResEntry"
    return decoded["messageID"], LdapClient._entries([item])[0]


BYTES = st.binary(max_size=40) | st.text(max_size=30).map(str.encode) | st.binary(min_size=120, max_size=400)
NAME = st.sampled_from([b"cn", b"CN", b"mail", b"memberOf", b"member;range=0-1499", b"uid"]) | st.binary(
    min_size=1, max_size=12)


@given(st.integers(1, 2**31 - 1), BYTES,
       st.lists(st.tuples(NAME, st.lists(BYTES, min_size=1, max_size=5)), max_size=6))
def test_an_entry_decodes_as_ldap3_decodes_it(message_id: int, dn: bytes,
                                             attributes: list[tuple[bytes, list[bytes]]]) -> None:
    message = entry_message(message_id, dn, attributes)
    assert decode_entry(message) == via_ldap3(message)


def test_long_values_empty_value_sets_and_undecodable_bytes() -> None:
    big = b"x" * 70_000  # a three-byte length
    message = entry_message(7, b"cn=Big,dc=x", [(b"Member", [big, b"\xff\xfeok"]), (b"empty", [])])
    assert decode_entry(message) == (7, Entry("cn=Big,dc=x", {"member": [big.decode(), "\ufffd\ufffdok"],
                                                               "empty": []}))


def test_other_and_malformed_messages_are_left_to_ldap3() -> None:
    done = tlv(0x30, tlv(0x02, b"\x05") + tlv(0x65, tlv(0x0A, b"\x00") + tlv(0x04, b"") + tlv(0x04, b"")))
    assert decode_entry(done) is None  # searchResDone: ldap3 reads results and their controls
    whole = entry_message(3, b"uid=a,dc=x", [(b"cn", [b"A"])])
    assert decode_entry(whole) is not None
    for cut in range(1, len(whole)):
        assert decode_entry(whole[:cut]) is None  # truncated anywhere: never a partial entry
    wrong_value_tag = whole.replace(tlv(0x04, b"A"), tlv(0x0C, b"A"))
    assert decode_entry(wrong_value_tag) is None


@given(st.text(alphabet="aB=, \t\u00a0\u3000xY1é-.", max_size=40))
def test_the_plain_dn_shortcut_keys_as_the_split_does(dn: str) -> None:
    assert dn_key(dn) == ",".join(_strip_ava(rdn) for rdn in dn.lower().split(","))


SEARCHES = [
    ("dc=example,dc=org", "(objectClass=*)", ["*", "memberOf"], SUBTREE),  # every entry, every attribute
    ("ou=bulkgroups,dc=example,dc=org", "(cn=bulk-all)", ["member"], SUBTREE),  # 1,200 values
    ("", "(objectClass=*)", ["supportedControl", "namingContexts"], BASE),  # the root DSE
]


@pytest.mark.ldap
@pytest.mark.xdist_group("slapd")
@pytest.mark.parametrize(("base", "search_filter", "attributes", "scope"), SEARCHES)
def test_every_slapd_entry_reads_as_with_ldap3s_decoder(slapd: Slapd, base: str, search_filter: str,
                                                        attributes: list[str],
                                                        scope: Literal["BASE", "LEVEL", "SUBTREE"]) -> None:
    found: list[list[Entry]] = []
    strategies: tuple[type[SyncStrategy], ...] = (EntryStrategy, SyncStrategy)
    for strategy in strategies:
        with LdapClient(source_config(slapd)) as client:
            assert type(client.conn.strategy) is EntryStrategy
            client.conn.strategy.__class__ = strategy  # type: ignore[assignment]  # SyncStrategy: ldap3 alone
            assert client.conn.search(base, search_filter, scope, attributes=attributes)
            response = client.conn.response or []
            entries = [r for r in response if r["type"] == "searchResEntry"]
            assert entries and all(("entry" in r) == (strategy is EntryStrategy) for r in entries)
            found.append(LdapClient._entries(response))
    assert found[0] == found[1]


def test_an_entry_left_to_ldap3_with_an_empty_value_set_reads_as_no_values() -> None:
    item = {"type": "searchResEntry", "dn": "cn=x,dc=y", "raw_attributes": {"Member": None, "cn": [b"x"]}}
    assert LdapClient._entries([item]) == [Entry("cn=x,dc=y", {"member": [], "cn": ["x"]})]  # ldap3's None
