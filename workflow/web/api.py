"""The JSON API: definitions, papers (list, create, fire, meeting, status, history, deadlines), mails."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import PlainTextResponse

from ..access import Person, writer
from ..audit import record_json
from ..config import Settings
from ..diagram import to_json, to_mermaid
from ..engine import Engine
from ..errors import InputError, NotFoundError
from ..values import field_texts, user_instant
from .identity import Identity

__all__ = ["api_router"]


def _version(payload: dict[str, Any]) -> int | None:
    """The paper version the client saw (optimistic locking), if it sent one."""
    version = payload.get("version")
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int):
        raise InputError("'version' must be the paper's version number the client saw")
    return version


def api_router(engine: Engine, settings: Settings, identity: Identity) -> APIRouter:
    router = APIRouter(prefix="/api")
    user = identity.user

    @router.get("/definitions", tags=["definitions"])
    def list_definitions(who: Person = Depends(user)) -> list[dict[str, Any]]:
        out = []
        for wid in engine.library.workflows():
            d, _ = engine.library.current(wid)
            out.append({"workflow": d.workflow, "version": d.version, "title": d.title})
        return out

    @router.get("/definitions/{workflow}", tags=["definitions"])
    def show_definition(workflow: str, who: Person = Depends(user)) -> dict[str, Any]:
        return to_json(engine.library.current(workflow)[0])

    @router.get("/definitions/{workflow}/diagram", tags=["definitions"], response_class=PlainTextResponse)
    def definition_diagram(workflow: str, current: str | None = None, who: Person = Depends(user)) -> str:
        return to_mermaid(engine.library.current(workflow)[0], current=current)

    @router.get("/papers", tags=["papers"])
    def list_papers(workflow: str | None = None, state: str | None = None, body: str | None = None,
                    overdue: bool = False, who: Person = Depends(user)) -> list[dict[str, Any]]:
        return [s.to_json() for s in engine.papers_for(who, workflow=workflow, state=state, body=body,
                                                       overdue=overdue)]

    @router.post("/papers", tags=["papers"], status_code=201)
    def create_paper(payload: dict[str, Any] = Body(...), who: Person = Depends(user)) -> dict[str, Any]:
        workflow, reference = payload.get("workflow"), payload.get("reference")
        if not isinstance(workflow, str) or not isinstance(reference, str):
            raise InputError("body needs 'workflow' and 'reference' (and 'fields')")
        paper = engine.create(workflow, reference, writer(who), field_texts(payload.get("fields"), "'fields'"))
        return engine.view(paper).to_json()

    @router.get("/papers/{reference:path}/history", tags=["papers"])
    def paper_history(reference: str, who: Person = Depends(user)) -> list[dict[str, Any]]:
        paper = engine.paper_for(reference, who)
        return [record_json(r) for r in engine.history(paper.reference)]

    @router.get("/papers/{reference:path}/deadlines", tags=["papers"])
    def paper_deadlines(reference: str, who: Person = Depends(user)) -> list[dict[str, Any]]:
        return [v.to_json() for v in engine.deadlines(engine.paper_for(reference, who))]

    @router.post("/papers/{reference:path}/fire", tags=["papers"])
    def fire(reference: str, payload: dict[str, Any] = Body(...), who: Person = Depends(user)) -> dict[str, Any]:
        paper = engine.paper_for(reference, who)
        trigger = payload.get("trigger")
        if not isinstance(trigger, str):
            raise InputError("body needs 'trigger'")
        values = field_texts(payload.get("values"), "'values'")
        branch = payload.get("branch")
        if branch is not None and not isinstance(branch, str):
            raise InputError("'branch' must be the id of a body")
        engine.fire(paper.reference, trigger, writer(who), branch=branch, values=values,
                    expected_version=_version(payload))
        return engine.status(paper.reference).to_json()

    @router.post("/papers/{reference:path}/meeting", tags=["papers"])
    def set_meeting(reference: str, payload: dict[str, Any] = Body(...),
                    who: Person = Depends(user)) -> dict[str, Any]:
        paper = engine.paper_for(reference, who)
        when, branch = payload.get("when"), payload.get("branch")
        if not isinstance(when, str):
            raise InputError("body needs 'when' (ISO 8601 date-time)")
        if branch is not None and not isinstance(branch, str):
            raise InputError("'branch' must be the id of a body")
        engine.set_meeting(paper.reference, when, writer(who), branch=branch, expected_version=_version(payload))
        return engine.status(paper.reference).to_json()

    @router.get("/papers/{reference:path}", tags=["papers"])
    def get_paper(reference: str, as_of: str | None = None, who: Person = Depends(user)) -> dict[str, Any]:
        paper = engine.paper_for(reference, who)
        return engine.status(paper.reference, as_of=as_of).to_json()

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
