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


_SAME_LEVEL = ("eine Ebene ist entweder eine Liste (jede Zeile beginnt mit '- ') oder eine Abbildung (jede Zeile "
               "'schlüssel: wert'), nicht beides")


#: A block value that starts with a quote: ``key: "…`` (the quote and the rest of the line).
_OPEN_QUOTE = re.compile(r"^\s*(?:- )?[\w.-]+:\s+([\"'])(.*)$")


def _key_at(lines: list[str], line: int) -> tuple[str, int]:
    """The key (or text) that starts line ``line`` (0-based) and its indentation."""
    raw = lines[line] if 0 <= line < len(lines) else ""
    stripped = raw.lstrip(" ")
    return stripped.split(":", 1)[0].strip().lstrip("- ").strip() or stripped.strip(), len(raw) - len(stripped)


def _above(lines: list[str], line: int) -> tuple[str, int] | None:
    """The nearest non-empty, non-comment line above ``line`` (0-based): its key and indentation."""
    for number in range(line - 1, -1, -1):
        if lines[number].strip() and not lines[number].lstrip().startswith("#"):
            return _key_at(lines, number)
    return None


def plain_syntax_error(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, int, str]:
    """A YAML parser error in plain words, at the line where the mistake is (1-based line and column):
    tabs, indentation, unclosed quotes and brackets, a missing colon, a list mixed into a mapping. Other
    errors keep the parser's own words."""
    lines = text.splitlines()
    problem, context = exc.problem or "", exc.context or ""
    at, opened = exc.problem_mark, exc.context_mark

    def where(mark: Any) -> tuple[int, int]:
        return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)

    if "'\\t'" in problem or "\t" in problem:
        line, col = where(at)
        return line, col, ("ein Tabulator-Zeichen: YAML rückt nur mit Leerzeichen ein; ersetzen Sie den Tabulator "
                           "durch Leerzeichen")
    end = at.line if at is not None else len(lines) - 1
    for number in range(0, min(end, len(lines) - 1) + 1):  # a quoted value left open runs into later lines
        found = _OPEN_QUOTE.search(lines[number])
        if found is not None:
            value, quote = found.group(2), found.group(1)
            if not value.rstrip().endswith(quote) or value.rstrip() == quote:
                return number + 1, found.start(1) + 1, (
                    f"das Anführungszeichen {quote} wird nicht geschlossen; setzen Sie ein schließendes {quote} ans "
                    "Ende des Werts (in derselben Zeile)")
    if "quoted scalar" in context and opened is not None:
        quote = lines[opened.line][opened.column] if opened.line < len(lines) and opened.column < len(
            lines[opened.line]) else '"'
        line, col = where(opened)
        return line, col, (f"das Anführungszeichen {quote} wird nicht geschlossen; setzen Sie ein schließendes "
                           f"{quote} ans Ende des Werts (in derselben Zeile)")
    for kind, close, name in (("flow sequence", "]", "eckige Klammer ["),
                              ("flow mapping", "}", "geschweifte Klammer {")):
        if kind in context and opened is not None:
            line, col = where(opened)
            return line, col, (f"die {name} wird nicht geschlossen (oder zwischen zwei Einträgen fehlt ein Komma); "
                               f"schließen Sie sie mit {close}")
    if "could not find expected ':'" in problem and opened is not None:
        line, col = where(opened)
        key = lines[opened.line].strip() if opened.line < len(lines) else ""
        return line, col, (f"nach '{key[:40]}' fehlt der Doppelpunkt; schreiben Sie 'schlüssel: wert' (mit "
                           "Leerzeichen nach dem Doppelpunkt)")
    if at is not None and "expected <block end>" in problem:
        line, col = where(at)
        key, indent = _key_at(lines, at.line)
        if "'-'" in problem:
            return line, col, f"ein Listeneintrag '- {key}' mitten in einer Abbildung; {_SAME_LEVEL}"
        if "'?'" in problem or "block collection" in context:
            return line, col, f"'{key}' steht als Schlüssel in einer Liste; {_SAME_LEVEL}"
        above = _above(lines, at.line)
        if above is not None and indent != above[1]:
            direction = "weniger" if indent < above[1] else "mehr"
            return line, col, (f"'{key}' ist {direction} eingerückt als '{above[0]}' darüber; die Schlüssel einer "
                               "Abbildung beginnen in derselben Spalte, eine Ebene tiefer um zwei Leerzeichen mehr")
        return line, col, f"'{key}' passt hier nicht: die Einrückung stimmt nicht zu den Zeilen darüber"
    if at is not None and "mapping values are not allowed" in problem:
        line, col = where(at)
        key, indent = _key_at(lines, at.line)
        above = _above(lines, at.line)
        if above is not None and indent > above[1]:
            return line, indent + 1, (f"'{key}' ist tiefer eingerückt als '{above[0]}' darüber, das schon einen Wert "
                                      f"hat; rücken Sie '{key}' so weit ein wie '{above[0]}'")
        return line, col, ("ein Doppelpunkt mit Leerzeichen (': ') mitten in einem Wert; setzen Sie den Wert in "
                           "Anführungszeichen")
    line, col = where(at or opened)
    return line, col, f"YAML syntax error: {problem or context or 'invalid YAML'}"


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
        line, col, message = plain_syntax_error(exc, text)
        raise YamlProblems([Problem(path, line, col, message)]) from None
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
