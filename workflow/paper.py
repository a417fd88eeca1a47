"""A paper's state and the changes that move it. Pure: no I/O, no clock.

Every command is decided into a list of :class:`Change` records (what the audit trail stores);
:func:`apply` folds a change into a :class:`PaperState`. The engine and the as-of replay use the
same :func:`apply`, so the trail always replays to the state that was stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from .calendar import shift, working_calendar
from .chain import canonical_json
from .definition import SIGNOFFS, Definition, Offset, State, Transition
from .errors import AuditIntegrityError, InputError, NotAllowedNowError, NotPermittedError, did_you_mean
from .i18n import _
from .machine import JOIN_FAILURE, JOIN_SUCCESS, CompiledMachine
from .values import clean_name, clean_text, is_email, parse_datetime, parse_field_value, stored_instant

__all__ = [
    "IMPORT_ACTOR",
    "NOTE_KINDS",
    "SYSTEM_ACTOR",
    "TRUSTED_ACTORS",
    "Branch",
    "Change",
    "ChangeKind",
    "PaperState",
    "SignoffAct",
    "SignoffMark",
    "apply",
    "bodies_at",
    "branches_from_json",
    "branches_to_json",
    "check_actor",
    "check_reference",
    "check_time_order",
    "creator_roles",
    "decide_create",
    "decide_fire",
    "decide_meeting",
    "decide_signoff",
    "fields_hash",
    "fold",
    "may_create",
    "migrate_state",
    "missing_signoffs",
    "signoff_request",
    "signoffs_from_json",
    "signoffs_to_json",
    "void_signoffs",
]

ChangeKind = Literal["create", "transition", "branch", "meeting", "close", "join", "migrate", "internal", "done",
                     "undone", "signoff"]
#: What a ``signoff`` entry does (its trigger): a role signs the paper off or refuses to, a role's decision is
#: withdrawn, or a field change voids the sign-offs given (``void``, by the system).
SignoffAct = Literal["sign", "refuse", "withdraw", "void"]
BranchStatus = Literal["open", "adopted", "rejected", "not_needed"]
SYSTEM_ACTOR = "system"
#: Entries that record what happened around the papers without changing one: a mail sent, finally failed or
#: skipped (``mail``), a token created or revoked and a definition version used for the first time
#: (``admin``), a follow-up paper created by the engine (``follow_up``). Folding one leaves the paper as it is.
NOTE_KINDS = frozenset({"mail", "admin", "follow_up"})
#: The actor of entries replayed from a council information system (OParl import).
IMPORT_ACTOR = "import"
_TRUSTED = TRUSTED_ACTORS = (SYSTEM_ACTOR, IMPORT_ACTOR)
_OUTCOME_STATUS: dict[str, BranchStatus] = {"adopted": "adopted", "rejected": "rejected", "deferred": "open"}
#: Fields shown on one line and mailed in a header (the subject): no line break, visible or encoded.
_ONE_LINE = ("title", "result")


@dataclass(frozen=True)
class Branch:
    """One body's consultation inside a parallel state."""

    body: str
    status: BranchStatus = "open"
    meeting: datetime | None = None
    result: str | None = None
    deferrals: int = 0


@dataclass(frozen=True)
class SignoffMark:
    """A role's standing decision on the paper in this visit of a state with ``signoff``: signed off
    (``signed``) or refused, by whom and when, with the hash of the paper's fields at that moment and the
    note (or the refusal's reason)."""

    role: str
    decision: Literal["signed", "refused"]
    actor: str
    at: datetime
    fields_hash: str
    text: str | None = None


@dataclass(frozen=True)
class PaperState:
    """Where a paper stands: the source of truth is the database row that stores this."""

    state: str
    entered_at: datetime
    meeting: datetime | None = None
    branches: Mapping[str, Branch] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)
    result: str | None = None
    #: Deadlines marked done in this visit of the state: (deadline name, branch body or "").
    done: frozenset[tuple[str, str]] = frozenset()
    #: The sign-offs (and refusals) standing in this visit of the state, by role.
    signoffs: Mapping[str, SignoffMark] = field(default_factory=dict)

    def open_branches(self) -> list[Branch]:
        return [b for b in self.branches.values() if b.status == "open"]


@dataclass(frozen=True)
class Change:
    """One entry of the audit trail, before it is numbered and chained."""

    kind: ChangeKind
    trigger: str
    from_state: str | None
    to_state: str
    actor: str
    at: datetime
    branch: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


def branch_version(paper: PaperState, body: str) -> str:
    """The version of one branch as a client saw it: changes when the branch or the state visit changes,
    not when another branch does. A branch decision is checked against it, so councils deciding in
    parallel do not collide (the paper's version still orders the writes)."""
    b = paper.branches.get(body)
    basis = [paper.state, paper.entered_at.isoformat(), body, b.status if b else None,
             b.meeting.isoformat() if b and b.meeting else None, b.result if b else None, b.deferrals if b else 0]
    return "b" + hashlib.sha256(json.dumps(basis).encode("utf-8")).hexdigest()[:16]


