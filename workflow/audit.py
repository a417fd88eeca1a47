"""Verification of the audit trail: the hash chain, each paper's pointer to its newest entry, and
(given the definitions) that every paper's stored state is what its trail replays to."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .chain import GENESIS
from .definition import Definition
from .errors import WorkflowError
from .i18n import _
from .loader import source_hash
from .paper import PaperState
from .replay import Replay, Resolver, steps
from .store import AuditRecord, Store

__all__ = ["CSV_COLUMNS", "CSV_COLUMNS_DE", "CSV_FORMATS", "CSV_LABEL_COLUMNS_DE", "Period", "VerifyReport",
           "csv_chunks", "csv_row", "record_json", "timeline", "verify"]


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify`: ``ok``, the entries checked, the head, and the first break."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    broken_seq: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "problem": self.problem,
            "broken_seq": self.broken_seq,
        }


def verify(store: Store, *, head: str | None = None, definitions: Resolver | None = None) -> VerifyReport:
    """Recompute the chain; name the first entry that was edited, deleted, inserted or reordered.

    ``head`` is a hash the auditor kept outside the database: it must still be in the chain.
    Also checked: the stored definition texts still match their hashes, every entry names a stored
    definition version, each paper row's workflow, version, definition hash and created/modified
    instants are those of its entries, and each attachment is the one its entry names (its content by
    SHA-256; its SHA-256, size, media type and time as the lists show them).
    With ``definitions`` every paper's trail is replayed and compared
    with its stored state.
    """
    expected_seq, prev, count = 1, GENESIS, 0
    seen_head = head is None or head == GENESIS
    newest: dict[str, tuple[int, str, str, int, datetime]] = {}  # seq, hash, workflow, version, at
    noted: dict[str, int] = {}  # reference -> its first mail entry
    first_at: dict[str, datetime] = {}
    recorded: dict[tuple[str, str], tuple[dict[str, Any], int, datetime]] = {}  # (reference, name) -> meta, seq, at
    replay = Replay(definitions) if definitions is not None else None

    def broken(seq: int | None, message: str) -> VerifyReport:
        return VerifyReport(False, count, expected_seq - 1, prev, message, seq)

    stored: dict[tuple[str, int], str] = {}
    for workflow, version, digest, text in store.iter_definitions():
        if source_hash(text) != digest:
            return broken(None, _("the stored text of workflow '{workflow}' version {version} was edited: it no "
                                  "longer matches its hash").format(workflow=workflow, version=version))
        stored[(workflow, version)] = digest

    for entry in store.iter_audit():
        label = _("entry {seq} ({reference}, {trigger})").format(seq=entry.seq, reference=entry.reference,
                                                                  trigger=entry.trigger)
        if entry.seq != expected_seq:
            missing = (_("entry {seq} is missing (deleted): found entry {found} after entry {before}")
                       if entry.seq > expected_seq else
                       _("entry {seq} is missing (out of order): found entry {found} after entry {before}"))
            return broken(expected_seq, missing.format(seq=expected_seq, found=entry.seq, before=expected_seq - 1))
        if entry.prev_hash != prev:
            return broken(
                entry.seq,
                _("{entry} does not link to entry {seq}: entries were inserted, deleted or reordered").format(
                    entry=label, seq=entry.seq - 1),
            )
        if entry.expected_hash() != entry.hash:
            return broken(entry.seq, _("{entry} was edited: its content does not match its hash").format(entry=label))
        if (entry.workflow, entry.workflow_version) not in stored and (entry.workflow or not entry.is_note):
            return broken(entry.seq, _("{entry} names workflow '{workflow}' version {version}, whose text is not "
                                       "stored: the definitions table was edited").format(
                                           entry=label, workflow=entry.workflow, version=entry.workflow_version))
        if entry.is_note:  # a mail or administrative act: it changes no paper (its paper must exist, see below)
            if entry.reference:
                noted.setdefault(entry.reference, entry.seq)
        elif replay is not None:
            try:
                replay.step(entry)
            except WorkflowError as exc:
                return broken(entry.seq, _("{entry} cannot be replayed: {problem}").format(entry=label,
                                                                                            problem=exc.message))
        for meta in entry.payload.get("files") or () if not entry.is_note else ():
            if isinstance(meta, dict):
                recorded[(entry.reference, str(meta.get("name")))] = (meta, entry.seq, entry.at)
        if not entry.is_note:
            newest[entry.reference] = (entry.seq, entry.hash, entry.workflow, entry.workflow_version, entry.at)
            first_at.setdefault(entry.reference, entry.at)
        prev = entry.hash
        seen_head = seen_head or entry.hash == head
        expected_seq += 1
        count += 1
    for paper in store.iter_papers():
        noted.pop(paper.reference, None)
        seq, digest, workflow, version, last_at = newest.pop(paper.reference, (0, GENESIS, "", 0, paper.updated_at))
        if paper.last_seq > seq:
            return broken(
                paper.last_seq,
                _("entry {seq}, the newest of {reference}, is missing: entries were cut off the trail").format(
                    seq=paper.last_seq, reference=paper.reference),
            )
        if paper.last_seq < seq:
            return broken(
                seq, _("{reference} points to entry {seq}, but its trail goes on to entry {last}").format(
                    reference=paper.reference, seq=paper.last_seq, last=seq)
            )
        if paper.last_hash != digest:
            return broken(seq, _("{reference} points to entry {seq} with another hash: the entry was rewritten")
                          .format(reference=paper.reference, seq=seq))
        if (paper.workflow, paper.workflow_version) != (workflow, version):
            return broken(seq, _("{reference} names workflow '{workflow}' version {version}, but its entries "
                                 "'{entries_workflow}' version {entries_version}: the papers table was edited (a move "
                                 "to another version is a migrate entry)").format(
                                     reference=paper.reference, workflow=paper.workflow,
                                     version=paper.workflow_version, entries_workflow=workflow,
                                     entries_version=version))
        if paper.definition_hash != stored.get((workflow, version)):
            return broken(seq, _("{reference} names another definition text than its workflow version: the papers "
                                 "table was edited").format(reference=paper.reference))
        if paper.created_at != first_at.get(paper.reference) or paper.updated_at != last_at:
            return broken(seq, _("{reference}: its created/modified instants differ from its entries: the papers "
                                 "table was edited").format(reference=paper.reference))
        if replay is not None and replay.states.get(paper.reference) != paper.state:
            return broken(
                seq,
                _("{reference}: its stored state differs from what its trail replays to: the papers table was "
                  "edited").format(reference=paper.reference),
            )
    for row, digest in store.iter_file_hashes():
        reference, name = row.reference, row.name
        kept = recorded.pop((reference, name), None)
        if kept is None:
            return broken(None, _("attachment '{name}' of {reference} is named by no entry of the trail: it was added "
                                  "afterwards").format(name=name, reference=reference))
        meta, seq, at = kept
        if meta.get("sha256") != digest:
            return broken(seq, _("attachment '{name}' of {reference} was changed: its content no longer matches "
                                 "the SHA-256 in entry {seq}").format(name=name, reference=reference, seq=seq))
        # what the lists show of it (files, the page, the API, OParl) is the table's: it must be the entry's too
        shown = {"sha256": row.sha256, "size": row.size, "media_type": row.media_type}
        column = next((c for c, v in shown.items() if meta.get(c) != v), None)
        if column is None and row.created_at != at:
            column = "created_at"
        if column is not None:
            return broken(seq, _("attachment '{name}' of {reference} was changed: its column {column} no longer "
                                 "matches entry {seq}").format(name=name, reference=reference, column=column, seq=seq))
    if recorded:
        (reference, name), (_meta, seq, _at) = min(recorded.items(), key=lambda item: item[1][1])
        return broken(seq, _("attachment '{name}' of {reference}, named by entry {seq}, is missing").format(
            name=name, reference=reference, seq=seq))
    orphans = {**noted, **{ref: found[0] for ref, found in newest.items()}}
    if orphans:
        orphan = min(orphans, key=lambda ref: orphans[ref])
        return broken(orphans[orphan], _("entries of {reference} exist, but the paper itself was deleted").format(
            reference=orphan))
    if not seen_head:
        return broken(None, _("the kept head hash {head} is not in the chain: the trail was cut or rewritten").format(
            head=head))
    return VerifyReport(True, count, count, prev)


@dataclass(frozen=True)
class Period:
    """Where a paper stood from one recorded change until the next."""

    since: datetime
    until: datetime | None
    seq: int
    trigger: str
    actor: str
    state: PaperState
    label: str  # the state's label in the definition version of that time


def timeline(resolve: Resolver, records: Iterable[AuditRecord]) -> list[Period]:
    """The paper's states over time: one period per entry, replayed from the trail."""
    periods: list[Period] = []
    for step in steps(resolve, records):
        record, state = step.record, step.after
        if periods:
            periods[-1] = replace(periods[-1], until=record.at)
        periods.append(Period(record.at, None, record.seq, record.trigger, record.actor, state,
                              step.definition.states[state.state].label))
    return periods


