"""The user read split into independent cursor chains: per claimStatus x accountStatus x membershipStatus
partition, one chain from each end of the `nick_name` order, stopping once they have met and hold the
partition's count.

Why this is exact (docs/targets/atlassian-cloud.md, "Reading 100,000 users"): a user has one value of
each, so the partitions are disjoint; `users/count` proves they are exhaustive for this organization
(their counts must add up to the unfiltered count, else one unfiltered pair is read); a pair holding
`count` distinct users of its partition holds all of it. A user who moves between partitions mid-read
is read once (a second sighting is dropped and counted) or, if both chains missed them, found by the
closing count check and one unfiltered re-read. Without counts: one chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from reconcile.http.gather import all_of
from reconcile.targets.atlassian_cloud.items import UserItem
from reconcile.targets.atlassian_cloud.read import PAGE, OrgReader

log = logging.getLogger(__name__)

CLAIM = ("managed", "unmanaged")  # the document's ClaimStatus enum; "by default, both ... are returned"
ACCOUNT = ("active", "inactive", "closed")  # the document's AccountStatus enum
# the document's membershipStatus enum: it takes the suspended (often many: people who left) out of the
# large active cell, so that cell's chains are shorter (docs/performance.md, "Cloud plan")
MEMBERSHIP = ("active", "suspended", "no_membership")
EVERYONE: dict[str, Any] = {}  # the unfiltered read: what the partitions must add up to


@dataclass
class Partition:
    """One filter and what reading it found; `requests` per chain (asc, desc) for the latency floor."""

    query: dict[str, Any]
    count: int
    seen: dict[str, str] = field(default_factory=dict)  # account id -> the direction that read it first
    requests: dict[str, int] = field(default_factory=dict)
    ended: bool = False  # a chain reached the end of its cursor: it alone read the whole partition
    met: bool = False  # a chain read a user its sibling had read: the two ends have met

    @property
    def name(self) -> str:
        return "/".join(str(v[0] if isinstance(v, list) else v) for v in self.query.values()) or "all"

    def holds(self, item: UserItem) -> bool:
        """Whether `item` is what this partition's filter asks for (a server that ignored it is not).
        `membershipStatus` is not compared: the document defines it across directories, and a pair that
        read users of other membership statuses read its whole cell anyway (it stops only where it met)."""
        claim, account = self.query.get("claimStatus"), self.query.get("accountStatus")
        return ((claim is None or item.claim_status == claim)
                and (account is None or item.account_status in account))


@dataclass
class SplitStats:
    """What one directory's read did, for the log, the tests and the bench's latency floor."""

    partitions: list[Partition] = field(default_factory=list)
    total: int = 0
    duplicates: int = 0  # users seen in two partitions (they changed partition during the read)
    strays: int = 0  # items that did not match their partition's filter
    reread: str | None = None  # why the unfiltered re-read ran, if it did
    reread_requests: int = 0

    @property
    def longest_chain(self) -> int:
        """Requests on the longest sequential chain: the counts, the longest pair chain, the re-read."""
        chains = [n for p in self.partitions for n in p.requests.values()]
        return 1 + max(chains, default=0) + 1 + self.reread_requests


class SplitRead:
    """`pages()` yields each user of `directory` once, in pages, read by concurrent chains."""

    def __init__(self, reader: OrgReader, directory: str, query: Mapping[str, Any]) -> None:
        self.reader, self.directory, self.query = reader, directory, dict(query)
        self.stats = SplitStats()
        self._emitted: dict[str, int] = {}  # account id -> the partition (index) that read it first
        self._queue: asyncio.Queue[list[UserItem] | BaseException | None] = asyncio.Queue()

    async def count(self, query: Mapping[str, Any]) -> int | None:
        """`users/count` under `query`; None when it cannot be had (the split is an optimisation: without
        counts the directory is read as one chain, as before, rather than the plan failing)."""
        path = f"{self.reader.org}/directories/{self.directory}/users/count"
        response = await self.reader.http.request("GET", path, params=dict(query))
        try:
            count = response.json().get("count") if response.status_code == 200 else None
        except (ValueError, AttributeError):
            count = None
        if not isinstance(count, int) or isinstance(count, bool):
            log.info("GET %s -> %d: no user count, so one chain", self.reader.http.url(path), response.status_code)
            return None
        return count

    async def pages(self) -> AsyncIterator[list[UserItem]]:
        worker = asyncio.ensure_future(self._run())
        try:
            while (page := await self._queue.get()) is not None:
                if isinstance(page, BaseException):
                    raise page
                yield page
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def _run(self) -> None:
        try:
            await self._read()
            self._queue.put_nowait(None)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the consumer, which raises it where it reads
            self._queue.put_nowait(exc)

    async def _read(self) -> None:
        parts = [{"claimStatus": c, "accountStatus": [a], "membershipStatus": [m]}
                 for c in CLAIM for a in ACCOUNT for m in MEMBERSHIP]
        total, *counts = await all_of(*(self.count(q) for q in [EVERYONE, *parts]))
        if total is None or total == 0:  # no count to stop at (and 0 is cheap to confirm: one page)
            await self._single("users/count unavailable" if total is None else "no users counted")
            return
        self.stats.total = total
        if sum(n or 0 for n in counts) == total and None not in counts:
            chosen = [Partition(q, n) for q, n in zip(parts, counts, strict=True) if n]
        else:  # some users carry neither documented value (an absent field): read everyone as one partition
            log.info("users/count: the status partitions hold %s of %d users; "
                     "reading them unpartitioned", sum(n or 0 for n in counts), total)
            chosen = [Partition(dict(EVERYONE), total)] if total else []
        self.stats.partitions = chosen
        await all_of(*(self._pair(p, i) for i, p in enumerate(chosen)))
        after = await self.count(EVERYONE)
        expected = max(total, after if after is not None else total)
        if after is None:
            await self._single("users/count unavailable after the read")
        elif len(self._emitted) < expected:
            # a user left a partition whose chains had not reached them for one whose chains were done
            await self._single(f"{expected - len(self._emitted)} of {expected} users unread")
        elif self.stats.strays:
            await self._single(f"{self.stats.strays} users outside their partition's filter")
        log.info("atlassian-cloud directory %s: %d users in %d partitions, %d requests on the longest chain",
                 self.directory, len(self._emitted), len(chosen), self.stats.longest_chain)

    async def _single(self, why: str) -> None:
        """The directory as one unfiltered chain, handing on only users not handed on yet."""
        self.stats.reread = why
        if self.stats.partitions:
            log.warning("atlassian-cloud directory %s: %s; reading it again as one chain", self.directory, why)
        async for page in self.reader.users(self.directory, self.query):
            self.stats.reread_requests += 1
            self._emit(page, -1)

    async def _pair(self, part: Partition, index: int) -> None:
        """Both ends of the partition's order at once; one chain suffices for a partition of one page."""
        directions = ("asc", "desc") if part.count > PAGE else ("asc",)
        await all_of(*(self._chain(part, index, d) for d in directions))

    async def _chain(self, part: Partition, index: int, direction: str) -> None:
        body = {**self.query, **part.query, "sortBy": [{"field": "nick_name", "direction": direction}]}
        part.requests[direction] = 0
        # the reader's generator (it guards against a repeated cursor), closed when the pair has its count
        # A page is handed on once the next page's request is written (or answered: a transport in process
        # reports no writes), not before: the consumer's work on it (~3 ms of building users) then overlaps
        # that request's round trip instead of delaying its sending (docs/performance.md, "Cloud plan:
        # where a page's time goes").
        held: list[list[UserItem]] = []

        def release() -> None:
            while held:
                self._emit(held.pop(), index)

        pages = cast(AsyncGenerator[list[UserItem], None],
                     self.reader.users(self.directory, body, on_sent=release))
        async with contextlib.aclosing(pages):
            async for page in pages:
                release()
                part.requests[direction] += 1
                for item in page:
                    if part.seen.setdefault(item.account_id, direction) != direction:
                        part.met = True
                    if not part.holds(item):
                        self.stats.strays += 1
                # both the count and the meeting: a count lower than what search returns cannot stop a
                # pair early, an order whose ties differ by direction cannot either; one chain runs to its end
                if part.ended or (part.met and len(part.seen) >= part.count):
                    self._emit(page, index)
                    return
                held.append(page)
        release()
        part.ended = True

    def _emit(self, page: list[UserItem], index: int) -> None:
        """Hand on the users not handed on before; a pair's two chains overlap where they meet."""
        fresh = []
        for item in page:
            account = item.account_id
            first = self._emitted.get(account)
            if first is None:
                self._emitted[account] = index
                fresh.append(item)
            elif first != index and index >= 0:
                self.stats.duplicates += 1  # read by another partition too: it changed partition mid-read
        if fresh:
            self._queue.put_nowait(fresh)
