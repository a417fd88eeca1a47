"""The JSON API: definitions, papers (list, create, fire, meeting, status, history, deadlines), mails."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse

from ..access import Person, writer
from ..addresses import NAME
from ..audit import record_json
from ..config import Settings
from ..diagram import to_json, to_mermaid
from ..engine import Engine
from ..errors import InputError, NotFoundError
from ..i18n import _
from ..paper import signoff_request
from ..values import field_texts, user_instant
from .download import download
from .identity import Identity
from .paths import target

__all__ = ["api_router"]


def _version(payload: dict[str, Any]) -> int | None:
    """The paper version the client saw (optimistic locking), if it sent one."""
    version = payload.get("version")
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int):
        raise InputError(_("'version' must be the paper's version number the client saw"))
    return version


#: A paper's address in the API, and what may follow its reference there in GET and in POST (each reference
#: one segment, its slashes encoded as %2F; workflow/addresses.py).
PAPERS_PATH = "/api/papers/"
GET_ACTIONS = {"history": "history", "deadlines": "deadlines", "files": "files", "file": f"files/{NAME}"}
POST_ACTIONS = {"fire": "fire", "meeting": "meeting", "sign": "sign", "done": f"deadlines/{NAME}/done"}

#: Papers per page of GET /api/papers (``limit``), and the most a client may ask for.
PAGE = 50
MAX_PAGE = 500


def api_router(engine: Engine, settings: Settings, identity: Identity) -> APIRouter:
    router = APIRouter(prefix="/api")
    user = identity.user

    @router.get("/definitions", tags=["definitions"])
    def list_definitions(who: Person = Depends(user)) -> list[dict[str, Any]]:
        out = []
        for wid in engine.library.workflows():
            d, _version = engine.library.current(wid)
            out.append({"workflow": d.workflow, "version": d.version, "title": d.title})
        return out

    @router.get("/definitions/{workflow}", tags=["definitions"])
    def show_definition(workflow: str, who: Person = Depends(user)) -> dict[str, Any]:
        return to_json(engine.library.current(workflow)[0])

    @router.get("/definitions/{workflow}/diagram", tags=["definitions"], response_class=PlainTextResponse)
    def definition_diagram(workflow: str, current: str | None = None, who: Person = Depends(user)) -> str:
        return to_mermaid(engine.library.current(workflow)[0], current=current)

    @router.get("/papers", tags=["papers"],
                summary="The papers one may see, a page at a time (the next: the Link header's rel=next, or "
                        "`cursor` = X-Next-Cursor)")
    def list_papers(request: Request, response: Response, workflow: str | None = None, state: str | None = None,
                    body: str | None = None, overdue: bool = False,
                    limit: int = Query(PAGE, ge=1, le=MAX_PAGE), cursor: str | None = None,
                    who: Person = Depends(user)) -> list[dict[str, Any]]:
        papers, following = engine.papers_page(who, limit=limit, after=cursor or None, workflow=workflow or None,
                                               state=state or None, body=body or None, overdue=overdue)
        if following is not None:
            response.headers["X-Next-Cursor"] = quote(following, safe="")
            response.headers["Link"] = f'<{request.url.include_query_params(cursor=following)}>; rel="next"'
        return [s.to_json() for s in papers]

    @router.get("/decisions", tags=["papers"],
                summary="The Beschlusskontrolle of a body: its decisions' follow-up papers with a traffic light, red "
                        "first, a page at a time (the next: the Link header's rel=next, or `cursor` = X-Next-Cursor)")
    def list_decisions(request: Request, response: Response, body: str = "", status: str | None = None,
                       warn_days: int = 10, limit: int = Query(PAGE, ge=1, le=MAX_PAGE),
                       cursor: str | None = None, who: Person = Depends(user)) -> list[dict[str, Any]]:
        views, following = engine.decisions_page(who, body, status=status, warn_days=warn_days, limit=limit,
                                                 after=cursor or None)
        if following is not None:
            response.headers["X-Next-Cursor"] = quote(following, safe="")
            response.headers["Link"] = f'<{request.url.include_query_params(cursor=following)}>; rel="next"'
        return [v.to_json() for v in views]

    @router.post("/papers", tags=["papers"], status_code=201)
    def create_paper(payload: dict[str, Any] = Body(...), who: Person = Depends(user)) -> dict[str, Any]:
        workflow, reference = payload.get("workflow"), payload.get("reference")
        if not isinstance(workflow, str) or not isinstance(reference, str):
            raise InputError(_("body needs 'workflow' and 'reference' (and 'fields')"))
        paper = engine.create(workflow, reference, writer(who), field_texts(payload.get("fields"), "'fields'"))
        return engine.view(paper).to_json()

    @router.get("/papers/{reference:path}", tags=["papers"],
                summary="A paper's status (also as of a day), or …/history, …/deadlines, …/files (its attachments) "
                        "or …/files/NAME (one attachment's content)")
    def get_paper(request: Request, reference: str, as_of: str | None = None,
                  who: Person = Depends(user)) -> Any:
        paper, action, name = target(engine, request, who, PAPERS_PATH, GET_ACTIONS)
        if action == "file" and name is not None:
            record, content = engine.file_content(paper, name)
            return download(content, record.name, record.media_type)
        if action == "files":
            return [f.to_json() for f in engine.files(paper)]
        if action == "history":
            return [record_json(r) for r in engine.history(paper.reference)]
        if action == "deadlines":
            return [v.to_json() for v in engine.deadlines(paper)]
        if as_of is not None:
            then = engine.status(paper.reference, as_of=as_of)
            return {**then.to_json(), **engine.follow_up_json(paper, then.as_of)}
        return {**engine.view(paper).to_json(), **engine.follow_up_json(paper)}

    @router.post("/papers/{reference:path}", tags=["papers"],
                 summary="…/fire: fire a trigger; …/meeting: set or move a meeting; …/deadlines/NAME/done: mark a "
                         "deadline done; …/sign: sign off (note), refuse (refuse: true, reason) or withdraw "
                         "(withdraw: true)")
    def change_paper(request: Request, reference: str, payload: dict[str, Any] = Body(...),
                     who: Person = Depends(user)) -> dict[str, Any]:
        paper, action, name = target(engine, request, who, PAPERS_PATH, POST_ACTIONS)
        branch = payload.get("branch")
        if branch is not None and not isinstance(branch, str):
            raise InputError(_("'branch' must be the id of a body"))
        if action == "fire":
            trigger = payload.get("trigger")
            if not isinstance(trigger, str):
                raise InputError(_("body needs 'trigger'"))
            seen = payload.get("branch_version")
            if seen is not None and (not isinstance(seen, str) or branch is None):
                raise InputError(_("'branch_version' must be the text the paper's JSON gives for the branch named "
                                   "in 'branch'"))
            reason = payload.get("reason")
            if reason is not None and not isinstance(reason, str):
                raise InputError(_("'reason' must be text (the reason)"))
            engine.fire(paper.reference, trigger, writer(who), branch=branch,
                        values=field_texts(payload.get("values"), "'values'"), expected_version=_version(payload),
                        expected_branch_version=seen, reason=reason)
        elif action == "meeting":
            when = payload.get("when")
            if not isinstance(when, str):
                raise InputError(_("body needs 'when' (ISO 8601 date-time)"))
            engine.set_meeting(paper.reference, when, writer(who), branch=branch, expected_version=_version(payload))
        elif action == "done" and name is not None:
            note, undo = payload.get("note", ""), payload.get("undo", False)
            if not isinstance(note, str) or not isinstance(undo, bool):
                raise InputError(_("'note' must be text and 'undo' true or false"))
            engine.done(paper.reference, name, writer(who), branch=branch, note=note, undo=undo,
                        expected_version=_version(payload))
        elif action == "sign":
            flags, texts = (payload.get("refuse", False), payload.get("withdraw", False)), \
                (payload.get("note"), payload.get("reason"))
            if not all(isinstance(f, bool) for f in flags) or not all(t is None or isinstance(t, str) for t in texts):
                raise InputError(_("'refuse' and 'withdraw' must be true or false, 'note' and 'reason' text"))
            act, text = signoff_request(paper.reference, refuse=flags[0], withdraw=flags[1], note=texts[0],
                                        reason=texts[1])
            engine.sign(paper.reference, writer(who), act=act, text=text, expected_version=_version(payload))
        else:
            raise NotFoundError(_("POST {reference}/fire, …/meeting, …/sign or …/deadlines/NAME/done")
                                .format(reference=paper.reference))
        return engine.status(paper.reference).to_json()

    @router.get("/reminders", tags=["deadlines"])
    def list_reminders(due_before: str | None = None, who: Person = Depends(user)) -> list[dict[str, Any]]:
        until = user_instant(due_before, settings.timezone, "due_before") if due_before else None
        out = []
        for r in engine.reminders(statuses=("pending", "claimed", "failed"), due_before=until):
            if r.reference is None:
                continue
            try:
                engine.paper_for(r.reference, who)
            except NotFoundError:
                continue
            out.append(r.to_json())
        return out

    return router