#: The columns of the CSV export (the same from the CLI and the web).
CSV_COLUMNS = ("seq", "at", "reference", "workflow", "workflow_version", "kind", "trigger", "from", "to", "branch",
               "body", "actor", "payload", "prev_hash", "hash")


def record_json(r: AuditRecord) -> dict[str, Any]:
    """One entry in the documented JSON form."""
    return {"seq": r.seq, "at": r.at.isoformat(), "reference": r.reference, "workflow": r.workflow,
            "workflow_version": r.workflow_version, "kind": r.kind, "trigger": r.trigger, "from": r.from_state,
            "to": r.to_state, "branch": r.branch, "body": r.body, "actor": r.actor, "payload": r.payload,
            "prev_hash": r.prev_hash, "hash": r.hash}


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula (OWASP: a leading ', for text starting with
    = + - @ tab or CR); numbers stay numbers. The JSON export stays exact."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


#: German column names of the ``csv-excel`` form, in the order of :data:`CSV_COLUMNS`.
CSV_COLUMNS_DE = ("Nr.", "Zeitpunkt", "Vorlage", "Ablauf", "Ablaufversion", "Art", "Auslöser", "Von", "Nach",
                  "Zweig", "Gremium", "Person", "Daten", "Vorheriger Hash", "Hash")
