"""The dry run of the shipped 11-council scenario over a year, beside a bare loop.

Run: `make bench` (or `.venv/bin/python bench/bench_simulate.py [--rounds 5]`).
Target (issue 12): `definitions simulate kreisstrategie definitions/scenarios/kreisstrategie.yaml` ≤ 1 s.

Measured, median of the rounds, alternating:

- simulate: read and check the scenario, play it with :func:`workflow.simulate.simulate` (a MemoryStore, a
  FixedClock, the dispatcher delivering every mail into a MemoryTransport at its moment, with the daily
  digests as `serve` queues them) and format the table; the definitions are loaded once (as by the command);
- the same without digests (`--no-digest`);
- the bare loop: the same engine calls (create, then each step's fire / set_meeting / done with the clock set
  to the step's moment) on a MemoryStore with a FixedClock, nothing else: no dispatcher, no ticking, no mail
  composed, no events collected, no formatting. It is what the engine itself costs for the path; the rest of
  the dry run is delivering and rendering the mails.

Beside them, once: the whole command in this process (`workflow.cli.run`, definitions and templates loaded
and checked), without the interpreter's start.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
from pathlib import Path

from notifier.dispatch import check_templates
from workflow import DefinitionLibrary, Engine, FixedClock
from workflow.config import Settings
from workflow.simulate import Scenario, load_scenario, render, simulate
from workflow.store.memory import MemoryStore

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "definitions" / "scenarios" / "kreisstrategie.yaml"
WORKFLOW = "kreisstrategie"


def dry_run(library: DefinitionLibrary, digests: bool) -> tuple[float, int]:
    start = time.perf_counter()
    scenario = load_scenario(SCENARIO, library.current(WORKFLOW)[0].timezone)
    sim = simulate(library, WORKFLOW, scenario, Settings(), digests=digests)
    text = render(sim, "table")
    elapsed = time.perf_counter() - start
    assert sim.refused is None and text
    return elapsed, len(sim.messages)


def bare_loop(library: DefinitionLibrary, scenario: Scenario) -> float:
    """Only the engine calls of the scenario, on a MemoryStore."""
    start = time.perf_counter()
    clock = FixedClock(scenario.start)
    engine = Engine(MemoryStore("bare"), library, clock)
    engine.init()
    engine.create(WORKFLOW, scenario.reference, scenario.actor, scenario.fields)
    for step in scenario.steps:
        clock.set(step.at)
        actor = step.actor or scenario.actor
        if step.action == "fire":
            engine.fire(scenario.reference, step.target, actor, branch=step.branch, values=step.values)
        elif step.action == "meeting":
            assert step.meeting is not None
            engine.set_meeting(scenario.reference, step.meeting, actor, branch=step.branch)
        else:
            engine.done(scenario.reference, step.target, actor, branch=step.branch, note=step.note)
    assert engine.status(scenario.reference).state == "beschlossen"
    return time.perf_counter() - start


def whole_command() -> float:
    from workflow.cli import run

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = run(["definitions", "simulate", WORKFLOW, str(SCENARIO), "--definitions", str(ROOT / "definitions")])
    assert code == 0
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    library = DefinitionLibrary(ROOT / "definitions", checks=[check_templates])
    scenario = load_scenario(SCENARIO, library.current(WORKFLOW)[0].timezone)
    dry_run(library, True)  # warm: templates compiled, holiday years loaded, as after the first mail
    bare_loop(library, scenario)
    with_digests, without, bare = [], [], []
    mails = (0, 0)
    for _ in range(args.rounds):
        a, n_all = dry_run(library, True)
        b, n_plain = dry_run(library, False)
        with_digests.append(a)
        without.append(b)
        bare.append(bare_loop(library, scenario))
        mails = (n_all, n_plain)
    whole = whole_command()
    steps = len(scenario.steps) + 1
    print(f"dry run of {SCENARIO.relative_to(ROOT)}: {steps} engine calls, 01.09.2025 to 31.08.2026, "
          f"median of {args.rounds} rounds")
    print("| measurement | time | mails | target |")
    print("|---|---|---|---|")
    print(f"| simulate with digests (default) | {statistics.median(with_digests) * 1000:.0f} ms | {mails[0]} "
          "| ≤ 1 s |")
    print(f"| simulate --no-digest | {statistics.median(without) * 1000:.0f} ms | {mails[1]} | |")
    print(f"| bare loop (engine calls on a MemoryStore only) | {statistics.median(bare) * 1000:.1f} ms | – | |")
    print(f"| whole command in process (definitions loaded and checked) | {whole * 1000:.0f} ms | {mails[0]} | |")


if __name__ == "__main__":
    main()
