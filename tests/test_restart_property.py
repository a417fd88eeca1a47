"""Restart after every step (hypothesis): random workflows in the definition language × random paths. One
engine runs on; another is thrown away and rebuilt from its database before every step. Both end equal."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from workflow import DefinitionError, DefinitionLibrary, Engine, FixedClock, SqlStore, load_definition
from workflow import machine as machine_module

AMT = "amt@stadt.example"
_runs = itertools.count()


@st.composite
def workflows(draw: st.DrawFn) -> str:
    """A valid definition: a chain of consultation states to a final one, extra edges, maybe a parallel state."""
    n = draw(st.integers(2, 5))
    states = [f"s{i}" for i in range(n)]
    bodies = [f"b{i}" for i in range(4)]
    closed = draw(st.sampled_from(["[]", '["12-24", "12-31"]', '["2020-10-05", "2020-11-02"]']))
    lines = ["workflow: zufall", "version: 1", "title: Zufall", "timezone: Europe/Berlin",
             f"calendar: {{holidays: DE-NW, closed: {closed}}}", f"roles: {{amt: [{AMT}]}}", "bodies:"]
    lines += [f"  {b}: {{name: Gremium {b}, invitation_days: {draw(st.integers(0, 9))}, contact: {b}@stadt.example}}"
              for b in bodies]
    lines += ["fields: {title: {type: text, required: true}}", "states:", "  entwurf: {initial: true}"]
    parallel_at = draw(st.sampled_from([None, *states]))
    join = draw(st.sampled_from(["all", "{quorum: 1}", "{quorum: 2}", "none"]))
    for i, s in enumerate(states):
        if s == parallel_at:
            extra = "" if join == "none" else ", on_success: fertig, on_failure: gescheitert"
            lines.append(f"  {s}: {{parallel: {{bodies: [b0, b1, b2], role: Anhörung, join: {join}{extra}}}}}")
        else:
            lines.append(f"  {s}: {{consultation: {{body: {bodies[i % 4]}, role: Beratung}}}}")
    lines += ["  fertig: {final: true}", "  gescheitert: {final: true}", "transitions:",
              "  - {trigger: einbringen, source: entwurf, dest: s0, roles: [amt]}"]
    for i, s in enumerate(states):
        nxt = states[i + 1] if i + 1 < n else "fertig"
        if s == parallel_at:
            lines += [f"  - {{trigger: zustimmen, source: {s}, branch: adopted, roles: [body, amt], "
                      "requires: [result]}",
                      f"  - {{trigger: ablehnen, source: {s}, branch: rejected, roles: [body, amt]}}",
                      f"  - {{trigger: vertagen, source: {s}, branch: deferred, roles: [body], "
                      "requires: [meeting]}"]
            if join == "none":
                lines.append(f"  - {{trigger: weiter, source: {s}, dest: {nxt}, roles: [amt]}}")
            continue
        lines.append(f"  - {{trigger: weiter, source: {s}, dest: {nxt}, roles: [amt], requires: [result]}}")
        if draw(st.booleans()):
            lines.append(f"  - {{trigger: vertagen, source: {s}, dest: \"=\", roles: [amt], "
                         "requires: [result, meeting]}")
        if draw(st.booleans()):
            back = draw(st.sampled_from(states[: i + 1]))
            if back != s:
                lines.append(f"  - {{trigger: zurueck, source: {s}, dest: {back}, roles: [amt]}}")
    lines.append('  - {trigger: abbrechen, source: "*", dest: gescheitert, roles: [amt]}')
    done_by = draw(st.booleans())
    if done_by:  # an internal trigger that marks the running "dauer" deadline done
        lines.append(f"  - {{trigger: erledigt_melden, source: [{', '.join(states)}], internal: true, roles: [amt]}}")
    lines += ["deadlines:",
              f"  - {{name: ladung, states: [{', '.join(states)}], due: {{before: meeting, invitation_period: true}}, "
              "remind: [{days: 2}], notify: [amt]}",
              f"  - {{name: dauer, states: [{', '.join(states)}], due: {{after: entered, working_days: "
              f"{draw(st.integers(1, 15))}}}, remind: [{{working_days: 1}}], notify: [body], "
              "escalate: {after: {days: 1}, notify: [amt]}" + (", done_by: [erledigt_melden]}" if done_by else "}")]
    return "\n".join(lines) + "\n"


def _fresh(url: str, folder: Path, now: datetime) -> Engine:
    machine_module._cache.clear()  # nothing survives the "restart" but the database and the files
    return Engine(SqlStore(url), DefinitionLibrary(folder), FixedClock(now))


def _signature(engine: Engine, ref: str) -> tuple[Any, ...]:

    outbox = engine.store.outbox
    deadlines = [(d.name, d.branch, d.due_at) for d in outbox.deadlines(ref)]
    mails = [(r.kind, r.label, r.send_at, r.recipients) for r in outbox.reminders(reference=ref)]
    history = [(r.kind, r.trigger, r.from_state, r.to_state, r.branch, r.actor, r.at, r.payload_text)
               for r in engine.history(ref)]
    return engine.status(ref).to_json(), deadlines, mails, history


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(text=workflows(), data=st.data())
def test_restart_after_every_step_changes_nothing(tmp_path: Path, text: str, data: st.DataObject) -> None:
    """The engine rebuilt from the database before every step reaches exactly what the steady one reaches."""
    try:
        load_definition(text, "zufall.yaml", expect_id="zufall")
    except DefinitionError:
        assume(False)
    run = next(_runs)
    folder = tmp_path / f"defs{run}"
    folder.mkdir()
    (folder / "zufall.yaml").write_text(text, encoding="utf-8")
    now = datetime(2020, 8, 4, 7, tzinfo=UTC)
    steady = _fresh(f"sqlite:///{tmp_path}/steady{run}.db", folder, now)
    restarted_url = f"sqlite:///{tmp_path}/restarted{run}.db"
    for engine in (steady, _fresh(restarted_url, folder, now)):
        engine.create("zufall", "P-1", AMT, {"title": "Zufall"})
    for _ in range(data.draw(st.integers(1, 15), label="steps")):
        now += timedelta(hours=data.draw(st.integers(1, 200), label="hours"))
        steady.clock.set(now)  # type: ignore[attr-defined]
        restarted = _fresh(restarted_url, folder, now)
        status = steady.status("P-1")
        if status.final:
            break
        open_branches = [b.body for b in status.branches if b.status == "open"]
        choices: list[tuple[str, ...]] = [("meeting", b) for b in open_branches]
        if status.body:
            choices.append(("meeting", ""))
        definition = steady.definition_of(steady.store.load("P-1"))
        for t in definition.transitions_from(status.state):
            if t.branch:
                choices += [("fire", t.trigger, b) for b in open_branches]
            else:
                choices.append(("fire", t.trigger, ""))
        choice = data.draw(st.sampled_from(choices), label="action")
        meeting = (now + timedelta(days=data.draw(st.integers(1, 40), label="days"))).isoformat()
        for engine in (steady, restarted):
            if choice[0] == "meeting":
                branch = choice[1] or None
                engine.set_meeting("P-1", meeting, f"{branch}@stadt.example" if branch else AMT, branch=branch)
            else:
                trigger, branch = choice[1], choice[2] or None
                actor = f"{branch}@stadt.example" if branch else AMT
                engine.fire("P-1", trigger, actor, branch=branch,
                            values=_values(definition, status.state, trigger, branch, meeting))
        assert _signature(steady, "P-1") == _signature(_fresh(restarted_url, folder, now), "P-1")
    assert steady.verify().ok and _fresh(restarted_url, folder, now).verify().ok


def _values(definition: Any, state: str, trigger: str, branch: str | None, meeting: str) -> dict[str, str]:
    """What a step sets: a result (none for an internal trigger), and the meeting where the target needs one."""
    t = definition.find(state, trigger)
    if t is not None and t.internal:
        return {}
    if _needs_meeting(definition, state, trigger, branch):
        return {"result": "Ergebnis", "meeting": meeting}
    return {"result": "Ergebnis"}


def _needs_meeting(definition: Any, state: str, trigger: str, branch: str | None) -> bool:
    t = definition.find(state, trigger)
    if t is None:
        return False
    if t.branch is not None:
        return bool(t.branch == "deferred")
    target = t.dest_for(state)
    return target is not None and definition.states[target].consultation is not None
