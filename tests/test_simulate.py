"""`definitions simulate` (a dry run of a scenario in memory) and `tick --until` (the rehearsal on a real
database): the shipped 11-council scenario, the three output formats, refusals, scenario file errors, the
German explanation of a due date, and that the dry run sends exactly what a real database sends."""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
from datetime import UTC, date, datetime
from email.message import Message
from pathlib import Path

import pytest
from icalendar import Calendar

from notifier.dispatch import check_templates
from workflow.calendar import working_calendar
from workflow.cli import run
from workflow.config import Settings
from workflow.deadlines import due_day, explain_due
from workflow.german import format_local
from workflow.library import DefinitionLibrary
from workflow.simulate import Scenario, load_scenario, simulate

from .conftest import DEFINITIONS, FEDER, LANDRAT, SITZ

Cli = pytest.CaptureFixture[str]
SCENARIO = DEFINITIONS / "scenarios" / "kreisstrategie.yaml"
REF = "KS-2025-001"


@pytest.fixture(autouse=True)
def _plain_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Default settings whatever the environment says (the hours decide every mail's moment)."""
    for name in ("COUNCILFLOW_CONFIG", "COUNCILFLOW_NOW", "COUNCILFLOW_DB", "COUNCILFLOW_MAIL",
                 "COUNCILFLOW_MORNING_HOUR", "COUNCILFLOW_EVENING_HOUR", "COUNCILFLOW_DIGEST_HOUR",
                 "COUNCILFLOW_TIMEZONE", "COUNCILFLOW_MAIL_FROM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(DEFINITIONS))


def _simulate(capsys: Cli, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(["definitions", "simulate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _library() -> DefinitionLibrary:
    return DefinitionLibrary(DEFINITIONS, checks=[check_templates])


# --- the explanation of a due date ----------------------------------------------------------------------


def test_explain_due_names_the_days_stepped_over() -> None:
    """10 working days before a meeting on Thursday 08.01.2026 step back over Christmas and New Year: the
    explanation names the holidays (by the holidays package's German names) and the closed days, not the
    weekends, and the due day is the one the arithmetic gives."""
    definition, _ = _library().current("kreisstrategie")
    specs = {d.name: d for d in definition.deadlines}
    meeting = datetime(2026, 1, 8, 16, 0, tzinfo=UTC)
    assert explain_due(definition, specs["vorlage_fertig"], meeting, None) == (
        "10 Arbeitstage vor Sitzung 08.01.2026, übersprungen: 24./31.12. Verwaltung geschlossen, "
        "25.12. Erster Weihnachtstag, 26.12. Zweiter Weihnachtstag, 01.01. Neujahr")
    assert due_day(definition, specs["vorlage_fertig"], date(2026, 1, 8), None) == date(2025, 12, 18)
    skipped = working_calendar(definition.calendar).skipped(date(2026, 1, 8), date(2025, 12, 18))
    assert len(skipped) == 11  # 6 weekend days, 3 holidays, 2 closed days
    assert explain_due(definition, specs["termin"], datetime(2025, 9, 1, 8, 0, tzinfo=UTC), None) == \
        "10 Arbeitstage nach Eintritt 01.09.2025"
    assert explain_due(definition, specs["ladung"], meeting, "kreistag") == \
        "Ladungsfrist (7 Tage) vor Sitzung 08.01.2026"
    assert explain_due(definition, specs["ratsbeschluss"], meeting, "rat_nottuln") == \
        "120 Tage nach Eintritt 08.01.2026"


# --- the shipped scenario: table, json, ics ---------------------------------------------------------------


def test_the_shipped_scenario_as_a_table(capsys: Cli) -> None:
    """The 11-council path over a year: every state, deadline (with why it is due then), mail and the end."""
    code, out, err = _simulate(capsys, "kreisstrategie", str(SCENARIO))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == (f"Simulation {REF} (kreisstrategie v5) vom 01.09.2025 09:00 bis 31.08.2026 23:59, Zeiten "
                        "Europe/Berlin – nichts wird gespeichert oder versandt")
    for line in (
        "01.09.2025 09:00  Status      Entwurf (entwurf)",
        "01.09.2025 10:00  Schritt     einbringen von digitalisierung@kreis-coesfeld.example",
        "01.09.2025 10:00  Frist       Sitzungstermin festlegen: fällig 15.09.2025 23:59 (10 Arbeitstage nach "
        "Eintritt 01.09.2025)",
        "03.09.2025 11:00  Frist       Sitzungstermin festlegen: erledigt",
        "03.09.2025 11:00  Frist       Vorlage fertigstellen: fällig 22.09.2025 23:59 (10 Arbeitstage vor Sitzung "
        "07.10.2025, übersprungen: 03.10. Tag der Deutschen Einheit)",
        "15.09.2025 08:00  Erinnerung  Vorlage fertigstellen: 5 Arbeitstage vor Fristablauf → "
        "digitalisierung@kreis-coesfeld.example",
        "17.09.2025 08:00  Übersicht   Fristenübersicht 2025-09-17 → digitalisierung@kreis-coesfeld.example, "
        "sitzungsdienst@kreis-coesfeld.example",
        "01.12.2025 08:00  Eskalation  Vorlage fertigstellen: 1 Arbeitstag nach Fristablauf → "
        "buero.landrat@kreis-coesfeld.example, landrat@kreis-coesfeld.example",
        "11.12.2025 18:00  Frist       Sitzungstermin festlegen: fällig 30.12.2025 23:59 (10 Arbeitstage nach "
        "Eintritt 11.12.2025, übersprungen: 24.12. Verwaltung geschlossen, 25.12. Erster Weihnachtstag, 26.12. "
        "Zweiter Weihnachtstag)",
        "05.02.2026 19:30  Status      Beschlussfassung in den Räten der Städte und Gemeinden (kommunale_raete)",
        "05.02.2026 19:30  Frist       Beschluss im Rat herbeiführen – Rat der Gemeinde Rosendahl: fällig "
        "05.06.2026 23:59 (120 Tage nach Eintritt 05.02.2026)",
        "19.02.2026 08:00  Erinnerung  Ratssitzung festlegen – Rat der Gemeinde Rosendahl: 5 Arbeitstage vor "
        "Fristablauf → hauptamt@rosendahl.example",
        "31.03.2026 20:00  Gremium     Rat der Gemeinde Nottuln: vertagt – „vertagt“",
        "31.03.2026 20:00  Frist       Einladung zur Ratssitzung versenden (Ladungsfrist) – Rat der Gemeinde "
        "Nottuln: fällig 18.04.2026 23:59 (Ladungsfrist (10 Tage) vor Sitzung 28.04.2026)",
        "08.06.2026 08:00  Eskalation  Beschluss im Rat herbeiführen – Rat der Gemeinde Rosendahl: 1 Tag nach "
        "Fristablauf → buero.landrat@kreis-coesfeld.example, landrat@kreis-coesfeld.example",
        "16.06.2026 20:00  Gremium     Rat der Gemeinde Rosendahl: angenommen – „beschlossen“",
        "16.06.2026 20:00  Status      Beschlossen (beschlossen)",
    ):
        assert line in lines, line
    assert lines[-1] == ("Zusammenfassung: 34 Schritte, 6 Status betreten, 43 Fristen gestartet, 333 Nachrichten "
                         "(27 Erinnerungen, 2 Eskalationen, 304 Übersichten), 335 Mails (eine je Empfänger)")
    stamps = [datetime.strptime(line[:16], "%d.%m.%Y %H:%M") for line in lines[1:-1]]
    assert stamps == sorted(stamps)  # in time order
    assert sum(1 for line in lines if "  Gremium     " in line and "angenommen" in line) == 11


def test_without_digests(capsys: Cli) -> None:
    code, out, _ = _simulate(capsys, "kreisstrategie", str(SCENARIO), "--no-digest")
    assert code == 0
    assert "Übersicht" not in out
    assert out.splitlines()[-1].endswith("29 Nachrichten (27 Erinnerungen, 2 Eskalationen), 31 Mails (eine je "
                                         "Empfänger)")


def test_the_shipped_scenario_as_json(capsys: Cli) -> None:
    code, out, _ = _simulate(capsys, "kreisstrategie", str(SCENARIO), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert {k: doc[k] for k in ("workflow", "version", "reference", "timezone", "start", "until", "refused")} == {
        "workflow": "kreisstrategie", "version": 5, "reference": REF, "timezone": "Europe/Berlin",
        "start": "2025-09-01T07:00:00+00:00", "until": "2026-08-31T21:59:59+00:00", "refused": None}
    events = doc["events"]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    assert {e["kind"] for e in events} == {"step", "state", "branch", "deadline", "deadline_end", "mail"}
    assert [e["state"] for e in events if e["kind"] == "state"] == [
        "entwurf", "bmk", "kreisausschuss", "kreistag", "kommunale_raete", "beschlossen"]
    escalations = [e for e in events if e["kind"] == "mail" and e["mail"] == "escalate"]
    assert [(e["at"], e["deadline"], e["branch"], e["recipients"]) for e in escalations] == [
        ("2025-12-01T07:00:00+00:00", "vorlage_fertig", None, [LANDRAT, "landrat@kreis-coesfeld.example"]),
        ("2026-06-08T06:00:00+00:00", "ratsbeschluss", "rat_rosendahl", [LANDRAT, "landrat@kreis-coesfeld.example"]),
    ]
    started = next(e for e in events if e["kind"] == "deadline" and e["name"] == "vorlage_fertig")
    assert started == {"at": "2025-09-03T09:00:00+00:00", "kind": "deadline", "name": "vorlage_fertig",
                       "label": "Vorlage fertigstellen", "branch": None, "due_at": "2025-09-22T21:59:59+00:00",
                       "explanation": "10 Arbeitstage vor Sitzung 07.10.2025, übersprungen: 03.10. Tag der "
                                      "Deutschen Einheit",
                       "text": started["text"]}
    assert doc["counts"] == {"steps": 34, "states": 6, "deadlines": 43, "mails": 333, "remind": 27, "escalate": 2,
                             "late": 0, "digest": 304, "copies": 335}


def test_the_shipped_scenario_as_a_calendar(capsys: Cli) -> None:
    """--format ics: the deadlines (one entry per state they run in) and the meetings, as the mails carry them."""
    code, out, _ = _simulate(capsys, "kreisstrategie", str(SCENARIO), "--format", "ics")
    assert code == 0
    cal = Calendar.from_ical(out)
    events = list(cal.walk("VEVENT"))
    summaries = [str(e["summary"]) for e in events]
    assert len({str(e["uid"]) for e in events}) == len(events) == 56
    assert summaries.count(f"Frist: Vorlage fertigstellen – {REF}") == 3  # Bürgermeisterkonferenz, KA, Kreistag
    assert summaries.count(f"Frist: Beschluss im Rat herbeiführen – {REF}") == 11
    assert sum(s.startswith("Sitzung ") for s in summaries) == 14  # 3 Kreis bodies, 11 councils
    kreistag = next(e for e in events if str(e["summary"]) == f"Sitzung Kreistag – {REF}")
    assert kreistag.decoded("dtstart") == datetime(2026, 2, 5, 16, 0, tzinfo=UTC)
    nottuln = next(e for e in events if str(e["summary"]) == f"Sitzung Rat der Gemeinde Nottuln – {REF}")
    assert nottuln.decoded("dtstart") == datetime(2026, 4, 28, 16, 0, tzinfo=UTC)  # as it stood last (vertagt)
    due = sorted(e.decoded("dtstart") for e in events if str(e["summary"]) == f"Frist: Vorlage fertigstellen – {REF}")
    assert due == [date(2025, 9, 22), date(2025, 11, 27), date(2026, 1, 22)]


# --- refusals ---------------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "szenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


SHORT = f"""\
reference: KS-9
start: 2025-09-01T09:00
actor: {FEDER}
fields: {{title: Strategie}}
steps:
  - {{at: 2025-09-01T10:00, fire: einbringen}}
  - {{at: 2025-09-02T10:00, meeting: 2025-10-07T10:00, actor: {SITZ}}}
"""


def test_a_refused_step_stops_the_run(tmp_path: Path, capsys: Cli) -> None:
    """The Federführung may not record the Bürgermeisterkonferenz's advice: the engine's refusal is shown, the
    run stops there (the later step is not played) and the exit code is the refusal's (6: not permitted)."""
    path = _write(tmp_path, SHORT + "  - {at: 2025-10-07T12:00, fire: beraten, set: {result: empfohlen}}\n"
                                    f"  - {{at: 2025-10-08T12:00, fire: zurueckziehen, actor: {LANDRAT}}}\n")
    code, out, err = _simulate(capsys, "kreisstrategie", str(path))
    assert code == 6
    lines = out.splitlines()
    assert lines[-3].startswith("07.10.2025 12:00  Schritt     beraten von digitalisierung@kreis-coesfeld.example")
    assert lines[-2].startswith("07.10.2025 12:00  Abgewiesen  digitalisierung@kreis-coesfeld.example darf ")
    assert "zurueckziehen" not in out and "Zurückgezogen" not in out
    assert lines[-1].endswith("; abgebrochen bei Schritt 3 (Zeile 8)")
    assert err.startswith(f"councilflow: Fehler: {path}:8: Schritt 3 wurde abgewiesen: "
                          "digitalisierung@kreis-coesfeld.example darf ")
    assert err.count("\n") == 1
    code, out, _ = _simulate(capsys, "kreisstrategie", str(path), "--format", "json")
    refused = json.loads(out)["refused"]
    assert code == 6 and refused["step"] == 3 and refused["line"] == 8 and refused["exit_code"] == 6


def test_a_trigger_the_state_does_not_accept(tmp_path: Path, capsys: Cli) -> None:
    path = _write(tmp_path, SHORT + f"  - {{at: 2025-09-03T10:00, fire: beschliessen, actor: {SITZ}, "
                                    "set: {result: ja}}\n")
    code, out, _ = _simulate(capsys, "kreisstrategie", str(path))
    assert code == 5
    assert "Abgewiesen" in out.splitlines()[-2]


def test_a_withdrawal_needs_its_reason(tmp_path: Path, capsys: Cli) -> None:
    """`zurueckziehen` has `confirm: true`: without `reason` the step is refused (exit 4), with one it is played
    and the reason shown."""
    step = f"  - {{at: 2025-09-03T10:00, fire: zurueckziehen, actor: {LANDRAT}}}\n"
    code, out, err = _simulate(capsys, "kreisstrategie", str(_write(tmp_path, SHORT + step)))
    assert code == 4 and "muss mit einer Begründung bestätigt werden" in err
    path = _write(tmp_path, SHORT + step.replace("}\n", ", reason: Strategie wird neu gefasst}\n"))
    code, out, err = _simulate(capsys, "kreisstrategie", str(path))
    assert code == 0, err
    assert "zurueckziehen von buero.landrat@kreis-coesfeld.example; Begründung: Strategie wird neu gefasst" in out
    bad = _write(tmp_path, SHORT + "  - {at: 2025-09-03T10:00, meeting: 2025-10-07T10:00, reason: x}\n")
    code, _, err = _simulate(capsys, "kreisstrategie", str(bad))
    assert code == 4 and "reason gehört nur zu fire" in err


def test_done_steps_mark_a_deadline_done(tmp_path: Path, capsys: Cli) -> None:
    """`done: DEADLINE` marks a running deadline done: its reminders are not sent."""
    path = _write(tmp_path, SHORT + "  - {at: 2025-09-04T10:00, done: vorlage_fertig, note: im DMS freigegeben}\n"
                                    "until: 2025-10-06\n")
    code, out, _ = _simulate(capsys, "kreisstrategie", str(path), "--no-digest")
    assert code == 0, out
    assert ("04.09.2025 10:00  Schritt     Frist vorlage_fertig erledigt gemeldet von "
            "digitalisierung@kreis-coesfeld.example; im DMS freigegeben") in out
    assert "04.09.2025 10:00  Frist       Vorlage fertigstellen: erledigt" in out
    assert "Erinnerung  Vorlage fertigstellen" not in out
    assert "Erinnerung  Einladung mit Vorlage versenden (Ladungsfrist): 3 Tage vor Fristablauf" in out


# --- scenario file errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    (SHORT + "farbe: blau\n", ["8:1: unbekannter Schlüssel 'farbe' im Szenario; erlaubt: reference, start, actor, "
                            "fields, steps, until"]),
    (SHORT.replace("steps:", "step:"), ["5:1: unbekannter Schlüssel 'step' im Szenario (gemeint: 'steps'?); "
                                        "erlaubt: reference, start, actor, fields, steps, until"]),
    (SHORT.replace("start: 2025-09-01T09:00\n", ""), ["1:1: der Schlüssel 'start' fehlt"]),
    (SHORT.replace("2025-09-01T10:00", "morgen"),
     ["6:10: Schritt 1: at muss ein Zeitpunkt wie 2025-09-02T10:00 sein (Ortszeit Europe/Berlin), nicht 'morgen'"]),
    (SHORT.replace("2025-09-02T10:00", "2025-08-30T10:00"),
     ["7:10: Schritt 2 liegt vor dem vorigen Zeitpunkt (01.09.2025 10:00); die Schritte stehen in zeitlicher "
      "Reihenfolge"]),
    (SHORT.replace("fire: einbringen", "fire: einbringen, meeting: 2025-10-07T10:00"),
     ["6:5: Schritt 1 braucht genau einen der Schlüssel fire, meeting oder done, nicht fire und meeting"]),
    (SHORT.replace(f"actor: {SITZ}", "sett: {result: x}"),
     ["7:55: unbekannter Schlüssel 'sett' in Schritt 2 (gemeint: 'set'?); erlaubt: at, fire, meeting, done, "
      "branch, actor, set, note"]),
    (SHORT.replace(f"actor: {SITZ}", "set: {result: x}"), ["7:55: Schritt 2: set gehört nur zu fire"]),
    (SHORT + "  - [einbringen]\n",
     ["8:5: Schritt 3 muss eine Zuordnung sein (at und fire, meeting oder done), nicht eine Liste"]),
    (SHORT + "until: 2025-08-01\n", ["8:8: until liegt vor dem letzten Schritt (02.09.2025 10:00)"]),
    (SHORT.replace("{title: Strategie}", "{title: {a: 1}}"),
     ["4:17: fields: der Wert von 'title' muss Text, eine Zahl, true/false oder eine Liste von Texten sein"]),
    (SHORT + "  - {at: 2025-09-03T10:00, fire: x\n", ["8:5: die geschweifte Klammer { wird nicht geschlossen"]),
    (SHORT + "steps: []\n", ["8:1: doppelter Schlüssel 'steps' (zuerst in Zeile 5)"]),
    (SHORT + "farbe: blau\nuntil: gestern\n", ["8:1: unbekannter Schlüssel 'farbe'",
                                                 "9:8: until muss ein Zeitpunkt wie 2025-09-02T10:00 sein"]),
])
def test_scenario_file_errors_name_line_and_column(tmp_path: Path, capsys: Cli, text: str,
                                                   expected: list[str]) -> None:
    path = _write(tmp_path, text)
    code, out, err = _simulate(capsys, "kreisstrategie", str(path))
    assert code == 4 and out == ""
    lines = err.splitlines()
    assert len(lines) == len(expected), err
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(f"{path}:{start}"), line
    assert "Traceback" not in err


def test_a_missing_scenario_file_and_an_unknown_workflow(tmp_path: Path, capsys: Cli) -> None:
    code, _, err = _simulate(capsys, "kreisstrategie", str(tmp_path / "fehlt.yaml"))
    assert code == 4 and err == f"{tmp_path / 'fehlt.yaml'}:1:1: die Datei kann nicht gelesen werden: No such file " \
                                "or directory\n"
    code, _, err = _simulate(capsys, "kreisstrategy", str(SCENARIO))
    assert code == 8 and err.startswith("councilflow: Fehler: ")


# --- the key check: the dry run sends what a real database sends ----------------------------------------------


def _headers(message: Message) -> tuple[str, str, str, str, str]:
    return (str(message["X-Councilflow-Kind"]), str(message["Date"]), str(message["To"]), str(message["Subject"]),
            str(message["Message-ID"]))


def _replay_on_sqlite(scenario: Scenario, db: str, capsys: Cli, workflow: str = "kreisstrategie") -> list[str]:
    """The scenario's steps through the real commands on a SQLite file, `tick --until` between them."""
    def cli(*args: str) -> str:
        capsys.readouterr()
        assert run(list(args)) == 0, capsys.readouterr().err
        return capsys.readouterr().out

    def at(moment: datetime) -> str:
        return moment.isoformat()

    printed: list[str] = []
    cli("documents", "create", workflow, scenario.reference, "--actor", scenario.actor, "--db", db,
        "--now", at(scenario.start), *(a for k, v in scenario.fields.items() for a in ("--set", f"{k}={v}")))
    previous = scenario.start
    for step in scenario.steps:
        printed += cli("tick", "--until", at(step.at), "--digest", "--db", db, "--now", at(previous)).splitlines()
        actor = step.actor or scenario.actor
        branch = ["--branch", step.branch] if step.branch else []
        common = ["--actor", actor, *branch, "--db", db, "--now", at(step.at)]
        if step.action == "fire":
            cli("fire", scenario.reference, step.target, *common,
                *(a for k, v in step.values.items() for a in ("--set", f"{k}={v}")))
        elif step.action == "meeting":
            assert step.meeting is not None
            cli("meeting", scenario.reference, at(step.meeting), *common)
        else:
            cli("done", scenario.reference, step.target, *common)
        previous = step.at
    assert scenario.until is not None
    printed += cli("tick", "--until", at(scenario.until), "--digest", "--db", db, "--now", at(previous)).splitlines()
    return printed


@pytest.mark.parametrize(("workflow", "count"), [("kreisstrategie", 335), ("haushaltssatzung", 73)])
def test_simulate_sends_what_tick_until_sends_on_sqlite(tmp_path: Path, capsys: Cli, workflow: str,
                                                        count: int) -> None:
    """The same steps of each shipped scenario on a real SQLite database, with `tick --until` between them,
    deliver the same mails as the dry run: same kinds, Date headers (the moment of each pass), recipients,
    subjects and Message-IDs."""
    library = _library()
    scenario = load_scenario(DEFINITIONS / "scenarios" / f"{workflow}.yaml", "Europe/Berlin")
    sim = simulate(library, workflow, scenario, Settings())
    assert sim.refused is None
    printed = _replay_on_sqlite(scenario, f"sqlite:///{tmp_path / 'probe.db'}", capsys, workflow)
    maildir = mailbox.Maildir(str(tmp_path / "councilflow-mail"), create=False,
                              factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default))
    delivered = [_headers(m) for m in maildir]
    simulated = [_headers(m) for m in sim.messages]
    assert len(simulated) == count
    assert sorted(delivered) == sorted(simulated)
    # and `tick --until` listed each mail at its moment, as the dry run did
    mails = [line for line in printed if line.startswith("   ✉ ")]
    assert len(mails) == sum(1 for e in sim.events if e.kind == "mail")
    assert [line[5:21] for line in mails] == [format_local(e.at, "Europe/Berlin") for e in sim.events
                                              if e.kind == "mail"]


def test_tick_until_refuses_to_go_back(tmp_path: Path, capsys: Cli) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    capsys.readouterr()
    assert run(["tick", "--until", "2025-01-01T00:00", "--db", db, "--now", "2025-02-01T00:00"]) == 4
    assert capsys.readouterr().err == ("councilflow: Fehler: --until 2025-01-01T00:00 liegt vor dem Start "
                                       "01.02.2025 00:00 (--now)\n")
