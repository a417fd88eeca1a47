"""`councilflow definitions lint`: one German warning per rule, located at the key concerned."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow.cli import run
from workflow.lint import lint
from workflow.loader import load_definition
from workflow.yamlsafe import load_located

from .conftest import DEFINITIONS

Cli = pytest.CaptureFixture[str]

BASE = """\
workflow: w
version: 1
title: Vorlage
timezone: Europe/Berlin
roles:
  amt: [amt@stadt.example]
  sitzungsdienst: [sd@stadt.example]
  leitung: [leitung@stadt.example]
bodies:
  ausschuss: {name: Ausschuss, invitation_days: 7, contact: ausschuss@stadt.example}
fields:
  title: {type: text, required: true}
  frist: {type: date}
states:
  entwurf: {label: Entwurf, initial: true}
  ausschuss:
    label: Beratung im Ausschuss
    consultation: {body: ausschuss, role: Vorberatung}
  erledigt: {label: Erledigt, final: true}
transitions:
  - {trigger: einbringen, source: entwurf, dest: ausschuss, roles: [amt], sets: [frist]}
  - {trigger: beraten, source: ausschuss, dest: erledigt, roles: [sitzungsdienst, body], requires: [result]}
deadlines:
  - name: termin
    label: Sitzungstermin festlegen
    states: [ausschuss]
    due: {after: entered, working_days: 10}
    remind: [{working_days: 3}]
    notify: [sitzungsdienst]
    escalate: {after: {days: 1}, notify: [leitung]}
    done_by: [meeting]
"""


def warnings(text: str) -> list[str]:
    definition = load_definition(text, "w.yaml")
    return [str(w) for w in lint(definition, load_located(text, "w.yaml"))]


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text
    return text.replace(old, new)


def test_the_base_definition_is_clean() -> None:
    """The base of every rule's test draws no warning: each warning below comes from its one edit."""
    assert warnings(BASE) == []


def test_unused_role() -> None:
    text = edit("  leitung: [leitung@stadt.example]\n",
                "  leitung: [leitung@stadt.example]\n  presse: [p@stadt.example]\n")
    assert warnings(text) == ["w.yaml:9:3: warning: Rolle 'presse' wird von keinem Übergang und keiner Frist verwendet"]


def test_body_without_contact() -> None:
    """`body` where the body has no contact, or where the state has no body at all, reaches nobody."""
    text = edit(", contact: ausschuss@stadt.example", "")
    text = edit("  - {trigger: einbringen, source: entwurf, dest: ausschuss, roles: [amt],",
                "  - {trigger: einbringen, source: entwurf, dest: ausschuss, roles: [amt, body],", text)
    assert warnings(text) == [
        "w.yaml:21:74: warning: 'body' in den Rollen von Übergang 'einbringen' erreicht niemanden in Zustand "
        "'entwurf' (kein Gremium)",
        "w.yaml:22:83: warning: 'body' in den Rollen von Übergang 'beraten' erreicht niemanden für Gremium "
        "'ausschuss' (kein contact)",
    ]


def test_consultation_without_a_deadline_done_by_its_meeting() -> None:
    """Nobody is reminded to set the meeting, unless every way into the state sets it."""
    text = edit("    done_by: [meeting]\n", "")
    assert warnings(text) == [
        "w.yaml:16:3: warning: Zustand 'ausschuss' wartet auf eine Sitzung, aber keine Frist erinnert daran, sie "
        "festzulegen (keine Frist mit done_by: [meeting])"]
    assert warnings(edit("roles: [amt], sets: [frist]}", "roles: [amt], sets: [frist], requires: [meeting]}",
                         text)) == []


def test_notify_without_remind_and_remind_without_notify() -> None:
    text = edit("    remind: [{working_days: 3}]\n", "")
    assert warnings(text) == [
        "w.yaml:28:5: warning: Frist 'termin' benachrichtigt 'sitzungsdienst', erinnert aber nie (kein remind): es "
        "geht keine Erinnerungsmail hinaus, die Frist steht nur in „Meine Fristen“ und im Kalender"]
    text = edit("    notify: [sitzungsdienst]\n", "")
    assert warnings(text) == [
        "w.yaml:28:5: warning: Frist 'termin' hat remind, aber kein notify: die Erinnerungen erreichen niemanden"]


def test_escalation_to_the_people_already_reminded() -> None:
    """Compared by people: another role with the same members is no one new either."""
    expected = ["w.yaml:30:42: warning: Frist 'termin' eskaliert an dieselben Personen, die sie schon erinnert "
                "('leitung'): die Eskalation erreicht niemanden Neues"]
    assert warnings(edit("leitung: [leitung@stadt.example]", "leitung: [SD@stadt.example]")) == expected
    assert warnings(edit("notify: [leitung]}", "notify: [leitung, amt]}",
                         edit("leitung: [leitung@stadt.example]", "leitung: [SD@stadt.example]"))) == []


