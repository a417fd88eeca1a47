"""``councilflow definitions simulate``: a dry run of a scenario on a throwaway in-memory store.

A scenario file names a paper (reference, fields, who creates it and when) and the steps taken on it
(triggers fired, meetings set, deadlines marked done, each at its moment). The run plays them on a
:class:`~workflow.store.memory.MemoryStore` with a :class:`~workflow.clock.FixedClock`; between steps the
clock steps through every moment a mail falls due and the notifier's dispatcher delivers it into memory
(:func:`notifier.stepping.deliver_until`, the loop of `tick --until` and the demo). What happened comes back
as events in time order: states entered, branch outcomes, deadlines started (due moment and why) and ended,
every mail with its moment and recipients, and the refusal that stopped the run, if any. Nothing is stored
or sent. The scenario format is described in German in docs/simulate.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .clock import FixedClock
from .deadlines import explain_due
from .definition import Definition
from .engine import Engine
from .errors import InputError, Problem, WorkflowError, did_you_mean
from .german import MAIL_KIND, format_local, outcome
from .i18n import _, ngettext, pgettext
from .library import DefinitionLibrary
from .store import DeadlineRecord
from .values import field_texts, parse_datetime
from .yamlsafe import Located, YamlProblems, load_located

if TYPE_CHECKING:
    from email.message import EmailMessage

    from notifier.dispatch import TickReport

    from .config import Settings
    from .paper import Change

__all__ = ["Event", "Refusal", "Scenario", "ScenarioError", "Simulation", "Step", "load_scenario", "simulate"]

Action = Literal["fire", "meeting", "done"]
TOP_KEYS = ("reference", "start", "actor", "fields", "steps", "until")
STEP_KEYS = ("at", "fire", "meeting", "done", "branch", "actor", "set", "note", "reason")
ACTIONS: tuple[Action, ...] = ("fire", "meeting", "done")


class ScenarioError(InputError):
    """A scenario file is malformed: every problem, each as ``file:line:col: message`` (German)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


@dataclass(frozen=True)
class Step:
    """One step of a scenario: at ``at``, fire a trigger, set a meeting or mark a deadline done."""

    number: int  # 1-based
    line: int
    at: datetime
    action: Action
    target: str  # the trigger or the deadline's name; for a meeting its local text
    meeting: datetime | None = None
    branch: str | None = None
    actor: str | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    #: Why a trigger is fired (needed for one with ``confirm: true``).
    reason: str | None = None


@dataclass(frozen=True)
class Scenario:
    path: str
    reference: str
    start: datetime
    actor: str
    fields: Mapping[str, str]
    steps: tuple[Step, ...]
    until: datetime | None
    line: int = 1  # of `reference`: where the paper is created