def _enter(
    definition: Definition,
    state: str,
    at: datetime,
    fields: Mapping[str, Any],
    meeting: datetime | None,
    result: str | None,
) -> PaperState:
    spec = definition.states[state]
    branches = {b: Branch(b) for b in spec.parallel.bodies} if spec.parallel else {}
    entered = PaperState(state, at, meeting if spec.consultation else None, branches, fields, result)
    if entered.meeting is not None:  # entered with its meeting: what the meeting marks done is done at once
        return replace(entered, done=_done_by(definition, entered, "meeting", ""))
    return entered


def _meeting_of(payload: Mapping[str, Any]) -> datetime | None:
    raw = payload.get("meeting")
    return stored_instant(raw) if raw else None


def apply(definition: Definition, paper: PaperState | None, change: Change) -> PaperState:
    """Fold one change into the paper's state.

    A change that cannot be folded (a trail that does not start with 'create', an entry naming a state
    or branch its definition version does not have) is an :class:`AuditIntegrityError`, not a crash.
    """
    if (paper is None) != (change.kind == "create"):
        message = (_("'{trigger}' at {at}: a trail starts with 'create'") if paper is None
                   else _("'{trigger}' at {at}: a paper is created once"))
        raise AuditIntegrityError(message.format(trigger=change.trigger, at=change.at.isoformat()))
    try:
        return _apply(definition, paper, change)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AuditIntegrityError(_("'{trigger}' at {at} cannot be replayed on {workflow} version {version}: "
                                    "{kind} {detail}").format(trigger=change.trigger, at=change.at.isoformat(),
                                                              workflow=definition.workflow,
                                                              version=definition.version, kind=type(exc).__name__,
                                                              detail=exc)) from None


def _apply(definition: Definition, paper: PaperState | None, change: Change) -> PaperState:
    p = change.payload
    if change.kind in NOTE_KINDS and paper is not None:
        return paper
    if change.kind == "create" or paper is None:
        return _enter(definition, change.to_state, change.at, dict(p.get("fields", {})), _meeting_of(p), None)
    # The same mapping when nothing changed: the store then writes the text it read, unserialised again.
    fields = {**paper.fields, **p["fields"]} if p.get("fields") else paper.fields
    if change.kind in ("transition", "join"):
        return _enter(definition, change.to_state, change.at, fields, _meeting_of(p), p.get("result"))
    if change.kind == "internal":
        return replace(paper, fields=fields, done=paper.done | _done_by(definition, paper, change.trigger, None))
    if change.kind in ("done", "undone"):
        key = (str(p["deadline"]), change.branch or "")
        return replace(paper, done=paper.done | {key} if change.kind == "done" else paper.done - {key})
    branches = dict(paper.branches)
    if change.kind == "branch":
        body = change.branch or ""
        b = branches[body]
        outcome = p["outcome"]
        branches[body] = replace(
            b,
            status=_OUTCOME_STATUS[outcome],
            result=p.get("result", b.result),
            meeting=_meeting_of(p) or b.meeting,
            deferrals=b.deferrals + (outcome == "deferred"),
        )
        done = paper.done | _done_by(definition, paper, change.trigger, body)
        return replace(paper, branches=branches, fields=fields, done=done)
    if change.kind == "close":
        branches[change.branch or ""] = replace(branches[change.branch or ""], status="not_needed")
        return replace(paper, branches=branches)
    if change.kind == "meeting":
        done = paper.done | _done_by(definition, paper, "meeting", change.branch or "")
        if change.branch is not None:
            branches[change.branch] = replace(branches[change.branch], meeting=_meeting_of(p))
            return replace(paper, branches=branches, done=done)
        return replace(paper, meeting=_meeting_of(p), done=done)
    if change.kind == "signoff":
        return replace(paper, signoffs=_fold_signoff(paper, change))
    if change.kind == "migrate":
        # The entry carries the whole state on the new workflow version (see migrate_state).
        moved = branches_from_json(p["branches"])
        if change.to_state not in definition.states:
            raise KeyError(change.to_state)
        return PaperState(change.to_state, paper.entered_at, _meeting_of(p), moved, dict(p["fields"]), paper.result)
    raise ValueError(_("unknown kind of entry '{kind}'").format(kind=change.kind))


def _done_by(definition: Definition, paper: PaperState, trigger: str, branch: str | None) -> frozenset[tuple[str, str]]:
    """The deadlines of the paper's state that ``trigger`` (or "meeting") marks done: for a branch, that
    branch's; otherwise the state's own and, for an internal trigger (branch None), every branch's."""
    names = [d.name for d in definition.deadlines if paper.state in d.states and trigger in d.done_by]
    if not names:
        return frozenset()
    slots = [branch] if branch is not None else ["", *paper.branches]
    return frozenset((name, slot) for name in names for slot in slots)


