"""The SQL store: one code path for SQLite (embedded default) and PostgreSQL (by URL).

The hot path uses SQLAlchemy Core statements on the SQLModel tables: a change is one transaction
that updates the paper ``WHERE version = ?``, takes the append lock, appends the audit entries and
points the paper row at its newest entry. Either all of it is committed or none.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from ..access import is_public
from ..chain import GENESIS
from ..definition import Definition
from ..errors import ConflictError, InputError, NotFoundError, StorageError
from ..i18n import _
from ..paper import Change, PaperState, bodies_at, branches_from_json, branches_to_json
from . import SCHEMA_HEAD, default_url
from .outbox import _DEADLINE_COLUMNS, _REMINDER_COLUMNS, _deadline, _reminder
from .records import (
    SYSTEM,
    AuditRecord,
    DeadlineDiff,
    DeadlineRecord,
    Note,
    StoredPaper,
    chain_entries,
    chain_notes,
    definition_note,
    mail_note,
    reminder_message_id,
)
from .tables import AuditRow, DefinitionRow, PaperRow
from .timecodec import from_db, from_db_or_none, to_db

if TYPE_CHECKING:
    from .outbox import SqlOutbox, SqlTokens

__all__ = ["SCHEMA_HEAD", "SqlStore"]

_papers = PaperRow.__table__  # type: ignore[attr-defined]
_audit = AuditRow.__table__  # type: ignore[attr-defined]
_defs = DefinitionRow.__table__  # type: ignore[attr-defined]


_NAMED = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")
_PAPER_COLUMNS = ("id, reference, workflow, workflow_version, definition_hash, state, entered_at, meeting, branches, "
                  "fields, result, created_at, updated_at, version, last_seq, last_hash, done")
_SELECT_PAPER = f"SELECT {_PAPER_COLUMNS} FROM papers WHERE reference = :reference"
_PAPERS_AFTER = f"SELECT {_PAPER_COLUMNS} FROM papers WHERE id > :after ORDER BY id LIMIT :limit"
_INSERT_PAPER = (
    "INSERT INTO papers (reference, workflow, workflow_version, definition_hash, state, entered_at, meeting, "
    "branches, fields, result, created_at, updated_at, version, last_seq, last_hash, done, public) VALUES (:reference, "
    ":workflow, :workflow_version, :definition_hash, :state, :entered_at, :meeting, :branches, :fields, :result, "
    ":created_at, :updated_at, 1, :last_seq, :last_hash, :done, :public) RETURNING id"
)
_UPDATE_PAPER = (
    "UPDATE papers SET state = :state, entered_at = :entered_at, meeting = :meeting, branches = :branches, "
    "fields = :fields, result = :result, updated_at = :updated_at, version = :new_version, last_seq = :last_seq, "
    "last_hash = :last_hash, workflow_version = :workflow_version, definition_hash = :definition_hash, done = :done, "
    "public = :public WHERE id = :id AND version = :version"
)
_INSERT_AUDIT = (
    "INSERT INTO audit (seq, paper_id, reference, workflow, workflow_version, kind, trigger, from_state, to_state, "
    "branch, body, actor, at, payload, prev_hash, hash) VALUES (:seq, :paper_id, :reference, :workflow, "
    ":workflow_version, :kind, :trigger, :from_state, :to_state, :branch, :body, :actor, :at, :payload, :prev_hash, "
    ":hash)"
)
# A claimed row whose lease still runs is being sent right now: it keeps its claim token, so that its sender
# records what became of it (outbox.SqlOutbox.skip, mark_sent); any other row ends here.
_CANCEL_REMINDERS = (
    "UPDATE reminders SET status = 'cancelled', last_error = NULL, claim_token = CASE WHEN status = 'claimed' "
    "AND next_attempt_at > :now THEN claim_token END WHERE deadline_id = :deadline_id "
    "AND status IN ('pending', 'claimed') RETURNING " + _REMINDER_COLUMNS
)
_END_DEADLINE = (
    "UPDATE deadlines SET status = 'ended', ended_at = :now WHERE paper_id = :paper_id AND name = :name "
    "AND branch = :branch AND status = 'running' RETURNING " + _DEADLINE_COLUMNS
)
_INSERT_DEADLINE = (
    "INSERT INTO deadlines (paper_id, reference, name, label, state, branch, body, due_at, anchor, anchor_at, "
    "started_at, status) VALUES (:paper_id, :reference, :name, :label, :state, :branch, :body, :due_at, :anchor, "
    ":anchor_at, :started_at, 'running') RETURNING id"
)
_INSERT_REMINDER = (
    "INSERT INTO reminders (deadline_id, paper_id, reference, kind, label, send_at, recipients, payload, message_id, "
    "status, attempts, next_attempt_at) VALUES (:deadline_id, :paper_id, :reference, :kind, :label, :send_at, "
    ":recipients, '{}', :message_id, 'pending', 0, :send_at)"
)
_NEXT_DUE = ("UPDATE papers SET next_due = (SELECT MIN(due_at) FROM deadlines WHERE paper_id = :id "
             "AND status = 'running') WHERE id = :id")
_DROP_BODIES = "DELETE FROM paper_bodies WHERE paper_id = :id"
_INSERT_BODY = "INSERT INTO paper_bodies (body, reference, paper_id) VALUES (:body, :reference, :id)"
#: How many threads keep a connection of their own (see SqlStore._acquire).
KEPT = 8
_LAST_ENTRY = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
#: Serialises appenders on PostgreSQL (SQLite already has one writer at a time), so the chain never forks.
_APPEND_LOCK = "SELECT pg_advisory_xact_lock(7243051)"


_AUDIT_COLUMNS = ("seq, reference, workflow, workflow_version, kind, trigger, from_state, to_state, branch, body, "
                  "actor, at, payload, prev_hash, hash")


def _record(r: Sequence[Any]) -> AuditRecord:
    return AuditRecord(int(r[0]), r[1], r[2], int(r[3]), r[4], r[5], r[6], r[7], r[8], r[9], r[10], from_db(r[11]),
                       r[12], r[13], r[14])


def _release_weak(store_ref: weakref.ref[SqlStore], raw_ref: weakref.ref[Any]) -> None:
    store, raw = store_ref(), raw_ref()
    if store is not None and raw is not None:
        store._release(raw)


class SqlStore:
    """Papers, definitions and the audit trail in one SQL database."""

    def __init__(self, url: str | None = None, *, synchronous: str | None = None) -> None:
        raw = url or default_url()
        try:
            parsed = make_url(raw)
        except ArgumentError:
            raise InputError(_("database URL '{url}' is not a URL such as sqlite:///councilflow.db").format(url=raw)) \
                from None
        self.url = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise InputError(_("database '{url}': only sqlite:/// and postgresql+psycopg:// are supported").format(
                url=self.url))
        query = dict(parsed.query)
        sync = synchronous or str(query.pop("synchronous", "FULL")).upper()
        if sync not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise InputError(_("database '{url}': synchronous must be NORMAL, FULL or EXTRA, not {value}").format(
                url=self.url, value=sync))
        parsed = parsed.set(query=query)
        if self.dialect == "sqlite":
            self.engine: Engine = create_engine(parsed, connect_args={"timeout": 30}, max_overflow=KEPT + 12)
            self._sqlite_pragmas(sync)
        else:
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            # KEPT connections kept by threads (see _acquire), the rest borrowed per transaction.
            self.engine = create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10},
                                        max_overflow=KEPT + 12)
        self._ready = False
        self._local = threading.local()
        self._q = {name: self._sql(globals()[name]) for name in
                   ("_SELECT_PAPER", "_PAPERS_AFTER", "_INSERT_PAPER", "_UPDATE_PAPER", "_INSERT_AUDIT",
                    "_CANCEL_REMINDERS", "_END_DEADLINE", "_INSERT_DEADLINE", "_INSERT_REMINDER", "_NEXT_DUE",
                    "_DROP_BODIES", "_INSERT_BODY")}
        self._kept: list[Any] = []
        self._kept_lock = threading.Lock()
        from .outbox import SqlOutbox, SqlTokens

        self._outbox = SqlOutbox(self)
        self._tokens = SqlTokens(self)

    @property
    def local_file(self) -> Path | None:
        """The SQLite database file (None for PostgreSQL and in-memory SQLite)."""
        database = self.engine.url.database
        if self.dialect != "sqlite" or not database or database == ":memory:":
            return None
        return Path(database)

    @property
    def outbox(self) -> SqlOutbox:
        """The deadlines and mails of this database."""
        return self._outbox

    @property
    def tokens(self) -> SqlTokens:
        """The API tokens of this database."""
        return self._tokens

    def _sqlite_pragmas(self, synchronous: str) -> None:
        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    # --- schema ------------------------------------------------------------------------------

    def init(self) -> None:
        """Bring the schema to the shipped head revision (idempotent; also done on first use)."""
        try:
            if self.schema_revision() != SCHEMA_HEAD:
                from .schema import upgrade  # Alembic is imported only when there is something to do

                upgrade(self.engine)
        except OperationalError as exc:
            raise StorageError(_("database '{url}' is not usable: {detail}").format(url=self.url, detail=exc.orig)) \
                from None
        self._ready = True

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None for an empty database)."""
        with self.engine.connect() as conn:
            if not self.engine.dialect.has_table(conn, "alembic_version"):
                return None
            row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        return str(row[0]) if row else None

    def _ensure(self) -> None:
        if not self._ready:
            self.init()

    def dispose(self) -> None:
        """Close every kept connection and the pool."""
        with self._kept_lock:
            kept, self._kept = self._kept, []
        for raw in kept:
            with suppress(Exception):
                raw.close()
        self._local = threading.local()
        self.engine.dispose()

    def _guard(self, exc: SQLAlchemyError) -> StorageError:
        return StorageError(_("database '{url}': {detail}").format(url=self.url,
                                                                   detail=getattr(exc, "orig", exc)).splitlines()[0])

    # --- definitions -------------------------------------------------------------------------

    def remember_definition(self, definition: Definition, text: str, now: datetime, actor: str = SYSTEM) -> None:
        """Store a definition's text on first use, with an ``admin`` entry in the same transaction; refuse a
        changed text under the same version."""
        find = self._sql("SELECT source_hash FROM definitions WHERE workflow = :workflow AND version = :version")
        key = {"workflow": definition.workflow, "version": definition.version}
        with self._transaction() as cur:
            cur.execute(find, key)
            row = cur.fetchone()
            if row is None:
                seq, prev = self._append_lock(cur)
                cur.execute(find, key)  # another process may have stored it meanwhile
                row = cur.fetchone()
            if row is None:
                cur.execute(self._sql("INSERT INTO definitions (workflow, version, source_hash, source_text, "
                                      "stored_at) VALUES (:workflow, :version, :hash, :text, :now)"),
                            {**key, "hash": definition.source_hash, "text": text, "now": self._db_time(now)})
                note = definition_note(definition.workflow, definition.version, definition.source_hash, actor, now)
                self._append_notes(cur, None, seq, prev, [note])
            elif row[0] != definition.source_hash:
                raise ConflictError(
                    _("{path}: workflow '{workflow}' version {version} is already in use with different content; "
                      "raise 'version' to change it").format(path=definition.source_path,
                                                             workflow=definition.workflow, version=definition.version)
                )

    def stored_definition(self, workflow: str, version: int) -> tuple[str, str]:
        self._ensure()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_defs.c.source_hash, _defs.c.source_text).where(_defs.c.workflow == workflow,
                                                                       _defs.c.version == version)
            ).first()
        if row is None:
            raise NotFoundError(_("workflow '{workflow}' version {version} is not stored in the database").format(
                workflow=workflow, version=version))
        return str(row.source_hash), str(row.source_text)

    def iter_definitions(self) -> Iterator[tuple[str, int, str, str]]:
        self._ensure()
        with self.engine.connect() as conn:
            rows = conn.execute(select(_defs.c.workflow, _defs.c.version, _defs.c.source_hash, _defs.c.source_text)
                                .order_by(_defs.c.workflow, _defs.c.version)).all()
        for row in rows:
            yield str(row[0]), int(row[1]), str(row[2]), str(row[3])

    # --- papers ------------------------------------------------------------------------------

    def _sql(self, text: str) -> str:
        """Statements are written with ``:name`` parameters; psycopg wants ``%(name)s``."""
        return _NAMED.sub(r"%(\1)s", text) if self.dialect == "postgresql" else text

    def _db_time(self, moment: datetime | None) -> Any:
        return to_db(moment, self.dialect)

    def _acquire(self) -> tuple[Any, Any, bool]:
        """This thread's DBAPI connection and cursor; whether it is borrowed for one transaction only.

        The hot path bypasses SQLAlchemy's statement layer and its per-call checkout: together they
        cost more than the SQL itself (bench/bench_engine.py). So the first :data:`KEPT` threads keep a
        connection (a CLI, `serve`, the busiest web workers); any further thread borrows one from the pool
        per transaction, so a web server's many worker threads never hold more connections than that.
        """
        raw = getattr(self._local, "raw", None)
        if raw is not None:
            return raw, self._local.cursor, False
        self._ensure()
        try:
            raw = self.engine.raw_connection()
        except SQLAlchemyError as exc:
            raise self._guard(exc) from None
        cursor = raw.cursor()
        with self._kept_lock:
            keep = len(self._kept) < KEPT
            if keep:
                self._kept.append(raw)
        if keep:
            self._local.raw, self._local.cursor = raw, cursor
            # A thread that ends gives its connection back to the pool (weak references only: the finalizer
            # of a long-lived thread must not keep the store or the connection alive).
            weakref.finalize(threading.current_thread(), _release_weak, weakref.ref(self), weakref.ref(raw))
        return raw, cursor, not keep

    def _release(self, raw: Any) -> None:
        with self._kept_lock:
            if raw not in self._kept:
                return
            self._kept.remove(raw)
        with suppress(Exception):
            raw.close()

    def _drop(self, raw: Any) -> None:
        """Forget a connection that failed; the next call checks out a fresh one."""
        if getattr(self._local, "raw", None) is raw:
            self._local.raw = None
        with self._kept_lock:
            if raw in self._kept:
                self._kept.remove(raw)
        with suppress(Exception):
            raw.invalidate()

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A DBAPI cursor in one transaction: committed on success, rolled back on any error."""
        raw, cur, borrowed = self._acquire()
        self._local.current = raw
        try:
            yield cur
            raw.commit()
        except self._dbapi_errors as exc:
            self._drop(raw)
            borrowed = False  # invalidated already
            raise StorageError(_("database '{url}': {detail}").format(
                url=self.url, detail=str(exc).strip().splitlines()[0])) from None
        except BaseException:
            raw.rollback()
            raise
        finally:
            self._local.current = None
            if borrowed:
                with suppress(Exception):
                    raw.close()  # back to the pool

    def _in_transaction(self) -> bool:
        """Whether this thread's SQLite connection has a transaction open (pysqlite may open one itself)."""
        raw = getattr(self._local, "current", None)
        return bool(raw is not None and getattr(raw.driver_connection, "in_transaction", False))

    @property
    def _dbapi_errors(self) -> tuple[type[Exception], ...]:
        dbapi = self.engine.dialect.dbapi
        assert dbapi is not None
        return (dbapi.OperationalError, dbapi.InterfaceError)

    def load(self, reference: str) -> StoredPaper:
        with self._transaction() as cur:
            cur.execute(self._q['_SELECT_PAPER'], {"reference": reference})
            row = cur.fetchone()
        if row is None:
            raise NotFoundError(_("no paper with reference '{reference}'").format(reference=reference))
        return self._paper_from_row(row)

    def _paper_from_row(self, row: Sequence[Any]) -> StoredPaper:
        (pid, reference, workflow, wf_version, def_hash, state_id, entered_at, meeting, branches_raw, fields_raw,
         result, created_at, updated_at, version, last_seq, last_hash, done_raw) = row
        branches_json = json.loads(branches_raw) if isinstance(branches_raw, str) else branches_raw
        fields = json.loads(fields_raw) if isinstance(fields_raw, str) else fields_raw
        branches = branches_from_json(branches_json or {})
        fields_dict = dict(fields or {})
        if isinstance(fields_raw, str):
            self._local.fields_text = (fields_dict, fields_raw)  # reused by save() if the fields stay as read
        done_list = json.loads(done_raw) if isinstance(done_raw, str) else done_raw
        done = frozenset((str(n), str(b)) for n, b in done_list or ())
        state = PaperState(state_id, from_db(entered_at), from_db_or_none(meeting), branches, fields_dict, result, done)
        return StoredPaper(pid, reference, workflow, wf_version, def_hash, state, version, from_db(created_at),
                           from_db(updated_at), int(last_seq), str(last_hash))

    def _state_params(self, state: PaperState) -> dict[str, Any]:
        read = getattr(self._local, "fields_text", None)
        if read is not None and read[0] is state.fields:
            fields = read[1]
        else:
            fields = json.dumps(dict(state.fields), ensure_ascii=False)
        return {
            "state": state.state,
            "entered_at": self._db_time(state.entered_at),
            "meeting": self._db_time(state.meeting),
            "branches": json.dumps(branches_to_json(state.branches), ensure_ascii=False) if state.branches else "{}",
            "fields": fields,
            "result": state.result,
            "done": json.dumps(sorted(state.done)) if state.done else None,
            "public": is_public(state),
        }

    def references(self, workflow: str | None = None) -> list[str]:
        self._ensure()
        stmt = select(_papers.c.reference).order_by(_papers.c.id)
        if workflow:
            stmt = stmt.where(_papers.c.workflow == workflow)
        with self.engine.connect() as conn:
            return [r.reference for r in conn.execute(stmt)]

    def create(
        self,
        reference: str,
        definition: Definition,
        state: PaperState,
        changes: Sequence[Change],
        deadlines: DeadlineDiff = ((), ()),
    ) -> StoredPaper:
        """Insert the paper and its creation entries in one transaction."""
        created, now = self._db_time(changes[0].at), self._db_time(changes[-1].at)
        dbapi = self.engine.dialect.dbapi
        assert dbapi is not None
        try:
            with self._transaction() as cur:
                rows, last_seq, last_hash = self._chain(cur, reference, definition, changes)
                params = {**self._state_params(state), "reference": reference, "workflow": definition.workflow,
                          "workflow_version": definition.version, "definition_hash": definition.source_hash,
                          "created_at": created, "updated_at": now, "last_seq": last_seq, "last_hash": last_hash}
                cur.execute(self._q["_INSERT_PAPER"], params)
                paper_id = cur.fetchone()[0]
                self._insert_entries(cur, paper_id, rows)
                notes = self._sync_deadlines(cur, paper_id, reference, definition, deadlines, changes[-1].at)
                self._append_notes(cur, paper_id, last_seq, last_hash, notes)
                self._sync_bodies(cur, paper_id, reference, None, bodies_at(definition, state))
        except dbapi.IntegrityError:
            raise ConflictError(_("a paper with reference '{reference}' exists already").format(reference=reference)) \
                from None
        return self.load(reference)

    def save(
        self,
        paper: StoredPaper,
        definition: Definition,
        state: PaperState,
        changes: Sequence[Change],
        deadlines: DeadlineDiff = ((), ()),
    ) -> int:
        """Write the new state ``WHERE version = paper.version`` and append ``changes``; new version.

        The paper runs on ``definition`` afterwards (a migration moves it to another version)."""
        new_version = paper.version + 1
        with self._transaction() as cur:
            rows, last_seq, last_hash = self._chain(cur, paper.reference, definition, changes)
            params = {**self._state_params(state), "updated_at": self._db_time(changes[-1].at),
                      "new_version": new_version, "id": paper.id, "version": paper.version,
                      "last_seq": last_seq, "last_hash": last_hash, "workflow_version": definition.version,
                      "definition_hash": definition.source_hash}
            cur.execute(self._q["_UPDATE_PAPER"], params)
            if cur.rowcount != 1:
                raise ConflictError(_("{reference} was changed by someone else meanwhile; retry").format(
                    reference=paper.reference))
            self._insert_entries(cur, paper.id, rows)
            notes = self._sync_deadlines(cur, paper.id, paper.reference, definition, deadlines, changes[-1].at)
            self._append_notes(cur, paper.id, last_seq, last_hash, notes)
            before = bodies_at(definition, paper.state) if definition.source_hash == paper.definition_hash else None
            self._sync_bodies(cur, paper.id, paper.reference, before, bodies_at(definition, state))
        return new_version

    def _chain(self, cur: Any, reference: str, definition: Definition, changes: Sequence[Change]
               ) -> tuple[list[dict[str, Any]], int, str]:
        """Take the append lock, then number and hash ``changes`` after the trail's last entry."""
        seq, prev = self._append_lock(cur)
        entries = chain_entries(seq, prev, reference, definition, changes)
        rows = [self._entry_params(e) for e in entries]
        return rows, entries[-1].seq, entries[-1].hash

    def _append_lock(self, cur: Any) -> tuple[int, str]:
        """Take the trail's append lock for the rest of the transaction; the last entry's seq and hash.

        Every writer of entries takes it (changes of papers, marked mails, administrative acts), so the chain
        stays one line whichever process appends."""
        # SQLite: BEGIN IMMEDIATE takes the single write lock now, not at the first write, so the
        # last entry read here is still the last at commit. PostgreSQL: a transaction-scoped lock.
        if self.dialect == "sqlite":
            if self._in_transaction():  # a read before, if the driver opened a transaction for it
                cur.execute("COMMIT")
            cur.execute("BEGIN IMMEDIATE")
        else:
            cur.execute(_APPEND_LOCK)
        cur.execute(_LAST_ENTRY)
        last = cur.fetchone()
        return (int(last[0]), str(last[1])) if last else (0, GENESIS)

    def _append_notes(self, cur: Any, paper_id: int | None, last_seq: int, last_hash: str,
                      notes: Sequence[Note]) -> None:
        """Append ``notes`` after entry ``last_seq`` (the caller holds the append lock)."""
        if notes:
            self._insert_entries(cur, paper_id, [self._entry_params(e) for e in chain_notes(last_seq, last_hash,
                                                                                             notes)])

    def _entry_params(self, e: AuditRecord) -> dict[str, Any]:
        return {"seq": e.seq, "reference": e.reference, "workflow": e.workflow, "workflow_version": e.workflow_version,
                "kind": e.kind, "trigger": e.trigger, "from_state": e.from_state, "to_state": e.to_state,
                "branch": e.branch, "body": e.body, "actor": e.actor, "at": self._db_time(e.at),
                "payload": e.payload_text, "prev_hash": e.prev_hash, "hash": e.hash}

    def _sync_deadlines(self, cur: Any, paper_id: int, reference: str, definition: Definition, diff: DeadlineDiff,
                        now: datetime) -> list[Note]:
        """End the deadlines that stop (cancelling their unsent mails) and start the new ones; the entries of
        the mails that were due and are not sent now (skipped)."""
        ended, started = diff
        if not ended and not started:
            return []
        at = self._db_time(now)
        notes: list[Note] = []
        for name, branch in ended:
            cur.execute(self._q["_END_DEADLINE"], {"paper_id": paper_id, "name": name, "branch": branch, "now": at})
            for deadline in [_deadline(r) for r in cur.fetchall()]:
                cur.execute(self._q["_CANCEL_REMINDERS"], {"deadline_id": deadline.id, "now": at})
                notes += [mail_note(r, deadline, definition.workflow, definition.version, "skipped", now,
                                    attempts=r.attempts) for r in map(_reminder, cur.fetchall())
                          if r.claim_token is None and r.send_at <= now]
        for d in started:
            cur.execute(self._q["_INSERT_DEADLINE"], {
                "paper_id": paper_id, "reference": reference, "name": d.name, "label": d.label, "state": d.state,
                "branch": d.branch, "body": d.body, "due_at": self._db_time(d.due_at), "anchor": d.anchor,
                "anchor_at": self._db_time(d.anchor_at), "started_at": at,
            })
            deadline_id = cur.fetchone()[0]
            for r in d.reminders:
                send_at = self._db_time(r.send_at)
                cur.execute(self._q["_INSERT_REMINDER"], {
                    "deadline_id": deadline_id, "paper_id": paper_id, "reference": reference, "kind": r.kind,
                    "label": r.label, "send_at": send_at, "recipients": json.dumps(list(r.recipients)),
                    "message_id": reminder_message_id(reference, d.name, d.branch, r.kind, r.label, now, d.due_at),
                })
        cur.execute(self._q["_NEXT_DUE"], {"id": paper_id})
        return notes

    def _sync_bodies(self, cur: Any, paper_id: int, reference: str, before: frozenset[str] | None,
                     after: frozenset[str]) -> None:
        """Rewrite the paper's rows of ``paper_bodies`` when its bodies changed (``before`` None: unknown)."""
        if before == after:
            return
        if before is None or before:
            cur.execute(self._q["_DROP_BODIES"], {"id": paper_id})
        for body in sorted(after):
            cur.execute(self._q["_INSERT_BODY"], {"body": body, "reference": reference, "id": paper_id})

    def _insert_entries(self, cur: Any, paper_id: int | None, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            row["paper_id"] = paper_id
        if len(rows) == 1:
            cur.execute(self._q["_INSERT_AUDIT"], rows[0])
        else:
            cur.executemany(self._q["_INSERT_AUDIT"], rows)

    # --- audit -------------------------------------------------------------------------------

    def history(self, reference: str, until: datetime | None = None) -> list[AuditRecord]:
        """A paper's entries in order (up to ``until``), through the (paper_id, seq) index."""
        clause = " AND at <= :until" if until is not None else ""
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE paper_id = (SELECT id FROM papers "
                                  f"WHERE reference = :reference){clause} ORDER BY seq"),
                        {"reference": reference, "until": self._db_time(until)})
            return [_record(r) for r in cur.fetchall()]

    def _audit_where(self, filters: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """SQL conditions of the audit filters: reference, workflow, actor, trigger, body, from_state,
        to_state (equality), since, until (instants)."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        for name in ("reference", "workflow", "actor", "trigger", "body", "from_state", "to_state"):
            if filters.get(name) is not None:
                clauses.append(f"{name} = :{name}")
                params[name] = filters[name]
        if filters.get("since") is not None:
            clauses.append("at >= :since")
            params["since"] = self._db_time(filters["since"])
        if filters.get("until") is not None:
            clauses.append("at <= :until")
            params["until"] = self._db_time(filters["until"])
        return clauses, params

    def iter_audit(self, batch: int = 2000, **filters: Any) -> Iterator[AuditRecord]:
        """Entries in sequence order, fetched in batches by seq (constant memory for any size).

        ``filters``: see :meth:`_audit_where`.
        """
        clauses, params = self._audit_where(filters)
        params["limit"] = batch
        sql = self._sql(f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE {' AND '.join(['seq > :after', *clauses])} "
                        "ORDER BY seq LIMIT :limit")
        after = 0
        while True:
            with self._transaction() as cur:
                cur.execute(sql, {**params, "after": after})
                rows = cur.fetchall()
            for r in rows:
                yield _record(r)
            if len(rows) < batch:
                return
            after = int(rows[-1][0])

    def page_audit(self, limit: int, before: int | None = None, **filters: Any) -> list[AuditRecord]:
        """One page of the trail, newest first (an index range scan on seq, whatever the trail's size)."""
        sql, params = self.page_audit_sql(limit, before, **filters)
        with self._transaction() as cur:
            cur.execute(sql, params)
            return [_record(r) for r in cur.fetchall()]

    def page_audit_sql(self, limit: int, before: int | None = None, **filters: Any) -> tuple[str, dict[str, Any]]:
        """The statement and parameters of :meth:`page_audit` (for EXPLAIN and the benchmark's raw SQL): each
        equality filter has a (column, seq) index, the period one on ``at``."""
        clauses, params = self._audit_where(filters)
        if before is not None:
            clauses.append("seq < :before")
            params["before"] = before
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        return (self._sql(f"SELECT {_AUDIT_COLUMNS} FROM audit {where}ORDER BY seq DESC LIMIT :limit"),
                {**params, "limit": limit})

    def head(self) -> tuple[int, str]:
        """Sequence number and hash of the trail's last entry (0 and the genesis hash when empty)."""
        with self._transaction() as cur:
            cur.execute(_LAST_ENTRY)
            last = cur.fetchone()
        return (int(last[0]), str(last[1])) if last else (0, GENESIS)

    def beat(self, worker: str, now: datetime) -> None:
        """Record that ``worker`` ticked at ``now``."""
        with self._transaction() as cur:
            cur.execute(self._sql("DELETE FROM heartbeats WHERE worker = :worker"), {"worker": worker})
            cur.execute(self._sql("INSERT INTO heartbeats (worker, at) VALUES (:worker, :at)"),
                        {"worker": worker, "at": self._db_time(now)})

    def last_beat(self) -> tuple[str, datetime] | None:
        with self._transaction() as cur:
            cur.execute("SELECT worker, at FROM heartbeats ORDER BY at DESC LIMIT 1")
            row = cur.fetchone()
        return (str(row[0]), from_db(row[1])) if row else None

    def iter_papers(self, batch: int = 500) -> Iterator[StoredPaper]:
        """Every paper, in id order, fetched in batches."""
        after = 0
        while True:
            with self._transaction() as cur:
                cur.execute(self._q["_PAPERS_AFTER"], {"after": after, "limit": batch})
                rows = cur.fetchall()
            if not rows:
                return
            for row in rows:
                yield self._paper_from_row(row)
            after = rows[-1][0]

    def count_audit(self) -> int:
        self._ensure()
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_audit)).scalar_one())

    # --- paged lists -------------------------------------------------------------------------

    def _readable_clause(self, readable: Collection[str] | None, params: dict[str, Any]) -> list[str]:
        if readable is None:
            return []
        names = []
        for n, digest in enumerate(sorted(readable)):
            params[f"h{n}"] = digest
            names.append(f":h{n}")
        # SQLite: the unary + keeps these columns from driving the plan, so the page walks the reference index
        # in order and stops at LIMIT (instead of reading every public paper and sorting).
        plus = "+" if self.dialect == "sqlite" else ""
        return [f"({plus}p.public = {self._true} OR {plus}p.definition_hash IN ({', '.join(names)}))" if names
                else f"{plus}p.public = {self._true}"]

    @property
    def _true(self) -> str:
        return "1" if self.dialect == "sqlite" else "true"

    def page_papers(self, limit: int, after: str | None = None, *, workflow: str | None = None,
                    state: str | None = None, body: str | None = None, due_before: datetime | None = None,
                    readable: Collection[str] | None = None) -> list[StoredPaper]:
        """One page of papers by reference: an index range (reference, (workflow, reference), (state,
        reference), paper_bodies' (body, reference) or next_due) whatever the number of papers."""
        sql, params = self.page_papers_sql(limit, after, workflow=workflow, state=state, body=body,
                                           due_before=due_before, readable=readable)
        with self._transaction() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        return [self._paper_from_row(r) for r in rows]

    def page_papers_sql(self, limit: int, after: str | None = None, *, workflow: str | None = None,
                        state: str | None = None, body: str | None = None, due_before: datetime | None = None,
                        readable: Collection[str] | None = None) -> tuple[str, dict[str, Any]]:
        """The statement and parameters of :meth:`page_papers`."""
        params: dict[str, Any] = {"limit": limit}
        key = "b.reference" if body is not None else "p.reference"
        clauses = self._readable_clause(readable, params)
        if after is not None:
            clauses.append(f"{key} > :after")
            params["after"] = after
        if workflow is not None:
            clauses.append("p.workflow = :workflow")
            params["workflow"] = workflow
        if state is not None:
            clauses.append("p.state = :state")
            params["state"] = state
        if due_before is not None:
            clauses.append("p.next_due < :due_before")
            params["due_before"] = self._db_time(due_before)
        source = "papers p"
        if body is not None:
            source = "paper_bodies b JOIN papers p ON p.id = b.paper_id"
            clauses.append("b.body = :body")
            params["body"] = body
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        columns = ", ".join(f"p.{c.strip()}" for c in _PAPER_COLUMNS.split(","))
        return self._sql(f"SELECT {columns} FROM {source}{where} ORDER BY {key} LIMIT :limit"), params

    def page_running_deadlines(self, limit: int, after: tuple[datetime, int] | None = None, *,
                               names: Mapping[str, Collection[str]] | None = None
                               ) -> list[tuple[StoredPaper, DeadlineRecord]]:
        """Running deadlines in (due_at, id) order through the (status, due_at, id) index."""
        from .outbox import _DEADLINE_COLUMNS, _deadline

        sql, params = self.running_deadlines_sql(limit, after, names=names)
        if not sql:
            return []
        with self._transaction() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        width = len(_DEADLINE_COLUMNS.split(","))
        return [(self._paper_from_row(r[width:]), _deadline(r[:width])) for r in rows]

    def running_deadlines_sql(self, limit: int, after: tuple[datetime, int] | None = None, *,
                              names: Mapping[str, Collection[str]] | None = None) -> tuple[str, dict[str, Any]]:
        """The statement and parameters of :meth:`page_running_deadlines` ("" if nothing can match)."""
        from .outbox import _DEADLINE_COLUMNS

        params: dict[str, Any] = {"limit": limit}
        clauses = ["d.status = 'running'"]
        if after is not None:
            clauses.append("(d.due_at > :due OR (d.due_at = :due AND d.id > :id))")
            params.update(due=self._db_time(after[0]), id=after[1])
        if names is not None:
            alternatives = []
            for n, (digest, wanted) in enumerate(sorted(names.items())):
                if not wanted:
                    continue
                params[f"h{n}"] = digest
                listed = []
                for m, name in enumerate(sorted(wanted)):
                    params[f"n{n}_{m}"] = name
                    listed.append(f":n{n}_{m}")
                alternatives.append(f"(p.definition_hash = :h{n} AND d.name IN ({', '.join(listed)}))")
            if not alternatives:
                return "", {}
            clauses.append(f"({' OR '.join(alternatives)})")
        columns = ", ".join(f"p.{c.strip()}" for c in _PAPER_COLUMNS.split(","))
        deadline_columns = ", ".join(f"d.{c.strip()}" for c in _DEADLINE_COLUMNS.split(","))
        # SQLite: CROSS JOIN keeps the deadlines outer, so the page walks (status, due_at, id) and stops at LIMIT
        # (its planner would otherwise read the papers first and sort every running deadline); PostgreSQL plans
        # a CROSS JOIN with its condition in WHERE like any join.
        return (self._sql(f"SELECT {deadline_columns}, {columns} FROM deadlines d CROSS JOIN papers p "
                          f"WHERE p.id = d.paper_id AND {' AND '.join(clauses)} ORDER BY d.due_at, d.id "
                          "LIMIT :limit"), params)

    def oparl_page(self, offset: int, limit: int, *, modified_since: datetime | None = None
                   ) -> tuple[int, list[tuple[StoredPaper, str | None]]]:
        """A slice of the public papers by id, through the (public, id) or (updated_at, id) index."""
        count, sql, params = self.oparl_page_sql(offset, limit, modified_since=modified_since)
        with self._transaction() as cur:
            cur.execute(count, params)
            total = int(cur.fetchone()[0])
            cur.execute(sql, params)
            rows = cur.fetchall()
        return total, [(self._paper_from_row(r[:-1]), r[-1]) for r in rows]

    def oparl_page_sql(self, offset: int, limit: int, *, modified_since: datetime | None = None
                       ) -> tuple[str, str, dict[str, Any]]:
        """The count, the statement and the parameters of :meth:`oparl_page`."""
        where = f"p.public = {self._true}"
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if modified_since is not None:
            where += " AND p.updated_at >= :since"
            params["since"] = self._db_time(modified_since)
        columns = ", ".join(f"p.{c.strip()}" for c in _PAPER_COLUMNS.split(","))
        return (self._sql(f"SELECT COUNT(*) FROM papers p WHERE {where}"),
                self._sql(f"SELECT {columns}, p.oparl FROM papers p WHERE {where} ORDER BY p.id LIMIT :limit "
                          "OFFSET :offset"), params)

    def keep_oparl(self, built: Sequence[tuple[StoredPaper, str]]) -> None:
        if not built:
            return
        with self._transaction() as cur:
            cur.executemany(self._sql("UPDATE papers SET oparl = :oparl WHERE id = :id AND version = :version"),
                            [{"oparl": text, "id": paper.id, "version": paper.version} for paper, text in built])
