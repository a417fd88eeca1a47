"""The paper a request's path names, read from the path as the client sent it: Starlette decodes %2F before
routing, so a route's ``{reference:path}`` cannot tell "A%2Fbestaetigen" (the paper "A/bestaetigen") from
"A/bestaetigen" (the confirmation page of "A"). The rule itself lives in workflow/addresses.py."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from fastapi import Request

from ..access import Person
from ..addresses import resolve
from ..engine import Engine
from ..store import StoredPaper

__all__ = ["raw_rest", "target"]


def _raw_path(request: Request) -> str:
    """The request's path with its percent-escapes as sent (bytes beyond printable ASCII escaped too)."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes):
        return "".join(chr(b) if 32 < b < 127 else f"%{b:02X}" for b in raw.split(b"?", 1)[0])
    return quote(request.scope["path"], safe="/")  # a server without raw_path: the slashes as it decoded them


def raw_rest(request: Request, prefix: str) -> str:
    """What follows ``prefix`` (e.g. "/vorlagen/") in the path as the client sent it, still percent-encoded."""
    raw = _raw_path(request)
    at = raw.find(prefix)
    if at < 0:  # the prefix itself encoded ("/vorl%61gen/"): the decoded path, its slashes as separators
        raw = quote(request.scope["path"], safe="/")
        at = raw.find(prefix)
    return raw[at + len(prefix):] if at >= 0 else ""


def target(engine: Engine, request: Request, who: Person, prefix: str,
           actions: Mapping[str, str]) -> tuple[StoredPaper, str | None, str | None]:
    """The paper ``who`` may see, the action (a key of ``actions``, or None) and the name (or None) that the
    path after ``prefix`` names, by :func:`workflow.addresses.resolve`."""
    return resolve(raw_rest(request, prefix), actions, lambda reference: engine.paper_for(reference, who))