def branches_to_json(branches: Mapping[str, Branch]) -> dict[str, dict[str, Any]]:
    """Branches as stored (paper rows, migration entries): the one JSON form."""
    return {k: {"status": b.status, "meeting": b.meeting.isoformat() if b.meeting else None, "result": b.result,
                "deferrals": b.deferrals} for k, b in branches.items()}


def bodies_at(definition: Definition, state: PaperState) -> frozenset[str]:
    """The bodies a paper is at (the lists' body filter): its consultation's body and its branches' bodies."""
    body = definition.body_of(state.state)
    return frozenset(state.branches) | ({body.id} if body else frozenset())


def branches_from_json(raw: Mapping[str, Any]) -> dict[str, Branch]:
    """The inverse of :func:`branches_to_json`."""
    return {k: Branch(k, v["status"], _meeting_of(v), v.get("result"), int(v.get("deferrals", 0)))
            for k, v in raw.items()}


def migrate_state(old: Definition, new: Definition, paper: PaperState, mapping: Mapping[str, str],
                  actor: str, now: datetime) -> Change:
    """The change that moves a paper to another version of its workflow; ValueError says why it cannot."""
    target = mapping.get(paper.state, paper.state)
    if target not in new.states:
        raise ValueError(_("state '{state}' does not exist in version {version}; map it with --map "
                           "{state}=NEW_STATE").format(state=paper.state, version=new.version))
    spec = new.states[target]
    fields = {k: v for k, v in paper.fields.items() if k in new.fields}
    for f in new.fields.values():
        if f.name not in fields and f.default is not None:
            fields[f.name] = f.default
        if f.required and fields.get(f.name) in (None, "", []):
            raise ValueError(_("field '{key}' is required by version {version} and not set").format(
                key=f.name, version=new.version))
    branches = branches_to_json({body: paper.branches.get(body, Branch(body)) for body in spec.parallel.bodies}
                                if spec.parallel is not None else {})
    meeting = paper.meeting if spec.consultation is not None else None
    payload: dict[str, Any] = {"from_version": old.version, "to_version": new.version, "fields": fields,
                               "branches": branches}
    if meeting is not None:
        payload["meeting"] = meeting.isoformat()
    return Change("migrate", "migrate", paper.state, target, actor, now, None, payload)


def fold(definition: Definition, paper: PaperState | None, changes: Iterable[Change]) -> PaperState:
    """The state reached by applying ``changes`` in order to ``paper`` (None: before creation)."""
    for change in changes:
        paper = apply(definition, paper, change)
    if paper is None:
        raise InputError(_("no change to apply"))
    return paper


def check_time_order(reference: str, newest: datetime, at: datetime) -> None:
    """Time only moves forward per paper: a change dated before the paper's newest entry is refused."""
    if at < newest:
        raise NotAllowedNowError(_("{reference}: a change at {at} would be dated before the paper's newest entry "
                                   "({newest}); time only moves forward").format(reference=reference, at=at.isoformat(),
                                                                                 newest=newest.isoformat()))


# --- validation of what a user typed -------------------------------------------------------------


def check_reference(reference: str) -> str:
    """A paper's reference: NFC, 1 to 120 visible characters, nothing hidden (``PUB-1`` is one paper)."""
    try:
        return clean_name(reference, _("reference"))
    except ValueError as exc:
        raise InputError(str(exc)) from None


def check_actor(actor: str) -> str:
    who = actor.strip()
    if len(who) > 320 or not is_email(who):
        shown = ascii(actor[:80]) if not actor.isprintable() else repr(actor[:80])
        raise InputError(_("actor {actor} is not an e-mail address").format(actor=shown))
    return who.lower()


def _role_text(definition: Definition, roles: tuple[str, ...], body: str | None) -> str:
    parts = []
    for r in roles:
        if r == "body":
            contact = definition.bodies[body].contact if body else None
            parts.append(_("body ({contact})").format(contact=contact) if contact else _("body (no contact)"))
        else:
            parts.append(r)
    return ", ".join(parts)


