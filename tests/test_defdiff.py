"""`councilflow definitions diff`: what changes between versions, renames guessed, the migrate --map
suggested and the running papers counted per affected state."""

from __future__ import annotations

import json
import shlex
from datetime import timedelta
from pathlib import Path

import pytest

from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.cli import run
from workflow.defdiff import diff_definitions
from workflow.loader import load_definition

Cli = pytest.CaptureFixture[str]
AMT = "amt@stadt.example"
SD = "sd@stadt.example"

V1 = """\
workflow: vorlage
version: 1
title: Beschlussvorlage
timezone: Europe/Berlin
roles:
  amt: [amt@stadt.example]
  sitzungsdienst: [sd@stadt.example]
bodies:
  ausschuss: {name: Fachausschuss, invitation_days: 7}
  rat: {name: Gemeinderat, invitation_days: 7}
  or_a: {name: Ortschaftsrat A, invitation_days: 7, contact: or-a@stadt.example}
  or_b: {name: Ortschaftsrat B, invitation_days: 7, contact: or-b@stadt.example}
fields:
  title: {type: text, required: true}
states:
  entwurf: {label: Entwurf, initial: true}
  pruefung: {label: Rechtliche Prüfung}
  ausschuss:
    label: Beratung im Fachausschuss
    consultation: {body: ausschuss, role: Vorberatung}
  rat:
    label: Beschluss im Rat
    consultation: {body: rat, role: Entscheidung}
  beschlossen: {label: Beschlossen, final: true}
  zurueckgezogen: {label: Zurückgezogen, final: true}
transitions:
  - {trigger: einbringen, source: entwurf, dest: pruefung, roles: [amt]}
  - {trigger: pruefen, source: pruefung, dest: ausschuss, roles: [amt]}
  - {trigger: beraten, source: ausschuss, dest: rat, roles: [sitzungsdienst], requires: [result]}
  - {trigger: beschliessen, source: rat, dest: beschlossen, roles: [sitzungsdienst], requires: [result]}
  - {trigger: zurueckziehen, source: "*", dest: zurueckgezogen, roles: [amt]}
deadlines:
  - name: vorlage_fertig
    label: Vorlage fertigstellen
    states: [ausschuss, rat]
    due: {before: meeting, working_days: 10}
    remind: [{working_days: 3}]
    notify: [amt]
"""

# Version 2: the legal check is dropped, the committee's state is renamed (same label), the Ortschaftsräte
# are heard in a new parallel state before the council, and the deadline moves to 8 working days.
V2 = (V1.replace("version: 1", "version: 2")
      .replace("  pruefung: {label: Rechtliche Prüfung}\n", "")
      .replace("  ausschuss:\n    label", "  fachausschuss:\n    label")
      .replace("  rat:\n    label: Beschluss im Rat",
               "  anhoerung:\n    label: Anhörung der Ortschaftsräte\n"
               "    parallel: {bodies: [or_a, or_b], role: Anhörung, join: all, on_success: rat, on_failure: rat}\n"
               "  rat:\n    label: Beschluss im Rat")
      .replace("dest: pruefung", "dest: fachausschuss")
      .replace("  - {trigger: pruefen, source: pruefung, dest: ausschuss, roles: [amt]}\n", "")
      .replace("source: ausschuss, dest: rat", "source: fachausschuss, dest: anhoerung")
      .replace("  - {trigger: beschliessen, source: rat,",
               "  - {trigger: anhoeren, source: anhoerung, branch: adopted, roles: [body]}\n"
               "  - {trigger: ablehnen, source: anhoerung, branch: rejected, roles: [body]}\n"
               "  - {trigger: beschliessen, source: rat,")
      .replace("states: [ausschuss, rat]", "states: [fachausschuss, rat]")
      .replace("working_days: 10", "working_days: 8"))


