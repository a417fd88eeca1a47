"""Safe YAML -> :class:`Definition`. Every problem is reported as ``path:line:col: message``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path as FsPath
from typing import Any, cast

from . import language as lang
from .definition import (
    ATTACH_FORMATS,
    ATTACH_REPORTS,
    BODY_ROLE,
    BUILTIN_FIELDS,
    SAME,
    SIGNOFF_ORDERS,
    SIGNOFFS,
    Attachment,
    Body,
    Calendar,
    Consultation,
    Deadline,
    Definition,
    Due,
    Escalation,
    FieldDef,
    FollowUp,
    Join,
    Offset,
    Parallel,
    Signoff,
    State,
    Transition,
    graph_problems,
)
from .errors import DefinitionError, Problem, did_you_mean
from .i18n import N_, _, pgettext
from .values import clean_name, is_email
from .yamlsafe import Located, YamlProblems, load_located

__all__ = ["definition_files", "load_definition", "load_definition_file", "source_hash"]

Path = tuple[str | int, ...]
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_MMDD = re.compile(r"(\d\d)-(\d\d)\Z")
_FIELD_TYPES = lang.FIELD_TYPES
_OUTCOMES = lang.OUTCOMES
#: Trigger names the engine uses itself, or that would shadow the machine's model attributes.
_RESERVED_TRIGGERS = set(lang.RESERVED_TRIGGERS)

#: What ``_Checker.ref`` reports when a name is not one of the known ones, by the kind of name.
_UNKNOWN = {"body": N_("unknown body '{name}'{hint}"), "state": N_("unknown state '{name}'{hint}"),
            "field": N_("unknown field '{name}'{hint}"), "role": N_("unknown role '{name}'{hint}"),
            "date field": N_("unknown date field '{name}'{hint}"),
            "list field": N_("unknown list field '{name}'{hint}")}


def source_hash(text: str) -> str:
    """SHA-256 of a definition's exact text: a paper remembers the one it started on."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _type_name(kind: type) -> str:
    """What a value of ``kind`` is, for "… must be {kind}"."""
    names = {str: pgettext("value type", "text"), int: pgettext("value type", "an integer"),
             bool: pgettext("value type", "true or false"), list: pgettext("value type", "a list"),
             dict: pgettext("value type", "a mapping")}
    return names[kind]


def _kind_name(kind: str) -> str:
    """A kind of name (body, state, field, role), for "… must be text"."""
    names = {"body": pgettext("kind of name", "body"), "state": pgettext("kind of name", "state"),
             "field": pgettext("kind of name", "field"), "role": pgettext("kind of name", "role"),
             "date field": pgettext("kind of name", "date field"),
             "list field": pgettext("kind of name", "list field")}
    return names[kind]


def _describe(value: Any) -> str:
    if value is None:
        return _("nothing")
    if isinstance(value, bool):
        return _("boolean {value}").format(value=str(value).lower())
    if isinstance(value, dict):
        return pgettext("value type", "a mapping")
    if isinstance(value, list):
        return pgettext("value type", "a list")
    if isinstance(value, (int, float)):
        return _("number {value}").format(value=value)
    return _("text '{value}'").format(value=value)


def _of(key: str, what: str) -> str:
    """A key of a mapping, for the messages: ``label of state 'entwurf'``."""
    # TRANSLATORS: key is a key of the definition language (label, roles …), what names the mapping
    # ("state 'entwurf'", "transition 3").
    return _("{key} of {what}").format(key=key, what=what)


