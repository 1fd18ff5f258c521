"""A SCIM list's pages put together (`ScimClient.rests`): the order the other pages are asked in (`_interleave`), and
the list assembled from its pages, checked complete and distinct, page by page as they land (`_Assembly`)."""

from __future__ import annotations

import builtins
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from reconcile.errors import SourceError

if TYPE_CHECKING:
    from reconcile.sources.scim.client import Listing, ScimClient

log = logging.getLogger("reconcile.sources.scim.client")  # the list's log line, where it always was
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Page:
    start: int
    total: int
    resources: list[Any]  # the Structs of the list's decoder (shapes.py)


class _Assembly:
    """A list's resources in order, from its pages (`rests`): checked complete and distinct. The pages that
    follow one another from the first are checked as they land (`advance`), so that little is left after the
    last answer; a page that fails a check stops that, and `finish` raises its error once every page is in
    (the same error, in the same order, as checking all of them then)."""

    def __init__(self, client: ScimClient, listing: Listing) -> None:
        self.client, self.listing = client, listing
        self.start = 1  # where the next page of the checked prefix starts
        self.out: builtins.list[Any] = []
        self.seen: set[str] = set()
        self.stuck = False  # a page failed a check: `finish` raises it

    def advance(self, pages: dict[int, _Page]) -> None:
        """Take the pages that follow the checked prefix, as far as they are in and pass (without raising)."""
        first, on_ordered = self.listing.first, self.listing.on_ordered
        while not self.stuck and self.start <= first.total:
            page = pages.get(self.start)
            if page is None:
                return
            resources = page.resources
            ids = [rid if type(rid := r.id) is str else "" if rid is None else str(rid) for r in resources]
            fresh = set(ids)
            if page.total != first.total or not resources or "" in fresh or len(fresh) != len(ids) \
                    or not self.seen.isdisjoint(fresh):
                self.stuck = True  # `finish` finds it again, and raises it
                return
            self.seen |= fresh
            if on_ordered is None:
                self.out += resources
            else:  # the resources are its to keep: the page no longer holds them (freed as the caller is done)
                on_ordered(resources)
                pages[self.start] = _Page(page.start, page.total, [])
            self.start += len(resources)

    async def finish(self, pages: dict[int, _Page]) -> builtins.list[Any]:
        """Every resource of the list, in order, once all its pages are in (none with `on_ordered`, which had them
        all); any gap the pages leave (a server that lowers the page size further) is read in order. Raises what
        a page fails."""
        self.advance(pages)
        client, listing = self.client, self.listing
        path, params, setting, decoder, on_page = (listing.path, listing.params, listing.setting, listing.decoder,
                                                   listing.on_page)
        total = listing.first.total
        out, seen, start, where = self.out, self.seen, self.start, client.where
        while start <= total:
            page = pages.get(start) or await client._page(path, params, start, setting, decoder, on_page=on_page)
            if page.total != total:
                at = f"GET {client.http.url(path)} (startIndex={start})"  # masked only for the error line
                raise SourceError(f"{where}: {at}: totalResults changed from {total} to {page.total} "
                                  "while the list was read", hint="the directory changed mid-read; run again")
            if not page.resources:
                at = f"GET {client.http.url(path)} (startIndex={start})"
                raise SourceError(f"{where}: {at}: no resources at {start} of {total}; the server stopped "
                                  "advancing before the end of the list", hint="nothing was planned; run again, or "
                                  f"lower sources.{client.config.name}.page_size if the server cuts pages short")
            for resource in page.resources:
                rid = "" if resource.id is None else str(resource.id)
                if not rid or rid in seen:
                    at = f"GET {client.http.url(path)} (startIndex={start})"
                    what = f"id {rid!r} twice" if rid else "a resource without an id"
                    raise SourceError(f"{where}: {at}: {what} in the list: items moved between pages "
                                      "while it was read",
                                      hint="the directory changed mid-read; run again")
                seen.add(rid)
            if listing.on_ordered is None:
                out += page.resources
            else:
                listing.on_ordered(page.resources)
            start += len(page.resources)
        log.info("%s: %s: %d resources in %d pages", where, path, len(seen), len(pages))
        return out


def _interleave(some: builtins.list[T], others: builtins.list[T], spread: float) -> builtins.list[T]:
    """`others` in order with `some` in order spread evenly over their first `spread` (all of them at once,
    first, when there are no others)."""
    if not some or not others:
        return some + others
    span = max(1, int(len(others) * spread))
    out: builtins.list[T] = []
    taken = 0
    for n, item in enumerate(others):
        due = (n * len(some)) // span  # how many of `some` belong before the n-th of `others`
        while taken < min(due, len(some)):
            out.append(some[taken])
            taken += 1
        out.append(item)
    return out + some[taken:]
