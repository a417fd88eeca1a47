"""Verification of the audit trail: the hash chain, each paper's pointer to its newest entry, and
(given the definitions) that every paper's stored state is what its trail replays to."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from .chain import GENESIS
from .errors import WorkflowError
from .paper import PaperState
from .replay import Replay, Resolver, steps
from .store import AuditRecord, Store

__all__ = ["CSV_COLUMNS", "Period", "VerifyReport", "csv_row", "record_json", "timeline", "verify"]


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
    With ``definitions`` every paper's trail is replayed and compared with its stored state.
    """
    expected_seq, prev, count = 1, GENESIS, 0
    seen_head = head is None or head == GENESIS
    newest: dict[str, tuple[int, str]] = {}
    replay = Replay(definitions) if definitions is not None else None

    def broken(seq: int | None, message: str) -> VerifyReport:
        return VerifyReport(False, count, expected_seq - 1, prev, message, seq)

    for entry in store.iter_audit():
        label = f"entry {entry.seq} ({entry.reference}, {entry.trigger})"
        if entry.seq != expected_seq:
            what = "deleted" if entry.seq > expected_seq else "out of order"
            return broken(
                expected_seq,
                f"entry {expected_seq} is missing ({what}): found entry {entry.seq} after entry {expected_seq - 1}",
            )
        if entry.prev_hash != prev:
            return broken(
                entry.seq,
                f"{label} does not link to entry {entry.seq - 1}: entries were inserted, deleted or reordered",
            )
        if entry.expected_hash() != entry.hash:
            return broken(entry.seq, f"{label} was edited: its content does not match its hash")
        if replay is not None:
            try:
                replay.step(entry)
            except WorkflowError as exc:
                return broken(entry.seq, f"{label} cannot be replayed: {exc.message}")
        newest[entry.reference] = (entry.seq, entry.hash)
        prev = entry.hash
        seen_head = seen_head or entry.hash == head
        expected_seq += 1
        count += 1
    for paper in store.iter_papers():
        seq, digest = newest.pop(paper.reference, (0, GENESIS))
        if paper.last_seq > seq:
            return broken(
                paper.last_seq,
                f"entry {paper.last_seq}, the newest of {paper.reference}, is missing:"
                " entries were cut off the trail",
            )
        if paper.last_seq < seq:
            return broken(
                seq, f"{paper.reference} points to entry {paper.last_seq}, but its trail goes on to entry {seq}"
            )
        if paper.last_hash != digest:
            return broken(seq, f"{paper.reference} points to entry {seq} with another hash: the entry was rewritten")
        if replay is not None and replay.states.get(paper.reference) != paper.state:
            return broken(
                seq,
                f"{paper.reference}: its stored state differs from what its trail replays to:"
                " the papers table was edited",
            )
    if newest:
        orphan = min(newest, key=lambda ref: newest[ref][0])
        return broken(newest[orphan][0], f"entries of {orphan} exist, but the paper itself was deleted")
    if not seen_head:
        return broken(None, f"the kept head hash {head} is not in the chain: the trail was cut or rewritten")
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


def csv_row(r: AuditRecord) -> list[Any]:
    """One entry as a CSV row of :data:`CSV_COLUMNS` (the payload as sorted JSON)."""
    row = record_json(r)
    return [json.dumps(row["payload"], ensure_ascii=False, sort_keys=True) if c == "payload"
            else ("" if row[c] is None else row[c]) for c in CSV_COLUMNS]