def test_rename_removal_parallel_state_and_changed_due() -> None:
    """Each kind of difference is reported with what changed, in German."""
    diff = diff_definitions(load_definition(V1), load_definition(V2))
    found = {(i.section, i.kind, i.name): i.details for i in diff.items}
    assert found == {
        ("state", "renamed", "ausschuss → fachausschuss"): ("gleiche Bezeichnung „Beratung im Fachausschuss“",),
        ("state", "added", "anhoerung"): ("Bezeichnung: Anhörung der Ortschaftsräte", "parallel in: or_a, or_b"),
        ("state", "removed", "pruefung"): ("Bezeichnung: Rechtliche Prüfung",),
        ("transition", "changed", "einbringen aus entwurf"): ("Ziel: pruefung → fachausschuss",),
        ("transition", "changed", "beraten aus fachausschuss"): ("Ziel: rat → anhoerung",),
        ("transition", "added", "anhoeren aus anhoerung"): ("Ziel: Zweig angenommen", "Rollen: body"),
        ("transition", "added", "ablehnen aus anhoerung"): ("Ziel: Zweig abgelehnt", "Rollen: body"),
        ("transition", "added", "zurueckziehen aus anhoerung"): ("Ziel: zurueckgezogen", "Rollen: amt"),
        ("transition", "removed", "pruefen aus pruefung"): (),
        ("transition", "removed", "zurueckziehen aus pruefung"): (),
        ("deadline", "changed", "vorlage_fertig"): ("fällig: 10 Arbeitstage vor Sitzung → 8 Arbeitstage vor Sitzung",),
    }
    assert diff.renamed == {"ausschuss": "fachausschuss"} and diff.unmapped == ["pruefung"]
    assert diff.affected == {"entwurf": "Übergänge geändert", "pruefung": "entfällt, Übergänge geändert",
                             "ausschuss": "umbenannt in fachausschuss, Übergänge geändert, Fristen geändert",
                             "rat": "Fristen geändert"}
    assert diff.command() == "councilflow migrate --workflow vorlage --to-version 2 --map ausschuss=fachausschuss"


def test_similar_label_renames_only_with_the_same_transitions() -> None:
    """A very similar label counts as a rename when the triggers in and out are the same, not otherwise."""
    renamed = V1.replace("version: 1", "version: 2").replace("  rat:\n    label: Beschluss im Rat",
                                                             "  gemeinderat:\n    label: Beschluss im Gemeinderat")
    renamed = renamed.replace("dest: rat", "dest: gemeinderat").replace("source: rat", "source: gemeinderat")
    renamed = renamed.replace("[ausschuss, rat]", "[ausschuss, gemeinderat]")
    diff = diff_definitions(load_definition(V1), load_definition(renamed))
    assert diff.renamed == {"rat": "gemeinderat"}
    assert diff.items[0].details == ("ähnliche Bezeichnung, gleiche Übergänge",
                                     "Bezeichnung: Beschluss im Rat → Beschluss im Gemeinderat")
    assert diff.affected["rat"] == "umbenannt in gemeinderat, Zustand geändert"
    other = renamed.replace("trigger: beschliessen, source: gemeinderat", "trigger: entscheiden, source: gemeinderat")
    diff = diff_definitions(load_definition(V1), load_definition(other))
    assert diff.renamed == {} and diff.unmapped == ["rat"]
    assert [(i.kind, i.name) for i in diff.items if i.section == "state"] == [("added", "gemeinderat"),
                                                                               ("removed", "rat")]


@pytest.fixture
def deployed(tmp_path: Path, clock: FixedClock) -> tuple[str, Path, Engine]:
    """Papers on version 1 in every state (one finished), then version 2 in the definitions folder."""
    url = f"sqlite:///{tmp_path / 'cf.db'}"
    folder = tmp_path / "definitions"
    folder.mkdir()
    (folder / "vorlage.yaml").write_text(V1, encoding="utf-8")
    engine = Engine(SqlStore(url), DefinitionLibrary(folder), clock)
    steps = {"V-1": [], "V-2": ["einbringen"], "V-3": ["einbringen", "pruefen"],
             "V-4": ["einbringen", "pruefen", "beraten"], "V-5": ["einbringen", "pruefen", "beraten", "beschliessen"],
             "V-6": ["einbringen", "pruefen"]}
    for ref, triggers in steps.items():
        engine.create("vorlage", ref, AMT, {"title": ref})
        for trigger in triggers:
            actor = AMT if trigger in ("einbringen", "pruefen") else SD
            engine.fire(ref, trigger, actor, values={"result": "ok"} if actor == SD else None)
    (folder / "vorlage.yaml").write_text(V2, encoding="utf-8")
    clock.advance(timedelta(days=1))
    return url, folder, engine


