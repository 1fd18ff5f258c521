"""The `yaml` source: the users and groups written inline in the desired files (already parsed by
`reconcile.config`), served through the same `Source` contract as the other sources.
"""

from __future__ import annotations

from reconcile.model import DesiredState


class YamlSource:
    """The inline desired state; its name `yaml` is reserved (no configured source may use it)."""

    name = "yaml"

    def __init__(self, state: DesiredState) -> None:
        self.state = state

    async def read(self) -> DesiredState:
        return self.state
