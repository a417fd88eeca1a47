"""The SQL store: one code path for SQLite (embedded default) and PostgreSQL (by URL).

The hot path uses SQLAlchemy Core statements on the SQLModel tables: a change is one transaction
that updates the paper ``WHERE version = ?``, takes the append lock, appends the audit entries and
points the paper row at its newest entry. Either all of it is committed or none.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from ..access import is_public
from ..chain import GENESIS
from ..deadlines import audience
from ..decisions import DELAYED_SORT, NO_TARGET_SORT, DecisionItem, deciding, sort_moment
from ..definition import Definition
from ..errors import ConflictError, InputError, NotFoundError, StorageError
from ..i18n import _
from ..paper import (
    Change,
    PaperState,
    bodies_at,
    branches_from_json,
    branches_to_json,
    signoffs_from_json,
    signoffs_to_json,
)
from . import SCHEMA_HEAD, default_url
from .outbox import _DEADLINE_COLUMNS, _REMINDER_COLUMNS, _deadline, _reminder
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
    NewFile,
    Note,
    PaperMail,
    StoredPaper,
    chain_entries,
    chain_notes,
    definition_note,
    mail_note,
    paper_mail_message_id,
    reminder_message_id,
)
from .tables import AuditRow, DefinitionRow, PaperRow
from .timecodec import from_db, from_db_or_none, to_db

if TYPE_CHECKING:
    from ..follow_up import Owed
    from .outbox import SqlOutbox, SqlTokens

__all__ = ["SCHEMA_HEAD", "SqlStore"]

_papers = PaperRow.__table__  # type: ignore[attr-defined]
_audit = AuditRow.__table__  # type: ignore[attr-defined]
_defs = DefinitionRow.__table__  # type: ignore[attr-defined]


_NAMED = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")
_PAPER_COLUMNS = ("id, reference, workflow, workflow_version, definition_hash, state, entered_at, meeting, branches, "
                  "fields, result, created_at, updated_at, version, last_seq, last_hash, done, signoffs")
_SELECT_PAPER = f"SELECT {_PAPER_COLUMNS} FROM papers WHERE reference = :reference"
_PAPERS_AFTER = f"SELECT {_PAPER_COLUMNS} FROM papers WHERE id > :after ORDER BY id LIMIT :limit"
_INSERT_PAPER = (
    "INSERT INTO papers (reference, workflow, workflow_version, definition_hash, state, entered_at, meeting, "
    "branches, fields, result, created_at, updated_at, modified_at, version, last_seq, last_hash, done, signoffs, "
    "public) VALUES (:reference, :workflow, :workflow_version, :definition_hash, :state, :entered_at, :meeting, "
    ":branches, :fields, :result, :created_at, :updated_at, :updated_at, 1, :last_seq, :last_hash, :done, :signoffs, "
    ":public) RETURNING id"
)
_UPDATE_PAPER = (
    "UPDATE papers SET state = :state, entered_at = :entered_at, meeting = :meeting, branches = :branches, "
    "fields = :fields, result = :result, updated_at = :updated_at, version = :new_version, last_seq = :last_seq, "
    "modified_at = CASE WHEN modified_at > :updated_at THEN modified_at ELSE :updated_at END, "
    "last_hash = :last_hash, workflow_version = :workflow_version, definition_hash = :definition_hash, done = :done, "
    "signoffs = :signoffs, public = :public WHERE id = :id AND version = :version"
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
_INSERT_AUDIENCE = ("INSERT INTO deadline_audience (email, due_at, deadline_id, since) VALUES (:email, :due_at, "
                    ":deadline_id, :since)")
_DROP_AUDIENCE = "DELETE FROM deadline_audience WHERE deadline_id = :deadline_id"
_INSERT_PAPER_MAIL = (
    "INSERT INTO reminders (deadline_id, paper_id, reference, kind, label, send_at, recipients, payload, message_id, "
    "status, attempts, next_attempt_at) VALUES (NULL, :paper_id, :reference, :kind, :label, :send_at, :recipients, "
    ":payload, :message_id, 'pending', 0, :send_at)"
)
_NEXT_DUE = ("UPDATE papers SET next_due = (SELECT MIN(due_at) FROM deadlines WHERE paper_id = :id "
             "AND status = 'running') WHERE id = :id")
#: A follow-up paper's rows of the Beschlusskontrolle after a change: delay, finish, target date, sort moment.
_UPDATE_DECISIONS = ("UPDATE decisions SET delayed = :delayed, final = :final, target_at = (SELECT next_due FROM "
                     "papers WHERE id = :id), sort_at = COALESCE(:fixed, (SELECT next_due FROM papers WHERE id = "
                     ":id), :none) WHERE child_id = :id")
_DROP_BODIES = "DELETE FROM paper_bodies WHERE paper_id = :id"
_INSERT_BODY = "INSERT INTO paper_bodies (body, reference, paper_id) VALUES (:body, :reference, :id)"
#: How many threads keep a connection of their own (see SqlStore._acquire).
KEPT = 8
_LAST_ENTRY = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
#: Serialises appenders on PostgreSQL (SQLite already has one writer at a time), so the chain never forks.
_APPEND_LOCK = "SELECT pg_advisory_xact_lock(7243051)"


_AUDIT_COLUMNS = ("seq, reference, workflow, workflow_version, kind, trigger, from_state, to_state, branch, body, "
                  "actor, at, payload, prev_hash, hash")


_FOLLOW_UP_COLUMNS = "id, reference, name, n, child, workflow, due_at, status, done_at, error, anchor_at"


class _Taken(Exception):
    """A planned child was finished by another scheduler first (rolls the transaction back)."""


def _follow_up(r: Sequence[Any]) -> FollowUpRecord:
    return FollowUpRecord(int(r[0]), r[1], r[2], int(r[3]), r[4], r[5], from_db(r[6]), r[7], from_db_or_none(r[8]),
                          r[9], from_db(r[10]))


def _title(fields: Any) -> str:
    """A paper's title from its stored fields (JSON text on SQLite, a dict on PostgreSQL)."""
    loaded = json.loads(fields) if isinstance(fields, str) else fields
    title = (loaded or {}).get("title")
    return "" if title is None else str(title)


