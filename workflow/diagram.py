"""Renderings of a definition: the Graphviz diagram (SVG, PNG), a Mermaid state diagram, the normalised JSON.

The Graphviz diagram is the one picture of a workflow: ``definitions show --format svg|png`` prints it and
the paper page shows it inline with the paper's state filled. It is built with the ``graphviz`` package
(the backend ``transitions.extensions.diagrams.GraphMachine`` uses as well) and laid out by Debian's
``dot``. GraphMachine itself is not used: it merges every transition between the same two states into one
edge with one style (a re-entering ``vertagen`` and an internal ``vorlage_freigeben`` would become one
line), needs its own State class for labels, and has no mark for final and initial states or for our
parallel states (its "parallel" means nested sub-states, ours means branches per body with a join).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import textwrap
import threading
from collections import Counter, deque
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any, Literal

import graphviz

from .definition import SAME, Definition, Parallel, State, Transition
from .errors import InputError, ToolMissingError
from .german import outcome
from .i18n import _, current_language, ngettext

__all__ = ["FORMATS", "join_rule", "render", "show", "svg_inline", "to_graph", "to_json", "to_mermaid"]

#: What ``render`` can produce.
FORMATS = ("svg", "png")
Format = Literal["svg", "png"]

#: The fill of the paper's current state (the page's caption names the colour).
CURRENT_FILL = "#ffd54f"
#: Text sizes in SVG user units; the page never scales the SVG down, so they stay ≥ 12 px on screen.
STATE_FONT, EDGE_FONT = 14, 12
#: State labels wrap at this many characters (in full, on several lines).
WRAP = 32
#: The node that points at the initial state; no state id can start with an underscore.
START = "__start__"
FONT = "DejaVu Sans"


def _plain(text: str) -> str:
    """``text`` for a plain Graphviz string (tooltips, the title): backslashes doubled, since Graphviz
    reads ``\\N``, ``\\G``, ``\\l`` etc. as escapes."""
    return text.replace("\\", "\\\\")


def _html(text: str) -> str:
    """``text`` for a Graphviz HTML-like label: markup escaped, and a word joiner (invisible) after each
    backslash, since Graphviz replaces ``\\N``, ``\\G`` etc. with names even there."""
    return escape(text, quote=False).replace("\\", "\\\u2060")


def _lines(text: str, width: int = WRAP) -> str:
    """``text`` escaped and wrapped at word boundaries into ``<BR/>``-separated lines."""
    parts = textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [text]
    return '<BR ALIGN="CENTER"/>'.join(_html(p) for p in parts)


def join_rule(p: Parallel) -> str:
    """The German rule of a parallel state's join, as the diagram shows it."""
    if p.join.none:
        return _("hearing only")
    if p.join.quorum is None:
        return _("all must agree")
    return _("quorum {quorum} of {count}").format(quorum=p.join.quorum, count=len(p.bodies))


def edge_label(t: Transition) -> str:
    """What an edge says: the transition's ``label``, else its trigger id (what a process owner wrote)."""
    return t.label or t.trigger


def _state_label(d: Definition, s: State) -> str:
    """An HTML-like label: the state label in full; for a parallel state its bodies and the join rule."""
    title = _lines(s.label)
    if s.parallel is None:
        return f"<{title}>"
    p = s.parallel
    rows = [f'<TR><TD><B>{title}</B></TD></TR>',
            "<TR><TD>" + _html(ngettext("parallel in {count} body ({role}):", "parallel in {count} bodies ({role}):",
                                        len(p.bodies)).format(count=len(p.bodies), role=p.role)) + "</TD></TR>"]
    rows += [f'<TR><TD ALIGN="LEFT">• {_html(d.bodies[b].name)}</TD></TR>' for b in p.bodies]
    rows.append(f'<TR><TD><I>{_html(join_rule(p))}</I></TD></TR>')
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2">{"".join(rows)}</TABLE>>'


#: A transition from more source states than this is drawn once, from a small "aus N Zuständen" node.
MANY_SOURCES = 5


