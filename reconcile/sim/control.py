"""The simulator's run-time knobs: latency, injected faults, rate limits, and the request log.

All of them are settable at start (scenario `sim:` section, `reconcile sim` options) and at run time
(`PUT /_sim/faults`); the middleware reads them on every request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

SECRET_FIELDS = frozenset({"password", "os_password", "token", "api_key", "apikey", "secret", "client_secret",
                           "client_assertion", "assertion", "access_token"})


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: `max` tokens, refilled by `fill_rate` tokens every `interval_seconds`.

    This is Confluence DC's own model (admin "Requests allowed" per interval, "Max requests"), and
    the simulator applies it to Cloud paths too (with Cloud's header names).
    """

    fill_rate: int = 100
    interval_seconds: int = 1
    max: int = 100

    @property
    def per_second(self) -> float:
        return self.fill_rate / self.interval_seconds


@dataclass(frozen=True, slots=True)
class Faults:
    """What goes wrong, and how often. Rates are probabilities per request (0..1).

    `error_rate`: answer with one of `error_statuses` before the request is processed.
    `reset_rate`: drop the connection; half of these happen before the request is processed and
    half after it (the change is made but the client never sees the response).
    `burst_429_every`: after every N requests, answer the next `burst_429_length` with 429 and
    `Retry-After: burst_retry_after`.
    `paths`: only requests whose path starts with one of these prefixes are affected.

    Variants the real services produce (not random; each off by default):
    `retry_after_header: false`: 429s carry no Retry-After (nor a Cloud reset): the client must
    back off on its own schedule. `reset_precision: minutes`: Cloud's X-RateLimit-Reset with the
    seconds zeroed. `links_next`: how Cloud pages name the next one: `cursor` (an opaque cursor,
    absent on the last page), `url` (a full URL carrying `cursor=`) or `null` (a cursor, and
    `"next": null` on the last page). `json_charset`: JSON answered as
    `application/json;charset=UTF-8`. `forget_finished_tasks`: a DC long task answers 404 once done.
    """

    error_rate: float = 0.0
    reset_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503)
    burst_429_every: int = 0
    burst_429_length: int = 0
    burst_retry_after: int = 1
    paths: tuple[str, ...] = ("/",)
    retry_after_header: bool = True
    reset_precision: str = "seconds"  # seconds | minutes
    links_next: str = "cursor"  # cursor | url | null
    json_charset: bool = False
    forget_finished_tasks: bool = False

    def any(self) -> bool:
        return bool(self.error_rate or self.reset_rate or self.burst_429_every)


@dataclass(frozen=True, slots=True)
class SimSettings:
    latency_ms: float = 0.0  # added to every API request (asyncio.sleep: concurrency helps)
    faults: Faults = Faults()
    rate_limit: RateLimit | None = None  # None: unlimited (the DC default)
    seed: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, changes: Mapping[str, Any]) -> SimSettings:
        """A copy with `changes` (the body of `PUT /_sim/faults`) applied; raises ValueError."""
        known = {f.name for f in fields(SimSettings)}
        fault_names = {f.name for f in fields(Faults)}
        unknown = set(changes) - known - fault_names
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        settings = self
        fault_changes = {k: v for k, v in changes.items() if k in fault_names}
        nested = changes.get("faults")
        if isinstance(nested, Mapping):
            fault_changes.update(nested)
        if fault_changes:
            settings = replace(settings, faults=faults_from(fault_changes, settings.faults))
        if "latency_ms" in changes:
            settings = replace(settings, latency_ms=float(changes["latency_ms"]))
        if "seed" in changes:
            settings = replace(settings, seed=int(changes["seed"]))
        if "rate_limit" in changes:
            settings = replace(settings, rate_limit=rate_limit_from(changes["rate_limit"]))
        return settings


