"""Reminder mail end to end: a real SMTP server receives German mails with text, HTML and .ics."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from icalendar import Calendar

from notifier.dispatch import Dispatcher
from notifier.render import header_message_id
from notifier.transports import MaildirTransport, SmtpTransport
from workflow import Engine, FixedClock
from workflow.config import Settings

from .conftest import FEDER, LANDRAT, SITZ
from .smtp import Sink, free_port, smtp, smtp_server

__all__ = ["smtp"]  # the fixture, shared with tests/smtp.py

SENDER = "Fristen Kreis Coesfeld <fristen@kreis-coesfeld.example>"


def dispatcher(engine: Engine, port: int, **settings: int) -> Dispatcher:
    return Dispatcher(engine, SmtpTransport("127.0.0.1", port), Settings(mail_from=SENDER, **settings), "test")


def at(text: str) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)


def sv_in_committee(engine: Engine, clock: FixedClock, reference: str = "SV-9-1809") -> None:
    clock.set(at("2020-08-04T09:00"))
    engine.create("sachstandsbericht", reference, LANDRAT, {
        "title": "Digitalisierungsstrategie für den Kreis Coesfeld, Sachstandsbericht"})
    engine.fire(reference, "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})


def ks_before_meeting(engine: Engine, clock: FixedClock) -> None:
    """KS-1 recommended by both committees on 01.12.2020, its Kreistag meeting on 07.01.2021: its Vorlage
    deadline (18.12.2020) is missed and escalates."""
    clock.set(at("2020-12-01T09:00"))
    engine.create("kreisstrategie", "KS-1", FEDER, {"title": "Digitalisierungsstrategie"})
    engine.fire("KS-1", "einbringen", FEDER)
    engine.fire("KS-1", "beraten", SITZ, values={"result": "empfohlen"})
    engine.fire("KS-1", "beraten", SITZ, values={"result": "empfohlen"})
    engine.set_meeting("KS-1", "2021-01-07T17:00", SITZ)


def test_reminder_arrives_with_parts_german_text_and_ics(engine: Engine, clock: FixedClock,
                                                         smtp: tuple[Sink, int]) -> None:
    """The Ladungsfrist reminder goes out on its morning, once, with text, HTML and calendar parts."""
    sink, port = smtp
    sv_in_committee(engine, clock)
    worker = dispatcher(engine, port)
    assert worker.tick(at("2020-08-18T07:59")).sent == 0
    report = worker.tick(at("2020-08-18T08:00"))
    assert (report.claimed, report.sent) == (1, 1)
    assert worker.tick(at("2020-08-19T08:00")).claimed == 0  # sent once
    [mail] = sink.wait_for(1)
    assert sink.envelopes[0] == ("fristen@kreis-coesfeld.example", [SITZ])
    assert mail["To"] == SITZ and mail["From"] == SENDER
    # At most 78 characters, the reference first and the date whole: the label is shortened.
    assert mail["Subject"] == "SV-9-1809: Erinnerung – Einladung mit Vorlage versenden (La… bis Do 20.08.2020"
    assert len(mail["Subject"]) == 78
    # The stored key under the domain of the installation's From address.
    stored = engine.store.outbox.reminders(statuses=("sent",))[0].message_id
    assert mail["Message-ID"] == header_message_id(stored, SENDER) and mail["Message-ID"].endswith(
        "@kreis-coesfeld.example>")
    assert mail["Auto-Submitted"] == "auto-generated"
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Fällig:    20.08.2020, 23:59 Uhr (Donnerstag, 20. August 2020)" in text
    assert "Gremium:   Ausschuss für Finanzen, Wirtschaftsförderung und Kreisentwicklung" in text
    assert "Sitzung:   27.08.2020, 17:00 Uhr" in text and "Hinweis:   in 2 Arbeitstagen fällig" in text
    html = mail.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert '<html lang="de">' in html and "<strong>SV-9-1809</strong>" in html
    [ics_part] = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert ics_part.get_filename() == "frist.ics"
    ics = ics_part.get_content()
    events = Calendar.from_ical(ics).walk("VEVENT")
    # The deadline as an all-day event on its due day with an alarm; the meeting with its end, in UTC.
    assert [e.decoded("dtstart") for e in events] == [date(2020, 8, 20), at("2020-08-27T17:00")]
    assert events[0].decoded("dtend") == date(2020, 8, 21) and events[0].walk("VALARM")
    assert events[1].decoded("dtend") == at("2020-08-27T19:00")
    assert "DTSTART;VALUE=DATE:20200820" in ics and "TZID" not in ics
    assert str(events[0]["summary"]) == "Frist: Einladung mit Vorlage versenden (Ladungsfrist) – SV-9-1809"
    from notifier.render import calendar_uid

    assert str(events[0]["uid"]) == calendar_uid("frist", "SV-9-1809", "ladung", "")  # the same in every mail
    assert str(events[1]["uid"]) == calendar_uid("sitzung", "SV-9-1809", "ausschuss", "afwk")


def test_escalation_names_who_else_was_told(engine: Engine, clock: FixedClock, smtp: tuple[Sink, int]) -> None:
    """A missed Vorlage deadline escalates to the Büro des Landrats, naming who was responsible."""
    sink, port = smtp
    ks_before_meeting(engine, clock)
    worker = dispatcher(engine, port)
    # By 22.12. 08:00 (the first working morning after due + 1 working day) both Vorlage reminders
    # (11.12., 17.12.) and the escalation are due; the Ladung reminder (28.12.) is not.
    assert worker.tick(at("2020-12-21T12:00")).sent == 2
    assert worker.tick(at("2020-12-22T07:59")).claimed == 0
    report = worker.tick(at("2020-12-22T08:00"))
    assert report.sent == 1
    kinds = sorted((m["X-Councilflow-Kind"], m["To"]) for m in sink.wait_for(4))
    assert kinds == [  # one personal copy per recipient
        ("escalation", "buero.landrat@kreis-coesfeld.example"), ("escalation", "landrat@kreis-coesfeld.example"),
        ("reminder", FEDER), ("reminder", FEDER),
    ]
    copies = {m["To"]: m for m in sink.messages if m["X-Councilflow-Kind"] == "escalation"}
    escalation = copies["landrat@kreis-coesfeld.example"]
    assert escalation["Subject"] == "KS-1: Frist überschritten – Vorlage fertigstellen (fällig Fr 18.12.2020)"
    text = escalation.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "ist am Freitag, 18. Dezember 2020 abgelaufen" in text
    # "ging ebenfalls an" names the others only; each copy has its own Message-ID under the sender's domain
    assert "Diese Nachricht ging ebenfalls an: buero.landrat@kreis-coesfeld.example." in text
    other = copies["buero.landrat@kreis-coesfeld.example"].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Diese Nachricht ging ebenfalls an: landrat@kreis-coesfeld.example." in other
    ids = {m["Message-ID"] for m in copies.values()}
    assert len(ids) == 2 and all(i.endswith("@kreis-coesfeld.example>") for i in ids)
    assert f"Zuständig für die Frist: {FEDER}." in text


def test_catch_up_sends_once_what_fell_due_while_down(engine: Engine, clock: FixedClock,
                                                      smtp: tuple[Sink, int]) -> None:
    """A tick after downtime sends everything overdue, missed escalations too, and each only once."""
    sink, port = smtp
    clock.set(at("2020-10-07T19:30"))
    engine.create("kreisstrategie", "KS-2", FEDER, {"title": "Strategie"})
    engine.fire("KS-2", "einbringen", FEDER)
    worker = dispatcher(engine, port)
    assert worker.tick(at("2021-06-01T12:00")).sent == 0  # bmk has no meeting yet: no deadline runs
    # Set on 07.10. for 20.10.: the Vorlage was due 06.10., before anyone could act: one notice instead
    # of reminders and an escalation; the Ladung is due 13.10. with its reminder on 09.10. (the 10th is a
    # Saturday).
    engine.set_meeting("KS-2", "2020-10-20T10:00", SITZ)
    first = worker.tick(at("2021-06-01T12:00"))
    second = worker.tick(at("2021-06-02T12:00"))
    assert (first.sent, second.claimed) == (2, 0)
    # the notice goes to each of the three people concerned, one personal copy each
    assert sorted(m["X-Councilflow-Kind"] for m in sink.wait_for(4)) == ["late", "late", "late", "reminder"]


def test_smtp_errors_retry_or_fail_visibly(engine: Engine, clock: FixedClock, smtp: tuple[Sink, int]) -> None:
    """4xx is retried with backoff; 5xx fails at once and shows in `reminders failed` with the reason."""
    sink, port = smtp
    sv_in_committee(engine, clock)
    worker = dispatcher(engine, port)
    outbox = engine.store.outbox
    sink.reply = "451 4.3.0 Mail server temporarily rejected message"
    report = worker.tick(at("2020-08-18T08:00"))
    assert (report.retried, report.sent) == (1, 0)
    [pending] = outbox.reminders()
    assert pending.attempts == 1 and pending.next_attempt_at == at("2020-08-18T08:01")
    assert "451" in (pending.last_error or "")
    assert worker.tick(at("2020-08-18T08:00:30")).claimed == 0  # backoff not over
    sink.reply = "550 5.1.1 User unknown"
    report = worker.tick(at("2020-08-18T08:01"))
    assert report.failed == 1
    [failed] = outbox.reminders(statuses=("failed",))
    assert failed.attempts == 2 and "550 5.1.1 User unknown" in (failed.last_error or "")
    assert sink.messages == []


def test_server_down_then_back(engine: Engine, clock: FixedClock) -> None:
    """With the SMTP server down the mail waits; when it is back, it is delivered."""
    port = free_port()
    sv_in_committee(engine, clock)
    worker = dispatcher(engine, port)
    assert worker.tick(at("2020-08-18T08:00")).retried == 1
    with smtp_server(port) as (sink, _):
        assert worker.tick(at("2020-08-18T08:05")).sent == 1
        assert len(sink.wait_for(1)) == 1


def test_retries_are_bounded(engine: Engine, clock: FixedClock) -> None:
    """After max_attempts temporary failures the mail is marked failed, never dropped silently."""
    sv_in_committee(engine, clock)
    worker = dispatcher(engine, free_port(), max_attempts=3)
    moment = at("2020-08-18T08:00")
    outcomes = []
    for _ in range(3):
        report = worker.tick(moment)
        outcomes.append((report.retried, report.failed))
        moment += timedelta(hours=3)  # past the backoff, within the day's mail window
    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    [failed] = engine.store.outbox.reminders(statuses=("failed",))
    assert failed.last_error is not None and failed.last_error.startswith("nach 3 Versuchen aufgegeben")


def test_cancelled_deadline_sends_nothing(engine: Engine, clock: FixedClock, smtp: tuple[Sink, int]) -> None:
    """When the paper leaves the state first, its pending reminders are cancelled, not sent."""
    sink, port = smtp
    sv_in_committee(engine, clock)
    engine.fire("SV-9-1809", "zurueckziehen", LANDRAT)
    assert dispatcher(engine, port).tick(at("2020-09-01T08:00")).claimed == 0
    assert sink.messages == []


def test_maildir_is_the_default(engine: Engine, clock: FixedClock, tmp_path: Path) -> None:
    """The embedded default writes each mail as a file into a Maildir folder."""
    sv_in_committee(engine, clock)
    worker = Dispatcher(engine, MaildirTransport(tmp_path / "mail"), Settings(), "test")
    assert worker.tick(at("2020-08-18T08:00")).sent == 1
    [path] = list((tmp_path / "mail" / "new").iterdir())
    assert b"Message-ID: <" in path.read_bytes()


def test_digest_lists_the_coming_two_weeks(engine: Engine, clock: FixedClock, smtp: tuple[Sink, int]) -> None:
    """The daily digest sends each person one mail listing their deadlines of the next two weeks."""
    sink, port = smtp
    sv_in_committee(engine, clock)
    worker = dispatcher(engine, port)
    assert worker.queue_digests(at("2020-08-10T07:00")) == 1
    assert worker.queue_digests(at("2020-08-10T07:30")) == 0  # once per person and day
    assert worker.tick(at("2020-08-10T07:59")).sent == 0  # the mail window opens at 08:00
    assert worker.tick(at("2020-08-10T08:00")).sent == 1
    [mail] = sink.wait_for(1)
    assert mail["To"] == SITZ and mail["Subject"] == "Ihre Fristen bis 24.08.2020: 1 offen"
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "- 20.08.2020, 23:59 Uhr: Einladung mit Vorlage versenden (Ladungsfrist)" in text
    assert "Überfällig" not in text


def test_no_digest_on_a_holiday(engine: Engine, clock: FixedClock, smtp: tuple[Sink, int]) -> None:
    """No digest on a public holiday of the workflows the person's deadlines belong to (Christmas 2020 was a
    Friday, a DE-NW holiday)."""
    _sink, port = smtp
    clock.set(at("2020-12-01T09:00"))
    engine.create("sachstandsbericht", "SV-X", LANDRAT, {"title": "Bericht"})
    engine.fire("SV-X", "einbringen", LANDRAT, values={"meeting": "2021-01-05T17:00"})
    worker = dispatcher(engine, port)
    assert worker.queue_digests(at("2020-12-25T07:00")) == 0  # Erster Weihnachtstag
    assert worker.queue_digests(at("2020-12-28T07:00")) == 1  # the Monday after


def test_digest_lists_overdue_deadlines_first(engine: Engine, clock: FixedClock, smtp: tuple[Sink, int]) -> None:
    """A deadline that has passed undone heads the digest under "Überfällig" and is counted in the subject."""
    sink, port = smtp
    sv_in_committee(engine, clock)  # Ladung due 20.08.2020
    clock.set(at("2020-08-12T09:00"))
    engine.create("sachstandsbericht", "SV-2", LANDRAT, {"title": "Zweiter Bericht"})
    engine.fire("SV-2", "einbringen", LANDRAT, values={"meeting": "2020-09-01T17:00"})  # Ladung due 25.08.
    worker = dispatcher(engine, port)
    assert worker.queue_digests(at("2020-08-24T07:00")) == 1
    worker.tick(at("2020-08-24T07:00"))  # the reminders due meanwhile
    sink.messages.clear()
    assert worker.tick(at("2020-08-24T08:00")).sent >= 1
    [mail] = [m for m in sink.wait_for(1) if m["X-Councilflow-Kind"] == "digest"]
    assert mail["Subject"] == "Ihre Fristen bis 07.09.2020: 1 überfällig, 2 offen"
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    overdue, upcoming = text.index("Überfällig:"), text.index("Demnächst fällig:")
    assert overdue < text.index("SV-9-1809") < upcoming < text.index("SV-2")


@pytest.mark.parametrize(
    ("url", "name"),
    [("smtp://relay.kreis.example:587", "smtp://relay.kreis.example:587"),
     ("smtps://u:p%40ss@relay.kreis.example", "smtps://relay.kreis.example:465"),
     ("maildir:/var/mail/cf", "maildir:/var/mail/cf"), ("", "maildir:/tmp/default")],
    ids=["smtp", "smtps", "maildir", "default"],
)
def test_transport_urls(url: str, name: str) -> None:
    """COUNCILFLOW_MAIL selects SMTP, implicit TLS or a mail folder; the default is a mail folder."""
    from notifier.transports import transport_from_url

    assert transport_from_url(url, default_folder=Path("/tmp/default")).name == name


def test_transport_password_from_environment_and_bad_urls() -> None:
    """A user without a password in the URL takes COUNCILFLOW_MAIL_PASSWORD; a bad URL is one clear error."""
    from notifier.transports import transport_from_url
    from workflow import InputError

    smtp = transport_from_url("smtp://fristen@relay.kreis.example:587", default_folder=Path("."), password="geheim")
    assert isinstance(smtp, SmtpTransport) and (smtp.user, smtp.password) == ("fristen", "geheim")
    with pytest.raises(InputError, match=r"Mailversand 'http://x:\*\*\*@relay': bitte smtp://host:port"):
        transport_from_url("http://x:secret@relay", default_folder=Path("."))


def test_mails_built_one_after_another_each_carry_their_own_headers() -> None:
    """The headers every mail has alike are parsed once and shared between mails; each mail still reads as its
    own (subject, Message-ID, parts, the header names as written), over more mails than the parsed headers kept."""
    import email
    import email.policy
    from email.message import EmailMessage

    from notifier.render import RenderedMail, build_message

    moment = datetime(2020, 8, 20, 6, tzinfo=UTC)
    for n in range(300):
        kind = "x-councilflow-kind" if n % 2 else "X-Councilflow-Kind"
        raw = build_message(RenderedMail(f"SV-{n}: Erinnerung – Frist", f"Guten Tag {n},\nÄmter\n", f"<p>{n}</p>"),
                            sender=SENDER, recipients=[f"person{n % 7}@example.org"],
                            message_id=f"<m{n}@councilflow>", date=moment + timedelta(days=n % 3),
                            ics=f"BEGIN:VCALENDAR\r\nUID:{n}\r\nEND:VCALENDAR\r\n".encode(),
                            headers={kind: "reminder"}).as_bytes()
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        assert (mail["Subject"], mail["Message-ID"], mail["To"]) == (
            f"SV-{n}: Erinnerung – Frist", f"<m{n}@councilflow>", f"person{n % 7}@example.org")
        assert mail["Date"].datetime == moment + timedelta(days=n % 3) and f"\r\n{kind}: reminder\r\n".encode() in raw
        text, html = mail.get_body(("plain",)), mail.get_body(("html",))
        assert text is not None and html is not None
        assert [part.get_content().replace("\r\n", "\n") for part in (text, html)] == [f"Guten Tag {n},\nÄmter\n",
                                                                                   f"<p>{n}</p>\n"]
        [ics] = mail.iter_attachments()
        assert ics.get_content_type() == "text/calendar" and f"UID:{n}" in ics.get_content()
        assert ics.get_filename() == "frist.ics" and ics.get_param("method") == "PUBLISH"
