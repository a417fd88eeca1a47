"""What every store adapter reads and writes: the records of papers, entries, deadlines and mails,
and the rules that are the same on every backend (numbering and hashing entries, Message-IDs).
Pure: no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from ..chain import GENESIS, canonical_json, entry_hash
from ..definition import Definition
from ..paper import NOTE_KINDS, SYSTEM_ACTOR, Change, ChangeKind, PaperState

if TYPE_CHECKING:
    from ..deadlines import PlannedDeadline
    from ..follow_up import Owed

__all__ = ["NOTE_KINDS", "AuditRecord", "DeadlineDiff", "DeadlineRecord", "FileRecord", "FollowUpDiff",
           "FollowUpRecord", "NewChild", "NewFile", "Note", "PaperMail", "ReminderRecord", "StoredPaper", "body_of",
           "chain_entries", "chain_notes", "definition_note", "follow_up_note", "mail_note", "paper_mail_message_id",
           "reminder_message_id", "token_note"]

# NOTE_KINDS (workflow/paper.py): replay passes over these entries, and a paper's pointer to its newest entry
# never points at one.
#: The actor of what the installation does itself (sending mail; the CLI's administration).
SYSTEM = SYSTEM_ACTOR

#: Deadlines a change ends (name, branch) and the ones it starts, planned.
DeadlineDiff = tuple[Sequence[tuple[str, str]], Sequence["PlannedDeadline"]]


@dataclass(frozen=True)
class StoredPaper:
    """A paper as loaded: identity, definition pin, state and the lock version."""

    id: int
    reference: str
    workflow: str
    workflow_version: int
    definition_hash: str
    state: PaperState
    version: int
    created_at: datetime
    updated_at: datetime
    last_seq: int = 0
    last_hash: str = GENESIS


@dataclass(frozen=True)
class AuditRecord:
    """One stored audit entry."""

    seq: int
    reference: str
    workflow: str
    workflow_version: int
    kind: str
    trigger: str
    from_state: str | None
    to_state: str
    branch: str | None
    body: str | None
    actor: str
    at: datetime
    payload_text: str
    prev_hash: str
    hash: str

    @property
    def payload(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.payload_text)
        return value

    @property
    def is_note(self) -> bool:
        """Whether the entry only records something (a mail, an administrative act): see :data:`NOTE_KINDS`."""
        return self.kind in NOTE_KINDS

    def to_change(self) -> Change:
        return Change(cast(ChangeKind, self.kind), self.trigger, self.from_state, self.to_state, self.actor, self.at,
                      self.branch, self.payload)

    def expected_hash(self) -> str:
        return entry_hash(seq=self.seq, reference=self.reference, workflow=self.workflow,
                          workflow_version=self.workflow_version, kind=self.kind, trigger=self.trigger,
                          from_state=self.from_state, to_state=self.to_state, branch=self.branch, body=self.body,
                          actor=self.actor, at=self.at, payload=self.payload_text, prev_hash=self.prev_hash)


@dataclass(frozen=True)
class DeadlineRecord:
    """A stored deadline of a paper."""

    id: int
    reference: str
    name: str
    label: str
    state: str
    branch: str
    body: str | None
    due_at: datetime
    anchor: str
    anchor_at: datetime
    started_at: datetime
    status: str
    ended_at: datetime | None


@dataclass(frozen=True)
class ReminderRecord:
    """One mail of the outbox."""

    id: int
    deadline_id: int | None
    paper_id: int | None
    reference: str | None
    kind: str
    label: str
    send_at: datetime
    recipients: tuple[str, ...]
    payload: dict[str, Any]
    message_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    claim_token: str | None
    claimed_by: str | None
    sent_at: datetime | None
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "reference": self.reference, "kind": self.kind, "label": self.label,
            "send_at": self.send_at.isoformat(), "recipients": list(self.recipients), "status": self.status,
            "attempts": self.attempts, "next_attempt_at": self.next_attempt_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None, "last_error": self.last_error,
            "message_id": self.message_id,
        }


def reminder_message_id(reference: str, deadline_id: int, name: str, branch: str, kind: str, label: str,
                        started: datetime, due: datetime) -> str:
    """A stable, unique Message-ID for one reminder (stored with it: a resend after a crash carries the same
    one). The deadline row's id makes it unique: a deadline may start twice at one instant with the same due
    moment (marked done and taken back within the minute)."""
    basis = "\x1f".join([reference, str(deadline_id), name, branch, kind, label, started.isoformat(), due.isoformat()])
    digest = hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}.{kind}@councilflow>"


@dataclass(frozen=True)
class PaperMail:
    """A mail about a paper that belongs to no deadline (the sign-offs of a paper were voided), queued in the
    transaction of the change that causes it; ``payload`` is what its template needs besides the paper."""

    kind: str
    label: str
    recipients: tuple[str, ...]
    send_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)


def paper_mail_message_id(reference: str, seq: int, mail: PaperMail) -> str:
    """A stable, unique Message-ID for a paper's mail without a deadline; ``seq``: the trail entry of the
    change that queues it (one such mail a change), so the same mail queued twice at one instant differs."""
    basis = "\x1f".join([reference, str(seq), mail.kind, mail.label, mail.send_at.isoformat(), *mail.recipients])
    digest = hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}.{mail.kind}@councilflow>"


def digest_message_id(day: str, recipient: str) -> str:
    """The Message-ID of one person's deadline overview of one day (queued once)."""
    key = hashlib.sha256(recipient.lower().encode("utf-8")).hexdigest()[:16]
    return f"<digest.{day}.{key}@councilflow>"


