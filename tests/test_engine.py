"""The engine contract, run against SQLite and PostgreSQL: roles, fields, joins, meetings, pinning."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workflow import (
    ConflictError,
    DefinitionLibrary,
    Engine,
    FixedClock,
    InputError,
    NotAllowedNowError,
    NotFoundError,
    NotPermittedError,
    SqlStore,
    verify,
)

from .conftest import COUNCILS, FEDER, LANDRAT, SITZ, SPEC, contact, to_councils

SV = "SV-9-1809"
SV_TITLE = "Digitalisierungsstrategie für den Kreis Coesfeld, Sachstandsbericht"


def create_sv(engine: Engine) -> None:
    engine.create("sachstandsbericht", SV, LANDRAT, {
        "title": SV_TITLE, "department": "01 - Büro des Landrats",
        "references": "SV-9-1334, SV-9-1390,SV-9-1577 ,SV-9-1728",
    })


def test_create_applies_defaults_and_parses_lists(engine: Engine) -> None:
    """A new paper starts in the initial state with typed fields and defaults applied."""
    create_sv(engine)
    st = engine.status(SV)
    assert st.state == "entwurf"
    assert st.fields == {"title": SV_TITLE, "department": "01 - Büro des Landrats", "public": True,
                         "references": ["SV-9-1334", "SV-9-1390", "SV-9-1577", "SV-9-1728"]}
    assert st.triggers == ("einbringen", "zurueckziehen")


def test_create_needs_required_field_and_known_fields(engine: Engine) -> None:
    """A missing required field or an unknown one is refused and nothing is stored."""
    with pytest.raises(InputError, match=r"das Feld 'title' ist Pflicht: bitte --set title=… angeben"):
        engine.create("sachstandsbericht", SV, LANDRAT, {})
    with pytest.raises(InputError, match=r"unbekanntes Feld 'titel' \(gemeint: 'title'\?\)"):
        engine.create("sachstandsbericht", SV, LANDRAT, {"titel": "x"})
    with pytest.raises(InputError, match=r"Feld 'public': 'vielleicht' ist kein Ja/Nein-Wert"):
        engine.create("sachstandsbericht", SV, LANDRAT, {"title": "x", "public": "vielleicht"})
    assert engine.store.references() == []
    assert engine.store.count_audit() == 0


def test_create_checks_role_and_duplicates(engine: Engine) -> None:
    """Only a role of a transition out of the initial state may create; a reference exists once."""
    with pytest.raises(NotPermittedError, match=r"darf keine Vorlagen des Ablaufs 'sachstandsbericht' anlegen: "
                                                r"nötig ist eine der Rollen verfasser"):
        engine.create("sachstandsbericht", SV, SITZ, {"title": "x"})
    create_sv(engine)
    with pytest.raises(ConflictError, match="eine Vorlage mit der Nummer 'SV-9-1809' gibt es bereits"):
        create_sv(engine)
    with pytest.raises(NotFoundError, match=r"kein Ablauf 'sachstandbericht'.*gemeint: 'sachstandsbericht'"):
        engine.create("sachstandbericht", "X-1", LANDRAT, {"title": "x"})


def test_sachstandsbericht_path_records_meeting_and_result(engine: Engine, clock: FixedClock) -> None:
    """einbringen requires the meeting and sets it; kenntnis_nehmen requires a result."""
    create_sv(engine)
    with pytest.raises(InputError, match=r"'einbringen' braucht meeting: bitte --set meeting=… angeben"):
        engine.fire(SV, "einbringen", LANDRAT)
    engine.fire(SV, "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    st = engine.status(SV)
    assert st.state == "ausschuss" and st.body == "afwk"
    assert st.meeting == datetime(2020, 8, 27, 15, 0, tzinfo=UTC)  # 17:00 CEST
    with pytest.raises(InputError, match=r"'kenntnis_nehmen' braucht result"):
        engine.fire(SV, "kenntnis_nehmen", SITZ, values={"result": "  "})
    clock.advance(timedelta(days=23))
    engine.fire(SV, "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    st = engine.status(SV)
    assert (st.state, st.final, st.result, st.triggers) == ("zur_kenntnis_genommen", True,
                                                           "zur Kenntnis genommen", ())
    kinds = [(r.kind, r.trigger, r.from_state, r.to_state) for r in engine.history(SV)]
    # Nobody sent mail meanwhile: the reminder that fell due on the way is recorded as skipped when the
    # decision ended its deadline.
    assert kinds == [("create", "create", None, "entwurf"),
                     ("transition", "einbringen", "entwurf", "ausschuss"),
                     ("transition", "kenntnis_nehmen", "ausschuss", "zur_kenntnis_genommen"),
                     ("mail", "remind", None, "")]
    assert engine.history(SV)[-1].payload["outcome"] == "skipped"


def test_wrong_state_wrong_role_unknown_trigger(engine: Engine) -> None:
    """Errors name the paper, the state, what is possible now and the roles needed."""
    create_sv(engine)
    with pytest.raises(NotAllowedNowError, match=r"SV-9-1809 ist im Zustand 'entwurf' \(Entwurf\); 'kenntnis_nehmen' "
                                                 r"ist "
                                                 r"dort nicht möglich; jetzt möglich: einbringen, zurueckziehen"):
        engine.fire(SV, "kenntnis_nehmen", SITZ, values={"result": "x"})
    with pytest.raises(NotPermittedError, match=r"sitzungsdienst@kreis-coesfeld.example darf 'einbringen'"
                                                r".*nötig ist eine der Rollen verfasser"):
        engine.fire(SV, "einbringen", SITZ, values={"meeting": "2020-08-27T17:00"})
    with pytest.raises(InputError, match=r"unbekannter Übergang 'einbrigen'.*gemeint: 'einbringen'"):
        engine.fire(SV, "einbrigen", LANDRAT)
    with pytest.raises(NotFoundError, match="keine Vorlage mit der Nummer 'SV-0'"):
        engine.fire("SV-0", "einbringen", LANDRAT)
    with pytest.raises(InputError, match=r"'2020-13-01' ist kein Zeitpunkt nach ISO 8601"):
        engine.fire(SV, "einbringen", LANDRAT, values={"meeting": "2020-13-01"})
    assert [r.kind for r in engine.history(SV)] == ["create"]


def test_vertagen_stays_and_moves_the_meeting(engine: Engine) -> None:
    """dest '=' re-enters the state with the new meeting from `requires: [meeting]`."""
    create_sv(engine)
    engine.fire(SV, "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    engine.fire(SV, "vertagen", SITZ, values={"result": "vertagt", "meeting": "2020-09-24T17:00"})
    st = engine.status(SV)
    assert st.state == "ausschuss" and st.result == "vertagt"
    assert st.meeting == datetime(2020, 9, 24, 15, 0, tzinfo=UTC)
    assert engine.history(SV)[-1].to_state == "ausschuss"


def test_meeting_command_sets_and_moves(engine: Engine) -> None:
    """Meetings are set and moved by roles of the state's transitions, and audited with the old value."""
    engine.create("kreisstrategie", "KS-1", FEDER, {"title": "Strategie"})
    with pytest.raises(NotAllowedNowError, match="wartet auf keine Sitzung"):
        engine.set_meeting("KS-1", "2020-09-15T10:00", SITZ)
    engine.fire("KS-1", "einbringen", FEDER)
    with pytest.raises(NotPermittedError, match=r"darf die Sitzung von KS-1 im Zustand 'bmk' nicht festlegen"):
        engine.set_meeting("KS-1", "2020-09-15T10:00", FEDER)
    engine.set_meeting("KS-1", "2020-09-15T10:00", SITZ)
    engine.set_meeting("KS-1", "2020-09-16T10:00+02:00", SITZ)
    assert engine.status("KS-1").meeting == datetime(2020, 9, 16, 8, 0, tzinfo=UTC)
    last = engine.history("KS-1")[-1]
    assert last.kind == "meeting" and last.payload["previous"] == "2020-09-15T08:00:00+00:00"
    with pytest.raises(InputError, match="hat keine Zweige; --branch bitte weglassen"):
        engine.set_meeting("KS-1", "2020-09-15T10:00", SITZ, branch="rat_olfen")


