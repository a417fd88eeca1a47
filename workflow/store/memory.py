"""The in-memory store: the storage port without a database, for tests, dry runs and embedding.

It keeps the same promises as the SQL store within one process: one change is applied whole or not at
all (under one lock), updates are checked against the paper's version, the trail is hash-chained the
same way, and the outbox claims with leases and fences completion with the claim token. Nothing
survives the process.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..access import is_public
from ..chain import GENESIS
from ..deadlines import audience as deadline_audience
from ..decisions import Decided, DecisionItem, deciding, sort_moment
from ..definition import Definition
from ..errors import ConflictError, NotFoundError
from ..i18n import _
from ..paper import Change, PaperState, bodies_at
from . import SCHEMA_HEAD
from .port import TokenRow
from .records import (
    NO_FOLLOW_UPS,
    SYSTEM,
    AuditRecord,
    DeadlineDiff,
    DeadlineRecord,
    FileRecord,
    FollowUpDiff,
    FollowUpRecord,
    NewChild,
    Note,
    PaperMail,
    ReminderRecord,
    StoredPaper,
    chain_entries,
    chain_notes,
    definition_note,
    digest_message_id,
    mail_note,
    paper_mail_message_id,
    paper_mail_note,
    reminder_message_id,
    token_note,
)

if TYPE_CHECKING:
    from ..follow_up import Owed

__all__ = ["MemoryStore"]

_AUDIT_FILTERS = ("reference", "workflow", "actor", "trigger", "body", "from_state", "to_state")
#: The rows a sender may finish: its claim, also when the deadline ended meanwhile (the mail went out or failed).
_FINISHING = ("claimed", "cancelled")


@dataclass
class _Token:
    id: int
    email: str
    label: str
    token_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    scope: str = "api"


class MemoryStore:
    """Papers, definitions, trail, deadlines, mails and tokens in this process's memory."""

    dialect = "memory"
    local_file = None  # nothing on disk

    def __init__(self, name: str = "") -> None:
        self.url = f"memory://{name}"
        self._lock = threading.RLock()
        self._definitions: dict[tuple[str, int], tuple[str, str]] = {}  # -> (hash, text)
        self._papers: dict[str, StoredPaper] = {}
        self._audit: list[AuditRecord] = []
        self._by_paper: dict[str, list[int]] = {}  # reference -> indexes into _audit
        self._deadlines: list[DeadlineRecord] = []
        self._reminders: list[ReminderRecord] = []
        self._message_ids: set[str] = set()
        self._tokens: list[_Token] = []
        self._beats: dict[str, datetime] = {}
        # deadline id -> the addresses it is listed for and from when (workflow.deadlines.audience); running only
        self._audience: dict[int, dict[str, datetime | None]] = {}
        self._bodies: dict[str, frozenset[str]] = {}  # reference -> the bodies it is at (bodies_at)
        self._oparl: dict[str, tuple[int, str]] = {}  # reference -> (version, OParl text)
        self._follow_ups: list[FollowUpRecord] = []  # by id - 1
        # The Beschlusskontrolle: per body and follow-up paper its decision; per paper whether its state is
        # delayed or final (the SQL store's decisions table, whose child columns are read here when asked).
        self._decisions: list[tuple[str, str, Decided, str, int, str]] = []  # body, parent, decided, name, n, child
        self._flags: dict[str, tuple[bool, bool]] = {}
        self._files: list[tuple[FileRecord, bytes]] = []  # the attachments, by id - 1
        self._outbox = MemoryOutbox(self)
        self._token_port = MemoryTokens(self)

    @property
    def outbox(self) -> MemoryOutbox:
        return self._outbox

    @property
    def tokens(self) -> MemoryTokens:
        return self._token_port

    # --- lifecycle ---------------------------------------------------------------------------

    def init(self) -> None:
        """Nothing to create: the store is ready when made."""

    def dispose(self) -> None:
        """Nothing to close."""

    def schema_revision(self) -> str | None:
        return SCHEMA_HEAD

    # --- definitions -------------------------------------------------------------------------

    def remember_definition(self, definition: Definition, text: str, now: datetime, actor: str = SYSTEM) -> None:
        key = (definition.workflow, definition.version)
        with self._lock:
            found = self._definitions.get(key)
            if found is None:
                self._definitions[key] = (definition.source_hash, text)
                self._note(None, [definition_note(definition.workflow, definition.version, definition.source_hash,
                                                  actor, now)])
            elif found[0] != definition.source_hash:
                raise ConflictError(
                    _("{path}: workflow '{workflow}' version {version} is already in use with different content; "
                      "raise 'version' to change it").format(path=definition.source_path,
                                                             workflow=definition.workflow, version=definition.version))

    def stored_definition(self, workflow: str, version: int) -> tuple[str, str]:
        found = self._definitions.get((workflow, version))
        if found is None:
            raise NotFoundError(_("workflow '{workflow}' version {version} is not stored in the database").format(
                workflow=workflow, version=version))
        return found

    def iter_definitions(self) -> Iterator[tuple[str, int, str, str]]:
        for (workflow, version), (digest, text) in sorted(self._definitions.items()):
            yield workflow, version, digest, text

    # --- papers ------------------------------------------------------------------------------

    def load(self, reference: str) -> StoredPaper:
        found = self._papers.get(reference)
        if found is None:
            raise NotFoundError(_("no paper with reference '{reference}'").format(reference=reference))
        return found

    def references(self, workflow: str | None = None) -> list[str]:
        with self._lock:
            papers = sorted(self._papers.values(), key=lambda p: p.id)
        return [p.reference for p in papers if workflow is None or p.workflow == workflow]

    def iter_papers(self, batch: int = 500) -> Iterator[StoredPaper]:
        with self._lock:
            papers = sorted(self._papers.values(), key=lambda p: p.id)
        yield from papers

    def create(self, reference: str, definition: Definition, state: PaperState, changes: Sequence[Change],
               deadlines: DeadlineDiff = ((), ()), follow_ups: FollowUpDiff = NO_FOLLOW_UPS) -> StoredPaper:
        with self._lock:
            for ref in (reference, *(c.owed.reference for c in follow_ups[1])):
                if ref in self._papers:
                    raise ConflictError(_("a paper with reference '{reference}' exists already").format(
                        reference=ref))
            paper_id = max((p.id for p in self._papers.values()), default=0) + 1
            paper = StoredPaper(paper_id, reference, definition.workflow, definition.version, definition.source_hash,
                                state, 1, changes[0].at, changes[-1].at)
            created = self._write(paper, paper, definition, state, changes, deadlines)
            self._write_follow_ups(reference, follow_ups, changes[-1].at)
            return created

    def save(self, paper: StoredPaper, definition: Definition, state: PaperState, changes: Sequence[Change],
             deadlines: DeadlineDiff = ((), ()), follow_ups: FollowUpDiff = NO_FOLLOW_UPS,
             mails: Sequence[PaperMail] = ()) -> int:
        with self._lock:
            current = self._papers.get(paper.reference)
            if current is None or current.version != paper.version or current.id != paper.id:
                raise ConflictError(_("{reference} was changed by someone else meanwhile; retry").format(
                    reference=paper.reference))
            for child in follow_ups[1]:
                if child.owed.reference in self._papers:
                    raise ConflictError(_("a paper with reference '{reference}' exists already").format(
                        reference=child.owed.reference))
            new = replace(current, workflow_version=definition.version, definition_hash=definition.source_hash,
                          state=state, version=current.version + 1, updated_at=changes[-1].at)
            version = self._write(current, new, definition, state, changes, deadlines, mails).version
            self._write_follow_ups(paper.reference, follow_ups, changes[-1].at)
            return version

    # --- follow-ups --------------------------------------------------------------------------

    def _write_follow_ups(self, reference: str, diff: FollowUpDiff, now: datetime) -> None:
        """As the SQL store's: end, create (each child with its parent's entry), plan, record failures."""
        ended, children, planned, failed = diff
        for i, row in enumerate(self._follow_ups):
            if row.reference == reference and row.name in ended and row.status == "planned":
                self._follow_ups[i] = replace(row, status="ended", done_at=now)
        for child in children:
            self._create_child(reference, child)
            self._add_follow_up(reference, child.owed, "created", now)
        for owed in planned:
            self._add_follow_up(reference, owed, "planned", None)
        for owed, error in failed:
            self._add_follow_up(reference, owed, "failed", now, error)

    def _create_child(self, parent: str, child: NewChild) -> None:
        paper_id = max((p.id for p in self._papers.values()), default=0) + 1
        owed, changes = child.owed, child.changes
        paper = StoredPaper(paper_id, owed.reference, child.definition.workflow, child.definition.version,
                            child.definition.source_hash, child.state, 1, changes[0].at, changes[-1].at)
        self._write(paper, paper, child.definition, child.state, changes, child.deadlines)
        self._note(parent, [child.note])
        entries = [self._audit[i] for i in self._by_paper.get(parent, [])]
        for d in deciding((e.kind, e.from_state, e.to_state, e.body, e.at, e.payload) for e in entries
                          if e.kind in ("transition", "branch") and e.at <= owed.anchor_at):
            self._decisions.append((d.body, parent, d, owed.name, owed.n, owed.reference))
        for f in child.files:
            self._files.append((FileRecord(len(self._files) + 1, owed.reference, f.name, f.media_type,
                                           len(f.content), f.sha256, changes[0].at), f.content))
        self._oparl.pop(parent, None)  # the parent's OParl object lists its follow-up papers: build it again

    def _add_follow_up(self, reference: str, owed: Owed, status: str, done: datetime | None,
                       error: str | None = None) -> None:
        self._follow_ups.append(FollowUpRecord(len(self._follow_ups) + 1, reference, owed.name, owed.n, owed.reference,
                                               owed.workflow, owed.due_at, status, done, error, owed.anchor_at))

    def complete_follow_up(self, row: FollowUpRecord, now: datetime, child: NewChild | None,
                           following: Owed | None = None, error: str | None = None) -> bool:
        with self._lock:
            index = row.id - 1
            if self._follow_ups[index].status != "planned":
                return False
            if child is not None and child.owed.reference in self._papers:
                raise ConflictError(_("a paper with reference '{reference}' exists already").format(
                    reference=child.owed.reference))
            status = "created" if child is not None else ("failed" if error else "ended")
            self._follow_ups[index] = replace(self._follow_ups[index], status=status, done_at=now, error=error)
            if child is not None:
                self._create_child(row.reference, child)
            if following is not None:
                self._add_follow_up(row.reference, following, "planned", None)
            return True

    def due_follow_ups(self, until: datetime, limit: int = 100) -> list[FollowUpRecord]:
        with self._lock:
            due = [r for r in self._follow_ups if r.status == "planned" and r.due_at <= until]
        return sorted(due, key=lambda r: (r.due_at, r.id))[:limit]

    def follow_ups(self, reference: str) -> list[FollowUpRecord]:
        with self._lock:
            return sorted((r for r in self._follow_ups if r.reference == reference), key=lambda r: (r.name, r.n))

    def parent_of(self, reference: str) -> FollowUpRecord | None:
        with self._lock:
            return next((r for r in self._follow_ups if r.child == reference and r.status == "created"), None)

    def files(self, reference: str) -> list[FileRecord]:
        with self._lock:
            return [f for f, _content in self._files if f.reference == reference]

    def file_content(self, reference: str, name: str) -> bytes:
        with self._lock:
            found = next((c for f, c in self._files if f.reference == reference and f.name == name), None)
        if found is None:
            raise NotFoundError(_("{reference} has no attachment '{name}'").format(reference=reference, name=name))
        return found

    def iter_file_hashes(self) -> Iterator[tuple[FileRecord, str]]:
        with self._lock:
            files = list(self._files)
        for f, content in files:
            yield f, hashlib.sha256(content).hexdigest()

    def _write(self, old: StoredPaper, new: StoredPaper, definition: Definition, state: PaperState,
               changes: Sequence[Change], deadlines: DeadlineDiff, mails: Sequence[PaperMail] = ()) -> StoredPaper:
        """Everything of one change, computed first and then applied, so a failure leaves nothing."""
        seq, prev = self.head()
        entries = chain_entries(seq, prev, new.reference, definition, changes)
        new = replace(new, last_seq=entries[-1].seq, last_hash=entries[-1].hash)
        deadline_rows, reminder_rows, ended = self._deadline_rows(new, deadlines, changes[-1].at)
        listed = {row.id: dict(deadline_audience(definition, planned))
                  for row, planned in zip(deadline_rows, deadlines[1], strict=True)}
        for mail in mails:
            reminder_rows.append(ReminderRecord(len(self._reminders) + len(reminder_rows) + 1, None, new.id,
                                                new.reference, mail.kind, mail.label, mail.send_at, mail.recipients,
                                                dict(mail.payload),
                                                paper_mail_message_id(new.reference, new.last_seq, mail),
                                                "pending", 0, mail.send_at, None, None, None, None))
        # nothing below can fail
        self._papers[new.reference] = new
        self._bodies[new.reference] = bodies_at(definition, state)
        spec = definition.states[state.state]
        self._flags[new.reference] = (spec.delayed, spec.final)
        indexes = self._by_paper.setdefault(new.reference, [])
        for e in entries:
            indexes.append(len(self._audit))
            self._audit.append(e)
        now, notes = changes[-1].at, list[Note]()
        for n, d in enumerate(self._deadlines):
            if d.status == "running" and d.reference == new.reference and (d.name, d.branch) in ended:
                self._deadlines[n] = replace(d, status="ended", ended_at=now)
                self._audience.pop(d.id, None)
                for m, r in enumerate(self._reminders):
                    if r.deadline_id == d.id and r.status in ("pending", "claimed"):
                        # a row being sent right now keeps its claim: its sender records what became of it
                        sending = r.status == "claimed" and r.next_attempt_at > now
                        self._reminders[m] = replace(r, status="cancelled", last_error=None,
                                                     claim_token=r.claim_token if sending else None)
                        if not sending and r.send_at <= now:
                            notes.append(mail_note(r, d, definition.workflow, definition.version, "skipped", now,
                                                   attempts=r.attempts))
        self._note(new.reference, notes)
        self._deadlines.extend(deadline_rows)
        self._audience.update(listed)
        self._reminders.extend(reminder_rows)
        self._message_ids.update(r.message_id for r in reminder_rows)
        return new

    def _note(self, reference: str | None, notes: list[Note]) -> None:
        """Append ``notes`` to the trail (and to the paper's entries); the caller holds the lock."""
        seq, prev = self.head()
        for e in chain_notes(seq, prev, notes):
            if reference is not None:
                self._by_paper.setdefault(reference, []).append(len(self._audit))
            self._audit.append(e)

    def _deadline_rows(self, paper: StoredPaper, diff: DeadlineDiff, now: datetime
                       ) -> tuple[list[DeadlineRecord], list[ReminderRecord], set[tuple[str, str]]]:
        ended, started = diff
        deadlines: list[DeadlineRecord] = []
        reminders: list[ReminderRecord] = []
        next_deadline = len(self._deadlines) + 1
        next_reminder = len(self._reminders) + 1
        for d in started:
            deadline_id = next_deadline + len(deadlines)
            deadlines.append(DeadlineRecord(deadline_id, paper.reference, d.name, d.label, d.state, d.branch, d.body,
                                            d.due_at, d.anchor, d.anchor_at, now, "running", None))
            for r in d.reminders:
                message_id = reminder_message_id(paper.reference, deadline_id, d.name, d.branch, r.kind, r.label, now,
                                                 d.due_at)
                if message_id in self._message_ids or any(x.message_id == message_id for x in reminders):
                    raise ConflictError(_("{reference}: mail {message_id} is queued already").format(
                        reference=paper.reference, message_id=message_id))
                reminders.append(ReminderRecord(next_reminder + len(reminders), deadline_id, paper.id,
                                                paper.reference, r.kind, r.label, r.send_at, tuple(r.recipients), {},
                                                message_id, "pending", 0, r.send_at, None, None, None, None))
        return deadlines, reminders, set(ended)

    # --- audit -------------------------------------------------------------------------------

    def history(self, reference: str, until: datetime | None = None) -> list[AuditRecord]:
        with self._lock:
            records = [self._audit[i] for i in self._by_paper.get(reference, [])]
        return [r for r in records if until is None or r.at <= until]

    def load_with_history(self, references: Sequence[str]) -> list[tuple[StoredPaper, list[AuditRecord]]]:
        with self._lock:
            papers = [self._papers[r] for r in references if r in self._papers]
        return [(p, self.history(p.reference)) for p in papers]

    def iter_audit(self, batch: int = 2000, **filters: Any) -> Iterator[AuditRecord]:
        with self._lock:
            records = list(self._audit)
        since, until = filters.get("since"), filters.get("until")
        for r in records:
            if any(filters.get(k) is not None and getattr(r, k) != filters[k] for k in _AUDIT_FILTERS):
                continue
            if (since is not None and r.at < since) or (until is not None and r.at > until):
                continue
            yield r

    def page_audit(self, limit: int, before: int | None = None, **filters: Any) -> list[AuditRecord]:
        found = [r for r in self.iter_audit(**filters) if before is None or r.seq < before]
        return found[::-1][:limit]

    # --- paged lists (the same answers as the SQL store, by scanning) ----------------------------

    def page_papers(self, limit: int, after: str | None = None, *, workflow: str | None = None,
                    state: str | None = None, body: str | None = None, due_before: datetime | None = None,
                    readable: Collection[str] | None = None) -> list[StoredPaper]:
        with self._lock:
            papers = sorted(self._papers.values(), key=lambda p: p.reference)
            due: dict[str, datetime] = {}
            if due_before is not None:
                for d in self._deadlines:
                    if d.status == "running" and (d.reference not in due or d.due_at < due[d.reference]):
                        due[d.reference] = d.due_at
            out = []
            for p in papers:
                if (after is not None and p.reference <= after) or (workflow is not None and p.workflow != workflow) \
                        or (state is not None and p.state.state != state) \
                        or (body is not None and body not in self._bodies.get(p.reference, ())) \
                        or (due_before is not None and not (p.reference in due and due[p.reference] < due_before)) \
                        or (readable is not None and not is_public(p.state) and p.definition_hash not in readable):
                    continue
                out.append(p)
                if len(out) == limit:
                    break
            return out

    def page_decisions(self, body: str, limit: int, after: tuple[datetime, int] | None = None, *,
                       status: str = "offen", readable: Collection[str] | None = None) -> list[DecisionItem]:
        with self._lock:
            found = []
            for id_, (b, parent, decided, name, n, ref) in enumerate(self._decisions):
                paper, child = self._papers[parent], self._papers[ref]
                delayed, final = self._flags[ref]
                if b != body or final != (status == "erledigt") or (status == "verzoegert" and not delayed) \
                        or (readable is not None and any(not is_public(p.state) and p.definition_hash not in readable
                                                         for p in (paper, child))):
                    continue
                running = sorted((d.due_at, d.id, d.name) for d in self._deadlines
                                 if d.reference == ref and d.status == "running")
                target = running[0][0] if running else None
                key = (sort_moment(target, delayed), id_ + 1)
                if after is not None and key <= after:
                    continue
                found.append((key, DecisionItem(
                    b, parent, str(paper.state.fields.get("title") or ""), decided.at, decided.result, name, n, ref,
                    str(child.state.fields.get("title") or ""), child.workflow, child.workflow_version,
                    child.definition_hash, child.state.state, delayed, final, target,
                    running[0][2] if running else None, key)))
            found.sort(key=lambda pair: pair[0])
            return [item for _key, item in found[:limit]]

    def page_running_deadlines(self, limit: int, after: tuple[datetime, int] | None = None, *,
                               audience: str | None = None, now: datetime | None = None
                               ) -> list[tuple[StoredPaper, DeadlineRecord]]:
        with self._lock:
            found = []
            for d in sorted(self._deadlines, key=lambda d: (d.due_at, d.id)):
                if d.status != "running" or (after is not None and (d.due_at, d.id) <= after):
                    continue
                paper = self._papers[d.reference]
                if audience is not None:
                    listed = self._audience.get(d.id, {})
                    if audience not in listed:
                        continue
                    since = listed[audience]
                    if now is not None and since is not None and since > now:
                        continue
                found.append((paper, d))
                if len(found) == limit:
                    break
            return found

    def oparl_page(self, offset: int, limit: int, *, modified_since: datetime | None = None
                   ) -> tuple[int, list[tuple[str, int, str | None]]]:
        with self._lock:
            children = {r.reference for r in self._follow_ups if modified_since is not None and r.status == "created"
                        and r.done_at is not None and r.done_at >= modified_since}
            papers = [p for p in sorted(self._papers.values(), key=lambda p: p.id)
                      if is_public(p.state) and (modified_since is None or p.updated_at >= modified_since
                                                 or p.reference in children)]
            kept = {ref: text for ref, (version, text) in self._oparl.items()
                    if self._papers[ref].version == version}
        return len(papers), [(p.reference, p.version, kept.get(p.reference)) for p in papers[offset:offset + limit]]

    def keep_oparl(self, built: Sequence[tuple[StoredPaper, str]]) -> None:
        with self._lock:
            for paper, text in built:
                current = self._papers.get(paper.reference)
                if current is not None and current.version == paper.version:
                    self._oparl[paper.reference] = (paper.version, text)

    def head(self) -> tuple[int, str]:
        with self._lock:
            return (self._audit[-1].seq, self._audit[-1].hash) if self._audit else (0, GENESIS)

    def count_audit(self) -> int:
        return len(self._audit)

    def beat(self, worker: str, now: datetime) -> None:
        with self._lock:
            self._beats[worker] = now

    def last_beat(self) -> tuple[str, datetime] | None:
        with self._lock:
            if not self._beats:
                return None
            worker = max(self._beats, key=lambda w: self._beats[w])
            return worker, self._beats[worker]


