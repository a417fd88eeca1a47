"""FastAPI application over the engine; the routers hold no rules, they ask the engine.

Identity: the signed-in user arrives in a trusted header set by the administration's reverse proxy, or an
API client sends ``Authorization: Bearer <token>``. No identity is 401. The engine checks every action
against the workflow's roles (403 with its reason); non-public papers are visible only to people holding a
role of their workflow; auditors read everything and fire nothing (workflow/access.py). Errors are RFC 9457
problem details carrying the message the CLI prints.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ..config import Settings
from ..engine import Engine
from ..errors import (
    AuditIntegrityError,
    ConflictError,
    DefinitionError,
    InputError,
    NotAllowedNowError,
    NotFoundError,
    NotPermittedError,
    StorageError,
    WorkflowError,
)
from ..german import branch_status, format_local
from .api import api_router
from .audit_api import audit_router
from .identity import Identity, Unauthenticated
from .oparl_api import mount_oparl
from .pages import pages_router

__all__ = ["create_app"]

HERE = Path(__file__).parent
_STATUS = {DefinitionError: 422, InputError: 400, NotAllowedNowError: 409, NotPermittedError: 403,
           ConflictError: 409, NotFoundError: 404, StorageError: 503, AuditIntegrityError: 500}


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
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    identity = Identity(engine, settings)
    secret = (settings.secret or secrets.token_hex(32)).encode("utf-8")

    @app.exception_handler(WorkflowError)
    async def workflow_error(request: Request, exc: WorkflowError) -> Response:
        if isinstance(exc, Unauthenticated):
            return _problem(401, "Nicht angemeldet", exc.message)
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
        if request.url.path.startswith(("/api/", "/oparl/")):
            return _problem(status, type(exc).__name__, exc.message)
        return templates.TemplateResponse(request, "error.html", {"status": status, "message": exc.message,
                                                                   "user": None}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _problem(422, "RequestValidationError", f"{where}: {first.get('msg', 'invalid request')}")

    app.include_router(api_router(engine, settings, identity))
    app.include_router(audit_router(engine, settings, identity))
    mount_oparl(app, engine, settings)
    app.include_router(pages_router(engine, settings, identity, templates, secret))
    return app
