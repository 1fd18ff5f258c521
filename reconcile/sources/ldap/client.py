"""The LDAP connection of a source: TLS, bind, paged searches with checked results, ranged values.

Every ldap3 failure leaves this module as an errors.SourceError that names the source, the server
and what to do next; result codes are checked on every page (ldap3 never raises sizeLimitExceeded).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core import exceptions as lx
from ldap3.strategy.sync import SyncStrategy

from reconcile.errors import SourceError
from reconcile.settings import LdapSourceSettings
from reconcile.sources.ldap.wire import Entry, EntryStrategy

log = logging.getLogger(__name__)

PAGED_RESULTS = "1.2.840.113556.1.4.319"  # RFC 2696 simple paged results control
AD_CAPABILITY = "1.2.840.113556.1.4.800"  # LDAP_CAP_ACTIVE_DIRECTORY_OID in supportedCapabilities
RANGE_STEP = 1500  # AD's default MaxValRange: values per ranged request
_RANGED = re.compile(r"^(?P<attr>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)
_T = TypeVar("_T")

# result code -> (what it means, what to do next)
_RESULT_HINTS: dict[int, tuple[str, str]] = {
    3: ("time limit exceeded", "narrow the filter or raise the server's time limit for the bind account"),
    4: ("size limit exceeded: the server stopped returning entries",
        "raise the server's size limit for the bind account (OpenLDAP: `limits dn.exact=<bind dn> "
        "size.prtotal=unlimited`; AD: MaxPageSize) or narrow the filter; a partial list is never used"),
    11: ("administrative limit exceeded", "raise the server's limits for the bind account or narrow the filter"),
    12: ("the server does not support a critical control (paged results?)", "check the server supports RFC 2696"),
    32: ("no such object", "check the base DN exists and the bind account may read it"),
    34: ("invalid DN syntax", "check the base DN is a valid DN"),
    49: ("invalid credentials", "check bind.dn and the bind password"),
    50: ("insufficient access rights", "grant the bind account read access"),
    53: ("unwilling to perform", "AD refuses simple binds over plain ldap:// by default: use ldaps:// or start_tls"),
    8: ("stronger authentication required", "use ldaps:// or start_tls: true"),
    10: ("referral: the base DN is not held by this server", "point the source at the server holding the base DN"),
}


@dataclass(frozen=True, slots=True)
class RootDse:
    supported_capabilities: frozenset[str]
    forest_functionality: str | None
    vendor: str | None

    @property
    def is_active_directory(self) -> bool:
        return self.forest_functionality is not None or AD_CAPABILITY in self.supported_capabilities


class LdapClient:
    """A bound, read-only connection for one source. Use as a context manager."""

    def __init__(self, config: LdapSourceSettings) -> None:
        self.config = config
        parts = urlsplit(config.url)
        scheme = parts.scheme.lower()
        if scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise SourceError(f"{self.where}: url {config.url!r} is not ldap://host[:port] or ldaps://host[:port]")
        if scheme == "ldaps" and config.start_tls:
            raise SourceError(f"{self.where}: start_tls applies to ldap:// URLs; ldaps:// is TLS already",
                              hint="drop start_tls, or use an ldap:// URL")
        self.host = parts.hostname
        self.use_ssl = scheme == "ldaps"
        try:
            self.port = parts.port or (636 if self.use_ssl else 389)
        except ValueError:
            raise SourceError(f"{self.where}: url {config.url!r} has an invalid port") from None
        self.address = f"{self.host}:{self.port}"
        self._conn: Connection | None = None

    @property
    def where(self) -> str:
        origin = f" ({self.config.origin})" if self.config.origin else ""
        return f"ldap source {self.config.name!r}{origin}"

    # ----------------------------------------------------------------------------- connect and bind

    def __enter__(self) -> LdapClient:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        cfg = self.config
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=cfg.ca_file, version=None)
        server = Server(self.host, port=self.port, use_ssl=self.use_ssl, tls=tls, get_info=NONE,
                        connect_timeout=cfg.timeout)
        password = cfg.bind_password.reveal() if cfg.bind_password else None
        conn = Connection(server, user=cfg.bind_dn, password=password, auto_bind=False, read_only=True,
                          raise_exceptions=False, receive_timeout=max(1, math.ceil(cfg.timeout)), auto_referrals=False,
                          auto_range=False, return_empty_attributes=False, check_names=False)
        if type(conn.strategy) is SyncStrategy:  # always, as built above; the check guards an ldap3 change
            conn.strategy.__class__ = EntryStrategy  # search entries decoded by wire.decode_entry
        self._conn = conn
        self._call(conn.open, doing="connecting")
        if cfg.start_tls and not (self._call(conn.start_tls, doing="starting TLS") and conn.tls_started):
            raise SourceError(f"{self.where}: StartTLS with {self.address} was not established; "
                              "refusing to bind without TLS", hint="check the server's TLS setup, or use ldaps://")
        if not self._call(conn.bind, doing="binding"):
            raise self._result_error(conn.result, doing=f"binding as {cfg.bind_dn or 'anonymous'}")
        log.debug("%s: bound to %s as %s", self.where, self.address, cfg.bind_dn or "anonymous")

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(lx.LDAPException):  # closing a broken connection: nothing left to do
                self._conn.unbind()
            self._conn = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("LdapClient used outside `with`")
        return self._conn

    # ------------------------------------------------------------------------------------- reading

    def root_dse(self) -> RootDse:
        attrs = ["supportedCapabilities", "forestFunctionality", "vendorName"]
        entries = self._search_once("", "(objectClass=*)", attrs, scope=BASE, what="the root DSE")
        entry = entries[0] if entries else Entry("", {})
        return RootDse(frozenset(entry.all("supportedCapabilities")), entry.first("forestFunctionality"),
                       entry.first("vendorName"))

    def search(self, base: str, search_filter: str, attributes: Sequence[str], *, what: str) -> Iterator[Entry]:
        """Every entry under `base` matching the filter, page by page; any non-success result raises."""
        conn = self.conn
        cookie: bytes | None = None
        pages = 0
        while True:
            # search() returns False for "no entries" as for an error: the result code tells which
            self._call(
                lambda page_cookie=cookie: conn.search(  # type: ignore[misc]
                    base, search_filter, SUBTREE, attributes=list(attributes),
                    paged_size=self.config.page_size, paged_cookie=page_cookie),
                doing=f"searching {what}", search_filter=search_filter,
            )
            result = conn.result
            if result.get("result", 0) != 0:
                raise self._result_error(result, doing=f"searching {what} under {base!r}", base=base)
            page = self._entries(conn.response)
            pages += 1
            control = (result.get("controls") or {}).get(PAGED_RESULTS) or {}
            cookie = (control.get("value") or {}).get("cookie") or None
            for entry in page:
                self._complete_ranges(entry)
            yield from page
            if not cookie:
                log.debug("%s: %s: %d page(s)", self.where, what, pages)
                return

    def _search_once(self, base: str, search_filter: str, attributes: Sequence[str], *,
                     scope: Literal["BASE", "LEVEL", "SUBTREE"],
                     what: str) -> list[Entry]:
        conn = self.conn
        self._call(lambda: conn.search(base, search_filter, scope, attributes=list(attributes)),
                   doing=f"reading {what}", search_filter=search_filter)
        if conn.result.get("result", 0) != 0:
            raise self._result_error(conn.result, doing=f"reading {what}", base=base)
        return self._entries(conn.response)

    def _complete_ranges(self, entry: Entry) -> None:
        """Follow `attr;range=low-high` values (AD, > MaxValRange values) until `high` is `*`."""
        for key in [k for k in entry.attributes if ";range=" in k]:
            match = _RANGED.match(key)
            if match is None:
                continue
            values = entry.attributes.pop(key)
            attribute, high = match["attr"].lower(), match["high"]
            while high != "*":
                low = int(high) + 1
                requested = f"{attribute};range={low}-{low + RANGE_STEP - 1}"
                found = self._search_once(entry.dn, "(objectClass=*)", [requested], scope=BASE,
                                          what=f"{attribute} values {low}+ of {entry.dn!r}")
                more = found[0].attributes if found else {}
                next_key = next((k for k in more if _RANGED.match(k)), None)
                if next_key is None:  # the server ended the list without saying "*"
                    break
                values.extend(more[next_key])
                high = _RANGED.match(next_key)["high"]  # type: ignore[index]
            entry.attributes.setdefault(attribute, []).extend(values)

    @staticmethod
    def _entries(response: list[dict[str, Any]] | None) -> list[Entry]:
        out = []
        for item in response or ():
            if item.get("type") != "searchResEntry":
                continue  # searchResRef: referrals are not followed
            entry = item.get("entry")
            if entry is not None:  # decoded by wire.decode_entry (every well-formed entry)
                out.append(entry)
                continue
            attrs = {
                name.lower(): [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)
                               for v in values or ()]  # ldap3 gives None for an empty value set
                for name, values in item["raw_attributes"].items()
            }
            out.append(Entry(item["dn"], attrs))
        return out

    # -------------------------------------------------------------------------------------- errors

    def _call(self, operation: Callable[[], _T], *, doing: str, search_filter: str | None = None) -> _T:
        try:
            return operation()
        except lx.LDAPInvalidFilterError as exc:
            raise SourceError(f"{self.where}: invalid LDAP filter {search_filter!r} ({self._scrub(exc)})",
                              hint="check the filter's parentheses and escaping, e.g. (&(objectClass=person)(uid=*))"
                              ) from None
        except lx.LDAPStartTLSError as exc:
            text = self._scrub(exc)
            if text.startswith("startTLS failed"):  # the server answered the StartTLS request with an error
                raise SourceError(f"{self.where}: {self.address} refused StartTLS ({text}); nothing was sent in clear",
                                  hint="enable TLS on the server, or use its ldaps:// port") from None
            raise self._tls_error(exc, doing) from None
        except (lx.LDAPCertificateError, ssl.SSLError) as exc:
            raise self._tls_error(exc, doing) from None
        except lx.LDAPSocketOpenError as exc:
            text = self._scrub(exc)
            if "ssl" in text.lower() or "certificate" in text.lower():
                raise self._tls_error(exc, doing) from None
            if "timed out" in text.lower():
                raise SourceError(f"{self.where}: {doing}: {self.address} did not answer within "
                                  f"{self.config.timeout:g} s", hint=self._reach_hint()) from None
            raise SourceError(f"{self.where}: cannot reach {self.address} ({self.config.url}): {text}",
                              hint=self._reach_hint()) from None
        except lx.LDAPSocketReceiveError as exc:
            text = self._scrub(exc)
            if "timed out" in text.lower() or "timeout" in text.lower():
                raise SourceError(f"{self.where}: {doing}: no answer from {self.address} within "
                                  f"{self.config.timeout:g} s (timeout)",
                                  hint="the server is slow or stuck: raise `timeout`, or check the server") from None
            raise SourceError(f"{self.where}: {doing}: connection to {self.address} lost: {text}",
                              hint="retry; if it persists, check the server's logs") from None
        except lx.LDAPException as exc:
            raise SourceError(f"{self.where}: {doing} on {self.address} failed: {self._scrub(exc)}",
                              hint="check the source's url, bind and TLS settings") from None

    def _reach_hint(self) -> str:
        return f"check the url, that the server runs and that {self.address} is reachable from here (firewall, DNS)"

    def _tls_error(self, exc: Exception, doing: str) -> SourceError:
        where = "ca_file " + repr(self.config.ca_file) if self.config.ca_file else "the system trust store"
        return SourceError(
            f"{self.where}: {doing}: TLS verification of {self.address} failed against {where}: {self._scrub(exc)}",
            hint="set `ca_file:` to the CA that signed the server's certificate, and use the host name the "
                 "certificate was issued for; verification cannot be turned off",
        )

    def _result_error(self, result: dict[str, Any], *, doing: str, base: str | None = None) -> SourceError:
        code = int(result.get("result", -1))
        meaning, hint = _RESULT_HINTS.get(code, (str(result.get("description", "error")), "see the server's log"))
        detail = self._scrub(str(result.get("message") or "").strip())
        subject = f" (base {base!r})" if base is not None and repr(base) not in doing else ""
        text = f"{self.where}: {doing} on {self.address}: {meaning}{subject} [LDAP result {code}]"
        return SourceError(text + (f": {detail}" if detail else ""), hint=hint)

    def _scrub(self, value: object) -> str:
        """The text of an exception (ldap3 nests one-element tuples in args) without the bind password."""
        while True:
            args = value.args if isinstance(value, BaseException) else value if isinstance(value, tuple) else ()
            if len(args) != 1:
                break
            value = args[0]
        text = str(value)
        secret = self.config.bind_password.reveal() if self.config.bind_password else ""
        return text.replace(secret, "<secret>") if secret else text