class _Map(dict[str, Any]):
    """A parsed YAML mapping whose values are untyped until checked."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key, default)


class _Checker:
    """Walks the parsed YAML, collecting every problem instead of stopping at the first."""

    def __init__(self, doc: Located, path: str) -> None:
        self.doc = doc
        self.path = path
        self.problems: list[Problem] = []
        #: Problems of the file's shape (a wrong type, an unknown or missing key): with a wrong type, the
        #: checks that build on the shape (references, the graph) would only report its consequences.
        self.shape: list[Problem] = []
        self.wrong_type = False

    def err(self, where: Path, message: str, *, key: bool = False, shape: bool = False) -> None:
        line, col = self.doc.where(where, key=key)
        self.problems.append(Problem(self.path, line, col, message))
        if shape:
            self.shape.append(self.problems[-1])

    def typed(self, value: Any, where: Path, kind: type, what: str) -> bool:
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            self.wrong_type = True
            self.err(where, _("{what} must be {kind}, not {value}").format(
                what=what, kind=_type_name(kind), value=_describe(value)), shape=True)
        return ok

    def reported(self) -> list[Problem]:
        """The problems to show, in file order: after a wrong type only the shape problems, not the
        follow-ons ("unknown state 'x'" where 'x' was given as text instead of a mapping)."""
        return sorted(self.shape if self.wrong_type else self.problems, key=lambda p: (p.line, p.column))

    def mapping(
        self, value: Any, where: Path, what: str, required: Iterable[str], optional: Iterable[str]
    ) -> _Map | None:
        if not self.typed(value, where, dict, what):
            return None
        req, opt = list(required), list(optional)
        allowed = req + opt
        for k in value:
            if k not in allowed:
                hint = did_you_mean(k, allowed)
                self.err(
                    (*where, k),
                    _("{what}: unknown key '{key}'{hint}; allowed: {allowed}").format(
                        what=what, key=k, hint=hint, allowed=", ".join(allowed)),
                    key=True,
                    shape=True,
                )
        for k in req:
            if k not in value:
                self.err(where, _("{what}: the required key '{key}' is missing").format(what=what, key=k),
                         shape=True)
        return _Map(value)

    def name(self, value: Any, where: Path, what: str) -> bool:
        if not self.typed(value, where, str, what):
            return False
        if not _NAME.match(value):
            self.err(where, _("{what} '{value}' must be lower case letters, digits and _, starting with a "
                              "letter").format(what=what, value=value))
            return False
        return True

    def ref(self, value: Any, where: Path, kind: str, known: Iterable[str]) -> bool:
        """Check that ``value`` names one of ``known`` (a name of ``kind``: body, state, field, role), with a
        hint when it is close."""
        if not self.typed(value, where, str, _kind_name(kind)):
            return False
        names = list(known)
        if value not in names:
            self.err(where, _(_UNKNOWN[kind]).format(name=value, hint=did_you_mean(value, names)))
            return False
        return True

    def str_list(self, value: Any, where: Path, what: str) -> list[str]:
        if not self.typed(value, where, list, what):
            return []
        entry = _("entry of {what}").format(what=what)
        return [v for i, v in enumerate(value) if self.typed(v, (*where, i), str, entry)]

    def choice(self, value: Any, where: Path, what: str, allowed: Sequence[str]) -> bool:
        """Check that ``value`` is one of ``allowed`` (with a hint when it is close)."""
        if isinstance(value, str) and value in allowed:
            return True
        self.err(where, _("{what} must be one of {allowed}, not {value}{hint}").format(
            what=what, allowed=", ".join(allowed), value=_describe(value), hint=did_you_mean(str(value), allowed)))
        return False

    def positive(self, value: Any, where: Path, what: str, minimum: int = 0) -> bool:
        if not self.typed(value, where, int, what):
            return False
        if value < minimum:
            self.err(where, _("{what} must be at least {minimum}, not {value}").format(
                what=what, minimum=minimum, value=value))
            return False
        return True


def _load_calendar(c: _Checker, raw: Any) -> Calendar:
    if raw is None:
        return Calendar()
    m = c.mapping(raw, ("calendar",), "calendar", lang.CALENDAR.required, lang.CALENDAR.optional)
    if m is None:
        return Calendar()
    hol = m.get("holidays")
    if hol is not None and c.typed(hol, ("calendar", "holidays"), str, "calendar.holidays"):
        country, _sep, subdiv = hol.partition("-")
        try:
            import holidays

            holidays.country_holidays(country, subdiv=subdiv or None)
        except NotImplementedError:
            c.err(("calendar", "holidays"),
                  _("unknown holiday calendar '{name}' (e.g. DE-NW, DE-BY, DE)").format(name=hol))
            hol = None
    closed: list[str] = []
    for i, day in enumerate(c.str_list(m.get("closed", []), ("calendar", "closed"), "calendar.closed")):
        match = _MMDD.match(day)
        try:
            if match:
                date(2024, int(match.group(1)), int(match.group(2)))  # every year; a leap year admits 02-29
            else:
                date.fromisoformat(day if len(day) == 10 else "x")  # that day only, e.g. a Rosenmontag
            closed.append(day)
        except ValueError:
            c.err(("calendar", "closed", i), _("closed day '{day}' is neither MM-DD (every year) nor YYYY-MM-DD "
                                               "(that day only)").format(day=day))
    return Calendar(holidays=hol, closed=tuple(closed))


def _load_roles(c: _Checker, raw: Any) -> dict[str, tuple[str, ...]]:
    roles: dict[str, tuple[str, ...]] = {}
    if raw is None or not c.typed(raw, ("roles",), dict, "roles"):
        return roles
    for name, members in raw.items():
        where: Path = ("roles", name)
        if not c.name(name, where, _("role name")):
            continue
        if name == BODY_ROLE:
            c.err(where, _("'{name}' is built in (the contact of the body) and cannot be defined").format(
                name=BODY_ROLE), key=True)
            continue
        emails = c.str_list(members, where, _("role '{name}'").format(name=name))
        for i, e in enumerate(emails):
            if not is_email(e):
                c.err((*where, i), _("'{email}' in role '{name}' is not an e-mail address").format(email=e, name=name))
        roles[name] = tuple(emails)
    return roles


def _load_bodies(c: _Checker, raw: Any) -> dict[str, Body]:
    bodies: dict[str, Body] = {}
    if raw is None or not c.typed(raw, ("bodies",), dict, "bodies"):
        return bodies
    for bid, spec in raw.items():
        where: Path = ("bodies", bid)
        what = _("body '{name}'").format(name=bid)
        m = c.mapping(spec, where, what, lang.BODY.required, lang.BODY.optional)
        if not c.name(bid, where, _("body id")) or m is None:
            continue
        name, days, contact = m.get("name"), m.get("invitation_days"), m.get("contact")
        ok = c.typed(name, (*where, "name"), str, _of("name", what)) if "name" in m else False
        ok = c.positive(days, (*where, "invitation_days"), _of("invitation_days", what)) and ok
        if (
            contact is not None
            and c.typed(contact, (*where, "contact"), str, _of("contact", what))
            and not is_email(contact)
        ):
                c.err((*where, "contact"), _("contact '{email}' of {what} is not an e-mail address").format(
                    email=contact, what=what))
        location, hours = m.get("location"), m.get("meeting_hours", 2)
        if location is not None and not c.typed(location, (*where, "location"), str, _of("location", what)):
            ok = False
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24:
            c.err((*where, "meeting_hours"), _("meeting_hours of {what} must be a number of hours above 0 and at "
                                               "most 24, not {value}").format(what=what, value=_describe(hours)))
            ok = False
        if ok:
            bodies[bid] = Body(bid, name, days, contact if isinstance(contact, str) else None,
                               str(location).strip() if location else None, float(hours))
    return bodies


def _field_value_ok(ftype: str, value: Any) -> bool:
    if ftype == "text":
        return isinstance(value, str)
    if ftype == "bool":
        return isinstance(value, bool)
    if ftype == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if ftype == "list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    from .values import parse_field_value

    try:
        parse_field_value(ftype, str(value), "UTC")
    except ValueError:
        return False
    return True


def _load_fields(c: _Checker, raw: Any) -> dict[str, FieldDef]:
    fields: dict[str, FieldDef] = {}
    if raw is None or not c.typed(raw, ("fields",), dict, "fields"):
        return fields
    for fname, spec in raw.items():
        where: Path = ("fields", fname)
        what = _("field '{name}'").format(name=fname)
        m = c.mapping(spec, where, what, lang.FIELD.required, lang.FIELD.optional)
        if not c.name(fname, where, _("field name")) or m is None:
            continue
        if fname in BUILTIN_FIELDS:
            c.err(where, _("'{name}' is a built-in field and cannot be declared").format(name=fname), key=True)
            continue
        ftype = m.get("type")
        if "type" in m and c.typed(ftype, (*where, "type"), str, _of("type", what)):
            if ftype not in _FIELD_TYPES:
                c.err(
                    (*where, "type"),
                    _("unknown type '{type}' of {what}{hint}; allowed: {allowed}").format(
                        type=ftype, what=what, hint=did_you_mean(ftype, _FIELD_TYPES), allowed=", ".join(_FIELD_TYPES)),
                )
                continue
        else:
            continue
        required = m.get("required", False)
        c.typed(required, (*where, "required"), bool, _of("required", what))
        default = m.get("default")
        if default is not None and not _field_value_ok(ftype, default):
            c.err((*where, "default"), _("default of {what} is not a valid {type}: {value}").format(
                what=what, type=ftype, value=_describe(default)))
            default = None
        fields[fname] = FieldDef(fname, ftype, required is True, default)
    return fields


def _load_states(c: _Checker, raw: Any, bodies: dict[str, Body],
                 roles: dict[str, tuple[str, ...]] | None = None) -> dict[str, State]:
    states: dict[str, State] = {}
    if not c.typed(raw, ("states",), dict, "states"):
        return states
    pending_joins: list[tuple[Path, str]] = []
    for sid, spec in raw.items():
        where: Path = ("states", sid)
        what = _("state '{name}'").format(name=sid)
        m = c.mapping(spec, where, what, lang.STATE.required, lang.STATE.optional)
        if not c.name(sid, where, _("state id")) or m is None:
            continue
        label = m.get("label", sid)
        c.typed(label, (*where, "label"), str, _of("label", what))
        initial = m.get("initial", False)
        final = m.get("final", False)
        c.typed(initial, (*where, "initial"), bool, _of("initial", what))
        c.typed(final, (*where, "final"), bool, _of("final", what))
        delayed = m.get("delayed", False)
        c.typed(delayed, (*where, "delayed"), bool, _of("delayed", what))
        if final is True and delayed is True:
            c.err(where, _("{what} is final and cannot be delayed").format(what=what))
        consultation = parallel = None
        if "consultation" in m:
            cm = c.mapping(m["consultation"], (*where, "consultation"), _of("consultation", what),
                           lang.CONSULTATION.required, lang.CONSULTATION.optional)
            if cm is not None and c.ref(cm.get("body"), (*where, "consultation", "body"), "body", bodies):
                role = cm.get("role")
                if c.typed(role, (*where, "consultation", "role"), str, _of("consultation.role", what)):
                    consultation = Consultation(cm["body"], role)
        if "parallel" in m:
            parallel = _load_parallel(c, m["parallel"], (*where, "parallel"), what, bodies, pending_joins)
        if consultation is not None and parallel is not None and not parallel.join.none:
            c.err(where, _("{what} cannot be both a consultation and parallel, unless the parallel join is "
                           "none").format(what=what))
        if final is True and (consultation or parallel):
            c.err(where, _("{what} is final and cannot wait for a consultation").format(what=what))
        signoff = _load_signoff(c, m["signoff"], (*where, "signoff"), what, roles or {}) if "signoff" in m else None
        if signoff is not None and final is True:
            c.err((*where, "signoff"), _("final {state} cannot ask for sign-offs: nothing follows it").format(
                state=what), key=True)
        states[sid] = State(
            sid,
            label if isinstance(label, str) else sid,
            initial is True,
            final is True,
            consultation,
            parallel,
            signoff,
            delayed is True,
        )
    for where, target in pending_joins:
        c.ref(target, where, "state", states)
    initials = [s.id for s in states.values() if s.initial]
    if not raw:
        c.err(("states",), _("states is empty: a workflow needs an initial state and a final one"), key=True)
    elif states and not initials:
        c.err(("states",), _("no initial state: mark exactly one state with 'initial: true'"), key=True)
    for extra in initials[1:]:
        c.err(("states", extra, "initial"),
              _("several initial states: '{first}' and '{other}'").format(first=initials[0], other=extra))
    return states


def _load_signoff(c: _Checker, raw: Any, where: Path, what: str, roles: dict[str, tuple[str, ...]]) -> Signoff | None:
    """A state's ``signoff``: the defined roles that must sign the paper off, and in which order."""
    m = c.mapping(raw, where, _of("signoff", what), lang.SIGNOFF.required, lang.SIGNOFF.optional)
    if m is None or "roles" not in m:
        return None
    members = c.str_list(m["roles"], (*where, "roles"), _("roles of the signoff of {state}").format(state=what))
    if isinstance(m["roles"], list) and not m["roles"]:
        c.err((*where, "roles"), _("signoff of {state} names no role: who is to sign it off?").format(state=what))
    for j, role in enumerate(members):
        if role == BODY_ROLE:
            c.err((*where, "roles", j), _("'{body}' cannot sign off (the contact of a body); name a role defined "
                                          "under roles").format(body=BODY_ROLE))
        elif c.ref(role, (*where, "roles", j), "role", roles) and role in members[:j]:
            c.err((*where, "roles", j), _("signoff of {state} names role '{role}' twice").format(state=what,
                                                                                                  role=role))
    order = m.get("order", "any")
    if order not in SIGNOFF_ORDERS:
        c.err((*where, "order"), _("order of the signoff of {state} must be {choices}, not {value}{hint}").format(
            state=what, choices=" | ".join(SIGNOFF_ORDERS), value=_describe(order),
            hint=did_you_mean(str(order), SIGNOFF_ORDERS)))
    # also when a problem was found (the load fails anyway): the transitions that require it see a signoff and
    # report nothing that only follows from this problem
    return Signoff(tuple(members), order if order in SIGNOFF_ORDERS else "any")


