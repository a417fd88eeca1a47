"""Warnings about definitions that are valid but probably not meant: `councilflow definitions lint`.

The loader refuses what cannot work; these rules point at what works but helps nobody (a role nobody
uses, a reminder nobody gets, a reminder before its deadline starts). Each rule is a pure function over
the loaded :class:`Definition` and the positions :func:`workflow.yamlsafe.load_located` recorded, so a
warning names the key concerned as ``path:line:col``. Warnings are German: process owners read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path as FsPath

from .definition import BODY_ROLE, Definition, Offset, State, Transition
from .errors import DefinitionError
from .i18n import _, ngettext
from .loader import definition_files, load_definition_file
from .yamlsafe import Located, load_located

__all__ = ["RULES", "LintWarning", "lint", "lint_file", "lint_paths"]

Path = tuple[str | int, ...]

#: Fields with a meaning of their own (docs/definition-language.md, "Feldnamen mit besonderer Bedeutung"):
#: the pages, the OParl export and import use them without any transition naming them.
SPECIAL_FIELDS = ("title", "department", "public", "references")


@dataclass(frozen=True)
class LintWarning:
    """One warning, located like a load problem; ``rule`` names the rule that found it."""

    path: str
    line: int
    column: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: warning: {self.message}"


@dataclass(frozen=True)
class _Hit:
    where: Path
    message: str
    key: bool = False


Rule = Callable[[Definition], Iterator[_Hit]]


def _q(names: Iterable[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


# --- the rules -----------------------------------------------------------------------------------


def unused_roles(d: Definition) -> Iterator[_Hit]:
    """A role that no transition may fire, no deadline reminds or escalates to and no state asks to sign off."""
    used = {r for t in d.transitions for r in t.roles}
    used.update(r for s in d.states.values() if s.signoff for r in s.signoff.roles)
    for dl in d.deadlines:
        used.update(dl.notify)
        if dl.escalate:
            used.update(dl.escalate.notify)
    for role in d.roles:
        if role not in used:
            yield _Hit(("roles", role), _("role '{role}' is used by no transition and no deadline").format(role=role),
                       key=True)


def _transition_bodies(d: Definition, t: Transition, source: str) -> list[str | None]:
    """Whom ``body`` means for ``t`` fired in ``source`` (as workflow/access.py resolves it): the branch's
    body for a branch trigger, else the state's consultation body (None: the state has none)."""
    spec = d.states[source]
    if t.branch is not None and spec.parallel is not None:
        return list(spec.parallel.bodies)
    return [spec.consultation.body if spec.consultation else None]


def _deadline_bodies(d: Definition, state: str) -> list[str | None]:
    """Whom ``body`` means for a deadline in ``state`` (the slots of workflow/deadlines.py)."""
    spec = d.states[state]
    bodies: list[str | None] = list(spec.parallel.bodies) if spec.parallel else []
    if spec.parallel is None or spec.consultation is not None:
        bodies.append(spec.consultation.body if spec.consultation else None)
    return bodies


def _reaches_nobody(d: Definition, pairs: Iterable[tuple[str, str | None]]) -> str | None:
    """Where ``body`` reaches nobody among (state, body) pairs, or None if it reaches someone everywhere."""
    no_body = sorted({s for s, b in pairs if b is None})
    no_contact = sorted({b for _, b in pairs if b is not None and not d.bodies[b].contact})
    places = []
    if no_body:
        places.append(ngettext("in state {states} (no body)", "in states {states} (no body)",
                               len(no_body)).format(states=_q(no_body)))
    if no_contact:
        places.append(ngettext("for body {bodies} (no contact)", "for bodies {bodies} (no contact)",
                               len(no_contact)).format(bodies=_q(no_contact)))
    if len(places) == 2:
        return _("{first} and {second}").format(first=places[0], second=places[1])
    return places[0] if places else None


def body_without_contact(d: Definition) -> Iterator[_Hit]:
    """``body`` in a transition's roles or a deadline's notify where the body has no contact (or there is
    no body): the pseudo-role then reaches nobody there."""
    for t in d.transitions:
        if BODY_ROLE in t.roles:
            why = _reaches_nobody(d, [(s, b) for s in t.sources for b in _transition_bodies(d, t, s)])
            if why:
                yield _Hit(("transitions", t.index, "roles", t.roles.index(BODY_ROLE)),
                           _("'body' in the roles of transition '{trigger}' reaches nobody {where}").format(
                               trigger=t.trigger, where=why))
    for i, dl in enumerate(d.deadlines):
        pairs = [(s, b) for s in dl.states for b in _deadline_bodies(d, s)]
        lists: list[tuple[Path, tuple[str, ...], str]] = [(("notify",), dl.notify, "notify")]
        if dl.escalate:
            lists.append((("escalate", "notify"), dl.escalate.notify, "escalate.notify"))
        for where, roles, what in lists:
            if BODY_ROLE in roles:
                why = _reaches_nobody(d, pairs)
                if why:
                    yield _Hit(("deadlines", i, *where, roles.index(BODY_ROLE)),
                               _("'body' in {key} of deadline '{deadline}' reaches nobody {where}").format(
                                   key=what, deadline=dl.name, where=why))


