"""Claim due reminders -> render -> send -> mark sent. Idempotent and crash-safe.

Delivery is at-least-once: a worker that dies after the SMTP server accepted a mail but before it
marked the row sent leaves the row claimed; once the lease runs out another tick claims it again and
sends the same mail with the same Message-ID, so the resend is recognisable. Temporary failures (SMTP
4xx, connection errors) are retried with backoff; permanent ones (5xx, a template or header that
cannot be rendered) and exhausted retries mark the row failed with the reason.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from workflow.addresses import paper_path
from workflow.calendar import mail_window, working_calendar
from workflow.config import Settings
from workflow.deadlines import due_note, recipients
from workflow.definition import Calendar, Definition
from workflow.engine import SIGNOFF_VOID_MAIL, Engine
from workflow.errors import DefinitionError, InputError, NotFoundError, WorkflowError
from workflow.german import field_label
from workflow.i18n import _
from workflow.store import DeadlineRecord, ReminderRecord

from .render import KINDS, Renderer, build_message, deadline_entries, header_message_id, make_ics, meeting_of
from .transports import Send, SendError, Transport

__all__ = ["Composer", "Dispatcher", "TickReport", "check_templates", "sample_contexts"]

#: Backoff after the n-th temporary failure (the last value repeats).
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1),
           timedelta(hours=4))
DIGEST_DAYS = 14


def sample_contexts(definition: Definition) -> dict[str, dict[str, Any]]:
    """A plausible context per mail kind, built from the definition, for test-rendering templates."""
    from datetime import UTC

    now = datetime(2020, 8, 4, 8, 0, tzinfo=UTC)
    deadline = definition.deadlines[0] if definition.deadlines else None
    body = next(iter(definition.bodies.values()), None)
    state = next(iter(definition.states.values()))
    base = {
        "kind": "remind",
        "paper": {"reference": "SV-0-0000", "title": "Beispielvorlage", "state": state.id,
                  "state_label": state.label, "fields": {f: None for f in definition.fields}, "modified": now},
        "workflow": {"id": definition.workflow, "version": definition.version, "title": definition.title},
        "deadline": {"name": deadline.name if deadline else "frist", "label": deadline.label if deadline else "Frist",
                     "due": now + timedelta(days=7), "description": deadline.description if deadline else None},
        "body": {"id": body.id, "name": body.name} if body else None,
        "meeting": now + timedelta(days=14),
        "note": "5 Arbeitstage vor Fristablauf",
        "recipients": ["person@example.org"],
        "also_told": ["kollegin@example.org"],
        "responsible": ["person@example.org"],
        "links": {"paper": "https://ratsinfo.example" + paper_path("SV-0-0000"), "mine": "https://ratsinfo.example/"},
    }
    items: list[dict[str, Any]] = [
        {"reference": "SV-0-0000", "title": "Beispielvorlage", "label": "Frist", "due": now + timedelta(days=3),
         "body": body.name if body else None, "meeting": None, "overdue": False},
        {"reference": "SV-0-0001", "title": "Beispielvorlage", "label": "Frist", "due": now - timedelta(days=3),
         "body": None, "meeting": None, "overdue": True}]
    digest = {"kind": "digest", "today": now, "until": now + timedelta(days=DIGEST_DAYS),
              "recipient": "person@example.org", "items": items,
              "overdue": [i for i in items if i["overdue"]], "upcoming": [i for i in items if not i["overdue"]]}
    void = {**base, "kind": SIGNOFF_VOID_MAIL, "roles": [next(iter(definition.roles), "rolle")],
            "changed": ["Titel"], "voided_at": now}
    return {"remind": base, "escalate": {**base, "kind": "escalate"}, "late": {**base, "kind": "late"},
            "digest": digest, SIGNOFF_VOID_MAIL: void}


def check_templates(definition: Definition, definitions_folder: Path) -> None:
    """Test-render the workflow's mail templates; DefinitionError names file and line."""
    Renderer(definition.timezone, definitions_folder / "templates" / definition.workflow).check(
        sample_contexts(definition))