def _load_parallel(
    c: _Checker, raw: Any, where: Path, what: str, bodies: dict[str, Body], pending: list[tuple[Path, str]]
) -> Parallel | None:
    m = c.mapping(raw, where, _of("parallel", what), lang.PARALLEL.required, lang.PARALLEL.optional)
    if m is None:
        return None
    members = c.str_list(m.get("bodies"), (*where, "bodies"), _of("parallel.bodies", what)) if "bodies" in m else []
    ok = all(c.ref(b, (*where, "bodies", i), "body", bodies) for i, b in enumerate(members))
    if "bodies" in m and not members:
        c.err((*where, "bodies"), _("parallel of {what} needs at least one body").format(what=what))
        ok = False
    if len(set(members)) != len(members):
        c.err((*where, "bodies"), _("parallel of {what} lists a body twice").format(what=what))
        ok = False
    role = m.get("role")
    ok = ("role" in m and c.typed(role, (*where, "role"), str, _of("parallel.role", what))) and ok
    join = Join()
    raw_join = m.get("join")
    if isinstance(raw_join, dict):
        jm = c.mapping(raw_join, (*where, "join"), _of("join", what), lang.JOIN.required, lang.JOIN.optional)
        q = jm.get("quorum") if jm else None
        if jm is not None and c.positive(q, (*where, "join", "quorum"), _of("quorum", what), 1):
            assert isinstance(q, int)
            if q > len(members) and members:
                c.err(
                    (*where, "join", "quorum"),
                    _("impossible quorum {quorum} in {what}: it has only {count} bodies").format(
                        quorum=q, what=what, count=len(members)),
                )
                ok = False
            join = Join(q)
        else:
            ok = False
    elif raw_join == "none":
        join = Join(none=True)
        for key in ("on_success", "on_failure"):
            if key in m:
                c.err((*where, key), _("{what} has join: none, which moves nowhere: remove {key}").format(
                    what=what, key=key), key=True)
                ok = False
    elif raw_join != "all":
        c.err((*where, "join"),
              _("join of {what} must be 'all', {{quorum: N}} or 'none', not {value}").format(
                  what=what, value=_describe(raw_join)))
        ok = False
    if not join.none:
        for key in ("on_success", "on_failure"):
            if key not in m:
                c.err(where, _("{what}: the required key '{key}' is missing").format(what=_of("parallel", what),
                                                                                       key=key))
                ok = False
    for key in ("on_success", "on_failure"):
        if key in m:
            pending.append(((*where, key), m[key]))
    if not ok:
        return None
    on_success = str(m["on_success"]) if "on_success" in m else None
    on_failure = str(m["on_failure"]) if "on_failure" in m else None
    return Parallel(tuple(members), cast(str, role), join, on_success, on_failure)


