"""The German pages: Meine Fristen, Vorlagen, one paper with its next steps, and the Prüfpfad."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..access import Person, writer
from ..addresses import NAME, PAPERS, paper_path
from ..config import Settings
from ..decision_report import WEB_MAX_ROWS, DecisionsFormat, light_word
from ..decision_report import build as build_decisions
from ..decision_report import render as render_decisions
from ..definition import Definition
from ..diagram import svg_inline
from ..engine import DecisionView, Engine, Status
from ..errors import InputError, NotFoundError, NotPermittedError, ToolMissingError, WorkflowError
from ..german import EntryText, entry_label, entry_text, field_label
from ..i18n import _
from ..paper import branch_version, signoff_request
from ..report import WEB_MAX_ENTRIES, ReportFormat, build_report, render, report_filename
from ..store import AuditRecord, StoredPaper
from ..tokens import CALENDAR, calendar_path, create_token, list_tokens, revoke_calendar
from ..values import field_texts
from .download import download
from .identity import Identity
from .paths import target
from .status import http_status

__all__ = ["pages_router"]

#: The browser session a form's CSRF token is bound to (set with the first page, HttpOnly, SameSite=Strict).
SESSION_COOKIE = "cf_session"
#: How long a form may stay open before it must be reloaded.
CSRF_SECONDS = 8 * 3600
#: The one-shot message after an action ("Gespeichert: …"): a signed cookie naming what was done (a fixed
#: kind and the ids the server chose); the page reads the texts for it from the stored paper and its definition.
NOTICE_COOKIE = "cf_notice"
#: How long the message waits for the page it is meant for.
NOTICE_SECONDS = 120
#: The input type of each field type on the create form.
INPUT_TYPE = {"text": "text", "int": "number", "date": "date", "datetime": "datetime-local", "bool": "checkbox",
              "list": "textarea"}


#: The create form: outside /vorlagen/REFERENCE, which is every paper's address (mails link it), so no
#: reference can be shadowed by it. Its old address /vorlagen/neu is the paper "neu" if there is one, else
#: it leads here (bookmarks), and the old form's POST there still creates.
CREATE_PAGE = "/neue-vorlage"
OLD_CREATE_PAGE = "neu"

#: A paper's pages and forms: what may follow its reference in GET and in POST /vorlagen/REFERENCE/…, read
#: from the path as sent, each reference one segment with its slashes encoded as %2F (workflow/addresses.py).
PAPERS_PREFIX = PAPERS + "/"
GET_ACTIONS = {"bestaetigen": "bestaetigen", "mitzeichnen": "mitzeichnen", "file": f"anlagen/{NAME}"}
POST_ACTIONS = {name: name for name in ("bestaetigen", "mitzeichnen", "fire", "erledigt", "meeting")}

#: Entries per page of the audit page and of a paper's history.
AUDIT_PAGE = 50
HISTORY_PAGE = 50
#: Papers per page of "Vorlagen", deadlines per page of "Meine Fristen".
LIST_PAGE = 50


def _deadline_cursor(text: str) -> tuple[datetime, int] | None:
    """The "Nächste Seite" cursor of "Meine Fristen" ("due~id", as the page links it); anything else: page 1."""
    due, _tilde, ident = text.partition("~")
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
        issued_text, _dot, _rest = token.partition(".")
        issued = int(issued_text) if issued_text.isascii() and issued_text.isdigit() and len(issued_text) < 12 else -1
        fresh = 0 <= int(time.time()) - issued <= CSRF_SECONDS
        expected = sign(who, session, issued).encode()
        if not (session and fresh and hmac.compare_digest(token.encode("utf-8", "replace"), expected)):
            raise NotPermittedError(_("the form is outdated or forged (CSRF token); reload the page"))

    def page(request: Request, name: str, who: Person, status_code: int = 200, **context: Any) -> HTMLResponse:
        session = request.cookies.get(SESSION_COOKIE) or secrets.token_urlsafe(32)
        notice = read_notice(request, who) if NOTICE_COOKIE in request.cookies else None
        response = templates.TemplateResponse(request, name, {"user": who, "csrf": sign(who, session,
                                                                                         int(time.time())),
                                                              "notice": notice, **context},
                                              status_code=status_code)
        if request.cookies.get(SESSION_COOKIE) != session:
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https", path="/")
        if NOTICE_COOKIE in request.cookies:  # the message is shown once
            response.delete_cookie(NOTICE_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    def notice_mac(who: Person, session: str, body: str) -> str:
        return hmac.new(secret, f"notice|{who.email}|{session}|{body}".encode(), hashlib.sha256).hexdigest()

    def redirect(request: Request, url: str, who: Person, kind: str, reference: str, **ids: str | None) -> Response:
        """303 to ``url``, carrying the message of what ``who`` just did to the page shown next."""
        data = {"kind": kind, "reference": reference, "issued": int(time.time()), **ids}
        body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
        mac = notice_mac(who, request.cookies.get(SESSION_COOKIE, ""), body)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(NOTICE_COOKIE, f"{body}.{mac}", max_age=NOTICE_SECONDS, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https", path="/")
        return response

    def back_to(request: Request, reference: str, who: Person, kind: str, **ids: str | None) -> Response:
        return redirect(request, paper_path(reference), who, kind, reference, **ids)

    def posted(request: Request, who: Person, action: str) -> StoredPaper:
        """The paper a form ``action`` (a key of :data:`POST_ACTIONS`) is sent to, by the path as sent: the
        route matched the decoded path, so "A%2Ffire" reached the form "fire" of "A" and is refused here."""
        paper, found, _name = target(engine, request, who, PAPERS_PREFIX, POST_ACTIONS)
        if found != action:
            raise NotFoundError(_("{reference}: this address is the paper itself; its form is sent to {path}")
                                .format(reference=paper.reference, path=paper_path(paper.reference, action)))
        return paper

    def read_notice(request: Request, who: Person) -> dict[str, Any] | None:
        """The message of the cookie if the server made it for ``who`` in this browser session and it is
        fresh: its kind and the texts read from the paper (None otherwise, or if the paper says nothing)."""
        body, _dot, mac = request.cookies.get(NOTICE_COOKIE, "").partition(".")
        session = request.cookies.get(SESSION_COOKIE, "")
        if not (body and session and hmac.compare_digest(mac.encode("utf-8", "replace"),
                                                         notice_mac(who, session, body).encode())):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body.encode()))
            if not 0 <= int(time.time()) - int(data["issued"]) <= NOTICE_SECONDS:
                return None
            return notice_texts(data, who)
        except (ValueError, KeyError, TypeError, StopIteration, WorkflowError):
            return None

    def notice_texts(data: dict[str, Any], who: Person) -> dict[str, Any]:
        """The message's parts, each read from the stored paper and its definition."""
        paper = engine.paper_for(str(data["reference"]), who)
        definition = engine.definition_of(paper)
        branch = str(data.get("branch") or "")
        out: dict[str, Any] = {"kind": str(data["kind"]), "reference": paper.reference,
                               "title": paper.state.fields.get("title", ""),
                               "body": definition.bodies[branch].name if branch in definition.bodies else None}
        if data.get("trigger") in definition.trigger_names:
            out["label"] = definition.trigger_label(str(data["trigger"]))
        if data.get("deadline"):
            out["label"] = next(d.label for d in definition.deadlines if d.name == data["deadline"])
        if out["kind"] == "signoff":
            out["label"] = entry_label(definition, "signoff", str(data.get("act")), {})
        if out["kind"] == "meeting":
            status = engine.view(paper)
            out["when"] = next((b.meeting for b in status.branches if b.body == branch), None) if branch \
                else status.meeting
            out["zone"] = definition.timezone
            out["body"] = out["body"] or status.body_name
        return out

    def labelled(records: list[AuditRecord], zone: str) -> list[tuple[AuditRecord, EntryText]]:
        """Each entry with what people read for it, in the labels of the definition version it names."""
        return [(r, entry_text(r, engine.entry_definition(r.workflow, r.workflow_version), zone)) for r in records]

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
            state = row.paper.state
            branch = state.branches.get(v.deadline.branch) if v.deadline.branch else None
            rows.append({"deadline": v.deadline, "title": v.title, "overdue": v.overdue(now),
                         "body": v.body_name or "", "description": v.description,
                         "meeting": branch.meeting if branch is not None else state.meeting,
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
        _made, token = create_token(engine.store, who.email, "Kalender (Web)", engine.now(), CALENDAR, who.email)
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
        error, following = None, None
        try:  # labels and ids; an unknown value names the close ones instead of showing an empty list
            chosen = engine.resolve_filters({"workflow": workflow, "state": state, "body": body})
            papers, following = engine.papers_page(who, limit=LIST_PAGE, after=nach or None,
                                                   workflow=chosen.get("workflow"), state=chosen.get("state"),
                                                   body=chosen.get("body"), overdue=overdue)
        except InputError as exc:
            chosen, papers, error = {}, [], exc.message
        choices = {name: sorted(known.items(), key=lambda item: (item[1].casefold(), item[0]))
                   for name, known in engine.filter_choices().items()}
        query = {k: v for k, v in (("workflow", chosen.get("workflow", "")), ("state", chosen.get("state", "")),
                                   ("body", chosen.get("body", "")), ("overdue", "true" if overdue else "")) if v}
        response = page(request, "papers.html", who, papers=papers, choices=choices, error=error,
                        may_create=bool(engine.creatable(who)),
                        filters={"workflow": chosen.get("workflow", ""), "state": chosen.get("state", ""),
                                 "body": chosen.get("body", ""), "overdue": overdue}, zone=settings.timezone,
                        first_page="/vorlagen?" + urlencode(query) if nach else None,
                        next_page="/vorlagen?" + urlencode({**query, "nach": following}) if following else None)
        if error is not None:
            response.status_code = 400
        return response

    def create_form(request: Request, who: Person, choices: list[Definition], chosen: Definition | None,
                    status_code: int = 200, error: str = "", values: dict[str, Any] | None = None,
                    reference: str = "") -> HTMLResponse:
        fields = []
        if chosen is not None:
            fields = [{"name": f.name, "label": field_label(f.name), "type": INPUT_TYPE.get(f.type, "text"),
                       "required": f.required and f.type != "bool", "default": f.default}
                      for f in chosen.fields.values()]
        return page(request, "create.html", who, status_code, choices=choices, chosen=chosen, fields=fields,
                    values=values or {}, reference=reference, error=error,
                    with_meeting=chosen is not None and chosen.initial.consultation is not None)

    @router.get(CREATE_PAGE, response_class=HTMLResponse)
    def create_page(request: Request, workflow: str = "", who: Person = Depends(user)) -> HTMLResponse:
        """The form to create a Vorlage: first the workflow (if there is a choice), then its fields."""
        choices = engine.creatable(who)
        chosen = next((d for d in choices if d.workflow == workflow), None)
        if chosen is None and len(choices) == 1 and not workflow:
            chosen = choices[0]
        status_code = 403 if not choices else 404 if workflow and chosen is None else 200
        return create_form(request, who, choices, chosen, status_code,
                           error="unknown" if status_code == 404 else "")

    @router.post(CREATE_PAGE, response_class=HTMLResponse)
    @router.post(f"/vorlagen/{OLD_CREATE_PAGE}", response_class=HTMLResponse)
    async def create_submit(request: Request, who: Person = Depends(user)) -> Response:
        """Create the Vorlage through :meth:`Engine.create` (its one validation); an error is shown on the
        form with what was entered."""
        form = await request.form()
        text = {k: v for k, v in form.items() if isinstance(v, str)}
        workflow, reference = text.get("workflow", ""), text.get("reference", "")
        choices = engine.creatable(who)
        try:
            chosen = engine.library.current(workflow)[0]
        except WorkflowError as exc:
            return create_form(request, who, choices, None, http_status(exc), error=exc.message)
        raw: dict[str, Any] = {}
        for f in chosen.fields.values():
            value = text.get(f"field.{f.name}", "")
            if f.type == "bool":
                raw[f.name] = value == "true"
            elif f.type == "list":
                raw[f.name] = [line.strip() for line in value.splitlines() if line.strip()] or None
            elif value.strip():
                raw[f.name] = value
        shown = {k: ("\n".join(v) if isinstance(v, list) else v) for k, v in raw.items() if v is not None}
        if text.get("meeting", "").strip():
            raw["meeting"] = shown["meeting"] = text["meeting"]
        try:
            check_csrf(request, who, text.get("csrf", ""))
            paper = engine.create(chosen.workflow, reference, writer(who), field_texts(raw, _("Paper")))
        except WorkflowError as exc:
            return create_form(request, who, choices, chosen, http_status(exc), error=exc.message, values=shown,
                               reference=reference)
        return back_to(request, paper.reference, who, "create")

    def confirm_form(request: Request, who: Person, paper: StoredPaper, trigger: str, status_code: int = 200,
                     error: str = "", values: dict[str, str] | None = None) -> HTMLResponse:
        definition = engine.definition_of(paper)
        action = next((a for a in engine.actions(paper, who) if a.trigger == trigger), None)
        dest = action.transition.dest_for(paper.state.state) if action else None
        return page(request, "confirm.html", who, status_code if action else 409, paper=paper,
                    status=engine.view(paper), action=action, error=error, values=values or {},
                    label=definition.trigger_label(trigger) if trigger in definition.trigger_names else "",
                    dest=definition.states[dest] if dest else None,
                    branch_version=lambda body: branch_version(paper.state, body))

    @router.post("/vorlagen/{reference:path}/bestaetigen", response_class=HTMLResponse)
    def confirm_submit(request: Request, trigger: str = Form(...), csrf: str = Form(""),
                       branch: str = Form(""), result: str = Form(""), meeting: str = Form(""),
                       version: int = Form(...), branch_versions: str = Form(""), reason: str = Form(""),
                       who: Person = Depends(user)) -> Response:
        """Fire the confirmed trigger with its reason; an error is shown on the confirmation page with what
        was entered."""
        paper = posted(request, who, "bestaetigen")
        try:
            check_csrf(request, who, csrf)
            fire(paper, who, trigger, branch, result, meeting, version, branch_versions, reason)
        except WorkflowError as exc:
            return confirm_form(request, who, engine.paper_for(paper.reference, who), trigger, http_status(exc),
                                error=exc.message, values={"branch": branch, "result": result, "meeting": meeting,
                                                           "reason": reason})
        return back_to(request, paper.reference, who, "fire", trigger=trigger, branch=branch or None)

    def signoff_form(request: Request, who: Person, paper: StoredPaper, status_code: int = 200, error: str = "",
                     values: dict[str, str] | None = None) -> HTMLResponse:
        status = engine.view(paper)
        return page(request, "signoff.html", who, status_code, paper=paper, status=status, error=error,
                    values=values or {}, can_sign=engine.may_sign(paper, who),
                    can_refuse=engine.may_sign(paper, who, "refuse"), zone=engine.definition_of(paper).timezone)

    @router.post("/vorlagen/{reference:path}/mitzeichnen", response_class=HTMLResponse)
    def signoff_submit(request: Request, act: str = Form(...), csrf: str = Form(""),
                       note: str = Form(""), reason: str = Form(""), version: int | None = Form(None),
                       who: Person = Depends(user)) -> Response:
        """Sign off, refuse (with its reason) or withdraw; an error is shown on the sign-off page with what was
        entered."""
        paper = posted(request, who, "mitzeichnen")
        try:
            check_csrf(request, who, csrf)
            if act not in ("sign", "refuse", "withdraw"):
                raise InputError(_("{reference}: unknown sign-off action '{act}'").format(reference=paper.reference,
                                                                                          act=act[:40]))
            chosen, text = signoff_request(paper.reference, refuse=act == "refuse", withdraw=act == "withdraw",
                                           note=None if act == "refuse" else note,
                                           reason=reason if act == "refuse" else None)
            engine.sign(paper.reference, writer(who), act=chosen, text=text, expected_version=version)
        except WorkflowError as exc:
            return signoff_form(request, who, engine.paper_for(paper.reference, who), http_status(exc), exc.message,
                                {"note": note, "reason": reason})
        return back_to(request, paper.reference, who, "signoff", act=chosen)

    @router.get("/vorlagen/{reference:path}", response_class=HTMLResponse)
    def paper_get(request: Request, reference: str, vor: int | None = None, schritt: str = "",
                  who: Person = Depends(user)) -> Response:
        """Every page of a paper, by the path as sent (:data:`GET_ACTIONS`): the paper itself; …/bestaetigen:
        the confirmation step of a trigger marked ``confirm: true`` (``schritt``), a warning, the trigger's
        inputs and the reason it needs; …/mitzeichnen: the Mitzeichnung, sign it off with an optional note or
        refuse to with a reason; …/anlagen/NAME: an attachment to save (all without script)."""
        try:
            paper, action, name = target(engine, request, who, PAPERS_PREFIX, GET_ACTIONS)
        except NotFoundError:
            if reference != OLD_CREATE_PAGE:
                raise
            query = request.url.query
            return RedirectResponse(CREATE_PAGE + (f"?{query}" if query else ""), status_code=303)
        if action == "bestaetigen":
            return confirm_form(request, who, paper, schritt)
        if action == "mitzeichnen":
            return signoff_form(request, who, paper)
        if action == "file" and name is not None:
            record, content = engine.file_content(paper, name)
            return download(content, record.name, record.media_type)
        return paper_page(request, who, paper, vor)

    def paper_page(request: Request, who: Person, paper: StoredPaper, vor: int | None) -> HTMLResponse:
        definition = engine.definition_of(paper)
        try:
            diagram, diagram_missing = svg_inline(definition, paper.state.state), ""
        except ToolMissingError as exc:  # the page stays usable without Graphviz; the operators see why
            diagram, diagram_missing = "", exc.message
        references = [{"reference": r, "url": paper_path(r)}
                      for r in paper.state.fields.get("references", []) or []]
        # the history newest first, HISTORY_PAGE entries a page ("Ältere Einträge" pages on by seq)
        records = engine.audit_page(HISTORY_PAGE, vor, reference=paper.reference)
        here = paper_path(paper.reference)
        older = records[-1].seq if len(records) == HISTORY_PAGE else None
        status = engine.view(paper)
        return page(request, "paper.html", who, paper=paper, status=status, definition=definition,
                    history=labelled(records, definition.timezone),
                    history_older=f"{here}?{urlencode({'vor': older})}#verlauf" if older else None,
                    history_newest=f"{here}#verlauf" if vor is not None else None,
                    deadlines=engine.deadlines(paper),
                    actions=engine.actions(paper, who), references=references,
                    meeting_targets=meeting_targets(paper, status, who),
                    trigger_label=definition.trigger_label,
                    can_sign=engine.may_sign(paper, who) or engine.may_sign(paper, who, "refuse"),
                    can_withdraw=engine.may_sign(paper, who, "withdraw"),
                    can_mark=lambda v: engine.may_mark_done(paper, who, v.deadline.name, v.deadline.branch or None,
                                                            undo=v.done is not None),
                    diagram=diagram, diagram_missing=diagram_missing, zone=definition.timezone,
                    branch_version=lambda body: branch_version(paper.state, body),
                    past=engine.past_branches(paper), follow_ups=engine.follow_ups(paper),
                    parent=engine.parent_of(paper), files=engine.files(paper))

    def meeting_targets(paper: StoredPaper, status: Status, who: Person) -> list[tuple[str, str]]:
        """The consultations whose meeting ``who`` may set now: ("", the state's body) and (body, name) of
        each open branch, as the engine's rule allows."""
        out = []
        if status.body and engine.may_set_meeting(paper, who, None):
            out.append(("", status.body_name or status.body))
        out += [(b.body, b.name) for b in status.branches
                if b.status == "open" and engine.may_set_meeting(paper, who, b.body)]
        return out

    def fire(paper: StoredPaper, who: Person, trigger: str, branch: str, result: str, meeting: str, version: int,
             branch_versions: str, reason: str) -> None:
        values = {k: v for k, v in (("result", result), ("meeting", meeting)) if v.strip()}
        # the version of each branch the form offered ("body=version;…"): a branch decision is checked
        # against its own branch, so councils deciding at the same time do not collide
        seen = dict(item.partition("=")[::2] for item in branch_versions.split(";") if "=" in item)
        engine.fire(paper.reference, trigger, writer(who), branch=branch or None, values=values,
                    expected_version=version, expected_branch_version=seen.get(branch) if branch else None,
                    reason=reason or None)

    @router.post("/vorlagen/{reference:path}/fire")
    def fire_form(request: Request, trigger: str = Form(...), csrf: str = Form(...),
                  branch: str = Form(""), result: str = Form(""), meeting: str = Form(""),
                  version: int = Form(...), branch_versions: str = Form(""), reason: str = Form(""),
                  who: Person = Depends(user)) -> Response:
        check_csrf(request, who, csrf)
        paper = posted(request, who, "fire")
        fire(paper, who, trigger, branch, result, meeting, version, branch_versions, reason)
        return back_to(request, paper.reference, who, "fire", trigger=trigger, branch=branch or None)

    @router.post("/vorlagen/{reference:path}/erledigt")
    def done_form(request: Request, deadline: str = Form(...), csrf: str = Form(...),
                  branch: str = Form(""), note: str = Form(""), undo: bool = Form(False),
                  back: str = Form(""), who: Person = Depends(user)) -> Response:
        check_csrf(request, who, csrf)
        paper = posted(request, who, "erledigt")
        engine.done(paper.reference, deadline, writer(who), branch=branch or None, note=note, undo=undo)
        kind = "undone" if undo else "done"
        if back == "fristen":
            return redirect(request, "/", who, kind, paper.reference, deadline=deadline, branch=branch or None)
        return back_to(request, paper.reference, who, kind, deadline=deadline, branch=branch or None)

    @router.post("/vorlagen/{reference:path}/meeting")
    def meeting_form(request: Request, when: str = Form(...), csrf: str = Form(...),
                     branch: str = Form(""), version: int | None = Form(None),
                     who: Person = Depends(user)) -> Response:
        check_csrf(request, who, csrf)
        paper = posted(request, who, "meeting")
        body = branch if branch not in ("", "-") else None  # "-": the state's own consultation, chosen in a list
        engine.set_meeting(paper.reference, when, writer(who), branch=body, expected_version=version)
        return back_to(request, paper.reference, who, "meeting", branch=body)

    @router.get("/beschlusskontrolle", response_class=HTMLResponse)
    def decisions_page(request: Request, body: str = "", status: str = "", ab: str = "",
                       who: Person = Depends(user)) -> HTMLResponse:
        """The Beschlusskontrolle of a body: its decisions' follow-up papers, red first, 50 a page; the
        Bericht über offene Beschlüsse to print (HTML, PDF). Without a body: the choice of bodies."""
        error, following = None, None
        views: list[DecisionView] = []
        chosen = body.strip()
        wanted = "offen"
        if chosen:
            try:
                wanted = engine.decision_status(status)
                chosen = engine.resolve_filters({"body": chosen})["body"]
                views, following = engine.decisions_page(who, chosen, status=wanted, limit=LIST_PAGE,
                                                         after=ab or None)
            except InputError as exc:
                error = exc.message
        bodies = sorted(engine.filter_choices()["body"].items(), key=lambda item: (item[1].casefold(), item[0]))
        query = {"body": chosen, "status": wanted}
        response = page(request, "decisions.html", who, rows=views, bodies=bodies, error=error, zone=settings.timezone,
                        filters=query, body_name=dict(bodies).get(chosen, chosen),
                        statuses=(("offen", _("open")), ("verzoegert", _("delayed")), ("erledigt", _("done"))),
                        light_word=light_word,
                        report_query=urlencode(query),
                        first_page=f"/beschlusskontrolle?{urlencode(query)}" if ab and chosen else None,
                        next_page=f"/beschlusskontrolle?{urlencode({**query, 'ab': following})}" if following
                        else None)
        if error is not None:
            response.status_code = 400
        return response

    @router.get("/beschlusskontrolle/bericht")
    def decisions_report(body: str = "", status: str = "", format: str = Query("pdf", pattern="^(pdf|html)$"),
                         who: Person = Depends(user)) -> Response:
        """The Bericht über offene Beschlüsse of the page's body and status, as ``who`` may read it."""
        report = build_decisions(engine, who, body, status=status or None, zone=settings.timezone,
                                 most=WEB_MAX_ROWS)
        kind: DecisionsFormat = "pdf" if format == "pdf" else "html"
        name = f"beschluesse-{report.body}-{report.produced_at:%Y-%m-%d}.{kind}"
        return download(render_decisions(report, kind), name, "application/pdf" if kind == "pdf" else "text/html")

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
        return page(request, "audit.html", who, records=labelled(records, settings.timezone), report=report,
                    head=head, seq=seq,
                    filters=filters, zone=settings.timezone, kopf=kopf, page_size=AUDIT_PAGE,
                    older=f"/pruefpfad?{urlencode({**query, 'vor': older})}" if older else None,
                    newest="/pruefpfad?" + urlencode(query) if vor is not None else None,
                    export_query=urlencode({k: v for k, v in {
                        "reference": reference, "workflow": workflow, "actor": actor, "trigger": trigger,
                        "body": body, "since": seit, "until": bis}.items() if v}))

    @router.get("/pruefpfad/bericht")
    def audit_report(reference: str = "", workflow: str = "", actor: str = "", trigger: str = "", body: str = "",
                     von: str = "", nach: str = "", seit: str = "", bis: str = "",
                     format: str = Query("pdf", pattern="^(pdf|html)$"), who: Person = Depends(auditor)) -> Response:
        """The Prüfbericht of the audit page's current filters, produced by the signed-in auditor."""
        report = build_report(engine, producer=who.email, zone=settings.timezone,
                              references=(reference,) if reference.strip() else (), workflow=workflow or None,
                              actor=actor or None, trigger=trigger or None, body=body or None,
                              from_state=von or None, to_state=nach or None, since=seit or None, until=bis or None,
                              limit=WEB_MAX_ENTRIES)
        kind: ReportFormat = "pdf" if format == "pdf" else "html"
        name = report_filename(report, reference, kind)
        return download(render(report, kind), name, "application/pdf" if kind == "pdf" else "text/html")

    return router