def _parse_values(
    definition: Definition, values: Mapping[str, str], allowed_builtins: tuple[str, ...], context: str,
    settable: tuple[str, ...] | None = None,
) -> tuple[dict[str, Any], str | None, datetime | None]:
    """Split ``--set`` values into document fields, result and meeting, each parsed. ``settable``: the
    document fields a trigger may carry (None at creation: every field)."""
    fields: dict[str, Any] = {}
    result: str | None = None
    meeting: datetime | None = None
    known = [*allowed_builtins, *definition.fields]
    allowed = [*allowed_builtins, *(definition.fields if settable is None else settable)]
    for key, raw in values.items():
        if key not in known:
            raise InputError(_("{context}: unknown field '{key}'{hint}; known: {known}").format(
                context=context, key=key, hint=did_you_mean(key, known), known=", ".join(known)))
        if key not in allowed:
            raise InputError(_("{context}: this trigger does not set field '{key}'; it sets: {allowed} (a process "
                               "owner declares more with 'sets')").format(context=context, key=key,
                                                                          allowed=", ".join(allowed) or _("nothing")))
        what = _("field '{key}'").format(key=key)
        try:
            raw = clean_text(raw, what, one_line=key in _ONE_LINE)
            if key == "result":
                result = raw.strip() or None
            elif key == "meeting":
                meeting = parse_datetime(raw, definition.timezone)
            else:
                fields[key] = parse_field_value(definition.fields[key].type, raw, definition.timezone)
        except ValueError as exc:
            message = str(exc)
            raise InputError(_("{context}: {problem}").format(context=context, problem=message)
                             if message.startswith(what)
                             else _("{context}: field '{key}': {problem}").format(context=context, key=key,
                                                                                  problem=message)) from None
    return fields, result, meeting


def _payload(fields: Mapping[str, Any], result: str | None, meeting: datetime | None, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = dict(extra)
    if fields:
        payload["fields"] = dict(fields)
    if result is not None:
        payload["result"] = result
    if meeting is not None:
        payload["meeting"] = meeting.isoformat()
    return payload


def creator_roles(definition: Definition) -> tuple[tuple[str, ...], str | None]:
    """Who may create a paper of the workflow: the holders of a role of a transition out of the initial
    state (and the body whose contact ``body`` stands for there)."""
    initial = definition.initial
    roles = tuple(dict.fromkeys(r for t in definition.transitions_from(initial.id) for r in t.roles))
    return roles, initial.consultation.body if initial.consultation else None


def may_create(definition: Definition, actor: str) -> bool:
    """Whether ``actor`` may create papers of the workflow: the one rule :func:`decide_create` checks."""
    return actor in _TRUSTED or definition.holds_any(actor, *creator_roles(definition))


def decide_create(
    definition: Definition, reference: str, actor: str, values: Mapping[str, str], now: datetime
) -> list[Change]:
    """The change that creates a paper, after checking the actor's role and the fields."""
    initial = definition.initial
    out_roles, body = creator_roles(definition)
    if not may_create(definition, actor):
        raise NotPermittedError(
            _("{actor} may not create papers of workflow '{workflow}': needs one of the roles {roles}").format(
                actor=actor, workflow=definition.workflow, roles=_role_text(definition, out_roles, body))
        )
    builtins = ("meeting",) if initial.consultation else ()
    context = f"create {reference}"
    fields, _result, meeting = _parse_values(definition, values, builtins, context)
    for f in definition.fields.values():
        if f.name not in fields and f.default is not None:
            fields[f.name] = f.default
        if f.required and fields.get(f.name) in (None, "", []):
            raise InputError(_("{context}: field '{key}' is required: add --set {key}=…").format(context=context,
                                                                                                  key=f.name))
    return [Change("create", "create", None, initial.id, actor, now, payload=_payload(fields, None, meeting))]


def _allowed_now(definition: Definition, machine: CompiledMachine, paper: PaperState) -> str:
    names = machine.triggers(paper.state)
    return ", ".join(names) if names else _("nothing (final state)")


def _check_permission(definition: Definition, actor: str, roles: tuple[str, ...], body: str | None, refusal: str,
                      **names: str) -> None:
    """``refusal``: the translated message, with ``{actor}``, ``{roles}`` and ``names`` as placeholders."""
    if actor in _TRUSTED or definition.holds_any(actor, roles, body):
        return
    raise NotPermittedError(refusal.format(actor=actor, roles=_role_text(definition, roles, body), **names))


def decide_fire(
    definition: Definition,
    machine: CompiledMachine,
    reference: str,
    paper: PaperState,
    trigger: str,
    actor: str,
    branch: str | None,
    values: Mapping[str, str],
    now: datetime,
    reason: str | None = None,
) -> list[Change]:
    """Check a trigger against the paper, its roles and fields; return the changes it makes.

    ``reason``: why the person fires it, recorded in the entry's payload; a trigger with ``confirm: true``
    needs one (history recorded after the fact by the system or an import does not)."""
    if trigger not in definition.trigger_names:
        raise InputError(
            _("unknown trigger '{trigger}' in workflow '{workflow}'{hint}; triggers: {triggers}").format(
                trigger=trigger, workflow=definition.workflow, hint=did_you_mean(trigger, definition.triggers()),
                triggers=", ".join(definition.triggers()))
        )
    state = definition.states[paper.state]
    t = definition.find(paper.state, trigger)
    if t is None:
        raise NotAllowedNowError(
            _("{reference} is in state '{state}' ({label}); '{trigger}' is not possible there; possible now: "
              "{possible}").format(reference=reference, state=state.id, label=state.label, trigger=trigger,
                                   possible=_allowed_now(definition, machine, paper))
        )
    context = f"{reference} {trigger}"
    if t.not_before is not None:
        allowed = earliest(definition, t.not_before, paper)
        if allowed is None:
            raise NotAllowedNowError(_("{context}: possible only after the date in field '{key}', which is not set")
                                     .format(context=context, key=t.not_before[0]))
        if now < allowed and actor not in _TRUSTED:
            local = allowed.astimezone(ZoneInfo(definition.timezone))
            raise NotAllowedNowError(_("{context}: not before {date} (a minimum period); earliest {earliest}").format(
                context=context, date=f"{local:%d.%m.%Y}", earliest=allowed.isoformat()))
    if t.branch is not None:
        return _decide_branch(definition, machine, reference, paper, state, t, actor, branch, values, now, reason)
    if branch is not None:
        raise InputError(_("{context}: '{trigger}' does not act on a branch; leave out --branch").format(
            context=context, trigger=trigger))
    body = state.consultation.body if state.consultation else None
    _check_permission(definition, actor, t.roles, body,
                      _("{actor} may not fire '{trigger}' on {reference} in state '{state}': needs one of the roles "
                        "{roles}"), trigger=trigger, reference=reference, state=state.id)
    _check_signoffs(definition, reference, paper, t, actor)
    why = _reason(definition, t, reference, actor, reason)
    if t.internal:
        fields, result, _meeting = _parse_values(definition, values, (), context, t.settable())
        _require(definition, t, fields, result, None, context)
        return [Change("internal", trigger, paper.state, paper.state, actor, now,
                       payload=_payload(fields, None, None, **why))]
    dest = machine.step(paper.state, trigger)
    assert dest is not None and dest == t.dest_for(paper.state)
    target = definition.states[dest]
    builtins = ("result", "meeting") if target.consultation else ("result",)
    fields, result, meeting = _parse_values(definition, values, builtins, context, t.settable())
    _check_meeting_ahead(meeting, now, actor, context)
    _require(definition, t, fields, result, meeting, context)
    payload = _payload(fields, result, meeting, **why)
    return [Change("transition", trigger, paper.state, dest, actor, now, payload=payload)]


def _reason(definition: Definition, t: Transition, reference: str, actor: str, reason: str | None) -> dict[str, str]:
    """The payload part of a firing's reason: checked like other free text; required for a ``confirm``
    trigger fired by a person (the one rule of the confirmation)."""
    text = ""
    if reason is not None:
        try:
            text = clean_text(reason, _("reason")).strip()
        except ValueError as exc:
            raise InputError(_("{reference} {trigger}: {problem}").format(reference=reference, trigger=t.trigger,
                                                                          problem=exc)) from None
    if not text and t.confirm and actor not in _TRUSTED:
        raise InputError(_("{reference}: “{label}” ({trigger}) must be confirmed with a reason; please give a "
                           "reason").format(reference=reference, label=definition.trigger_label(t.trigger),
                                            trigger=t.trigger))
    return {"reason": text} if text else {}


def field_instant(definition: Definition, fields: Mapping[str, Any], name: str) -> datetime | None:
    """The instant a ``date`` or ``datetime`` field stands for (a date: its local midnight), or None if unset."""
    raw = fields.get(name)
    if not raw:
        return None
    text = str(raw)
    zone = ZoneInfo(definition.timezone)
    if len(text) <= 10:
        return datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone).astimezone(UTC)
    return datetime.fromisoformat(text).astimezone(UTC)