def _load_transitions(
    c: _Checker,
    raw: Any,
    states: dict[str, State],
    roles: dict[str, tuple[str, ...]],
    fields: dict[str, FieldDef],
) -> list[Transition]:
    result: list[Transition] = []
    if not c.typed(raw, ("transitions",), list, "transitions"):
        return result
    known_roles = [*roles, BODY_ROLE]
    known_fields = [*BUILTIN_FIELDS, *fields]
    seen: dict[tuple[str, str], int] = {}
    for i, spec in enumerate(raw):
        where: Path = ("transitions", i)
        trig: Any = spec.get("trigger") if isinstance(spec, dict) else None
        what = _("transition '{name}'").format(name=trig) if isinstance(trig, str) else \
            _("transition {number}").format(number=i + 1)
        m = c.mapping(spec, where, what, lang.TRANSITION.required, lang.TRANSITION.optional)
        if m is None:
            continue
        ok = "trigger" in m and c.name(trig, (*where, "trigger"), _("trigger name"))
        if ok and trig in _RESERVED_TRIGGERS:
            c.err((*where, "trigger"), _("trigger name '{name}' is reserved by the engine").format(name=trig))
            ok = False
        src = m.get("source")
        sources: list[str] = []
        if src == "*":
            sources = [s.id for s in states.values() if not s.final]
        elif isinstance(src, list):
            sources = c.str_list(src, (*where, "source"), _of("source", what))
            ok = all(c.ref(s, (*where, "source", j), "state", states) for j, s in enumerate(sources)) and ok
            if not sources:
                c.err((*where, "source"), _("source of {what} is an empty list").format(what=what))
                ok = False
        elif "source" in m:
            ok = c.ref(src, (*where, "source"), "state", states) and ok
            sources = [src] if isinstance(src, str) else []
        branch = m.get("branch")
        dest = m.get("dest")
        if branch is not None:
            if not c.choice(branch, (*where, "branch"), _("branch of {what}").format(what=what), _OUTCOMES):
                ok = False
            if "dest" in m:
                c.err((*where, "dest"), _("branch {what} has no dest: the join decides where the paper goes").format(
                    what=what))
                ok = False
            for s in sources:
                if s in states and states[s].parallel is None:
                    c.err((*where, "source"), _("branch {what} needs a parallel source, but '{state}' is not "
                                                "parallel").format(what=what, state=s))
                    ok = False
        elif m.get("internal") is True:
            if "dest" in m:
                c.err((*where, "dest"), _("internal {what} has no dest: it records its trigger and stays in the "
                                          "state").format(what=what))
                ok = False
        elif "dest" not in m:
            c.err(where, _("{what}: the required key 'dest' is missing (or 'branch' in a parallel state, or "
                           "'internal: true')").format(what=what))
            ok = False
        elif dest != SAME:
            ok = c.ref(dest, (*where, "dest"), "state", states) and ok
        rlist = c.str_list(m.get("roles"), (*where, "roles"), _of("roles", what)) if "roles" in m else []
        ok = all(c.ref(r, (*where, "roles", j), "role", known_roles) for j, r in enumerate(rlist)) and ok
        if "roles" in m and not rlist:
            c.err((*where, "roles"), _("roles of {what} is empty: nobody could fire it").format(what=what))
            ok = False
        requires = c.str_list(m.get("requires", []), (*where, "requires"), _of("requires", what))
        ok = all(r == SIGNOFFS or c.ref(r, (*where, "requires", j), "field", known_fields)
                 for j, r in enumerate(requires)) and ok
        ok = _check_requires_signoffs(c, requires, sources, states, where, what, branch) and ok
        internal = m.get("internal", False)
        if not isinstance(internal, bool):
            c.err((*where, "internal"), _("{what} must be {kind}, not {value}").format(
                what=_of("internal", what), kind=_type_name(bool), value=_describe(internal)))
            ok = False
        elif internal and branch is not None:
            c.err((*where, "internal"), _("{what} is a branch decision; it cannot also be internal").format(
                what=what))
            ok = False
        not_before: tuple[str, Offset] | None = None
        if "not_before" in m:
            nb = m["not_before"]
            anchors = ["entered", *[f.name for f in fields.values() if f.type in ("date", "datetime")]]
            offset = _load_offset(c, nb, (*where, "not_before"), _of("not_before", what), False)
            anchor = nb.get("after") if isinstance(nb, dict) else None
            if isinstance(nb, dict) and anchor not in anchors:
                c.err((*where, "not_before"), _("not_before of {what} needs 'after: entered' or 'after: FIELD' with "
                                                "a date or datetime field{hint}; possible: {possible}").format(
                    what=what, hint=did_you_mean(str(anchor), anchors), possible=", ".join(anchors)))
                ok = False
            elif offset is None:
                ok = False
            else:
                not_before = (str(anchor), offset)
        label: str | None = None
        if "label" in m and c.typed(m["label"], (*where, "label"), str, _of("label", what)):
            try:
                label = clean_name(m["label"], _of("label", what), lang.LABEL_MAX)
            except ValueError as exc:
                c.err((*where, "label"), str(exc))
                ok = False
        confirm = m.get("confirm", False)
        if not c.typed(confirm, (*where, "confirm"), bool, _of("confirm", what)):
            ok = False
        sets = c.str_list(m.get("sets", []), (*where, "sets"), _of("sets", what))
        for j, name in enumerate(sets):
            if name in BUILTIN_FIELDS:
                c.err((*where, "sets", j), _("'{name}' is built in: every trigger that records a decision may set "
                                             "it; leave it out of sets").format(name=name))
                ok = False
            else:
                ok = c.ref(name, (*where, "sets", j), "field", fields) and ok
        if ok and "meeting" in requires and internal:
            c.err((*where, "requires"), _("internal {what} cannot require a meeting: it changes no "
                                          "consultation").format(what=what))
            ok = False
        if ok and "meeting" in requires:
            for s in sources:
                target = s if (branch is not None or dest == SAME) else dest
                if branch is not None and branch != "deferred":
                    c.err(
                        (*where, "requires"), _("{what} requires a meeting, but a branch that is {outcome} waits for "
                                                "none").format(what=what, outcome=branch)
                    )
                    ok = False
                    break
                if not states[cast(str, target)].waits_for_meeting:
                    c.err((*where, "requires"), _("{what} requires a meeting, but state '{state}' waits for no "
                                                  "meeting").format(what=what, state=target))
                    ok = False
                    break
        if ok:
            for s in sources:
                if (trig, s) in seen:
                    c.err(
                        (*where, "trigger"),
                        _("trigger '{trigger}' from state '{state}' is defined twice (also transition "
                          "{number})").format(trigger=trig, state=s, number=seen[(trig, s)] + 1),
                    )
                    ok = False
                seen[(trig, s)] = i
        if ok:
            result.append(
                Transition(trig, tuple(sources), None if (branch or internal) else dest, tuple(rlist),
                           tuple(requires), branch, i, tuple(sets), bool(internal), not_before, label,
                           confirm is True)
            )
    return result


