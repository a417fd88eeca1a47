"""Where a paper sits in a web address, both ways: the one rule the pages, their links, the mails and the JSON
API share (the web reads the path as the client sent it, workflow/web/paths.py).

A reference may hold "/" ("SV-9/2020/1"), so it is written as ONE path segment, every "/" encoded as %2F:
``/vorlagen/SV-9%2F2020%2F1/bestaetigen``. An address written by hand or by an older client may leave the
slashes unencoded; it is read as REFERENCE/ACTION when its last segments are an action and the rest names a
paper, else as the reference itself, so every reference can be reached on every route.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import quote, unquote

from .errors import NotFoundError

__all__ = ["NAME", "PAPERS", "paper_path", "resolve"]

#: The pages' address of the papers; a paper's page is ``PAPERS/REFERENCE`` (mails link it).
PAPERS = "/vorlagen"
#: In an action's tail: the one segment that names something (an attachment, a deadline).
NAME = "{name}"

Paper = TypeVar("Paper")


def paper_path(reference: str, *tail: str, prefix: str = PAPERS) -> str:
    """The address of paper ``reference`` under ``prefix`` (the pages' ``/vorlagen`` by default), followed by
    ``tail`` (a page or form of it: "bestaetigen"; "anlagen", NAME): each part one segment, every character
    that is not plainly safe in a path (also "/") percent-encoded."""
    return "/".join([prefix.rstrip("/"), *(quote(part, safe="") for part in (reference, *tail))])


def resolve(rest: str, actions: Mapping[str, str], find: Callable[[str], Paper]) -> tuple[Paper, str | None,
                                                                                          str | None]:
    """The paper, the action and the name (or None) that ``rest`` names: the path after the papers' prefix,
    still percent-encoded as the client sent it. ``actions``: each action's tail after the reference, its
    segments separated by "/", :data:`NAME` for a named segment ("anlagen/{name}"). An action counts when the
    path ends in its tail and the segments before it name a paper (``find``, which raises
    :class:`NotFoundError` for none); longer tails are tried first; else the whole path is the reference."""
    segments = rest.split("/")
    for action, pattern in sorted(actions.items(), key=lambda item: -item[1].count("/")):
        tail = pattern.split("/")
        if len(segments) <= len(tail):
            continue
        end = segments[-len(tail):]
        if any(want not in (NAME, got) for want, got in zip(tail, end, strict=True)):
            continue
        try:
            paper = find(unquote("/".join(segments[:-len(tail)])))
        except NotFoundError:
            continue
        name = next((unquote(got) for want, got in zip(tail, end, strict=True) if want == NAME), None)
        return paper, action, name
    return find(unquote(rest)), None, None