def earliest(definition: Definition, rule: tuple[str, Offset], paper: PaperState) -> datetime | None:
    """The first instant a transition with ``not_before`` may fire: the start of the local day reached
    by the offset from the anchor (entering the state, or a date/datetime field; None if it is not set)."""
    anchor_name, offset = rule
    zone = ZoneInfo(definition.timezone)
    anchor_at = paper.entered_at if anchor_name == "entered" else field_instant(definition, paper.fields, anchor_name)
    if anchor_at is None:
        return None
    day = shift(working_calendar(definition.calendar), anchor_at.astimezone(zone).date(), offset, 1)
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _check_meeting_ahead(meeting: datetime | None, now: datetime, actor: str, context: str) -> None:
    """A meeting set now lies ahead: one before the change's own instant is a typing error (history
    recorded after the fact, such as an OParl import, keeps its recorded meetings)."""
    if meeting is not None and meeting < now and actor not in _TRUSTED:
        raise NotAllowedNowError(_("{context}: the meeting {meeting} lies before this change ({now}); a meeting is "
                                   "set ahead of time").format(context=context, meeting=meeting.isoformat(),
                                                               now=now.isoformat()))


def _require(
    definition: Definition,
    t: Transition,
    fields: Mapping[str, Any],
    result: str | None,
    meeting: datetime | None,
    context: str,
) -> None:
    given = {**fields, "result": result, "meeting": meeting}
    for name in t.requires:
        if name == SIGNOFFS:
            continue  # not a value: checked by _check_signoffs
        if given.get(name) in (None, "", []):
            raise InputError(_("{context}: '{trigger}' requires {key}: add --set {key}=…").format(
                context=context, trigger=t.trigger, key=name))


