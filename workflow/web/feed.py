"""The personal calendar feed: no sign-in (calendar programs cannot sign in at the proxy); the secret in
the address is the key, a calendar-scoped token (workflow/tokens.py) that opens this feed and nothing
else. An unknown or revoked secret is 404, as is any address that is not a feed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ..engine import Engine
from ..errors import NotFoundError
from ..i18n import _
from ..tokens import CALENDAR, resolve_token

__all__ = ["feed_router"]

#: The feed holds the person's deadlines: only for them, never kept by a shared cache.
FEED_HEADERS = {"Cache-Control": "private, no-store"}


def feed_router(engine: Engine) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/kalender/{secret}.ics")
    def calendar_feed(secret: str) -> Response:
        # The notifier renders the entries, as for the mails; imported here: the engine does not depend on it.
        from notifier.feed import personal_calendar

        email = resolve_token(engine.store, secret, CALENDAR)
        if email is None:
            raise NotFoundError(_("There is no calendar at this address."))
        return Response(personal_calendar(engine, email), media_type="text/calendar; charset=utf-8",
                        headers=FEED_HEADERS)

    return router
