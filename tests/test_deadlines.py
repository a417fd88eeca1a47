"""Deadline arithmetic pinned against hand-computed dates, and deadlines kept in step with the paper."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from workflow import Engine, FixedClock, PaperState, load_definition_file
from workflow.calendar import working_calendar
from workflow.deadlines import plan_deadlines
from workflow.paper import Branch

from .conftest import COUNCILS, LANDRAT, SITZ, SPEC, contact, to_councils

BERLIN = ZoneInfo("Europe/Berlin")
KS = load_definition_file(SPEC / "kreisstrategie.yaml")
SB = load_definition_file(SPEC / "sachstandsbericht.yaml")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(UTC)


def plan_for(definition: object, state: str, meeting: str | None, now: str, **extra: object) -> dict[str, object]:
    paper = PaperState(state, local(now), local(meeting) if meeting else None, **extra)  # type: ignore[arg-type]
    planned = plan_deadlines(definition, paper, local(now))  # type: ignore[arg-type]
    return {f"{k[0]}{'@' + k[1] if k[1] else ''}": v for k, v in planned.items()}


@pytest.mark.parametrize(
    ("start", "steps", "expected"),
    [
        (date(2021, 1, 7), -10, date(2020, 12, 18)),  # over 24.12. and 31.12. (closed), Christmas and New Year
        (date(2020, 12, 23), 1, date(2020, 12, 28)),  # 24.12. closed, 25./26.12. holidays, weekend
        (date(2020, 6, 15), -10, date(2020, 5, 28)),  # Fronleichnam 11.06. and Pfingstmontag 01.06.
        (date(2021, 11, 3), -2, date(2021, 10, 29)),  # Allerheiligen 01.11.2021 is a Monday
        (date(2021, 1, 4), 0, date(2021, 1, 4)),
    ],
    ids=["christmas-back", "christmas-forward", "fronleichnam", "allerheiligen", "zero"],
)
def test_working_day_steps(start: date, steps: int, expected: date) -> None:
    """Stepping over working days skips weekends, DE-NW holidays and the Kreis's closed days."""
    assert working_calendar(KS.calendar).step(start, steps) == expected


def test_closed_reasons_are_german() -> None:
    """Holiday names come from the holidays package, in German."""
    cal = working_calendar(KS.calendar)
    assert cal.closed_reason(date(2020, 6, 11)) == "Fronleichnam"
    assert cal.closed_reason(date(2021, 11, 1)) == "Allerheiligen"
    assert cal.closed_reason(date(2020, 12, 24)) == "Verwaltung geschlossen"
    assert cal.closed_reason(date(2020, 12, 19)) == "Wochenende"
    assert cal.closed_reason(date(2020, 12, 22)) is None


def test_kreistag_deadlines_across_christmas() -> None:
    """A Kreistag on 07.01.2021: every due date, reminder and escalation by hand."""
    planned = plan_for(KS, "kreistag", "2021-01-07T17:00", "2020-12-01T09:00")
    vorlage, ladung = planned["vorlage_fertig"], planned["ladung"]
    assert vorlage.due_at == local("2020-12-18T23:59:59")  # type: ignore[attr-defined]
    assert [(r.kind, r.send_at) for r in vorlage.reminders] == [  # type: ignore[attr-defined]
        ("remind", local("2020-12-11T08:00")),  # 5 working days before 18.12.
        ("remind", local("2020-12-17T08:00")),
        ("escalate", local("2020-12-22T08:00")),  # after 1 working day (Monday 21.12.): the next working morning
    ]
    assert vorlage.reminders[0].recipients == ("digitalisierung@kreis-coesfeld.example",)  # type: ignore[attr-defined]
    assert vorlage.reminders[2].recipients == (  # type: ignore[attr-defined]
        "buero.landrat@kreis-coesfeld.example", "landrat@kreis-coesfeld.example")
    assert ladung.due_at == local("2020-12-31T23:59:59")  # type: ignore[attr-defined]  # 7 calendar days
    assert [r.send_at for r in ladung.reminders] == [local("2020-12-28T08:00")]  # type: ignore[attr-defined]


def test_fronleichnam_and_pfingsten() -> None:
    """Ten working days before Monday 15.06.2020 skip Fronleichnam and Pfingstmontag."""
    planned = plan_for(KS, "bmk", "2020-06-15T10:00", "2020-05-01T09:00")
    assert planned["vorlage_fertig"].due_at == local("2020-05-28T23:59:59")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("meeting", "due_utc", "reminder_utc"),
    [
        ("2021-03-31T17:00", "2021-03-24T22:59:59", "2021-03-22T07:00"),  # before the change: CET
        ("2021-04-02T17:00", "2021-03-26T22:59:59", "2021-03-24T07:00"),
        ("2021-04-05T17:00", "2021-03-29T21:59:59", "2021-03-25T07:00"),  # due in CEST, reminder in CET
        ("2021-11-05T17:00", "2021-10-29T21:59:59", "2021-10-27T06:00"),  # CEST
        ("2021-11-08T17:00", "2021-11-01T22:59:59", "2021-10-28T06:00"),  # due in CET, reminder in CEST
    ],
    ids=["march-cet", "march-before", "march-across", "october-cest", "october-across"],
)
def test_dst_change(meeting: str, due_utc: str, reminder_utc: str) -> None:
    """Due at 23:59:59 and reminders at 08:00 local time stay local across the DST change."""
    planned = plan_for(SB, "ausschuss", meeting, "2021-03-01T09:00")
    ladung = planned["ladung"]
    assert ladung.due_at == datetime.fromisoformat(due_utc).replace(tzinfo=UTC)  # type: ignore[attr-defined]
    assert [r.send_at for r in ladung.reminders] == [  # type: ignore[attr-defined]
        datetime.fromisoformat(reminder_utc).replace(tzinfo=UTC)]


