"""`ScimClient`: GET requests to a SCIM 2.0 server, its errors as one-line SourceErrors, and every page of
a list read by startIndex/count (RFC 7644 §3.4.2.4) — concurrently, and complete or not at all.

A list is complete when its pages cover 1..totalResults with distinct ids and an unchanging total; a
server that stops advancing, repeats items or changes its total mid-read fails the read (fail closed).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
import msgspec

from reconcile.config.idp_scim import ScimSourceSettings
from reconcile.errors import SourceError
from reconcile.http import Backoff, Clock, ErrorKinds, HttpClient, all_of, bearer, error_for, safe_url
from reconcile.sources.scim.assembly import _Assembly, _interleave, _Page
from reconcile.sources.scim.shapes import ListResponse

log = logging.getLogger(__name__)

SCIM_JSON = "application/scim+json"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
T = TypeVar("T")


class _Identified(Protocol):
    @property
    def id(self) -> Any: ...


R = TypeVar("R", bound=_Identified)
OnPage = Callable[[list[Any]], Awaitable[None] | None]  # a page's resources as it arrives


class ScimClient:
    """Reads one SCIM server for source `config.name`; only GET is ever sent (a source never writes)."""

    def __init__(self, config: ScimSourceSettings, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        self.config = config
        self.where = f"source '{config.name}' (scim)"
        kinds = ErrorKinds(error=self._error, url_setting=f"sources.{config.name}.url")
        self.http = HttpClient(config.url, auth=bearer(config.token), settings=config.http, errors=kinds,
                               headers={"Accept": f"{SCIM_JSON}, application/json"}, transport=transport,
                               backoff=backoff, clock=clock)

    def _error(self, message: str, *, status: int | None = None, hint: str | None = None) -> Exception:
        return SourceError(f"{self.where}: {message}", hint=hint)

    async def aclose(self) -> None:
        await self.http.aclose()

    @property
    def requests(self) -> int:
        return self.http.requests

    # ------------------------------------------------------------------------------------------ one GET

    async def get(self, path: str, params: Mapping[str, Any], *, setting: str,
                  decoder: msgspec.json.Decoder[T] | None = None) -> T:
        """What `GET path` answers with 200, decoded by `decoder` (default: a JSON object as a dict);
        SourceError for anything else. `setting` is the key that decided the request (`users.filter`),
        named in the hint of a 400."""
        response = await self.http.request("GET", path, params=params)
        # a turn first for the request waiting for the lane this answer freed: it is written now, not after this
        # page is decoded and handled (~1-2 ms a page, during which the lane would stand idle)
        await asyncio.sleep(0)
        await response.aread()
        if response.status_code != 200:
            raise error_for(response, self._what_to_do(response, setting), self.http.errors)
        try:
            body: Any = (decoder or _OBJECT).decode(response.content)
        except msgspec.ValidationError as exc:  # JSON, but not the shape a SCIM resource or list has
            raise SourceError(f"{self.where}: GET {safe_url(response.request.url)} -> 200: the answer is JSON but "
                              f"not a SCIM resource or list ({exc})",
                              hint=f"check sources.{self.config.name}.url: it must be the SCIM base URL") from None
        except msgspec.DecodeError:
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            raise SourceError(f"{self.where}: GET {safe_url(response.request.url)} -> 200: the server answered "
                              f"{kind or 'an unnamed type'}, not SCIM JSON "
                              "(a proxy or a login page?)",
                              hint=f"check sources.{self.config.name}.url: it must be the SCIM base URL "
                              "(…/Users is under it), reachable without a proxy login") from None
        return body  # type: ignore[no-any-return]

    def _what_to_do(self, response: httpx.Response, setting: str) -> str:
        name = self.config.name
        status = response.status_code
        if status == 401:
            return (f"the server refused the bearer token of sources.{name} ({self.config.token.reference}): "
                    "set it to a valid token for this SCIM server")
        if status == 403:
            return f"the token of sources.{name} may not read this; give its client read access to Users and Groups"
        if status == 400:
            return f"fix sources.{name}.{setting} (SCIM filter syntax, RFC 7644 §3.4.2.2; attributes the server knows)"
        if status == 404:
            return (f"check sources.{name}.url (the SCIM base, e.g. https://idp.example.com/scim/v2); a group "
                    "deleted while it was read: run again")
        if 300 <= status < 400:
            return (f"check sources.{name}.url: the server redirects ({response.headers.get('location', '?')}); "
                    "give the URL it redirects to, or the SCIM base past any login")
        return "the SCIM server is failing; try again later (nothing was planned)"

    # ------------------------------------------------------------------------------------------ lists

    async def _page(self, path: str, params: Mapping[str, Any], start: int, setting: str,
                    decoder: msgspec.json.Decoder[ListResponse[Any]], *, on_page: OnPage | None = None) -> _Page:
        query = {**params, "startIndex": start, "count": self.config.page_size}
        body = await self.get(path, query, setting=setting, decoder=decoder)
        total, resources = body.totalResults, body.Resources
        if LIST_RESPONSE not in body.schemas or not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise SourceError(f"{self.where}: GET {self.http.url(path)} (startIndex={start}): the answer is not a "
                              "SCIM ListResponse (no totalResults or Resources)",
                              hint=f"check sources.{self.config.name}.url: it must be the SCIM base URL")
        echoed = start if body.startIndex is None else body.startIndex
        if resources and echoed != start:
            raise SourceError(f"{self.where}: GET {self.http.url(path)} (startIndex={start}): the server answered "
                              f"startIndex={echoed}; it does not page by startIndex, so its lists cannot be read "
                              "completely",
                              hint="nothing was planned; ask the SCIM server's vendor about RFC 7644 paging")
        if on_page is not None:
            working = on_page(resources)
            if working is not None:  # it works in slices, letting other responses be handled in between
                await working
        return _Page(start, total, resources)

    async def list(self, path: str, params: Mapping[str, Any], *, setting: str,
                   decoder: msgspec.json.Decoder[ListResponse[R]], on_page: OnPage | None = None) -> list[R]:
        """Every resource of `GET path`, in the server's order (`first`, then `rest`)."""
        first = await self.first(path, params, setting=setting, decoder=decoder, on_page=on_page)
        return await self.rest(first, path, params, setting=setting, decoder=decoder, on_page=on_page)

    async def first(self, path: str, params: Mapping[str, Any], *, setting: str,
                    decoder: msgspec.json.Decoder[ListResponse[R]], on_page: OnPage | None = None) -> _Page:
        """The list's first page: it shows the server's page size (it may lower `count`) and the total."""
        return await self._page(path, params, 1, setting, decoder, on_page=on_page)

    async def rest(self, first: _Page, path: str, params: Mapping[str, Any], *, setting: str,
                   decoder: msgspec.json.Decoder[ListResponse[R]], on_page: OnPage | None = None) -> builtins.list[R]:
        """Every resource of the list `first` began (`rests` of this one list)."""
        return (await self.rests(Listing(first, path, params, setting, decoder, on_page)))[0]  # type: ignore[no-any-return]

    async def rests(self, *lists: Listing, spread: float = 0.6) -> builtins.list[Any]:
        """Every resource of each list (a `Listing`, begun by `first`): the other pages of all of them are read
        concurrently by twice the client's concurrency of requesters (half of them waiting with a request
        built, to take a lane the moment one frees), not by a thousand requests built up front while the
        lanes wait. The first list's pages are spread over the first `spread` of the second's: its pages may be
        large (a group page holds every member of 100 groups), and one after another they would hold the
        reader (and the server) while the lanes wait. Any gap the pages leave (a server that lowers the
        page size further) is read in order. `on_page` sees each page as it arrives, before the list is
        known complete; a list's `then` runs once its pages are in, while the others are still read. Raises
        SourceError rather than return a part: of several failed pages, the first by list and position (else
        the failure of a `then`); after a failure no other page is asked for."""
        starts = [range(1 + len(x.first.resources), x.first.total + 1, len(x.first.resources))
                  if x.first.resources else range(0) for x in lists]
        jobs = _interleave([(0, s) for s in starts[0]], [(1, s) for s in starts[1]], spread) if len(lists) == 2 \
            else [(i, s) for i, r in enumerate(starts) for s in r]
        got: builtins.list[dict[int, _Page]] = [{1: x.first} for x in lists]  # per list: start -> page
        made = [_Assembly(self, x) for x in lists]  # each list's checked prefix, grown as pages land
        failed: dict[tuple[int, int], Exception] = {}
        remaining = [len(r) for r in starts]
        ends: dict[int, asyncio.Task[Any]] = {}
        stopped: list[BaseException] = []  # a list's `then` that failed: no more pages are asked for

        def end(i: int) -> None:  # every page of list i is in: assemble it (and run its `then`) now
            task = ends[i] = asyncio.ensure_future(self._end(lists[i], made[i], got[i]))
            task.add_done_callback(lambda t: None if t.cancelled() or t.exception() is None
                                   else stopped.append(t.exception()))  # type: ignore[arg-type]

        for i, left in enumerate(remaining):
            if not left:
                end(i)
        queue = iter(jobs)

        async def reader() -> None:
            for job in queue:  # shared by the readers: each job is taken by one
                if failed or stopped:
                    return
                x = lists[job[0]]
                try:
                    got[job[0]][job[1]] = await self._page(x.path, x.params, job[1], x.setting, x.decoder,
                                                           on_page=x.on_page)
                except Exception as exc:
                    failed[job] = exc  # raised below, once every reader has stopped
                    return
                made[job[0]].advance(got[job[0]])  # a next page of the list's checked prefix: check what follows
                remaining[job[0]] -= 1
                if not remaining[job[0]]:
                    end(job[0])
                await asyncio.sleep(0)  # a turn for the others (a list's `then`) where no request suspends (in process)

        await all_of(*(reader() for _ in range(min(2 * self.http.settings.concurrency, len(jobs)))))
        if failed or stopped:
            for task in ends.values():
                task.cancel()
            await asyncio.gather(*ends.values(), return_exceptions=True)
            raise failed[min(failed)] if failed else stopped[0]
        return await all_of(*(ends[i] for i in range(len(lists))))

    async def _end(self, listing: Listing, made: _Assembly, pages: dict[int, _Page]) -> Any:
        resources = await made.finish(pages)
        return resources if listing.then is None else await listing.then(resources)


@dataclass(frozen=True, slots=True)
class Listing:
    """One list to read to its end (`ScimClient.rests`): its first page and how the others are asked for."""

    first: _Page
    path: str
    params: Mapping[str, Any]
    setting: str
    decoder: msgspec.json.Decoder[Any]
    on_page: OnPage | None = None
    then: Callable[[builtins.list[Any]], Awaitable[Any]] | None = None  # run on the list once it is read,
    # while the other lists still are; what it returns is the list's result in `rests`
    on_ordered: Callable[[builtins.list[Any]], None] | None = None  # each page's resources in list order, once
    # checked: the list read so far, from its start (a page seen by `on_page` may prove not to be the list's);
    # they are its alone to keep (`then` gets an empty list)


_OBJECT: msgspec.json.Decoder[dict[str, Any]] = msgspec.json.Decoder(dict[str, Any])
