"""Everything that happened is in the record: mails sent, finally failed or skipped (kind ``mail``), tokens
created and revoked and a definition version's first use (kind ``admin``) are entries of the hash-chained
trail, written in the transaction that marks the mail (or makes the token, stores the definition)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from notifier.dispatch import Dispatcher
from notifier.transports import MemoryTransport
from workflow import Engine, FixedClock, SqlStore
from workflow.config import Settings
from workflow.store import AuditRecord
from workflow.tokens import create_token, list_tokens, revoke_calendar, revoke_token

from .conftest import FEDER, LANDRAT, SITZ
from .smtp import Sink, smtp
from .test_mail import SENDER, at, dispatcher, ks_before_meeting, sv_in_committee

__all__ = ["smtp"]  # the fixture, shared with tests/smtp.py

REF = "SV-9-1809"


def mails(engine: Engine, reference: str | None = None) -> list[AuditRecord]:
    return [r for r in engine.audit(reference=reference) if r.kind == "mail"]


def test_a_sent_reminder_is_one_entry_naming_recipients_and_message_id(engine: Engine, clock: FixedClock,
                                                                        smtp: tuple[Sink, int]) -> None:
    """The Ladungsfrist reminder received by the SMTP server is in the trail once: paper, deadline, kind,
    recipient and the Message-ID the recipient saw; status and timeline are what they were."""
    sink, port = smtp
    sv_in_committee(engine, clock)
    before = engine.status(REF, as_of="2020-08-18T09:00")
    timeline = engine.timeline(REF)
    worker = dispatcher(engine, port)
    assert worker.tick(at("2020-08-18T08:00")).sent == 1
    assert worker.tick(at("2020-08-19T08:00")).claimed == 0
    [received] = sink.wait_for(1)
    [entry] = mails(engine)
    assert (entry.reference, entry.kind, entry.trigger, entry.actor, entry.at) == (
        REF, "mail", "remind", "system", at("2020-08-18T08:00"))
    p = entry.payload
    assert p["outcome"] == "sent" and p["recipients"] == [SITZ] == [received["To"]]
    assert p["message_ids"] == {SITZ: received["Message-ID"]}
    assert (p["deadline"], p["deadline_label"], p["attempts"]) == (
        "ladung", "Einladung mit Vorlage versenden (Ladungsfrist)", 1)
    assert entry.body == "afwk" and entry.workflow == "sachstandsbericht"
    assert engine.history(REF)[-1] == entry  # the paper's history shows it
    assert engine.verify().ok
    # replay and as-of status pass over it
    assert engine.status(REF, as_of="2020-08-18T09:00") == before
    assert engine.timeline(REF) == timeline
    assert engine.store.load(REF).last_seq < entry.seq  # the paper's newest change stays its pointer


def test_an_escalation_to_two_records_each_copy(engine: Engine, clock: FixedClock, smtp: tuple[Sink, int]) -> None:
    """One entry per mail; each recipient's personal copy with its own Message-ID."""
    sink, port = smtp
    ks_before_meeting(engine, clock)
    worker = dispatcher(engine, port)
    assert worker.tick(at("2020-12-21T12:00")).sent == 2
    assert worker.tick(at("2020-12-22T08:00")).sent == 1
    # (a long Message-ID arrives folded onto a line of its own: the header's value is the same)
    received = {(m["X-Councilflow-Kind"], m["To"]): m["Message-ID"].strip() for m in sink.wait_for(4)}
    entries = mails(engine, "KS-1")
    assert [e.trigger for e in entries] == ["remind", "remind", "escalate"]
    [escalation] = [e for e in entries if e.trigger == "escalate"]
    assert escalation.payload["message_ids"] == {to: mid for (kind, to), mid in received.items()
                                                 if kind == "escalation"}
    assert len(set(escalation.payload["message_ids"].values())) == 2
    assert {e.payload["outcome"] for e in entries} == {"sent"}
    assert engine.verify().ok


def test_a_final_failure_and_a_retry(engine: Engine, clock: FixedClock, smtp: tuple[Sink, int]) -> None:
    """A temporary failure is no entry (the mail is not final yet); the final 5xx is one, with the error."""
    sink, port = smtp
    sv_in_committee(engine, clock)
    worker = dispatcher(engine, port)
    sink.reply = "451 4.3.0 try again later"
    assert worker.tick(at("2020-08-18T08:00")).retried == 1
    assert mails(engine) == []
    sink.reply = "550 5.1.1 User unknown"
    assert worker.tick(at("2020-08-18T08:01")).failed == 1
    [entry] = mails(engine)
    assert entry.payload["outcome"] == "failed" and entry.payload["attempts"] == 2
    assert "550 5.1.1 User unknown" in entry.payload["error"]
    assert entry.payload["recipients"] == [SITZ] and SITZ in entry.payload["message_ids"]
    assert engine.verify().ok


