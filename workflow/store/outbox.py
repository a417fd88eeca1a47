"""The reminder outbox in SQL: listing, claiming with a lease, and fenced completion.

Claiming flips due rows to ``claimed`` with a fresh token and sets ``next_attempt_at`` to the lease's
end, so a row whose worker died is claimable again once the lease has run out. Completion only
succeeds with the token of the current claim (fencing): a worker whose lease expired and was taken
over cannot mark the row sent. On PostgreSQL concurrent claimers skip each other's rows
(``FOR UPDATE SKIP LOCKED``); SQLite has one writer at a time.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..i18n import _
from .records import (
    SYSTEM,
    DeadlineRecord,
    ReminderRecord,
    digest_message_id,
    mail_note,
    paper_mail_note,
    token_note,
)
from .timecodec import from_db, from_db_or_none

if TYPE_CHECKING:
    from .port import TokenRow
    from .sql import SqlStore

__all__ = ["SqlOutbox", "SqlTokens"]

_REMINDER_COLUMNS = (
    "id, deadline_id, paper_id, reference, kind, label, send_at, recipients, payload, message_id, status, "
    "attempts, next_attempt_at, claim_token, claimed_by, sent_at, last_error"
)
_DEADLINE_COLUMNS = (
    "id, reference, name, label, state, branch, body, due_at, anchor, anchor_at, started_at, status, ended_at"
)
_DEADLINE_COLUMNS_OF_D = ", ".join(f"d.{c}" for c in _DEADLINE_COLUMNS.split(", "))
#: The rows a sender may finish: its claim, also when the deadline ended meanwhile (the mail went out or failed).
_FINISHING = "('claimed', 'cancelled')"


def _deadline(r: Sequence[Any]) -> DeadlineRecord:
    return DeadlineRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], from_db(r[7]), r[8], from_db(r[9]),
                          from_db(r[10]), r[11], from_db_or_none(r[12]))


def _reminder(row: Sequence[Any]) -> ReminderRecord:
    (rid, deadline_id, paper_id, reference, kind, label, send_at, recipients, payload, message_id, status,
     attempts, next_attempt_at, claim_token, claimed_by, sent_at, last_error) = row
    return ReminderRecord(rid, deadline_id, paper_id, reference, kind, label, from_db(send_at),
                          tuple(json.loads(recipients)), json.loads(payload), message_id, status, int(attempts),
                          from_db(next_attempt_at), claim_token, claimed_by, from_db_or_none(sent_at), last_error)


class SqlOutbox:
    """The outbox port over the rows of ``reminders`` and ``deadlines`` in ``store``'s database."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        lock = " FOR UPDATE SKIP LOCKED" if store.dialect == "postgresql" else ""
        self._probe = store._sql("SELECT 1 FROM reminders WHERE status IN ('pending', 'claimed') "
                                 "AND next_attempt_at <= :now LIMIT 1")
        self._claim = store._sql(
            "UPDATE reminders SET status = 'claimed', claim_token = :token, claimed_by = :worker, "
            "next_attempt_at = :until WHERE id IN (SELECT id FROM reminders WHERE status IN ('pending', 'claimed') "
            f"AND next_attempt_at <= :now ORDER BY next_attempt_at LIMIT :limit{lock}) "
            f"RETURNING {_REMINDER_COLUMNS}")

    def _sql(self, text: str) -> str:
        return self.store._sql(text)

    # --- reading -----------------------------------------------------------------------------

    def deadlines(self, reference: str, *, running_only: bool = True) -> list[DeadlineRecord]:
        where = "reference = :reference" + (" AND status = 'running'" if running_only else "")
        with self.store._transaction() as cur:
            cur.execute(self._sql(f"SELECT {_DEADLINE_COLUMNS} FROM deadlines WHERE {where} ORDER BY due_at, id"),
                        {"reference": reference})
            rows = cur.fetchall()
        return [_deadline(r) for r in rows]

    def reminders(self, *, reference: str | None = None, deadline_id: int | None = None,
                  statuses: Sequence[str] = ("pending",), due_before: datetime | None = None,
                  limit: int = 10_000, deadline_ids: Collection[int] | None = None) -> list[ReminderRecord]:
        clauses = [f"status IN ({', '.join(repr(s) for s in statuses)})"]
        params: dict[str, Any] = {"limit": limit}
        if reference is not None:
            clauses.append("reference = :reference")
            params["reference"] = reference
        if deadline_id is not None:
            clauses.append("deadline_id = :deadline_id")
            params["deadline_id"] = deadline_id
        if deadline_ids is not None:
            clauses.append(f"deadline_id IN ({', '.join(str(int(i)) for i in deadline_ids) or 'NULL'})")
        if due_before is not None:
            clauses.append("next_attempt_at <= :due_before")
            params["due_before"] = self.store._db_time(due_before)
        with self.store._transaction() as cur:
            cur.execute(self._sql(f"SELECT {_REMINDER_COLUMNS} FROM reminders WHERE {' AND '.join(clauses)} "
                                  "ORDER BY next_attempt_at, id LIMIT :limit"), params)
            return [_reminder(r) for r in cur.fetchall()]

    def get(self, reminder_id: int) -> ReminderRecord:
        with self.store._transaction() as cur:
            cur.execute(self._sql(f"SELECT {_REMINDER_COLUMNS} FROM reminders WHERE id = :id"), {"id": reminder_id})
            return _reminder(cur.fetchone())

    # --- claiming and completing -------------------------------------------------------------

    def claim(self, now: datetime, *, worker: str, lease: timedelta, limit: int = 100) -> list[ReminderRecord]:
        """Claim up to ``limit`` due rows (pending, or claimed with an expired lease) for ``worker``.

        An index probe without the write lock comes first: an idle poll never blocks writers.
        """
        moment = self.store._db_time(now)
        with self.store._transaction() as cur:
            cur.execute(self._probe, {"now": moment})
            if cur.fetchone() is None:
                return []
            if self.store.dialect == "sqlite":
                if self.store._in_transaction():  # the probe's read, if the driver opened one
                    cur.execute("COMMIT")
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(self._claim, {"now": moment, "until": self.store._db_time(now + lease),
                                      "token": secrets.token_hex(16), "worker": worker, "limit": limit})
            rows = cur.fetchall()
        return sorted((_reminder(r) for r in rows), key=lambda r: (r.send_at, r.id))

    def mark_sent(self, reminder: ReminderRecord, now: datetime, message_ids: Mapping[str, str] | None = None) -> bool:
        """Record delivery, and (not for a digest) its ``mail`` entry with the Message-ID header of each
        recipient's copy, in one transaction; False when the claim was taken over meanwhile (fenced). A row
        whose deadline ended while it was being sent is marked sent too: it was."""
        return self._complete(reminder, "status = 'sent', sent_at = :now, last_error = NULL, "
                                        "attempts = attempts + 1", {"now": self.store._db_time(now)},
                              ("sent", now, message_ids, None), _FINISHING)

    def mark_retry(self, reminder: ReminderRecord, at: datetime, error: str) -> bool:
        """Put a temporarily failed row back, to be tried again at ``at``."""
        return self._complete(reminder, "status = 'pending', next_attempt_at = :at, last_error = :error, "
                                        "attempts = attempts + 1, claim_token = NULL",
                              {"at": self.store._db_time(at), "error": error[:2000]})

    def mark_failed(self, reminder: ReminderRecord, error: str, now: datetime,
                    message_ids: Mapping[str, str] | None = None) -> bool:
        """Give up on a row: it stays visible in ``reminders failed`` with the reason; its ``mail`` entry (not
        for a digest) is written in the same transaction."""
        return self._complete(reminder, "status = 'failed', last_error = :error, attempts = attempts + 1, "
                                        "claim_token = NULL", {"error": error[:2000]},
                              ("failed", now, message_ids, error), _FINISHING)

    def skip(self, reminder: ReminderRecord, now: datetime) -> bool:
        """Finish a claimed row whose deadline ended while it was claimed (the change that ended it left it to
        its sender): its ``mail`` entry says it was skipped. False if the row is not such a row of this claim."""
        return self._complete(reminder, "claim_token = NULL", {}, ("skipped", now, None, None), "('cancelled')",
                              count=False)

    def defer(self, reminder: ReminderRecord, at: datetime) -> bool:
        """Put a claimed row back to wait until ``at`` (outside the mail window), without counting a try."""
        with self.store._transaction() as cur:
            cur.execute(self._sql("UPDATE reminders SET status = 'pending', next_attempt_at = :at, claim_token = NULL "
                                  "WHERE id = :id AND status = 'claimed' AND claim_token = :token"),
                        {"at": self.store._db_time(at), "id": reminder.id, "token": reminder.claim_token})
            return bool(cur.rowcount == 1)

    def _complete(self, reminder: ReminderRecord, assignments: str, params: dict[str, Any],
                  outcome: tuple[str, datetime, Mapping[str, str] | None, str | None] | None = None,
                  statuses: str = "('claimed')", count: bool = True) -> bool:
        """Finish the row if it is still this claim's; with ``outcome`` (outcome, now, Message-IDs, error) also
        append its ``mail`` entry, under the trail's append lock, in the same transaction."""
        store = self.store
        noted = outcome is not None and reminder.paper_id is not None  # a digest belongs to no paper
        with store._transaction() as cur:
            if noted:
                seq, prev = store._append_lock(cur)
            cur.execute(self._sql(f"UPDATE reminders SET {assignments} WHERE id = :id AND status IN {statuses} "
                                  "AND claim_token = :token"),
                        {**params, "id": reminder.id, "token": reminder.claim_token})
            if cur.rowcount != 1:
                return False
            if noted and reminder.deadline_id is None:  # a paper's mail of no deadline (PaperMail)
                assert outcome is not None
                cur.execute(self._sql("SELECT workflow, workflow_version FROM papers WHERE id = :id"),
                            {"id": reminder.paper_id})
                workflow, version = cur.fetchone()
                kind, now, message_ids, error = outcome
                store._append_notes(cur, reminder.paper_id, seq, prev, [paper_mail_note(
                    reminder, workflow, int(version), kind, now, attempts=reminder.attempts + count,
                    message_ids=message_ids, error=error)])
            elif noted:
                assert outcome is not None
                cur.execute(self._sql(f"SELECT {_DEADLINE_COLUMNS_OF_D}, p.workflow, p.workflow_version, p.id "
                                      "FROM deadlines d JOIN papers p ON p.id = d.paper_id WHERE d.id = :id"),
                            {"id": reminder.deadline_id})
                row = cur.fetchone()
                kind, now, message_ids, error = outcome
                note = mail_note(reminder, _deadline(row[:13]), row[13], int(row[14]), kind, now,
                                 attempts=reminder.attempts + count, message_ids=message_ids, error=error)
                store._append_notes(cur, int(row[15]), seq, prev, [note])
            return True

    def renew(self, reminder: ReminderRecord, until: datetime, *, claim: bool = True) -> bool:
        """Extend the lease of every row of this claim (``claim=False``: of ``reminder``'s row alone) to ``until``;
        whether ``reminder`` is still ours.

        Called before each send, so a slow batch keeps its rows and a cancelled or taken-over row is skipped.
        """
        with self.store._transaction() as cur:
            if not claim:  # one row by its key, not every row of the batch
                cur.execute(self._sql("UPDATE reminders SET next_attempt_at = :until WHERE id = :id "
                                      "AND claim_token = :token AND status = 'claimed'"),
                            {"until": self.store._db_time(until), "id": reminder.id, "token": reminder.claim_token})
                return bool(cur.rowcount == 1)
            cur.execute(self._sql("UPDATE reminders SET next_attempt_at = :until WHERE claim_token = :token "
                                  "AND status = 'claimed' RETURNING id"),
                        {"until": self.store._db_time(until), "token": reminder.claim_token})
            return reminder.id in {int(r[0]) for r in cur.fetchall()}

    def add_digest(self, recipient: str, day: str, send_at: datetime, payload: dict[str, Any]) -> bool:
        """Queue one digest mail for ``recipient`` on ``day``; False if it was queued already."""
        message_id = digest_message_id(day, recipient)
        dbapi = self.store.engine.dialect.dbapi
        assert dbapi is not None
        try:
            with self.store._transaction() as cur:
                cur.execute(self._sql(
                    "INSERT INTO reminders (kind, label, send_at, recipients, payload, message_id, status, attempts, "
                    "next_attempt_at) VALUES ('digest', :label, :send_at, :recipients, :payload, :message_id, "
                    "'pending', 0, :send_at)"),
                    {"label": _("Deadline overview {day}").format(day=day), "send_at": self.store._db_time(send_at),
                     "recipients": json.dumps([recipient]), "payload": json.dumps(payload, ensure_ascii=False),
                     "message_id": message_id})
        except dbapi.IntegrityError:
            return False
        return True

    def digest_recipients(self, until: datetime) -> list[str]:
        """Everyone who gets reminders of a running deadline due before ``until``."""
        with self.store._transaction() as cur:
            cur.execute(self._sql(
                "SELECT DISTINCT r.recipients FROM reminders r JOIN deadlines d ON r.deadline_id = d.id "
                "WHERE d.status = 'running' AND d.due_at <= :until AND r.kind = 'remind'"),
                {"until": self.store._db_time(until)})
            rows = cur.fetchall()
        return sorted({person for (raw,) in rows for person in json.loads(raw)})

    def running_for(self, recipient: str, until: datetime) -> list[DeadlineRecord]:
        """Running deadlines due before ``until`` whose reminders go to ``recipient``."""
        with self.store._transaction() as cur:
            cur.execute(self._sql(
                "SELECT DISTINCT d.id, d.due_at FROM deadlines d JOIN reminders r ON r.deadline_id = d.id "
                "WHERE d.status = 'running' AND d.due_at <= :until AND r.kind = 'remind' "
                "AND r.recipients LIKE :pattern"), {"until": self.store._db_time(until),
                                                     "pattern": f'%"{recipient}"%'})
            ids = [r[0] for r in cur.fetchall()]
        return self._deadlines_by_id(ids)

    def _deadlines_by_id(self, ids: list[int]) -> list[DeadlineRecord]:
        if not ids:
            return []
        with self.store._transaction() as cur:
            cur.execute(f"SELECT {_DEADLINE_COLUMNS} FROM deadlines "
                        f"WHERE id IN ({', '.join(str(int(i)) for i in ids)}) ORDER BY due_at")
            rows = cur.fetchall()
        return [_deadline(r) for r in rows]