def body_of(definition: Definition, change: Change) -> str | None:
    """The body an entry concerns: the branch's; else the consultation's of the state it happened in
    (the body that decided); else the consultation's of the state it led to (the body it went to)."""
    if change.branch is not None:
        return change.branch
    for state in (change.from_state, change.to_state):
        spec = definition.states.get(state) if state else None  # a migration's old state may be gone
        consultation = spec.consultation if spec else None
        if consultation is not None:
            return consultation.body
    return None


def chain_entries(last_seq: int, last_hash: str, reference: str, definition: Definition,
                  changes: Sequence[Change]) -> list[AuditRecord]:
    """Number and hash ``changes`` after the trail's last entry (the caller holds the append lock);
    the entries to append, with their ``at`` in UTC."""
    seq, prev = last_seq, last_hash
    rows = []
    for change in changes:
        seq += 1
        payload = canonical_json(dict(change.payload))
        at = change.at.astimezone(UTC)
        body = body_of(definition, change)
        digest = entry_hash(seq=seq, reference=reference, workflow=definition.workflow,
                            workflow_version=definition.version, kind=change.kind, trigger=change.trigger,
                            from_state=change.from_state, to_state=change.to_state, branch=change.branch,
                            body=body, actor=change.actor, at=at, payload=payload, prev_hash=prev)
        rows.append(AuditRecord(seq, reference, definition.workflow, definition.version, change.kind,
                                change.trigger, change.from_state, change.to_state, change.branch, body,
                                change.actor, at, payload, prev, digest))
        prev = digest
    return rows


@dataclass(frozen=True)
class Note:
    """An entry of kind ``mail`` or ``admin`` before it is numbered and chained (see :data:`NOTE_KINDS`).
    Without a paper its ``reference`` and ``to_state`` are empty; without a workflow ``workflow`` is empty
    and ``workflow_version`` 0."""

    kind: str
    trigger: str
    actor: str
    at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    reference: str = ""
    workflow: str = ""
    workflow_version: int = 0
    branch: str | None = None
    body: str | None = None


def chain_notes(last_seq: int, last_hash: str, notes: Sequence[Note]) -> list[AuditRecord]:
    """Number and hash ``notes`` after the trail's last entry (the caller holds the append lock)."""
    seq, prev = last_seq, last_hash
    rows = []
    for note in notes:
        seq += 1
        payload = canonical_json(dict(note.payload))
        at = note.at.astimezone(UTC)
        digest = entry_hash(seq=seq, reference=note.reference, workflow=note.workflow,
                            workflow_version=note.workflow_version, kind=note.kind, trigger=note.trigger,
                            from_state=None, to_state="", branch=note.branch, body=note.body, actor=note.actor,
                            at=at, payload=payload, prev_hash=prev)
        rows.append(AuditRecord(seq, note.reference, note.workflow, note.workflow_version, note.kind, note.trigger,
                                None, "", note.branch, note.body, note.actor, at, payload, prev, digest))
        prev = digest
    return rows


#: The outcomes of a mail entry; ``reason`` of a skipped mail: its deadline ended before it was sent.
MAIL_OUTCOMES = ("sent", "failed", "skipped")
DEADLINE_ENDED = "deadline_ended"


def mail_note(reminder: ReminderRecord, deadline: DeadlineRecord, workflow: str, workflow_version: int,
              outcome: str, at: datetime, *, attempts: int, message_ids: Mapping[str, str] | None = None,
              error: str | None = None) -> Note:
    """The entry of a reminder, escalation or late notice that was sent, finally failed or skipped:
    its paper, deadline, kind, recipients, the Message-ID each recipient's copy carried (the header value,
    when the mail was built), the outcome with the error or reason, and the attempts made."""
    assert outcome in MAIL_OUTCOMES, outcome
    payload: dict[str, Any] = {
        "mail": reminder.kind, "mail_id": reminder.id, "label": reminder.label, "outcome": outcome,
        "deadline": deadline.name, "deadline_label": deadline.label, "due": deadline.due_at.isoformat(),
        "send_at": reminder.send_at.isoformat(), "recipients": list(reminder.recipients), "attempts": attempts,
    }
    if message_ids:
        payload["message_ids"] = dict(message_ids)
    if error:
        payload["error"] = error[:2000]
    if outcome == "skipped":
        payload["reason"] = DEADLINE_ENDED
    return Note("mail", reminder.kind, SYSTEM, at, payload, deadline.reference, workflow, workflow_version,
                deadline.branch or None, deadline.body)