class Composer:
    """Builds the mail of a reminder row from the paper, its definition and its deadline."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.outbox = engine.store.outbox
        self._renderers: dict[tuple[str, str], Renderer] = {}

    def renderer(self, definition: Definition | None) -> Renderer:
        zone = definition.timezone if definition else self.settings.timezone
        folder = Path(self.engine.library.folder) / "templates" / definition.workflow if definition else None
        key = (zone, str(folder))
        if key not in self._renderers:
            self._renderers[key] = Renderer(zone, folder)
        return self._renderers[key]

    def context(self, reminder: ReminderRecord, now: datetime | None = None
                ) -> tuple[dict[str, Any], Definition | None, DeadlineRecord | None]:
        if reminder.kind == "digest":
            payload = reminder.payload
            sent_at = now or self.engine.now()
            items = [{**item, "due": datetime.fromisoformat(item["due"]),
                      "meeting": datetime.fromisoformat(item["meeting"]) if item.get("meeting") else None}
                     for item in payload["items"]]
            for item in items:
                item["overdue"] = item["due"] < sent_at
            items.sort(key=lambda item: (not item["overdue"], item["due"]))  # overdue first, then by due
            return ({"kind": "digest", "today": datetime.fromisoformat(payload["today"]),
                     "until": datetime.fromisoformat(payload["until"]), "recipient": reminder.recipients[0],
                     "items": items, "overdue": [i for i in items if i["overdue"]],
                     "upcoming": [i for i in items if not i["overdue"]]}, None, None)
        if reminder.kind == SIGNOFF_VOID_MAIL:
            return self._signoff_context(reminder)
        assert reminder.reference is not None and reminder.deadline_id is not None
        paper = self.engine.store.load(reminder.reference)
        definition = self.engine.definition_of(paper)
        deadline = next((d for d in self.outbox.deadlines(reminder.reference, running_only=False)
                         if d.id == reminder.deadline_id), None)
        if deadline is None:
            raise NotFoundError(_("reminder {id}: its deadline is gone").format(id=reminder.id))
        state = definition.states[paper.state.state]
        meeting = meeting_of(paper.state, deadline)
        body = definition.bodies.get(deadline.body) if deadline.body else None
        spec = next((d for d in definition.deadlines if d.name == deadline.name), None)
        responsible: list[str] = []
        if reminder.kind in ("escalate", "late") and spec is not None:
            responsible = sorted(recipients(definition, spec.notify, deadline.body))
        context = {
            "kind": reminder.kind,
            "paper": {"reference": paper.reference, "title": str(paper.state.fields.get("title", "")),
                      "state": state.id, "state_label": state.label, "fields": dict(paper.state.fields),
                      "modified": paper.updated_at},
            "workflow": {"id": definition.workflow, "version": definition.version, "title": definition.title},
            "deadline": {"name": deadline.name, "label": deadline.label, "due": deadline.due_at,
                         "description": spec.description if spec else None},
            "body": {"id": body.id, "name": body.name} if body else None,
            "meeting": meeting,
            # What is true at the moment of sending, not what was planned.
            "note": due_note(definition, deadline.due_at, now or self.engine.now()) if reminder.kind != "late"
            else reminder.label,
            "recipients": list(reminder.recipients),
            "also_told": [],  # per personal copy: the other recipients (see compose)
            "responsible": responsible,
            "links": self._links(paper.reference),
        }
        return context, definition, deadline

    def _signoff_context(self, reminder: ReminderRecord) -> tuple[dict[str, Any], Definition, None]:
        """The mail that tells the signers that a change of the paper voided their sign-offs (its payload is
        that of the ``signoff`` entry ``void``)."""
        assert reminder.reference is not None
        paper = self.engine.store.load(reminder.reference)
        definition = self.engine.definition_of(paper)
        state = definition.states[paper.state.state]
        payload = reminder.payload
        return {
            "kind": reminder.kind,
            "paper": {"reference": paper.reference, "title": str(paper.state.fields.get("title", "")),
                      "state": state.id, "state_label": state.label, "fields": dict(paper.state.fields),
                      "modified": paper.updated_at},
            "workflow": {"id": definition.workflow, "version": definition.version, "title": definition.title},
            "roles": [str(r) for r in payload.get("roles", ())],
            "changed": [field_label(str(f)) for f in payload.get("changed", ())],
            "voided_at": reminder.send_at,
            "body": None,
            "meeting": None,
            "recipients": list(reminder.recipients),
            "also_told": [],
            "responsible": [],
            "links": self._links(paper.reference),
        }, definition, None

    def _links(self, reference: str) -> dict[str, str] | None:
        """Links to the paper page and to "Meine Fristen" (none without the setting base_url)."""
        base = self.settings.base_url.rstrip("/")
        if not base:
            return None
        return {"paper": base + paper_path(reference), "mine": f"{base}/"}

    def window(self, definition: Definition | None, now: datetime) -> datetime:
        """When a mail may go out at the earliest from ``now``: the mail window of its workflow's calendar
        (without a workflow, a digest: weekdays, in the installation's time zone)."""
        calendar = definition.calendar if definition else Calendar()
        zone = definition.timezone if definition else self.settings.timezone
        return mail_window(now, working_calendar(calendar), zone, self.settings.morning_hour,
                           self.settings.evening_hour)

    def compose(self, reminder: ReminderRecord, now: datetime,
                prepared: tuple[dict[str, Any], Definition | None, DeadlineRecord | None] | None = None,
                recipient: str | None = None, ics: bytes | None = None) -> EmailMessage:
        """The mail of ``reminder`` at ``now`` (``prepared``: its :meth:`context`, when read already): to
        ``recipient`` alone, naming the others it went to, or (None) to all its recipients at once.
        ``ics``: its calendar entries, when built already for another copy."""
        context, definition, deadline = prepared or self.context(reminder, now)
        to = reminder.recipients if recipient is None else (recipient,)
        if recipient is not None:
            context = {**context, "also_told": [r for r in reminder.recipients if r != recipient]}
        rendered = self.renderer(definition).render(reminder.kind, context)
        if ics is None:
            ics = self._calendar(context, definition, deadline, now)
        mark = recipient if recipient is not None and len(reminder.recipients) > 1 else None
        return build_message(rendered, sender=self.settings.mail_from, recipients=to,
                             message_id=header_message_id(reminder.message_id, self.settings.mail_from, mark),
                             date=now, ics=ics, headers={"X-Councilflow-Kind": KINDS[reminder.kind]})

    def compose_each(self, reminder: ReminderRecord, now: datetime,
                     prepared: tuple[dict[str, Any], Definition | None, DeadlineRecord | None] | None = None
                     ) -> list[EmailMessage]:
        """One personal mail per recipient ("ging ebenfalls an" names only the others), in recipient order."""
        prepared = prepared or self.context(reminder, now)
        ics = self._calendar(*prepared, now)  # the same calendar entries in every copy
        return [self.compose(reminder, now, prepared, r, ics) for r in reminder.recipients]

    @staticmethod
    def _calendar(context: dict[str, Any], definition: Definition | None, deadline: DeadlineRecord | None,
                  now: datetime) -> bytes | None:
        """The .ics of a deadline's mail (none for a digest)."""
        if deadline is None or definition is None:
            return None
        paper = context["paper"]
        return make_ics(deadline_entries(definition, deadline, title=paper["title"], meeting=context["meeting"],
                                         modified=paper["modified"], stamp=now))


@dataclass
class TickReport:
    """What one pass did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    fenced: int = 0
    digests: int = 0
    deferred: int = 0
    #: Follow-up papers created in this pass (recurring ones at their due moment).
    follow_ups: int = 0
    errors: list[str] = field(default_factory=list)
    #: The rows sent in this pass, as claimed (for `tick --until` and the simulation to list).
    delivered: list[ReminderRecord] = field(default_factory=list)

    def line(self) -> str:
        return _("tick: {claimed} claimed, {sent} sent, {retried} to retry, {failed} failed, {fenced} taken over, "
                 "{digests} digests queued, {deferred} wait for the mail window").format(
            claimed=self.claimed, sent=self.sent, retried=self.retried, failed=self.failed, fenced=self.fenced,
            digests=self.digests, deferred=self.deferred) + (
            _(", {count} follow-up papers created").format(count=self.follow_ups) if self.follow_ups else "")


class Dispatcher:
    """One worker: claims due rows with a lease, sends them and completes them with a fencing check."""

    def __init__(self, engine: Engine, transport: Transport, settings: Settings, worker: str | None = None) -> None:
        self.engine = engine
        self.transport = transport
        self.settings = settings
        self.outbox = engine.store.outbox
        self.composer = Composer(engine, settings)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        #: Until when the rows of the batch being sent are leased to this worker (at the least).
        self._leased_until: datetime | None = None

    def tick(self, now: datetime | None = None) -> TickReport:
        """Send every row that is due at ``now`` (catching up whatever fell due while nobody ran)."""
        moment = now or self.engine.clock.now()
        report = TickReport()
        lease = timedelta(seconds=self.settings.lease_seconds)
        self.engine.store.beat(self.worker, moment)
        # Follow-up papers due now first: their deadlines may already owe a mail in this pass.
        try:
            report.follow_ups = len(self.engine.create_due_follow_ups(moment))
        except WorkflowError as exc:  # e.g. the database went away: the mails are still tried, the rest next pass
            report.errors.append(f"follow-up papers: {exc}")
        # One transport session for the whole tick: over SMTP one connection (opened for the first mail
        # only), each mail still delivered, retried or failed on its own.
        with self.transport.session() as send:
            while True:
                # rows due at the tick's moment, leased from the clock's now: a batch claimed late in a long tick
                # is not claimable by other workers at once (its lease would have run out at claiming)
                held = lease + max(timedelta(0), self.engine.clock.now() - moment)
                batch = self.outbox.claim(moment, worker=self.worker, lease=held, limit=self.settings.batch)
                if not batch:
                    return report
                report.claimed += len(batch)
                self._leased_until = moment + held  # as claimed
                for reminder in batch:
                    self._deliver(reminder, moment, report, send)
                if len(batch) < self.settings.batch:
                    return report

    def _deliver(self, reminder: ReminderRecord, now: datetime, report: TickReport, send: Send) -> None:
        try:
            prepared = self.composer.context(reminder, now)
            if reminder.kind != "digest":
                opens = self.composer.window(prepared[1], now)
                if opens > now:  # e.g. catching up at night after an outage: wait for the working morning
                    if self.outbox.defer(reminder, opens):
                        report.deferred += 1
                    else:
                        self.outbox.skip(reminder, now)  # its deadline ended meanwhile (else: taken over)
                    return
            messages = self.composer.compose_each(reminder, now, prepared)
        except (DefinitionError, InputError, NotFoundError) as exc:
            report.failed += 1
            report.errors.append(_("reminder {id}: {reason}").format(id=reminder.id, reason=exc))
            self.outbox.mark_failed(reminder, _("cannot compose: {reason}").format(reason=exc), now)
            return
        lease = timedelta(seconds=self.settings.lease_seconds)
        current = max(now, self.engine.clock.now())
        # Before each send: this row must still be ours (fencing), and the batch must keep its rows while it is
        # sent. The lease of the whole batch is extended once a quarter of it has passed; until then the row of
        # this mail alone (by its key; extending every row of the batch before every mail costs a batch's worth
        # of index updates per mail).
        whole = self._leased_until is None or self._leased_until - current < lease * 3 / 4
        if whole:
            self._leased_until = current + lease
        if not self.outbox.renew(reminder, current + lease, claim=whole):
            report.fenced += 1  # cancelled (the deadline ended) or taken over meanwhile
            self.outbox.skip(reminder, now)  # the record of the first (nothing for the second)
            return
        # The Message-ID header each recipient's copy carries, for the mail's entry in the trail.
        message_ids = {r: str(m["Message-ID"]) for r, m in zip(reminder.recipients, messages, strict=True)}
        try:
            for message in messages:  # a retry sends every copy again, under the same Message-IDs
                send(message)
        except SendError as exc:
            if exc.temporary and reminder.attempts + 1 < self.settings.max_attempts:
                report.retried += 1
                wait = BACKOFF[min(reminder.attempts, len(BACKOFF) - 1)]
                if not self.outbox.mark_retry(reminder, now + wait, str(exc)):
                    self.outbox.skip(reminder, now)  # its deadline ended meanwhile: no retry
            else:
                report.failed += 1
                report.errors.append(_("reminder {id}: {reason}").format(id=reminder.id, reason=exc))
                self.outbox.mark_failed(reminder, str(exc) if not exc.temporary else
                                        _("gave up after {attempts} attempts: {reason}").format(
                                            attempts=reminder.attempts + 1, reason=exc), now, message_ids)
            return
        if self.outbox.mark_sent(reminder, now, message_ids):
            report.sent += 1
            report.delivered.append(reminder)
        else:
            report.fenced += 1

    def queue_digests(self, now: datetime | None = None) -> int:
        """Queue today's digest for every person with running deadlines in the next two weeks."""
        moment = now or self.engine.clock.now()
        zone = ZoneInfo(self.settings.timezone)
        today = moment.astimezone(zone).date()
        if today.weekday() >= 5:
            return 0  # digests go out on working days
        until = moment + timedelta(days=DIGEST_DAYS)
        day = moment.astimezone(zone).date().isoformat()
        queued = 0
        for person in self.outbox.digest_recipients(until):
            items = []
            working: Definition | None = None  # a workflow of the person's deadlines for which today is a working day
            for d in self.outbox.running_for(person, until):
                try:
                    paper = self.engine.store.load(d.reference)
                except NotFoundError:
                    continue
                definition = self.engine.definition_of(paper)
                if working is None and working_calendar(definition.calendar).is_working_day(today):
                    working = definition
                branch = paper.state.branches.get(d.branch) if d.branch else None
                meeting = branch.meeting if branch else paper.state.meeting
                body = definition.bodies.get(d.body) if d.body else None
                items.append({"reference": d.reference, "title": str(paper.state.fields.get("title", "")),
                              "label": d.label, "due": d.due_at.isoformat(), "body": body.name if body else None,
                              "meeting": meeting.isoformat() if meeting else None})
            if working is None:
                continue  # a holiday (or closed day) in every workflow the person's deadlines belong to
            send_at = self.composer.window(working, moment)
            if items and self.outbox.add_digest(person, day, send_at, {
                    "today": moment.isoformat(), "until": until.isoformat(), "items": items}):
                queued += 1
        return queued


