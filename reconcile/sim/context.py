"""What every part of the simulator shares: the worlds, the settings, the log, the clock.

`SimContext` is the one object route builders receive (`routes(ctx)`); `CloudWorldLike` is what `/_sim/*`
needs of the Cloud world (`reconcile/sim/atlassian_cloud/world.py`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconcile.sim.confluence_dc.world import DcWorld
from reconcile.sim.control import RequestLog, SimSettings, TokenBucket
from reconcile.sim.entra_id.world import EntraWorld

DC = "confluence-dc"
CLOUD = "atlassian-cloud"
SIM = "sim"
OKTA = "okta"
GOOGLE = "google-workspace"
ENTRA = "entra-id"
SCIM = "scim"

# Path prefixes of the identity providers (a client's base URL includes them: http://host:port/okta).
IDP_PREFIXES = {"/okta/": OKTA, "/google/": GOOGLE, "/entra/": ENTRA, "/scim/": SCIM}
# Path prefixes served by the Cloud part of the simulator; everything else but /_sim/ is DC.
CLOUD_PREFIXES = ("/admin/v1/", "/admin/v2/", "/users/", "/rest/api/2/", "/rest/api/3/", "/wiki/")


def api_of(path: str) -> str:
    """Which API family a request path belongs to: `confluence-dc`, `atlassian-cloud`, an IdP or `sim`."""
    if path.startswith("/_sim/") or path == "/_sim":
        return SIM
    for prefix, api in IDP_PREFIXES.items():
        if path.startswith(prefix):
            return api
    if path.startswith(CLOUD_PREFIXES):
        return CLOUD
    return DC


class CloudWorldLike(Protocol):
    """What the app builder and `/_sim/*` need of the Cloud world (reconcile/sim/atlassian_cloud/world.py)."""

    def to_json(self) -> dict[str, Any]: ...

    def mutate(self, op: str, args: Mapping[str, Any]) -> Any: ...


@dataclass(slots=True)
class SimContext:
    dc: DcWorld
    cloud: CloudWorldLike | None = None
    entra_id: EntraWorld | None = None  # the Entra ID tenant (reconcile/sim/entra_id/); None: not simulated
    settings: SimSettings = field(default_factory=SimSettings)
    log: RequestLog = field(default_factory=RequestLog)
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time  # epoch seconds, for Cloud's X-RateLimit-Reset
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    buckets: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)
    requests_seen: int = 0  # API requests, for 429 bursts
    burst_left: int = 0
    extra: dict[str, Any] = field(default_factory=dict)  # per-part scratch space (e.g. sessions)
    tickers: list[Callable[[], None]] = field(default_factory=list)  # time-driven work (long tasks)
    instance: str = ""  # `reconcile sim --instance`: echoed by /_sim/stats so a script knows it is its own

    def tick(self) -> None:
        """Bring time-driven work up to now (finish due deletions); called before reads of state."""
        for ticker in self.tickers:
            ticker()

    def apply_settings(self, settings: SimSettings) -> None:
        """Switch settings at run time; a new seed restarts the fault dice, buckets start full."""
        if settings.seed != self.settings.seed:
            self.rng = random.Random(settings.seed)
        if settings.rate_limit != self.settings.rate_limit:
            self.buckets.clear()
        self.settings = settings