def _open_branch(paper: PaperState, state: State, branch: str | None, context: str, why_needed: str) -> str:
    """The named branch of a parallel state, checked to exist and to be still open."""
    assert state.parallel is not None
    bodies = state.parallel.bodies
    if branch is None:
        raise InputError(_("{context}: {why}; name it with --branch, one of {bodies}").format(
            context=context, why=why_needed, bodies=", ".join(bodies)))
    if branch not in bodies:
        raise InputError(_("{context}: '{branch}' is no branch of state '{state}'{hint}").format(
            context=context, branch=branch, state=state.id, hint=did_you_mean(branch, bodies)))
    current = paper.branches[branch]
    if current.status != "open":
        raise NotAllowedNowError(_("{context}: branch '{branch}' is closed already ({status})").format(
            context=context, branch=branch, status=current.status))
    return branch


def _decide_branch(
    definition: Definition,
    machine: CompiledMachine,
    reference: str,
    paper: PaperState,
    state: State,
    t: Transition,
    actor: str,
    branch: str | None,
    values: Mapping[str, str],
    now: datetime,
    reason: str | None = None,
) -> list[Change]:
    assert t.branch is not None
    context = f"{reference} {t.trigger}"
    branch = _open_branch(paper, state, branch, context,
                          _("'{trigger}' acts on one branch").format(trigger=t.trigger))
    _check_permission(definition, actor, t.roles, branch,
                      _("{actor} may not fire '{trigger}' on {reference} for branch '{branch}': needs one of the "
                        "roles {roles}"), trigger=t.trigger, reference=reference, branch=branch)
    why = _reason(definition, t, reference, actor, reason)
    assert machine.step(paper.state, t.trigger) == paper.state
    builtins = ("result", "meeting") if t.branch == "deferred" else ("result",)
    fields, result, meeting = _parse_values(definition, values, builtins, context, t.settable())
    _check_meeting_ahead(meeting, now, actor, context)
    _require(definition, t, fields, result, meeting, context)
    changes = [
        Change(
            "branch",
            t.trigger,
            paper.state,
            paper.state,
            actor,
            now,
            branch,
            _payload(fields, result, meeting, outcome=t.branch, **why),
        )
    ]
    after = apply(definition, paper, changes[0])
    changes.extend(_join(definition, machine, after, now))
    return changes


def _join(definition: Definition, machine: CompiledMachine, paper: PaperState, now: datetime) -> list[Change]:
    """The automatic move out of a parallel state once its join is met or can no longer be."""
    parallel = definition.states[paper.state].parallel
    assert parallel is not None
    if parallel.join.none:
        return []  # the branches only record outcomes; the state's own transitions move the paper
    statuses = [b.status for b in paper.branches.values()]
    adopted, rejected, open_ = statuses.count("adopted"), statuses.count("rejected"), statuses.count("open")
    needed = parallel.join.needed(len(statuses))
    if parallel.join.quorum is None:
        outcome = "success" if adopted == len(statuses) else ("failure" if rejected else None)
    else:
        outcome = "success" if adopted >= needed else ("failure" if adopted + open_ < needed else None)
    if outcome is None:
        return []
    changes = [
        Change("close", "close", paper.state, paper.state, SYSTEM_ACTOR, now, b.body, {"outcome": "not_needed"})
        for b in paper.open_branches()
    ]
    trigger = JOIN_SUCCESS if outcome == "success" else JOIN_FAILURE
    dest = machine.step(paper.state, trigger)
    assert dest is not None
    payload = {"join": outcome, "adopted": adopted, "rejected": rejected, "needed": needed}
    changes.append(Change("join", f"join_{outcome}", paper.state, dest, SYSTEM_ACTOR, now, None, payload))
    return changes


