"""Okta's rate limits: per-minute buckets per endpoint family (`X-Rate-Limit-*` on every response,
429 E0000047 once spent) and the org-wide concurrency limit, which answers the same 429 with the
headers reporting the concurrent values (developer.okta.com rl-best-practices).
"""

from __future__ import annotations

from reconcile.sim.context import OKTA, SimContext
from reconcile.sim.okta.world import RateLimits

RATE_SUMMARY = "API call exceeded rate limit due to too many requests."


def bucket_of(path: str) -> str:
    """`users`, `groups` or `token` (a path under the Okta prefix, e.g. `/api/v1/groups/{id}/users`)."""
    if path.startswith("/api/v1/groups"):
        return "groups"  # /groups/{id}/users too: by the table's wording (unconfirmed)
    if path.startswith("/oauth2/"):
        return "token"
    return "users"


def take(ctx: SimContext, limits: RateLimits, bucket: str) -> tuple[bool, dict[str, str]]:
    """(allowed, X-Rate-Limit-* headers) for one request in `bucket`, on the simulator's wall clock."""
    now = ctx.wall()
    in_flight = ctx.log.in_flight_by_api.get(OKTA, 0)
    if in_flight > limits.concurrency:
        return False, {"X-Rate-Limit-Limit": str(limits.concurrency), "X-Rate-Limit-Remaining": "0",
                       "X-Rate-Limit-Reset": str(int(now) + 1)}
    limit = getattr(limits, bucket)
    window = int(now // 60) * 60
    windows: dict[str, tuple[int, int]] = ctx.extra.setdefault("okta.windows", {})
    start, used = windows.get(bucket, (window, 0))
    if start != window:
        start, used = window, 0
    allowed = used < limit
    if allowed:
        used += 1
    windows[bucket] = (start, used)
    return allowed, {"X-Rate-Limit-Limit": str(limit), "X-Rate-Limit-Remaining": str(max(0, limit - used)),
                     "X-Rate-Limit-Reset": str(start + 60)}