def test_reminder_before_the_deadline_starts() -> None:
    """after: entered, days: 5 with a reminder 7 days ahead; reminders as long as the deadline are fine, and
    5 working days count as the week they typically are."""
    text = edit("due: {after: entered, working_days: 10}", "due: {after: entered, days: 5}")
    text = edit("remind: [{working_days: 3}]", "remind: [{working_days: 3}, {days: 7}]", text)
    assert warnings(text) == [
        "w.yaml:28:33: warning: Erinnerung 7 Tage vor Fristablauf liegt vor dem Beginn der Frist 'termin' (fällig "
        "5 Tage nach Eintritt): sie geht schon beim Eintritt hinaus"]
    assert warnings(edit("{days: 7}", "{days: 5}", text)) == []
    assert warnings(edit("{days: 7}", "{working_days: 5}", edit("days: 5}", "days: 7}", text))) == []
    before_meeting = edit("due: {after: entered, working_days: 10}", "due: {before: meeting, days: 1}")
    assert warnings(edit("remind: [{working_days: 3}]", "remind: [{days: 30}]", before_meeting)) == []


def test_label_missing_or_equal_to_the_id() -> None:
    text = edit("  entwurf: {label: Entwurf, initial: true}", "  entwurf: {initial: true}")
    text = edit("    label: Sitzungstermin festlegen", "    label: termin", text)
    text = edit("  erledigt: {label: Erledigt,", "  erledigt: {label: erledigt,", text)
    assert warnings(text) == [
        "w.yaml:15:3: warning: Zustand 'entwurf' hat kein label: Mails und Seiten zeigen die Kennung",
        "w.yaml:19:21: warning: label von Zustand 'erledigt' ist gleich der Kennung: bitte eine lesbare Bezeichnung",
        "w.yaml:25:12: warning: label von Frist 'termin' ist gleich der Kennung: bitte eine lesbare Bezeichnung"]
    assert warnings(edit("    label: Sitzungstermin festlegen\n", "")) == [
        "w.yaml:24:5: warning: Frist 'termin' hat kein label: Mails und Seiten zeigen die Kennung"]


def test_field_never_required_set_or_used() -> None:
    """A field no transition requires or sets and no deadline counts from; special names are used anyway."""
    text = edit("  frist: {type: date}\n", "  frist: {type: date}\n  notiz: {type: text}\n  public: {type: bool}\n")
    assert warnings(text) == [
        "w.yaml:14:3: warning: Feld 'notiz' wird nie verlangt (required, requires), von keinem Übergang gesetzt "
        "(sets) und von keiner Frist verwendet"]
    anchored = edit("roles: [amt], sets: [frist]}", "roles: [amt]}")
    assert warnings(anchored) == [
        "w.yaml:13:3: warning: Feld 'frist' wird nie verlangt (required, requires), von keinem Übergang gesetzt "
        "(sets) und von keiner Frist verwendet"]
    assert warnings(edit("due: {after: entered, working_days: 10}", "due: {before: frist, days: 1}", anchored)) == []


def test_cli_exit_codes(tmp_path: Path, capsys: Cli) -> None:
    """Warnings exit 0, with --strict 1; an invalid definition prints its load errors and exits 3."""
    (tmp_path / "w.yaml").write_text(edit("    label: Sitzungstermin festlegen\n", ""), encoding="utf-8")
    capsys.readouterr()
    assert run(["definitions", "lint", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{tmp_path / 'w.yaml'}:24:5: warning: Frist 'termin' hat kein label: Mails und Seiten zeigen "
                   "die Kennung", "1 Warnung"]
    assert run(["definitions", "lint", "--strict", str(tmp_path / "w.yaml")]) == 1
    (tmp_path / "w.yaml").write_text(BASE, encoding="utf-8")
    capsys.readouterr()
    assert run(["definitions", "lint", "--strict", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'w.yaml'}: ok, keine Warnungen\n"
    (tmp_path / "w.yaml").write_text(edit("dest: erledigt", "dest: erledgt"), encoding="utf-8")
    assert run(["definitions", "lint", str(tmp_path)]) == 3
    captured = capsys.readouterr()
    assert captured.err == f"{tmp_path / 'w.yaml'}:22:49: unknown state 'erledgt' (gemeint: 'erledigt'?)\n"
    assert captured.out == ""


def test_shipped_definitions(capsys: Cli) -> None:
    """The shipped definitions' current warnings: Karlsruhe (imported from OParl) asks nobody to set the
    meeting of its consultation states; the Kreis Coesfeld definitions and the Haushaltssatzung are clean."""
    capsys.readouterr()
    assert run(["definitions", "lint", str(DEFINITIONS)]) == 0
    out = capsys.readouterr().out.splitlines()
    karlsruhe = [line for line in out if line.startswith(f"{DEFINITIONS / 'karlsruhe.yaml'}:")]
    assert len(karlsruhe) == 24 and all("wartet auf eine Sitzung, aber keine Frist erinnert daran" in line
                                        for line in karlsruhe)
    assert karlsruhe[0] == (f"{DEFINITIONS / 'karlsruhe.yaml'}:58:3: warning: Zustand 'gemeinderat' wartet auf "
                            "eine Sitzung, aber keine Frist erinnert daran, sie festzulegen (keine Frist mit "
                            "done_by: [meeting])")
    others = [line for line in out if line not in karlsruhe]
    assert others == [f"{DEFINITIONS / 'haushaltssatzung.yaml'}: ok, keine Warnungen",
                      f"{DEFINITIONS / 'kreisstrategie.yaml'}: ok, keine Warnungen",
                      f"{DEFINITIONS / 'sachstandsbericht.yaml'}: ok, keine Warnungen", "24 Warnungen"]
    assert run(["definitions", "lint", "--strict", str(DEFINITIONS)]) == 1
