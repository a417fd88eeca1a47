"""The storage port's contract, on SQLite, PostgreSQL and the in-memory store alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflow import ConflictError, NotFoundError, load_definition
from workflow.audit import verify
from workflow.chain import GENESIS
from workflow.deadlines import PlannedDeadline, PlannedReminder
from workflow.definition import Definition
from workflow.paper import Change, PaperState, fold
from workflow.store import Store

from .conftest import LANDRAT, SPEC

T0 = datetime(2020, 8, 4, 7, 0, tzinfo=UTC)
SB_TEXT = (SPEC / "sachstandsbericht.yaml").read_text(encoding="utf-8")
SB = load_definition(SB_TEXT, "sachstandsbericht.yaml")


def _created(reference: str, at: datetime = T0) -> tuple[list[Change], PaperState]:
    changes = [Change("create", "create", None, "entwurf", LANDRAT, at, payload={"fields": {"title": reference}})]
    return changes, fold(SB, None, changes)


def _deadline(name: str, due: datetime, *mails: tuple[str, datetime]) -> PlannedDeadline:
    return PlannedDeadline(name, f"Frist {name}", "entwurf", "", None, due, "entered", T0,
                           tuple(PlannedReminder(kind, f"{kind} {at:%H%M}", at, (LANDRAT,)) for kind, at in mails))


def _make(store: Store, reference: str, definition: Definition = SB, **deadlines: PlannedDeadline) -> None:
    store.remember_definition(definition, SB_TEXT, T0)
    changes, state = _created(reference)
    store.create(reference, definition, state, changes, ((), list(deadlines.values())))


def test_papers_are_created_once_and_saved_against_their_version(store: Store) -> None:
    """A reference exists once; a save on a stale version changes nothing at all."""
    _make(store, "SV-1")
    paper = store.load("SV-1")
    assert (paper.reference, paper.version, paper.state.state, store.references()) == ("SV-1", 1, "entwurf", ["SV-1"])
    with pytest.raises(ConflictError, match="gibt es bereits"):
        _make(store, "SV-1")
    move = [Change("transition", "zurueckziehen", "entwurf", "zurueckgezogen", LANDRAT, T0 + timedelta(hours=1))]
    assert store.save(paper, SB, fold(SB, paper.state, move), move) == 2
    head = store.head()
    with pytest.raises(ConflictError, match="von jemand anderem geändert"):
        store.save(paper, SB, fold(SB, paper.state, move), move)  # paper still says version 1
    assert store.head() == head and len(store.history("SV-1")) == 2
    assert store.load("SV-1").state.state == "zurueckgezogen"
    with pytest.raises(NotFoundError):
        store.load("SV-2")


def test_the_trail_is_chained_and_filtered(store: Store) -> None:
    """Entries are numbered and hash-chained across papers; queries filter and keep the order."""
    assert store.head() == (0, GENESIS) and store.count_audit() == 0
    _make(store, "SV-1")
    _make(store, "SV-2")
    seq, digest = store.head()  # entry 1: the definition's first use (an admin entry, of no paper)
    assert seq == 3 and digest == store.history("SV-2")[-1].hash
    assert verify(store).ok
    assert [r.reference for r in store.iter_audit(reference="SV-2")] == ["SV-2"]
    assert [r.seq for r in store.iter_audit(actor=LANDRAT, since=T0, until=T0)] == [2, 3]
    assert list(store.iter_audit(since=T0 + timedelta(seconds=1))) == []
    assert store.history("SV-1", until=T0 - timedelta(seconds=1)) == []


def test_a_definition_version_keeps_its_text(store: Store) -> None:
    """The text of a version is stored once; other content under the same version is refused."""
    store.remember_definition(SB, SB_TEXT, T0)
    store.remember_definition(SB, SB_TEXT, T0)
    assert store.stored_definition("sachstandsbericht", 1) == (SB.source_hash, SB_TEXT)
    assert [d[:3] for d in store.iter_definitions()] == [("sachstandsbericht", 1, SB.source_hash)]
    changed = load_definition(SB_TEXT.replace("Sachstandsbericht", "Bericht", 1), "sachstandsbericht.yaml")
    with pytest.raises(ConflictError, match="'version' erhöhen"):
        store.remember_definition(changed, SB_TEXT + "#", T0)
    with pytest.raises(NotFoundError):
        store.stored_definition("sachstandsbericht", 2)


def test_outbox_claims_with_a_lease_and_fences_completion(store: Store) -> None:
    """Due mails are claimed once per lease; only the current claim may finish them; ending a deadline
    cancels its unsent mails."""
    soon, later = T0 + timedelta(days=1), T0 + timedelta(days=3)
    _make(store, "SV-1", a=_deadline("a", later, ("remind", soon), ("escalate", later)))
    outbox = store.outbox
    [deadline] = outbox.deadlines("SV-1")
    assert (deadline.name, deadline.due_at, deadline.status) == ("a", later, "running")
    assert [r.kind for r in outbox.reminders(reference="SV-1")] == ["remind", "escalate"]
    assert outbox.claim(T0, worker="w1", lease=timedelta(minutes=5)) == []
    [mine] = outbox.claim(soon, worker="w1", lease=timedelta(minutes=5))
    assert outbox.claim(soon, worker="w2", lease=timedelta(minutes=5)) == []  # leased
    [taken] = outbox.claim(soon + timedelta(minutes=6), worker="w2", lease=timedelta(minutes=5))  # lease ran out
    assert not outbox.renew(mine, soon + timedelta(hours=1)) and not outbox.mark_sent(mine, soon)  # fenced
    assert not outbox.renew(mine, soon + timedelta(hours=1), claim=False)  # its row alone: fenced as well
    assert outbox.renew(taken, soon + timedelta(minutes=30), claim=False)
    assert outbox.claim(soon + timedelta(minutes=20), worker="w3", lease=timedelta(minutes=5)) == []  # renewed
    assert outbox.renew(taken, soon + timedelta(hours=1))
    assert outbox.mark_retry(taken, soon + timedelta(hours=2), "421 busy")
    [again] = outbox.claim(soon + timedelta(hours=2), worker="w2", lease=timedelta(minutes=5))
    assert again.attempts == 1 and again.last_error == "421 busy"
    assert outbox.mark_sent(again, soon + timedelta(hours=2))
    assert [r.status for r in outbox.reminders(reference="SV-1", statuses=("sent",))] == ["sent"]
    assert outbox.digest_recipients(later) == [LANDRAT]
    assert [d.name for d in outbox.running_for(LANDRAT, later)] == ["a"]
    assert outbox.add_digest(LANDRAT, "2020-08-05", soon, {"items": []})
    assert not outbox.add_digest(LANDRAT, "2020-08-05", soon, {"items": []})  # once per person and day
    paper = store.load("SV-1")
    move = [Change("transition", "zurueckziehen", "entwurf", "zurueckgezogen", LANDRAT, soon)]
    store.save(paper, SB, fold(SB, paper.state, move), move, ([("a", "")], []))
    assert outbox.deadlines("SV-1") == [] and outbox.deadlines("SV-1", running_only=False)[0].status == "ended"
    assert [r.status for r in outbox.reminders(reference="SV-1", statuses=("cancelled",))] == ["cancelled"]


def test_tokens_and_heartbeats(store: Store) -> None:
    """Tokens are found by their hash, in their scope, until revoked; the newest heartbeat is reported."""
    token_id = store.tokens.add(LANDRAT, "laptop", "ab" * 32, T0)
    assert store.tokens.email_for("ab" * 32) == LANDRAT and store.tokens.email_for("cd" * 32) is None
    assert store.tokens.revoke(token_id, T0) and not store.tokens.revoke(token_id, T0)
    assert store.tokens.email_for("ab" * 32) is None
    assert [(t[0], t[1], t[4], t[5]) for t in store.tokens.all()] == [(token_id, LANDRAT, T0, "api")]
    feed_id = store.tokens.add(LANDRAT, "Kalender", "ef" * 32, T0, scope="calendar")  # found in its scope only
    assert store.tokens.email_for("ef" * 32) is None and store.tokens.email_for("ef" * 32, scope="calendar") == LANDRAT
    assert store.tokens.all()[-1][5] == "calendar" and store.tokens.revoke(feed_id, T0)
    assert store.tokens.email_for("ef" * 32, scope="calendar") is None
    assert store.last_beat() is None
    store.beat("w1", T0)
    store.beat("w2", T0 + timedelta(seconds=5))
    assert store.last_beat() == ("w2", T0 + timedelta(seconds=5))