def test_leaving_a_state_clears_its_meeting(engine: Engine) -> None:
    """The next consultation starts without a meeting unless the trigger set one."""
    engine.create("kreisstrategie", "KS-1", FEDER, {"title": "Strategie"})
    engine.fire("KS-1", "einbringen", FEDER)
    engine.set_meeting("KS-1", "2020-09-15T10:00", SITZ)
    engine.fire("KS-1", "beraten", SITZ, values={"result": "empfohlen"})
    st = engine.status("KS-1")
    assert st.state == "kreisausschuss" and st.meeting is None


def test_branch_triggers_and_join_all(engine: Engine) -> None:
    """Each council decides its own branch; when all adopted the engine moves to on_success."""
    to_councils(engine)
    st = engine.status("KS-1")
    assert st.state == "kommunale_raete" and [b.status for b in st.branches] == ["open"] * 11
    with pytest.raises(InputError, match=r"wirkt auf einen Zweig; bitte mit --branch nennen, einer von rat_ascheberg"):
        engine.fire("KS-1", "beschliessen", SITZ, values={"result": "beschlossen"})
    with pytest.raises(InputError, match=r"'rat_olfn' ist kein Zweig des Zustands 'kommunale_raete' \(gemeint: "
                                         r"'rat_olfen'\?\)"):
        engine.fire("KS-1", "beschliessen", SITZ, branch="rat_olfn", values={"result": "beschlossen"})
    with pytest.raises(NotPermittedError, match=r"hauptamt@olfen.example darf 'beschliessen' an KS-1 für den "
                                                r"Zweig 'rat_senden' nicht auslösen: nötig ist eine der Rollen body "
                                                r"\(hauptamt@senden.example\), sitzungsdienst"):
        engine.fire("KS-1", "beschliessen", contact("rat_olfen"), branch="rat_senden", values={"result": "ja"})
    for body in COUNCILS[:-1]:
        changes = engine.fire("KS-1", "beschliessen", contact(body), branch=body, values={"result": "beschlossen"})
        assert [c.kind for c in changes] == ["branch"]
    with pytest.raises(NotAllowedNowError, match="der Zweig 'rat_olfen' ist bereits abgeschlossen"):
        engine.fire("KS-1", "beschliessen", SITZ, branch="rat_olfen", values={"result": "nochmal"})
    changes = engine.fire("KS-1", "beschliessen", SITZ, branch=COUNCILS[-1], values={"result": "beschlossen"})
    assert [(c.kind, c.actor, c.to_state) for c in changes] == [
        ("branch", SITZ, "kommunale_raete"), ("join", "system", "beschlossen")]
    assert engine.status("KS-1").state == "beschlossen"


