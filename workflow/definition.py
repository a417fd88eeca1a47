"""The frozen, typed model of a workflow definition and its graph checks. No I/O here."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from .i18n import _

__all__ = [
    "ATTACH_FORMATS",
    "ATTACH_REPORTS",
    "BODY_ROLE",
    "BUILTIN_FIELDS",
    "SIGNOFFS",
    "Attachment",
    "Body",
    "Calendar",
    "Consultation",
    "Deadline",
    "Definition",
    "Due",
    "Escalation",
    "FieldDef",
    "FollowUp",
    "Join",
    "Offset",
    "Parallel",
    "Signoff",
    "State",
    "Transition",
    "graph_problems",
    "humanise",
]

FieldType = Literal["text", "bool", "int", "date", "datetime", "list"]
Outcome = Literal["adopted", "rejected", "deferred"]
OffsetUnit = Literal["days", "working_days", "months", "invitation_period"]

#: In ``roles`` and ``notify``, ``body`` stands for the contact of the state's or branch's body.
BODY_ROLE = "body"
#: Fields every trigger may carry without a declaration.
BUILTIN_FIELDS = ("result", "meeting")
#: ``dest`` value meaning "stay in the source state and re-enter it".
SAME = "="
#: In ``requires``: the transition needs every sign-off of its source state (``signoff``).
SIGNOFFS = "signoffs"
#: The orders a state's sign-offs may come in.
SIGNOFF_ORDERS = ("any", "sequence")

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: FieldType
    required: bool = False
    default: Any = None


@dataclass(frozen=True)
class Body:
    id: str
    name: str
    invitation_days: int
    contact: str | None = None
    #: Where the body meets, and how long a meeting lasts: for the calendar entries of its meetings.
    location: str | None = None
    meeting_hours: float = 2.0


@dataclass(frozen=True)
class Consultation:
    body: str
    role: str


@dataclass(frozen=True)
class Join:
    """``quorum`` is None for ``join: all``; ``none`` for ``join: none`` (an extension of the language:
    branches only record their outcomes, e.g. hearings, and the state is left by its own transitions)."""

    quorum: int | None = None
    none: bool = False

    def needed(self, branch_count: int) -> int:
        return branch_count if self.quorum is None else self.quorum


@dataclass(frozen=True)
class Parallel:
    bodies: tuple[str, ...]
    role: str
    join: Join
    on_success: str | None
    on_failure: str | None


@dataclass(frozen=True)
class Signoff:
    """The Mitzeichnung of a state: the roles that must sign the paper off before a transition that
    ``requires: [signoffs]`` may fire; ``order`` "sequence": in the order of ``roles``."""

    roles: tuple[str, ...]
    order: Literal["any", "sequence"] = "any"


@dataclass(frozen=True)
class State:
    id: str
    label: str
    initial: bool = False
    final: bool = False
    consultation: Consultation | None = None
    parallel: Parallel | None = None
    signoff: Signoff | None = None
    #: A paper in this state is behind its plan (``delayed: true``): red in the Beschlusskontrolle.
    delayed: bool = False

    @property
    def waits_for_meeting(self) -> bool:
        return self.consultation is not None or self.parallel is not None


@dataclass(frozen=True)
class Transition:
    """One entry of ``transitions``; ``sources`` has ``"*"`` already expanded."""

    trigger: str
    sources: tuple[str, ...]
    dest: str | None
    roles: tuple[str, ...]
    requires: tuple[str, ...] = ()
    branch: Outcome | None = None
    index: int = 0
    #: Document fields this trigger may set besides those it requires (``sets``); no other field.
    sets: tuple[str, ...] = ()
    #: Recorded without leaving or re-entering the state (``internal: true``).
    internal: bool = False
    #: A minimum period: (anchor "entered" or a date/datetime field, offset) before which it cannot fire.
    not_before: tuple[str, Offset] | None = None
    #: The German text people read for this trigger (``label``); None: the trigger id humanised.
    label: str | None = None
    #: Firing needs a confirmation with a reason (``confirm: true``); the engine enforces it.
    confirm: bool = False

    def settable(self) -> tuple[str, ...]:
        """The document fields a firing of this trigger may carry: the required ones and ``sets``."""
        return tuple(dict.fromkeys(f for f in (*self.requires, *self.sets)
                                   if f not in ("result", "meeting", SIGNOFFS)))

    @property
    def needs_signoffs(self) -> bool:
        """It fires only once every sign-off of its source state is given (``requires: [signoffs]``)."""
        return SIGNOFFS in self.requires

    def dest_for(self, source: str) -> str | None:
        return source if self.dest == SAME else self.dest


@dataclass(frozen=True)
class Offset:
    unit: OffsetUnit
    amount: int = 0


@dataclass(frozen=True)
class Due:
    """When a deadline is due: ``offset`` before or after its anchor. The anchor is the state's (or
    branch's) meeting (always ``before``), the moment the state was entered (always ``after``), or a
    ``date``/``datetime`` field of the paper (either way; a deadline on an unset field does not run)."""

    anchor: str  # "meeting" | "entered" | a field name
    offset: Offset
    before: bool = False

    @property
    def sign(self) -> int:
        return -1 if self.before else 1

    @property
    def field(self) -> str | None:
        """The field the deadline counts from, or None for the meeting and entering the state."""
        return None if self.anchor in ("meeting", "entered") else self.anchor


@dataclass(frozen=True)
class Escalation:
    after: Offset
    notify: tuple[str, ...]


@dataclass(frozen=True)
class Deadline:
    name: str
    label: str
    states: tuple[str, ...]
    due: Due
    remind: tuple[Offset, ...] = ()
    notify: tuple[str, ...] = ()
    escalate: Escalation | None = None
    #: The instruction shown in mails, pages and `deadlines`.
    description: str | None = None
    #: Triggers (or ``meeting``: the state's or branch's meeting is set) that mark the deadline done.
    done_by: tuple[str, ...] = ()


#: What ``attach`` can attach (decisions: the Bericht über offene Beschlüsse), and in which forms.
ATTACH_REPORTS = ("decisions",)
ATTACH_FORMATS = ("pdf", "html")


@dataclass(frozen=True)
class Attachment:
    """A document the engine attaches to each child of a follow-up when it creates it (``attach``): today the
    Bericht über offene Beschlüsse (``report: decisions``) of a body, as it stands at that moment."""

    body: str
    report: str = "decisions"
    status: str = "offen"
    warn_days: int | None = None
    format: str = "pdf"


@dataclass(frozen=True)
class FollowUp:
    """Papers a paper creates in another workflow (``follow_up``): once, one per item of a list field
    (``for_each``), or recurring every ``every`` (``count`` times, or while the due day is not after the date
    field ``until``). Templates hold placeholders such as ``{reference}`` and ``{n}``."""

    name: str
    when: str
    workflow: str
    reference: str
    fields: Mapping[str, str] = field(default_factory=dict)
    #: A role of the parent: the child's creator of record (the engine creates it as ``system`` on its behalf).
    actor: str | None = None
    every: Offset | None = None
    count: int | None = None
    until: str | None = None
    for_each: str | None = None
    #: Documents attached to each child when it is created (the Bericht über offene Beschlüsse of a body).
    attach: tuple[Attachment, ...] = ()
    #: (line, column) of the keys the folder check reports on: ``workflow`` and ``fields.NAME``.
    where: Mapping[str, tuple[int, int]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def recurring(self) -> bool:
        return self.every is not None


@dataclass(frozen=True)
class Calendar:
    holidays: str | None = None
    closed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Definition:
    """A validated workflow definition. Build it with :func:`workflow.loader.load_definition`."""

    workflow: str
    version: int
    title: str
    timezone: str
    calendar: Calendar
    roles: Mapping[str, tuple[str, ...]]
    bodies: Mapping[str, Body]
    fields: Mapping[str, FieldDef]
    states: Mapping[str, State]
    transitions: tuple[Transition, ...]
    deadlines: tuple[Deadline, ...] = ()
    follow_ups: tuple[FollowUp, ...] = ()
    source_hash: str = ""
    source_path: str = ""
    _by_source: Mapping[str, tuple[Transition, ...]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, list[Transition]] = {s: [] for s in self.states}
        for t in self.transitions:
            for s in t.sources:
                index.setdefault(s, []).append(t)
        object.__setattr__(self, "_by_source", {k: tuple(v) for k, v in index.items()})

    @property
    def key(self) -> tuple[str, int]:
        return (self.workflow, self.version)

    @property
    def initial(self) -> State:
        return next(s for s in self.states.values() if s.initial)

    def transitions_from(self, state: str) -> tuple[Transition, ...]:
        return self._by_source.get(state, ())

    def find(self, state: str, trigger: str) -> Transition | None:
        for t in self.transitions_from(state):
            if t.trigger == trigger:
                return t
        return None

    @cached_property
    def trigger_names(self) -> frozenset[str]:
        return frozenset(t.trigger for t in self.transitions)

    def triggers(self) -> list[str]:
        return sorted(self.trigger_names)

    @cached_property
    def _trigger_labels(self) -> Mapping[str, str]:
        labels: dict[str, str] = {}
        for t in self.transitions:
            if t.label and t.trigger not in labels:
                labels[t.trigger] = t.label
        return labels

    def trigger_label(self, trigger: str) -> str:
        """What people read for ``trigger``: its ``label`` (the first transition of that trigger that has
        one), else the id humanised ("kenntnis_nehmen" → "Kenntnis nehmen")."""
        return self._trigger_labels.get(trigger) or humanise(trigger)

    def body_of(self, state: str) -> Body | None:
        consultation = self.states[state].consultation
        return self.bodies[consultation.body] if consultation else None

    def members(self, role: str, body: str | None) -> tuple[str, ...]:
        """E-mail addresses holding ``role``; ``body`` resolves the pseudo-role ``body``."""
        if role == BODY_ROLE:
            contact = self.bodies[body].contact if body else None
            return (contact,) if contact else ()
        return self.roles.get(role, ())

    def holds_any(self, actor: str, roles: tuple[str, ...], body: str | None) -> bool:
        wanted = actor.strip().lower()
        return any(wanted == m.lower() for r in roles for m in self.members(r, body))

    def edges(self) -> Iterator[tuple[str, str, str]]:
        """(source, dest, label) of every state change, the joins' automatic moves included."""
        for t in self.transitions:
            for s in t.sources:
                dest = t.dest_for(s)
                if dest is not None:
                    yield s, dest, t.trigger
        for state in self.states.values():
            p = state.parallel
            if p and p.on_success and p.on_failure:
                yield state.id, p.on_success, _("join met")
                yield state.id, p.on_failure, _("join failed")