def _check_requires_signoffs(c: _Checker, requires: list[str], sources: list[str], states: dict[str, State],
                             where: Path, what: str, branch: Any) -> bool:
    """``requires: [signoffs]`` needs a ``signoff`` on every source state, and no branch decision."""
    if SIGNOFFS not in requires:
        return True
    at = (*where, "requires", requires.index(SIGNOFFS))
    if branch is not None:
        c.err(at, _("{transition} is a branch decision: the bodies decide, sign-offs cannot hold it back").format(
            transition=what))
        return False
    missing = [s for s in sources if s in states and states[s].signoff is None]
    if missing:
        c.err(at, _("{transition} requires {signoffs}, but state '{state}' has no signoff: add "
                    "'signoff: {{roles: [...]}}' to it").format(transition=what, signoffs=SIGNOFFS, state=missing[0]))
        return False
    return True


def _check_signoffs_used(c: _Checker, states: dict[str, State], transitions: list[Transition]) -> None:
    """A state's sign-offs hold back at least one transition out of it (else nobody would wait for them)."""
    for state in states.values():
        held = [t for t in transitions if t.needs_signoffs and state.id in t.sources]
        if state.signoff is not None and not state.final and not held:
            c.err(("states", state.id, "signoff"), _("the sign-offs of state '{state}' hold back no transition: add "
                                                     "'requires: [{signoffs}]' to the transition they must precede")
                  .format(state=state.id, signoffs=SIGNOFFS), key=True)


def _load_offset(c: _Checker, raw: Any, where: Path, what: str, allow_invitation: bool) -> Offset | None:
    units = [*lang.OFFSET.optional] + (["invitation_period"] if allow_invitation else [])
    if not c.typed(raw, where, dict, what):
        return None
    given = [k for k in raw if k in units]
    for k in raw:
        if k not in units and k not in ("before", "after"):
            c.err(
                (*where, k),
                _("{what}: unknown key '{key}'{hint}; allowed: {allowed}").format(
                    what=what, key=k, hint=did_you_mean(k, units), allowed=", ".join(units)),
                key=True,
            )
    if len(given) != 1:
        c.err(where, _("{what} needs exactly one of {allowed}").format(what=what, allowed=", ".join(units)))
        return None
    unit = given[0]
    if unit == "invitation_period":
        if raw[unit] is not True:
            c.err((*where, unit), _("invitation_period of {what} must be true").format(what=what))
            return None
        return Offset("invitation_period")
    if not c.positive(raw[unit], (*where, unit), _of(unit, what)):
        return None
    return Offset(cast(Any, unit), raw[unit])


