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
from .i18n import _

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
            self._problem(event, _("YAML anchors are not allowed (found '&{anchor}')").format(anchor=anchor))
        tag = getattr(event, "tag", None)
        if tag is not None and not isinstance(event, AliasEvent):
            # A quoted or plain scalar reports tag None; anything else was written explicitly.
            self._problem(event, _("YAML tags are not allowed (found '{tag}')").format(tag=tag))

    def node(self, event: Event, path: Path) -> Any:
        self.nodes += 1
        if len(path) > MAX_DEPTH or self.nodes > MAX_NODES:
            line, col = self._pos(event)
            message = _too_deep() if len(path) > MAX_DEPTH else \
                _("the file has more than {count} values").format(count=f"{MAX_NODES:,}".replace(",", "."))
            raise YamlProblems([*self.problems, Problem(self.path, line, col, message)])
        self.doc.positions[path] = self._pos(event)
        if isinstance(event, AliasEvent):
            self._problem(event, _("YAML aliases are not allowed (found '*{anchor}')").format(anchor=event.anchor))
            return None
        self._check_node_event(event)
        if isinstance(event, ScalarEvent):
            if event.style is None and event.tag is None:
                value = _resolve_plain(event.value)
                if isinstance(value, _TooLong):
                    self._problem(event, _("the number {number}… has {count} digits; no value needs more than "
                                           "30").format(number=value[:20], count=len(value)))
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
                    self._problem(key_event, _("a mapping key must be a plain name"))
                    self.node(key_event, (*path, "?"))
                    key = f"?{len(mapping)}"
                value_event = next(self.events)
                if key in mapping:
                    first = self.doc.key_positions.get((*path, key), (0, 0))
                    self._problem(
                        key_event,
                        _("duplicate key '{key}' (first defined at line {line})").format(key=key, line=first[0]),
                    )
                    self.node(value_event, (*path, key, "#dup"))
                    continue
                self.doc.key_positions[(*path, key)] = self._pos(key_event)
                mapping[key] = self.node(value_event, (*path, key))
            return mapping
        raise AssertionError(f"unexpected YAML event {event!r}")  # pragma: no cover


def _too_deep() -> str:
    return _("the file is nested more than {count} levels deep").format(count=MAX_DEPTH)


def _unclosed_quote(quote: str) -> str:
    return _("the quote {quote} is not closed; put a closing {quote} at the end of the value (on the same "
             "line)").format(quote=quote)


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
        return line, col, _("a tab character: YAML indents with spaces only; replace the tab with spaces")
    end = at.line if at is not None else len(lines) - 1
    for number in range(0, min(end, len(lines) - 1) + 1):  # a quoted value left open runs into later lines
        found = _OPEN_QUOTE.search(lines[number])
        if found is not None:
            value, quote = found.group(2), found.group(1)
            if not value.rstrip().endswith(quote) or value.rstrip() == quote:
                return number + 1, found.start(1) + 1, _unclosed_quote(quote)
    if "quoted scalar" in context and opened is not None:
        quote = lines[opened.line][opened.column] if opened.line < len(lines) and opened.column < len(
            lines[opened.line]) else '"'
        line, col = where(opened)
        return line, col, _unclosed_quote(quote)
    if "flow sequence" in context and opened is not None:
        line, col = where(opened)
        return line, col, _("the square bracket [ is not closed (or a comma is missing between two entries); close it "
                            "with ]")
    if "flow mapping" in context and opened is not None:
        line, col = where(opened)
        return line, col, _("the curly bracket {{ is not closed (or a comma is missing between two entries); close it "
                            "with }}").format()
    if "could not find expected ':'" in problem and opened is not None:
        line, col = where(opened)
        key = lines[opened.line].strip() if opened.line < len(lines) else ""
        return line, col, _("the colon after '{key}' is missing; write 'key: value' (with a space after the "
                            "colon)").format(key=key[:40])
    if at is not None and "expected <block end>" in problem:
        line, col = where(at)
        key, indent = _key_at(lines, at.line)
        if "'-'" in problem:
            return line, col, _("a list entry '- {key}' in the middle of a mapping; a level is either a list (every "
                                "line starts with '- ') or a mapping (every line 'key: value'), not both").format(
                key=key)
        if "'?'" in problem or "block collection" in context:
            return line, col, _("'{key}' stands as a key in a list; a level is either a list (every line starts "
                                "with '- ') or a mapping (every line 'key: value'), not both").format(key=key)
        above = _above(lines, at.line)
        if above is not None and indent != above[1]:
            if indent < above[1]:
                return line, col, _("'{key}' is indented less than '{above}' above it; the keys of a mapping start in "
                                    "the same column, a level deeper two spaces further in").format(key=key,
                                                                                                 above=above[0])
            return line, col, _("'{key}' is indented more than '{above}' above it; the keys of a mapping start in "
                                "the same column, a level deeper two spaces further in").format(key=key, above=above[0])
        return line, col, _("'{key}' does not fit here: the indentation does not match the lines above").format(
            key=key)
    if at is not None and "mapping values are not allowed" in problem:
        line, col = where(at)
        key, indent = _key_at(lines, at.line)
        above = _above(lines, at.line)
        if above is not None and indent > above[1]:
            return line, indent + 1, _("'{key}' is indented deeper than '{above}' above it, which has a value "
                                       "already; indent '{key}' as far as '{above}'").format(key=key, above=above[0])
        return line, col, _("a colon with a space (': ') in the middle of a value; put the value in quotes")
    line, col = where(at or opened)
    return line, col, _("YAML syntax error: {detail}").format(detail=problem or context or _("invalid YAML"))


def load_located(text: str, path: str) -> Located:
    """Parse one YAML document strictly; raise :class:`YamlProblems` listing what is wrong."""
    if len(text) > MAX_BYTES:
        raise YamlProblems([Problem(path, 1, 1, _("the file has {count} characters; at most {limit} are "
                                                  "allowed").format(count=f"{len(text):,}".replace(",", "."),
                                                                    limit=f"{MAX_BYTES:,}".replace(",", ".")))])
    events = yaml.parse(text, Loader=yaml.SafeLoader)
    builder = _Builder(path, events)
    try:
        first = next(events)
        assert isinstance(first, StreamStartEvent)
        nxt = next(events)
        if isinstance(nxt, StreamEndEvent):
            raise YamlProblems([Problem(path, 1, 1, _("the file is empty"))])
        assert isinstance(nxt, DocumentStartEvent)
        builder.doc.value = builder.node(next(events), ())
        assert isinstance(next(events), DocumentEndEvent)
        extra = next(events)
        if not isinstance(extra, StreamEndEvent):
            builder._problem(extra, _("only one YAML document per file is allowed"))
    except yaml.MarkedYAMLError as exc:
        line, col, message = plain_syntax_error(exc, text)
        raise YamlProblems([Problem(path, line, col, message)]) from None
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise YamlProblems([Problem(path, line, col, _("YAML error: character #x{code} is not allowed in "
                                                       "YAML").format(code=f"{exc.character:04x}"))]) from None
    except yaml.YAMLError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else _("invalid YAML")
        raise YamlProblems([Problem(path, 1, 1, _("YAML error: {detail}").format(detail=detail))]) from None
    except RecursionError:
        raise YamlProblems([Problem(path, 1, 1, _too_deep())]) from None
    if builder.problems:
        raise YamlProblems(builder.problems)
    return builder.doc
