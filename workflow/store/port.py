"""The storage port: what the engine, the notifier and the front ends need of a store.

Two adapters implement it: :class:`~workflow.store.sql.SqlStore` (SQLite, PostgreSQL) and
:class:`~workflow.store.memory.MemoryStore`. One contract suite (tests/test_store_contract.py and every
test using the ``engine`` fixture) runs over all three backends.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..decisions import DecisionItem
from ..definition import Definition
from ..paper import SYSTEM_ACTOR, Change, PaperState
from .records import (
    NO_FOLLOW_UPS,
    AuditRecord,
    DeadlineDiff,
    DeadlineRecord,
    FileRecord,
    FollowUpDiff,
    FollowUpRecord,
    NewChild,
    PaperMail,
    ReminderRecord,
    StoredPaper,
)

if TYPE_CHECKING:
    from ..follow_up import Owed

__all__ = ["AuditFilters", "Outbox", "Store", "TokenRow", "Tokens"]

#: Filters of :meth:`Store.iter_audit`: reference, workflow, actor, trigger, body, from_state, to_state
#: (equality), since, until.
AuditFilters = dict[str, Any]
TokenRow = tuple[int, str, str, datetime, datetime | None, str]  # id, email, label, created, revoked, scope


class Outbox(Protocol):
    """The deadlines and the mails to send: listing, claiming with a lease, fenced completion.

    Claiming flips due rows to ``claimed`` with a fresh token and sets ``next_attempt_at`` to the lease's
    end, so a row whose worker died is claimable again once the lease has run out. Completion only
    succeeds with the token of the current claim (fencing).
    """

    def deadlines(self, reference: str, *, running_only: bool = True) -> list[DeadlineRecord]: ...

    def reminders(self, *, reference: str | None = None, deadline_id: int | None = None,
                  statuses: Sequence[str] = ("pending",), due_before: datetime | None = None,
                  limit: int = 10_000, deadline_ids: Collection[int] | None = None) -> list[ReminderRecord]:
        """The mails in the order they go out (next_attempt_at, id), filtered by paper, deadline (one, or any of
        ``deadline_ids``: one query for a page of deadlines), status and due moment."""
        ...

    def claim(self, now: datetime, *, worker: str, lease: timedelta, limit: int = 100) -> list[ReminderRecord]: ...

    def mark_sent(self, reminder: ReminderRecord, now: datetime, message_ids: Mapping[str, str] | None = None
                  ) -> bool:
        """Record delivery (also of a row whose deadline ended while it was being sent) and, for a mail of a
        paper, its ``mail`` entry with ``message_ids`` (recipient -> the Message-ID header of their copy), in
        one transaction; False if fenced."""
        ...

    def mark_retry(self, reminder: ReminderRecord, at: datetime, error: str) -> bool: ...

    def mark_failed(self, reminder: ReminderRecord, error: str, now: datetime,
                    message_ids: Mapping[str, str] | None = None) -> bool:
        """Give up on the row; its ``mail`` entry (outcome failed, with ``error``) in the same transaction."""
        ...

    def skip(self, reminder: ReminderRecord, now: datetime) -> bool:
        """Finish a row of this claim whose deadline ended while it was claimed, unsent: its ``mail`` entry says
        skipped. (A change that ends a deadline writes the entries of the other due, unsent rows itself.)"""
        ...

    def defer(self, reminder: ReminderRecord, at: datetime) -> bool:
        """Put a claimed row back to wait until ``at`` (outside the mail window), without counting a try."""
        ...

    def renew(self, reminder: ReminderRecord, until: datetime, *, claim: bool = True) -> bool:
        """Extend the lease to ``until``: of every row of ``reminder``'s claim, or (``claim=False``) of its row
        alone; whether ``reminder`` is still this claim's (not taken over, not cancelled)."""
        ...

    def add_digest(self, recipient: str, day: str, send_at: datetime, payload: dict[str, Any]) -> bool: ...

    def digest_recipients(self, until: datetime) -> list[str]: ...

    def running_for(self, recipient: str, until: datetime) -> list[DeadlineRecord]: ...


