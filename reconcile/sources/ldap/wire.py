"""Search entries decoded straight from their BER bytes into `Entry` values (`EntryStrategy`).

ldap3 decodes each entry twice (raw and formatted, a config lookup per value): most of a read's CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ldap3.core.exceptions import LDAPExtensionError, LDAPSocketReceiveError
from ldap3.strategy.base import RESPONSE_COMPLETE, SESSION_TERMINATED_BY_SERVER, TRANSACTION_ERROR
from ldap3.strategy.sync import SyncStrategy
from ldap3.utils.asn1 import decode_message_fast
from ldap3.utils.conv import to_unicode

_SEARCH_RES_ENTRY = 0x64  # [APPLICATION 4] constructed
_SEQUENCE, _SET, _OCTET_STRING, _INTEGER = 0x30, 0x31, 0x04, 0x02
_PARTIAL = ("searchResEntry", "searchResRef", "intermediateResponse")  # more messages follow these


@dataclass(frozen=True, slots=True)
class Entry:
    """One search result: its DN and its attributes (lower-cased names -> decoded values)."""

    dn: str
    attributes: dict[str, list[str]]

    def first(self, attribute: str) -> str | None:
        values = self.attributes.get(attribute.lower())
        return values[0] if values else None

    def all(self, attribute: str) -> list[str]:
        return self.attributes.get(attribute.lower(), [])


class _Malformed(Exception):
    """Not a searchResEntry this decoder reads: ldap3's decoder gets the message instead."""


def _header(data: bytes, i: int, tag: int) -> tuple[int, int]:
    """(start, end) of the value of the element at `i`, which must have `tag`."""
    if data[i] != tag:
        raise _Malformed
    n = data[i + 1]
    if n < 0x80:
        return i + 2, i + 2 + n
    k = n & 0x7F
    start = i + 2 + k
    return start, start + int.from_bytes(data[i + 2 : start], "big")


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # as ldap3 does: AD may send DNs in another encoding
        return str(to_unicode(raw, from_server=True))


def decode_entry(data: bytes) -> tuple[int, Entry] | None:
    """(message id, entry) of an LDAPMessage holding a searchResEntry; None for any other message.

    Values are decoded as UTF-8 (undecodable bytes replaced), attribute names lower-cased, the DN as
    ldap3 decodes it; an entry that does not parse exactly is left to ldap3 (None).
    """
    try:
        start, end = _header(data, 0, _SEQUENCE)
        id_start, id_end = _header(data, start, _INTEGER)
        message_id = int.from_bytes(data[id_start:id_end], "big", signed=True)
        if data[id_end] != _SEARCH_RES_ENTRY:
            return None
        op_start, op_end = _header(data, id_end, _SEARCH_RES_ENTRY)
        dn_start, dn_end = _header(data, op_start, _OCTET_STRING)
        dn = _text(data[dn_start:dn_end])
        i, attrs_end = _header(data, dn_end, _SEQUENCE)
        if attrs_end != op_end or op_end > end or end > len(data):
            raise _Malformed
        attributes: dict[str, list[str]] = {}
        while i < attrs_end:
            a_start, a_end = _header(data, i, _SEQUENCE)
            t_start, t_end = _header(data, a_start, _OCTET_STRING)
            j, v_end = _header(data, t_end, _SET)
            if v_end != a_end:
                raise _Malformed
            values: list[str] = []
            while j < v_end:  # the hot loop: one iteration per value, inlined
                if data[j] != _OCTET_STRING:
                    raise _Malformed
                n = data[j + 1]
                if n < 0x80:
                    j += 2
                else:
                    k = n & 0x7F
                    n = int.from_bytes(data[j + 2 : j + 2 + k], "big")
                    j += 2 + k
                values.append(data[j : j + n].decode("utf-8", errors="replace"))
                j += n
            if j != v_end:
                raise _Malformed
            attributes[_text(data[t_start:t_end]).lower()] = values  # a repeated name: the last wins, as in ldap3
            i = a_end
        if i != attrs_end:
            raise _Malformed
    except (_Malformed, IndexError):
        return None
    return message_id, Entry(dn, attributes)


class EntryStrategy(SyncStrategy):
    """ldap3's synchronous strategy with `decode_entry` for search entries (SyncStrategy._get_response)."""

    def _get_response(self, message_id: int, timeout: float | None) -> Any:
        responses: list[Any] = []  # response dicts, then RESPONSE_COMPLETE
        complete = False
        while not complete:
            messages = self.receiving()  # type: ignore[no-untyped-call]
            if not messages:
                return SESSION_TERMINATED_BY_SERVER
            for message in messages:
                if not message:
                    continue
                if self.connection.usage:
                    self.connection._usage.update_received_message(len(message))
                decoded = decode_entry(message)
                if decoded is not None and decoded[0] == message_id:
                    responses.append({"type": "searchResEntry", "entry": decoded[1]})
                    continue
                ldap_resp = decode_message_fast(message)  # type: ignore[no-untyped-call]
                response = self.decode_response_fast(ldap_resp)  # type: ignore[no-untyped-call]
                received = int(ldap_resp["messageID"])
                if received == message_id:
                    responses.append(response)
                    complete = complete or response["type"] not in _PARTIAL
                elif received == 0:  # an unsolicited notification (RFC 4511 4.4)
                    if response["responseName"] == "1.3.6.1.4.1.1466.20036":  # notice of disconnection
                        return SESSION_TERMINATED_BY_SERVER
                    if response["responseName"] == "2.16.840.1.113719.1.27.103.4":  # Novell transaction error
                        return TRANSACTION_ERROR
                    self.connection.last_error = "unknown unsolicited notification from server"
                    raise LDAPSocketReceiveError(self.connection.last_error)
                elif response["type"] == "extendedResp":
                    self.connection.last_error = "multiple extended responses to a single extended request"
                    raise LDAPExtensionError(self.connection.last_error)
                else:
                    self.connection.last_error = "invalid messageId received"
                    raise LDAPSocketReceiveError(self.connection.last_error)
        responses.append(RESPONSE_COMPLETE)
        return responses

