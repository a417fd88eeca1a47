"""FastAPI application over the same `workflow` API the CLI uses; no engine logic in handlers.

Identity: the signed-in user arrives in a trusted header set by the administration's reverse proxy, or an
API client sends ``Authorization: Bearer <token>``. No identity is 401. The engine checks every action
against the workflow's roles (403 with its reason); non-public papers are visible only to people holding a
role of their workflow; auditors read everything and fire nothing. Errors are RFC 9457 problem details
carrying the message the CLI prints.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Body, Depends, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ..audit import CSV_COLUMNS, csv_row, record_json
from ..config import Settings
from ..diagram import to_json, to_mermaid
from ..engine import Engine, Status
from ..errors import (
    ConflictError,
    DefinitionError,
    InputError,
    NotAllowedNowError,
    NotFoundError,
    NotPermittedError,
    StorageError,
    WorkflowError,
)
from ..store import AuditRecord, StoredPaper
from ..store.outbox import Outbox
from ..tokens import resolve_token
from ..values import format_local, user_instant
from .svg import state_svg

__all__ = ["create_app"]

HERE = Path(__file__).parent
_STATUS = {DefinitionError: 422, InputError: 400, NotAllowedNowError: 409, NotPermittedError: 403,
           ConflictError: 409, NotFoundError: 404, StorageError: 503}


class Unauthenticated(WorkflowError):
    exit_code = 6


class User:
    def __init__(self, email: str, auditor: bool) -> None:
        self.email = email
        self.auditor = auditor


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail},
                        status_code=status, media_type="application/problem+json")


_record_json = record_json


def create_app(engine: Engine, settings: Settings) -> FastAPI:
    """The application for one engine (one database, one definitions folder)."""
    app = FastAPI(title="councilflow", version="0.1.0",
                  description="Sitzungsvorlagen, Beratungsfolgen, Fristen und Prüfpfad.")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["local"] = lambda m, zone="Europe/Berlin": format_local(m, zone)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    auditors = settings.auditor_set()
    secret = (settings.secret or secrets.token_hex(32)).encode("utf-8")
    outbox = Outbox(engine.store)

    # --- errors ------------------------------------------------------------------------------

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

    # --- identity ----------------------------------------------------------------------------

    def user(request: Request) -> User:
        auth = request.headers.get("authorization", "")
        email: str | None = None
        if auth.lower().startswith("bearer "):
            email = resolve_token(engine.store, auth[7:].strip())
            if email is None:
                raise Unauthenticated("the bearer token is unknown or revoked")
        elif settings.trusted_header and request.headers.get(settings.trusted_header):
            email = request.headers[settings.trusted_header].strip().lower()
        if not email:
            raise Unauthenticated("sign in first (trusted header of the proxy or Authorization: Bearer)")
        return User(email, email in auditors)

    def visible(paper: StoredPaper, who: User) -> bool:
        if who.auditor or paper.state.fields.get("public", True) is not False:
            return True
        definition = engine.definition_of(paper)
        members = {m.lower() for ms in definition.roles.values() for m in ms}
        members |= {b.contact.lower() for b in definition.bodies.values() if b.contact}
        return who.email in members

    def paper_for(reference: str, who: User) -> StoredPaper:
        paper = engine.store.load(reference)
        if not visible(paper, who):
            raise NotFoundError(f"no paper with reference '{reference}'")  # do not reveal it exists
        return paper

    def writer(who: User) -> str:
        if who.auditor:
            raise NotPermittedError(f"{who.email} is an auditor: auditors read everything and fire nothing")
        return who.email

    # --- JSON API ----------------------------------------------------------------------------

    @app.get("/api/definitions", tags=["definitions"])
    def list_definitions(who: User = Depends(user)) -> list[dict[str, Any]]:
        out = []
        for wid in engine.library.workflows():
            d, _ = engine.library.current(wid)
            out.append({"workflow": d.workflow, "version": d.version, "title": d.title})
        return out

    @app.get("/api/definitions/{workflow}", tags=["definitions"])
    def show_definition(workflow: str, who: User = Depends(user)) -> dict[str, Any]:
        return to_json(engine.library.current(workflow)[0])

    @app.get("/api/definitions/{workflow}/diagram", tags=["definitions"], response_class=PlainTextResponse)
    def definition_diagram(workflow: str, current: str | None = None, who: User = Depends(user)) -> str:
        return to_mermaid(engine.library.current(workflow)[0], current=current)

    def _papers(who: User, workflow: str | None, state: str | None, body: str | None,
                overdue: bool) -> list[Status]:
        now = engine.clock.now()
        out = []
        for paper in engine.store.iter_papers():
            if (workflow and paper.workflow != workflow) or (state and paper.state.state != state):
                continue
            if not visible(paper, who):
                continue
            status = engine.view(paper)
            if body and status.body != body and body not in {b.body for b in status.branches}:
                continue
            if overdue and not any(d.due_at < now for d in outbox.deadlines(paper.reference)):
                continue
            out.append(status)
        return out

    @app.get("/api/papers", tags=["papers"])
    def list_papers(workflow: str | None = None, state: str | None = None, body: str | None = None,
                    overdue: bool = False, who: User = Depends(user)) -> list[dict[str, Any]]:
        return [s.to_json() for s in _papers(who, workflow, state, body, overdue)]

    @app.post("/api/papers", tags=["papers"], status_code=201)
    def create_paper(payload: dict[str, Any] = Body(...), who: User = Depends(user)) -> dict[str, Any]:
        workflow, reference = payload.get("workflow"), payload.get("reference")
        if not isinstance(workflow, str) or not isinstance(reference, str):
            raise InputError("body needs 'workflow' and 'reference' (and 'fields')")
        fields = payload.get("fields") or {}
        if not isinstance(fields, dict):
            raise InputError("'fields' must be an object of field values")
        values = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in fields.items()}
        paper = engine.create(workflow, reference, writer(who), values)
        return engine.status(paper.reference).to_json()

    @app.get("/api/papers/{reference:path}/history", tags=["papers"])
    def paper_history(reference: str, who: User = Depends(user)) -> list[dict[str, Any]]:
        paper = paper_for(reference, who)
        return [_record_json(r) for r in engine.history(paper.reference)]

    @app.get("/api/papers/{reference:path}/deadlines", tags=["papers"])
    def paper_deadlines(reference: str, who: User = Depends(user)) -> list[dict[str, Any]]:
        paper = paper_for(reference, who)
        out = []
        for d in outbox.deadlines(paper.reference):
            mails = outbox.reminders(deadline_id=d.id, statuses=("pending", "claimed", "sent", "failed"))
            out.append({"name": d.name, "label": d.label, "state": d.state, "branch": d.branch or None,
                        "body": d.body, "due_at": d.due_at.isoformat(), "reminders": [m.to_json() for m in mails]})
        return out

    @app.post("/api/papers/{reference:path}/fire", tags=["papers"])
    def fire(reference: str, payload: dict[str, Any] = Body(...), who: User = Depends(user)) -> dict[str, Any]:
        paper = paper_for(reference, who)
        trigger = payload.get("trigger")
        if not isinstance(trigger, str):
            raise InputError("body needs 'trigger'")
        expected = payload.get("version")
        if expected is not None and expected != paper.version:
            raise ConflictError(f"{paper.reference} was changed by someone else meanwhile; retry")
        values = {k: str(v) for k, v in (payload.get("values") or {}).items()}
        engine.fire(paper.reference, trigger, writer(who), branch=payload.get("branch"), values=values)
        return engine.status(paper.reference).to_json()

    @app.post("/api/papers/{reference:path}/meeting", tags=["papers"])
    def set_meeting(reference: str, payload: dict[str, Any] = Body(...), who: User = Depends(user)) -> dict[str, Any]:
        paper = paper_for(reference, who)
        when = payload.get("when")
        if not isinstance(when, str):
            raise InputError("body needs 'when' (ISO 8601 date-time)")
        engine.set_meeting(paper.reference, when, writer(who), branch=payload.get("branch"))
        return engine.status(paper.reference).to_json()

    @app.get("/api/papers/{reference:path}", tags=["papers"])
    def get_paper(reference: str, as_of: str | None = None, who: User = Depends(user)) -> dict[str, Any]:
        paper = paper_for(reference, who)
        return engine.status(paper.reference, as_of=as_of).to_json()

    @app.get("/api/reminders", tags=["deadlines"])
    def list_reminders(due_before: str | None = None, who: User = Depends(user)) -> list[dict[str, Any]]:
        until = user_instant(due_before, settings.timezone, "due_before") if due_before else None
        out = []
        for r in outbox.reminders(statuses=("pending", "claimed", "failed"), due_before=until):
            if r.reference is None:
                continue
            try:
                paper_for(r.reference, who)
            except NotFoundError:
                continue
            out.append(r.to_json())
        return out

    def auditor(who: User = Depends(user)) -> User:
        if not who.auditor:
            raise NotPermittedError(f"{who.email} is no auditor: the whole trail is for auditors")
        return who

    @app.get("/api/audit", tags=["audit"])
    def audit_query(reference: str | None = None, workflow: str | None = None, actor: str | None = None,
                    trigger: str | None = None, body: str | None = None, since: str | None = None,
                    until: str | None = None, format: str = Query("json", pattern="^(json|csv)$"),
                    who: User = Depends(auditor)) -> Response:
        records = engine.store.iter_audit(
            reference=reference, workflow=workflow, actor=actor.lower() if actor else None, trigger=trigger,
            body=body, since=user_instant(since, settings.timezone, "since") if since else None,
            until=user_instant(until, settings.timezone, "until") if until else None)
        if format == "csv":
            return StreamingResponse(_csv(records), media_type="text/csv; charset=utf-8",
                                     headers={"Content-Disposition": 'attachment; filename="pruefpfad.csv"'})
        return StreamingResponse(_json_array(records), media_type="application/json")

    @app.get("/api/audit/verify", tags=["audit"])
    def audit_verify(head: str | None = None, who: User = Depends(auditor)) -> dict[str, object]:
        return engine.verify(head).to_json()

    @app.get("/api/audit/head", tags=["audit"])
    def audit_head(who: User = Depends(auditor)) -> dict[str, object]:
        seq, digest = engine.store.head()
        return {"seq": seq, "hash": digest}

    # --- OParl 1.1, public papers, no sign-in --------------------------------------------------

    from .oparl_api import mount_oparl

    mount_oparl(app, engine, settings)

    # --- pages -------------------------------------------------------------------------------

    def csrf_token(who: User) -> str:
        return hmac.new(secret, who.email.encode("utf-8"), hashlib.sha256).hexdigest()

    def check_csrf(who: User, token: str) -> None:
        if not hmac.compare_digest(token, csrf_token(who)):
            raise NotPermittedError("the form is outdated or forged (CSRF token); reload the page")

    def page(request: Request, name: str, who: User, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"user": who, "csrf": csrf_token(who), **context})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def my_deadlines(request: Request, who: User = Depends(user)) -> HTMLResponse:
        now = engine.clock.now()
        rows = []
        for paper in engine.store.iter_papers():
            if not visible(paper, who):
                continue
            bodies = engine.definition_of(paper).bodies
            for d in outbox.deadlines(paper.reference):
                mails = outbox.reminders(deadline_id=d.id, statuses=("pending", "claimed", "sent", "failed"))
                people = {p for m in mails if m.kind == "remind" for p in m.recipients}
                if who.email in people or who.auditor:
                    body = bodies.get(d.body) if d.body else None
                    rows.append({"deadline": d, "title": paper.state.fields.get("title", ""),
                                 "overdue": d.due_at < now, "body": body.name if body else ""})
        rows.sort(key=lambda r: (not r["overdue"], r["deadline"].due_at))
        return page(request, "deadlines.html", who, rows=rows, zone=settings.timezone)

    @app.get("/vorlagen", response_class=HTMLResponse, include_in_schema=False)
    def papers_page(request: Request, workflow: str | None = None, state: str | None = None,
                    body: str | None = None, overdue: bool = False, who: User = Depends(user)) -> HTMLResponse:
        papers = _papers(who, workflow or None, state or None, body or None, overdue)
        return page(request, "papers.html", who, papers=papers, workflows=engine.library.workflows(),
                    filters={"workflow": workflow or "", "state": state or "", "body": body or "",
                             "overdue": overdue}, zone=settings.timezone)

    @app.get("/vorlagen/{reference:path}", response_class=HTMLResponse, include_in_schema=False)
    def paper_page(request: Request, reference: str, who: User = Depends(user)) -> HTMLResponse:
        paper = paper_for(reference, who)
        definition = engine.definition_of(paper)
        status = engine.status(paper.reference)
        history = engine.history(paper.reference)
        deadlines = outbox.deadlines(paper.reference)
        fireable = [] if who.auditor else [
            t for t in definition.transitions_from(paper.state.state)
            if (t.branch and any(definition.holds_any(who.email, t.roles, b.body) for b in paper.state.open_branches()))
            or (not t.branch and definition.holds_any(who.email, t.roles, status.body))]
        references = [{"reference": r, "url": "/vorlagen/" + quote(r, safe="")}
                      for r in paper.state.fields.get("references", []) or []]
        return page(request, "paper.html", who, paper=paper, status=status, definition=definition,
                    history=history, deadlines=deadlines, fireable=fireable, references=references,
                    diagram=state_svg(definition, paper.state.state), zone=definition.timezone,
                    quote=lambda r: quote(r, safe=""))

    @app.post("/vorlagen/{reference:path}/fire", include_in_schema=False)
    def fire_form(request: Request, reference: str, trigger: str = Form(...), csrf: str = Form(...),
                  branch: str = Form(""), result: str = Form(""), meeting: str = Form(""),
                  version: int = Form(...), who: User = Depends(user)) -> Response:
        check_csrf(who, csrf)
        paper = paper_for(reference, who)
        if version != paper.version:
            raise ConflictError(f"{paper.reference} was changed by someone else meanwhile; reload and retry")
        values = {k: v for k, v in (("result", result), ("meeting", meeting)) if v.strip()}
        engine.fire(paper.reference, trigger, writer(who), branch=branch or None, values=values)
        return RedirectResponse(f"/vorlagen/{quote(paper.reference, safe='')}", status_code=303)

    @app.post("/vorlagen/{reference:path}/meeting", include_in_schema=False)
    def meeting_form(request: Request, reference: str, when: str = Form(...), csrf: str = Form(...),
                     branch: str = Form(""), who: User = Depends(user)) -> Response:
        check_csrf(who, csrf)
        paper = paper_for(reference, who)
        engine.set_meeting(paper.reference, when, writer(who), branch=branch or None)
        return RedirectResponse(f"/vorlagen/{quote(paper.reference, safe='')}", status_code=303)

    @app.get("/pruefpfad", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request, reference: str = "", actor: str = "", verify: bool = False,
                   who: User = Depends(auditor)) -> HTMLResponse:
        found = engine.store.iter_audit(reference=reference or None, actor=actor.lower() or None)
        records = list(deque(found, maxlen=500))  # the newest 500 on the page; the CSV download has them all
        report = engine.verify() if verify else None
        seq, head = engine.store.head()
        return page(request, "audit.html", who, records=records, report=report, head=head, seq=seq,
                    filters={"reference": reference, "actor": actor}, zone=settings.timezone)

    return app


def _csv(records: Iterator[AuditRecord]) -> Iterator[str]:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(CSV_COLUMNS)
    for r in records:
        out.writerow(csv_row(r))
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json_array(records: Iterator[AuditRecord]) -> Iterator[str]:
    first = True
    yield "["
    for r in records:
        yield ("\n" if first else ",\n") + json.dumps(_record_json(r), ensure_ascii=False)
        first = False
    yield "\n]\n"