class _Reader:
    """Checks a parsed scenario strictly, collecting every problem with its line and column."""

    def __init__(self, doc: Located, path: str, zone: str) -> None:
        self.doc, self.path, self.zone = doc, path, zone
        self.problems: list[Problem] = []

    def problem(self, where: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        line, col = self.doc.where(where, key=key)
        self.problems.append(Problem(self.path, line, col, message))

    def keys(self, value: Mapping[str, Any], where: tuple[str | int, ...], allowed: tuple[str, ...], what: str) -> None:
        for key in value:
            if key not in allowed:
                self.problem((*where, key), _("unknown key '{key}' {where}{hint}; allowed: {allowed}").format(
                    key=key, where=what, hint=did_you_mean(key, allowed), allowed=", ".join(allowed)), key=True)

    def text(self, value: Any, where: tuple[str | int, ...], what: str) -> str | None:
        if isinstance(value, str) and value.strip():
            return value.strip()
        self.problem(where, _("{what} must be a text, not {value}").format(what=what, value=_shown(value)))
        return None

    def moment(self, value: Any, where: tuple[str | int, ...], what: str, *, end_of_day: bool = False
               ) -> datetime | None:
        text = value if isinstance(value, str) else None
        if text is not None:
            try:
                if end_of_day and len(text.strip()) == 10:  # a day alone: up to its end
                    day = datetime.fromisoformat(text.strip()).date()
                    return parse_datetime(datetime.combine(day, time(23, 59, 59)).isoformat(), self.zone)
                return parse_datetime(text, self.zone)
            except ValueError:
                pass
        self.problem(where, _("{what} must be a moment such as 2025-09-02T10:00 (local time {zone}), not "
                              "{value}").format(what=what, zone=self.zone, value=_shown(value)))
        return None

    def values(self, value: Any, where: tuple[str | int, ...], what: str) -> dict[str, str]:
        if not isinstance(value, dict):
            self.problem(where, _("{what} must be a mapping FIELD: VALUE, not {value}").format(
                what=what, value=_shown(value)))
            return {}
        out: dict[str, str] = {}
        for key, item in value.items():
            try:
                out.update(field_texts({key: item}, what))
            except InputError:
                self.problem((*where, key), _("{what}: the value of '{key}' must be text, a number, true/false or a "
                                              "list of texts").format(what=what, key=key))
        return out


def _shown(value: Any) -> str:
    if value is None:
        return _("nothing")
    if isinstance(value, dict):
        return pgettext("value type", "a mapping")
    if isinstance(value, list):
        return pgettext("value type", "a list")
    return repr(value)


def load_scenario(path: str | Path, zone: str) -> Scenario:
    """Read and check a scenario file (the project's strict YAML); times without an offset are local time of
    ``zone`` (the workflow's). Raises :class:`ScenarioError` listing every problem with file:line:col."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([Problem(name, 1, 1, _("the file cannot be read: {reason}").format(
            reason=exc.strerror))]) from None
    except UnicodeDecodeError:
        raise ScenarioError([Problem(name, 1, 1, _("the file is not written in UTF-8"))]) from None
    try:
        doc = load_located(text, name)
    except YamlProblems as exc:
        raise ScenarioError(exc.problems) from None
    r = _Reader(doc, name, zone)
    top = doc.value
    if not isinstance(top, dict):
        raise ScenarioError([Problem(name, 1, 1, _("a scenario is a mapping with reference, start, actor, fields, "
                                                   "steps and until"))])
    r.keys(top, (), TOP_KEYS, _("in the scenario"))
    for key in ("reference", "start", "actor"):
        if key not in top:
            r.problem((), _("the key '{key}' is missing").format(key=key))
    reference = r.text(top.get("reference"), ("reference",), "reference") if "reference" in top else None
    actor = r.text(top.get("actor"), ("actor",), "actor") if "actor" in top else None
    start = r.moment(top.get("start"), ("start",), "start") if "start" in top else None
    fields = r.values(top["fields"], ("fields",), "fields") if "fields" in top else {}
    until = r.moment(top["until"], ("until",), "until", end_of_day=True) if "until" in top else None
    raw_steps = top.get("steps", [])
    steps: list[Step] = []
    if not isinstance(raw_steps, list):
        r.problem(("steps",), _("steps must be a list of steps, not {value}").format(value=_shown(raw_steps)))
        raw_steps = []
    previous = start
    for n, raw in enumerate(raw_steps):
        step = _step(r, raw, n, previous)
        if step is not None:
            steps.append(step)
            previous = step.at
    if until is not None and previous is not None and until < previous:
        shown = format_local(previous, zone)
        r.problem(("until",), _("until lies before the last step ({moment})").format(moment=shown) if steps else
                  _("until lies before the start ({moment})").format(moment=shown))
    if r.problems:
        raise ScenarioError(r.problems)
    assert reference is not None and actor is not None and start is not None
    return Scenario(name, reference, start, actor, fields, tuple(steps), until, doc.where(("reference",))[0])


def _step(r: _Reader, raw: Any, n: int, previous: datetime | None) -> Step | None:
    where: tuple[str | int, ...] = ("steps", n)
    label = _("step {number}").format(number=n + 1)
    if not isinstance(raw, dict):
        r.problem(where, _("{step} must be a mapping (at and fire, meeting or done), not {value}").format(
            step=label, value=_shown(raw)))
        return None
    before = len(r.problems)
    r.keys(raw, where, STEP_KEYS, _("in step {number}").format(number=n + 1))
    actions = [a for a in ACTIONS if a in raw]
    if len(actions) > 1:
        r.problem(where, _("{step} needs exactly one of the keys fire, meeting or done, not {given}").format(
            step=label, given=_("{first} and {second}").format(first=actions[0], second=actions[1])
            if len(actions) == 2 else ", ".join(actions)))
    elif not actions:
        r.problem(where, _("{step} needs exactly one of the keys fire, meeting or done").format(step=label))
    if "at" not in raw:
        r.problem(where, _("{step}: the key 'at' (when) is missing").format(step=label))
    at = r.moment(raw["at"], (*where, "at"), f"{label}: at") if "at" in raw else None
    if at is not None and previous is not None and at < previous:
        r.problem((*where, "at"), _("{step} lies before the moment before it ({moment}); the steps are in the "
                                    "order of time").format(step=label, moment=format_local(previous, r.zone)))
    action = actions[0] if len(actions) == 1 else None
    if "set" in raw and action != "fire":
        r.problem((*where, "set"), _("{step}: {key} belongs to {action} only").format(
            step=label, key="set", action="fire"), key=True)
    if "note" in raw and action != "done":
        r.problem((*where, "note"), _("{step}: {key} belongs to {action} only").format(
            step=label, key="note", action="done"), key=True)
    if "reason" in raw and action != "fire":
        r.problem((*where, "reason"), _("{step}: {key} belongs to {action} only").format(
            step=label, key="reason", action="fire"), key=True)
    target = r.text(raw[action], (*where, action), f"{label}: {action}") if action else None
    meeting = r.moment(raw["meeting"], (*where, "meeting"), f"{label}: meeting") if action == "meeting" else None
    branch = r.text(raw["branch"], (*where, "branch"), f"{label}: branch") if "branch" in raw else None
    actor = r.text(raw["actor"], (*where, "actor"), f"{label}: actor") if "actor" in raw else None
    values = r.values(raw["set"], (*where, "set"), f"{label}: set") if "set" in raw else {}
    note = r.text(raw["note"], (*where, "note"), f"{label}: note") if "note" in raw else ""
    reason = r.text(raw["reason"], (*where, "reason"), f"{label}: reason") if "reason" in raw else None
    if len(r.problems) > before or at is None or action is None or target is None:
        return None
    return Step(n + 1, r.doc.where(where)[0], at, action, target, meeting, branch, actor, values, note or "",
                reason)


# --- the run --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One thing that happened, at its moment: ``kind`` is step, state, branch, deadline, deadline_end, mail,
    mail_failed or refused; ``text`` the German line; ``data`` the machine-readable details."""

    at: datetime
    kind: str
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    """The step the engine refused (0: creating the paper), with the engine's error."""

    step: int
    line: int
    error: WorkflowError


@dataclass
class Simulation:
    definition: Definition
    scenario: Scenario
    events: list[Event] = field(default_factory=list)
    #: Every mail as the dispatcher built it (one personal copy per recipient), in sending order.
    messages: list[EmailMessage] = field(default_factory=list)
    refused: Refusal | None = None
    end: datetime | None = None
    #: (definition, deadline, meeting, paper modified, title) of each deadline started, for the calendar.
    started: list[tuple[Definition, DeadlineRecord, datetime | None, datetime, str]] = field(default_factory=list)


def simulate(library: DefinitionLibrary, workflow: str, scenario: Scenario, settings: Settings, *,
             digests: bool = True) -> Simulation:
    """Play ``scenario`` on a paper of ``workflow`` in memory and return what happened, in time order. With
    ``digests`` the daily overview mails are queued at the digest hour, as `serve` does."""
    # The engine package does not depend on the notifier; the dry run composes them, as `serve` does.
    from notifier.dispatch import Dispatcher
    from notifier.render import meeting_of
    from notifier.stepping import deliver_until
    from notifier.transports import MemoryTransport

    from .store.memory import MemoryStore

    definition, _text = library.current(workflow)
    clock = FixedClock(scenario.start)
    engine = Engine(MemoryStore("simulate"), library, clock, morning_hour=settings.morning_hour,
                    evening_hour=settings.evening_hour)
    engine.init()
    transport = MemoryTransport()
    dispatcher = Dispatcher(engine, transport, settings, "simulate")
    result = Simulation(definition, scenario)
    zone = definition.timezone
    ref = scenario.reference
    known: dict[int, DeadlineRecord] = {}

    def add(at: datetime, kind: str, text: str, **data: Any) -> None:
        result.events.append(Event(at, kind, text, data))

    def body_name(body: str | None) -> str:
        found = definition.bodies.get(body) if body else None
        return found.name if found else (body or "")

    def where(d: DeadlineRecord) -> str:
        return f" – {body_name(d.branch)}" if d.branch else ""

    def delivered(moment: datetime, report: TickReport) -> None:
        for mail in report.delivered:
            d = known.get(mail.deadline_id) if mail.deadline_id is not None else None
            what = f"{d.label}{where(d)}: {mail.label}" if d is not None else mail.label
            add(moment, "mail", f"{what} → {', '.join(mail.recipients)}", mail=mail.kind, label=mail.label,
                reference=mail.reference, deadline=d.name if d else None, branch=d.branch or None if d else None,
                recipients=list(mail.recipients))
        for error in report.errors:
            add(moment, "mail_failed", error)

    def changed(changes: list[Change]) -> None:
        for c in changes:
            if c.kind in ("create", "transition", "join"):
                label = definition.states[c.to_state].label
                add(c.at, "state", f"{label} ({c.to_state})", state=c.to_state, label=label, trigger=c.trigger)
            elif c.kind == "branch":
                result_text = c.payload.get("result")
                add(c.at, "branch", f"{body_name(c.branch)}: {outcome(str(c.payload['outcome']))}"
                                    + (f" – „{result_text}“" if result_text else ""),
                    branch=c.branch, outcome=c.payload["outcome"], result=result_text)
            elif c.kind == "close":
                add(c.at, "branch", f"{body_name(c.branch)}: {outcome('not_needed')}", branch=c.branch,
                    outcome="not_needed", result=None)
        paper = engine.load(ref)
        now = clock.now()
        specs = {d.name: d for d in definition.deadlines}
        for d in engine.store.outbox.deadlines(ref, running_only=False):
            before = known.get(d.id)
            known[d.id] = d
            if before is None:
                explanation = explain_due(definition, specs[d.name], d.anchor_at, d.body)
                add(now, "deadline", _("{deadline}: due {moment} ({why})").format(
                    deadline=f"{d.label}{where(d)}", moment=format_local(d.due_at, zone), why=explanation),
                    name=d.name, label=d.label, branch=d.branch or None, due_at=d.due_at.isoformat(),
                    explanation=explanation)
                result.started.append((definition, d, meeting_of(paper.state, d), paper.updated_at,
                                       str(paper.state.fields.get("title", ""))))
            elif before.status == "running" and d.status != "running":
                done = (d.name, d.branch) in paper.state.done
                add(d.ended_at or now, "deadline_end",
                    (_("{deadline}: done") if done else _("{deadline}: ended")).format(deadline=f"{d.label}{where(d)}"),
                    name=d.name, branch=d.branch or None, done=done)

    def act(number: int, line: int, what: str, at: datetime, run: Any) -> bool:
        add(at, "step", what, step=number, line=line)
        try:
            changes = run()
        except WorkflowError as exc:
            add(at, "refused", exc.message, step=number, line=line, exit_code=exc.exit_code)
            result.refused = Refusal(number, line, exc)
            return False
        changed(changes)
        return True

    fields = ", ".join(f"{k}={v}" for k, v in scenario.fields.items())
    created_text = _("created by {actor}").format(actor=scenario.actor) + (f"; {fields}" if fields else "")
    created = act(0, scenario.line, created_text,
                  scenario.start, lambda: [r.to_change() for r in engine.store.history(
                      engine.create(workflow, ref, scenario.actor, scenario.fields).reference)])
    if created:
        for step in scenario.steps:
            deliver_until(dispatcher, clock, step.at, digests=digests, on_tick=delivered)
            actor = step.actor or scenario.actor
            if not act(step.number, step.line, _step_text(step, actor, zone, body_name), step.at,
                       lambda step=step, actor=actor: _perform(engine, ref, step, actor)):
                break
        else:
            if scenario.until is not None:
                deliver_until(dispatcher, clock, scenario.until, digests=digests, on_tick=delivered)
    result.messages = list(transport.sent)
    result.end = clock.now()
    return result


def _perform(engine: Engine, reference: str, step: Step, actor: str) -> list[Change]:
    if step.action == "fire":
        return engine.fire(reference, step.target, actor, branch=step.branch, values=step.values,
                           reason=step.reason)
    if step.action == "meeting":
        assert step.meeting is not None
        return engine.set_meeting(reference, step.meeting, actor, branch=step.branch)
    return engine.done(reference, step.target, actor, branch=step.branch, note=step.note)


def _step_text(step: Step, actor: str, zone: str, body_name: Any) -> str:
    branch = f" – {body_name(step.branch)}" if step.branch else ""
    if step.action == "fire":
        values = ", ".join(f"{k}={v}" for k, v in step.values.items())
        reason = _("; reason: {reason}").format(reason=step.reason) if step.reason else ""
        return _("{trigger} by {actor}").format(trigger=f"{step.target}{branch}", actor=actor) \
            + (f"; {values}" if values else "") + reason
    if step.action == "meeting":
        return _("meeting{branch} on {moment} set by {actor}").format(
            branch=branch, moment=format_local(step.meeting, zone), actor=actor)
    return _("deadline {deadline} reported done by {actor}").format(deadline=f"{step.target}{branch}", actor=actor) \
        + (f"; {step.note}" if step.note else "")


# --- output --------------------------------------------------------------------------------------------

def _column(event: Event) -> str:
    """The first column of a line of the table: what kind of event it is."""
    kind = str(event.data["mail"]) if event.kind == "mail" else event.kind
    names = {"step": pgettext("simulate", "Step"), "state": pgettext("simulate", "State"),
             "branch": pgettext("simulate", "Body"), "deadline": pgettext("simulate", "Deadline"),
             "deadline_end": pgettext("simulate", "Deadline"), "mail_failed": pgettext("simulate", "Error"),
             "refused": pgettext("simulate", "Refused"), "remind": pgettext("simulate", "Reminder"),
             "escalate": pgettext("simulate", "Escalation"), "late": pgettext("simulate", "Notice"),
             "digest": pgettext("simulate", "Overview")}
    return names.get(kind, kind)


def table_lines(sim: Simulation) -> list[str]:
    """The run as German lines: a heading, one line per event in time order, a summary."""
    zone = sim.definition.timezone
    s = sim.scenario
    end = format_local(sim.end, zone)
    lines = [_("Simulation {reference} ({workflow} v{version}) from {start} to {end}, times {zone} – nothing is "
               "stored or sent").format(reference=s.reference, workflow=sim.definition.workflow,
                                        version=sim.definition.version, start=format_local(s.start, zone), end=end,
                                        zone=zone)]
    digests: list[Event] = []  # the digests of one moment, shown as one line

    def flush() -> None:
        if digests:
            first = digests[0]
            to = ", ".join(r for e in digests for r in e.data["recipients"])
            lines.append(f"{format_local(first.at, zone)}  {_column(first):<11} {first.data['label']} → {to}")
            digests.clear()

    for e in sim.events:
        if digests and (e.kind != "mail" or e.data["mail"] != "digest" or e.at != digests[0].at):
            flush()
        if e.kind == "mail" and e.data["mail"] == "digest":
            digests.append(e)
            continue
        lines.append(f"{format_local(e.at, zone)}  {_column(e):<11} {e.text}")
    flush()
    lines.append(summary(sim))
    return lines


def counts(sim: Simulation) -> dict[str, int]:
    kinds = [e.kind for e in sim.events]
    mails = [str(e.data["mail"]) for e in sim.events if e.kind == "mail"]
    return {"steps": kinds.count("step"), "states": kinds.count("state"), "deadlines": kinds.count("deadline"),
            "mails": len(mails), **{k: mails.count(k) for k in MAIL_KIND}, "copies": len(sim.messages)}


def _mail_count(kind: str, count: int) -> str:
    """"2 reminders": how many mails of one kind."""
    texts = {"remind": ngettext("{count} reminder", "{count} reminders", count),
             "escalate": ngettext("{count} escalation", "{count} escalations", count),
             "late": ngettext("{count} notice", "{count} notices", count),
             "digest": ngettext("{count} overview", "{count} overviews", count)}
    return texts[kind].format(count=count)


def summary(sim: Simulation) -> str:
    c = counts(sim)
    parts = ", ".join(_mail_count(k, c[k]) for k in MAIL_KIND if c[k])
    text = _("Summary: {steps}, {states} entered, {deadlines} started, {messages}{kinds}, {mails} (one per "
             "recipient)").format(
        steps=ngettext("{count} step", "{count} steps", c["steps"]).format(count=c["steps"]),
        states=ngettext("{count} state", "{count} states", c["states"]).format(count=c["states"]),
        deadlines=ngettext("{count} deadline", "{count} deadlines", c["deadlines"]).format(count=c["deadlines"]),
        messages=ngettext("{count} message", "{count} messages", c["mails"]).format(count=c["mails"]),
        kinds=f" ({parts})" if parts else "",
        mails=ngettext("{count} mail", "{count} mails", c["copies"]).format(count=c["copies"]))
    if sim.refused is not None:
        step = sim.refused.step
        text += (_("; stopped at the creation (line {line})").format(line=sim.refused.line) if step == 0 else
                 _("; stopped at step {number} (line {line})").format(number=step, line=sim.refused.line))
    return text


def to_json(sim: Simulation) -> dict[str, Any]:
    s = sim.scenario
    refused = sim.refused
    return {
        "workflow": sim.definition.workflow, "version": sim.definition.version, "reference": s.reference,
        "timezone": sim.definition.timezone, "start": s.start.isoformat(),
        "until": s.until.isoformat() if s.until else None, "end": sim.end.isoformat() if sim.end else None,
        "events": [{"at": e.at.isoformat(), "kind": e.kind, "text": e.text, **e.data} for e in sim.events],
        "counts": counts(sim),
        "refused": None if refused is None else {"step": refused.step, "line": refused.line,
                                                 "message": refused.error.message,
                                                 "exit_code": refused.error.exit_code},
    }


def to_ics(sim: Simulation) -> bytes:
    """The deadlines started and their meetings as one calendar: the entries the mails and the feed carry,
    except that a deadline is one entry per state it runs in (the feed keeps one per paper, deadline and
    branch, as it stands now); one that started anew in the same state (its meeting moved) appears as it
    stood last, and so does a meeting."""
    from notifier.render import calendar_uid, deadline_entries, make_ics

    entries: dict[str, Any] = {}
    for definition, deadline, meeting, modified, title in sim.started:
        event, session = deadline_entries(definition, deadline, title=title, meeting=meeting, modified=modified,
                                          stamp=deadline.started_at)
        event.pop("uid")
        event.add("uid", calendar_uid("frist", deadline.reference, deadline.name, deadline.branch, deadline.state))
        for entry in (event, session):
            if entry is not None:
                uid = str(entry["uid"])
                entries.pop(uid, None)
                entries[uid] = entry
    return make_ics(entries.values())


def render(sim: Simulation, fmt: str) -> str:
    """The run as ``table`` (German lines), ``json`` or ``ics`` text."""
    if fmt == "json":
        import json

        return json.dumps(to_json(sim), ensure_ascii=False, indent=2) + "\n"
    if fmt == "ics":
        return to_ics(sim).decode("utf-8")
    return "\n".join(table_lines(sim)) + "\n"


def refusal_line(sim: Simulation) -> str | None:
    """The one line for stderr when a step was refused: where in the scenario file, and the engine's words."""
    refused = sim.refused
    if refused is None:
        return None
    if refused.step == 0:
        return _("{path}:{line}: the creation was refused: {message}").format(
            path=sim.scenario.path, line=refused.line, message=refused.error.message)
    return _("{path}:{line}: step {number} was refused: {message}").format(
        path=sim.scenario.path, line=refused.line, number=refused.step, message=refused.error.message)
