"""The live OParl 1.1 endpoint: System, Body and paginated lists, public papers only, no sign-in."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Query, Request

from ..config import Settings
from ..engine import Engine
from ..errors import InputError, NotFoundError
from ..oparl_read import parse_instant

__all__ = ["mount_oparl"]

PAGE_SIZE = 100
#: Exports kept (per trail head and modified_since).
CACHED_EXPORTS = 8


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

    def page(request: Request, items: list[dict[str, Any]], number: int) -> dict[str, Any]:
        total = len(items)
        last = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
        if number > last:
            raise NotFoundError(f"page {number} does not exist (last page: {last})")
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
        return {"data": items[(number - 1) * PAGE_SIZE:number * PAGE_SIZE],
                "pagination": {"totalElements": total, "elementsPerPage": PAGE_SIZE, "currentPage": number,
                               "totalPages": last}, "links": links}

    @app.get(f"{prefix}/system", tags=["oparl"])
    def system(request: Request) -> dict[str, Any]:
        return dict(export(request, None)["system"])

    @app.get(f"{prefix}/bodies", tags=["oparl"])
    def bodies(request: Request) -> dict[str, Any]:
        return page(request, [export(request, None)["body"]], 1)

    @app.get(f"{prefix}/bodies/1", tags=["oparl"])
    def body(request: Request) -> dict[str, Any]:
        return dict(export(request, None)["body"])

    def listing_of(name: str) -> Any:
        def listing(request: Request, page_number: int = Query(1, alias="page", ge=1),
                    modified_since: str | None = None) -> dict[str, Any]:
            return page(request, list(export(request, since(modified_since))[name]), page_number)

        return listing

    for name in ("papers", "meetings", "organizations"):
        app.add_api_route(f"{prefix}/bodies/1/{name}", listing_of(name), methods=["GET"], tags=["oparl"],
                          name=f"oparl_{name}")
