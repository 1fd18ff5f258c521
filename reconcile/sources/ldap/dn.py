"""Distinguished names in one comparable form, so that `member` values match entry DNs.

Directories return DNs as they were written (case, spacing, escapes differ); comparisons use `dn_key`.
"""

from __future__ import annotations

import re
from functools import lru_cache

_UID_SUFFIX = re.compile(r"#'[01]*'B$")  # uniqueMember's optional "#'0101'B" unique identifier
_SPECIAL = set(',+"\\')  # re-escaped by the full parse; the fast path never sees them unescaped
# RDNs `type=value` with no whitespace, escapes, quotes or `+`: the key is the lower-cased DN itself
_PLAIN = re.compile(r'[^,=\s\\"+]*=[^,\s\\"+]*(?:,[^,=\s\\"+]*=[^,\s\\"+]*)*')


def dn_key(dn: str) -> str:
    """A case-insensitive canonical form of `dn` (attribute types and values lower-cased)."""
    low = dn.lower()
    if _PLAIN.fullmatch(low):
        return low  # what the split below returns for it, at a fraction of the cost
    if "\\" not in dn and '"' not in dn and "+" not in dn:
        return ",".join(_strip_ava(rdn) for rdn in low.split(","))
    return _slow_key(dn)


def member_dn(value: str) -> str:
    """A `member`/`uniqueMember` value as a DN (drops uniqueMember's `#'…'B` suffix)."""
    if value.endswith("'B"):
        return _UID_SUFFIX.sub("", value)
    return value


def _strip_ava(rdn: str) -> str:
    attribute, _, value = rdn.partition("=")
    return f"{attribute.strip()}={value.strip()}"


@lru_cache(maxsize=65536)
def _slow_key(dn: str) -> str:
    """Full parse: unescape `\\XX` and `\\c`, strip unescaped spaces, then re-escape uniformly."""
    rdns: list[str] = []
    parts: list[str] = []  # attribute=value pieces of the current RDN
    buf: list[str] = []
    raw: list[bytes] = []  # pending hex-escaped bytes (UTF-8 sequences)
    i, n = 0, len(dn)
    quoted = False

    def flush_raw() -> None:
        if raw:
            buf.extend("\0" + ch for ch in b"".join(raw).decode("utf-8", errors="replace"))
            raw.clear()

    def end_piece() -> None:
        flush_raw()
        text = "".join(buf).strip()
        buf.clear()
        attr, _, value = text.partition("=")
        value = "".join("\\" + c if c in _SPECIAL else c for c in value.strip())
        parts.append(f"{attr.strip().lower()}={value.lower()}")

    while i < n:
        c = dn[i]
        if c == "\\" and i + 1 < n:
            pair = dn[i + 1 : i + 3]
            if len(pair) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in pair):
                raw.append(bytes.fromhex(pair))
                i += 3
                continue
            flush_raw()
            buf.append("\0" + dn[i + 1])  # an escaped character is never a separator or strippable
            i += 2
            continue
        flush_raw()
        if c == '"':
            quoted = not quoted
        elif c in ",;+" and not quoted:
            end_piece()
            if c != "+":
                rdns.append("+".join(sorted(parts)))
                parts.clear()
        else:
            buf.append(c)
        i += 1
    end_piece()
    rdns.append("+".join(sorted(parts)))
    return ",".join(rdns).replace("\0", "")