def paper_mail_note(reminder: ReminderRecord, workflow: str, workflow_version: int, outcome: str, at: datetime, *,
                    attempts: int, message_ids: Mapping[str, str] | None = None, error: str | None = None) -> Note:
    """The entry of a paper's mail without a deadline (:class:`PaperMail`) that was sent or finally failed: its
    kind, label, recipients, the Message-ID of each copy, the outcome with the error, and the attempts made."""
    assert outcome in MAIL_OUTCOMES, outcome
    payload: dict[str, Any] = {"mail": reminder.kind, "mail_id": reminder.id, "label": reminder.label,
                               "outcome": outcome, "recipients": list(reminder.recipients), "attempts": attempts}
    if message_ids:
        payload["message_ids"] = dict(message_ids)
    if error:
        payload["error"] = error[:2000]
    return Note("mail", reminder.kind, SYSTEM, at, payload, reminder.reference or "", workflow, workflow_version)


def token_note(action: str, token_id: int, email: str, scope: str, label: str, actor: str, at: datetime) -> Note:
    """The entry of a token created (``token_create``) or revoked (``token_revoke``): for whom, its scope,
    id and label; never the token or its hash."""
    assert action in ("token_create", "token_revoke"), action
    return Note("admin", action, actor, at,
                {"token_id": token_id, "email": email, "scope": scope, "label": label})


def definition_note(workflow: str, version: int, source_hash: str, actor: str, at: datetime) -> Note:
    """The entry of a definition version stored at its first use (with the hash of its text)."""
    return Note("admin", "definition", actor, at,
                {"workflow": workflow, "version": version, "definition_hash": source_hash},
                workflow=workflow, workflow_version=version)


@dataclass(frozen=True)
class FollowUpRecord:
    """A stored child a paper owes (table ``follow_ups``): planned, created, ended or failed."""

    id: int
    reference: str
    name: str
    n: int
    child: str
    workflow: str
    due_at: datetime
    status: str
    done_at: datetime | None
    error: str | None
    #: When the parent entered the follow-up's state: a series counts from it.
    anchor_at: datetime


@dataclass(frozen=True)
class NewFile:
    """A document to attach to a paper in the transaction of the entry that names it (its ``meta`` is in that
    entry's payload under ``files``, so the trail's hash chain covers the file's SHA-256)."""

    name: str
    media_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def meta(self) -> dict[str, Any]:
        """What the trail keeps of the file: name, media type, size and SHA-256."""
        return {"name": self.name, "media_type": self.media_type, "size": len(self.content), "sha256": self.sha256}


@dataclass(frozen=True)
class FileRecord:
    """A stored attachment of a paper (table ``paper_files``), without its content."""

    id: int
    reference: str
    name: str
    media_type: str
    size: int
    sha256: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "media_type": self.media_type, "size": self.size, "sha256": self.sha256,
                "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class NewChild:
    """A follow-up paper to create in the same transaction as its parent's ``follow_up`` entry (``note``);
    ``definition`` is stored already."""

    owed: Owed
    definition: Definition
    state: PaperState
    changes: Sequence[Change]
    deadlines: DeadlineDiff
    note: Note
    #: Documents attached to the child (``attach``), named in its create entry.
    files: Sequence[NewFile] = ()


#: What a change does to a paper's follow-ups: the names whose planned children end, the children it creates
#: now, the children it plans (due later), and those it cannot create (owed, why).
FollowUpDiff = tuple[Sequence[str], Sequence[NewChild], Sequence["Owed"], Sequence[tuple["Owed", str]]]
NO_FOLLOW_UPS: FollowUpDiff = ((), (), (), ())


def follow_up_note(parent: str, workflow: str, workflow_version: int, owed: Owed, actor_role: str | None,
                   at: datetime) -> Note:
    """The parent's entry of a child created by the engine: which follow-up, its number, the child's reference
    and workflow, and the role on whose behalf the system created it."""
    payload: dict[str, Any] = {"follow_up": owed.name, "n": owed.n, "child": owed.reference,
                               "workflow": owed.workflow, "due": owed.due_at.isoformat()}
    if actor_role:
        payload["on_behalf_of"] = actor_role
    return Note("follow_up", owed.name, SYSTEM, at, payload, parent, workflow, workflow_version)
