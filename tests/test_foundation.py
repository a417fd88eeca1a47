"""Regression tests of the foundation: one rule per concept, one replay, one commit path, time and
instants checked at the door, optimistic locking in the engine (each failed before)."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from workflow import (
    AuditIntegrityError,
    DefinitionError,
    DefinitionLibrary,
    Engine,
    FixedClock,
    InputError,
    NotAllowedNowError,
    SqlStore,
    load_definition,
)
from workflow.cli import run
from workflow.config import Settings
from workflow.paper import Change, apply, check_actor
from workflow.web import create_app

from .conftest import COUNCILS, FEDER, LANDRAT, SITZ, SPEC, contact, to_councils
from .test_migrate import versions  # noqa: F401  (the fixture: SV-1..3 on version 1, folder with version 2)
from .test_oparl_import import mappings  # noqa: F401

BERLIN = ZoneInfo("Europe/Berlin")
PROXIED = Settings(secret="s", trusted_header="X-Remote-User", trusted_proxies="127.0.0.1")


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run(list(args))
    return code, out.getvalue()


def test_a_migrated_paper_exports_and_replays(versions: tuple[Engine, Path], db_url: str,  # noqa: F811
                                              tmp_path: Path) -> None:
    """After `migrate`, the OParl export, the timeline and status as of a day read each entry with its own
    version (the export died with a KeyError before: the old state is gone in version 2)."""
    engine, folder = versions
    engine.migrate("sachstandsbericht", 2, {"ausschuss": "fachausschuss"})
    code, _ = _cli("export", "oparl", "--out", str(tmp_path / "out"), "--db", db_url, "--definitions", str(folder))
    assert code == 0
    papers = json.loads((tmp_path / "out" / "papers.json").read_text(encoding="utf-8"))
    [sv2] = [p for p in papers if p["reference"] == "SV-2"]
    assert [c["role"] for c in sv2["consultation"]] == ["Kenntnisnahme"]
    periods = engine.timeline("SV-2")
    assert [(p.state.state, p.label) for p in periods] == [
        ("entwurf", "Entwurf"), ("ausschuss", "Beratung im Ausschuss"), ("fachausschuss", "Beratung im Ausschuss")]
    code, _ = _cli("audit", "timeline", "SV-2", "--db", db_url, "--definitions", str(folder))
    assert code == 0
    assert engine.verify().ok


def test_one_email_rule_for_definitions_and_actors(tmp_path: Path) -> None:
    """A role member the loader accepts can act (an intranet host without a dot included), and what the
    engine refuses as an actor is refused at load; the message quotes the address once."""
    text = (SPEC / "sachstandsbericht.yaml").read_text(encoding="utf-8")
    member = next(line.split("[")[1].split("]")[0] for line in text.splitlines()
                  if line.strip().startswith("verfasser"))
    load_definition(text.replace(member, "landrat@intranet"), "sachstandsbericht.yaml")
    assert check_actor(" Landrat@Intranet ") == "landrat@intranet"
    for bad in ("landrat", "landrat@", "a@b@c", "land rat@kreis.example", "landrat@kreis..example"):
        with pytest.raises(DefinitionError, match=f"'{bad}' in Rolle 'verfasser' ist keine E-Mail-Adresse"):
            load_definition(text.replace(member, f'"{bad}"'), "sachstandsbericht.yaml")
        with pytest.raises(InputError, match=f"^die handelnde Person '{bad}' ist keine E-Mail-Adresse$"):
            check_actor(bad)


def test_imported_reminders_go_out_at_the_configured_morning_hour(
        engine: Engine, clock: FixedClock, db_url: str, defs_dir: Path, tmp_path: Path,
        mappings: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Imported papers and scheduled meetings plan their reminders like any change (morning hour 7 here;
    the importer had its own commit and used 8)."""
    monkeypatch.setenv("COUNCILFLOW_MORNING_HOUR", "7")
    engine.create("kreisstrategie", "KS-7", FEDER, {"title": "Strategie"})
    engine.fire("KS-7", "einbringen", FEDER)
    engine.set_meeting("KS-7", "2020-09-15T10:00", SITZ)
    clock.set(datetime(2020, 9, 16, 9, tzinfo=UTC))
    engine.fire("KS-7", "beraten", SITZ, values={"result": "einstimmig empfohlen"})
    engine.set_meeting("KS-7", "2020-10-27T16:00", SITZ)  # the Kreisausschuss: deadlines with reminders run
    assert _cli("export", "oparl", "--out", str(tmp_path / "x"), "--db", db_url, "--definitions",
                str(defs_dir))[0] == 0
    target = f"sqlite:///{tmp_path / 'imported.db'}"
    code, out = _cli("import", "oparl", str(tmp_path / "x"), "--mapping", str(mappings[1]), "--db", target,
                     "--definitions", str(defs_dir), "--now", "2020-09-17T12:00")
    assert code == 0 and "1 importiert" in out, out
    imported = Engine(SqlStore(target), DefinitionLibrary(defs_dir), clock)
    assert imported.status("KS-7").state == engine.status("KS-7").state
    reminders = [m for v in imported.deadlines("KS-7") for m in v.mails if m.kind == "remind"]
    assert reminders and {m.send_at.astimezone(BERLIN).hour for m in reminders} == {7}