def _load_deadlines(
    c: _Checker, raw: Any, states: dict[str, State], roles: dict[str, tuple[str, ...]], bodies: dict[str, Body],
    transitions: list[Transition], fields: dict[str, FieldDef],
) -> list[Deadline]:
    result: list[Deadline] = []
    if raw is None or not c.typed(raw, ("deadlines",), list, "deadlines"):
        return result
    known_roles = [*roles, BODY_ROLE]
    names: set[str] = set()
    for i, spec in enumerate(raw):
        where: Path = ("deadlines", i)
        dname = spec.get("name") if isinstance(spec, dict) else None
        what = _("deadline '{name}'").format(name=dname) if isinstance(dname, str) else \
            _("deadline {number}").format(number=i + 1)
        m = c.mapping(spec, where, what, lang.DEADLINE.required, lang.DEADLINE.optional)
        if m is None:
            continue
        ok = "name" in m and c.name(dname, (*where, "name"), _("deadline name"))
        if ok and dname in names:
            c.err((*where, "name"), _("deadline name '{name}' is used twice").format(name=dname))
            ok = False
        names.add(str(dname))
        label = m.get("label", dname)
        c.typed(label, (*where, "label"), str, _of("label", what))
        slist = c.str_list(m.get("states"), (*where, "states"), _of("states", what)) if "states" in m else []
        ok = all(c.ref(s, (*where, "states", j), "state", states) for j, s in enumerate(slist)) and ok
        due: Due | None = None
        dm = m.get("due")
        if "due" in m and c.typed(dm, (*where, "due"), dict, _of("due", what)):
            date_fields = [f.name for f in fields.values() if f.type in ("date", "datetime")]
            direction = "before" if "before" in dm and "after" not in dm else \
                "after" if "after" in dm and "before" not in dm else None
            anchor = dm.get(direction) if direction else None
            possible = {"before": ["meeting", *date_fields], "after": ["entered", *date_fields]}
            if direction is None:
                c.err((*where, "due"), _("due of {what} needs one of 'before: meeting', 'after: entered', "
                                         "'before: FIELD' or 'after: FIELD' (FIELD: a date or datetime field)").format(
                    what=what))
            elif not isinstance(anchor, str) or anchor not in possible[direction]:
                c.err((*where, "due", direction),
                      _("'{direction}: {anchor}' in due of {what} names no anchor{hint}; possible: {possible} "
                        "(fields must be of type date or datetime)").format(
                          direction=direction, anchor=anchor, what=what,
                          hint=did_you_mean(str(anchor), possible[direction]),
                          possible=", ".join(possible[direction])))
            else:
                offset = _load_offset(c, dm, (*where, "due"), _of("due", what), anchor == "meeting")
                due = Due(anchor, offset, direction == "before") if offset else None
                if anchor == "meeting":
                    for j, s in enumerate(slist):
                        if s in states and not states[s].waits_for_meeting:
                            c.err(
                                (*where, "states", j),
                                _("{what} counts back from a meeting, but state '{state}' waits for no "
                                  "meeting").format(what=what, state=s),
                            )
                            ok = False
        ok = due is not None and ok
        if due and due.offset.unit == "invitation_period":
            for s in slist:
                st = states.get(s)
                if st and st.consultation is None and st.parallel is None:
                    ok = False
        remind: list[Offset] = []
        for j, r in enumerate(m.get("remind", []) if isinstance(m.get("remind", []), list) else []):
            off = _load_offset(c, r, (*where, "remind", j), _("reminder {number} of {what}").format(
                number=j + 1, what=what), False)
            ok = off is not None and ok
            if off:
                remind.append(off)
        if not isinstance(m.get("remind", []), list):
            c.typed(m.get("remind"), (*where, "remind"), list, _of("remind", what))
            ok = False
        notify = c.str_list(m.get("notify", []), (*where, "notify"), _of("notify", what))
        ok = all(c.ref(r, (*where, "notify", j), "role", known_roles) for j, r in enumerate(notify)) and ok
        escalation = None
        if "escalate" in m:
            em = c.mapping(m["escalate"], (*where, "escalate"), _of("escalate", what),
                           lang.ESCALATE.required, lang.ESCALATE.optional)
            if em is not None and "after" in em and "notify" in em:
                after = _load_offset(c, em["after"], (*where, "escalate", "after"), _of("escalate.after", what),
                                     False)
                en = c.str_list(em["notify"], (*where, "escalate", "notify"), _of("escalate.notify", what))
                eok = all(c.ref(r, (*where, "escalate", "notify", j), "role", known_roles) for j, r in enumerate(en))
                if after and eok:
                    escalation = Escalation(after, tuple(en))
                else:
                    ok = False
            else:
                ok = False
        description = m.get("description")
        if description is not None and not c.typed(description, (*where, "description"), str,
                                                   _of("description", what)):
            ok = False
        done_by = c.str_list(m.get("done_by", []), (*where, "done_by"), _of("done_by", what))
        for j, name in enumerate(done_by):
            if name == "meeting":
                for s in slist:
                    if s in states and not states[s].waits_for_meeting:
                        c.err((*where, "done_by", j), _("{what} is done by the meeting, but state '{state}' waits "
                                                        "for no meeting").format(what=what, state=s))
                        ok = False
                continue
            fireable = [t for t in transitions if t.trigger == name and set(t.sources) & set(slist)]
            if not fireable:
                known = sorted({t.trigger for t in transitions if set(t.sources) & set(slist)} | {"meeting"})
                c.err((*where, "done_by", j), _("'{name}' is no trigger of the states of {what}{hint}; possible: "
                                                "{possible}").format(name=name, what=what,
                                                                     hint=did_you_mean(name, known),
                                                                     possible=", ".join(known)))
                ok = False
        if ok and due is not None:
            result.append(Deadline(str(dname), str(label), tuple(slist), due, tuple(remind), tuple(notify), escalation,
                                   str(description).strip() if description else None, tuple(done_by)))
    return result


