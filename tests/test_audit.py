"""Audit-trail verification: edits, deletions, insertions, reordering and cut-offs are found."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import text

from workflow import Engine, verify

from .conftest import LANDRAT, SITZ


def _path(engine: Engine) -> None:
    """Entry 1 is the definition's first use (an admin entry); 2 to 6 the changes of SV-1 and SV-2."""
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "eins"})
    engine.create("sachstandsbericht", "SV-2", LANDRAT, {"title": "zwei"})
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    engine.fire("SV-2", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    engine.fire("SV-1", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})


def _sql(engine: Engine, *statements: str) -> None:
    """Tamper directly, as a superuser would: on PostgreSQL with the append-only trigger skipped."""
    with engine.store.engine.begin() as conn:
        if engine.store.dialect == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for s in statements:
            conn.execute(text(s))


def _insert_forged(engine: Engine) -> None:
    """A forger who knows the hash algorithm inserts a correctly hashed entry after entry 3 (SV-2's first)."""
    second = engine.store.history("SV-2")[0]
    forged = replace(second, seq=4, trigger="zurueckziehen", kind="transition", from_state="entwurf",
                     to_state="zurueckgezogen", prev_hash=second.hash, hash="")
    forged = replace(forged, hash=forged.expected_hash())
    _sql(engine, "UPDATE audit SET seq = seq + 100 WHERE seq >= 4", "UPDATE audit SET seq = seq - 99 WHERE seq >= 104")
    with engine.store.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO audit (seq, paper_id, reference, workflow, workflow_version, kind, trigger, from_state, "
                 "to_state, branch, actor, at, payload, prev_hash, hash) SELECT :seq, paper_id, reference, workflow, "
                 "workflow_version, :kind, :trigger, :from_state, :to_state, branch, actor, at, payload, :prev, :hash "
                 "FROM audit WHERE seq = 3"),
            {"seq": 4, "kind": forged.kind, "trigger": forged.trigger, "from_state": forged.from_state,
             "to_state": forged.to_state, "prev": forged.prev_hash, "hash": forged.hash},
        )


TAMPER: dict[str, tuple[Callable[[Engine], None], str]] = {
    "edit-actor": (
        lambda e: _sql(e, "UPDATE audit SET actor = 'someone@else.example' WHERE seq = 4"),
        r"Eintrag 4 \(SV-1, einbringen\) wurde verändert: sein Inhalt passt nicht zu seinem Hash",
    ),
    "edit-payload": (
        lambda e: _sql(e, "UPDATE audit SET payload = '{\"result\":\"beschlossen\"}' WHERE seq = 6"),
        r"Eintrag 6 \(SV-1, kenntnis_nehmen\) wurde verändert",
    ),
    "delete-middle": (
        lambda e: _sql(e, "DELETE FROM audit WHERE seq = 3"),
        r"Eintrag 3 fehlt \(gelöscht\): nach Eintrag 2 folgt Eintrag 4",
    ),
    "delete-last": (
        lambda e: _sql(e, "DELETE FROM audit WHERE seq = 6"),
        r"Eintrag 6, der neueste von SV-1, fehlt: Einträge wurden vom Prüfpfad abgeschnitten",
    ),
    "insert-forged": (
        lambda e: _insert_forged(e),
        r"Eintrag 5 \(SV-1, einbringen\) verweist nicht auf Eintrag 4: Einträge wurden eingefügt, gelöscht oder "
        r"umgestellt",
    ),
    "edit-paper-state": (
        lambda e: _sql(e, "UPDATE papers SET state = 'zur_kenntnis_genommen' WHERE reference = 'SV-2'"),
        r"SV-2: der gespeicherte Zustand weicht von dem ab, zu dem ihr Prüfpfad führt: die Tabelle der Vorlagen wurde "
        r"verändert",
    ),
    "delete-paper": (
        lambda e: _sql(e, "PRAGMA foreign_keys = OFF" if e.store.dialect == "sqlite" else "SELECT 1",
                       "ALTER TABLE audit DROP CONSTRAINT audit_paper_id_fkey" if e.store.dialect != "sqlite"
                       else "SELECT 1", "DELETE FROM reminders WHERE reference = 'SV-2'",
                       "DELETE FROM deadlines WHERE reference = 'SV-2'", "DELETE FROM papers WHERE reference = 'SV-2'"),
        r"es gibt Einträge zu SV-2, die Vorlage selbst wurde aber gelöscht",
    ),
    "swap-order": (
        lambda e: _sql(e, "UPDATE audit SET seq = 100 WHERE seq = 4", "UPDATE audit SET seq = 4 WHERE seq = 5",
                       "UPDATE audit SET seq = 5 WHERE seq = 100"),
        r"Eintrag 4 \(SV-2, einbringen\) verweist nicht auf Eintrag 3",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPER), ids=str)
def test_tampering_is_found(engine: Engine, db_url: str, case: str) -> None:
    """Each direct manipulation of the audit table is named by verify."""
    _path(engine)
    assert verify(engine.store).ok
    tamper, message = TAMPER[case]
    tamper(engine)
    report = engine.verify()
    assert not report.ok
    assert report.problem is not None
    assert re.search(message, report.problem), report.problem


def test_kept_head_must_stay_in_the_chain(engine: Engine) -> None:
    """A head hash kept outside the database proves the trail was not rewritten before it."""
    _path(engine)
    head = verify(engine.store).head_hash
    assert verify(engine.store, head=head).ok
    assert not verify(engine.store, head="f" * 64).ok


def test_postgres_audit_table_is_append_only(engine: Engine) -> None:
    """On PostgreSQL, UPDATE, DELETE and TRUNCATE of audit entries are refused by a trigger."""
    if engine.store.dialect != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's; SQLite relies on verify alone")
    from sqlalchemy.exc import DBAPIError

    _path(engine)
    for statement in ("UPDATE audit SET actor = 'x@y.z' WHERE seq = 1", "DELETE FROM audit WHERE seq = 6",
                      "TRUNCATE audit CASCADE"):
        with pytest.raises(DBAPIError, match="councilflow audit entries are append-only"), \
                engine.store.engine.begin() as conn:
            conn.execute(text(statement))
    assert engine.verify().ok and engine.verify().entries == 6  # with the definition's first use (entry 1)
