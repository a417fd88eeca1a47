"""What the benchmarks share: scratch PostgreSQL databases, the bulk fill of a store by cloned rows (executemany
on SQLite, COPY on PostgreSQL, then the id sequences and the planner's statistics), waiting for a
`councilflow web` to answer, and the p99 of samples."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx

from workflow import SqlStore

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PAPER_COLUMNS = ("id", "reference", "workflow", "workflow_version", "definition_hash", "state", "entered_at",
                 "meeting", "branches", "fields", "result", "created_at", "updated_at", "version", "last_seq",
                 "last_hash", "done", "public", "next_due")
DEADLINE_COLUMNS = ("id", "paper_id", "reference", "name", "label", "state", "branch", "body", "due_at", "anchor",
                    "anchor_at", "started_at", "status", "ended_at")


def p99(samples: list[float]) -> float:
    """The 99th percentile of samples in seconds, in ms."""
    return statistics.quantiles(samples, n=100)[98] * 1000


def pg_create(prefix: str) -> str:
    """A new scratch database on 127.0.0.1:5432 named ``prefix`` and a random tail; its name."""
    import psycopg

    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name


def pg_drop(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Copier:
    """Writes rows in bulk on a DBAPI cursor: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def __call__(self, cur: Any, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.store.dialect == "sqlite":
            marks = ", ".join("?" for _ in columns)
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
        else:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def last_ids(store: SqlStore, *tables: str) -> list[int]:
    """The highest id of each of ``tables`` (0 for an empty one): cloned rows take the ids after it."""
    with store._transaction() as cur:
        out = []
        for table in tables:
            cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
            out.append(int(cur.fetchone()[0]))
    return out


def filled(store: SqlStore, tables: Iterable[str]) -> None:
    """After rows were written with their own ids: the id sequences of ``tables`` moved past them (PostgreSQL),
    and the planner's statistics gathered (VACUUM ANALYZE; ANALYZE on SQLite)."""
    with store._transaction() as cur:
        if store.dialect == "postgresql":
            for table in tables:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
    raw = store.engine.raw_connection()
    try:
        if store.dialect == "postgresql":
            raw.driver_connection.autocommit = True
            raw.cursor().execute("VACUUM ANALYZE")
        else:
            raw.cursor().execute("ANALYZE")
            raw.commit()
    finally:
        raw.close()


def wait_until_up(ask: Callable[[], Any], seconds: float, pause: float) -> None:
    """Call ``ask`` (a request to a starting server) until it gets through; its TransportError after
    ``seconds``."""
    limit = time.monotonic() + seconds
    while True:
        try:
            ask()
            return
        except httpx.TransportError:
            if time.monotonic() > limit:
                raise
            time.sleep(pause)