def _edges(d: Definition) -> Iterable[tuple[str, str, str, list[str]]]:
    """(source, dest, kind, labels): kind is ``move`` (solid), ``reenter`` (solid self-loop: leaves and
    enters the state again), ``internal`` (dashed self-loop: recorded without leaving the state, branch
    decisions included) or ``join`` (the automatic move of a join). A source starting with ``__from_``
    stands for the many sources of one transition (see :data:`MANY_SOURCES`)."""
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for number, t in enumerate(d.transitions):
        moves = [s for s in t.sources if t.branch is None and not t.internal and t.dest not in (None, SAME)]
        many = len(moves) > MANY_SOURCES
        for src in t.sources:
            if t.branch is not None:
                state = d.states[src]
                heard = bool(state.parallel and state.parallel.join.none)
                key, text = (src, src, "internal"), _("{label} (per body: {outcome})").format(
                    label=edge_label(t), outcome=outcome(t.branch, heard))
            elif t.internal or t.dest is None:
                key, text = (src, src, "internal"), edge_label(t)
            elif t.dest == SAME:
                key, text = (src, src, "reenter"), edge_label(t)
            else:
                key, text = (f"__from_{number}" if many else src, t.dest, "move"), edge_label(t)
            grouped.setdefault(key, []).append(text)
    for s in d.states.values():
        p = s.parallel
        if p and p.on_success and p.on_failure:
            success = _("automatically: all have agreed") if p.join.quorum is None else \
                _("automatically: quorum {quorum} reached").format(quorum=p.join.quorum)
            failure = _("automatically: one rejection") if p.join.quorum is None else \
                _("automatically: quorum {quorum} can no longer be reached").format(quorum=p.join.quorum)
            grouped.setdefault((s.id, p.on_success, "join"), []).append(success)
            grouped.setdefault((s.id, p.on_failure, "join"), []).append(failure)
    for (src, dst, kind), labels in grouped.items():
        yield src, dst, kind, list(dict.fromkeys(labels))


def _wide(d: Definition) -> bool:
    """Whether the states fan out more than they chain (then the layout runs left to right, so the
    fan stacks downwards): the most states at one distance from the initial state against the number
    of distances."""
    level = {d.initial.id: 0}
    queue = deque([d.initial.id])
    while queue:
        here = queue.popleft()
        for t in d.transitions_from(here):
            dest = t.dest_for(here)
            if dest is not None and dest not in level:
                level[dest] = level[here] + 1
                queue.append(dest)
        p = d.states[here].parallel
        for dest in (p.on_success, p.on_failure) if p else ():
            if dest is not None and dest not in level:
                level[dest] = level[here] + 1
                queue.append(dest)
    counts = Counter(level.get(s, 0) for s in d.states)
    return max(counts.values()) > len(counts)


def _sources_text(d: Definition, t: Transition) -> tuple[str, str]:
    """The label and tooltip of the node that stands for the many sources of ``t``."""
    open_states = [s.id for s in d.states.values() if not s.final]
    label = (_("from every open state") if set(t.sources) >= set(open_states)
             else _("from {count} states").format(count=len(t.sources)))
    return label, _plain(_("from: {states}").format(states=", ".join(d.states[s].label for s in t.sources)))


def to_graph(d: Definition, *, current: str | None = None) -> graphviz.Digraph:
    """The workflow as a Graphviz digraph; ``current`` is filled when given."""
    wide = _wide(d)
    g = graphviz.Digraph(name=d.workflow, graph_attr={
        "rankdir": "LR" if wide else "TB", "fontname": FONT, "nodesep": "0.4", "ranksep": "0.5",
        "bgcolor": "transparent", "label": _plain(f"{d.title} (Version {d.version})"), "labelloc": "t",
        "fontsize": str(STATE_FONT + 2),
    }, node_attr={"fontname": FONT, "fontsize": str(STATE_FONT), "shape": "box", "style": "rounded,filled",
                  "fillcolor": "#f5f7fa", "color": "#556070", "margin": "0.15,0.08"},
        edge_attr={"fontname": FONT, "fontsize": str(EDGE_FONT), "color": "#556070", "arrowsize": "0.8"})
    g.node(START, label="", shape="circle", style="filled", fillcolor="#1b1f24", width="0.22", fixedsize="true",
           tooltip="Beginn", **{"class": "start"})
    g.edge(START, d.initial.id, tooltip="Anfangszustand")
    for s in d.states.values():
        classes = ["state"]
        attrs: dict[str, Any] = {"tooltip": _plain(f"{s.label} ({s.id})"), "id": f"state-{s.id}"}
        if s.final:
            classes.append("final")
            attrs.update(peripheries="2", fillcolor="#e8f5e9")
        if s.initial:
            classes.append("initial")
        if s.parallel is not None:
            classes.append("parallel")
            attrs.update(fillcolor="#eef3fb")
        if s.id == current:
            classes.append("current")
            attrs.update(fillcolor=CURRENT_FILL, color="#1b1f24", penwidth="2.5")
        g.node(s.id, label=_state_label(d, s), **{"class": " ".join(classes)}, **attrs)
    # Self-loops on two sides, so the labels of re-entering and internal triggers never overlap.
    loop_ports = {"reenter": "s" if wide else "e", "internal": "n" if wide else "w"}
    for src, dst, kind, labels in _edges(d):
        text = '<BR ALIGN="CENTER"/>'.join(_html(x) for x in labels)
        attrs = {"label": f"<{text}>", "class": kind}
        if src.startswith("__from_"):
            label, tooltip = _sources_text(d, d.transitions[int(src.removeprefix("__from_"))])
            g.node(src, label=label, shape="note", style="filled", fillcolor="#ffffff", fontsize=str(EDGE_FONT),
                   tooltip=tooltip, **{"class": "sources"})
        if kind in loop_ports:
            attrs.update(tailport=loop_ports[kind], headport=loop_ports[kind])
        if kind == "internal":
            attrs.update(style="dashed", color="#8a93a0")
        elif kind == "join":
            attrs.update(style="bold")
        g.edge(src, dst, **attrs)
    return g