def decide_meeting(
    definition: Definition,
    reference: str,
    paper: PaperState,
    when: datetime,
    actor: str,
    branch: str | None,
    now: datetime,
) -> list[Change]:
    """Set or move the meeting of the current consultation, or of one open branch."""
    state = definition.states[paper.state]
    context = f"{reference} meeting"
    if not state.waits_for_meeting:
        raise NotAllowedNowError(_("{context}: state '{state}' ({label}) waits for no meeting").format(
            context=context, state=state.id, label=state.label))
    roles = tuple(dict.fromkeys(r for t in definition.transitions_from(state.id) for r in t.roles))
    body: str | None
    if state.parallel is not None and (branch is not None or state.consultation is None):
        body = branch = _open_branch(paper, state, branch, context,
                                     _("state '{state}' has one meeting per branch").format(state=state.id))
    else:
        if branch is not None:
            raise InputError(_("{context}: state '{state}' has no branches; leave out --branch").format(
                context=context, state=state.id))
        body = state.consultation.body if state.consultation else None
    _check_permission(definition, actor, roles, body,
                      _("{actor} may not set the meeting of {reference} in state '{state}': needs one of the roles "
                        "{roles}"), reference=reference, state=state.id)
    _check_meeting_ahead(when, now, actor, context)
    previous = paper.branches[branch].meeting if branch else paper.meeting
    payload: dict[str, Any] = {"meeting": when.isoformat()}
    if previous is not None:
        payload["previous"] = previous.isoformat()
    return [Change("meeting", "meeting", paper.state, paper.state, actor, now, branch, payload)]


# --- Mitzeichnung (sign-off) -----------------------------------------------------------------


def fields_hash(fields: Mapping[str, Any]) -> str:
    """The SHA-256 of a paper's fields (canonical JSON): a sign-off records it, a later change of a field
    changes it and voids the sign-off."""
    return hashlib.sha256(canonical_json(dict(fields)).encode("utf-8")).hexdigest()


def signoffs_to_json(marks: Mapping[str, SignoffMark]) -> dict[str, dict[str, Any]]:
    """Standing sign-offs as stored in the paper's row: the one JSON form."""
    return {role: {"decision": m.decision, "actor": m.actor, "at": m.at.isoformat(), "fields_hash": m.fields_hash,
                   "text": m.text} for role, m in marks.items()}


def signoffs_from_json(raw: Mapping[str, Any] | None) -> dict[str, SignoffMark]:
    """The inverse of :func:`signoffs_to_json`."""
    return {role: SignoffMark(role, v["decision"], v["actor"], stored_instant(v["at"]), v["fields_hash"],
                              v.get("text")) for role, v in (raw or {}).items()}


def _fold_signoff(paper: PaperState, change: Change) -> dict[str, SignoffMark]:
    p = change.payload
    marks = dict(paper.signoffs)
    if change.trigger in ("sign", "refuse"):
        role = str(p["role"])
        marks[role] = SignoffMark(role, "signed" if change.trigger == "sign" else "refused", change.actor, change.at,
                                  str(p["fields_hash"]), p.get("note") or p.get("reason"))
    elif change.trigger == "withdraw":
        del marks[str(p["role"])]
    elif change.trigger == "void":
        for role in p["roles"]:
            marks.pop(str(role), None)
    else:
        raise ValueError(f"unknown sign-off entry '{change.trigger}'")
    return marks


def missing_signoffs(definition: Definition, paper: PaperState) -> list[tuple[str, SignoffMark | None]]:
    """The roles of the state's ``signoff`` that have not signed the paper off (in the order of ``roles``),
    each with its refusal if it refused; empty when every sign-off is given (or the state asks for none)."""
    spec = definition.states[paper.state].signoff
    if spec is None:
        return []
    out: list[tuple[str, SignoffMark | None]] = []
    for role in spec.roles:
        mark = paper.signoffs.get(role)
        if mark is None or mark.decision != "signed":
            out.append((role, mark))
    return out


def _check_signoffs(definition: Definition, reference: str, paper: PaperState, t: Transition, actor: str) -> None:
    """A transition that ``requires: [signoffs]`` fires only once every role signed the paper off and no
    refusal stands (history recorded by the system or an import is not held back)."""
    if not t.needs_signoffs or actor in _TRUSTED:
        return
    missing = missing_signoffs(definition, paper)
    if not missing:
        return
    parts = [_("{role} (refused by {actor}: {reason})").format(role=role, actor=mark.actor, reason=mark.text or "–")
             if mark is not None else _("{role} (open)").format(role=role) for role, mark in missing]
    raise NotAllowedNowError(_("{reference}: '{trigger}' needs every sign-off first; missing: {missing}").format(
        reference=reference, trigger=t.trigger, missing=", ".join(parts)))


def signoff_request(reference: str, *, refuse: bool = False, withdraw: bool = False, note: str | None = None,
                    reason: str | None = None) -> tuple[SignoffAct, str]:
    """What a person asked for, as the CLI's options and the API's body give it (``--refuse --reason``,
    ``--withdraw``, ``--note``): the act and its text, or an InputError for a combination that makes no sense."""
    if refuse and withdraw:
        raise InputError(_("{reference}: refuse and withdraw exclude each other").format(reference=reference))
    if reason is not None and not refuse:
        raise InputError(_("{reference}: a reason goes with a refusal; a sign-off takes a note").format(
            reference=reference))
    if note is not None and refuse:
        raise InputError(_("{reference}: a refusal gives its reason as reason, not as note").format(
            reference=reference))
    if withdraw:
        return "withdraw", note or ""
    return ("refuse", reason or "") if refuse else ("sign", note or "")