def test_running_papers_counted_and_the_suggested_map_migrates(deployed: tuple[str, Path, Engine],
                                                               capsys: Cli) -> None:
    """Against the stored version: papers per affected state; the printed migrate command moves them."""
    url, folder, engine = deployed
    capsys.readouterr()
    assert run(["definitions", "diff", "vorlage", str(folder / "vorlage.yaml"), "--db", url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Workflow vorlage: Version 1 (gespeichert in {url}) → Version 2 ({folder / 'vorlage.yaml'})"
    at = out.index("Laufende Vorlagen in betroffenen Zuständen:")
    assert out[at + 1:] == ["  entwurf (Übergänge geändert): 1",
                            "  pruefung (entfällt, Übergänge geändert): 1",
                            "  ausschuss (umbenannt in fachausschuss, Übergänge geändert, Fristen geändert): 2",
                            "  rat (Fristen geändert): 1",
                            "  zusammen 5 laufende Vorlagen"]
    assert ("  Zustand 'pruefung' entfällt ohne Nachfolger: ergänzen Sie --map pruefung=ZUSTAND, sonst bleiben "
            "Vorlagen dort auf der alten Version") in out
    command = next(line.strip() for line in out if line.strip().startswith("councilflow migrate"))
    args = shlex.split(command)[1:]
    assert run([*args, "--db", url, "--definitions", str(folder), "--now", "2020-08-05T10:00"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "umgestellt V-1: entwurf → entwurf", "umgestellt V-3: ausschuss → fachausschuss", "umgestellt V-4: rat → rat",
        "umgestellt V-6: ausschuss → fachausschuss",
        "belassen V-2: den Zustand 'pruefung' gibt es in Version 2 nicht; bitte mit --map pruefung=NEUER_ZUSTAND "
        "zuordnen",
        "4 umgestellt, 1 belassen"]
    assert engine.status("V-3").state == "fachausschuss" and engine.status("V-3").workflow_version == 2
    assert run(["definitions", "diff", "vorlage", str(folder / "vorlage.yaml"), "--db", url, "--format",
                "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["old_version"], report["changes"], report["migrate"]) == (2, [], None)  # v2 is stored now
    assert run(["definitions", "diff", "vorlage", str(folder / "vorlage.yaml"), "--db", url]) == 0
    assert capsys.readouterr().out.splitlines()[1:4] == ["Keine Unterschiede.", "",
                                                         "Laufende Vorlagen in betroffenen Zuständen:"]


def test_two_files_json_and_errors(tmp_path: Path, capsys: Cli) -> None:
    """Two files need no database; --format json carries the same findings; bad input is one line."""
    old, new = tmp_path / "alt.yaml", tmp_path / "neu.yaml"
    old.write_text(V1, encoding="utf-8")
    new.write_text(V2, encoding="utf-8")
    capsys.readouterr()
    assert run(["definitions", "diff", str(old), str(new), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["renamed"] == {"ausschuss": "fachausschuss"} and report["unmapped"] == ["pruefung"]
    assert {"section": "deadline", "kind": "changed", "name": "vorlage_fertig",
            "details": ["fällig: 10 Arbeitstage vor Sitzung → 8 Arbeitstage vor Sitzung"]} in report["changes"]
    assert report["affected"][0] == {"state": "entwurf", "why": "Übergänge geändert"}  # no database: no counts
    assert run(["definitions", "diff", "vorlage", str(new), "--db", f"sqlite:///{tmp_path / 'nope.db'}"]) == 8
    assert "keine Datenbank unter sqlite:///" in capsys.readouterr().err
    assert not (tmp_path / "nope.db").exists()
    assert run(["definitions", "diff", "andere", str(new)]) == 4
    assert capsys.readouterr().err.strip() == f"councilflow: Fehler: {new} ist Ablauf 'vorlage', nicht 'andere'"
    new.write_text(V1.replace("{label: Entwurf,", "{label: Entwurf der Vorlage,"), encoding="utf-8")
    assert run(["definitions", "diff", str(old), str(new)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == ("Achtung: die neue Fassung hat Version 1, nicht mehr als 1: "
                                                        "für councilflow migrate braucht sie eine höhere "
                                                        "Versionsnummer.")
    new.write_text(V2.replace("dest: anhoerung", "dest: anhorung"), encoding="utf-8")
    assert run(["definitions", "diff", str(old), str(new)]) == 3
    assert "unbekannter Zustand 'anhorung' (gemeint: 'anhoerung'?)" in capsys.readouterr().err


def test_a_new_sign_off_and_a_delayed_state_are_reported() -> None:
    """The keys of issue 14 on a state: a Mitzeichnung added to the draft and a state marked delayed."""
    text = (Path(__file__).resolve().parent.parent / "definitions" / "sachstandsbericht.yaml").read_text("utf-8")
    old = load_definition(text.replace("version: 4", "version: 3").replace("    signoff: {roles: [kaemmerei]}\n", "")
                          .replace("requires: [meeting, signoffs]}", "requires: [meeting]}"))
    new = load_definition(text.replace("zurueckgezogen: {label: Zurückgezogen, final: true}",
                                       "zurueckgezogen: {label: Zurückgezogen, final: true}\n"
                                       "  gestoppt: {label: Gestoppt, delayed: true}")
                          .replace("dest: zurueckgezogen, roles: [verfasser]}",
                                   "dest: zurueckgezogen, roles: [verfasser]}\n"
                                   "  - {trigger: stoppen, source: ausschuss, dest: gestoppt, roles: [verfasser]}\n"
                                   "  - {trigger: weiter, source: gestoppt, dest: ausschuss, roles: [verfasser]}"))
    found = {(i.section, i.kind, i.name): i.details for i in diff_definitions(old, new).items}
    assert found[("state", "changed", "entwurf")] == ("Mitzeichnung: – → kaemmerei (beliebig)",)
    assert "verzögert: ja" in found[("state", "added", "gestoppt")]
