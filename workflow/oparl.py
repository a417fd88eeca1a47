"""OParl 1.1: export the papers as OParl objects (import follows in oparl_import.py).

The objects are derived from the papers and their trails: every consultation a paper had (a body it
waited for, with the meeting it was scheduled at and the decision taken there) becomes a Consultation,
an AgendaItem with the result, and part of a Meeting of the body's Organization. Ids are stable URLs
under a configurable base.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from .definition import Definition
from .i18n import _
from .paper import PaperState
from .replay import Resolver, steps
from .store import AuditRecord, StoredPaper

__all__ = ["OParlExport", "Sitting", "consultations_of", "modified_at"]

SCHEMA = "https://schema.oparl.org/1.1/"


@dataclass
class Sitting:
    """One consultation of a paper: the body, its role, the meeting and the decision (if any yet)."""

    body: str
    body_name: str
    role: str
    authoritative: bool
    meeting: datetime | None
    result: str | None = None
    created: datetime | None = None  # when the paper came to this body (or the meeting was set)
    decided: datetime | None = None  # when the decision was recorded


def consultations_of(resolve: Resolver, records: Iterable[AuditRecord]) -> list[Sitting]:
    """Replay a paper's trail into the consultations it went through, in order; each entry is read
    with the definition version it was recorded on (a migrated paper changes version mid-trail).

    A decision (a transition out of a consultation state, a branch decision, a deferral) closes the
    sitting at the meeting that was set then; a meeting still pending at the end is an open sitting.
    """
    sittings: list[Sitting] = []
    open_: dict[str, Sitting] = {}  # slot (state id or branch body) -> its sitting
    for step in steps(resolve, records):
        record, definition, state = step.record, step.definition, step.before
        if state is not None and record.kind in ("transition", "branch") and record.from_state:
            spec = definition.states[record.from_state]
            slot = record.branch or record.from_state
            sitting = open_.pop(slot, None) or _sitting(definition, record.from_state, record.branch, state)
            if sitting is not None:
                sitting.result = record.payload.get("result")
                sitting.decided = record.at
                sitting.created = sitting.created or record.at
                sittings.append(sitting)
            if spec.parallel is not None and record.kind == "transition":
                for body, pending in list(open_.items()):
                    if body in spec.parallel.bodies:
                        sittings.append(pending)
                        del open_[body]
        if record.kind == "migrate" and record.from_state in open_:
            open_[record.to_state] = open_.pop(record.from_state)  # the same consultation, another version
        state = step.after
        for slot, meeting in _meetings(state):
            current = open_.get(slot)
            if current is None or current.meeting != meeting:
                made = _sitting(definition, state.state, slot if slot != state.state else None, state)
                if made is not None:
                    made.meeting = meeting
                    made.created = record.at
                    open_[slot] = made
    sittings.extend(open_.values())
    return sittings


def _meetings(state: PaperState) -> list[tuple[str, datetime | None]]:
    slots: list[tuple[str, datetime | None]] = [
        (b.body, b.meeting) for b in state.branches.values() if b.status == "open" and b.meeting]
    return slots + ([(state.state, state.meeting)] if state.meeting else [])


def _sitting(definition: Definition, state_id: str, branch: str | None, state: PaperState) -> Sitting | None:
    spec = definition.states[state_id]
    if spec.parallel is not None and branch is not None:
        b = state.branches.get(branch)
        return Sitting(branch, definition.bodies[branch].name, spec.parallel.role, True, b.meeting if b else None)
    if spec.consultation is not None:
        role, body = spec.consultation.role, spec.consultation.body
        return Sitting(body, definition.bodies[body].name, role, role.lower() == "entscheidung",
                       state.meeting if state.state == state_id else None)
    return None


_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def modified_at(paper: StoredPaper, records: Iterable[AuditRecord]) -> datetime:
    """When a paper's OParl object last changed: its own last change, or a follow-up paper created for it (a
    note in its trail that adds a subordinatedPaper), whichever is later."""
    return max([paper.updated_at, *(r.at for r in records if r.kind == "follow_up")])


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().translate(_UMLAUTS)).strip("-") or "x"


@dataclass
class OParlExport:
    """Collects papers into OParl objects; ``objects()`` gives them by type, ready for JSON."""

    base: str
    body_name: str = "councilflow"
    zone: str = "Europe/Berlin"
    organizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    papers: list[dict[str, Any]] = field(default_factory=list)
    meetings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def url(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *(quote(p, safe="") for p in parts)])

    @property
    def body_url(self) -> str:
        return self.url("bodies", "1")

    def _organization(self, key: str, name: str, kind: str) -> str:
        url = self.url("organizations", key)
        if url not in self.organizations:
            self.organizations[url] = {"id": url, "type": SCHEMA + "Organization", "body": self.body_url,
                                       "name": name, "organizationType": kind}
        return url

    def add(self, paper: StoredPaper, resolve: Resolver, records: list[AuditRecord]) -> None:
        """Add one paper with its consultations, agenda items and meetings (``resolve`` gives each
        entry's definition version)."""
        definition = resolve(paper.workflow, paper.workflow_version)
        zone = ZoneInfo(definition.timezone)
        ref = paper.reference
        fields = paper.state.fields
        paper_url = self.url("papers", ref)
        created = records[0].at if records else paper.created_at
        modified = modified_at(paper, records)
        item: dict[str, Any] = {
            "id": paper_url, "type": SCHEMA + "Paper", "body": self.body_url, "name": str(fields.get("title", ref)),
            "reference": ref, "date": created.astimezone(zone).date().isoformat(), "paperType": definition.title,
            "created": paper.created_at.isoformat(), "modified": modified.isoformat(),
        }
        related = [r for r in fields.get("references", []) or [] if isinstance(r, str)]
        if related:
            item["relatedPaper"] = [self.url("papers", r) for r in related]
        # A follow-up paper names the paper it follows (the engine's create entry), a paper its follow-up papers
        # (its follow_up entries): OParl's superordinated and subordinated papers.
        origin = records[0].payload.get("follow_up") if records and records[0].kind == "create" else None
        if isinstance(origin, dict) and isinstance(origin.get("parent"), str):
            item["superordinatedPaper"] = [self.url("papers", origin["parent"])]
        children = [str(r.payload["child"]) for r in records if r.kind == "follow_up" and r.payload.get("child")]
        if children:
            item["subordinatedPaper"] = [self.url("papers", c) for c in children]
        attached = records[0].payload.get("files") if records and records[0].kind == "create" else None
        if isinstance(attached, list) and attached:
            item["auxiliaryFile"] = [self._file(ref, paper_url, meta, created) for meta in attached
                                     if isinstance(meta, dict) and isinstance(meta.get("name"), str)]
        if fields.get("department"):
            dept = str(fields["department"])
            item["underDirectionOf"] = [self._organization(f"dept-{_slug(dept)}", dept, "Verwaltungsbereich")]
        consultations = []
        for n, sitting in enumerate(consultations_of(resolve, records), start=1):
            org = self._organization(sitting.body, sitting.body_name, "Gremium")
            consultation_url = self.url("consultations", ref, str(n))
            consultation: dict[str, Any] = {
                "id": consultation_url, "type": SCHEMA + "Consultation", "paper": paper_url,
                "organization": [org], "role": sitting.role, "authoritative": sitting.authoritative,
            }
            if sitting.created is not None:
                consultation["created"] = sitting.created.isoformat()
            if sitting.meeting is not None:
                meeting = self._meeting(sitting, org, zone)
                agenda_url = self.url("agendaitems", ref, str(n))
                agenda: dict[str, Any] = {
                    "id": agenda_url, "type": SCHEMA + "AgendaItem", "meeting": meeting["id"],
                    "order": len(meeting["agendaItem"]) + 1, "name": item["name"],
                    "public": bool(fields.get("public", True)), "consultation": consultation_url,
                }
                if sitting.result:
                    agenda["result"] = sitting.result
                if sitting.decided is not None:
                    agenda["end"] = sitting.decided.isoformat()  # when the decision was recorded
                meeting["agendaItem"].append(agenda)
                consultation.update({"meeting": meeting["id"], "agendaItem": agenda_url})
            consultations.append(consultation)
        if consultations:
            item["consultation"] = consultations
        self.papers.append(item)

    def _file(self, reference: str, paper_url: str, meta: dict[str, Any], created: datetime) -> dict[str, Any]:
        """An attachment of a paper (named with its SHA-256 in the paper's create entry) as an OParl File."""
        url = self.url("files", reference, meta["name"])
        return {"id": url, "type": SCHEMA + "File", "name": meta["name"], "fileName": meta["name"],
                "mimeType": meta.get("media_type"), "size": meta.get("size"), "date": created.date().isoformat(),
                "accessUrl": url + "/download", "downloadUrl": url + "/download", "paper": [paper_url],
                "created": created.isoformat(), "modified": created.isoformat()}

    def _meeting(self, sitting: Sitting, org: str, zone: ZoneInfo) -> dict[str, Any]:
        meeting = sitting.meeting
        if meeting is None:
            raise ValueError(_("the sitting of {body} has no meeting").format(body=sitting.body))
        local = meeting.astimezone(zone)
        key = f"{sitting.body}-{local:%Y%m%d%H%M}"
        url = self.url("meetings", key)
        if url not in self.meetings:
            name = f"{sitting.body_name}, {local:%d.%m.%Y}"
            self.meetings[url] = {"id": url, "type": SCHEMA + "Meeting", "name": name,
                                  "start": meeting.isoformat(), "organization": [org], "agendaItem": []}
        return self.meetings[url]

    def objects(self) -> dict[str, Any]:
        """System, Body, and the lists of Organizations, Papers and Meetings."""
        system = {"id": self.url("system"), "type": SCHEMA + "System", "oparlVersion": SCHEMA,
                  "body": self.url("bodies"), "name": self.body_name, "product": "councilflow"}
        body = {"id": self.body_url, "type": SCHEMA + "Body", "system": system["id"], "name": self.body_name,
                "organization": self.url("bodies", "1", "organizations"), "person": self.url("bodies", "1", "people"),
                "meeting": self.url("bodies", "1", "meetings"), "paper": self.url("bodies", "1", "papers"),
                "legislativeTerm": []}
        return {"system": system, "body": body, "organizations": list(self.organizations.values()),
                "papers": self.papers, "meetings": list(self.meetings.values())}