def decide_signoff(definition: Definition, reference: str, paper: PaperState, actor: str, act: SignoffAct,
                   text: str, now: datetime) -> list[Change]:
    """A person signs the paper off (``sign``, with an optional note), refuses to (``refuse``, with a required
    reason) or withdraws their role's sign-off or refusal (``withdraw``): the one rule of the Mitzeichnung.

    The person signs for a role of the state's ``signoff`` they hold that has not decided yet (the first in
    the order of ``roles``); with ``order: sequence`` only the first role that has not signed may decide. A
    sign-off records the hash of the paper's fields (:func:`fields_hash`)."""
    state = definition.states[paper.state]
    spec = state.signoff
    if spec is None:
        raise NotAllowedNowError(_("{reference} is in state '{state}' ({label}), which asks for no sign-off").format(
            reference=reference, state=state.id, label=state.label))
    held = [r for r in spec.roles if definition.holds_any(actor, (r,), None)]
    if not held:
        raise NotPermittedError(_("{actor} may not sign off {reference}: the sign-off is for the roles {roles}")
                                .format(actor=actor, reference=reference, roles=", ".join(spec.roles)))
    try:
        note = clean_text(text, _("note")).strip()
    except ValueError as exc:
        raise InputError(_("{reference}: {problem}").format(reference=reference, problem=exc)) from None
    if act == "withdraw":
        decided = sorted((r for r in held if r in paper.signoffs),
                         key=lambda r: paper.signoffs[r].decision != "refused")  # a refusal first
        if not decided:
            raise NotAllowedNowError(_("{reference}: no sign-off or refusal of the roles {roles} stands; there is "
                                       "nothing to withdraw").format(reference=reference, roles=", ".join(held)))
        mark = paper.signoffs[decided[0]]
        payload: dict[str, Any] = {"role": mark.role, "decision": mark.decision, "of": mark.actor}
        if note:
            payload["note"] = note
        return [Change("signoff", "withdraw", paper.state, paper.state, actor, now, payload=payload)]
    if act not in ("sign", "refuse"):
        raise InputError(_("{reference}: unknown sign-off act '{act}'").format(reference=reference, act=act))
    undecided = [r for r in held if r not in paper.signoffs]
    if not undecided:
        mark = paper.signoffs[held[0]]
        if mark.decision == "refused":
            raise NotAllowedNowError(_("{reference}: role '{role}' has refused already ({actor}); withdraw the refusal "
                                       "first (--withdraw)").format(reference=reference, role=mark.role,
                                                                    actor=mark.actor))
        raise NotAllowedNowError(_("{reference}: role '{role}' has signed off already ({actor}); a sign-off is given "
                                   "once").format(reference=reference, role=mark.role, actor=mark.actor))
    role = undecided[0]
    if spec.order == "sequence":
        turn = next(r for r in spec.roles if r not in paper.signoffs or paper.signoffs[r].decision != "signed")
        if turn not in undecided:
            blocked = paper.signoffs.get(turn)
            if blocked is not None:
                raise NotAllowedNowError(_("{reference}: the sign-offs come in order, and role '{role}' has refused "
                                           "({actor}); it must withdraw its refusal first").format(
                    reference=reference, role=turn, actor=blocked.actor))
            raise NotAllowedNowError(_("{reference}: the sign-offs come in order; it is the turn of role '{role}' "
                                       "first").format(reference=reference, role=turn))
        role = turn
    if act == "refuse" and not note:
        raise InputError(_("{reference}: a refusal needs a reason; please give one (--reason)").format(
            reference=reference))
    payload = {"role": role, "fields_hash": fields_hash(paper.fields)}
    if note:
        payload["reason" if act == "refuse" else "note"] = note
    return [Change("signoff", act, paper.state, paper.state, actor, now, payload=payload)]


def void_signoffs(before: PaperState, after: PaperState, now: datetime) -> list[Change]:
    """The entry that voids the sign-offs given on other field values than the paper has after a change
    (``before`` → ``after``: a field was changed after they were given); they are asked for again, and the
    entry names the fields changed and the people who signed. Refusals stand until withdrawn."""
    if not any(m.decision == "signed" for m in after.signoffs.values()):
        return []  # nothing to void (and no hash to compute on every change of every paper)
    current = fields_hash(after.fields)
    stale = [m for m in after.signoffs.values() if m.decision == "signed" and m.fields_hash != current]
    if not stale:
        return []
    changed = sorted(k for k in {*before.fields, *after.fields} if before.fields.get(k) != after.fields.get(k))
    payload = {"roles": [m.role for m in stale], "signers": sorted({m.actor for m in stale}), "changed": changed,
               "fields_hash": current}
    return [Change("signoff", "void", after.state, after.state, SYSTEM_ACTOR, now, payload=payload)]
