"""Moving running papers to a new version of their workflow: mapped, audited, deadlines recomputed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.cli import run

from .conftest import LANDRAT, SITZ, SPEC


@pytest.fixture
def versions(tmp_path: Path, db_url: str, clock: FixedClock) -> tuple[Engine, Path]:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "sachstandsbericht.yaml").write_text((SPEC / "sachstandsbericht.yaml").read_text(),
                                                   encoding="utf-8")
    engine = Engine(SqlStore(db_url), DefinitionLibrary(folder), clock)
    engine.create("sachstandsbericht", "SV-1", LANDRAT, {"title": "im Entwurf"})
    engine.create("sachstandsbericht", "SV-2", LANDRAT, {"title": "im Ausschuss"})
    engine.fire("SV-2", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    engine.create("sachstandsbericht", "SV-3", LANDRAT, {"title": "erledigt"})
    engine.fire("SV-3", "zurueckziehen", LANDRAT)
    v2 = ((SPEC / "sachstandsbericht.yaml").read_text().replace("version: 1", "version: 2")
           .replace("  ausschuss:\n", "  fachausschuss:\n").replace("[ausschuss]", "[fachausschuss]")
           .replace("source: ausschuss", "source: fachausschuss").replace("dest: ausschuss", "dest: fachausschuss")
           .replace("[entwurf, ausschuss]", "[entwurf, fachausschuss]")
           .replace("  references: {type: list}", "  references: {type: list}\n  eilig: {type: bool, default: false}")
           .replace("remind: [{working_days: 2}]", "remind: [{working_days: 3}]"))
    (folder / "sachstandsbericht.yaml").write_text(v2, encoding="utf-8")
    clock.advance(timedelta(days=2))
    return Engine(SqlStore(db_url), DefinitionLibrary(folder), clock), folder


def test_dry_run_then_mapped_migration(versions: tuple[Engine, Path], db_url: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A dry run lists moves and refusals; the real run moves mapped papers and leaves the rest untouched."""
    engine, folder = versions
    args = ["migrate", "--workflow", "sachstandsbericht", "--to-version", "2", "--db", db_url,
            "--definitions", str(folder), "--now", "2020-08-06T09:00"]
    assert run([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["würde umstellen SV-1: entwurf → entwurf",
                   "belassen SV-2: den Zustand 'ausschuss' gibt es in Version 2 nicht; bitte mit --map "
                   "ausschuss=NEUER_ZUSTAND zuordnen",
                   "1 würden umgestellt, 1 belassen"]
    assert engine.status("SV-1").workflow_version == 1
    assert run([*args, "--map", "ausschuss=fachausschuss"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 umgestellt, 0 belassen"
    moved = engine.status("SV-2")
    assert (moved.workflow_version, moved.state, moved.fields["eilig"]) == (2, "fachausschuss", False)
    assert moved.meeting is not None and engine.status("SV-3").workflow_version == 1  # final papers stay
    last = engine.history("SV-2")[-1]
    assert (last.kind, last.from_state, last.to_state, last.payload["from_version"]) == (
        "migrate", "ausschuss", "fachausschuss", 1)
    [deadline] = engine.store.outbox.deadlines("SV-2")
    reminders = engine.store.outbox.reminders(deadline_id=deadline.id)
    assert [r.label for r in reminders] == ["3 Arbeitstage vor Fristablauf"]  # recomputed on version 2
    engine.fire("SV-2", "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    assert engine.status("SV-2").state == "zur_kenntnis_genommen"
    assert engine.status("SV-2", as_of="2020-08-05T12:00").state == "ausschuss"  # replayed on version 1
    assert engine.verify().ok


def test_wrong_target_version_is_refused(versions: tuple[Engine, Path]) -> None:
    """The target version must be the one in the definitions folder."""
    engine, _ = versions
    from workflow import InputError

    with pytest.raises(InputError, match="der Ordner der Ablaufdefinitionen hat sachstandsbericht Version 2, nicht 3"):
        engine.migrate("sachstandsbericht", 3, {})
