"""SQLModel table models. They are storage shapes only; input is validated before it gets here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from .timecodec import from_db_or_none

__all__ = ["AuditRow", "DeadlineAudienceRow", "DeadlineRow", "DecisionRow", "DefinitionRow", "FollowUpRow",
           "HeartbeatRow", "PaperBodyRow", "PaperFileRow", "PaperRow", "ReminderRow", "TokenRow",
           "UTCDateTime"]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone, so we add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; all instants are aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return from_db_or_none(value)


_SEQ = BigInteger().with_variant(Integer(), "sqlite")


def _utc(nullable: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))


class DefinitionRow(SQLModel, table=True):
    """The text of every definition version a paper was started on."""

    __tablename__ = "definitions"
    __table_args__ = (UniqueConstraint("workflow", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    workflow: str = Field(max_length=100)
    version: int
    source_hash: str = Field(max_length=64)
    source_text: str = Field(sa_column=Column(Text, nullable=False))
    stored_at: datetime = _utc()


class PaperRow(SQLModel, table=True):
    """A paper's current state; ``version`` guards every update (optimistic locking)."""

    __tablename__ = "papers"
    # The lists page by reference (keyset) within a workflow, a state, the overdue papers; OParl by id among the
    # public papers and by modification (revisions 0006, 0011).
    __table_args__ = (Index("ix_papers_workflow_reference", "workflow", "reference"),
                      Index("ix_papers_state_reference", "state", "reference"),
                      Index("ix_papers_next_due", "next_due"),
                      Index("ix_papers_public_id", "public", "id"),
                      Index("ix_papers_modified_id", "modified_at", "id"))

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=120, unique=True)
    workflow: str = Field(max_length=100, index=True)
    workflow_version: int
    definition_hash: str = Field(max_length=64)
    state: str = Field(max_length=100, index=True)
    entered_at: datetime = _utc()
    meeting: datetime | None = _utc(nullable=True)
    branches: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    version: int = 1
    # The paper's newest audit entry: cutting entries off the trail's end shows up as a dangling pointer.
    last_seq: int = Field(sa_column=Column(_SEQ, nullable=False))
    last_hash: str = Field(max_length=64)
    # Deadlines marked done in the current visit of the state: [[name, branch], …] (NULL: none; revision 0003).
    done: list[Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Denormalised for the paged lists, written in the transaction of each change (revision 0006): whether
    # the paper is public (workflow.access.is_public), the earliest due moment of its running deadlines,
    # and its OParl object as last built ({"version", "base", "paper"}; stale when "version" differs).
    public: bool = Field(default=True, sa_column=Column(Boolean, nullable=False, server_default=text("true")))
    next_due: datetime | None = _utc(nullable=True)
    oparl: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The sign-offs standing in the current visit of the state: {role: {decision, actor, at, fields_hash, text}}
    # (NULL: none; revision 0009).
    signoffs: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # When its OParl object last changed: its last change, or a follow-up paper created for it (revision 0011;
    # workflow.oparl.modified_at). Filled by the migration, written with every change.
    modified_at: datetime | None = _utc(nullable=True)


class PaperBodyRow(SQLModel, table=True):
    """The bodies a paper is at (workflow.paper.bodies_at: its consultation's body and its branches'), for
    the body filter of the lists; rewritten in the transaction of a change that moves them (revision 0006)."""

    __tablename__ = "paper_bodies"
    __table_args__ = (Index("ix_paper_bodies_paper", "paper_id"),)

    body: str = Field(sa_column=Column(String(100), primary_key=True))
    reference: str = Field(sa_column=Column(String(120), primary_key=True))
    paper_id: int = Field(sa_column=Column(Integer, ForeignKey("papers.id"), nullable=False))


class AuditRow(SQLModel, table=True):
    """One entry of the global, hash-chained audit trail. Appended only."""

    __tablename__ = "audit"
    # One (column, seq) index per filter of the audit page, so each filter is an index range read newest first
    # (revision 0006); the period filters use the index on ``at``.
    __table_args__ = (Index("ix_audit_paper_seq", "paper_id", "seq"),
                      Index("ix_audit_reference_seq", "reference", "seq"),
                      Index("ix_audit_workflow_seq", "workflow", "seq"),
                      Index("ix_audit_actor_seq", "actor", "seq"),
                      Index("ix_audit_trigger_seq", "trigger", "seq"),
                      Index("ix_audit_body_seq", "body", "seq"),
                      Index("ix_audit_from_state_seq", "from_state", "seq"),
                      Index("ix_audit_to_state_seq", "to_state", "seq"),
                      Index("ix_audit_at", "at"))

    # On SQLite only INTEGER PRIMARY KEY is the rowid itself; BIGINT would add a second b-tree.
    seq: int = Field(sa_column=Column(_SEQ, primary_key=True, autoincrement=False))
    # NULL for an entry that belongs to no paper (kind ``admin``: tokens, definition versions; revision 0005).
    paper_id: int | None = Field(default=None, foreign_key="papers.id")
    reference: str = Field(max_length=120)
    workflow: str = Field(max_length=100)
    workflow_version: int
    kind: str = Field(max_length=20)
    trigger: str = Field(max_length=100)
    from_state: str | None = Field(default=None, max_length=100)
    to_state: str = Field(max_length=100)
    branch: str | None = Field(default=None, max_length=100)
    body: str | None = Field(default=None, max_length=100)
    actor: str = Field(max_length=320)
    at: datetime = _utc()
    payload: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class DeadlineRow(SQLModel, table=True):
    """A deadline of a paper (or of one branch): running until its state or branch is left."""

    __tablename__ = "deadlines"
    __table_args__ = (Index("ix_deadlines_paper_status", "paper_id", "status"),
                      Index("ix_deadlines_status_due", "status", "due_at", "id"))

    id: int | None = Field(default=None, primary_key=True)
    paper_id: int = Field(foreign_key="papers.id")
    reference: str = Field(max_length=120)
    name: str = Field(max_length=100)
    label: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(max_length=100)
    branch: str = Field(default="", max_length=100)
    body: str | None = Field(default=None, max_length=100)
    due_at: datetime = _utc()
    anchor: str = Field(max_length=20)
    anchor_at: datetime = _utc()
    started_at: datetime = _utc()
    status: str = Field(default="running", max_length=20)
    ended_at: datetime | None = _utc(nullable=True)


class DeadlineAudienceRow(SQLModel, table=True):
    """Who a running deadline concerns (workflow.deadlines.audience), one row per address, for "Meine Fristen"
    by the address in due order; written with the deadline and dropped when it ends (revision 0007).
    ``since``: from when the deadline is on the address's list: NULL for those it notifies, the first
    escalating mail's send time for those it only escalates to (workflow.deadlines.ESCALATING)."""

    __tablename__ = "deadline_audience"
    __table_args__ = (Index("ix_deadline_audience_deadline", "deadline_id"),)

    email: str = Field(sa_column=Column(String(320), primary_key=True))
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    deadline_id: int = Field(sa_column=Column(Integer, ForeignKey("deadlines.id"), primary_key=True))
    since: datetime | None = _utc(nullable=True)


class ReminderRow(SQLModel, table=True):
    """The outbox: one mail to send (reminder, escalation or digest) and its delivery state.

    ``next_attempt_at`` is when the row may be claimed: its send time while pending, the lease's
    end while claimed (so an expired lease is claimable again), the backoff after a failed try.
    """

    __tablename__ = "reminders"
    # The mails of a deadline ("Meine Fristen", the paper page) by the deadline (revision 0006).
    __table_args__ = (Index("ix_reminders_claim", "status", "next_attempt_at"),
                      Index("ix_reminders_deadline", "deadline_id"))

    id: int | None = Field(default=None, primary_key=True)
    deadline_id: int | None = Field(default=None, foreign_key="deadlines.id")
    paper_id: int | None = Field(default=None, foreign_key="papers.id")
    reference: str | None = Field(default=None, max_length=120)
    kind: str = Field(max_length=20)
    label: str = Field(sa_column=Column(Text, nullable=False))
    send_at: datetime = _utc()
    recipients: str = Field(sa_column=Column(Text, nullable=False))
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    message_id: str = Field(max_length=200, unique=True)
    status: str = Field(default="pending", max_length=20)
    attempts: int = 0
    next_attempt_at: datetime = _utc()
    claim_token: str | None = Field(default=None, max_length=64)
    claimed_by: str | None = Field(default=None, max_length=200)
    sent_at: datetime | None = _utc(nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class FollowUpRow(SQLModel, table=True):
    """A child a paper owes in another workflow (``follow_up``): ``planned`` until its due moment, then
    ``created`` (or ``ended``: the series stopped; ``failed``: it could not be created, see ``error``) in the
    transaction that creates it (revision 0008)."""

    __tablename__ = "follow_ups"
    __table_args__ = (UniqueConstraint("paper_id", "name", "n"),
                      Index("ix_follow_ups_status_due", "status", "due_at", "id"),
                      Index("ix_follow_ups_child", "child"))

    id: int | None = Field(default=None, primary_key=True)
    paper_id: int = Field(foreign_key="papers.id")
    reference: str = Field(max_length=120)
    name: str = Field(max_length=100)
    n: int
    child: str = Field(max_length=120)
    workflow: str = Field(max_length=100)
    due_at: datetime = _utc()
    status: str = Field(max_length=20)
    done_at: datetime | None = _utc(nullable=True)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # When the parent entered the follow-up's state: a recurring series counts from it.
    anchor_at: datetime = _utc()


class DecisionRow(SQLModel, table=True):
    """The Beschlusskontrolle (workflow/decisions.py): one row per body that decided a paper and follow-up paper
    the decision created, written in the transaction that creates the child; the child's delay, finish and
    target date (its ``next_due``) are rewritten in the transaction of each change of the child, and
    ``sort_at`` (delayed first, then by target date, none last) makes a body's list one index range
    (revision 0010)."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("body", "child_id"),
                      Index("ix_decisions_body_final_sort", "body", "final", "sort_at", "id"),
                      Index("ix_decisions_child", "child_id"))

    id: int | None = Field(default=None, primary_key=True)
    body: str = Field(max_length=100)
    paper_id: int = Field(foreign_key="papers.id")
    reference: str = Field(max_length=120)
    decided_at: datetime = _utc()
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    follow_up: str = Field(max_length=100)
    n: int
    child_id: int = Field(foreign_key="papers.id")
    child: str = Field(max_length=120)
    delayed: bool = Field(sa_column=Column(Boolean, nullable=False))
    final: bool = Field(sa_column=Column(Boolean, nullable=False))
    target_at: datetime | None = _utc(nullable=True)
    sort_at: datetime = _utc()


class PaperFileRow(SQLModel, table=True):
    """A document attached to a paper (an "Anlage"), e.g. the Bericht über offene Beschlüsse a follow-up attaches
    to each child it creates: written in the transaction of the paper's entry that records its SHA-256, never
    changed (revision 0011)."""

    __tablename__ = "paper_files"
    __table_args__ = (UniqueConstraint("paper_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    paper_id: int = Field(foreign_key="papers.id")
    name: str = Field(max_length=200)
    media_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _utc()


class TokenRow(SQLModel, table=True):
    """An API bearer token or a calendar feed's secret (``scope``): only its SHA-256 is stored; revoked
    tokens stay for the record."""

    __tablename__ = "tokens"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320)
    label: str = Field(default="", max_length=200)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _utc()
    revoked_at: datetime | None = _utc(nullable=True)
    # "api" (a bearer token) or "calendar" (a calendar feed's secret); revision 0004.
    scope: str = Field(default="api", sa_column=Column(String(20), nullable=False, server_default="api"))


class HeartbeatRow(SQLModel, table=True):
    """The last tick of each `serve` process, for `councilflow doctor`."""

    __tablename__ = "heartbeats"

    worker: str = Field(max_length=200, primary_key=True)
    at: datetime = _utc()