def test_join_all_fails_at_first_rejection_and_closes_the_rest(engine: Engine) -> None:
    """One rejection ends `join: all`; the open branches are closed as not needed, by `system`."""
    to_councils(engine)
    engine.fire("KS-1", "beschliessen", contact("rat_olfen"), branch="rat_olfen", values={"result": "ja"})
    changes = engine.fire("KS-1", "ablehnen", contact("rat_senden"), branch="rat_senden",
                          values={"result": "abgelehnt"})
    assert [c.kind for c in changes] == ["branch"] + ["close"] * 9 + ["join"]
    assert {c.branch for c in changes if c.kind == "close"} == set(COUNCILS) - {"rat_olfen", "rat_senden"}
    assert changes[-1].to_state == "teilweise_abgelehnt" and changes[-1].payload["join"] == "failure"
    assert engine.status("KS-1").state == "teilweise_abgelehnt"


def test_branch_deferral_moves_the_branch_meeting(engine: Engine) -> None:
    """`vertagen` on a branch keeps it open, needs a new meeting and counts the deferral."""
    to_councils(engine)
    engine.set_meeting("KS-1", "2020-11-16T18:00", contact("rat_nottuln"), branch="rat_nottuln")
    with pytest.raises(InputError, match="braucht meeting"):
        engine.fire("KS-1", "vertagen", contact("rat_nottuln"), branch="rat_nottuln", values={"result": "vertagt"})
    engine.fire("KS-1", "vertagen", contact("rat_nottuln"), branch="rat_nottuln",
                values={"result": "vertagt", "meeting": "2020-12-10T18:00"})
    b = {x.body: x for x in engine.status("KS-1").branches}["rat_nottuln"]
    assert (b.status, b.deferrals, b.result) == ("open", 1, "vertagt")
    assert b.meeting == datetime(2020, 12, 10, 17, 0, tzinfo=UTC)
    with pytest.raises(InputError, match="eine Sitzung je Zweig; bitte mit --branch nennen"):
        engine.set_meeting("KS-1", "2020-12-11T18:00", SITZ)


