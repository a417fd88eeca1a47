"""Minimum periods (`not_before`) and calendar months (`months`) in the definition language."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from workflow import DefinitionError, Engine, FixedClock, NotAllowedNowError, load_definition
from workflow.calendar import add_months
from workflow.store import Store

from .conftest import LANDRAT, SITZ, SPEC, engine_on

BERLIN = ZoneInfo("Europe/Berlin")
TEXT = (SPEC / "sachstandsbericht.yaml").read_text(encoding="utf-8").replace(
    "  - {trigger: kenntnis_nehmen, source: ausschuss, dest: zur_kenntnis_genommen, roles: [sitzungsdienst], "
    "requires: [result]}",
    "  - {trigger: kenntnis_nehmen, source: ausschuss, dest: zur_kenntnis_genommen, roles: [sitzungsdienst], "
    "requires: [result], not_before: {after: entered, days: 14}}",
).replace("  references: {type: list}\n", "  references: {type: list}\n  eingang: {type: date}\n")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(UTC)


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2026, 1, 26), 1, date(2026, 2, 26)), (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2024, 1, 31), 1, date(2024, 2, 29)), (date(2026, 12, 15), 1, date(2027, 1, 15)),
    (date(2026, 3, 31), -1, date(2026, 2, 28)), (date(2026, 5, 31), -13, date(2025, 4, 30)),
])
def test_calendar_months_clamp_to_the_month_end(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


@pytest.fixture
def engine(store: Store, tmp_path: Path, clock: FixedClock) -> Engine:
    return engine_on(store, tmp_path / "defs", clock, sachstandsbericht=TEXT)


def test_not_before_refuses_a_day_early_and_accepts_on_the_day(engine: Engine, clock: FixedClock) -> None:
    clock.set(local("2026-03-02T10:00"))
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Einwendungen"})
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2026-04-30T17:00"})
    clock.set(local("2026-03-15T23:59"))
    with pytest.raises(NotAllowedNowError, match=r"nicht vor dem 16\.03\.2026 \(eine Mindestfrist\)") as caught:
        engine.fire("SV-1", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    assert caught.value.exit_code == 5 and engine.status("SV-1").state == "ausschuss"
    clock.set(local("2026-03-16T00:00"))
    engine.fire("SV-1", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    assert engine.status("SV-1").state == "zur_kenntnis_genommen"


def test_due_in_months_and_not_before_a_date_field(store: Store, tmp_path: Path, clock: FixedClock) -> None:
    """`due: {after: entered, months: 1}` (26.01. + 1 month = 26.02.) and `not_before` a date field."""
    text = TEXT.replace("not_before: {after: entered, days: 14}", "not_before: {after: eingang, months: 1}") + \
        """  - name: stellungnahme
    label: Stellungnahme einholen
    states: [ausschuss]
    due: {after: entered, months: 1}
    remind: [{working_days: 2}]
    notify: [sitzungsdienst]
"""
    engine = engine_on(store, tmp_path / "m", clock, sachstandsbericht=text)
    clock.set(local("2026-01-26T10:00"))
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "x", "eingang": "2026-01-31"})
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2026-04-30T17:00"})
    [view] = [v for v in engine.deadlines("SV-1") if v.deadline.name == "stellungnahme"]
    assert view.deadline.due_at == local("2026-02-26T23:59:59")
    clock.set(local("2026-02-27T12:00"))
    with pytest.raises(NotAllowedNowError, match=r"nicht vor dem 28\.02\.2026"):
        engine.fire("SV-1", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    clock.advance(timedelta(days=1))
    engine.fire("SV-1", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})


@pytest.mark.parametrize(("old", "new", "message"), [
    ("not_before: {after: entered, days: 14}", "not_before: {after: eingng, days: 14}",
     "not_before von Übergang 'kenntnis_nehmen' braucht 'after: entered' oder 'after: FELD'"),
    ("not_before: {after: entered, days: 14}", "not_before: {after: entered, weeks: 2}",
     "unbekannter Schlüssel 'weeks'"),
    ("not_before: {after: entered, days: 14}", "not_before: {after: title, days: 14}", "möglich: entered, eingang"),
])
def test_not_before_is_checked_at_load(old: str, new: str, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(TEXT.replace(old, new), "sachstandsbericht.yaml")
    assert message in str(caught.value)


FIELD_TEXT = TEXT.replace(
    "requires: [result], not_before: {after: entered, days: 14}}",
    "requires: [result], not_before: {after: entered, days: 14}}\n"
    "  - {trigger: eingang_erfassen, source: ausschuss, internal: true, roles: [sitzungsdienst], sets: [eingang]}",
) + """  - name: vorbericht
    label: Vorbericht einreichen
    states: [ausschuss]
    due: {before: eingang, months: 1}
    remind: [{working_days: 2}]
    notify: [sitzungsdienst]
"""


def test_due_before_a_date_field_starts_when_the_field_is_set(store: Store, tmp_path: Path,
                                                              clock: FixedClock) -> None:
    """`due: {before: FIELD, months: 1}`: no deadline while the field is unset (and `deadlines` says why);
    setting it starts the deadline one calendar month before, clamped to the month's end; moving it moves it."""
    engine = engine_on(store, tmp_path / "f", clock, sachstandsbericht=FIELD_TEXT)
    clock.set(local("2026-01-05T10:00"))
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "x"})
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2026-06-30T17:00"})
    paper = engine.load("SV-1")
    assert "vorbericht" not in {v.deadline.name for v in engine.deadlines(paper)}
    [waiting] = [w for w in engine.waiting(paper) if w.deadline.name == "vorbericht"]
    assert "eingang" in waiting.reason
    engine.fire("SV-1", "eingang_erfassen", SITZ, values={"eingang": "2026-03-31"})
    [view] = [v for v in engine.deadlines("SV-1") if v.deadline.name == "vorbericht"]
    assert view.deadline.due_at == local("2026-02-28T23:59:59") and view.deadline.anchor == "field"
    assert not [w for w in engine.waiting(engine.load("SV-1")) if w.deadline.name == "vorbericht"]
    engine.fire("SV-1", "eingang_erfassen", SITZ, values={"eingang": "2026-04-15"})
    [view] = [v for v in engine.deadlines("SV-1") if v.deadline.name == "vorbericht"]
    assert view.deadline.due_at == local("2026-03-15T23:59:59")


@pytest.mark.parametrize(("old", "new", "message"), [
    ("due: {before: eingang, months: 1}", "due: {before: eingng, months: 1}",
     "'before: eingng' in due von Frist 'vorbericht' nennt keinen Bezugspunkt (gemeint: 'eingang'?)"),
    ("due: {before: eingang, months: 1}", "due: {after: title, months: 1}", "möglich: entered, eingang"),
    ("due: {before: eingang, months: 1}", "due: {before: eingang, invitation_period: true}",
     "unbekannter Schlüssel 'invitation_period'"),
    ("due: {before: eingang, months: 1}", "due: {before: eingang, after: entered, days: 1}",
     "due von Frist 'vorbericht' braucht eines von"),
])
def test_due_anchor_is_checked_at_load(old: str, new: str, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(FIELD_TEXT.replace(old, new), "sachstandsbericht.yaml")
    assert message in str(caught.value)
