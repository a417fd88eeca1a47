"""The auditors' JSON API: query and download the trail, verify it, read its head."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from ..access import Person
from ..audit import CSV_FORMATS, csv_chunks, record_json
from ..config import Settings
from ..engine import Engine
from ..store import AuditRecord
from .identity import Identity

__all__ = ["audit_router"]


def audit_router(engine: Engine, settings: Settings, identity: Identity) -> APIRouter:
    router = APIRouter(prefix="/api/audit", tags=["audit"])
    auditor: Any = identity.auditor_dependency()

    @router.get("")
    def audit_query(reference: str | None = None, workflow: str | None = None, actor: str | None = None,
                    trigger: str | None = None, body: str | None = None, since: str | None = None,
                    until: str | None = None, format: str = Query("json", pattern="^(json|csv|csv-excel)$"),
                    from_state: str | None = None, to_state: str | None = None,
                    who: Person = Depends(auditor)) -> Response:
        records = engine.audit(reference=reference, workflow=workflow, actor=actor, trigger=trigger, body=body,
                               from_state=from_state, to_state=to_state, since=since, until=until,
                               zone=settings.timezone)
        if format in CSV_FORMATS:
            name = "pruefpfad-excel.csv" if format == "csv-excel" else "pruefpfad.csv"
            return StreamingResponse(csv_chunks(records, format, settings.timezone,
                                                definitions=engine.definition_version),
                                     media_type="text/csv; charset=utf-8",
                                     headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return StreamingResponse(_json_array(records), media_type="application/json")

    @router.get("/verify")
    def audit_verify(head: str | None = None, who: Person = Depends(auditor)) -> dict[str, object]:
        return engine.verify(head).to_json()

    @router.get("/head")
    def audit_head(who: Person = Depends(auditor)) -> dict[str, object]:
        seq, digest = engine.head()
        return {"seq": seq, "hash": digest}

    return router


def _json_array(records: Iterator[AuditRecord]) -> Iterator[str]:
    first = True
    yield "["
    for r in records:
        yield ("\n" if first else ",\n") + json.dumps(record_json(r), ensure_ascii=False)
        first = False
    yield "\n]\n"