def _entered_without_meeting(d: Definition, state: State) -> bool:
    """Whether a paper can enter ``state`` without a meeting being set on the way."""
    if state.initial or state.parallel is not None:  # a parallel state's branches start without meetings
        return True
    for t in d.transitions:
        if any(t.dest_for(s) == state.id for s in t.sources) and "meeting" not in t.requires:
            return True
    return any(p.on_success == state.id or p.on_failure == state.id
               for s in d.states.values() if (p := s.parallel) is not None)


def meeting_never_asked(d: Definition) -> Iterator[_Hit]:
    """A state waiting for a meeting without a deadline done by its meeting: nobody is reminded to set
    the date. Skipped when every way into the state sets the meeting (``requires: [meeting]``)."""
    asked = {s for dl in d.deadlines if "meeting" in dl.done_by for s in dl.states}
    for state in d.states.values():
        if state.waits_for_meeting and state.id not in asked and _entered_without_meeting(d, state):
            yield _Hit(("states", state.id),
                       _("state '{state}' waits for a meeting, but no deadline reminds anyone to set it (no deadline "
                         "with done_by: [meeting])").format(state=state.id), key=True)


def notify_without_remind(d: Definition) -> Iterator[_Hit]:
    """``notify`` without ``remind`` sends no reminder; ``remind`` without ``notify`` reminds nobody."""
    for i, dl in enumerate(d.deadlines):
        if dl.notify and not dl.remind:
            yield _Hit(("deadlines", i, "notify"),
                       _("deadline '{deadline}' notifies {roles} but never reminds (no remind): no reminder mail "
                         "goes out, the deadline is only in “My deadlines” and in the calendar").format(
                           deadline=dl.name, roles=_q(dl.notify)),
                       key=True)
        if dl.remind and not dl.notify:
            yield _Hit(("deadlines", i, "remind"),
                       _("deadline '{deadline}' has remind but no notify: the reminders reach nobody").format(
                           deadline=dl.name),
                       key=True)


def escalation_to_same(d: Definition) -> Iterator[_Hit]:
    """An escalation to exactly the people the deadline already reminds: it tells nobody new."""
    for i, dl in enumerate(d.deadlines):
        if not dl.escalate or not dl.notify:
            continue

        def people(roles: tuple[str, ...]) -> frozenset[str]:
            return frozenset(r if r == BODY_ROLE else m.lower() for r in roles for m in d.roles.get(r, (r,)))

        if people(dl.escalate.notify) == people(dl.notify):
            yield _Hit(("deadlines", i, "escalate", "notify"),
                       _("deadline '{deadline}' escalates to the same people it reminds already ({roles}): the "
                         "escalation reaches nobody new").format(deadline=dl.name, roles=_q(dl.escalate.notify)))


#: Offsets in calendar days in the typical case: 5 working days are a week, a month is 365.25/12 days.
#: Holidays make single cases longer; a lint only needs the ordinary week.
_TYPICAL_DAYS = {"days": Fraction(1), "working_days": Fraction(7, 5), "months": Fraction(1461, 48)}


def _typical_days(offset: Offset) -> Fraction:
    return _TYPICAL_DAYS[offset.unit] * offset.amount


def remind_before_start(d: Definition) -> Iterator[_Hit]:
    """A reminder further before the due moment than the deadline runs: it falls before the deadline
    starts and goes out at once when the state is entered (not when it was meant to).

    Only ``after: entered`` deadlines have a known start. A ``before: meeting`` deadline starts when the
    meeting is set, which may be months or a day ahead; the body's invitation period bounds the meeting's
    distance from the invitation, not from the start, so it says nothing here and such deadlines are
    skipped, as are deadlines counted from a field (set whenever someone sets it)."""
    from .deadlines import due_label, offset_label

    for i, dl in enumerate(d.deadlines):
        if dl.due.anchor != "entered":
            continue
        length = _typical_days(dl.due.offset)
        for j, offset in enumerate(dl.remind):
            if _typical_days(offset) > length:
                yield _Hit(("deadlines", i, "remind", j),
                           _("the reminder {offset} before the deadline falls before deadline '{deadline}' starts "
                             "(due {due}): it goes out on entry already").format(
                               offset=offset_label(offset), deadline=dl.name, due=due_label(dl.due)))