def humanise(name: str) -> str:
    """An id as words for people: "kenntnis_nehmen" → "Kenntnis nehmen"."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def graph_problems(d: Definition) -> list[tuple[Path, str]]:
    """Named graph checks: reachability, dead ends, final states without exits."""
    problems: list[tuple[Path, str]] = []
    out: dict[str, set[str]] = {s: set() for s in d.states}
    back: dict[str, set[str]] = {s: set() for s in d.states}
    for src, dst, _label in d.edges():
        out[src].add(dst)
        back[dst].add(src)

    def closure(starts: list[str], graph: dict[str, set[str]]) -> set[str]:
        seen = set(starts)
        queue = deque(starts)
        while queue:
            for nxt in graph[queue.popleft()]:
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return seen

    reachable = closure([d.initial.id], out)
    finals = [s.id for s in d.states.values() if s.final]
    can_finish = closure(finals, back)
    for s in d.states.values():
        own_exits = {dst for dst in out[s.id] if dst != s.id}
        if s.final and d.transitions_from(s.id):
            problems.append((("states", s.id), _("final state '{state}' has outgoing transitions").format(state=s.id)))
        if s.id not in reachable:
            problems.append((("states", s.id), _("state '{state}' is unreachable from '{initial}'").format(
                state=s.id, initial=d.initial.id)))
        elif not s.final and not own_exits:
            problems.append((("states", s.id), _("state '{state}' is a dead end: not final and no way out").format(
                state=s.id)))
        elif not s.final and s.id not in can_finish:
            problems.append((("states", s.id), _("state '{state}' can never reach a final state").format(
                state=s.id)))
    return problems
