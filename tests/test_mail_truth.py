"""When mail goes out and what it says (issue: deadlines staff can trust), pinned examples of the one rule
in deadlines.plan and calendar.mail_window, and calendar entries that update instead of duplicating."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar

from notifier.dispatch import Composer
from workflow import Engine, FixedClock, load_definition
from workflow.calendar import mail_window, working_calendar
from workflow.config import Settings
from workflow.deadlines import due_note, plan_deadlines
from workflow.paper import PaperState

from .conftest import LANDRAT, SITZ, SPEC, engine_on

BERLIN = ZoneInfo("Europe/Berlin")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(UTC)


def _definition(remind: str, closed: str = "[]") -> object:
    text = (SPEC / "sachstandsbericht.yaml").read_text(encoding="utf-8")
    text = text.replace("  holidays: DE-NW\n", f"  holidays: DE-NW\n  closed: {closed}\n")
    text = text.replace("    remind: [{working_days: 2}]", f"    remind: {remind}")
    return load_definition(text, "sachstandsbericht.yaml")


def _sends(definition: object, meeting: str, started: str) -> list[tuple[str, datetime]]:
    paper = PaperState("ausschuss", local(started), local(meeting))
    planned = plan_deadlines(definition, paper, local(started))  # type: ignore[arg-type]
    return [(r.kind, r.send_at) for r in planned[("ladung", "")].reminders]


def test_a_reminder_on_a_saturday_goes_out_on_friday_morning() -> None:
    """Due Tuesday 29.09.2026 (7 days before the meeting on 06.10.); 3 days before is Saturday 26.09."""
    sends = _sends(_definition("[{days: 3}]"), "2026-10-06T17:00", "2026-09-01T09:00")
    assert sends == [("remind", local("2026-09-25T08:00"))]


def test_at_most_one_reminder_a_day() -> None:
    """1 and 2 days before a Monday due day are Sunday and Saturday: one reminder, on the Friday."""
    sends = _sends(_definition("[{days: 2}, {days: 1}]"), "2026-10-12T17:00", "2026-09-01T09:00")
    assert sends == [("remind", local("2026-10-02T08:00"))]


def test_rosenmontag_closed_once() -> None:
    calendar = working_calendar(_definition("[]", '["2026-02-16"]').calendar)  # type: ignore[attr-defined]
    assert not calendar.is_working_day(date(2026, 2, 16))
    assert calendar.closed_reason(date(2026, 2, 16)) == "Verwaltung geschlossen"
    assert calendar.is_working_day(date(2027, 2, 16))


def test_the_mail_window() -> None:
    """Working days from the morning to the evening hour; outside it the next window opens."""
    calendar = working_calendar(_definition("[]").calendar)  # type: ignore[attr-defined]

    def window(text: str) -> datetime:
        return mail_window(local(text), calendar, "Europe/Berlin", 8, 18)

    assert window("2026-09-25T12:00") == local("2026-09-25T12:00")
    assert window("2026-09-25T18:00") == local("2026-09-28T08:00")  # Friday evening: Monday morning
    assert window("2026-09-26T10:00") == local("2026-09-28T08:00")
    assert window("2026-10-02T06:59") == local("2026-10-02T08:00")
    assert window("2026-10-02T19:00") == local("2026-10-05T08:00")  # 03.10. is a Saturday anyway


def test_the_hinweis_says_what_is_true_when_sent() -> None:
    definition = _definition("[]")
    due = local("2026-09-29T23:59:59")  # a Tuesday
    assert due_note(definition, due, local("2026-09-29T08:00")) == "heute fällig"  # type: ignore[arg-type]
    assert due_note(definition, due, local("2026-09-28T08:00")) == "morgen fällig"  # type: ignore[arg-type]
    assert due_note(definition, due, local("2026-09-24T08:00")) == "in 3 Arbeitstagen fällig"  # type: ignore[arg-type]
    assert due_note(definition, due, local("2026-10-01T08:00")) == "seit 2 Arbeitstagen überfällig"  # type: ignore[arg-type]


def test_calendar_entries_keep_their_uid_and_raise_the_sequence(engine: Engine, clock: FixedClock) -> None:
    """The same deadline and meeting keep one UID in every mail; a moved meeting raises SEQUENCE."""
    clock.set(datetime(2020, 8, 4, 7, tzinfo=UTC))
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Bericht"})
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-09-24T17:00"})
    composer = Composer(engine, Settings())

    def entries() -> dict[str, tuple[str, int]]:
        [mail] = engine.store.outbox.reminders(reference="SV-1")
        message = composer.compose(mail, clock.now())
        [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
        events = Calendar.from_ical(part.get_content()).walk("VEVENT")
        return {str(e["summary"]).split(":")[0].split(" ")[0]: (str(e["uid"]), int(e["sequence"])) for e in events}

    first = entries()
    clock.advance(timedelta(days=1))
    engine.set_meeting("SV-1", "2020-10-01T17:00", SITZ)
    second = entries()
    assert {k: v[0] for k, v in first.items()} == {k: v[0] for k, v in second.items()}  # same UIDs
    assert all(second[k][1] > first[k][1] for k in first)  # raised


def test_a_meeting_before_the_change_is_refused(engine: Engine, clock: FixedClock) -> None:
    """A meeting typed into the past would start deadlines that passed long ago: refused (exit 5); the
    history an import records keeps its meetings."""
    import pytest

    from workflow import NotAllowedNowError
    from workflow.paper import IMPORT_ACTOR

    clock.set(datetime(2020, 8, 4, 7, tzinfo=UTC))
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Bericht"})
    with pytest.raises(NotAllowedNowError, match="liegt vor dieser Änderung") as caught:
        engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-08-03T17:00"})
    assert caught.value.exit_code == 5
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    with pytest.raises(NotAllowedNowError, match="liegt vor dieser Änderung"):
        engine.set_meeting("SV-1", "2020-07-01T17:00", SITZ)
    engine.set_meeting("SV-1", "2020-07-01T17:00", IMPORT_ACTOR, trusted=True)
    assert engine.status("SV-1").meeting == local("2020-07-01T17:00")


def test_meetings_in_the_calendar_have_their_place_and_length(store: object, tmp_path: object,
                                                              clock: FixedClock) -> None:
    """A body's `location` and `meeting_hours` go into the meeting's calendar entry."""
    from pathlib import Path

    import pytest

    from workflow import DefinitionError

    text = (SPEC / "sachstandsbericht.yaml").read_text(encoding="utf-8").replace(
        'invitation_days: 7}', 'invitation_days: 7, location: "Kreishaus, Sitzungssaal", meeting_hours: 3}')
    engine = engine_on(store, Path(str(tmp_path)) / "defs", clock, sachstandsbericht=text)  # type: ignore[arg-type]
    clock.set(datetime(2020, 8, 4, 7, tzinfo=UTC))
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Bericht"})
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-09-24T17:00"})
    [mail] = engine.store.outbox.reminders(reference="SV-1")
    message = Composer(engine, Settings()).compose(mail, clock.now())
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    [_, meeting] = Calendar.from_ical(part.get_content()).walk("VEVENT")
    assert str(meeting["location"]) == "Kreishaus, Sitzungssaal"
    assert meeting.decoded("dtend") - meeting.decoded("dtstart") == timedelta(hours=3)
    with pytest.raises(DefinitionError, match="meeting_hours von Gremium 'afwk' muss eine Stundenzahl über 0"):
        load_definition(text.replace("meeting_hours: 3", "meeting_hours: 0"), "sachstandsbericht.yaml")