def test_quorum_join(tmp_path: Path, db_url: str, clock: FixedClock) -> None:
    """`join: {quorum: k}` succeeds at k adoptions and fails once k can no longer be reached."""
    folder = tmp_path / "quorum"
    folder.mkdir()

    text = (SPEC / "kreisstrategie.yaml").read_text().replace("join: all ", "join: {quorum: 8} ")
    assert "quorum: 8" in text
    (folder / "kreisstrategie.yaml").write_text(text)
    store = SqlStore(db_url)
    engine = Engine(store, DefinitionLibrary(folder), clock)
    to_councils(engine, "Q-1")
    for body in COUNCILS[:7]:
        engine.fire("Q-1", "beschliessen", contact(body), branch=body, values={"result": "ja"})
    changes = engine.fire("Q-1", "beschliessen", contact(COUNCILS[7]), branch=COUNCILS[7], values={"result": "ja"})
    assert [c.kind for c in changes] == ["branch", "close", "close", "close", "join"]
    assert engine.status("Q-1").state == "beschlossen"
    to_councils(engine, "Q-2")
    for body in COUNCILS[:3]:
        last = engine.fire("Q-2", "ablehnen", contact(body), branch=body, values={"result": "nein"})
    assert engine.status("Q-2").state == "kommunale_raete"
    last = engine.fire("Q-2", "ablehnen", contact(COUNCILS[3]), branch=COUNCILS[3], values={"result": "nein"})
    assert last[-1].to_state == "teilweise_abgelehnt"
    store.dispose()


