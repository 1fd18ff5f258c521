"""The contract every source fulfils: read a desired state."""

from __future__ import annotations

from typing import Protocol

from reconcile.model import DesiredState


class Source(Protocol):
    name: str

    async def read(self) -> DesiredState:
        """Read the users (and their groups) this source declares; raises SourceError.

        Async so that several sources are read at once; a blocking client runs in `asyncio.to_thread`."""
        ...
