"""The `councilflow` command: the documented forms, JSON output, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workflow.cli import run

from .conftest import COUNCILS, FEDER, LANDRAT, SITZ, contact, to_councils

Cli = pytest.CaptureFixture[str]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, db_url: str, defs_dir: Path) -> dict[str, str]:
    """Point every command at a fresh database and the spec definitions through the environment."""
    monkeypatch.setenv("COUNCILFLOW_DB", db_url)
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(defs_dir))
    monkeypatch.setenv("COUNCILFLOW_NOW", "2020-08-04T09:00")
    return {"COUNCILFLOW_DB": db_url, "COUNCILFLOW_DEFINITIONS": str(defs_dir)}


def _json(capsys: Cli, *args: str) -> object:
    capsys.readouterr()
    assert run([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_documented_path_through_the_cli(env: dict[str, str], capsys: Cli) -> None:
    """init, documents create, fire, meeting, status --json and history --json work as documented."""
    assert run(["init"]) == 0
    assert run(["documents", "create", "sachstandsbericht", "SV-9-1809", "--actor", LANDRAT,
                "--set", "title=Digitalisierungsstrategie", "--set", "references=SV-9-1334,SV-9-1390"]) == 0
    assert run(["fire", "SV-9-1809", "einbringen", "--actor", LANDRAT, "--set", "meeting=2020-08-27T17:00"]) == 0
    assert run(["meeting", "SV-9-1809", "2020-08-27T18:00", "--actor", SITZ, "--now", "2020-08-05T10:00"]) == 0
    st = _json(capsys, "status", "SV-9-1809")
    assert isinstance(st, dict)
    assert st["state"] == "ausschuss" and st["meeting"] == "2020-08-27T16:00:00+00:00"
    assert st["fields"]["references"] == ["SV-9-1334", "SV-9-1390"]
    assert st["triggers"] == ["kenntnis_nehmen", "vertagen", "zurueckziehen"]
    assert run(["fire", "SV-9-1809", "kenntnis_nehmen", "--actor", SITZ, "--set", "result=zur Kenntnis genommen",
                "--now", "2020-08-27T19:00"]) == 0
    hist = _json(capsys, "history", "SV-9-1809")
    assert isinstance(hist, list)
    assert [(h["trigger"], h["actor"], h["at"]) for h in hist] == [
        ("create", LANDRAT, "2020-08-04T07:00:00+00:00"),
        ("einbringen", LANDRAT, "2020-08-04T07:00:00+00:00"),
        ("meeting", SITZ, "2020-08-05T08:00:00+00:00"),
        ("kenntnis_nehmen", SITZ, "2020-08-27T17:00:00+00:00"),
        ("remind", "system", "2020-08-27T17:00:00+00:00"),  # due on 18.08., never sent (no tick): skipped
    ]
    then = _json(capsys, "status", "SV-9-1809", "--as-of", "2020-08-04T12:00")
    assert isinstance(then, dict) and then["state"] == "ausschuss" and then["as_of"] == "2020-08-04T10:00:00+00:00"
    capsys.readouterr()
    assert run(["audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith("ok: 6 Einträge, Kopf ")  # with the definition and the skipped mail
    # one entry per line keeps a comma in an entry (on one line, commas separate the entries)
    assert run(["documents", "create", "sachstandsbericht", "SV-9-1810", "--actor", LANDRAT, "--set", "title=x",
                "--set", "references=Beschluss 12, Anlage 3\nSV-9-1334"]) == 0
    created = _json(capsys, "status", "SV-9-1810")
    assert isinstance(created, dict) and created["fields"]["references"] == ["Beschluss 12, Anlage 3", "SV-9-1334"]


def test_branch_option_and_human_status(env: dict[str, str], capsys: Cli) -> None:
    """--branch names the council; the human status lists the branches in German."""
    run(["documents", "create", "kreisstrategie", "KS-1", "--actor", FEDER, "--set", "title=Strategie"])
    run(["fire", "KS-1", "einbringen", "--actor", FEDER])
    for _ in range(2):
        run(["fire", "KS-1", "beraten", "--actor", SITZ, "--set", "result=empfohlen"])
    run(["fire", "KS-1", "beschliessen", "--actor", SITZ, "--set", "result=beschlossen"])
    assert run(["meeting", "KS-1", "2020-11-02T18:00", "--actor", contact("rat_olfen"), "--branch", "rat_olfen"]) == 0
    capsys.readouterr()
    assert run(["fire", "KS-1", "beschliessen", "--actor", contact(COUNCILS[0]), "--branch", COUNCILS[0],
                "--set", "result=einstimmig beschlossen"]) == 0
    out = capsys.readouterr().out
    assert "  Gremien:           1 von 11 entschieden" in out
    assert "Rat der Gemeinde Ascheberg" in out and "angenommen" in out and "einstimmig beschlossen" in out
    assert "Rat der Stadt Olfen                offen            Sitzung 02.11.2020 18:00" in out


#: The labels of `status` in German and English, the longest first.
STATUS_LABELS = {"de": ("Mögliche Schritte", "Folgt auf", "Stand am", "Ergebnis", "Zustand", "Gremium", "Gremien"),
                 "en": ("Possible steps", "Follows", "Bodies", "Result", "As of", "State", "Body")}


@pytest.mark.parametrize("lang", ["de", "en"])
def test_status_texts_stand_in_one_column(monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path,
                                          capsys: Cli, lang: str) -> None:
    """The texts of `status` start in one column, as wide as the longest label of the language shown: also
    the paper a follow-up paper follows, the bodies, the body and the --as-of moment."""
    from datetime import UTC

    from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore

    from .test_follow_up import ADOPTED, REF, adopt, shipped

    folder = shipped(tmp_path / "shipped")
    monkeypatch.setenv("COUNCILFLOW_DB", db_url)
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(folder))
    store = SqlStore(db_url)
    store.init()
    engine = Engine(store, DefinitionLibrary(folder), FixedClock(ADOPTED.astimezone(UTC)))
    adopt(engine, massnahmen="E-Akte einführen")
    to_councils(engine, "KS-2")
    engine.fire("KS-2", "beschliessen", contact(COUNCILS[0]), branch=COUNCILS[0], values={"result": "beschlossen"})
    engine.create("kreisstrategie", "KS-3", FEDER, {"title": "Im Ausschuss"})
    engine.fire("KS-3", "einbringen", FEDER)
    store.dispose()
    labels = STATUS_LABELS[lang]
    column = len(f"  {labels[0]}: ")
    seen = set()
    for args in (["status", f"{REF}-M1"], ["status", REF], ["status", "KS-2"],
                 ["status", "KS-3", "--as-of", ADOPTED.isoformat()]):
        capsys.readouterr()
        assert run(["--lang", lang, *args]) == 0
        for line in capsys.readouterr().out.splitlines():
            label = next((k for k in labels if line.startswith(f"  {k}:")), None)
            if label is not None:
                seen.add(label)
                assert line[:column].endswith(" ") and line[column] != " ", (args, line)
    assert seen == set(labels)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["fire", "SV-X", "einbringen", "--actor", LANDRAT], 8, "keine Vorlage mit der Nummer 'SV-X'"),
        (["documents", "create", "sachstandsbericht", "SV-1", "--actor", SITZ, "--set", "title=x"], 6,
         "darf keine Vorlagen des Ablaufs 'sachstandsbericht' anlegen"),
        (["documents", "create", "sachstandsbericht", "SV-1", "--actor", LANDRAT, "--set", "title"], 4,
         "--set 'title' muss die Form FELD=WERT haben"),
        (["status", "SV-1", "--now", "gestern"], 4, "--now: 'gestern' ist kein Zeitpunkt nach ISO 8601"),
        (["definitions", "show", "kreistrategie"], 8, "(gemeint: 'kreisstrategie'?)"),
        (["status", "SV-1", "--db", "mysql://x/y"], 4, "nur sqlite:/// und postgresql+psycopg:// werden unterstützt"),
    ],
    ids=["not-found", "not-permitted", "bad-set", "bad-now", "unknown-workflow", "bad-db"],
)
def test_user_errors_are_one_line_with_exit_code(env: dict[str, str], capsys: Cli, args: list[str], code: int,
                                                 message: str) -> None:
    """A user error is one line on stderr starting with `councilflow: Fehler:` and its documented code."""
    assert run(args) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("councilflow: Fehler: ") and message in err


def test_not_allowed_now_exit_code(env: dict[str, str], capsys: Cli) -> None:
    """A trigger the state does not accept exits 5 and lists what is possible now."""
    run(["documents", "create", "sachstandsbericht", "SV-1", "--actor", LANDRAT, "--set", "title=x"])
    capsys.readouterr()
    assert run(["fire", "SV-1", "kenntnis_nehmen", "--actor", SITZ, "--set", "result=x"]) == 5
    assert "jetzt möglich: einbringen, zurueckziehen" in capsys.readouterr().err


def test_definitions_show_formats(env: dict[str, str], capsys: Cli) -> None:
    """`definitions show` prints a Mermaid state diagram or the normalised JSON."""
    assert run(["definitions", "show", "kreisstrategie", "--format", "mermaid"]) == 0
    mermaid = capsys.readouterr().out
    assert mermaid.startswith("stateDiagram-v2\n")
    assert "    [*] --> entwurf" in mermaid and "    bmk --> kreisausschuss: beraten" in mermaid
    assert "    kreistag --> kreistag: vertagen" in mermaid and "    beschlossen --> [*]" in mermaid
    assert "kommunale_raete --> teilweise_abgelehnt: Beschluss gescheitert" in mermaid
    assert run(["definitions", "show", "kreisstrategie", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["workflow"] == "kreisstrategie" and len(data["states"]["kommunale_raete"]["parallel"]["bodies"]) == 11
    zurueck = next(t for t in data["transitions"] if t["trigger"] == "zurueckziehen")
    assert zurueck["sources"] == ["entwurf", "bmk", "kreisausschuss", "kreistag"]


def test_console_script_runs_without_traceback(tmp_path: Path, defs_dir: Path) -> None:
    """The installed `councilflow` command reports a broken database URL in one line, no traceback."""
    exe = Path(sys.executable).parent / "councilflow"
    env = {**os.environ, "COUNCILFLOW_DEFINITIONS": str(defs_dir),
           "COUNCILFLOW_DB": f"sqlite:///{tmp_path}/missing-dir/x.db"}
    done = subprocess.run([str(exe), "status", "SV-1"], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 9, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert done.stderr.startswith("councilflow: Fehler: ")


def test_demo_runs_the_seed(tmp_path: Path, capsys: Cli) -> None:
    """`councilflow demo` plays SV-9-1809 and the strategy through all 11 councils and verifies."""
    assert run(["demo", "--db", f"sqlite:///{tmp_path}/demo.db",
                "--definitions", str(Path(__file__).parent.parent / "definitions")]) == 0
    out = capsys.readouterr().out
    assert "Zur Kenntnis genommen (zur_kenntnis_genommen) seit 27.08.2020" in out
    assert "Rat der Gemeinde Nottuln           offen            Sitzung 17.12.2020 18:00  – vertagt, 1× vertagt" in out
    assert "  Zustand:           Beschlossen (beschlossen) seit 17.12.2020 20:00" in out
    # The Vorlage is released (vorlage_freigeben) in time at every stage but one: no false escalation, and
    # the one stage whose meeting came too late for the deadline gets the truthful notice instead.
    assert "Eskalation an" not in out
    assert "Hinweis (Frist bei Eintritt verstrichen) an digitalisierung@kreis-coesfeld.example" in out
    # 40 changes (the Kämmerei's sign-off among them), the first use of both definitions, 20 mails sent and
    # one skipped (its deadline ended first)
    assert "Kämmerei zeichnet SV-9-1809 mit" in out
    assert "Prüfpfad: intakt, 63 Einträge" in out
    assert "Erinnerung gesendet an sitzungsdienst@kreis-coesfeld.example (Frist „Einladung mit Vorlage" in out
    mails = list((tmp_path / "councilflow-mail" / "new").iterdir())
    assert len(mails) == int(out.split("Post: ")[1].split(" ")[0]) > 10
