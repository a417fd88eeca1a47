"""Random walks through both spec workflows: the stored paper always equals the computed one."""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflow import Engine, NotPermittedError
from workflow.paper import PaperState, apply, fold

_refs = itertools.count(1)
RESULTS = st.sampled_from(["beschlossen", "zur Kenntnis genommen", "vertagt", "einstimmig beschlossen", "ä ö ü ß"])


def _members(engine: Engine, reference: str, roles: tuple[str, ...], body: str | None) -> list[str]:
    definition = engine.definition_of(engine.store.load(reference))
    return sorted({m for r in roles for m in definition.members(r, body)})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), workflow=st.sampled_from(["kreisstrategie", "sachstandsbericht"]))
def test_random_walk_reloads_and_replays_identically(engine: Engine, data: st.DataObject, workflow: str) -> None:
    """After every step the reloaded paper equals the in-memory result and the trail replays to it."""
    ref = f"P-{next(_refs)}"
    creator = "digitalisierung@kreis-coesfeld.example" if workflow == "kreisstrategie" else \
        "buero.landrat@kreis-coesfeld.example"
    values = {"title": data.draw(st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and s.isprintable()))}
    engine.create(workflow, ref, creator, values)
    stored = engine.store.load(ref)
    definition = engine.definition_of(stored)
    model: PaperState = stored.state
    for _ in range(data.draw(st.integers(min_value=1, max_value=30), label="steps")):
        spec = definition.states[model.state]
        if spec.final:
            break
        engine.clock.advance(timedelta(minutes=data.draw(st.integers(0, 60 * 24 * 20))))  # type: ignore[attr-defined]
        options = [t for t in definition.transitions_from(model.state)]
        open_branches = [b.body for b in model.open_branches()]
        options = [t for t in options if t.branch is None or open_branches]
        t = data.draw(st.sampled_from(options), label="transition")
        branch = data.draw(st.sampled_from(open_branches), label="branch") if t.branch else None
        body = branch or (spec.consultation.body if spec.consultation else None)
        members = _members(engine, ref, t.roles, body)
        sets: dict[str, str] = {}
        if "result" in t.requires:
            sets["result"] = data.draw(RESULTS)
        if "meeting" in t.requires:
            day = data.draw(st.integers(1, 300))
            sets["meeting"] = (engine.clock.now() + timedelta(days=day)).isoformat()
        if data.draw(st.booleans(), label="intruder"):
            before = engine.store.count_audit()
            try:
                engine.fire(ref, t.trigger, "intruder@example.org", branch=branch, values=sets)
            except NotPermittedError:
                assert engine.store.count_audit() == before
                continue
            raise AssertionError("an actor without a role fired a trigger")
        changes = engine.fire(ref, t.trigger, data.draw(st.sampled_from(members)), branch=branch, values=sets)
        for change in changes:
            model = apply(definition, model, change)
        reloaded = engine.store.load(ref).state
        assert reloaded == model
        assert fold(definition, None, (r.to_change() for r in engine.history(ref))) == model