def _blob(raw: Any) -> bytes:
    """An attachment's stored content as bytes: SQLite keeps text written into the column as text."""
    return raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)


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
                    "_CANCEL_REMINDERS", "_END_DEADLINE", "_INSERT_DEADLINE", "_INSERT_REMINDER", "_INSERT_AUDIENCE",
                    "_DROP_AUDIENCE", "_NEXT_DUE", "_DROP_BODIES", "_INSERT_BODY", "_INSERT_PAPER_MAIL",
                    "_UPDATE_DECISIONS")}
        self._kept: list[Any] = []
        self._kept_lock = threading.Lock()
        # (head seq, page size, modified_since) -> (public papers, first id of the pages found); see oparl_page
        self._oparl_index: OrderedDict[tuple[int, int, Any], tuple[int, dict[int, int]]] = OrderedDict()
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
        # on this thread's kept connection (the lists ask for it on every request): no pool checkout and ping
        with self._transaction() as cur:
            cur.execute("SELECT workflow, version, source_hash, source_text FROM definitions ORDER BY workflow, "
                        "version")
            rows = cur.fetchall()
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
         result, created_at, updated_at, version, last_seq, last_hash, done_raw, signoffs_raw) = row
        branches_json = json.loads(branches_raw) if isinstance(branches_raw, str) else branches_raw
        fields = json.loads(fields_raw) if isinstance(fields_raw, str) else fields_raw
        branches = branches_from_json(branches_json or {})
        fields_dict = dict(fields or {})
        if isinstance(fields_raw, str):
            self._local.fields_text = (fields_dict, fields_raw)  # reused by save() if the fields stay as read
        done_list = json.loads(done_raw) if isinstance(done_raw, str) else done_raw
        done = frozenset((str(n), str(b)) for n, b in done_list or ())
        signoffs = signoffs_from_json(json.loads(signoffs_raw) if isinstance(signoffs_raw, str) else signoffs_raw)
        state = PaperState(state_id, from_db(entered_at), from_db_or_none(meeting), branches, fields_dict, result, done,
                           signoffs)
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
            "signoffs": json.dumps(signoffs_to_json(state.signoffs), ensure_ascii=False) if state.signoffs else None,
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
        follow_ups: FollowUpDiff = NO_FOLLOW_UPS,
    ) -> StoredPaper:
        """Insert the paper and its creation entries in one transaction (with the follow-ups it starts)."""
        dbapi = self.engine.dialect.dbapi
        assert dbapi is not None
        try:
            with self._transaction() as cur:
                seq, prev = self._append_lock(cur)
                paper_id = self._insert_paper(cur, seq, prev, reference, definition, state, changes, deadlines)
                self._write_follow_ups(cur, paper_id, reference, follow_ups, changes[-1].at)
        except dbapi.IntegrityError:
            raise ConflictError(_("a paper with reference '{reference}' exists already").format(reference=reference)) \
                from None
        return self.load(reference)

    def _insert_paper(self, cur: Any, seq: int, prev: str, reference: str, definition: Definition, state: PaperState,
                      changes: Sequence[Change], deadlines: DeadlineDiff) -> int:
        """Insert a paper with its entries (after entry ``seq``, the caller holds the append lock) and deadlines;
        its id."""
        entries = chain_entries(seq, prev, reference, definition, changes)
        rows = [self._entry_params(e) for e in entries]
        last_seq, last_hash = entries[-1].seq, entries[-1].hash
        params = {**self._state_params(state), "reference": reference, "workflow": definition.workflow,
                  "workflow_version": definition.version, "definition_hash": definition.source_hash,
                  "created_at": self._db_time(changes[0].at), "updated_at": self._db_time(changes[-1].at),
                  "last_seq": last_seq, "last_hash": last_hash}
        cur.execute(self._q["_INSERT_PAPER"], params)
        paper_id = int(cur.fetchone()[0])
        self._insert_entries(cur, paper_id, rows)
        notes = self._sync_deadlines(cur, paper_id, reference, definition, deadlines, changes[-1].at)
        self._append_notes(cur, paper_id, last_seq, last_hash, notes)
        self._sync_bodies(cur, paper_id, reference, None, bodies_at(definition, state))
        return paper_id

    # --- follow-ups --------------------------------------------------------------------------

    def _write_follow_ups(self, cur: Any, paper_id: int, reference: str, diff: FollowUpDiff, now: datetime) -> None:
        """End planned children, create the children due now (each with its parent's entry), plan the later
        ones and record those that cannot be created; in the caller's transaction (it holds the append lock)."""
        ended, children, planned, failed = diff
        at = self._db_time(now)
        for name in ended:
            cur.execute(self._sql("UPDATE follow_ups SET status = 'ended', done_at = :now WHERE paper_id = :paper_id "
                                  "AND name = :name AND status = 'planned'"),
                        {"now": at, "paper_id": paper_id, "name": name})
        for child in children:
            self._create_child(cur, paper_id, child)
            self._insert_follow_up(cur, paper_id, reference, child.owed, "created", now)
        for owed in planned:
            self._insert_follow_up(cur, paper_id, reference, owed, "planned", None)
        for owed, error in failed:
            self._insert_follow_up(cur, paper_id, reference, owed, "failed", now, error)

    def _create_child(self, cur: Any, parent_id: int, child: NewChild) -> None:
        cur.execute(_LAST_ENTRY)
        last = cur.fetchone()
        seq, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        child_id = self._insert_paper(cur, seq, prev, child.owed.reference, child.definition, child.state,
                                      child.changes, child.deadlines)
        cur.execute(_LAST_ENTRY)
        last = cur.fetchone()
        self._append_notes(cur, parent_id, int(last[0]), str(last[1]), [child.note])
        self._insert_decisions(cur, parent_id, child_id, child)
        self._insert_files(cur, child_id, child.files, child.changes[0].at)
        # the parent's OParl object lists its follow-up papers: build it again, and it counts as modified
        cur.execute(self._sql("UPDATE papers SET oparl = NULL, modified_at = CASE WHEN modified_at > :at THEN "
                              "modified_at ELSE :at END WHERE id = :id"),
                    {"id": parent_id, "at": self._db_time(child.changes[0].at)})

    def _insert_files(self, cur: Any, paper_id: int, files: Sequence[NewFile], at: datetime) -> None:
        """Attach ``files`` to a paper (in the transaction of the entry that names them)."""
        if files:
            cur.executemany(self._sql(
                "INSERT INTO paper_files (paper_id, name, media_type, size, sha256, content, created_at) VALUES "
                "(:paper_id, :name, :media_type, :size, :sha256, :content, :at)"),
                [{"paper_id": paper_id, "name": f.name, "media_type": f.media_type, "size": len(f.content),
                  "sha256": f.sha256, "content": f.content, "at": self._db_time(at)} for f in files])

    def files(self, reference: str) -> list[FileRecord]:
        """The attachments of a paper, oldest first (without their content)."""
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT f.id, p.reference, f.name, f.media_type, f.size, f.sha256, f.created_at "
                                  "FROM paper_files f JOIN papers p ON p.id = f.paper_id WHERE p.reference = "
                                  ":reference ORDER BY f.id"), {"reference": reference})
            return [FileRecord(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), from_db(r[6]))
                    for r in cur.fetchall()]

    def file_content(self, reference: str, name: str) -> bytes:
        """The content of attachment ``name`` of a paper (NotFoundError if there is none)."""
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT f.content FROM paper_files f JOIN papers p ON p.id = f.paper_id WHERE "
                                  "p.reference = :reference AND f.name = :name"),
                        {"reference": reference, "name": name})
            row = cur.fetchone()
        if row is None:
            raise NotFoundError(_("{reference} has no attachment '{name}'").format(reference=reference, name=name))
        return _blob(row[0])

    def iter_file_hashes(self) -> Iterator[tuple[FileRecord, str]]:
        """Every attachment as its row (what the lists show) and the SHA-256 of its stored content, for the audit
        check."""
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT f.id FROM paper_files f ORDER BY f.id"))
            ids = [int(r[0]) for r in cur.fetchall()]
        for start in range(0, len(ids), 50):
            chunk = ids[start:start + 50]
            with self._transaction() as cur:
                cur.execute(self._sql("SELECT f.id, p.reference, f.name, f.media_type, f.size, f.sha256, f.created_at, "
                                      "f.content FROM paper_files f JOIN papers p ON p.id = f.paper_id WHERE f.id IN "
                                      f"({', '.join(map(str, chunk))}) ORDER BY f.id"))
                rows = cur.fetchall()
            for r in rows:
                yield (FileRecord(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), from_db(r[6])),
                       hashlib.sha256(_blob(r[7])).hexdigest())

    def _insert_decisions(self, cur: Any, parent_id: int, child_id: int, child: NewChild) -> None:
        """The Beschlusskontrolle's rows of a new child: one per body that decided its parent up to the entering
        that started the follow-up (workflow.decisions.deciding, from the parent's entries)."""
        cur.execute(self._sql("SELECT kind, from_state, to_state, body, at, payload FROM audit WHERE paper_id = :id "
                              "AND kind IN ('transition', 'branch') AND body IS NOT NULL AND at <= :anchor "
                              "ORDER BY seq"), {"id": parent_id, "anchor": self._db_time(child.owed.anchor_at)})
        decided = deciding((r[0], r[1], r[2], r[3], from_db(r[4]), json.loads(r[5])) for r in cur.fetchall())
        if not decided:
            return
        spec = child.definition.states[child.state.state]
        cur.execute(self._sql("SELECT reference, next_due FROM papers WHERE id IN (:parent, :child)"),
                    {"parent": parent_id, "child": child_id})
        found = {str(r[0]): from_db_or_none(r[1]) for r in cur.fetchall()}
        target = found.get(child.owed.reference)
        parent = next(ref for ref in found if ref != child.owed.reference)
        cur.executemany(self._sql(
            "INSERT INTO decisions (body, paper_id, reference, decided_at, result, follow_up, n, child_id, child, "
            "delayed, final, target_at, sort_at) VALUES (:body, :paper_id, :reference, :decided_at, :result, "
            ":follow_up, :n, :child_id, :child, :delayed, :final, :target_at, :sort_at)"),
            [{"body": d.body, "paper_id": parent_id, "reference": parent, "decided_at": self._db_time(d.at),
              "result": d.result, "follow_up": child.owed.name, "n": child.owed.n, "child_id": child_id,
              "child": child.owed.reference, "delayed": spec.delayed, "final": spec.final,
              "target_at": self._db_time(target), "sort_at": self._db_time(sort_moment(target, spec.delayed))}
             for d in decided])

    def _update_decisions(self, cur: Any, paper_id: int, definition: Definition, state: PaperState) -> None:
        """Rewrite the Beschlusskontrolle's rows of a follow-up paper after a change (after its deadlines)."""
        spec = definition.states[state.state]
        cur.execute(self._q["_UPDATE_DECISIONS"],
                    {"id": paper_id, "delayed": spec.delayed, "final": spec.final,
                     "fixed": self._db_time(DELAYED_SORT) if spec.delayed else None,
                     "none": self._db_time(NO_TARGET_SORT)})

    def _insert_follow_up(self, cur: Any, paper_id: int, reference: str, owed: Owed, status: str,
                          done: datetime | None, error: str | None = None) -> None:
        cur.execute(self._sql("INSERT INTO follow_ups (paper_id, reference, name, n, child, workflow, due_at, status, "
                              "done_at, error, anchor_at) VALUES (:paper_id, :reference, :name, :n, :child, :workflow, "
                              ":due_at, :status, :done_at, :error, :anchor_at)"),
                    {"paper_id": paper_id, "reference": reference, "name": owed.name, "n": owed.n,
                     "child": owed.reference, "workflow": owed.workflow, "due_at": self._db_time(owed.due_at),
                     "status": status, "done_at": self._db_time(done), "error": error,
                     "anchor_at": self._db_time(owed.anchor_at)})

    def complete_follow_up(self, row: FollowUpRecord, now: datetime, child: NewChild | None,
                           following: Owed | None = None, error: str | None = None) -> bool:
        """Finish a planned child in one transaction: create it (``child``, with its parent's entry) or record
        why not (``error``; neither: the series ended), and plan the ``following`` one. False, and nothing
        written, if the row is not planned any more (another scheduler finished it first)."""
        status = "created" if child is not None else ("failed" if error else "ended")
        dbapi = self.engine.dialect.dbapi
        assert dbapi is not None
        try:
            with self._transaction() as cur:
                self._append_lock(cur)  # first: on SQLite it begins the write transaction
                cur.execute(self._sql("UPDATE follow_ups SET status = :status, done_at = :now, error = :error "
                                      "WHERE id = :id AND status = 'planned'"),
                            {"status": status, "now": self._db_time(now), "error": error, "id": row.id})
                if cur.rowcount != 1:
                    raise _Taken
                cur.execute(self._sql("SELECT paper_id FROM follow_ups WHERE id = :id"), {"id": row.id})
                paper_id = int(cur.fetchone()[0])
                if child is not None:
                    self._create_child(cur, paper_id, child)
                if following is not None:
                    self._insert_follow_up(cur, paper_id, row.reference, following, "planned", None)
        except _Taken:
            return False
        except dbapi.IntegrityError as exc:
            if child is not None and self._exists(row.child):  # created meanwhile by other means
                raise ConflictError(_("a paper with reference '{reference}' exists already").format(
                    reference=row.child)) from None
            raise self._refused(exc) from None
        return True

    def due_follow_ups(self, until: datetime, limit: int = 100) -> list[FollowUpRecord]:
        """Planned children due at or before ``until``, earliest first (the (status, due_at, id) index)."""
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT {_FOLLOW_UP_COLUMNS} FROM follow_ups WHERE status = 'planned' AND "
                                  "due_at <= :until ORDER BY due_at, id LIMIT :limit"),
                        {"until": self._db_time(until), "limit": limit})
            return [_follow_up(r) for r in cur.fetchall()]

    def follow_ups(self, reference: str) -> list[FollowUpRecord]:
        """The children a paper owes or owed, by follow-up and number."""
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT {_FOLLOW_UP_COLUMNS} FROM follow_ups WHERE paper_id = (SELECT id FROM "
                                  "papers WHERE reference = :reference) ORDER BY name, n"), {"reference": reference})
            return [_follow_up(r) for r in cur.fetchall()]

    def parent_of(self, reference: str) -> FollowUpRecord | None:
        """The row of the follow-up that created the paper ``reference`` (None: it is no follow-up)."""
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT {_FOLLOW_UP_COLUMNS} FROM follow_ups WHERE child = :child AND status = "
                                  "'created'"), {"child": reference})
            row = cur.fetchone()
        return _follow_up(row) if row else None

    def save(
        self,
        paper: StoredPaper,
        definition: Definition,
        state: PaperState,
        changes: Sequence[Change],
        deadlines: DeadlineDiff = ((), ()),
        follow_ups: FollowUpDiff = NO_FOLLOW_UPS,
        mails: Sequence[PaperMail] = (),
    ) -> int:
        """Write the new state ``WHERE version = paper.version`` and append ``changes``, queue ``mails``; new
        version.

        The paper runs on ``definition`` afterwards (a migration moves it to another version)."""
        new_version = paper.version + 1
        dbapi = self.engine.dialect.dbapi
        assert dbapi is not None
        try:
            return self._save(paper, definition, state, changes, deadlines, follow_ups, mails, new_version)
        except dbapi.IntegrityError as exc:
            taken = [c.owed.reference for c in follow_ups[1] if self._exists(c.owed.reference)]
            if taken:  # a follow-up paper's reference was taken meanwhile: the engine decides again
                raise ConflictError(_("{reference} was changed by someone else meanwhile; retry").format(
                    reference=paper.reference)) from None
            raise self._refused(exc) from None

    def _refused(self, exc: Exception) -> StorageError:
        """An integrity error that is no race to retry (no reference taken meanwhile): what the database said."""
        return StorageError(_("database '{url}': {detail}").format(url=self.url,
                                                                  detail=str(exc).strip().splitlines()[0]))

    def _exists(self, reference: str) -> bool:
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT 1 FROM papers WHERE reference = :reference"), {"reference": reference})
            return cur.fetchone() is not None

    def _save(self, paper: StoredPaper, definition: Definition, state: PaperState, changes: Sequence[Change],
              deadlines: DeadlineDiff, follow_ups: FollowUpDiff, mails: Sequence[PaperMail],
              new_version: int) -> int:
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
            for mail in mails:
                cur.execute(self._q["_INSERT_PAPER_MAIL"], {
                    "paper_id": paper.id, "reference": paper.reference, "kind": mail.kind, "label": mail.label,
                    "send_at": self._db_time(mail.send_at), "recipients": json.dumps(list(mail.recipients)),
                    "payload": json.dumps(dict(mail.payload), ensure_ascii=False),
                    "message_id": paper_mail_message_id(paper.reference, last_seq, mail)})
            before = bodies_at(definition, paper.state) if definition.source_hash == paper.definition_hash else None
            self._sync_bodies(cur, paper.id, paper.reference, before, bodies_at(definition, state))
            # the light's inputs (delayed, final, the running deadlines) change only with these
            if state.state != paper.state.state or any(deadlines) or definition.source_hash != paper.definition_hash:
                self._update_decisions(cur, paper.id, definition, state)
            if any(follow_ups):
                self._write_follow_ups(cur, paper.id, paper.reference, follow_ups, changes[-1].at)
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
                cur.execute(self._q["_DROP_AUDIENCE"], {"deadline_id": deadline.id})
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
            listed = audience(definition, d)
            if listed:
                due_at = self._db_time(d.due_at)
                cur.executemany(self._q["_INSERT_AUDIENCE"], [
                    {"email": email, "due_at": due_at, "deadline_id": deadline_id, "since": self._db_time(since)}
                    for email, since in listed])
            for r in d.reminders:
                send_at = self._db_time(r.send_at)
                cur.execute(self._q["_INSERT_REMINDER"], {
                    "deadline_id": deadline_id, "paper_id": paper_id, "reference": reference, "kind": r.kind,
                    "label": r.label, "send_at": send_at, "recipients": json.dumps(list(r.recipients)),
                    "message_id": reminder_message_id(reference, deadline_id, d.name, d.branch, r.kind, r.label, now,
                                                      d.due_at),
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

    def load_with_history(self, references: Sequence[str]) -> list[tuple[StoredPaper, list[AuditRecord]]]:
        """The papers of ``references`` that exist, each with its entries in order: two queries for them all (the
        entries through the (paper_id, seq) index)."""
        if not references:
            return []
        params = {f"r{n}": reference for n, reference in enumerate(references)}
        with self._transaction() as cur:
            cur.execute(self._sql(f"SELECT {_PAPER_COLUMNS} FROM papers WHERE reference IN "
                                  f"({', '.join(':' + name for name in params)})"), params)
            papers = [self._paper_from_row(r) for r in cur.fetchall()]
            if not papers:
                return []
            cur.execute(f"SELECT paper_id, {_AUDIT_COLUMNS} FROM audit WHERE paper_id IN "
                        f"({', '.join(str(int(p.id)) for p in papers)}) ORDER BY paper_id, seq")
            entries: dict[int, list[AuditRecord]] = {p.id: [] for p in papers}
            for row in cur.fetchall():
                entries[int(row[0])].append(_record(row[1:]))
        return [(p, entries[p.id]) for p in papers]

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

    def _readable_clause(self, readable: Collection[str] | None, params: dict[str, Any], alias: str = "p"
                         ) -> list[str]:
        if readable is None:
            return []
        names = []
        for n, digest in enumerate(sorted(readable)):
            params[f"h{n}"] = digest
            names.append(f":h{n}")
        # SQLite: the unary + keeps these columns from driving the plan, so the page walks the reference index
        # in order and stops at LIMIT (instead of reading every public paper and sorting).
        plus = "+" if self.dialect == "sqlite" else ""
        return [f"({plus}{alias}.public = {self._true} OR {plus}{alias}.definition_hash IN ({', '.join(names)}))"
                if names else f"{plus}{alias}.public = {self._true}"]

    def page_decisions(self, body: str, limit: int, after: tuple[datetime, int] | None = None, *,
                       status: str = "offen", readable: Collection[str] | None = None) -> list[DecisionItem]:
        """One page of a body's Beschlusskontrolle: delayed first, then by target date (the (body, final,
        sort_at, id) index range, after the row ``after``), ``status`` offen (unfinished), verzoegert or
        erledigt; a row only if its paper and its follow-up paper are readable (``readable`` as in
        :meth:`page_papers`)."""
        sql, params = self.page_decisions_sql(body, limit, after, status=status, readable=readable)
        with self._transaction() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        return [DecisionItem(r[0], r[1], _title(r[2]), from_db(r[3]), r[4], r[5], int(r[6]), r[7], _title(r[8]),
                             r[9], int(r[10]), r[11], r[12], bool(r[13]), bool(r[14]), from_db_or_none(r[15]),
                             r[16], (from_db(r[17]), int(r[18])))
                for r in rows]

    def page_decisions_sql(self, body: str, limit: int, after: tuple[datetime, int] | None = None, *,
                           status: str = "offen", readable: Collection[str] | None = None
                           ) -> tuple[str, dict[str, Any]]:
        """The statement and parameters of :meth:`page_decisions`."""
        params: dict[str, Any] = {"body": body, "limit": limit, "final": status == "erledigt"}
        clauses = ["d.body = :body", "d.final = :final"]
        if after is not None:
            clauses.append("(d.sort_at > :sort_at OR (d.sort_at = :sort_at AND d.id > :id))")
            params.update(sort_at=self._db_time(after[0]), id=after[1])
        if status == "verzoegert":
            clauses.append(f"d.delayed = {self._true}")
        clauses += self._readable_clause(readable, params, "p") + self._readable_clause(readable, params, "c")
        # SQLite: the unary + keeps the (status, due_at) index from driving the deadline's lookup, so it reads the
        # child's own deadlines by (paper_id, status) instead of every running deadline in due order.
        plus = "+" if self.dialect == "sqlite" else ""
        return self._sql(
            "SELECT d.body, d.reference, p.fields, d.decided_at, d.result, d.follow_up, d.n, d.child, c.fields, "
            "c.workflow, c.workflow_version, c.definition_hash, c.state, d.delayed, d.final, d.target_at, "
            f"(SELECT g.name FROM deadlines g WHERE g.paper_id = d.child_id AND {plus}g.status = 'running' "
            "ORDER BY g.due_at, g.id LIMIT 1), d.sort_at, d.id "
            "FROM decisions d JOIN papers p ON p.id = d.paper_id JOIN papers c ON c.id = d.child_id "
            f"WHERE {' AND '.join(clauses)} ORDER BY d.sort_at, d.id LIMIT :limit"), params

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
                               audience: str | None = None, now: datetime | None = None
                               ) -> list[tuple[StoredPaper, DeadlineRecord]]:
        """Running deadlines in (due_at, id) order: those kept with the address ``audience`` through the
        (email, due_at, deadline_id) key of ``deadline_audience``, or all through the (status, due_at, id)
        index."""
        from .outbox import _DEADLINE_COLUMNS, _deadline

        sql, params = self.running_deadlines_sql(limit, after, audience=audience, now=now)
        with self._transaction() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        width = len(_DEADLINE_COLUMNS.split(","))
        return [(self._paper_from_row(r[width:]), _deadline(r[:width])) for r in rows]

    def running_deadlines_sql(self, limit: int, after: tuple[datetime, int] | None = None, *,
                              audience: str | None = None, now: datetime | None = None) -> tuple[str, dict[str, Any]]:
        """The statement and parameters of :meth:`page_running_deadlines`."""
        from .outbox import _DEADLINE_COLUMNS

        params: dict[str, Any] = {"limit": limit}
        columns = ", ".join(f"p.{c.strip()}" for c in _PAPER_COLUMNS.split(","))
        deadline_columns = ", ".join(f"d.{c.strip()}" for c in _DEADLINE_COLUMNS.split(","))
        if audience is not None:
            # one index range of the primary key (email, due_at, deadline_id), from the cursor on (a row value:
            # both databases seek to it), joined to its deadline and paper by their keys, stopping at LIMIT
            clauses = ["a.email = :email", "d.status = 'running'"]
            params["email"] = audience
            if after is not None:
                clauses.append("(a.due_at, a.deadline_id) > (:due, :id)")
                params.update(due=self._db_time(after[0]), id=after[1])
            if now is not None:
                clauses.append("(a.since IS NULL OR a.since <= :now)")
                params["now"] = self._db_time(now)
            return (self._sql(f"SELECT {deadline_columns}, {columns} FROM deadline_audience a CROSS JOIN deadlines d "
                              f"CROSS JOIN papers p WHERE d.id = a.deadline_id AND p.id = d.paper_id AND "
                              f"{' AND '.join(clauses)} ORDER BY a.due_at, a.deadline_id LIMIT :limit"), params)
        clauses = ["d.status = 'running'"]
        if after is not None:
            clauses.append("(d.due_at, d.id) > (:due, :id)")
            params.update(due=self._db_time(after[0]), id=after[1])
        # SQLite: CROSS JOIN keeps the deadlines outer, so the page walks (status, due_at, id) and stops at LIMIT
        # (its planner would otherwise read the papers first and sort every running deadline); PostgreSQL plans
        # a CROSS JOIN with its condition in WHERE like any join.
        return (self._sql(f"SELECT {deadline_columns}, {columns} FROM deadlines d CROSS JOIN papers p "
                          f"WHERE p.id = d.paper_id AND {' AND '.join(clauses)} ORDER BY d.due_at, d.id "
                          "LIMIT :limit"), params)

    def oparl_page(self, offset: int, limit: int, *, modified_since: datetime | None = None
                   ) -> tuple[int, list[tuple[str, int, str | None]]]:
        """A slice of the public papers by id (reference, version, stored OParl text).

        Per state of the trail (its head: every change that adds, hides or shows a paper appends an entry) the
        number of public papers is counted once (an index-only count) and the first id of each page is kept as
        it is found: a page reads one row more than it shows, which is where the next page starts (a client
        following the links never skips), and a page jumped to is found by skipping entries of the (public, id)
        index alone, once. A page is then one index range from its first id: no COUNT and no OFFSET per
        request."""
        count_sql, seek_sql, page_sql, params = self.oparl_page_sql(limit, modified_since=modified_since)
        with self._transaction() as cur:
            cur.execute(_LAST_ENTRY)
            last = cur.fetchone()
            key = (int(last[0]) if last else 0, limit, params.get("since"))
            with self._kept_lock:
                found = self._oparl_index.get(key)
            if found is None:
                cur.execute(count_sql, params)
                found = (int(cur.fetchone()[0]), {})
                with self._kept_lock:
                    found = self._oparl_index.setdefault(key, found)
                    while len(self._oparl_index) > 8:
                        self._oparl_index.popitem(last=False)
            total, starts = found
            if offset >= total:
                return total, []
            number, off_page = divmod(offset, limit)
            first = None if off_page else starts.get(number)
            if first is None:
                cur.execute(seek_sql, {**params, "offset": offset})
                row = cur.fetchone()
                if row is None:
                    return total, []
                first = int(row[0])
            cur.execute(page_sql, {**params, "first": first, "rows": limit + 1})
            page = cur.fetchall()
        if not off_page:
            with self._kept_lock:
                starts[number] = first
                if len(page) > limit:
                    starts[number + 1] = int(page[limit][0])
        return total, [(str(r[1]), int(r[2]), r[3]) for r in page[:limit]]

    def oparl_page_sql(self, limit: int, *, modified_since: datetime | None = None
                       ) -> tuple[str, str, str, dict[str, Any]]:
        """The statements of :meth:`oparl_page` and their parameters: the number of the papers, the id at a
        position (``:offset``, an index-only skip), and a page from its first id (``:first``; ``:rows``)."""
        where = f"p.public = {self._true}"
        params: dict[str, Any] = {}
        if modified_since is not None:
            # a paper is modified by its own changes and by each follow-up paper created for it (OParl's
            # subordinatedPaper, a note in its trail): modified_at, workflow.oparl.modified_at
            where += " AND p.modified_at >= :since"
            params["since"] = self._db_time(modified_since)
        return (self._sql(f"SELECT COUNT(*) FROM papers p WHERE {where}"),
                self._sql(f"SELECT p.id FROM papers p WHERE {where} ORDER BY p.id LIMIT 1 OFFSET :offset"),
                self._sql(f"SELECT p.id, p.reference, p.version, p.oparl FROM papers p WHERE {where} "
                          "AND p.id >= :first ORDER BY p.id LIMIT :rows"), params)

    def keep_oparl(self, built: Sequence[tuple[StoredPaper, str]]) -> None:
        if not built:
            return
        with self._transaction() as cur:
            cur.executemany(self._sql("UPDATE papers SET oparl = :oparl WHERE id = :id AND version = :version"),
                            [{"oparl": text, "id": paper.id, "version": paper.version} for paper, text in built])