def _templates_ok(c: _Checker, template: str, where: Path, what: str, known: list[str]) -> list[str] | None:
    """The placeholders of ``template``, each checked to be known; None (reported) if one is not."""
    from .follow_up import placeholders

    try:
        used = placeholders(template)
    except ValueError as exc:
        c.err(where, _("{what}: {problem}").format(what=what, problem=exc))
        return None
    ok = True
    for name in used:
        if name == "item" and name not in known:
            c.err(where, _("{what}: the placeholder '{{item}}' needs for_each: it is the list entry of each follow-up "
                           "paper").format(what=what))
            ok = False
        elif name not in known:
            c.err(where, _("{what}: unknown placeholder '{{{name}}}'{hint}; possible: {known}").format(
                what=what, name=name, hint=did_you_mean(name, known), known=", ".join(known)))
            ok = False
    return used if ok else None


def _load_attachments(c: _Checker, raw: Any, where: Path, what: str, bodies: Mapping[str, Body]
                      ) -> tuple[Attachment, ...] | None:
    """``attach`` of a follow-up: each entry a report of one of this workflow's bodies; None (reported) if one
    is wrong."""
    from .decisions import STATUSES

    if not c.typed(raw, where, list, _("attach of {what}").format(what=what)):
        return None
    out: list[Attachment] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    ok = True
    for j, spec in enumerate(raw):
        at: Path = (*where, j)
        label = _("attachment {number} of {what}").format(number=j + 1, what=what)
        m = c.mapping(spec, at, label, lang.ATTACH.required, lang.ATTACH.optional)
        if m is None:
            ok = False
            continue
        good = "report" in m and c.choice(m["report"], (*at, "report"), _("report of {what}").format(what=label),
                                          ATTACH_REPORTS)
        good = "body" in m and c.ref(m["body"], (*at, "body"), "body", bodies) and good
        status = m.get("status", "offen")
        if "status" in m:
            good = c.choice(status, (*at, "status"), _("status of {what}").format(what=label), STATUSES) and good
        fmt = m.get("format", "pdf")
        if "format" in m:
            good = c.choice(fmt, (*at, "format"), _("format of {what}").format(what=label), ATTACH_FORMATS) and good
        warn = m.get("warn_days")
        if "warn_days" in m:
            what_days = _("warn_days of {what}").format(what=label)
            good = c.positive(warn, (*at, "warn_days"), what_days) and good
            if isinstance(warn, int) and not isinstance(warn, bool) and warn > 250:
                c.err((*at, "warn_days"), _("{what} must be at most {maximum}, not {value}").format(
                    what=what_days, maximum=250, value=warn))
                good = False
        if good:
            made = Attachment(str(m["body"]), str(m["report"]), str(status), warn, str(fmt))
            key = (made.report, made.body, made.status, made.format)
            if key in seen:
                c.err(at, _("{what} is the same document as attachment {number}: each child would get it twice")
                      .format(what=label, number=seen[key]))
                good = False
            seen.setdefault(key, j + 1)
            out.append(made)
        ok = good and ok
    return tuple(out) if ok else None