class Tokens(Protocol):
    """API bearer tokens and calendar feed secrets, stored by their SHA-256 only; a token is found only in
    its own ``scope`` ("api" or "calendar"). The rules live in workflow/tokens.py."""

    def add(self, email: str, label: str, token_hash: str, now: datetime, *, scope: str = "api",
            actor: str = SYSTEM_ACTOR) -> int:
        """Store the token's hash; its ``admin`` entry (by ``actor``) in the same transaction."""
        ...

    def email_for(self, token_hash: str, *, scope: str = "api") -> str | None: ...

    def revoke(self, token_id: int, now: datetime, *, actor: str = SYSTEM_ACTOR) -> bool:
        """Revoke an active token; its ``admin`` entry (by ``actor``) in the same transaction."""
        ...

    def all(self) -> list[TokenRow]: ...


class Store(Protocol):
    """Papers, definition texts and the hash-chained audit trail, changed one transaction per change."""

    url: str
    #: "sqlite", "postgresql" or "memory".
    dialect: str

    @property
    def local_file(self) -> Path | None:
        """The database file of an embedded database (one `serve` per file), else None."""
        ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def tokens(self) -> Tokens: ...

    def init(self) -> None: ...

    def dispose(self) -> None: ...

    def schema_revision(self) -> str | None: ...

    def remember_definition(self, definition: Definition, text: str, now: datetime, actor: str = SYSTEM_ACTOR) -> None:
        """Store a definition version's text at its first use, with its ``admin`` entry in the same transaction
        (ConflictError for another text under a version stored already)."""
        ...

    def stored_definition(self, workflow: str, version: int) -> tuple[str, str]:
        """The stored hash and text of a definition version (NotFoundError if none)."""
        ...

    def iter_definitions(self) -> Iterator[tuple[str, int, str, str]]:
        """Every stored definition version: workflow, version, hash, text."""
        ...

    def load(self, reference: str) -> StoredPaper: ...

    def references(self, workflow: str | None = None) -> list[str]: ...

    def iter_papers(self, batch: int = 500) -> Iterator[StoredPaper]: ...

    def page_papers(self, limit: int, after: str | None = None, *, workflow: str | None = None,
                    state: str | None = None, body: str | None = None, due_before: datetime | None = None,
                    readable: Collection[str] | None = None) -> list[StoredPaper]:
        """Up to ``limit`` papers in reference order with ``reference > after`` (keyset: the next page starts
        after the last reference of this one), filtered by workflow, state, body (the bodies the paper is at,
        :func:`~workflow.paper.bodies_at`), a running deadline due before ``due_before``, and ``readable``:
        the definition hashes whose papers marked ``public: false`` are included (None: all papers)."""
        ...

    def page_decisions(self, body: str, limit: int, after: tuple[datetime, int] | None = None, *,
                       status: str = "offen", readable: Collection[str] | None = None) -> list[DecisionItem]:
        """Up to ``limit`` follow-up papers of the decisions of ``body`` (workflow/decisions.py) after the row
        whose key is ``after`` (keyset: the next page starts after the last key of this one): delayed first,
        then by target date (none last), then as created; ``status`` "offen" (unfinished),
        "verzoegert" (delayed) or "erledigt" (final); only rows whose paper and follow-up paper are readable
        (``readable`` as in :meth:`page_papers`)."""
        ...

    def page_running_deadlines(self, limit: int, after: tuple[datetime, int] | None = None, *,
                               audience: str | None = None, now: datetime | None = None
                               ) -> list[tuple[StoredPaper, DeadlineRecord]]:
        """Up to ``limit`` running deadlines with their papers in (due_at, id) order after ``after``;
        ``audience``: only those listed for this address (:func:`~workflow.deadlines.audience`, kept with each
        deadline as it starts), from their moment on if ``now`` is given (None: all)."""
        ...

    def oparl_page(self, offset: int, limit: int, *, modified_since: datetime | None = None
                   ) -> tuple[int, list[tuple[str, int, str | None]]]:
        """The public papers (modified at or after ``modified_since``) in id order: how many there are, and
        ``limit`` of them from ``offset``, each as its reference, its version and its stored OParl text (None if
        none is stored); the papers themselves are read only where the text must be built again."""
        ...

    def keep_oparl(self, built: Sequence[tuple[StoredPaper, str]]) -> None:
        """Store the OParl texts built for papers, in one transaction (a paper that changed meanwhile keeps
        none)."""
        ...

    def create(self, reference: str, definition: Definition, state: PaperState, changes: Sequence[Change],
               deadlines: DeadlineDiff = ((), ()), follow_ups: FollowUpDiff = NO_FOLLOW_UPS) -> StoredPaper:
        """Insert the paper, its entries and deadlines (and the follow-ups it starts) in one transaction
        (ConflictError if it or a child exists)."""
        ...

    def save(self, paper: StoredPaper, definition: Definition, state: PaperState, changes: Sequence[Change],
             deadlines: DeadlineDiff = ((), ()), follow_ups: FollowUpDiff = NO_FOLLOW_UPS,
             mails: Sequence[PaperMail] = ()) -> int:
        """Write ``state`` (on ``definition``'s version) ``WHERE version = paper.version``, append the
        entries, sync the deadlines and the follow-ups (children created with their parent's entries), queue
        ``mails``, all in one transaction; the new version (ConflictError if stale)."""
        ...

    def complete_follow_up(self, row: FollowUpRecord, now: datetime, child: NewChild | None,
                           following: Owed | None = None, error: str | None = None) -> bool:
        """Finish a planned child in one transaction: create it with its parent's entry (or record ``error``, or,
        with neither, that the series ended) and plan the ``following`` one; False, with nothing written, if the
        row is no longer planned (exactly once, whichever process comes first)."""
        ...

    def due_follow_ups(self, until: datetime, limit: int = 100) -> list[FollowUpRecord]:
        """Planned children due at or before ``until``, earliest first."""
        ...

    def follow_ups(self, reference: str) -> list[FollowUpRecord]:
        """The children a paper owes or owed, by follow-up name and number."""
        ...

    def parent_of(self, reference: str) -> FollowUpRecord | None:
        """The follow-up row that created paper ``reference`` (None: the paper is no follow-up)."""
        ...

    def files(self, reference: str) -> list[FileRecord]:
        """The attachments of a paper, oldest first (without their content)."""
        ...

    def file_content(self, reference: str, name: str) -> bytes:
        """The content of attachment ``name`` of a paper (NotFoundError if there is none)."""
        ...

    def iter_file_hashes(self) -> Iterator[tuple[FileRecord, str]]:
        """Every attachment as its row (what the lists show) and the SHA-256 of its stored content, for the audit
        check."""
        ...

    def history(self, reference: str, until: datetime | None = None) -> list[AuditRecord]: ...

    def load_with_history(self, references: Sequence[str]) -> list[tuple[StoredPaper, list[AuditRecord]]]:
        """The papers of ``references`` that exist, each with its entries in order (read together, for the
        OParl objects of a page built at once)."""
        ...

    def iter_audit(self, batch: int = 2000, **filters: Any) -> Iterator[AuditRecord]: ...

    def page_audit(self, limit: int, before: int | None = None, **filters: Any) -> list[AuditRecord]:
        """Up to ``limit`` entries matching ``filters``, newest first, with ``seq < before`` (a page of the
        trail; the next page starts before the last seq of this one)."""
        ...

    def head(self) -> tuple[int, str]: ...

    def count_audit(self) -> int: ...

    def beat(self, worker: str, now: datetime) -> None: ...

    def last_beat(self) -> tuple[str, datetime] | None: ...
