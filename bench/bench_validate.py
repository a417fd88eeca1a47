"""Validating a large definition, beside a bare YAML parse of the same file.

Run: `make bench` (or `.venv/bin/python bench/bench_validate.py [--states 200] [--rounds 7]`).
Target (issue 12): `councilflow definitions validate` of a generated 200-state definition ≤ 0.5 s.

Measured, median of the rounds, alternating:

- validate: :func:`workflow.load_definition_file` on the file, as `definitions validate` does for each file
  (the strict YAML reader with positions, every load-time check, the graph checks, the compiled machine);
- the bare parse: `yaml.safe_load` of the same text (PyYAML's pure-Python loader, no checks).

The definition: a chain of consultation states, one body each, every third state with a deferral back to
itself and every fifth with a way back, a parallel state of 11 bodies in the middle, deadlines over all
states, and the final states.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflow import load_definition_file


def generate(states: int) -> str:
    """A valid definition with ``states`` consultation states (and a parallel state)."""
    names = [f"s{i:03d}" for i in range(states)]
    councils = [f"rat{i:02d}" for i in range(11)]
    lines = ["workflow: gross", "version: 1", "title: Großer Ablauf", "timezone: Europe/Berlin",
             "calendar: {holidays: DE-NW, closed: ['12-24', '12-31']}",
             "roles:", "  amt: [amt@kreis.example]", "  sitzungsdienst: [sitzungsdienst@kreis.example]", "bodies:"]
    lines += [f"  b{n}: {{name: Gremium {n}, invitation_days: 7, contact: b{n}@kreis.example}}" for n in names]
    lines += [f"  {c}: {{name: Rat {c}, invitation_days: 7, contact: {c}@kreis.example}}" for c in councils]
    lines += ["fields:", "  title: {type: text, required: true}", "states:",
              "  entwurf: {label: Entwurf, initial: true}"]
    middle = states // 2
    for i, n in enumerate(names):
        if i == middle:
            lines.append(f"  {n}: {{label: Räte {n}, parallel: {{bodies: [{', '.join(councils)}], role: Entscheidung, "
                         f"join: {{quorum: 6}}, on_success: {names[i + 1]}, on_failure: abgelehnt}}}}")
        else:
            lines.append(f"  {n}: {{label: Beratung {n}, consultation: {{body: b{n}, role: Beratung}}}}")
    lines += ["  fertig: {label: Fertig, final: true}", "  abgelehnt: {label: Abgelehnt, final: true}", "transitions:",
              f"  - {{trigger: einbringen, source: entwurf, dest: {names[0]}, roles: [amt]}}"]
    for i, n in enumerate(names):
        if i == middle:
            lines += [f"  - {{trigger: zustimmen, source: {n}, branch: adopted, roles: [body, sitzungsdienst]}}",
                      f"  - {{trigger: ablehnen, source: {n}, branch: rejected, roles: [body, sitzungsdienst]}}"]
            continue
        nxt = names[i + 1] if i + 1 < states else "fertig"
        lines.append(f"  - {{trigger: weiter, source: {n}, dest: {nxt}, roles: [sitzungsdienst], requires: [result]}}")
        if i % 3 == 0:
            lines.append(f"  - {{trigger: vertagen, source: {n}, dest: '=', roles: [sitzungsdienst], "
                         "requires: [result, meeting]}")
        if i % 5 == 4:
            lines.append(f"  - {{trigger: zurueck, source: {n}, dest: {names[i - 3]}, roles: [amt]}}")
    lines.append("  - {trigger: abbrechen, source: '*', dest: abgelehnt, roles: [amt]}")
    chain = [n for i, n in enumerate(names) if i != middle]
    lines += ["deadlines:",
              f"  - {{name: ladung, label: Ladung, states: [{', '.join(chain)}], due: {{before: meeting, "
              "invitation_period: true}, remind: [{days: 3}], notify: [sitzungsdienst]}",
              f"  - {{name: vorlage, label: Vorlage, states: [{', '.join(chain)}], due: {{before: meeting, "
              "working_days: 10}, remind: [{working_days: 5}, {working_days: 1}], notify: [amt], "
              "escalate: {after: {working_days: 1}, notify: [sitzungsdienst]}}",
              f"  - {{name: beschluss, label: Beschluss, states: [{names[middle]}], due: {{after: entered, "
              "days: 90}, remind: [{days: 30}], notify: [body]}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--states", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gross.yaml"
        path.write_text(generate(args.states), encoding="utf-8")
        text = path.read_text(encoding="utf-8")
        definition = load_definition_file(path)  # valid, and warm
        assert len(definition.states) == args.states + 3
        validate, bare = [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            load_definition_file(path)
            validate.append(time.perf_counter() - started)
            started = time.perf_counter()
            yaml.safe_load(text)
            bare.append(time.perf_counter() - started)
    v, b = statistics.median(validate), statistics.median(bare)
    print(f"definition of {args.states} states ({len(text.splitlines())} lines, {len(text) // 1024} KiB), "
          f"median of {args.rounds}:")
    print(f"  definitions validate   {v * 1000:7.1f} ms  (target <= 500 ms: {'met' if v <= 0.5 else 'MISSED'})")
    print(f"  bare yaml.safe_load    {b * 1000:7.1f} ms  (ratio {v / b:.2f})")


if __name__ == "__main__":
    main()
