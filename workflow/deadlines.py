"""Deadline and reminder times from a paper's state. Pure: no I/O, no clock of its own.

A deadline runs in the states it names (in a parallel state: once per open branch). It is due at the
end of a local day (23:59:59 in the workflow's time zone) counted from the meeting of the state's or
branch's body, or from the moment the state was entered. Reminders go out on their day at the
installation's morning hour; a reminder whose time has passed when the deadline starts goes out at
once, unless the deadline itself has passed. The escalation goes out once ``due`` plus ``after`` has
passed while the deadline still runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from .calendar import WEEKEND, mail_window, shift, working_calendar
from .definition import Deadline, Definition, Due, Offset
from .errors import InputError, NotAllowedNowError, NotPermittedError, did_you_mean
from .i18n import N_, _, ngettext
from .paper import TRUSTED_ACTORS, Change, ChangeKind, PaperState, field_instant
from .values import clean_text

__all__ = [
    "ESCALATING",
    "LATE_NOTE",
    "DeadlineKey",
    "PlannedDeadline",
    "PlannedReminder",
    "audience",
    "due_day",
    "due_label",
    "due_note",
    "explain_due",
    "involved",
    "offset_label",
    "plan_deadlines",
    "recipients",
]

END_OF_DAY = time(23, 59, 59)
DeadlineKey = tuple[str, str]  # (deadline name, branch body or "")


@dataclass(frozen=True)
class PlannedReminder:
    """One mail to send: a reminder before the deadline or its escalation after it."""

    kind: str  # "remind" | "escalate" | "late" (the deadline had passed when it started)
    label: str
    send_at: datetime
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class PlannedDeadline:
    """A running deadline of a paper, with everything needed to store and announce it."""

    name: str
    label: str
    state: str
    branch: str  # "" outside parallel states
    body: str | None
    due_at: datetime
    anchor: str  # "meeting" | "entered" | "field" (the definition names which)
    anchor_at: datetime
    reminders: tuple[PlannedReminder, ...]

    @property
    def key(self) -> DeadlineKey:
        return (self.name, self.branch)


def offset_label(offset: Offset) -> str:
    """The text of an offset, e.g. '5 Arbeitstage', '1 Tag'."""
    n = offset.amount
    if offset.unit == "invitation_period":
        return _("invitation period")
    if offset.unit == "working_days":
        return ngettext("{n} working day", "{n} working days", n).format(n=n)
    if offset.unit == "months":
        return ngettext("{n} month", "{n} months", n).format(n=n)
    return ngettext("{n} day", "{n} days", n).format(n=n)


#: When a deadline is due, by anchor and direction.
_DUE = {("meeting", True): N_("{amount} before meeting"), ("meeting", False): N_("{amount} after meeting"),
        ("entered", True): N_("{amount} before entering"), ("entered", False): N_("{amount} after entering"),
        ("field", True): N_("{amount} before field {field}"), ("field", False): N_("{amount} after field {field}")}


def due_label(due: Due, amount: str | None = None) -> str:
    """German text of when a deadline is due, e.g. '10 Arbeitstage vor Sitzung', '5 Tage nach Eintritt',
    '1 Monat vor Feld inkrafttreten' (``amount``: the offset's text, when it is to read otherwise)."""
    anchor = due.anchor if due.anchor in ("meeting", "entered") else "field"
    return _(_DUE[anchor, due.before]).format(amount=amount or offset_label(due.offset), field=due.anchor)


def due_day(definition: Definition, deadline: Deadline, anchor_local: date, body: str | None) -> date:
    """The local day on whose end ``deadline`` is due, counted from the anchor's local day."""
    calendar = working_calendar(definition.calendar)
    offset = deadline.due.offset
    if offset.unit == "invitation_period":
        assert body is not None
        offset = Offset("days", definition.bodies[body].invitation_days)
    return shift(calendar, anchor_local, offset, deadline.due.sign)


def explain_due(definition: Definition, deadline: Deadline, anchor_at: datetime, body: str | None) -> str:
    """Why ``deadline`` counted from ``anchor_at`` is due when it is, in German, with the same arithmetic as
    :func:`due_day`: "10 Arbeitstage vor Sitzung 14.01.2026, übersprungen: 01.01. Neujahr, 31.12. Verwaltung
    geschlossen". Counted in working days, the holidays and closed days stepped over are named (weekends
    are not: everybody counts them)."""
    calendar = working_calendar(definition.calendar)
    anchor_day = anchor_at.astimezone(ZoneInfo(definition.timezone)).date()
    offset = deadline.due.offset
    amount = offset_label(offset)
    if offset.unit == "invitation_period":
        assert body is not None
        amount = _("invitation period ({days})").format(
            days=offset_label(Offset("days", definition.bodies[body].invitation_days)))
    text = f"{due_label(deadline.due, amount)} {anchor_day:%d.%m.%Y}"
    if offset.unit != "working_days":
        return text
    day = due_day(definition, deadline, anchor_day, body)
    groups: dict[str, list[date]] = {}
    for skipped, reason in calendar.skipped(anchor_day, day):
        if reason != WEEKEND:
            groups.setdefault(reason, []).append(skipped)
    if not groups:
        return text
    return _("{text}, skipped: {days}").format(
        text=text, days=", ".join(f"{_days_short(days)} {reason}" for reason, days in groups.items()))


def _days_short(days: list[date]) -> str:
    """Days of one reason, the month written once where it repeats: "24./31.12.", "31.12./01.01."."""
    return "/".join(f"{d:%d}." if i + 1 < len(days) and days[i + 1].month == d.month and days[i + 1].year == d.year
                    else f"{d:%d.%m.}" for i, d in enumerate(days))


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """A local wall-clock time on ``day`` as UTC; fold=0 picks the first of a repeated hour."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def recipients(definition: Definition, roles: tuple[str, ...], body: str | None) -> tuple[str, ...]:
    """The addresses (lower case, each once, in order) holding ``roles``; ``body`` resolves the role
    ``body`` (the contact of the branch's or the state's body)."""
    return tuple(dict.fromkeys(m.lower() for r in roles for m in definition.members(r, body)))


def involved(definition: Definition, deadline: Deadline, body: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Whom a deadline (for ``body``) concerns: the addresses it notifies, and those it escalates to."""
    notify = recipients(definition, deadline.notify, body)
    escalate_to = recipients(definition, deadline.escalate.notify, body) if deadline.escalate else ()
    return notify, escalate_to


#: The kinds of mail from whose send time on a deadline counts as escalated to those it escalates to.
ESCALATING = ("escalate", "late")


def audience(definition: Definition, planned: PlannedDeadline) -> list[tuple[str, datetime | None]]:
    """The addresses whose "Meine Fristen" list a deadline as it starts, each with the moment from which on
    (None: from its start): those it notifies, and those it only escalates to from its first :data:`ESCALATING`
    mail's send time (none without such a mail). Kept with each running deadline; :func:`involved` is the
    rule."""
    spec = next((d for d in definition.deadlines if d.name == planned.name), None)
    if spec is None:
        return []
    notify, escalate_to = involved(definition, spec, planned.body)
    first = min((r.send_at for r in planned.reminders if r.kind in ESCALATING), default=None)
    out: list[tuple[str, datetime | None]] = [(email, None) for email in notify]
    if first is not None:
        out += [(email, first) for email in escalate_to if email not in notify]
    return out


class RunningDeadline(NamedTuple):
    """A deadline that runs for a paper: what it counts from and when it is due.

    A named tuple, not a dataclass: a branch decision in the 11-council state builds 44 of them.
    """

    deadline: Deadline
    state: str
    branch: str
    body: str | None
    anchor_at: datetime
    due_at: datetime

    @property
    def key(self) -> DeadlineKey:
        return (self.deadline.name, self.branch)


_due_cache: dict[tuple[str, str, datetime, str | None], datetime] = {}


def _due_at(definition: Definition, deadline: Deadline, anchor_at: datetime, body: str | None) -> datetime:
    """Due moment of ``deadline`` counted from ``anchor_at``; remembered, as it is asked for often."""
    key = (definition.source_hash, deadline.name, anchor_at, body)
    found = _due_cache.get(key)
    if found is None:
        if len(_due_cache) > 100_000:
            _due_cache.clear()
        zone = ZoneInfo(definition.timezone)
        anchor_day = anchor_at.astimezone(zone).date()
        found = _due_cache[key] = _at(due_day(definition, deadline, anchor_day, body), END_OF_DAY, zone)
    return found


def _slots(definition: Definition, paper: PaperState) -> list[tuple[str, str | None, datetime | None]]:
    """Where deadlines of the current state run: (branch, body, meeting) per open branch of a parallel
    state, and ("", body, meeting) for the state itself unless it is a parallel state without a body."""
    spec = definition.states[paper.state]
    slots: list[tuple[str, str | None, datetime | None]] = []
    if spec.parallel is not None:
        slots = [(b.body, b.body, b.meeting) for b in paper.open_branches()]
    if spec.parallel is None or spec.consultation is not None:
        slots.append(("", spec.consultation.body if spec.consultation else None, paper.meeting))
    return slots


def _anchor_at(definition: Definition, deadline: Deadline, paper: PaperState, meeting: datetime | None
               ) -> datetime | None:
    anchor = deadline.due.anchor
    if anchor == "meeting":
        return meeting
    if anchor == "entered":
        return paper.entered_at
    return field_instant(definition, paper.fields, anchor)


def running_deadlines(definition: Definition, paper: PaperState) -> dict[DeadlineKey, RunningDeadline]:
    """The deadlines that run for ``paper`` in its current state, by (name, branch)."""
    running: dict[DeadlineKey, RunningDeadline] = {}
    for deadline in definition.deadlines:
        if paper.state not in deadline.states:
            continue
        for branch, body, meeting in _slots(definition, paper):
            if (deadline.name, branch) in paper.done:
                continue  # marked done in this visit of the state
            anchor_at = _anchor_at(definition, deadline, paper, meeting)
            if anchor_at is None:
                continue  # counts from a meeting or a field that is not set yet
            item = RunningDeadline(deadline, paper.state, branch, body, anchor_at,
                                   _due_at(definition, deadline, anchor_at, body))
            running[item.key] = item
    return running


class WaitingDeadline(NamedTuple):
    """A deadline of the current state that does not run yet, and why (German, for `deadlines`)."""

    deadline: Deadline
    branch: str
    reason: str


def waiting_deadlines(definition: Definition, paper: PaperState) -> list[WaitingDeadline]:
    """The deadlines of the current state that have not started because their anchor is not set."""
    waiting: list[WaitingDeadline] = []
    for deadline in definition.deadlines:
        if paper.state not in deadline.states:
            continue
        for branch, _body, meeting in _slots(definition, paper):
            if (deadline.name, branch) in paper.done or _anchor_at(definition, deadline, paper, meeting):
                continue
            field = deadline.due.field
            if field is None:
                reason = _("runs only once the meeting date is set")
            else:
                reason = _("runs only once field '{key}' is set").format(key=field)
            waiting.append(WaitingDeadline(deadline, branch, reason))
    return waiting


def _stored_anchor(deadline: Deadline) -> str:
    return "field" if deadline.due.field else deadline.due.anchor


def plan(definition: Definition, running: RunningDeadline, started_at: datetime, morning_hour: int = 8,
         evening_hour: int = 18) -> PlannedDeadline:
    """The deadline with its mails, as it starts at ``started_at``. When mail goes out (the one rule):

    - every mail on a working day of the workflow's calendar, from the morning to the evening hour;
    - a reminder whose day is no working day goes out on the working day before (never after the due day);
    - of the reminders whose time had passed when the deadline started, one goes out, at the next window;
    - a deadline already passed when it starts gets one notice at once (in the window) to those it notifies
      and those it escalates to, and no reminder or escalation (nobody could have acted);
    - the escalation goes out at the first working morning after ``due`` + ``after``.
    """
    deadline, body, due_at = running.deadline, running.body, running.due_at
    zone = ZoneInfo(definition.timezone)
    calendar = working_calendar(definition.calendar)

    def window(moment: datetime) -> datetime:
        return mail_window(moment, calendar, definition.timezone, morning_hour, evening_hour)

    morning = time(morning_hour, 0)
    day = due_at.astimezone(zone).date()
    notify, escalate_to = involved(definition, deadline, body)
    reminders: list[PlannedReminder] = []
    if due_at <= started_at:
        to = tuple(dict.fromkeys((*notify, *escalate_to)))
        if to:
            reminders.append(PlannedReminder("late", _(LATE_NOTE), window(started_at), to))
        return PlannedDeadline(deadline.name, deadline.label, running.state, running.branch, body, due_at,
                               _stored_anchor(deadline), running.anchor_at, tuple(reminders))
    days: set[date] = set()
    missed: list[Offset] = []
    for offset in sorted(deadline.remind, key=lambda o: -o.amount):  # the earliest reminder first
        send_day = calendar.on_or_before(shift(calendar, day, offset, -1))
        send_at = _at(send_day, morning, zone)
        if send_at < started_at:
            missed.append(offset)
            continue
        if notify and send_day not in days:  # at most one reminder a day
            days.add(send_day)
            reminders.append(PlannedReminder("remind", _before_due(offset), send_at, notify))
    if missed and notify:
        send_at = window(started_at)
        if send_at < due_at and send_at.astimezone(zone).date() not in days:
            reminders.insert(0, PlannedReminder("remind", _before_due(missed[-1]), send_at, notify))
    if deadline.escalate is not None and escalate_to:
        escalate_day = shift(calendar, day, deadline.escalate.after, 1)
        send_at = window(_at(escalate_day, END_OF_DAY, zone) + timedelta(seconds=1))
        reminders.append(PlannedReminder("escalate", _("{amount} after the deadline").format(
            amount=offset_label(deadline.escalate.after)), send_at, escalate_to))
    return PlannedDeadline(deadline.name, deadline.label, running.state, running.branch, body, due_at,
                           _stored_anchor(deadline), running.anchor_at, tuple(reminders))


#: The label of the notice for a deadline that had passed when it started.
LATE_NOTE = N_("deadline had already passed on entering")


def _before_due(offset: Offset) -> str:
    return _("{amount} before the deadline").format(amount=offset_label(offset))


def due_note(definition: Definition, due_at: datetime, now: datetime) -> str:
    """What a mail says of the deadline at the moment it is sent ("heute fällig", "in 3 Arbeitstagen
    fällig", "seit 2 Arbeitstagen überfällig")."""
    zone = ZoneInfo(definition.timezone)
    calendar = working_calendar(definition.calendar)
    today, due_day = now.astimezone(zone).date(), due_at.astimezone(zone).date()
    if due_at >= now:
        if due_day == today:
            return _("due today")
        if due_day == today + timedelta(days=1):
            return _("due tomorrow")
        n = calendar.working_days_between(today, due_day)
        return ngettext("due in {n} working day", "due in {n} working days", n).format(n=n)
    n = max(1, calendar.working_days_between(due_day, today))
    return ngettext("overdue by {n} working day", "overdue by {n} working days", n).format(n=n)


def plan_deadlines(definition: Definition, paper: PaperState, started_at: datetime,
                   morning_hour: int = 8, evening_hour: int = 18) -> dict[DeadlineKey, PlannedDeadline]:
    """Every running deadline of ``paper`` with its reminders, as if started at ``started_at``."""
    return {k: plan(definition, r, started_at, morning_hour, evening_hour)
            for k, r in running_deadlines(definition, paper).items()}


def decide_done(definition: Definition, reference: str, paper: PaperState, name: str, actor: str,
                branch: str | None, note: str, now: datetime, *, undo: bool = False) -> list[Change]:
    """Mark a running deadline done (or take a mistaken "erledigt" back): allowed for the people the
    deadline notifies and the holders of a role of a transition out of the state."""
    context = f"{reference} {'undo ' if undo else ''}done {name}"  # the command, as typed
    deadline = next((d for d in definition.deadlines if d.name == name), None)
    if deadline is None:
        names = [d.name for d in definition.deadlines]
        raise InputError(_("{context}: unknown deadline '{name}'{hint}; deadlines: {names}").format(
            context=context, name=name, hint=did_you_mean(name, names), names=", ".join(names) or _("none")))
    spec = definition.states[paper.state]
    if branch is not None and branch not in paper.branches:
        raise InputError(_("{context}: '{branch}' is no branch of state '{state}'{hint}").format(
            context=context, branch=branch, state=paper.state, hint=did_you_mean(branch, list(paper.branches))))
    slot = branch or ""
    if undo:
        if (name, slot) not in paper.done:
            raise NotAllowedNowError(_("{context}: the deadline is not marked done in state '{state}'").format(
                context=context, state=spec.id))
    else:
        running = running_deadlines(definition, paper)
        if (name, slot) not in running:
            per_branch = [b for (n, b) in running if n == name and b]
            if branch is None and per_branch:
                raise InputError(_("{context}: the deadline runs per branch; name it with --branch, one of "
                                   "{bodies}").format(context=context, bodies=", ".join(per_branch)))
            refusal = (_("{context}: the deadline does not run now (state '{state}' ({label}), done already)")
                       if (name, slot) in paper.done else
                       _("{context}: the deadline does not run now (state '{state}' ({label}))"))
            raise NotAllowedNowError(refusal.format(context=context, state=spec.id, label=spec.label))
    body = branch or (spec.consultation.body if spec.consultation else None)
    notified = recipients(definition, deadline.notify, body)
    roles = tuple(dict.fromkeys(r for t in definition.transitions_from(paper.state) for r in t.roles))
    if actor not in notified and not definition.holds_any(actor, roles, body) and actor not in TRUSTED_ACTORS:
        raise NotPermittedError(_("{actor} may not mark '{name}' of {reference} done: it is for the people the "
                                  "deadline reminds and those who may act in the state").format(
                                      actor=actor, name=name, reference=reference))
    try:
        text = clean_text(note, _("note")).strip()
    except ValueError as exc:
        raise InputError(_("{context}: {problem}").format(context=context, problem=exc)) from None
    payload: dict[str, str] = {"deadline": name}
    if text:
        payload["note"] = text
    kind: ChangeKind = "undone" if undo else "done"
    return [Change(kind, kind, paper.state, paper.state, actor, now, branch, payload)]


def changed(definition: Definition, before: Mapping[DeadlineKey, RunningDeadline],
            after: Mapping[DeadlineKey, RunningDeadline], started_at: datetime, morning_hour: int = 8,
            evening_hour: int = 18) -> tuple[list[DeadlineKey], list[PlannedDeadline]]:
    """Which running deadlines end, and which start (planned), going from ``before`` to ``after``.

    A deadline whose due moment is unchanged keeps running with its reminders; one whose due moment
    moved (a meeting moved, a state re-entered) ends and starts anew.
    """
    ended = [k for k, d in before.items() if k not in after or after[k].due_at != d.due_at]
    started = [plan(definition, d, started_at, morning_hour, evening_hour) for k, d in after.items()
               if k not in before or before[k].due_at != d.due_at]
    return ended, started
