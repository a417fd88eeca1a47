"""The German pages: Meine Fristen, Vorlagen, one paper with its next steps, and the Prüfpfad."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..access import Person, writer
from ..config import Settings
from ..diagram import svg_inline
from ..engine import Engine
from ..errors import NotPermittedError, ToolMissingError
from ..paper import branch_version
from ..tokens import CALENDAR, calendar_path, create_token, list_tokens, revoke_calendar
from .identity import Identity

__all__ = ["pages_router"]

#: The browser session a form's CSRF token is bound to (set with the first page, HttpOnly, SameSite=Strict).
SESSION_COOKIE = "cf_session"
#: How long a form may stay open before it must be reloaded.
CSRF_SECONDS = 8 * 3600


#: Entries per page of the audit page.
AUDIT_PAGE = 50
#: Papers per page of "Vorlagen", deadlines per page of "Meine Fristen".
LIST_PAGE = 50


def _deadline_cursor(text: str) -> tuple[datetime, int] | None:
    """The "Nächste Seite" cursor of "Meine Fristen" ("due~id", as the page links it); anything else: page 1."""
    due, _, ident = text.partition("~")
    try:
        moment = datetime.fromisoformat(due)
    except ValueError:
        return None
    if moment.tzinfo is None or not (ident.isascii() and ident.isdigit() and len(ident) < 19):
        return None
    return moment, int(ident)


def pages_router(engine: Engine, settings: Settings, identity: Identity, templates: Jinja2Templates,
                 secret: bytes) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    user = identity.user
    auditor: Any = identity.auditor_dependency()

    def sign(who: Person, session: str, issued: int) -> str:
        message = f"{who.email}|{session}|{issued}".encode()
        return f"{issued}.{hmac.new(secret, message, hashlib.sha256).hexdigest()}"

    def check_csrf(request: Request, who: Person, token: str) -> None:
        """The form's token must be one issued to this person in this browser session, not expired."""
        session = request.cookies.get(SESSION_COOKIE, "")
        issued_text, _, _ = token.partition(".")
        issued = int(issued_text) if issued_text.isascii() and issued_text.isdigit() and len(issued_text) < 12 else -1
        fresh = 0 <= int(time.time()) - issued <= CSRF_SECONDS
        expected = sign(who, session, issued).encode()
        if not (session and fresh and hmac.compare_digest(token.encode("utf-8", "replace"), expected)):
            raise NotPermittedError("the form is outdated or forged (CSRF token); reload the page")

    def page(request: Request, name: str, who: Person, **context: Any) -> HTMLResponse:
        session = request.cookies.get(SESSION_COOKIE) or secrets.token_urlsafe(32)
        response = templates.TemplateResponse(request, name, {"user": who, "csrf": sign(who, session,
                                                                                         int(time.time())),
                                                              **context})
        if request.cookies.get(SESSION_COOKIE) != session:
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https", path="/")
        return response

    def back_to(reference: str) -> Response:
        return RedirectResponse(f"/vorlagen/{quote(reference, safe='')}", status_code=303)

    def calendar_links(who: Person) -> int:
        """How many calendar links of ``who`` are active."""
        return sum(1 for t in list_tokens(engine.store) if t.scope == CALENDAR and t.email == who.email
                   and t.revoked_at is None)

    @router.get("/", response_class=HTMLResponse)
    def my_deadlines(request: Request, kalender: str = "", ab: str = "", who: Person = Depends(user)) -> HTMLResponse:
        now = engine.now()
        rows = []
        found, following = engine.deadlines_page(who, limit=LIST_PAGE, after=_deadline_cursor(ab))
        for row in found:
            v = row.view
            rows.append({"deadline": v.deadline, "title": v.title, "overdue": v.overdue(now),
                         "body": v.body_name or "", "description": v.description,
                         "escalated": row.escalated and not row.notified,
                         "can_mark": engine.may_mark_done(row.paper, who, v.deadline.name, v.deadline.branch or None)})
        return page(request, "deadlines.html", who, rows=rows, zone=settings.timezone,
                    calendar_links=calendar_links(who), calendar_revoked=kalender == "widerrufen",
                    first_page="/" if ab else None,
                    next_page="/?" + urlencode({"ab": f"{following[0].isoformat()}~{following[1]}"})
                    if following else None)

    @router.post("/kalender", response_class=HTMLResponse)
    def calendar_create(request: Request, csrf: str = Form(...), who: Person = Depends(user)) -> HTMLResponse:
        """A new calendar link for the signed-in person, shown this once (only its hash is kept)."""
        check_csrf(request, who, csrf)
        _, token = create_token(engine.store, who.email, "Kalender (Web)", engine.now(), CALENDAR)
        base = settings.base_url.rstrip("/") or str(request.base_url).rstrip("/")
        response = page(request, "calendar.html", who, url=base + calendar_path(token),
                        calendar_links=calendar_links(who))
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.post("/kalender/widerrufen")
    def calendar_revoke(request: Request, csrf: str = Form(...), who: Person = Depends(user)) -> Response:
        """Revoke every calendar link of the signed-in person."""
        check_csrf(request, who, csrf)
        revoke_calendar(engine.store, who.email, engine.now())
        return RedirectResponse("/?kalender=widerrufen", status_code=303)

    @router.get("/vorlagen", response_class=HTMLResponse)
    def papers_page(request: Request, workflow: str | None = None, state: str | None = None,
                    body: str | None = None, overdue: bool = False, nach: str = "",
                    who: Person = Depends(user)) -> HTMLResponse:
        papers, following = engine.papers_page(who, limit=LIST_PAGE, after=nach or None, workflow=workflow or None,
                                               state=state or None, body=body or None, overdue=overdue)
        query = {k: v for k, v in (("workflow", workflow), ("state", state), ("body", body),
                                   ("overdue", "true" if overdue else "")) if v}
        return page(request, "papers.html", who, papers=papers, workflows=engine.library.workflows(),
                    filters={"workflow": workflow or "", "state": state or "", "body": body or "",
                             "overdue": overdue}, zone=settings.timezone,
                    first_page="/vorlagen?" + urlencode(query) if nach else None,
                    next_page="/vorlagen?" + urlencode({**query, "nach": following}) if following else None)

    @router.get("/vorlagen/{reference:path}", response_class=HTMLResponse)
    def paper_page(request: Request, reference: str, who: Person = Depends(user)) -> HTMLResponse:
        paper = engine.paper_for(reference, who)
        definition = engine.definition_of(paper)
        try:
            diagram, diagram_missing = svg_inline(definition, paper.state.state), ""
        except ToolMissingError as exc:  # the page stays usable without Graphviz; the operators see why
            diagram, diagram_missing = "", exc.message
        references = [{"reference": r, "url": "/vorlagen/" + quote(r, safe="")}
                      for r in paper.state.fields.get("references", []) or []]
        return page(request, "paper.html", who, paper=paper, status=engine.view(paper), definition=definition,
                    history=engine.history(paper.reference), deadlines=engine.deadlines(paper),
                    actions=engine.actions(paper, who), references=references,
                    can_mark=lambda v: engine.may_mark_done(paper, who, v.deadline.name, v.deadline.branch or None,
                                                            undo=v.done is not None),
                    diagram=diagram, diagram_missing=diagram_missing, zone=definition.timezone,
                    quote=lambda r: quote(r, safe=""),
                    branch_version=lambda body: branch_version(paper.state, body),
                    past=engine.past_branches(paper))

    @router.post("/vorlagen/{reference:path}/fire")
    def fire_form(request: Request, reference: str, trigger: str = Form(...), csrf: str = Form(...),
                  branch: str = Form(""), result: str = Form(""), meeting: str = Form(""),
                  version: int = Form(...), branch_versions: str = Form(""),
                  who: Person = Depends(user)) -> Response:
        check_csrf(request, who, csrf)
        paper = engine.paper_for(reference, who)
        values = {k: v for k, v in (("result", result), ("meeting", meeting)) if v.strip()}
        # the version of each branch the form offered ("body=version;…"): a branch decision is checked
        # against its own branch, so councils deciding at the same time do not collide
        seen = dict(item.partition("=")[::2] for item in branch_versions.split(";") if "=" in item)
        engine.fire(paper.reference, trigger, writer(who), branch=branch or None, values=values,
                    expected_version=version, expected_branch_version=seen.get(branch) if branch else None)
        return back_to(paper.reference)

    @router.post("/vorlagen/{reference:path}/erledigt")
    def done_form(request: Request, reference: str, deadline: str = Form(...), csrf: str = Form(...),
                  branch: str = Form(""), note: str = Form(""), undo: bool = Form(False),
                  back: str = Form(""), who: Person = Depends(user)) -> Response:
        check_csrf(request, who, csrf)
        paper = engine.paper_for(reference, who)
        engine.done(paper.reference, deadline, writer(who), branch=branch or None, note=note, undo=undo)
        return RedirectResponse("/", status_code=303) if back == "fristen" else back_to(paper.reference)

    @router.post("/vorlagen/{reference:path}/meeting")
    def meeting_form(request: Request, reference: str, when: str = Form(...), csrf: str = Form(...),
                     branch: str = Form(""), version: int | None = Form(None),
                     who: Person = Depends(user)) -> Response:
        check_csrf(request, who, csrf)
        paper = engine.paper_for(reference, who)
        engine.set_meeting(paper.reference, when, writer(who), branch=branch or None, expected_version=version)
        return back_to(paper.reference)

    @router.get("/pruefpfad", response_class=HTMLResponse)
    def audit_page(request: Request, reference: str = "", workflow: str = "", actor: str = "", trigger: str = "",
                   body: str = "", von: str = "", nach: str = "", seit: str = "", bis: str = "",
                   vor: int | None = None, verify: bool = False, kopf: str = "",
                   who: Person = Depends(auditor)) -> HTMLResponse:
        """The whole trail, newest first, 50 entries a page (no cap: "Ältere Einträge" pages on by seq)."""
        filters = {"reference": reference, "workflow": workflow, "actor": actor, "trigger": trigger, "body": body,
                   "von": von, "nach": nach, "seit": seit, "bis": bis}
        records = engine.audit_page(AUDIT_PAGE, vor, reference=reference.strip() or None,
                                    workflow=workflow or None, actor=actor or None, trigger=trigger.strip() or None,
                                    body=body or None, from_state=von or None, to_state=nach or None,
                                    since=seit or None, until=bis or None, zone=settings.timezone)
        report = engine.verify(kopf.strip() or None) if verify or kopf.strip() else None
        seq, head = engine.head()
        older = records[-1].seq if len(records) == AUDIT_PAGE else None
        query = {k: v for k, v in filters.items() if v}
        return page(request, "audit.html", who, records=records, report=report, head=head, seq=seq,
                    filters=filters, zone=settings.timezone, kopf=kopf, page_size=AUDIT_PAGE,
                    older=f"/pruefpfad?{urlencode({**query, 'vor': older})}" if older else None,
                    newest="/pruefpfad?" + urlencode(query) if vor is not None else None,
                    export_query=urlencode({k: v for k, v in {
                        "reference": reference, "workflow": workflow, "actor": actor, "trigger": trigger,
                        "body": body, "since": seit, "until": bis}.items() if v}))

    return router