def _load_follow_ups(c: _Checker, raw: Any, states: dict[str, State], roles: dict[str, tuple[str, ...]],
                     fields: dict[str, FieldDef], bodies: Mapping[str, Body]) -> list[FollowUp]:
    """``follow_up``: each entry checked against this file (the child's workflow and its fields are checked
    against the definitions folder by :func:`workflow.library.follow_up_problems`)."""
    from .follow_up import FIXED_PLACEHOLDERS

    result: list[FollowUp] = []
    if raw is None or not c.typed(raw, ("follow_up",), list, "follow_up"):
        return result
    seen: set[str] = set()
    for i, spec in enumerate(raw):
        where: Path = ("follow_up", i)
        fname = spec.get("name") if isinstance(spec, dict) else None
        what = _("follow-up '{name}'").format(name=fname) if isinstance(fname, str) else \
            _("follow-up {number}").format(number=i + 1)
        m = c.mapping(spec, where, what, lang.FOLLOW_UP.required, lang.FOLLOW_UP.optional)
        if m is None:
            continue
        ok = "name" in m and c.name(fname, (*where, "name"), _("follow-up name"))
        if ok and fname in seen:
            c.err((*where, "name"), _("follow-up name '{name}' is used twice").format(name=fname))
            ok = False
        seen.add(str(fname))
        ok = "when" in m and c.ref(m.get("when"), (*where, "when"), "state", states) and ok
        ok = "workflow" in m and c.name(m.get("workflow"), (*where, "workflow"), _("workflow id")) and ok
        every = count = until = for_each = actor = None
        if "every" in m:
            every = _load_offset(c, m["every"], (*where, "every"), _of("every", what), False)
            ok = every is not None and ok
            if every is not None and every.amount < 1:
                c.err((*where, "every"), _("every of {what} must be at least 1").format(what=what))
                ok = False
        if "count" in m:
            count = m["count"]
            ok = c.positive(count, (*where, "count"), _of("count", what), 1) and ok
        if "until" in m:
            dates = [f.name for f in fields.values() if f.type in ("date", "datetime")]
            until = m["until"]
            ok = c.ref(until, (*where, "until"), "date field", dates) and ok
        if "for_each" in m:
            lists = [f.name for f in fields.values() if f.type == "list"]
            for_each = m["for_each"]
            ok = c.ref(for_each, (*where, "for_each"), "list field", lists) and ok
        if "actor" in m:
            actor = m["actor"]
            ok = c.ref(actor, (*where, "actor"), "role", roles) and ok
        if "every" in m and "for_each" in m:
            c.err((*where, "for_each"), _("{what} is recurring (every) and per list item (for_each): choose one")
                  .format(what=what), key=True)
            ok = False
        if "count" in m and "until" in m:
            c.err((*where, "until"), _("{what} has count and until: a series ends after count papers or at the "
                                       "date in until, not both").format(what=what), key=True)
            ok = False
        if "every" in m and "count" not in m and "until" not in m and "for_each" not in m:
            c.err(where, _("recurring {what} needs count or until: a series must end").format(what=what))
            ok = False
        for key in ("count", "until"):
            if key in m and "every" not in m:
                c.err((*where, key), _("{key} of {what} needs every: only a recurring series has an end")
                      .format(key=key, what=what), key=True)
                ok = False
        known = [*(p for p in FIXED_PLACEHOLDERS if p != "item" or "for_each" in m), *fields]
        template = m.get("reference")
        reference = _("reference of {what}").format(what=what)
        if "reference" in m and c.typed(template, (*where, "reference"), str, reference):
            used = _templates_ok(c, template, (*where, "reference"), reference, known)
            if used is not None and "n" not in used:
                c.err((*where, "reference"), _("reference of {what} must contain {{n}} (1, 2, …): each follow-up "
                                               "paper needs a reference of its own").format(what=what))
                ok = False
            ok = used is not None and ok
        else:
            ok = False
        attach: tuple[Attachment, ...] | None = ()
        if "attach" in m:
            attach = _load_attachments(c, m["attach"], (*where, "attach"), what, bodies)
            ok = attach is not None and ok
        child_fields: dict[str, str] = {}
        located: dict[str, tuple[int, int]] = {"workflow": c.doc.where((*where, "workflow"))}
        raw_fields = m.get("fields")
        if raw_fields is not None and c.typed(raw_fields, (*where, "fields"), dict, _of("fields", what)):
            for key, value in raw_fields.items():
                at: Path = (*where, "fields", key)
                label = _("field '{key}' of {what}").format(key=key, what=what)
                if not c.name(key, at, _("field name")) or not c.typed(value, at, str, label):
                    ok = False
                    continue
                ok = _templates_ok(c, value, at, label, known) is not None and ok
                child_fields[key] = value
                located[f"fields.{key}"] = c.doc.where(at, key=True)
        if ok:
            result.append(FollowUp(str(fname), str(m["when"]), str(m["workflow"]), str(template), child_fields,
                                   actor, every, count, until, for_each, attach or (), located))
    return result


_TOP_REQUIRED = lang.TOP.required
_TOP_OPTIONAL = lang.TOP.optional


def load_definition(text: str, path: str = "<definition>", *, expect_id: str | None = None) -> Definition:
    """Validate ``text`` completely and return the frozen definition, or raise DefinitionError."""
    try:
        doc = load_located(text, path)
    except YamlProblems as exc:
        raise DefinitionError(exc.problems) from None
    c = _Checker(doc, path)
    top = c.mapping(doc.value, (), _("the definition"), _TOP_REQUIRED, _TOP_OPTIONAL)
    if top is None:
        raise DefinitionError(c.problems)
    wid = top.get("workflow")
    if "workflow" in top and c.name(wid, ("workflow",), _("workflow id")) and expect_id and wid != expect_id:
        c.err(("workflow",), _("workflow id '{id}' must equal the file name '{name}'").format(id=wid, name=expect_id))
    version = top.get("version")
    if "version" in top:
        c.positive(version, ("version",), "version", 1)
    title = top.get("title")
    if "title" in top:
        c.typed(title, ("title",), str, "title")
    tz = top.get("timezone")
    if "timezone" in top and c.typed(tz, ("timezone",), str, "timezone"):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            c.err(("timezone",), _("unknown time zone '{name}' (an IANA name such as Europe/Berlin)").format(name=tz))
    calendar = _load_calendar(c, top.get("calendar"))
    roles = _load_roles(c, top.get("roles"))
    bodies = _load_bodies(c, top.get("bodies"))
    fields = _load_fields(c, top.get("fields"))
    states = _load_states(c, top.get("states"), bodies, roles)
    transitions = _load_transitions(c, top.get("transitions"), states, roles, fields)
    deadlines = _load_deadlines(c, top.get("deadlines"), states, roles, bodies, transitions, fields)
    follow_ups = _load_follow_ups(c, top.get("follow_up"), states, roles, fields, bodies)
    _check_signoffs_used(c, states, transitions)
    if c.problems:
        raise DefinitionError(c.reported())
    definition = Definition(
        workflow=wid,
        version=version,
        title=title,
        timezone=tz,
        calendar=calendar,
        roles=roles,
        bodies=bodies,
        fields=fields,
        states=states,
        transitions=tuple(transitions),
        deadlines=tuple(deadlines),
        follow_ups=tuple(follow_ups),
        source_hash=source_hash(text),
        source_path=path,
    )
    for where, message in graph_problems(definition):
        c.err(where, message, key=True)
    if c.problems:
        raise DefinitionError(sorted(c.problems, key=lambda p: (p.line, p.column)))
    return definition


def load_definition_file(path: FsPath | str) -> Definition:
    """Read and validate one definition file; its workflow id must equal its file name."""
    p = FsPath(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError([Problem(str(p), 1, 1, _("not UTF-8 text: {reason}").format(reason=exc.reason))]) \
            from None
    except OSError as exc:
        raise DefinitionError([Problem(str(p), 1, 1, _("cannot read: {reason}").format(reason=exc.strerror))]) \
            from None
    return load_definition(text, str(p), expect_id=p.stem)


def definition_files(paths: Iterable[FsPath | str]) -> list[FsPath]:
    """Expand folders to the ``*.yaml``/``*.yml`` files directly inside them, sorted."""
    out: list[FsPath] = []
    for raw in paths:
        p = FsPath(raw)
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml") and q.is_file()))
        else:
            out.append(p)
    return out
