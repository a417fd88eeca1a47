"""Renderings of a definition: a Mermaid state diagram and the normalised JSON form."""

from __future__ import annotations

import dataclasses
from typing import Any

from .definition import Definition
from .german import outcome

__all__ = ["to_json", "to_mermaid"]



def _text(label: str) -> str:
    return label.replace('"', "#quot;").replace(":", "#colon;").replace("\n", " ")


def to_mermaid(d: Definition, *, current: str | None = None) -> str:
    """A ``stateDiagram-v2``; ``current`` is marked with a class when given."""
    lines = ["stateDiagram-v2", f"    %% {d.workflow} v{d.version}: {_text(d.title)}"]
    for s in d.states.values():
        lines.append(f'    state "{_text(s.label)}" as {s.id}')
    lines.append(f"    [*] --> {d.initial.id}")
    for t in d.transitions:
        if t.branch is not None:
            continue
        for src in t.sources:
            lines.append(f"    {src} --> {t.dest_for(src)}: {t.trigger}")
    for s in d.states.values():
        if s.parallel:
            p = s.parallel
            join = "alle" if p.join.quorum is None else f"Quorum {p.join.quorum}"
            if p.on_success and p.on_failure:
                lines.append(f"    {s.id} --> {p.on_success}: Beschluss erreicht ({join})")
                lines.append(f"    {s.id} --> {p.on_failure}: Beschluss gescheitert")
            triggers = ", ".join(f"{t.trigger} ({outcome(t.branch)})" for t in d.transitions_from(s.id) if t.branch)
            lines.append(f"    note right of {s.id}")
            lines.append(f"        parallel in {len(p.bodies)} Gremien: {', '.join(p.bodies)}")
            if triggers:
                lines.append(f"        je Gremium {_text(triggers)}")
            lines.append("    end note")
    for s in d.states.values():
        if s.final:
            lines.append(f"    {s.id} --> [*]")
    if current is not None:
        lines.append("    classDef current fill:#ffd54f,stroke:#333,stroke-width:2px")
        lines.append(f"    class {current} current")
    return "\n".join(lines) + "\n"


def to_json(d: Definition) -> dict[str, Any]:
    """The normalised definition: defaults filled in, ``"*"`` expanded, keys in a fixed order."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                f.name: plain(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if not f.name.startswith("_") and f.name not in ("source_path",)
            }
        if isinstance(value, dict) or hasattr(value, "items"):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    result: dict[str, Any] = plain(d)
    return result