def label_missing(d: Definition, doc: Located) -> Iterator[_Hit]:
    """A state or deadline without a label, or with its id as label: mails and pages show the bare id."""
    for sid, state in d.states.items():
        where: Path = ("states", sid, "label")
        if where not in doc.key_positions:
            yield _Hit(("states", sid), _("state '{state}' has no label: mails and pages show the id").format(
                state=sid), key=True)
        elif state.label.strip() == sid:
            yield _Hit(where, _("the label of state '{state}' equals its id: please give a readable name").format(
                state=sid))
    for i, dl in enumerate(d.deadlines):
        where = ("deadlines", i, "label")
        if where not in doc.key_positions:
            yield _Hit(("deadlines", i, "name"),
                       _("deadline '{deadline}' has no label: mails and pages show the id").format(deadline=dl.name),
                       key=True)
        elif dl.label.strip() == dl.name:
            yield _Hit(where, _("the label of deadline '{deadline}' equals its id: please give a readable "
                                "name").format(deadline=dl.name))


def unused_fields(d: Definition) -> Iterator[_Hit]:
    """A field that is never required, set by a transition, counted from, used by a follow-up, nor one of the
    special names."""
    from .follow_up import placeholders

    used = set(SPECIAL_FIELDS)
    for t in d.transitions:
        used.update(t.requires)
        used.update(t.sets)
        if t.not_before is not None:
            used.add(t.not_before[0])
    used.update(dl.due.anchor for dl in d.deadlines)
    for follow in d.follow_ups:  # a list the follow-ups go through, a date they end at, a field they copy
        used.update(name for name in (follow.for_each, follow.until) if name)
        for template in (follow.reference, *follow.fields.values()):
            used.update(placeholders(template))
    for f in d.fields.values():
        if not f.required and f.name not in used:
            yield _Hit(("fields", f.name),
                       _("field '{field}' is never required (required, requires), set by no transition (sets) and "
                         "used by no deadline").format(field=f.name), key=True)


#: Every rule by name, in the order their warnings are reported for one key.
RULES: dict[str, Callable[[Definition, Located], Iterator[_Hit]]] = {
    "unused-role": lambda d, _: unused_roles(d),
    "body-without-contact": lambda d, _: body_without_contact(d),
    "meeting-never-asked": lambda d, _: meeting_never_asked(d),
    "notify-without-remind": lambda d, _: notify_without_remind(d),
    "escalation-to-same": lambda d, _: escalation_to_same(d),
    "remind-before-start": lambda d, _: remind_before_start(d),
    "label-missing": label_missing,
    "unused-field": lambda d, _: unused_fields(d),
}


def lint(definition: Definition, doc: Located) -> list[LintWarning]:
    """Every warning for a valid ``definition`` parsed as ``doc``, in file order."""
    out = []
    for name, rule in RULES.items():
        for hit in rule(definition, doc):
            line, col = doc.where(hit.where, key=hit.key)
            out.append(LintWarning(definition.source_path, line, col, name, hit.message))
    return sorted(out, key=lambda w: (w.line, w.column))


def lint_file(path: FsPath | str, checks: Sequence[Callable[[Definition, FsPath], None]] = ()
              ) -> list[LintWarning]:
    """Load ``path`` and run ``checks`` on it (DefinitionError if it is invalid), then lint it."""
    definition = load_definition_file(path)
    for check in checks:
        check(definition, FsPath(path).parent)
    # The loader keeps no positions; the text parses again as it just did (it is valid).
    doc = load_located(FsPath(path).read_text(encoding="utf-8"), str(path))
    return lint(definition, doc)


def lint_paths(paths: Sequence[str], *, strict: bool, echo: Callable[..., None],
               checks: Sequence[Callable[[Definition, FsPath], None]] = ()) -> int:
    """The command: warnings on stdout, load problems on stderr; the exit code (3 if a file is invalid,
    1 with ``strict`` if there are warnings, else 0). ``checks`` are the ones `validate` runs too."""
    from .errors import InputError

    files = definition_files(paths)
    if not files:
        raise InputError(_("no definition files in {paths}").format(paths=", ".join(paths)))
    failed = warned = 0
    for f in files:
        if not f.exists():
            echo(_("{path}:1:1: no such file").format(path=f), err=True)
            failed += 1
            continue
        try:
            warnings = lint_file(f, checks)
        except DefinitionError as exc:
            failed += 1
            for problem in exc.problems:
                echo(str(problem), err=True)
            continue
        for w in warnings:
            echo(str(w))
        warned += len(warnings)
        if not warnings:
            echo(_("{path}: ok, no warnings").format(path=f))
    if warned:
        echo(ngettext("{count} warning", "{count} warnings", warned).format(count=warned))
    if failed:
        return DefinitionError.exit_code
    return 1 if strict and warned else 0