def faults_from(values: Mapping[str, Any], base: Faults = Faults()) -> Faults:
    names = {f.name for f in fields(Faults)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
    rates: dict[str, float] = {}
    for name in ("error_rate", "reset_rate"):
        if name in values:
            rate = float(values[name])
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} is a probability between 0 and 1, not {rate}")
            rates[name] = rate
    counts: dict[str, int] = {}
    for name in ("burst_429_every", "burst_429_length", "burst_retry_after"):
        if name in values:
            number = int(values[name])
            if number < 0:
                raise ValueError(f"{name} cannot be negative")
            counts[name] = number
    out = replace(
        base,
        error_rate=rates.get("error_rate", base.error_rate),
        reset_rate=rates.get("reset_rate", base.reset_rate),
        burst_429_every=counts.get("burst_429_every", base.burst_429_every),
        burst_429_length=counts.get("burst_429_length", base.burst_429_length),
        burst_retry_after=counts.get("burst_retry_after", base.burst_retry_after),
    )
    if "error_statuses" in values:
        statuses = tuple(int(s) for s in values["error_statuses"])
        if not statuses or any(not 500 <= s <= 599 for s in statuses):
            raise ValueError("error_statuses must be a non-empty list of 5xx codes")
        out = replace(out, error_statuses=statuses)
    if "paths" in values:
        out = replace(out, paths=tuple(str(p) for p in values["paths"]))
    flags: dict[str, Any] = {}
    for name in ("retry_after_header", "json_charset", "forget_finished_tasks"):
        if name in values:
            if not isinstance(values[name], bool):
                raise ValueError(f"{name} is true or false, not {values[name]!r}")
            flags[name] = values[name]
    for name, allowed in (("reset_precision", ("seconds", "minutes")), ("links_next", ("cursor", "url", "null"))):
        if name in values:
            if values[name] not in allowed:
                raise ValueError(f"{name} is one of {', '.join(allowed)}, not {values[name]!r}")
            flags[name] = str(values[name])
    if flags:
        out = replace(out, **flags)
    return out


def rate_limit_from(value: Any) -> RateLimit | None:
    """`null`/0 (off), a number (requests per second) or `{fill_rate, interval_seconds, max}`."""
    if value is None or value == 0:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        per_second = max(1, math.ceil(value))
        return RateLimit(fill_rate=per_second, interval_seconds=1, max=per_second)
    if isinstance(value, Mapping):
        unknown = set(value) - {"fill_rate", "interval_seconds", "max"}
        if unknown:
            raise ValueError(f"unknown rate_limit key(s): {', '.join(sorted(unknown))}")
        fill = int(value.get("fill_rate", 100))
        interval = int(value.get("interval_seconds", 1))
        cap = int(value.get("max", fill))
        if fill < 1 or interval < 1 or cap < 1:
            raise ValueError("rate_limit fill_rate, interval_seconds and max must be at least 1")
        return RateLimit(fill_rate=fill, interval_seconds=interval, max=cap)
    raise ValueError(f"rate_limit must be null, a number or a mapping, not {value!r}")


class TokenBucket:
    """Continuous-refill token bucket (one per API family and credential)."""

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.max)
        self.updated = now

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.limit.max), self.tokens + elapsed * self.limit.per_second)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def retry_after(self) -> int:
        """Whole seconds until a token is available (0 while tokens remain), as DC sends it."""
        if self.tokens >= 1.0:
            return 0
        return max(1, math.ceil((1.0 - self.tokens) / self.limit.per_second))

    @property
    def remaining(self) -> int:
        return int(self.tokens)


@dataclass(slots=True)
class LogEntry:
    seq: int
    time: float  # seconds since the simulator started
    method: str
    path: str  # with the query string
    status: int | None
    body: Any = None
    api: str = "confluence-dc"
    kind: str = "request"  # request | violation | fault | mutate
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class RequestLog:
    """Every mutating request (and every violation/fault) in order, for `/_sim/log`.

    Secrets in bodies (`password`, `token`, ...) are masked before they are stored.
    """

    entries: list[LogEntry] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    counts: dict[str, int] = field(default_factory=dict)  # requests per api family, incl. reads
    in_flight: int = 0
    max_in_flight: int = 0
    in_flight_by_api: dict[str, int] = field(default_factory=dict)  # for per-API concurrency limits (Okta)

    def add(self, method: str, path: str, status: int | None, *, body: Any = None,
            api: str = "confluence-dc", kind: str = "request", note: str = "") -> LogEntry:
        entry = LogEntry(
            seq=len(self.entries) + 1,
            time=round(time.monotonic() - self.started, 6),
            method=method,
            path=path,
            status=status,
            body=mask(body),
            api=api,
            kind=kind,
            note=note,
        )
        self.entries.append(entry)
        return entry

    def violation(self, note: str, *, method: str = "", path: str = "", api: str = "confluence-dc") -> None:
        self.add(method, path, None, api=api, kind="violation", note=note)

    def violations(self) -> list[LogEntry]:
        return [e for e in self.entries if e.kind == "violation"]


def mask(body: Any) -> Any:
    if isinstance(body, Mapping):
        return {k: ("***" if str(k).lower() in SECRET_FIELDS else mask(v)) for k, v in body.items()}
    if isinstance(body, list):
        return [mask(v) for v in body]
    return body