#: What the ``csv-excel`` form adds at the end for people, given the definitions: the entry's label and the
#: labels of its states and body (:func:`workflow.german.entry_text`).
CSV_LABEL_COLUMNS_DE = ("Schritt", "Von (Status)", "Nach (Status)", "Gremium (Name)")

#: The export formats: ``csv`` for machines (comma, LF, ISO 8601 UTC), ``csv-excel`` for German Excel
#: (semicolon, UTF-8 with BOM, CRLF, local time TT.MM.JJJJ HH:MM, German column names).
CSV_FORMATS = ("csv", "csv-excel")


def csv_chunks(records: Iterable[AuditRecord], fmt: str, zone: str, size: int = 65536,
               definitions: Callable[[str, int], Definition | None] | None = None) -> Iterator[str]:
    """The entries as CSV text in chunks of about ``size`` characters (streamed: memory stays flat); the one
    writer of the CLI and the web. With ``definitions`` the ``csv-excel`` form ends with the labels people
    read (:data:`CSV_LABEL_COLUMNS_DE`)."""
    from .german import entry_text

    excel = fmt == "csv-excel"
    labelled = excel and definitions is not None
    buffer = io.StringIO()
    out = csv.writer(buffer, delimiter=";" if excel else ",", lineterminator="\r\n" if excel else "\n")
    if excel:
        buffer.write("\ufeff")  # the byte order mark: Excel then reads UTF-8 (umlauts) instead of ANSI
    out.writerow((*CSV_COLUMNS_DE, *(CSV_LABEL_COLUMNS_DE if labelled else ())) if excel else CSV_COLUMNS)
    local = ZoneInfo(zone)
    for r in records:
        row = csv_row(r)
        if excel:
            row[1] = r.at.astimezone(local).strftime("%d.%m.%Y %H:%M")
        if labelled:
            assert definitions is not None
            text = entry_text(r, definitions(r.workflow, r.workflow_version), zone)
            row += [csv_cell(v) for v in (text.label, text.source or "", text.target, text.body)]
        out.writerow(row)
        if buffer.tell() > size:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_row(r: AuditRecord) -> list[Any]:
    """One entry as a CSV row of :data:`CSV_COLUMNS` (the payload as sorted JSON), formula-safe."""
    row = record_json(r)
    return [csv_cell(json.dumps(row["payload"], ensure_ascii=False, sort_keys=True)) if c == "payload"
            else ("" if row[c] is None else csv_cell(row[c])) for c in CSV_COLUMNS]