def test_late_start_sends_reminders_at_once_but_not_after_due() -> None:
    """One reminder already past when the deadline starts goes out at once; once the deadline had passed,
    a notice instead of reminders and escalation."""
    started = "2020-12-16T10:00"  # after the 5-day reminder (11.12.), before due (18.12.)
    planned = plan_for(KS, "kreistag", "2021-01-07T17:00", started)
    sends = [(r.kind, r.send_at) for r in planned["vorlage_fertig"].reminders]  # type: ignore[attr-defined]
    assert sends == [("remind", local(started)), ("remind", local("2020-12-17T08:00")),
                     ("escalate", local("2020-12-22T08:00"))]
    late = plan_for(KS, "kreistag", "2021-01-07T17:00", "2020-12-23T10:00")
    # Passed before the paper got there: one notice at once, to those notified and those escalated to.
    [notice] = late["vorlage_fertig"].reminders  # type: ignore[attr-defined]
    assert (notice.kind, notice.send_at, notice.label) == ("late", local("2020-12-23T10:00"),
                                                           "Frist war bei Eintritt bereits verstrichen")
    assert notice.recipients == ("digitalisierung@kreis-coesfeld.example", "buero.landrat@kreis-coesfeld.example",
                                 "landrat@kreis-coesfeld.example")


def test_branch_deadlines_per_open_branch_only() -> None:
    """In the parallel state each open branch has its own deadlines; decided branches have none."""
    branches = {b: Branch(b) for b in COUNCILS}
    branches["rat_olfen"] = Branch("rat_olfen", "adopted")
    branches["rat_nottuln"] = Branch("rat_nottuln", meeting=local("2020-11-16T18:00"))
    planned = plan_for(KS, "kommunale_raete", None, "2020-10-07T19:30", branches=branches)
    assert "ratsbeschluss@rat_olfen" not in planned and len([k for k in planned if k.startswith("ratsbeschluss")]) == 10
    assert [k for k in planned if k.startswith("ladung_rat")] == ["ladung_rat@rat_nottuln"]
    nottuln = planned["ladung_rat@rat_nottuln"]
    assert nottuln.due_at == local("2020-11-06T23:59:59")  # type: ignore[attr-defined]  # invitation_days: 10
    assert nottuln.reminders[0].recipients == ("hauptamt@nottuln.example",)  # type: ignore[attr-defined]
    rat = planned["ratsbeschluss@rat_senden"]
    assert rat.due_at == local("2021-02-04T23:59:59")  # type: ignore[attr-defined]  # 120 days after 07.10.2020
    assert [r.send_at for r in rat.reminders] == [  # type: ignore[attr-defined]
        local("2021-01-05T08:00"), local("2021-01-28T08:00"), local("2021-02-08T08:00")]  # escalation: Monday


def test_deadlines_follow_the_paper(engine: Engine, clock: FixedClock) -> None:
    """Stored deadlines start on entry or meeting, restart when the meeting moves, end on leaving."""
    outbox = engine.store.outbox
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Fristen"})
    assert outbox.deadlines("SV-1") == []
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    [first] = outbox.deadlines("SV-1")
    assert (first.name, first.due_at) == ("ladung", local("2020-08-20T23:59:59"))
    [reminder] = outbox.reminders(reference="SV-1")
    assert reminder.send_at == local("2020-08-18T08:00") and reminder.recipients == (SITZ,)
    clock.advance(timedelta(days=1))
    engine.set_meeting("SV-1", "2020-08-27T18:00", SITZ)  # same day: the deadline keeps running
    assert [d.id for d in outbox.deadlines("SV-1")] == [first.id]
    engine.fire("SV-1", "vertagen", SITZ, values={"result": "vertagt", "meeting": "2020-09-24T17:00"})
    [moved] = outbox.deadlines("SV-1")
    assert moved.id != first.id and moved.due_at == local("2020-09-17T23:59:59")
    assert [r.status for r in outbox.reminders(deadline_id=first.id, statuses=("pending", "cancelled"))] == [
        "cancelled"]
    [pending] = outbox.reminders(reference="SV-1")
    assert pending.send_at == local("2020-09-15T08:00") and pending.message_id != reminder.message_id
    engine.fire("SV-1", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    assert outbox.deadlines("SV-1") == [] and outbox.reminders(reference="SV-1") == []
    ended = outbox.deadlines("SV-1", running_only=False)
    assert [d.status for d in ended] == ["ended", "ended"]


def test_branch_decision_ends_its_deadlines(engine: Engine) -> None:
    """When a council decides, its ratsbeschluss deadline ends and its reminders are cancelled."""
    to_councils(engine)
    outbox = engine.store.outbox
    assert len(outbox.deadlines("KS-1")) == 11
    engine.fire("KS-1", "beschliessen", contact("rat_olfen"), branch="rat_olfen", values={"result": "ja"})
    running = outbox.deadlines("KS-1")
    assert len(running) == 10 and "rat_olfen" not in {d.branch for d in running}
    assert all("hauptamt@olfen.example" not in r.recipients for r in outbox.reminders(reference="KS-1"))