class SqlTokens:
    """The token port over the ``tokens`` table."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def add(self, email: str, label: str, token_hash: str, now: datetime, *, scope: str = "api",
            actor: str = SYSTEM) -> int:
        """Store a token's hash, and its ``admin`` entry (by ``actor``) in the same transaction; its id."""
        store = self.store
        with store._transaction() as cur:
            seq, prev = store._append_lock(cur)
            cur.execute(store._sql("INSERT INTO tokens (email, label, token_hash, created_at, scope) VALUES (:email, "
                                   ":label, :hash, :now, :scope) RETURNING id"),
                        {"email": email, "label": label, "hash": token_hash, "now": store._db_time(now),
                         "scope": scope})
            token_id = int(cur.fetchone()[0])
            store._append_notes(cur, None, seq, prev,
                                [token_note("token_create", token_id, email, scope, label, actor, now)])
            return token_id

    def email_for(self, token_hash: str, *, scope: str = "api") -> str | None:
        store = self.store
        with store._transaction() as cur:
            cur.execute(store._sql("SELECT email FROM tokens WHERE token_hash = :hash AND scope = :scope "
                                   "AND revoked_at IS NULL"), {"hash": token_hash, "scope": scope})
            row = cur.fetchone()
        return str(row[0]) if row else None

    def revoke(self, token_id: int, now: datetime, *, actor: str = SYSTEM) -> bool:
        """Revoke an active token, with its ``admin`` entry (by ``actor``) in the same transaction."""
        store = self.store
        with store._transaction() as cur:
            seq, prev = store._append_lock(cur)
            cur.execute(store._sql("UPDATE tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL "
                                   "RETURNING email, scope, label"), {"now": store._db_time(now), "id": token_id})
            row = cur.fetchone()
            if row is None:
                return False
            store._append_notes(cur, None, seq, prev,
                                [token_note("token_revoke", token_id, row[0], row[1], row[2], actor, now)])
            return True

    def all(self) -> list[TokenRow]:
        with self.store._transaction() as cur:
            cur.execute("SELECT id, email, label, created_at, revoked_at, scope FROM tokens ORDER BY id")
            return [(int(r[0]), r[1], r[2], from_db(r[3]), from_db_or_none(r[4]), r[5]) for r in cur.fetchall()]