def test_status_as_of_replays_the_trail(engine: Engine, clock: FixedClock) -> None:
    """--as-of answers where the paper stood at any instant, from the audit trail."""
    create_sv(engine)
    clock.advance(timedelta(hours=1))
    engine.fire(SV, "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    clock.set(datetime(2020, 8, 27, 17, 30, tzinfo=UTC))
    engine.fire(SV, "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    assert engine.status(SV, as_of="2020-08-04T09:30").state == "entwurf"  # 07:30 UTC
    mid = engine.status(SV, as_of="2020-08-20T12:00")
    assert (mid.state, mid.meeting, mid.version) == ("ausschuss", datetime(2020, 8, 27, 15, tzinfo=UTC), None)
    assert engine.status(SV, as_of="2020-08-28").state == "zur_kenntnis_genommen"
    with pytest.raises(InputError, match="noch nicht"):
        engine.status(SV, as_of="2020-08-01T00:00")


def test_stale_version_loses_cleanly(engine: Engine) -> None:
    """A change computed on an old version is refused as a conflict and writes nothing."""
    create_sv(engine)
    stale = engine.store.load(SV)
    engine.fire(SV, "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    before = engine.store.count_audit()
    from workflow.paper import Change

    change = Change("transition", "zurueckziehen", "entwurf", "zurueckgezogen", LANDRAT, stale.updated_at)
    definition = engine.definition_of(stale)
    with pytest.raises(ConflictError,
                       match="SV-9-1809 wurde inzwischen von jemand anderem geändert; bitte wiederholen"):
        engine.store.save(stale, definition, stale.state, [change])
    assert engine.store.count_audit() == before
    assert engine.status(SV).state == "ausschuss"
    assert verify(engine.store).ok


def test_paper_keeps_its_definition_version(tmp_path: Path, db_url: str, clock: FixedClock) -> None:
    """A paper runs on the definition it started on; a changed file needs a new version."""
    folder = tmp_path / "defs"
    folder.mkdir()

    original = (SPEC / "sachstandsbericht.yaml").read_text()
    (folder / "sachstandsbericht.yaml").write_text(original)
    store = SqlStore(db_url)
    engine = Engine(store, DefinitionLibrary(folder), clock)
    engine.create("sachstandsbericht", "A-1", LANDRAT, {"title": "alt"})

    changed = original.replace("label: Beratung im Ausschuss", "label: Beratung im Fachausschuss")
    (folder / "sachstandsbericht.yaml").write_text(changed)
    fresh = Engine(store, DefinitionLibrary(folder), clock)
    with pytest.raises(ConflictError, match=r"der Ablauf 'sachstandsbericht' Version 1 ist bereits mit anderem "
                                            r"Inhalt in "
                                            r"Gebrauch; für eine Änderung 'version' erhöhen"):
        fresh.create("sachstandsbericht", "A-2", LANDRAT, {"title": "neu"})

    (folder / "sachstandsbericht.yaml").write_text(changed.replace("version: 1", "version: 2"))
    newer = Engine(store, DefinitionLibrary(folder), clock)
    newer.create("sachstandsbericht", "A-3", LANDRAT, {"title": "neu"})
    newer.fire("A-1", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    newer.fire("A-3", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    old, new = newer.status("A-1"), newer.status("A-3")
    assert (old.workflow_version, old.state_label) == (1, "Beratung im Ausschuss")
    assert (new.workflow_version, new.state_label) == (2, "Beratung im Fachausschuss")
    store.dispose()


def test_history_and_verify_after_a_full_path(engine: Engine) -> None:
    """Every change is one chained entry; the chain verifies and its head is the last entry."""
    to_councils(engine)
    for body in COUNCILS:
        engine.fire("KS-1", "beschliessen", contact(body), branch=body, values={"result": "beschlossen"})
    records = engine.history("KS-1")
    assert [r.seq for r in records] == list(range(2, len(records) + 2))  # 1: the definition's first use
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    report = verify(engine.store)
    assert report.ok and report.entries == len(records) + 1 and report.head_hash == records[-1].hash


def test_bad_actor_and_reference_are_input_errors(engine: Engine) -> None:
    """Actors must be e-mail addresses; references must be printable."""
    with pytest.raises(InputError, match="ist keine E-Mail-Adresse"):
        engine.create("sachstandsbericht", SV, "landrat", {"title": "x"})
    with pytest.raises(InputError, match="enthält ein unsichtbares Zeichen oder Steuerzeichen"):
        engine.create("sachstandsbericht", "SV\n1", LANDRAT, {"title": "x"})
    with pytest.raises(InputError, match="muss 1 bis 120 Zeichen lang sein"):
        engine.create("sachstandsbericht", "S" * 121, LANDRAT, {"title": "x"})


def test_remembered_rows_never_act_on_stale_state(engine: Engine, db_url: str, defs_dir: Path,
                                                  clock: FixedClock) -> None:
    """A process that remembers a paper it wrote still sees what another process did since."""
    other = Engine(SqlStore(db_url), DefinitionLibrary(defs_dir), clock)
    create_sv(engine)
    engine.fire(SV, "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})  # engine remembers SV
    other.fire(SV, "vertagen", SITZ, values={"result": "vertagt", "meeting": "2020-09-24T17:00"})
    other.fire(SV, "kenntnis_nehmen", SITZ, values={"result": "zur Kenntnis genommen"})
    with pytest.raises(NotAllowedNowError, match="ist im Zustand 'zur_kenntnis_genommen'"):
        engine.fire(SV, "vertagen", SITZ, values={"result": "vertagt", "meeting": "2020-10-01T17:00"})
    assert [r.trigger for r in engine.history(SV)] == ["create", "einbringen", "vertagen", "kenntnis_nehmen"]
    assert engine.verify().ok
    other.store.dispose()
