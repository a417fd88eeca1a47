"""Batch delivery: one SMTP connection per tick, and each mail of a batch still succeeds or fails on its own."""

from __future__ import annotations

import select
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from notifier.dispatch import Dispatcher
from notifier.render import header_message_id
from notifier.transports import MemoryTransport, SendError, SmtpTransport
from workflow import Engine, FixedClock
from workflow.config import Settings

from .conftest import LANDRAT, SITZ
from .smtp import Sink, smtp
from .test_mail import SENDER, at, dispatcher

__all__ = ["smtp"]  # the fixture, shared with tests/smtp.py

DUE = at("2020-08-18T08:00")  # the Ladungsfrist reminders of papers in the committee on 27.08.
EVERY = ("pending", "claimed", "sent", "failed", "cancelled")


def papers_in_committee(engine: Engine, clock: FixedClock, count: int) -> dict[str, str]:
    """``count`` papers whose reminders are due at DUE: Message-ID -> reference."""
    clock.set(at("2020-08-04T09:00"))
    for i in range(count):
        engine.create("sachstandsbericht", f"SV-{i}", LANDRAT, {"title": f"Vorlage {i}"})
        engine.fire(f"SV-{i}", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    reminders = engine.store.outbox.reminders()
    assert len(reminders) == count
    return {header_message_id(r.message_id, SENDER): str(r.reference) for r in reminders}


def test_a_tick_sends_its_mails_over_one_connection(engine: Engine, clock: FixedClock,
                                                    smtp: tuple[Sink, int]) -> None:
    """Five due mails, claimed two at a time, go over one connection; a tick with nothing due opens none."""
    sink, port = smtp
    ids = papers_in_committee(engine, clock, 5)
    worker = dispatcher(engine, port, batch=2)
    assert worker.tick(DUE - timedelta(minutes=1)).claimed == 0
    assert sink.sessions == []  # nothing to send: no connection
    report = worker.tick(DUE)
    assert (report.claimed, report.sent, report.retried, report.failed) == (5, 5, 0, 0)
    sink.wait_until_ids(set(ids))
    assert len(sink.messages) == 5 and len(sink.sessions) == 1
    assert {r.status for r in engine.store.outbox.reminders(statuses=EVERY)} == {"sent"}


FAILURES = {
    # where the server says no to the second mail of the batch -> what becomes of it
    "data-451": ({"data_replies": {2: "451 4.3.0 Mail server temporarily rejected message"}}, "pending", "451"),
    "data-554": ({"data_replies": {2: "554 5.7.1 Message rejected"}}, "failed", "554 5.7.1 Message rejected"),
    "rcpt-450": ({"rcpt_replies": {2: "450 4.2.1 Mailbox busy"}}, "pending", "450"),
    "rcpt-550": ({"rcpt_replies": {2: "550 5.1.1 User unknown"}}, "failed", "550"),
}


@pytest.mark.parametrize(("script", "status", "reason"), list(FAILURES.values()), ids=list(FAILURES))
def test_one_refused_mail_leaves_the_rest_of_the_batch(engine: Engine, clock: FixedClock, smtp: tuple[Sink, int],
                                                       script: dict[str, dict[int, str]], status: str,
                                                       reason: str) -> None:
    """A 4xx for one mail in the middle of a batch retries that one, a 5xx fails it; the others are delivered.
    After a 5xx they go over the same connection (smtplib resets the transaction), after a 4xx over a new
    one; a retried mail goes out after its backoff."""
    sink, port = smtp
    ids = papers_in_committee(engine, clock, 4)
    for name, replies in script.items():
        setattr(sink, name, replies)
    worker = dispatcher(engine, port)
    report = worker.tick(DUE)
    temporary = status == "pending"
    assert (report.sent, report.retried, report.failed) == (3, int(temporary), int(not temporary))
    arrived = sink.wait_for(3)
    assert len(sink.sessions) == (2 if temporary else 1)
    [refused] = [r for r in engine.store.outbox.reminders(statuses=EVERY) if r.status != "sent"]
    sent_as = header_message_id(refused.message_id, SENDER)
    assert sent_as not in sink.ids and {str(m["Message-ID"]) for m in arrived} == set(ids) - {sent_as}
    assert refused.status == status and refused.attempts == 1 and reason in (refused.last_error or "")
    if temporary:
        assert refused.next_attempt_at == DUE + timedelta(minutes=1)
        assert worker.tick(DUE + timedelta(minutes=1)).sent == 1
        sink.wait_until_ids(set(ids))
    else:
        assert worker.tick(DUE + timedelta(hours=1)).claimed == 0


@pytest.mark.parametrize("drop", ["drop", "421 4.4.2 Closing connection"], ids=["hang-up", "421"])
def test_a_dropped_connection_is_opened_anew_for_the_next_mail(engine: Engine, clock: FixedClock,
                                                               smtp: tuple[Sink, int], drop: str) -> None:
    """The connection is lost while the second mail is sent: that mail is retried, the next mails go over a
    new connection, none is lost."""
    sink, port = smtp
    ids = papers_in_committee(engine, clock, 4)
    sink.data_replies = {2: drop}
    worker = dispatcher(engine, port)
    report = worker.tick(DUE)
    assert (report.sent, report.retried, report.failed) == (3, 1, 0)
    sink.wait_for(3)
    assert len(sink.sessions) == 2
    [lost] = engine.store.outbox.reminders(statuses=("pending",))
    assert lost.attempts == 1 and header_message_id(lost.message_id, SENDER) not in sink.ids
    assert worker.tick(DUE + timedelta(minutes=1)).sent == 1
    sink.wait_until_ids(set(ids))
    assert len(sink.sessions) == 3  # the next tick: its own connection


def _mail(number: int) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = LANDRAT, SITZ, f"Mail {number}"
    message["Message-ID"] = f"<batch-{number}@councilflow>"
    message.set_content("Guten Tag")
    return message


def test_a_connection_the_server_closed_while_idle_is_not_used_again(smtp: tuple[Sink, int]) -> None:
    """The server hangs up after accepting a mail (as after its idle timeout): the session notices before
    the next mail and connects anew instead of failing that mail."""
    sink, port = smtp
    sink.data_replies = {1: "hangup"}
    with SmtpTransport("127.0.0.1", port).session() as send:
        send(_mail(1))
        session = send.__self__  # type: ignore[attr-defined]
        assert session.client is not None
        # Wait (bounded, no sleep) until the server's end of file has reached the client's socket.
        assert select.select([session.client.sock], [], [], 10)[0]
        send(_mail(2))
        assert session.client is not None
    assert session.client is None  # QUIT at the end of the batch
    sink.wait_until_ids({"<batch-1@councilflow>", "<batch-2@councilflow>"})
    assert len(sink.sessions) == 2


def test_a_login_is_refused_per_mail_without_starttls(engine: Engine, clock: FixedClock,
                                                      smtp: tuple[Sink, int]) -> None:
    """In a batch too, no password goes over a connection without TLS: every mail fails with the reason."""
    sink, port = smtp
    papers_in_committee(engine, clock, 2)
    transport = SmtpTransport("127.0.0.1", port, user="fristen", password="geheim")
    worker = Dispatcher(engine, transport, Settings(mail_from=SENDER), "test")
    report = worker.tick(DUE)
    assert (report.sent, report.failed) == (0, 2)
    assert all("bietet kein STARTTLS an" in (r.last_error or "")
               for r in engine.store.outbox.reminders(statuses=("failed",)))
    assert sink.messages == []
    with pytest.raises(SendError, match="bietet kein STARTTLS an"):
        transport.send(_mail(1))


def test_maildir_session_writes_each_mail(tmp_path: Path) -> None:
    """The mail folder's session makes the folder once and writes every mail of the batch."""
    from notifier.transports import MaildirTransport

    transport = MaildirTransport(tmp_path / "mail")
    with transport.session() as send:
        for number in range(3):
            send(_mail(number))
    assert len(list((tmp_path / "mail" / "new").iterdir())) == 3


def test_a_batch_that_takes_longer_than_the_lease_keeps_its_rows(engine: Engine, clock: FixedClock) -> None:
    """While a batch is being sent, no other worker can claim its rows, however long sending takes: the lease of
    the whole batch is extended while it lasts (not only that of the mail being sent); each mail still checks
    that its row is its own."""
    papers_in_committee(engine, clock, 6)
    outbox = engine.store.outbox
    lease = timedelta(seconds=60)
    clock.set(DUE)
    seen: list[int] = []  # what another worker could claim while each mail is being sent

    class Slow(MemoryTransport):
        def send(self, message: EmailMessage) -> None:
            clock.set(clock.now() + lease * 0.4)  # six mails: 2.4 leases in all
            seen.append(len(outbox.claim(clock.now(), worker="other", lease=lease)))
            super().send(message)

    worker = Dispatcher(engine, Slow(), Settings(mail_from=SENDER, lease_seconds=60, batch=10), "slow")
    report = worker.tick(DUE)
    assert (report.claimed, report.sent, report.fenced) == (6, 6, 0)
    assert seen == [0] * 6
    assert outbox.claim(clock.now() + lease, worker="other", lease=lease) == []  # all sent


def test_a_batch_claimed_late_in_a_long_tick_is_leased_from_the_clock(engine: Engine, clock: FixedClock) -> None:
    """A tick's second batch, claimed after the first took longer than the lease, is leased from the clock's now,
    not from the tick's start: no other worker can claim its rows before its first mail is even composed."""
    papers_in_committee(engine, clock, 6)
    outbox = engine.store.outbox
    lease = timedelta(seconds=60)
    clock.set(DUE)
    claimable: list[int] = []  # what another worker could claim just before each mail of the second batch
    calls = [0]

    class Slow(MemoryTransport):
        def send(self, message: EmailMessage) -> None:
            clock.set(clock.now() + lease * 0.6)
            super().send(message)

    worker = Dispatcher(engine, Slow(), Settings(mail_from=SENDER, lease_seconds=60, batch=3), "slow")
    deliver = worker._deliver

    def watched(reminder: Any, now: Any, report: Any, send: Any) -> None:
        calls[0] += 1
        if calls[0] > 3:  # (during the first batch the second one's rows are pending: anyone may claim them)
            claimable.append(len(outbox.claim(clock.now(), worker="other", lease=lease)))
        deliver(reminder, now, report, send)

    worker._deliver = watched  # type: ignore[method-assign]
    report = worker.tick(DUE)
    assert (report.claimed, report.sent, report.fenced) == (6, 6, 0)
    assert claimable == [0] * 3