class MemoryOutbox:
    """The outbox port over the memory store's deadlines and mails."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def deadlines(self, reference: str, *, running_only: bool = True) -> list[DeadlineRecord]:
        with self.store._lock:
            found = [d for d in self.store._deadlines
                     if d.reference == reference and (d.status == "running" or not running_only)]
        return sorted(found, key=lambda d: (d.due_at, d.id))

    def reminders(self, *, reference: str | None = None, deadline_id: int | None = None,
                  statuses: Sequence[str] = ("pending",), due_before: datetime | None = None,
                  limit: int = 10_000, deadline_ids: Collection[int] | None = None) -> list[ReminderRecord]:
        with self.store._lock:
            found = [r for r in self.store._reminders if r.status in statuses
                     and (reference is None or r.reference == reference)
                     and (deadline_id is None or r.deadline_id == deadline_id)
                     and (deadline_ids is None or r.deadline_id in deadline_ids)
                     and (due_before is None or r.next_attempt_at <= due_before)]
        return sorted(found, key=lambda r: (r.next_attempt_at, r.id))[:limit]

    def _update(self, reminder: ReminderRecord, outcome: tuple[str, datetime, Mapping[str, str] | None,
                str | None] | None = None, statuses: tuple[str, ...] = ("claimed",), count: bool = True,
                **values: Any) -> bool:
        """Fenced completion: only the holder of the current claim may finish the row; with ``outcome``
        (outcome, now, Message-IDs, error) its ``mail`` entry is appended at once (not for a digest)."""
        store = self.store
        with store._lock:
            rows = store._reminders
            current = rows[reminder.id - 1]
            if current.status not in statuses or current.claim_token != reminder.claim_token:
                return False
            rows[reminder.id - 1] = replace(current, attempts=current.attempts + count, **values)
            if outcome is not None and current.deadline_id is None and current.reference is not None:
                paper = store._papers[current.reference]  # a paper's mail of no deadline (PaperMail)
                kind, now, message_ids, error = outcome
                store._note(paper.reference, [paper_mail_note(reminder, paper.workflow, paper.workflow_version, kind,
                                                              now, attempts=reminder.attempts + count,
                                                              message_ids=message_ids, error=error)])
            elif outcome is not None and current.deadline_id is not None:
                deadline = store._deadlines[current.deadline_id - 1]
                paper = store._papers[deadline.reference]
                kind, now, message_ids, error = outcome
                store._note(paper.reference, [mail_note(reminder, deadline, paper.workflow, paper.workflow_version,
                                                        kind, now, attempts=reminder.attempts + count,
                                                        message_ids=message_ids, error=error)])
            return True

    def claim(self, now: datetime, *, worker: str, lease: timedelta, limit: int = 100) -> list[ReminderRecord]:
        with self.store._lock:
            due = self.reminders(statuses=("pending", "claimed"), due_before=now, limit=limit)
            token = secrets.token_hex(16)
            claimed = []
            for r in due:
                row = replace(r, status="claimed", claim_token=token, claimed_by=worker, next_attempt_at=now + lease)
                self.store._reminders[r.id - 1] = row
                claimed.append(row)
        return sorted(claimed, key=lambda r: (r.send_at, r.id))

    def mark_sent(self, reminder: ReminderRecord, now: datetime, message_ids: Mapping[str, str] | None = None) -> bool:
        return self._update(reminder, ("sent", now, message_ids, None), _FINISHING, status="sent", sent_at=now,
                            last_error=None)

    def mark_retry(self, reminder: ReminderRecord, at: datetime, error: str) -> bool:
        return self._update(reminder, status="pending", next_attempt_at=at, last_error=error[:2000], claim_token=None)

    def defer(self, reminder: ReminderRecord, at: datetime) -> bool:
        with self.store._lock:
            rows = self.store._reminders
            current = rows[reminder.id - 1]
            if current.status != "claimed" or current.claim_token != reminder.claim_token:
                return False
            rows[reminder.id - 1] = replace(current, status="pending", next_attempt_at=at, claim_token=None)
            return True

    def mark_failed(self, reminder: ReminderRecord, error: str, now: datetime,
                    message_ids: Mapping[str, str] | None = None) -> bool:
        return self._update(reminder, ("failed", now, message_ids, error), _FINISHING, status="failed",
                            last_error=error[:2000], claim_token=None)

    def skip(self, reminder: ReminderRecord, now: datetime) -> bool:
        return self._update(reminder, ("skipped", now, None, None), ("cancelled",), False, claim_token=None)

    def renew(self, reminder: ReminderRecord, until: datetime, *, claim: bool = True) -> bool:
        with self.store._lock:
            rows = self.store._reminders
            if not claim:
                current = rows[reminder.id - 1]
                if current.claim_token != reminder.claim_token or current.status != "claimed":
                    return False
                rows[reminder.id - 1] = replace(current, next_attempt_at=until)
                return True
            mine = False
            for n, r in enumerate(rows):
                if r.claim_token == reminder.claim_token and r.status == "claimed":
                    rows[n] = replace(r, next_attempt_at=until)
                    mine = mine or r.id == reminder.id
            return mine

    def add_digest(self, recipient: str, day: str, send_at: datetime, payload: dict[str, Any]) -> bool:
        message_id = digest_message_id(day, recipient)
        with self.store._lock:
            if message_id in self.store._message_ids:
                return False
            rows = self.store._reminders
            label = _("Deadline overview {day}").format(day=day)
            rows.append(ReminderRecord(len(rows) + 1, None, None, None, "digest", label, send_at,
                                       (recipient,), dict(payload), message_id, "pending", 0, send_at, None, None,
                                       None, None))
            self.store._message_ids.add(message_id)
        return True

    def _reminded(self, until: datetime) -> list[tuple[DeadlineRecord, ReminderRecord]]:
        with self.store._lock:
            running = {d.id: d for d in self.store._deadlines if d.status == "running" and d.due_at <= until}
            return [(running[r.deadline_id], r) for r in self.store._reminders
                    if r.kind == "remind" and r.deadline_id in running]

    def digest_recipients(self, until: datetime) -> list[str]:
        return sorted({person for _at, r in self._reminded(until) for person in r.recipients})

    def running_for(self, recipient: str, until: datetime) -> list[DeadlineRecord]:
        found = {d.id: d for d, r in self._reminded(until) if recipient in r.recipients}
        return sorted(found.values(), key=lambda d: d.due_at)


class MemoryTokens:
    """The token port in memory."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def add(self, email: str, label: str, token_hash: str, now: datetime, *, scope: str = "api",
            actor: str = SYSTEM) -> int:
        with self.store._lock:
            rows = self.store._tokens
            if any(t.token_hash == token_hash for t in rows):
                raise ConflictError(_("this token exists already"))
            rows.append(_Token(len(rows) + 1, email, label, token_hash, now, scope=scope))
            self.store._note(None, [token_note("token_create", len(rows), email, scope, label, actor, now)])
            return len(rows)

    def email_for(self, token_hash: str, *, scope: str = "api") -> str | None:
        return next((t.email for t in self.store._tokens
                     if t.token_hash == token_hash and t.scope == scope and t.revoked_at is None), None)

    def revoke(self, token_id: int, now: datetime, *, actor: str = SYSTEM) -> bool:
        with self.store._lock:
            for t in self.store._tokens:
                if t.id == token_id and t.revoked_at is None:
                    t.revoked_at = now
                    self.store._note(None, [token_note("token_revoke", t.id, t.email, t.scope, t.label, actor,
                                                       now)])
                    return True
        return False

    def all(self) -> list[TokenRow]:
        return [(t.id, t.email, t.label, t.created_at, t.revoked_at, t.scope) for t in self.store._tokens]