def render(d: Definition, fmt: Format, *, current: str | None = None) -> bytes:
    """The diagram as SVG or PNG bytes, laid out by Graphviz's ``dot``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown diagram format {fmt!r}")  # a programming error, not a user's
    try:
        data: bytes = to_graph(d, current=current).pipe(format=fmt, engine="dot", quiet=True)
    except graphviz.ExecutableNotFound as exc:
        raise ToolMissingError(_("Graphviz is not installed (program 'dot' not found); please run 'apt-get install "
                                 "graphviz' or 'make system'")) from exc
    return data


_SVG_START = re.compile(r"<svg\b")
_cache: dict[tuple[str, str | None, str], str] = {}
_cache_lock = threading.Lock()
#: Entries kept before the cache starts over (workflows × states; a definition change makes new keys).
CACHE_SIZE = 1024


def svg_inline(d: Definition, current: str | None = None) -> str:
    """The SVG for embedding in HTML (no XML prolog or DOCTYPE), ``class="diagram"`` on its root.

    Cached per (definition text hash, current state): laying out with ``dot`` takes milliseconds.
    """
    key = (d.source_hash or f"{d.workflow}@{d.version}", current, current_language())
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    text = render(d, "svg", current=current).decode("utf-8")
    start = _SVG_START.search(text)
    assert start is not None, "dot wrote no <svg> element"
    aria = escape(_("Workflow {title}").format(title=d.title))
    svg = _SVG_START.sub(f'<svg class="diagram" role="img" aria-label="{aria}"',
                         text[start.start():], count=1)
    with _cache_lock:
        if len(_cache) >= CACHE_SIZE:
            _cache.clear()
        _cache[key] = svg
    return svg


def show(d: Definition, fmt: str, out: Path | None) -> None:
    """``definitions show``: the diagram or JSON to ``out``, or to standard output (PNG never to a terminal)."""
    if fmt in FORMATS:
        data = render(d, "svg" if fmt == "svg" else "png")
    elif fmt == "json":
        data = (json.dumps(to_json(d), ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    else:
        data = to_mermaid(d).encode("utf-8")
    if out is not None:
        try:
            out.write_bytes(data)
        except OSError as exc:
            raise InputError(_("--out {path}: {reason}").format(path=out, reason=exc.strerror or exc)) from exc
        return
    if fmt == "png" and sys.stdout.isatty():
        raise InputError(_("PNG is binary: give --out FILE or redirect standard output"))
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


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
            join = _("all") if p.join.quorum is None else _("quorum {quorum}").format(quorum=p.join.quorum)
            if p.on_success and p.on_failure:
                reached = _text(_("decision reached ({join})").format(join=join))
                lines.append(f"    {s.id} --> {p.on_success}: {reached}")
                failed = _text(_("decision failed"))
                lines.append(f"    {s.id} --> {p.on_failure}: {failed}")
            triggers = ", ".join(f"{t.trigger} ({outcome(t.branch)})" for t in d.transitions_from(s.id) if t.branch)
            lines.append(f"    note right of {s.id}")
            parallel = ngettext("parallel in {count} body: {bodies}", "parallel in {count} bodies: {bodies}",
                                len(p.bodies)).format(count=len(p.bodies), bodies=", ".join(p.bodies))
            lines.append(f"        {parallel}")
            if triggers:
                per_body = _text(_("per body {triggers}").format(triggers=triggers))
                lines.append(f"        {per_body}")
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
