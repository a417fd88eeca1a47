"""Strict YAML reading for definitions: PyYAML's parser, our own small constructor.

PyYAML's loaders follow YAML 1.1, where ``off``/``yes``/``no`` become booleans and a duplicate
key silently wins. Definitions need YAML 1.2 core scalars, duplicate keys rejected, and no
anchors, aliases or tags (a process owner's file is untrusted input). We let PyYAML parse and
compose events and build plain Python values ourselves, remembering where every value stood.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)

from .errors import Problem

__all__ = ["Located", "YamlProblems", "load_located"]

Path = tuple[str | int, ...]

_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}


@dataclass
class Located:
    """A parsed document: plain values plus the (line, column) of every path in it."""

    value: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Position of ``path`` (its key when ``key``), falling back to the nearest parent."""
        table = self.key_positions if key else self.positions
        probe = path
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get((), (1, 1))


class YamlProblems(Exception):
    """Raised with every structural YAML problem found; each is one :class:`Problem`."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


#: Limits of a file a person writes by hand: beyond them it is an accident or an attack.
MAX_BYTES = 1_000_000
MAX_DEPTH = 32
MAX_NODES = 200_000


class _TooLong(str):
    """A number with more digits than any definition needs (refused where it is found)."""


def _resolve_plain(text: str) -> Any:
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.match(text):
        if len(text) > 30:
            return _TooLong(text)
        return int(text)
    if _FLOAT.match(text) and any(c.isdigit() for c in text):
        return float(text)
    return text


class _Builder:
    def __init__(self, path: str, events: Iterator[Event]) -> None:
        self.path = path
        self.events = events
        self.problems: list[Problem] = []
        self.doc = Located(None)
        self.nodes = 0

    def _problem(self, event: Event, message: str) -> None:
        line, col = self._pos(event)
        self.problems.append(Problem(self.path, line, col, message))

    def _pos(self, event: Event) -> tuple[int, int]:
        mark = event.start_mark
        return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)

    def _check_node_event(self, event: Event) -> None:
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._problem(event, f"YAML anchors are not allowed (found '&{anchor}')")
        tag = getattr(event, "tag", None)
        if tag is not None and not isinstance(event, AliasEvent):
            # A quoted or plain scalar reports tag None; anything else was written explicitly.
            self._problem(event, f"YAML tags are not allowed (found '{tag}')")

    def node(self, event: Event, path: Path) -> Any:
        self.nodes += 1
        if len(path) > MAX_DEPTH or self.nodes > MAX_NODES:
            line, col = self._pos(event)
            what = f"nested more than {MAX_DEPTH} levels deep" if len(path) > MAX_DEPTH else \
                f"has more than {MAX_NODES:,} values".replace(",", ".")
            raise YamlProblems([*self.problems, Problem(self.path, line, col, f"the file is {what}")])
        self.doc.positions[path] = self._pos(event)
        if isinstance(event, AliasEvent):
            self._problem(event, f"YAML aliases are not allowed (found '*{event.anchor}')")
            return None
        self._check_node_event(event)
        if isinstance(event, ScalarEvent):
            if event.style is None and event.tag is None:
                value = _resolve_plain(event.value)
                if isinstance(value, _TooLong):
                    self._problem(event, f"the number {value[:20]}… has {len(value)} digits; no value needs more "
                                         "than 30")
                    return None
                return value
            return event.value
        if isinstance(event, SequenceStartEvent):
            items: list[Any] = []
            while not isinstance(nxt := next(self.events), SequenceEndEvent):
                items.append(self.node(nxt, (*path, len(items))))
            return items
        if isinstance(event, MappingStartEvent):
            mapping: dict[str, Any] = {}
            while not isinstance(key_event := next(self.events), MappingEndEvent):
                if isinstance(key_event, ScalarEvent):
                    self._check_node_event(key_event)
                    key = key_event.value
                else:
                    self._problem(key_event, "a mapping key must be a plain name")
                    self.node(key_event, (*path, "?"))
                    key = f"?{len(mapping)}"
                value_event = next(self.events)
                if key in mapping:
                    first = self.doc.key_positions.get((*path, key), (0, 0))
                    self._problem(
                        key_event,
                        f"duplicate key '{key}' (first defined at line {first[0]})",
                    )
                    self.node(value_event, (*path, key, "#dup"))
                    continue
                self.doc.key_positions[(*path, key)] = self._pos(key_event)
                mapping[key] = self.node(value_event, (*path, key))
            return mapping
        raise AssertionError(f"unexpected YAML event {event!r}")  # pragma: no cover


def load_located(text: str, path: str) -> Located:
    """Parse one YAML document strictly; raise :class:`YamlProblems` listing what is wrong."""
    if len(text) > MAX_BYTES:
        raise YamlProblems([Problem(path, 1, 1, f"the file has {len(text):,} characters; at most {MAX_BYTES:,} "
                                                "are allowed".replace(",", "."))])
    events = yaml.parse(text, Loader=yaml.SafeLoader)
    builder = _Builder(path, events)
    try:
        first = next(events)
        assert isinstance(first, StreamStartEvent)
        nxt = next(events)
        if isinstance(nxt, StreamEndEvent):
            raise YamlProblems([Problem(path, 1, 1, "the file is empty")])
        assert isinstance(nxt, DocumentStartEvent)
        builder.doc.value = builder.node(next(events), ())
        assert isinstance(next(events), DocumentEndEvent)
        extra = next(events)
        if not isinstance(extra, StreamEndEvent):
            builder._problem(extra, "only one YAML document per file is allowed")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or exc.context or "invalid YAML"
        raise YamlProblems([Problem(path, line, col, f"YAML syntax error: {reason}")]) from None
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise YamlProblems([Problem(path, line, col, f"YAML error: character #x{exc.character:04x} is not "
                                                     "allowed in YAML")]) from None
    except yaml.YAMLError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid YAML"
        raise YamlProblems([Problem(path, 1, 1, f"YAML error: {detail}")]) from None
    except RecursionError:
        raise YamlProblems([Problem(path, 1, 1, f"the file is nested more than {MAX_DEPTH} levels deep")]) from None
    if builder.problems:
        raise YamlProblems(builder.problems)
    return builder.doc
