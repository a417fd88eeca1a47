"""Language extension `join: none`: branches that only record outcomes (hearings), beside a consultation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workflow import DefinitionError, DefinitionLibrary, Engine, FixedClock, SqlStore, load_definition

HERE = Path(__file__).parent
RAT = "ratsdienst@stadt.example"


@pytest.fixture
def hearing(tmp_path: Path, db_url: str, clock: FixedClock) -> Engine:
    folder = tmp_path / "defs"
    folder.mkdir()
    shutil.copy(HERE / "good_definitions" / "anhoerung.yaml", folder)
    return Engine(SqlStore(db_url), DefinitionLibrary(folder), clock)


def test_hearings_record_outcomes_while_the_council_decides(hearing: Engine) -> None:
    """A hearing outcome moves nothing; the council's decision leaves the state whatever the hearings say."""
    hearing.create("anhoerung", "V-1", RAT, {"title": "Satzung"})
    hearing.fire("V-1", "einbringen", RAT)
    hearing.set_meeting("V-1", "2025-12-16T09:00", RAT)
    hearing.set_meeting("V-1", "2025-12-03T17:00", "or-a@stadt.example", branch="or_a")
    st = hearing.status("V-1")
    assert st.body == "gr" and st.meeting is not None and [b.meeting is not None for b in st.branches] == [True, False]
    assert [c.kind for c in hearing.fire("V-1", "anhoeren", "or-a@stadt.example", branch="or_a",
                                         values={"result": "mehrheitlich abgelehnt"})] == ["branch"]
    assert hearing.status("V-1").state == "gemeinderat" and hearing.status("V-1").hearings
    running = {(d.name, d.branch) for d in hearing.store.outbox.deadlines("V-1")}
    assert running == {("ladung", "")}  # or_a decided; or_b has no meeting yet
    hearing.fire("V-1", "vertagen", RAT, values={"result": "vertagt", "meeting": "2026-01-27T15:30"})
    hearing.fire("V-1", "anhoeren", "or-b@stadt.example", branch="or_b", values={"result": "Kenntnisnahme"})
    hearing.fire("V-1", "beschliessen", RAT, values={"result": "mehrheitlich beschlossen"})
    assert hearing.status("V-1").state == "beschlossen"
    assert hearing.verify().ok


def test_join_none_rules() -> None:
    """join: none has no on_success; consultation and parallel together need join: none."""
    text = (HERE / "good_definitions" / "anhoerung.yaml").read_text()
    with pytest.raises(DefinitionError,
                       match=r"hat join: none, das nirgendwohin weiterführt: entfernen Sie on_success"):
        load_definition(text.replace("join: none}", "join: none, on_success: beschlossen}"), "a.yaml")
    with pytest.raises(DefinitionError, match=r"kann nicht zugleich consultation und parallel haben, außer der join "
                                              r"von parallel ist none"):
        load_definition(text.replace("join: none}", "join: all, on_success: beschlossen, on_failure: abgelehnt}"),
                        "a.yaml")
