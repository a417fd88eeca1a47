"""The Beschlusskontrolle (decision control): which decisions a body took, what their follow-up papers owe, and
a traffic light per follow-up. Pure: no I/O.

Definitions (docs/definition-language.md, section 17, "Beschlusskontrolle"):

- A **decision** is the moment a paper entered the state ``when`` of one of its follow-ups (the follow-up's
  ``anchor_at``): what the paper's bodies decided then is what its follow-up papers carry out.
- The **bodies of a decision** are the bodies that decided the paper up to that moment, each by its latest
  deciding entry (:func:`deciding`): a transition that left a consultation state with a ``result`` (not one
  that stays, like ``vertagen``), or a branch outcome ``adopted`` or ``rejected``. Deferrals, meetings and
  notes decide nothing. The decision date and result shown for a body are those of its deciding entry.
- A **follow-up** of a decision is a child paper created by it (planned children are not yet papers).
- Its **target date** is the due moment of the child's running deadline due first (``next_due``; for the
  Umsetzungsauftrag its ``zieltermin`` once work began, before that the deadline to begin), and its
  **responsible** are the recipients of that deadline (the members of its ``notify`` roles).
- A child is **verzögert** in a state marked ``delayed: true``, **erledigt** in a final state, else **offen**.

The traffic light (:func:`light`): rot when the child is delayed or its target date has passed; gelb when the
target date falls within ``warn_days`` working days of the child's calendar; grün otherwise (also without a
target date); none for a finished child. The list is sorted red first, then by target date: the store keeps
per row a sort moment (:func:`sort_moment`) that puts delayed children first, so that the order is one index
range whatever the clock says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from .calendar import shift, working_calendar
from .definition import Definition, Offset
from .i18n import N_

__all__ = [
    "DEFAULT_WARN_DAYS",
    "DELAYED_SORT",
    "LIGHTS",
    "NO_TARGET_SORT",
    "STATUSES",
    "Decided",
    "DecisionItem",
    "Light",
    "Status",
    "cursor_text",
    "deciding",
    "light",
    "parse_cursor",
    "sort_moment",
    "warn_until",
]

Status = Literal["offen", "verzoegert", "erledigt"]
#: The status filter's values: offen (every unfinished child, delayed ones included), verzoegert, erledigt.
STATUSES: tuple[Status, ...] = ("offen", "verzoegert", "erledigt")
Light = Literal["rot", "gelb", "gruen"]
#: The lights with their German words (translated where shown).
LIGHTS: Mapping[str, str] = {"rot": N_("red"), "gelb": N_("yellow"), "gruen": N_("green")}
#: Working days before the target date from which a follow-up is yellow.
DEFAULT_WARN_DAYS = 10
#: The sort moment of a delayed child: before every date.
DELAYED_SORT = datetime(1970, 1, 1, tzinfo=UTC)
#: The sort moment of a child without a target date: after every date.
NO_TARGET_SORT = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class Decided:
    """A body's deciding entry: when, with which result (None: a branch outcome without text)."""

    body: str
    at: datetime
    result: str | None


def deciding(entries: Iterable[tuple[str, str | None, str, str | None, datetime, Mapping[str, Any]]]
             ) -> list[Decided]:
    """The bodies that decided a paper, each by its latest deciding entry, from the paper's entries in order as
    (kind, from_state, to_state, body, at, payload): a ``transition`` out of a consultation state (the entry's
    body) to another state with a ``result``, or a ``branch`` entry with the outcome ``adopted``/``rejected``."""
    latest: dict[str, Decided] = {}
    for kind, from_state, to_state, body, at, payload in entries:
        if body is None:
            continue
        if kind == "transition":
            if from_state == to_state or not payload.get("result"):
                continue
        elif kind != "branch" or payload.get("outcome") not in ("adopted", "rejected"):
            continue
        latest[body] = Decided(body, at, payload.get("result"))
    return sorted(latest.values(), key=lambda d: (d.at, d.body))


def sort_moment(target: datetime | None, delayed: bool) -> datetime:
    """The moment a follow-up sorts by: delayed first, then by target date, none last."""
    if delayed:
        return DELAYED_SORT
    return NO_TARGET_SORT if target is None else target


def warn_until(definition: Definition, now: datetime, warn_days: int) -> datetime:
    """The end of the yellow window: the end of the day ``warn_days`` working days after today in the calendar
    and time zone of the child's workflow."""
    zone = ZoneInfo(definition.timezone)
    today = now.astimezone(zone).date()
    day: date = shift(working_calendar(definition.calendar), today, Offset("working_days", warn_days), 1)
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone).astimezone(UTC)


def light(target: datetime | None, delayed: bool, final: bool, now: datetime, yellow_until: datetime
          ) -> Light | None:
    """The traffic light of a follow-up (None: finished)."""
    if final:
        return None
    if delayed or (target is not None and target < now):
        return "rot"
    if target is not None and target <= yellow_until:
        return "gelb"
    return "gruen"


@dataclass(frozen=True)
class DecisionItem:
    """One follow-up of a decision as the store reads it: the deciding body, the parent paper and its deciding
    entry, the follow-up's name and number, and the child's workflow, definition, state and target date, and
    the name of the deadline that gives the target date (None: none running)."""

    body: str
    reference: str
    title: str
    decided_at: datetime
    result: str | None
    follow_up: str
    n: int
    child: str
    child_title: str
    workflow: str
    version: int
    definition_hash: str
    state: str
    delayed: bool
    final: bool
    target_at: datetime | None
    deadline: str | None
    #: The row's place in the order (its sort moment and id): the next page starts after it.
    key: tuple[datetime, int]


def cursor_text(key: tuple[datetime, int]) -> str:
    """A page cursor as it goes into a link: the sort moment and id of the last row shown ("ISO~id")."""
    return f"{key[0].isoformat()}~{key[1]}"


def parse_cursor(text: str) -> tuple[datetime, int]:
    """The inverse of :func:`cursor_text`; ValueError for anything else."""
    moment_text, _, ident = text.partition("~")
    moment = datetime.fromisoformat(moment_text)
    if moment.tzinfo is None or not (ident.isascii() and ident.isdigit() and len(ident) < 19):
        raise ValueError(text)
    return moment.astimezone(UTC), int(ident)
