"""The live OParl 1.1 endpoint: System, Body and paginated lists, public papers only, no sign-in."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ..access import is_public
from ..config import Settings
from ..engine import Engine
from ..errors import InputError, NotFoundError
from ..i18n import _
from ..oparl import OParlExport
from ..oparl_read import parse_instant
from ..store import StoredPaper
from .download import download

__all__ = ["mount_oparl"]

PAGE_SIZE = 100
#: Exports kept (per trail head and modified_since), and pages rendered as JSON.
CACHED_EXPORTS = 8
CACHED_PAGES = 2000
#: Anonymous OParl list pages served at the same time, and per second (the others wait their turn):
#: 50 pages of 100 papers a second is plenty for a harvester and leaves the server to the staff.
ANONYMOUS_AT_ONCE = 1
ANONYMOUS_PER_SECOND = 50
#: How old the trail head behind the cached pages may be.
HEAD_SECONDS = 1.0


def mount_oparl(app: FastAPI, engine: Engine, settings: Settings) -> None:
    prefix = "/oparl/v1.1"

    cache: OrderedDict[tuple[tuple[int, str], datetime | None], dict[str, Any]] = OrderedDict()
    building = threading.Lock()

    def export(request: Request, modified_since: datetime | None) -> dict[str, Any]:
        """The public export, built once per state of the trail (its head) and kept for the next requests:
        anonymous clients paging through the lists must not rebuild it each time (and starve staff)."""
        key = (engine.head(), modified_since)
        found = cache.get(key)
        if found is not None:
            return found
        with building:  # one build at a time; the others then find it
            found = cache.get(key)
            if found is None:
                found = engine.oparl(settings.oparl_base_url, settings.body_name, settings.timezone,
                                     public_only=True, modified_since=modified_since)
                cache[key] = found
                while len(cache) > CACHED_EXPORTS:
                    cache.popitem(last=False)
        return found

    def since(value: str | None) -> datetime | None:
        if not value:
            return None
        try:
            return parse_instant(value, "modified_since")
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def page(request: Request, items: list[dict[str, Any]], number: int, total: int | None = None) -> dict[str, Any]:
        """Page ``number`` of ``items`` (or, with ``total``, ``items`` are that page already)."""
        sliced = total is not None
        total = len(items) if total is None else total
        last = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
        if number > last:
            raise NotFoundError(_("page {number} does not exist (last page: {last})").format(number=number, last=last))
        # Links name the configured base, never the Host header the client sent.
        rest = request.url.path.removeprefix(prefix)
        query = request.url.remove_query_params("page").query
        url = settings.oparl_base_url.rstrip("/") + rest + (f"?{query}" if query else "")
        sep = "&" if "?" in url else "?"
        links: dict[str, str] = {"first": f"{url}{sep}page=1", "last": f"{url}{sep}page={last}"}
        if number > 1:
            links["prev"] = f"{url}{sep}page={number - 1}"
        if number < last:
            links["next"] = f"{url}{sep}page={number + 1}"
        return {"data": items if sliced else items[(number - 1) * PAGE_SIZE:number * PAGE_SIZE],
                "pagination": {"totalElements": total, "elementsPerPage": PAGE_SIZE, "currentPage": number,
                               "totalPages": last}, "links": links}

    def frame() -> dict[str, Any]:
        """System and Body: they name no paper, so no export is built for them."""
        return OParlExport(settings.oparl_base_url, settings.body_name, settings.timezone).objects()

    @app.get(f"{prefix}/system", tags=["oparl"])
    def system(request: Request) -> dict[str, Any]:
        return dict(frame()["system"])

    @app.get(f"{prefix}/bodies", tags=["oparl"])
    def bodies(request: Request) -> dict[str, Any]:
        return page(request, [frame()["body"]], 1)

    @app.get(f"{prefix}/bodies/1", tags=["oparl"])
    def body(request: Request) -> dict[str, Any]:
        return dict(frame()["body"])

    def public_paper(reference: str) -> StoredPaper:
        """A paper anyone may read (the OParl endpoint's papers); a non-public one is not found."""
        paper = engine.load(reference)
        if not is_public(paper.state):
            raise NotFoundError(_("no paper with reference '{reference}'").format(reference=reference))
        return paper

    @app.get(f"{prefix}/files/{{reference:path}}/{{name}}/download", tags=["oparl"])
    def file_download(reference: str, name: str) -> Response:
        """The content of an attachment of a public paper."""
        record, content = engine.file_content(public_paper(reference), name)
        return download(content, record.name, record.media_type, public=True)

    @app.get(f"{prefix}/files/{{reference:path}}/{{name}}", tags=["oparl"])
    def file_object(reference: str, name: str) -> dict[str, Any]:
        """An attachment of a public paper as an OParl File (as its paper lists it in auxiliaryFile)."""
        paper = public_paper(reference)
        engine.file_content(paper, name)  # a NotFoundError for a name the paper has no attachment of
        item = engine.oparl_paper(paper, settings.oparl_base_url)
        found = next((f for f in item.get("auxiliaryFile", []) if f.get("name") == name), None)
        if found is None:
            raise NotFoundError(_("{reference} has no attachment '{name}'").format(reference=reference, name=name))
        return dict(found)

    pages: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
    gate = asyncio.Semaphore(ANONYMOUS_AT_ONCE)
    slot = [0.0]  # when the next anonymous list page may be served

    head: list[Any] = [None, 0.0]  # the trail's head, and when it was read

    def current_head() -> Any:
        """The trail's head, read at most once a second (a change shows on the public lists within 1 s)."""
        if time.monotonic() - head[1] > HEAD_SECONDS:
            head[0], head[1] = engine.head(), time.monotonic()
        return head[0]

    def listing_page(request: Request, name: str, number: int, modified_since: str | None) -> bytes:
        """One page as JSON bytes, kept per trail head: paging clients cost a dictionary look-up."""
        key = (current_head(), name, number, modified_since, request.url.remove_query_params("page").query)
        found = pages.get(key)
        if found is None:
            if name == "papers":  # a query for one page; each paper's object is built once per change
                total, items = engine.oparl_papers(settings.oparl_base_url, (number - 1) * PAGE_SIZE, PAGE_SIZE,
                                                   modified_since=since(modified_since))
                listed = page(request, items, number, total)
            else:
                listed = page(request, list(export(request, since(modified_since))[name]), number)
            found = json.dumps(listed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            pages[key] = found
            while len(pages) > CACHED_PAGES:
                pages.popitem(last=False)
        return found

    def listing_of(name: str) -> Any:
        async def listing(request: Request, page_number: int = Query(1, alias="page", ge=1),
                          modified_since: str | None = None) -> Response:
            async with gate:  # anonymous clients take turns, paced: staff requests never queue behind them
                wait = slot[0] - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                slot[0] = max(time.monotonic(), slot[0]) + 1 / ANONYMOUS_PER_SECOND
                cached = None
                if time.monotonic() - head[1] <= HEAD_SECONDS:  # from memory, without the database
                    cached = pages.get((head[0], name, page_number, modified_since,
                                        request.url.remove_query_params("page").query))
                body = cached or await run_in_threadpool(listing_page, request, name, page_number, modified_since)
            return Response(body, media_type="application/json")

        return listing

    for name in ("papers", "meetings", "organizations"):
        app.add_api_route(f"{prefix}/bodies/1/{name}", listing_of(name), methods=["GET"], tags=["oparl"],
                          name=f"oparl_{name}")
