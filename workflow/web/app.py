"""FastAPI application over the engine; the routers hold no rules, they ask the engine.

Identity: the signed-in user arrives in a trusted header set by the administration's reverse proxy, or an
API client sends ``Authorization: Bearer <token>``. No identity is 401. The engine checks every action
against the workflow's roles (403 with its reason); non-public papers are visible only to people holding a
role of their workflow; auditors read everything and fire nothing (workflow/access.py). Errors are RFC 9457
problem details carrying the message the CLI prints.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ..addresses import paper_path
from ..config import Settings
from ..engine import Engine
from ..errors import WorkflowError
from ..german import branch_status, file_size, format_local, signoff_status
from ..i18n import LANGUAGES, _, install_jinja, negotiate, use_language
from .api import api_router
from .audit_api import audit_router
from .feed import feed_router
from .identity import Identity, Unauthenticated
from .oparl_api import mount_oparl
from .pages import PAPERS_PREFIX, pages_router
from .paths import raw_rest
from .status import http_status, status_title

__all__ = ["create_app"]

HERE = Path(__file__).parent
log = logging.getLogger("councilflow.web")
#: Sent with every response: no framing (clickjacking), only our own scripts, styles and forms, no
#: referrer to other sites, no content sniffing.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


#: The largest request body accepted (a paper with every field at its limit fits many times).
MAX_BODY = 1_000_000


class _BodyLimit:
    """Refuses a request body over :data:`MAX_BODY` with 413, whether it announces its length or streams."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > MAX_BODY:
            await _too_large(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _too_large(scope, receive, send)


class _TooLarge(Exception):
    pass


async def _too_large(scope: Any, receive: Any, send: Any) -> None:
    response = _problem(413, status_title(413), _("the request body is larger than {limit} bytes")
                        .format(limit=f"{MAX_BODY:,}".replace(",", ".")))
    await response(scope, receive, send)


#: The cookie that keeps a language chosen with ``?lang=`` for the next pages (a year).
LANGUAGE_COOKIE = "cf_lang"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


def request_language(request: Request) -> str:
    """The language of a request: ``?lang=de|en``, else the ``cf_lang`` cookie, else ``Accept-Language``
    (German when none of them names a language councilflow speaks)."""
    for chosen in (request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE)):
        if chosen in LANGUAGES:
            return chosen
    return negotiate(request.headers.get("accept-language"))


class _Language:
    """Runs each request in its language (:func:`request_language`, :func:`use_language`): the pages, the
    problem details and the mails' previews speak it; the response says which (``Content-Language``), and a
    language chosen with ``?lang=`` is kept in a cookie. Sync endpoints run in the thread pool with a copy of
    this context, so they see it too."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        language = request_language(request)
        chosen = request.query_params.get("lang")

        async def tagged(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers.append((b"content-language", language.encode()))
                headers.append((b"vary", b"Accept-Language, Cookie"))
                if chosen in LANGUAGES and request.cookies.get(LANGUAGE_COOKIE) != chosen:
                    headers.append((b"set-cookie", f"{LANGUAGE_COOKIE}={chosen}; Max-Age={LANGUAGE_COOKIE_SECONDS}; "
                                                   "Path=/; SameSite=Lax".encode()))
                message = {**message, "headers": headers}
            await send(message)

        with use_language(language):
            await self.app(scope, receive, tagged)


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail},
                        status_code=status, media_type="application/problem+json")


def create_app(engine: Engine, settings: Settings) -> FastAPI:
    """The application for one engine (one database, one definitions folder)."""
    app = FastAPI(title="councilflow", version="0.1.0",
                  description="Sitzungsvorlagen, Beratungsfolgen, Fristen und Prüfpfad.")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["local"] = lambda m, zone="Europe/Berlin": format_local(m, zone)
    templates.env.filters["branch_status"] = branch_status
    templates.env.filters["signoff_status"] = signoff_status
    templates.env.filters["file_size"] = file_size
    templates.env.globals["paper_url"] = paper_path  # every link to a paper's pages: its one address rule
    install_jinja(templates.env)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    identity = Identity(engine, settings)
    secret = (settings.secret or secrets.token_hex(32)).encode("utf-8")

    @app.exception_handler(WorkflowError)
    async def workflow_error(request: Request, exc: WorkflowError) -> Response:
        if isinstance(exc, Unauthenticated):
            return _problem(401, status_title(401), exc.message)
        status = http_status(exc)
        if request.url.path.startswith(("/api/", "/oparl/")):
            return _problem(status, status_title(status), exc.message)
        # the way back from a form, as the client addressed it (by the decoded path, the way back from
        # "A%2Fbestaetigen/fire" would be the confirmation page of "A")
        path = PAPERS_PREFIX + raw_rest(request, PAPERS_PREFIX) if request.url.path.startswith(PAPERS_PREFIX) else ""
        back = path.rsplit("/", 1)[0] if request.method == "POST" and path else None
        return templates.TemplateResponse(request, "error.html", {"status": status, "message": exc.message,
                                                                   "user": None, "back": back,
                                                                   "title": status_title(status)}, status_code=status)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        # A bug, not bad input: logged with its traceback for the operators, one line for the client.
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        with use_language(request_language(request)):  # outside the middleware: the language is chosen again
            return _problem(500, _("Internal error"),
                            _("internal error ({kind}); the operators find the details in the log")
                            .format(kind=type(exc).__name__))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _problem(422, _("Invalid request"), f"{where}: {first.get('msg') or _('invalid request')}")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.add_middleware(_BodyLimit)
    app.add_middleware(_Language)  # outermost of ours: the body limit's refusal speaks the language too
    app.include_router(api_router(engine, settings, identity))
    app.include_router(audit_router(engine, settings, identity))
    mount_oparl(app, engine, settings)
    app.include_router(feed_router(engine))
    app.include_router(pages_router(engine, settings, identity, templates, secret))
    return app
