"""A workflow's state graph as inline SVG, rendered on the server: no script, no CDN at view time."""

from __future__ import annotations

from collections import deque
from html import escape

from ..definition import Definition

__all__ = ["state_svg"]

_W, _H, _GAP_X, _GAP_Y = 210, 46, 60, 22


def state_svg(definition: Definition, current: str | None = None) -> str:
    """States in columns by distance from the initial state; the current one is highlighted."""
    level: dict[str, int] = {definition.initial.id: 0}
    queue = deque([definition.initial.id])
    edges = sorted({(s, d) for s, d, _ in definition.edges() if s != d})
    while queue:
        here = queue.popleft()
        for src, dst in edges:
            if src == here and dst not in level:
                level[dst] = level[here] + 1
                queue.append(dst)
    columns: dict[int, list[str]] = {}
    for state_id in definition.states:
        columns.setdefault(level.get(state_id, 0), []).append(state_id)
    pos = {s: (c * (_W + _GAP_X) + 10, r * (_H + _GAP_Y) + 10)
           for c, states in columns.items() for r, s in enumerate(states)}
    width = (max(columns) + 1) * (_W + _GAP_X)
    height = max(len(v) for v in columns.values()) * (_H + _GAP_Y) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'class="diagram" aria-label="Ablauf {escape(definition.title)}">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>']
    for src, dst in edges:
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        parts.append(f'<line x1="{x1 + _W}" y1="{y1 + _H / 2}" x2="{x2}" y2="{y2 + _H / 2}" stroke="#777" '
                     'stroke-width="1.2" marker-end="url(#arrow)"/>' if x2 > x1 else
                     f'<path d="M {x1 + _W / 2} {y1 + _H} C {x1 + _W / 2} {y1 + _H + 40}, {x2 + _W / 2} '
                     f'{y2 + _H + 40}, {x2 + _W / 2} {y2 + _H}" fill="none" stroke="#bbb" '
                     'stroke-dasharray="4 3" marker-end="url(#arrow)"/>')
    for state_id, (x, y) in pos.items():
        state = definition.states[state_id]
        fill = "#ffd54f" if state_id == current else ("#e8f5e9" if state.final else "#f5f7fa")
        stroke = "#333" if state_id == current else "#889"
        label = state.label if len(state.label) <= 30 else state.label[:29] + "…"
        parts.append(f'<g><title>{escape(state.label)} ({state_id})</title>'
                     f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="8" fill="{fill}" stroke="{stroke}" '
                     f'stroke-width="{2 if state_id == current else 1}"/>'
                     f'<text x="{x + _W / 2}" y="{y + _H / 2 + 5}" text-anchor="middle" font-size="13">'
                     f'{escape(label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