def test_a_due_mail_whose_deadline_ends_unsent_is_skipped(engine: Engine, clock: FixedClock) -> None:
    """The reminder fell due while nobody sent mail; the decision that ends its deadline records it as
    skipped, in the same transaction; reminders not yet due leave no entry."""
    sv_in_committee(engine, clock)
    sv_in_committee(engine, clock, "SV-2")
    clock.set(at("2020-08-19T10:00"))  # the Ladungsfrist reminder (18.08. 08:00) is due, nothing was sent
    engine.fire(REF, "zurueckziehen", LANDRAT)
    clock.set(at("2020-08-19T10:01"))
    engine.fire("SV-2", "zurueckziehen", LANDRAT)
    skipped = mails(engine)
    assert [(e.reference, e.trigger, e.payload["outcome"], e.payload["reason"]) for e in skipped] == [
        (REF, "remind", "skipped", "deadline_ended"), ("SV-2", "remind", "skipped", "deadline_ended")]
    first = engine.history(REF)
    assert [r.kind for r in first[-2:]] == ["transition", "mail"] and first[-1].at == at("2020-08-19T10:00")
    assert "message_ids" not in skipped[0].payload  # no mail was built
    assert engine.verify().ok
    assert engine.store.outbox.claim(at("2020-09-30T08:00"), worker="w", lease=timedelta(minutes=5)) == []


def test_a_mail_in_flight_when_its_deadline_ends(engine: Engine, clock: FixedClock) -> None:
    """A claimed mail whose deadline ends while it is being sent is left to its sender: sent if it went out,
    skipped if the sender had not sent it yet; one entry either way."""
    sv_in_committee(engine, clock)
    sv_in_committee(engine, clock, "SV-2")
    outbox = engine.store.outbox
    moment = at("2020-08-18T08:00")
    first, second = outbox.claim(moment, worker="w", lease=timedelta(minutes=5))
    clock.set(moment + timedelta(seconds=10))
    engine.fire(first.reference or "", "zurueckziehen", LANDRAT)
    engine.fire(second.reference or "", "zurueckziehen", LANDRAT)
    assert mails(engine) == []  # both are being sent: their senders say what became of them
    assert outbox.mark_sent(first, moment + timedelta(seconds=20), {SITZ: "<x@kreis-coesfeld.example>"})
    assert not outbox.renew(second, moment + timedelta(minutes=10))
    assert outbox.skip(second, moment + timedelta(seconds=20))
    assert not outbox.skip(second, moment + timedelta(seconds=21))  # once
    assert [(e.reference, e.payload["outcome"]) for e in mails(engine)] == [(first.reference, "sent"),
                                                                            (second.reference, "skipped")]
    assert [r.status for r in outbox.reminders(reference=first.reference, statuses=("sent",))] == ["sent"]
    assert engine.verify().ok


def test_a_crashed_senders_mail_is_skipped_by_the_change_after_its_lease(engine: Engine, clock: FixedClock) -> None:
    """A claimed row whose lease ran out (its sender died) is ended by the change, with its entry; the dead
    sender, if it comes back, is fenced."""
    sv_in_committee(engine, clock)
    outbox = engine.store.outbox
    moment = at("2020-08-18T08:00")
    [claimed] = outbox.claim(moment, worker="dead", lease=timedelta(minutes=5))
    clock.set(moment + timedelta(minutes=6))
    engine.fire(REF, "zurueckziehen", LANDRAT)
    [entry] = mails(engine)
    assert entry.payload["outcome"] == "skipped"
    assert not outbox.mark_sent(claimed, moment + timedelta(minutes=7)) and not outbox.skip(claimed, moment)
    assert len(mails(engine)) == 1 and engine.verify().ok


def test_digests_are_no_entries(engine: Engine, clock: FixedClock) -> None:
    """A person's daily overview belongs to no paper: it is not an entry (its reminders are)."""
    sv_in_committee(engine, clock)
    worker = Dispatcher(engine, MemoryTransport(), Settings(mail_from=SENDER), "test")
    assert worker.queue_digests(at("2020-08-17T07:00")) == 1
    worker.tick(at("2020-08-17T08:00"))
    assert [m.kind for m in engine.store.outbox.reminders(statuses=("sent",))] == ["digest"]
    assert mails(engine) == []