def test_instants_are_utc_wherever_they_enter(engine: Engine, clock: FixedClock) -> None:
    """An aware datetime with an offset (Python API) is stored and shown in UTC."""
    to_councils(engine)
    plus_one = timezone(timedelta(hours=1))
    engine.set_meeting("KS-1", datetime(2020, 12, 7, 18, 0, tzinfo=plus_one), contact(COUNCILS[0]),
                       branch=COUNCILS[0])
    entry = engine.history("KS-1")[-1]
    assert entry.payload["meeting"] == "2020-12-07T17:00:00+00:00"
    [branch] = [b for b in engine.status("KS-1").to_json()["branches"] if b["body"] == COUNCILS[0]]
    assert branch["meeting"] == "2020-12-07T17:00:00+00:00"
    naive = datetime(2020, 12, 8, 18, 0)  # local time of the workflow's zone
    engine.set_meeting("KS-1", naive, contact(COUNCILS[1]), branch=COUNCILS[1])
    assert engine.history("KS-1")[-1].payload["meeting"] == "2020-12-08T17:00:00+00:00"


def test_time_only_moves_forward_per_paper(engine: Engine, clock: FixedClock) -> None:
    """A change dated before the paper's newest entry is refused (exit 5); as-of keeps working."""
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Bericht"})
    engine.fire("SV-1", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    clock.set(clock.now() - timedelta(days=1))
    with pytest.raises(NotAllowedNowError, match="die Zeit läuft nur vorwärts") as caught:
        engine.fire("SV-1", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    assert caught.value.exit_code == 5
    assert engine.status("SV-1").state == "ausschuss" and len(engine.history("SV-1")) == 2
    assert engine.status("SV-1", as_of="2020-08-04T12:00").state == "ausschuss"
    engine.create("sachstandsbericht", "SV-2", LANDRAT, {"title": "anderes Papier"})  # other papers may


def test_time_going_backwards_is_refused_by_the_cli(db_url: str, defs_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The same through `--now`: exit 5 with the message, nothing written."""
    base = ["--db", db_url, "--definitions", str(defs_dir)]
    assert run(["documents", "create", "sachstandsbericht", "SV-1", "--actor", LANDRAT, "--set", "title=x",
                "--now", "2020-08-10T09:00", *base]) == 0
    assert run(["fire", "SV-1", "einbringen", "--actor", LANDRAT, "--set", "meeting=2020-08-27T17:00",
                "--now", "2020-08-09T09:00", *base]) == 5
    assert "die Zeit läuft nur vorwärts" in capsys.readouterr().err
    assert run(["status", "SV-1", "--as-of", "2020-08-11", *base]) == 0


def test_a_broken_trail_is_an_error_not_a_crash() -> None:
    """Replaying entries that data broke names the entry instead of failing an assert."""
    definition = load_definition((SPEC / "sachstandsbericht.yaml").read_text(encoding="utf-8"),
                                 "sachstandsbericht.yaml")
    at = datetime(2020, 8, 4, tzinfo=UTC)
    with pytest.raises(AuditIntegrityError, match="ein Prüfpfad beginnt mit 'create'"):
        apply(definition, None, Change("transition", "einbringen", "entwurf", "ausschuss", LANDRAT, at))
    created = apply(definition, None, Change("create", "create", None, "entwurf", LANDRAT, at))
    with pytest.raises(AuditIntegrityError, match=r"lässt sich .* nicht nachspielen"):
        apply(definition, created, Change("transition", "x", "entwurf", "nirgendwo", LANDRAT, at))


def test_the_version_check_is_the_writing_transaction(engine: Engine, clock: FixedClock,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A change that lands between the web's read and its write makes the web's request a 409, and only
    one change is written (the web checked the version before calling the engine: a race)."""
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "Bericht"})
    version = engine.load("SV-1").version
    other = Engine(engine.store, engine.library, clock)  # another process on the same database
    original = engine.paper_for

    def read_then_someone_else_writes(reference: str, who: object) -> object:
        paper = original(reference, who)  # type: ignore[arg-type]
        other.fire("SV-1", "zurueckziehen", LANDRAT)
        return paper

    monkeypatch.setattr(engine, "paper_for", read_then_someone_else_writes)
    with TestClient(create_app(engine, PROXIED), client=("127.0.0.1", 1)) as client:
        response = client.post("/api/papers/SV-1/fire", headers={"X-Remote-User": LANDRAT},
                               json={"trigger": "einbringen", "values": {"meeting": "2020-08-27T17:00"},
                                     "version": version})
    assert response.status_code == 409 and "von jemand anderem geändert" in response.json()["detail"]
    assert [r.trigger for r in engine.history("SV-1")] == ["create", "zurueckziehen"]


def test_front_ends_ask_the_engine_what_a_person_may_do(engine: Engine) -> None:
    """The actions offered are those the engine accepts: per branch, only the body's own contact."""
    from workflow.access import Person

    to_councils(engine)
    paper = engine.load("KS-1")
    [action] = [a for a in engine.actions(paper, Person(contact(COUNCILS[2]))) if a.trigger == "beschliessen"]
    assert action.branches == (COUNCILS[2],)
    assert engine.actions(paper, Person(FEDER, auditor=True)) == []
    engine.fire("KS-1", "beschliessen", contact(COUNCILS[2]), branch=COUNCILS[2], values={"result": "beschlossen"})


def test_json_field_values_mean_the_same_for_create_and_fire(engine: Engine) -> None:
    """A list sent as JSON is the same list whether it creates the paper or comes with a trigger (fire
    turned it into the text "['SV-1', 'SV-2']" before); other shapes are a 400 naming the field."""
    from workflow.values import field_texts

    assert field_texts({"references": ["SV-1", "SV-2"], "public": False, "n": 3, "title": None}, "values") == \
        {"references": "SV-1\nSV-2\n", "public": "false", "n": "3"}
    with pytest.raises(InputError, match=r"^values: Feld 'references': ein Listeneintrag muss eine Zeile sein"):
        field_texts({"references": ["A\nB"]}, "values")
    with TestClient(create_app(engine, PROXIED), client=("127.0.0.1", 1)) as client:
        who = {"X-Remote-User": LANDRAT}
        created = client.post("/api/papers", headers=who, json={
            "workflow": "sachstandsbericht", "reference": "SV-1", "fields": {"title": "x", "references": ["A-1"]}})
        assert created.status_code == 201 and created.json()["fields"]["references"] == ["A-1"]
        for n, kept in enumerate((["Beschluss 12, Anlage 3"], ["Beschluss 12, Anlage 3", "SV-9-1334"]), 2):
            created = client.post("/api/papers", headers=who, json={  # JSON list items are kept as given
                "workflow": "sachstandsbericht", "reference": f"SV-{n}", "fields": {"title": "x", "references": kept}})
            assert created.status_code == 201 and created.json()["fields"]["references"] == kept
        bad = client.post("/api/papers/SV-1/fire", headers=who, json={"trigger": "vertagen",
                                                                       "values": {"result": {"x": 1}}})
        assert bad.status_code == 400 and "das Feld 'result' muss Text" in bad.json()["detail"]