def test_tokens_and_definition_versions_leave_admin_entries(engine: Engine, clock: FixedClock) -> None:
    """Creating and revoking a token leaves who, for whom, scope and id (never the secret or its hash); a
    definition version's first use leaves workflow, version and hash, its second use nothing."""
    now = clock.now()
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "eins"})
    engine.create("sachstandsbericht", "SV-2", LANDRAT, {"title": "zwei"})
    token_id, secret = create_token(engine.store, SITZ, "Laptop", now)
    feed_id, feed = create_token(engine.store, LANDRAT, "Kalender (Web)", now, "calendar", LANDRAT)
    revoke_token(engine.store, token_id, now)
    assert revoke_calendar(engine.store, LANDRAT, now) == 1
    admin = [r for r in engine.audit() if r.kind == "admin"]
    assert [(r.trigger, r.actor, r.reference, r.workflow) for r in admin] == [
        ("definition", LANDRAT, "", "sachstandsbericht"), ("token_create", "system", "", ""),
        ("token_create", LANDRAT, "", ""), ("token_revoke", "system", "", ""), ("token_revoke", LANDRAT, "", "")]
    definition = engine.current_definition("sachstandsbericht")
    assert admin[0].payload == {"workflow": "sachstandsbericht", "version": 1,
                                "definition_hash": definition.source_hash}
    assert admin[1].payload == {"token_id": token_id, "email": SITZ, "scope": "api", "label": "Laptop"}
    assert admin[4].payload == {"token_id": feed_id, "email": LANDRAT, "scope": "calendar", "label": "Kalender (Web)"}
    hashes = {t.id: t for t in list_tokens(engine.store)}
    assert set(hashes) == {token_id, feed_id}
    trail = json.dumps([r.payload_text for r in engine.audit()])
    assert secret not in trail and feed not in trail
    import hashlib

    assert all(hashlib.sha256(s.encode()).hexdigest() not in trail for s in (secret, feed))
    assert [r.reference for r in engine.audit()].count("") == 5
    assert engine.verify().ok
    engine.create("kreisstrategie", "KS-1", FEDER, {"title": "Strategie"})  # another workflow: one more entry
    assert [r.workflow for r in engine.audit() if r.trigger == "definition"] == ["sachstandsbericht", "kreisstrategie"]


def test_concurrent_senders_and_changes_keep_one_chain(engine: Engine, clock: FixedClock) -> None:
    """Four senders (threads, one claim each) mark mails while papers change: the chain stays one line, each
    mail is one entry."""
    clock.set(at("2020-08-04T09:00"))
    for i in range(12):
        engine.create("sachstandsbericht", f"SV-{i}", LANDRAT, {"title": f"Vorlage {i}"})
        engine.fire(f"SV-{i}", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    clock.set(at("2020-08-18T08:00"))
    start = threading.Barrier(5)
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            worker = Dispatcher(engine, MemoryTransport(), Settings(mail_from=SENDER, batch=2), f"w{n}")
            start.wait()
            worker.tick(at("2020-08-18T08:00"))
        except BaseException as exc:
            errors.append(exc)

    def change() -> None:
        try:
            start.wait()
            for i in range(12, 16):
                engine.create("sachstandsbericht", f"SV-{i}", LANDRAT, {"title": f"Vorlage {i}"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)] + [threading.Thread(target=change)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    sent = engine.store.outbox.reminders(statuses=("sent",))
    entries = mails(engine)
    assert len(sent) == 12 and sorted(e.payload["mail_id"] for e in entries) == sorted(r.id for r in sent)
    report = engine.verify()
    assert report.ok, report.problem
    assert report.entries == engine.store.count_audit()


def test_tampering_with_a_mail_entry_is_found(engine: Engine, db_url: str, clock: FixedClock) -> None:
    """Editing a mail entry's recipients, deleting it or claiming it for another paper breaks the chain."""
    sv_in_committee(engine, clock)
    Dispatcher(engine, MemoryTransport(), Settings(mail_from=SENDER), "test").tick(at("2020-08-18T08:00"))
    [entry] = mails(engine)
    assert engine.verify().ok
    forged = json.dumps({**entry.payload, "recipients": ["someone@else.example"]})
    store = engine.store
    assert isinstance(store, SqlStore)
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("UPDATE audit SET payload = :p WHERE seq = :seq"), {"p": forged, "seq": entry.seq})
    report = engine.verify()
    assert not report.ok and report.broken_seq == entry.seq
    assert report.problem == (f"Eintrag {entry.seq} ({REF}, remind) wurde verändert: sein Inhalt passt nicht zu "
                              "seinem Hash")


def test_history_and_audit_query_say_who_was_reminded(engine: Engine, db_url: str, clock: FixedClock,
                                                      defs_dir: object, capsys: pytest.CaptureFixture[str]) -> None:
    """`history` and `audit query --reference` show "Erinnerung gesendet an …"; `audit query --trigger remind`
    finds the reminders; the CSV carries the Message-ID."""
    from workflow.cli import run

    sv_in_committee(engine, clock)
    Dispatcher(engine, MemoryTransport(), Settings(mail_from=SENDER), "test").tick(at("2020-08-18T08:00"))
    token_id, _ = create_token(engine.store, SITZ, "Laptop", clock.now())
    args = ["--db", db_url, "--definitions", str(defs_dir)]
    assert run(["history", REF, *args]) == 0
    out = capsys.readouterr().out
    assert "18.08.2020 08:00  system" in out
    assert f"Erinnerung gesendet an {SITZ} (Frist „Einladung mit Vorlage versenden (Ladungsfrist)“)" in out
    assert run(["audit", "query", "--reference", REF, "--trigger", "remind", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(REF) and f"Erinnerung gesendet an {SITZ}" in lines[0]
    assert run(["audit", "query", "--format", "csv", "--trigger", "remind", *args]) == 0
    [mid] = mails(engine)[0].payload["message_ids"].values()
    assert mid.replace('"', '""') in capsys.readouterr().out
    assert run(["audit", "export", "--format", "json", *args]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in exported].count("admin") == 2  # the definition's first use, the token
    assert exported[-1]["reference"] == "" and exported[-1]["payload"]["token_id"] == token_id
    assert run(["audit", "verify", *args]) == 0
