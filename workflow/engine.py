"""The orchestrator: load a paper, decide, write state and audit in ONE transaction."""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from .access import Action, Person, actions, is_public, may_create, may_read, may_read_private
from .audit import Period, VerifyReport, timeline, verify
from .clock import Clock, SystemClock
from .deadlines import (
    ESCALATING,
    WaitingDeadline,
    changed,
    decide_done,
    involved,
    recipients,
    running_deadlines,
    waiting_deadlines,
)
from .decisions import DEFAULT_WARN_DAYS, DecisionItem, cursor_text, light, parse_cursor, warn_until
from .decisions import STATUSES as DECISION_STATUSES
from .definition import Attachment, Definition
from .errors import ConflictError, InputError, NotFoundError, StorageError, WorkflowError, did_you_mean
from .follow_up import Owed, child_values, next_owed, owed_at_entry, still_owed
from .follow_up import by_name as follow_up_by_name
from .i18n import N_, _, gettext, process_language, use_language
from .library import DefinitionLibrary
from .machine import compile_machine
from .paper import (
    SYSTEM_ACTOR,
    Change,
    PaperState,
    SignoffAct,
    branch_version,
    check_actor,
    check_reference,
    check_time_order,
    decide_create,
    decide_fire,
    decide_meeting,
    decide_signoff,
    fold,
    migrate_state,
    void_signoffs,
)
from .replay import replay_records, steps
from .store import AuditRecord, DeadlineRecord, ReminderRecord, Store, StoredPaper
from .store.records import (
    NO_FOLLOW_UPS,
    FileRecord,
    FollowUpDiff,
    FollowUpRecord,
    NewChild,
    NewFile,
    PaperMail,
    follow_up_note,
)
from .values import user_instant

__all__ = ["SIGNOFF_VOID_MAIL", "BranchView", "ChildView", "DeadlineView", "Engine", "PastMails", "PersonalDeadline",
           "SignoffView", "Status"]

#: The mail kind that tells the signers that their sign-offs were voided by a change of the paper.
SIGNOFF_VOID_MAIL = "signoff_void"

#: What happens to mails whose moment has passed when a deadline starts: ``send`` them at once (a
#: change made now), or ``drop`` them (history recorded after the fact, e.g. an OParl import).
PastMails = Literal["send", "drop"]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


#: The filters that name something of a definition, with the German word for it.
#: The filters that name something by id or label, and the message when nothing matches.
_NAMED_FILTERS = {"workflow": N_("no workflow '{text}'{hint}"), "body": N_("no body '{text}'{hint}"),
                  "state": N_("no state '{text}'{hint}"), "from_state": N_("no state '{text}'{hint}"),
                  "to_state": N_("no state '{text}'{hint}")}


@dataclass(frozen=True)
class BranchView:
    body: str
    name: str
    status: str
    meeting: datetime | None
    result: str | None
    deferrals: int
    #: The branch's version (:func:`branch_version`), to send back with a decision for this branch.
    version: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "body": self.body,
            "name": self.name,
            "status": self.status,
            "meeting": _iso(self.meeting),
            "result": self.result,
            "deferrals": self.deferrals,
            "version": self.version,
        }


@dataclass(frozen=True)
class SignoffView:
    """One role of a state's Mitzeichnung: ``open``, ``signed`` or ``refused`` (by whom, when, note or reason)."""

    role: str
    status: str
    actor: str | None = None
    at: datetime | None = None
    text: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "status": self.status, "actor": self.actor, "at": _iso(self.at),
                "text": self.text}


@dataclass(frozen=True)
class Status:
    """Where a paper stands (now, or as of an instant), and what it accepts next."""

    reference: str
    workflow: str
    workflow_version: int
    state: str
    state_label: str
    final: bool
    entered_at: datetime
    body: str | None
    body_name: str | None
    meeting: datetime | None
    result: str | None
    fields: Mapping[str, Any]
    branches: tuple[BranchView, ...]
    triggers: tuple[str, ...]
    version: int | None
    as_of: datetime | None = None
    timezone: str = "Europe/Berlin"
    hearings: bool = False  # the branches only record hearings (join: none)
    #: The state's Mitzeichnung, role by role (empty: the state asks for none), and its order.
    signoffs: tuple[SignoffView, ...] = ()
    signoff_order: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "workflow": self.workflow,
            "workflow_version": self.workflow_version,
            "state": self.state,
            "state_label": self.state_label,
            "final": self.final,
            "entered_at": _iso(self.entered_at),
            "body": self.body,
            "body_name": self.body_name,
            "meeting": _iso(self.meeting),
            "result": self.result,
            "fields": dict(self.fields),
            "branches": [b.to_json() for b in self.branches],
            "triggers": list(self.triggers),
            "version": self.version,
            "as_of": _iso(self.as_of),
            "hearings": self.hearings,
            "signoffs": [s.to_json() for s in self.signoffs],
            "signoff_order": self.signoff_order,
        }


@dataclass(frozen=True)
class DeadlineView:
    """A running deadline of a paper with its mails: the one shape for the CLI, the web and JSON."""

    deadline: DeadlineRecord
    mails: tuple[ReminderRecord, ...]
    body_name: str | None
    title: str = ""
    description: str | None = None
    #: Set when the deadline was marked done in this visit of the state: (when, by whom, note).
    done: tuple[datetime, str, str | None] | None = None

    def overdue(self, now: datetime) -> bool:
        return self.deadline.due_at < now

    def to_json(self) -> dict[str, Any]:
        d = self.deadline
        return {"reference": d.reference, "name": d.name, "label": d.label, "state": d.state,
                "branch": d.branch or None, "body": d.body, "body_name": self.body_name,
                "due_at": d.due_at.isoformat(), "anchor": d.anchor, "anchor_at": d.anchor_at.isoformat(),
                "started_at": d.started_at.isoformat(), "description": self.description,
                "done": None if self.done is None else {"at": self.done[0].isoformat(), "by": self.done[1],
                                                        "note": self.done[2]},
                "reminders": [m.to_json() for m in self.mails]}


@dataclass(frozen=True)
class ChildView:
    """A follow-up paper of a paper (or one it still owes): the one shape for the CLI, the web and JSON.
    ``status``: planned, created, ended (the series stopped before it) or failed (``error`` says why); ``state``
    and ``state_label`` are the created child's."""

    name: str
    n: int
    reference: str
    workflow: str
    due_at: datetime
    status: str
    state: str | None = None
    state_label: str | None = None
    final: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "n": self.n, "reference": self.reference, "workflow": self.workflow,
                "due_at": self.due_at.isoformat(), "status": self.status, "state": self.state,
                "state_label": self.state_label, "final": self.final, "error": self.error}


@dataclass(frozen=True)
class DecisionView(DecisionItem):
    """One follow-up paper of a body's decision in the Beschlusskontrolle (workflow/decisions.py): the one shape
    of the CLI, the report, the page and the API. The store's :class:`DecisionItem` with what the engine adds:
    the body's name, the labels of the child's state and of the deadline that gives the target date, who is
    responsible, and ``light``: rot, gelb, gruen, or None for a finished child."""

    body_name: str
    state_label: str
    target_label: str | None
    responsible: tuple[str, ...]
    light: str | None
    timezone: str = "Europe/Berlin"

    def to_json(self) -> dict[str, Any]:
        return {"body": self.body, "body_name": self.body_name, "reference": self.reference, "title": self.title,
                "decided_at": self.decided_at.isoformat(), "result": self.result, "follow_up": self.follow_up,
                "n": self.n, "child": self.child, "child_title": self.child_title, "workflow": self.workflow,
                "state": self.state, "state_label": self.state_label, "delayed": self.delayed, "final": self.final,
                "target_at": _iso(self.target_at), "target_label": self.target_label,
                "responsible": list(self.responsible), "light": self.light}


class PersonalDeadline(NamedTuple):
    """A deadline on a person's list, with its paper and why it is theirs."""

    paper: StoredPaper
    view: DeadlineView
    #: The person is among those the deadline notifies (and reminds).
    notified: bool
    #: The person is among those it escalates to ...
    escalation: bool
    #: ... and the escalation is due: its time (or that of the notice that the deadline had passed when it
    #: started, which goes to them too) has come.
    escalated: bool


_MAIL_STATUSES = ("pending", "claimed", "sent", "failed")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class Engine:
    """Every operation of councilflow on papers; the CLI, the web, the importer and the notifier only
    wrap it. Rules live in the pure core (paper, deadlines, access); this class loads, decides with
    them and writes each change in one transaction through the storage port."""

    def __init__(
        self, store: Store, library: DefinitionLibrary, clock: Clock | None = None, *, morning_hour: int = 8,
        evening_hour: int = 18,
    ) -> None:
        self.store = store
        self.library = library
        self.clock: Clock = clock or SystemClock()
        self._versions: dict[tuple[str, int], Definition] = {}
        # Papers as this process last wrote them (see _with_paper); the database stays the source of truth.
        self._papers: OrderedDict[str, StoredPaper] = OrderedDict()
        self._papers_lock = threading.Lock()
        self.morning_hour = morning_hour
        self.evening_hour = evening_hour

    def now(self) -> datetime:
        """The clock's instant, in UTC whatever the clock gives."""
        moment = self.clock.now()
        if moment.tzinfo is None:
            raise WorkflowError(_("the clock gave a time without a time zone"))
        return moment.astimezone(UTC)

    def init(self) -> None:
        """Create or upgrade the store's schema (idempotent)."""
        self.store.init()

    # --- definitions -------------------------------------------------------------------------

    def definition_of(self, paper: StoredPaper) -> Definition:
        return self.library.pinned(
            paper.definition_hash, lambda: self.store.stored_definition(paper.workflow, paper.workflow_version)[1]
        )

    def definition_version(self, workflow: str, version: int) -> Definition:
        """A stored definition version, by workflow id and version (as audit entries name them)."""
        key = (workflow, version)
        found = self._versions.get(key)
        if found is None:
            digest, text = self.store.stored_definition(workflow, version)
            found = self._versions[key] = self.library.pinned(digest, lambda: text)
        return found

    def entry_definition(self, workflow: str, version: int) -> Definition | None:
        """The definition version an audit entry names, for showing it with labels; None for an entry of no
        workflow (an administrative act such as a token created)."""
        return self.definition_version(workflow, version) if workflow else None

    def current_definition(self, workflow: str) -> Definition:
        """The definitions folder's version of ``workflow``, stored so that papers can pin it."""
        definition, text = self.library.current(workflow)
        self.store.remember_definition(definition, text, self.now())
        return definition

    def verify(self, head: str | None = None) -> VerifyReport:
        """Check the hash chain, each paper's newest entry, and that each paper's state replays."""
        if head is not None and not _SHA256.fullmatch(head):
            raise InputError(_("--head {head} is not a kept head hash (64 hexadecimal digits, as `audit head` "
                               "prints it)").format(head=repr(head[:80])))
        return verify(self.store, head=head, definitions=self.definition_version)

    # --- commands ----------------------------------------------------------------------------

    def create(self, workflow: str, reference: str, actor: str, values: Mapping[str, str] | None = None) -> StoredPaper:
        """Create a paper in the workflow's initial state."""
        reference = check_reference(reference)
        actor = check_actor(actor)
        definition, text = self.library.current(workflow)
        now = self.now()
        changes = decide_create(definition, reference, actor, values or {}, now)
        self.store.remember_definition(definition, text, now, actor)
        return self.record(reference, definition, changes)

    def fire(
        self,
        reference: str,
        trigger: str,
        actor: str,
        *,
        branch: str | None = None,
        values: Mapping[str, str] | None = None,
        expected_version: int | None = None,
        expected_branch_version: str | None = None,
        reason: str | None = None,
    ) -> list[Change]:
        """Fire ``trigger`` on a paper; returns the recorded changes (a join move included).

        ``reason``: why (recorded in the entry's payload as ``reason``); a trigger with ``confirm: true``
        needs one, else an InputError naming paper and trigger.

        ``expected_version``: the paper's version the caller saw; if the paper changed since, nothing is
        written and a ConflictError says so (optimistic locking, checked in the writing transaction).
        ``expected_branch_version``: for a branch trigger, the branch's version the caller saw
        (:func:`branch_version`); then only a change of that branch (or of the state) is a conflict, and
        decisions of other councils meanwhile are not.
        """
        actor = check_actor(actor)

        def decide(paper: StoredPaper, definition: Definition, now: datetime) -> list[Change]:
            return decide_fire(definition, compile_machine(definition), paper.reference, paper.state, trigger,
                               actor, branch, values or {}, now, reason)

        return self._change(check_reference(reference), decide, expected_version, branch, expected_branch_version)

    def set_meeting(
        self, reference: str, when: str | datetime, actor: str, *, branch: str | None = None,
        expected_version: int | None = None, trusted: bool = False, expected_branch_version: str | None = None,
    ) -> list[Change]:
        """Set or move the meeting of the paper's consultation (or of one branch).

        ``trusted``: ``actor`` is the system itself (``import``), not a person's address."""
        actor = actor if trusted else check_actor(actor)

        def decide(paper: StoredPaper, definition: Definition, now: datetime) -> list[Change]:
            moment = user_instant(when, definition.timezone, f"{paper.reference} meeting")
            return decide_meeting(definition, paper.reference, paper.state, moment, actor, branch, now)

        return self._change(check_reference(reference), decide, expected_version, branch, expected_branch_version)

    #: How often a branch change is decided again on a fresh row when other branches were written meanwhile.
    BRANCH_ATTEMPTS = 30

    def _change(self, reference: str, decide: Callable[[StoredPaper, Definition, datetime], list[Change]],
                expected_version: int | None, branch: str | None = None,
                expected_branch_version: str | None = None) -> list[Change]:
        """Decide on the paper as this process last wrote it, or as the database has it, and commit.

        The remembered row saves a read per change; it is safe because every write is checked against the
        row's version. If anything fails on the remembered row (someone else changed the paper meanwhile),
        the change is decided again, once, on the row read fresh from the database. A branch change checked
        against its branch's version is decided again as long as only other branches changed (eleven councils
        deciding at once all get through; the join still happens exactly once, in the change that meets it).
        """
        per_branch = branch is not None and expected_branch_version is not None

        def attempt(paper: StoredPaper) -> list[Change]:
            if per_branch:
                assert branch is not None
                if branch_version(paper.state, branch) != expected_branch_version:
                    raise ConflictError(_("{reference}: branch '{branch}' was changed by someone else meanwhile; "
                                          "reload and retry").format(reference=paper.reference, branch=branch))
            elif expected_version is not None and paper.version != expected_version:
                raise ConflictError(_("{reference} was changed by someone else meanwhile; retry").format(
                    reference=paper.reference))
            definition = self.definition_of(paper)
            changes = decide(paper, definition, self.now())
            self._commit(paper, definition, changes)
            return changes

        remembered = self._papers.get(reference)
        if remembered is not None:
            try:
                return attempt(remembered)
            except WorkflowError:
                self._forget(reference)
        for _attempt in range(self.BRANCH_ATTEMPTS - 1 if per_branch else 0):
            paper = self.store.load(reference)
            try:
                return attempt(paper)
            except ConflictError:
                self._forget(reference)
                if branch is not None and branch_version(self.store.load(reference).state, branch) != \
                        expected_branch_version:
                    raise  # the branch itself changed: a real conflict
        return attempt(self.store.load(reference))

    def record(self, reference: str, definition: Definition, changes: Sequence[Change], *,
               paper: StoredPaper | None = None, past_mails: PastMails = "send") -> StoredPaper:
        """The one commit path: append ``changes`` (decided by the pure core) to ``paper``, or create the
        paper with them, moving its deadlines and mails in the same transaction.

        ``definition`` must be stored already (create and :meth:`current_definition` do that). With
        ``past_mails="drop"`` reminders whose moment had passed when the deadline started are not
        queued: the changes are history, recorded after the fact.
        """
        if paper is None:
            reference = check_reference(reference)
            state = fold(definition, None, changes)
            started = self._deadline_diff(definition, None, state,
                                          changes[-1].at if past_mails == "send" else self.now(), past_mails)
            follow_ups = self._follow_up_diff(reference, definition, None, state, changes, past_mails)
            stored = self.store.create(reference, definition, state, changes, started, follow_ups)
            self._remember(stored)
            return stored
        self._commit(paper, definition, list(changes), past_mails)
        return self._papers.get(paper.reference) or self.store.load(paper.reference)

    def _deadline_diff(self, definition: Definition, before: PaperState | None, after: PaperState,
                       now: datetime, past_mails: PastMails, old: Definition | None = None
                       ) -> tuple[list[tuple[str, str]], list[Any]]:
        """Which deadlines end and which start (with their mails at the installation's morning hour). The labels
        the mails keep are made in the installation's language, not in that of the request that caused them
        (an English page must not store English reminder labels that German mails then show)."""
        with use_language(process_language()):
            return self._plan_deadlines(definition, before, after, now, past_mails, old)

    def _plan_deadlines(self, definition: Definition, before: PaperState | None, after: PaperState,
                        now: datetime, past_mails: PastMails, old: Definition | None
                        ) -> tuple[list[tuple[str, str]], list[Any]]:
        running_before = running_deadlines(old or definition, before) if before is not None else {}
        if old is not None and old is not definition:
            # Another version may remind differently even where the due moment is the same:
            # every deadline ends and the new version's start afresh.
            ended = list(running_before)
            _ended, started = changed(definition, {}, running_deadlines(definition, after), now, self.morning_hour,
                                 self.evening_hour)
        else:
            ended, started = changed(definition, running_before, running_deadlines(definition, after), now,
                                     self.morning_hour, self.evening_hour)
        if past_mails == "drop":
            started = [replace(p, reminders=tuple(r for r in p.reminders if r.send_at > now)) for p in started]
        return ended, started

    def _commit(self, paper: StoredPaper, definition: Definition, changes: list[Change],
                past_mails: PastMails = "send") -> PaperState:
        """Write ``changes``; a change of a field that voids sign-offs appends the entry that says so to
        ``changes`` (:func:`void_signoffs`) and queues the mail to the signers in the same transaction."""
        check_time_order(paper.reference, paper.updated_at, changes[0].at)
        old = self.definition_of(paper) if definition.source_hash != paper.definition_hash else None
        state = fold(definition, paper.state, changes)
        void = void_signoffs(paper.state, state, changes[-1].at)
        if void:
            changes.extend(void)
            state = fold(definition, state, void)
        diff = self._deadline_diff(definition, paper.state, state, changes[-1].at if past_mails == "send"
                                   else self.now(), past_mails, old)
        follow_ups = self._follow_up_diff(paper.reference, definition, paper.state, state, changes, past_mails)
        mails = [PaperMail(SIGNOFF_VOID_MAIL, gettext("Sign-off voided"), tuple(v.payload["signers"]), v.at,
                           dict(v.payload)) for v in void]
        try:
            version = self.store.save(paper, definition, state, changes, diff, follow_ups, mails)
        except WorkflowError:
            self._forget(paper.reference)
            raise
        self._remember(replace(paper, state=state, version=version, updated_at=changes[-1].at,
                               workflow_version=definition.version, definition_hash=definition.source_hash))
        return state

    # --- follow-ups (the rules: workflow/follow_up.py) ----------------------------------------

    def _follow_up_diff(self, reference: str, definition: Definition, before: PaperState | None, after: PaperState,
                        changes: Sequence[Change], past_mails: PastMails) -> FollowUpDiff:
        """What a change does to the paper's follow-ups: the series it ends (it leaves their state), the children
        it creates now, those it plans, and those it cannot create (why). History recorded after the fact (an
        import) starts none: its council information system has the follow-ups already."""
        if not definition.follow_ups or past_mails == "drop" or any(c.kind == "migrate" for c in changes):
            return NO_FOLLOW_UPS  # a migration enters no state (a planned child checks the paper when it is due)
        ended = [f.name for f in definition.follow_ups if f.recurring and before is not None
                 and before.state == f.when and after.state != f.when]
        now = changes[-1].at
        owed = owed_at_entry(definition, reference, before, after)
        if owed and before is not None:  # a paper owes each follow-up once, however often it enters the state
            started = {row.name for row in self.store.follow_ups(reference)}
            owed = [o for o in owed if o.name not in started]
        children: list[NewChild] = []
        planned: list[Owed] = []
        failed: list[tuple[Owed, str]] = []
        for o in owed:
            if o.due_at > now:
                planned.append(o)
                continue
            try:
                children.append(self._new_child(reference, definition, after, o, now))
            except StorageError:
                raise
            except WorkflowError as exc:  # the change itself stands; the child is recorded as not created
                failed.append((o, exc.message))
        if not (ended or children or planned or failed):
            return NO_FOLLOW_UPS
        return ended, children, planned, failed

    def _new_child(self, parent: str, definition: Definition, state: PaperState, owed: Owed, now: datetime
                   ) -> NewChild:
        """The child ``owed`` as decided by the pure core: created by ``system`` on behalf of the follow-up's
        role, its fields rendered from the parent's, naming its parent; with the parent's entry."""
        spec = follow_up_by_name(definition)[owed.name]
        child_definition = self.current_definition(spec.workflow)
        reference = check_reference(owed.reference)
        try:
            self.store.load(reference)
        except NotFoundError:
            pass
        else:
            raise ConflictError(_("{reference}: a paper with this reference exists already; follow-up '{name}' of "
                                  "{parent} cannot create it").format(reference=reference, name=owed.name,
                                                                      parent=parent))
        values = child_values(spec, child_definition, parent, state, owed)
        created = decide_create(child_definition, reference, SYSTEM_ACTOR, values, now)[0]
        origin: dict[str, Any] = {"parent": parent, "name": owed.name, "n": owed.n}
        if spec.actor:
            origin["on_behalf_of"] = spec.actor
        files = self._attachments(definition, spec.attach, now)
        payload = {**created.payload, "follow_up": origin}
        if files:  # the create entry names each file with its SHA-256: the trail's hash chain covers them
            payload["files"] = [f.meta for f in files]
        changes = [replace(created, payload=payload)]
        child_state = fold(child_definition, None, changes)
        deadlines = self._deadline_diff(child_definition, None, child_state, now, "send")
        note = follow_up_note(parent, definition.workflow, definition.version, owed, spec.actor, now)
        return NewChild(owed, child_definition, child_state, changes, deadlines, note, files)

    def _attachments(self, definition: Definition, attach: Sequence[Attachment], now: datetime) -> list[NewFile]:
        """The documents a follow-up attaches to a child it creates at ``now`` (workflow/decision_report.py)."""
        if not attach:
            return []
        from .decision_report import attachment

        files: list[NewFile] = []
        for made in (attachment(self, spec, definition.timezone, now) for spec in attach):
            # A pdf entry made as HTML (no WeasyPrint) can meet an html entry of the same report: the same
            # document is attached once, another one (other lights) gets a name of its own.
            if any(f.name == made.name and f.content == made.content for f in files):
                continue
            stem, dot, ext = made.name.rpartition(".")
            number = 2
            while any(f.name == made.name for f in files):
                made = replace(made, name=f"{stem}-{number}{dot}{ext}")
                number += 1
            files.append(made)
        return files

    # --- attachments ---------------------------------------------------------------------------

    def files(self, reference: str | StoredPaper) -> list[FileRecord]:
        """A paper's attachments ("Anlagen"), oldest first."""
        paper = reference if isinstance(reference, StoredPaper) else self.load(reference)
        return self.store.files(paper.reference)

    def file_content(self, paper: StoredPaper, name: str) -> tuple[FileRecord, bytes]:
        """Attachment ``name`` of ``paper`` (already read with :meth:`paper_for`) with its content; a NotFoundError
        (one German line) if the paper has none by that name."""
        found = next((f for f in self.store.files(paper.reference) if f.name == name), None)
        if found is None:
            raise NotFoundError(_("{reference} has no attachment '{name}'").format(reference=paper.reference,
                                                                                   name=name[:200]))
        return found, self.store.file_content(paper.reference, name)

    def create_due_follow_ups(self, now: datetime | None = None, *, batch: int = 100) -> list[FollowUpRecord]:
        """Create every planned child due at ``now`` (the scheduler's pass; catching up what fell due while
        nobody ran), each in one transaction with its parent's entry and the plan of the next one. Several
        processes may run this at once: each child is created exactly once. Returns the rows this call
        finished (created, ended or failed)."""
        moment = now or self.now()
        finished: list[FollowUpRecord] = []
        seen: set[int] = set()
        while True:
            rows = [r for r in self.store.due_follow_ups(moment, batch) if r.id not in seen]
            if not rows:
                return finished
            for row in rows:
                seen.add(row.id)
                if self._complete_follow_up(row, moment):
                    finished.append(row)

    def _complete_follow_up(self, row: FollowUpRecord, now: datetime) -> bool:
        following = None
        try:
            parent = self.store.load(row.reference)
            definition = self.definition_of(parent)
            spec = follow_up_by_name(definition).get(row.name)
            if spec is None or not still_owed(definition, spec, parent.state, row.n, row.due_at):
                return self.store.complete_follow_up(row, now, None)  # the series ended (state left, count, until)
            following = next_owed(definition, spec, parent.reference, parent.state, row.n, row.anchor_at)
            owed = Owed(row.name, row.n, row.child, row.workflow, row.due_at, row.anchor_at)
            child = self._new_child(parent.reference, definition, parent.state, owed, now)
            return self.store.complete_follow_up(row, now, child, following)
        except StorageError:
            raise  # the database, not the child: the row stays planned and the next pass tries again
        except WorkflowError as exc:
            return self.store.complete_follow_up(row, now, None, following, error=exc.message)

    def follow_ups(self, reference: str | StoredPaper, as_of: datetime | None = None) -> list[ChildView]:
        """The follow-up papers of a paper (created, planned, ended, failed) with each created child's state; with
        ``as_of``, as they stood then: those finished by then with the child's state then, and as planned the
        ones owed then (the first of a series from its start, each next one from its predecessor's creation)."""
        paper = reference if isinstance(reference, StoredPaper) else self.load(reference)
        rows = self.store.follow_ups(paper.reference)
        finished = {(r.name, r.n): r.done_at for r in rows}
        out = []
        for row in rows:
            status = row.status
            if as_of is not None and (row.done_at is None or row.done_at > as_of):
                owed_since = row.anchor_at if row.n == 1 else finished.get((row.name, row.n - 1))
                if owed_since is None or owed_since > as_of:
                    continue
                status = "planned"
            state = label = None
            final = False
            if status == "created":
                try:
                    child = self.store.load(row.child)
                except NotFoundError:
                    child = None
                if child is not None and as_of is not None:
                    then = self.status(child.reference, as_of)
                    state, label, final = then.state, then.state_label, then.final
                elif child is not None:
                    spec = self.definition_of(child).states[child.state.state]
                    state, label, final = spec.id, spec.label, spec.final
            out.append(ChildView(row.name, row.n, row.child, row.workflow, row.due_at, status, state, label,
                                 final, row.error if status == row.status else None))
        return out

    def parent_of(self, reference: str | StoredPaper) -> FollowUpRecord | None:
        """The follow-up row that created the paper (its parent's reference, follow-up name and number); None
        for a paper created otherwise."""
        paper = reference if isinstance(reference, StoredPaper) else self.load(reference)
        return self.store.parent_of(paper.reference)

    def follow_up_json(self, reference: str | StoredPaper, as_of: datetime | None = None) -> dict[str, Any]:
        """A paper's ``parent`` (the paper it follows: reference, follow-up name and number, or None), its
        ``follow_ups`` (as they stood at ``as_of``) and its attachments (``files``, made with the paper) as JSON:
        the one shape of `status --json` and the API."""
        paper = reference if isinstance(reference, StoredPaper) else self.load(reference)
        parent = self.parent_of(paper)
        return {"parent": None if parent is None else {"reference": parent.reference, "follow_up": parent.name,
                                                       "n": parent.n},
                "follow_ups": [c.to_json() for c in self.follow_ups(paper, as_of)],
                "files": [f.to_json() for f in self.files(paper)]}

    def _remember(self, paper: StoredPaper) -> None:
        with self._papers_lock:
            self._papers[paper.reference] = paper
            self._papers.move_to_end(paper.reference)
            while len(self._papers) > 4096:
                self._papers.popitem(last=False)

    def _forget(self, reference: str) -> None:
        with self._papers_lock:
            self._papers.pop(reference, None)

    # --- queries -----------------------------------------------------------------------------

    def load(self, reference: str) -> StoredPaper:
        return self.store.load(check_reference(reference))

    def status(self, reference: str, as_of: str | datetime | None = None) -> Status:
        """The paper's status now, or as it stood at ``as_of`` (replayed from the trail)."""
        paper = self.load(reference)
        if as_of is None:
            return self.view(paper)
        definition = self.definition_of(paper)
        moment = user_instant(as_of, definition.timezone, f"{reference} --as-of")
        records = [r for r in self.store.history(paper.reference, until=moment) if not r.is_note]
        if not records:
            from .german import format_local

            raise InputError(_("{reference} did not exist yet at {moment}; it was created at {created}").format(
                reference=paper.reference, moment=format_local(moment, definition.timezone),
                created=format_local(paper.created_at, definition.timezone)))
        state = replay_records(self.definition_version, records)
        then = self.definition_version(records[-1].workflow, records[-1].workflow_version)
        return self._view(paper.reference, then, state, None, moment)

    def timeline(self, reference: str) -> list[Period]:
        """Where the paper stood from each entry until the next."""
        return timeline(self.definition_version, self.history(reference))

    def migrate(self, workflow: str, to_version: int, mapping: Mapping[str, str], *, dry_run: bool = False,
                actor: str = "system") -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
        """Move running papers of ``workflow`` to ``to_version`` (the definitions folder's file).

        Returns (moved: reference, from state, to state) and (left untouched: reference, reason).
        """
        new, text = self.library.current(workflow)
        if new.version != to_version:
            raise InputError(_("the definitions folder has {workflow} version {version}, not {wanted}").format(
                workflow=workflow, version=new.version, wanted=to_version))
        now = self.now()
        if not dry_run:
            self.store.remember_definition(new, text, now, actor)
        moved: list[tuple[str, str, str]] = []
        untouched: list[tuple[str, str]] = []
        for paper in self.store.iter_papers():
            if paper.workflow != workflow or paper.workflow_version == to_version:
                continue
            old = self.definition_of(paper)
            if old.states[paper.state.state].final:
                continue
            try:
                change = migrate_state(old, new, paper.state, mapping, actor, now)
                check_time_order(paper.reference, paper.updated_at, now)
            except (ValueError, WorkflowError) as exc:
                untouched.append((paper.reference, exc.message if isinstance(exc, WorkflowError) else str(exc)))
                continue
            state = fold(new, paper.state, [change])
            if not dry_run:
                self._commit(paper, new, [change])
            moved.append((paper.reference, paper.state.state, state.state))
        return moved, untouched

    def view(self, paper: StoredPaper) -> Status:
        """The status of a paper already loaded (lists need not read each one again)."""
        return self._view(paper.reference, self.definition_of(paper), paper.state, paper.version, None)

    def history(self, reference: str) -> list[AuditRecord]:
        return self.store.history(self.load(reference).reference)

    def audit(self, **filters: Any) -> Iterator[AuditRecord]:
        """Entries in order, filtered by reference, workflow, actor, trigger, body (equality) and
        since/until (instants or user text in ``zone``, given as ``zone=``)."""
        zone = filters.pop("zone", "Europe/Berlin")
        for name in ("since", "until"):
            if filters.get(name) is not None:
                filters[name] = user_instant(filters[name], zone, name)
        if filters.get("actor"):
            filters["actor"] = str(filters["actor"]).strip().lower()
        return self.store.iter_audit(**self.resolve_filters(filters))

    def audit_page(self, limit: int = 50, before: int | None = None, **filters: Any) -> list[AuditRecord]:
        """One page of the entries matching ``filters`` (as :meth:`audit`, labels resolved), newest first,
        older than entry ``before``."""
        zone = filters.pop("zone", "Europe/Berlin")
        for name in ("since", "until"):
            if filters.get(name) is not None:
                filters[name] = user_instant(filters[name], zone, name)
        if filters.get("actor"):
            filters["actor"] = str(filters["actor"]).strip().lower()
        return self.store.page_audit(limit, before, **self.resolve_filters(filters))

    def resolve_filters(self, filters: Mapping[str, Any]) -> dict[str, Any]:
        """Filters that name a workflow, body or state by its id or its label (any case) as ids; an unknown
        name is an InputError that names the close ones ("kein Gremium 'Nottuln' – gemeint: Rat der Gemeinde
        Nottuln (rat_nottuln)?")."""
        import difflib

        out = dict(filters)
        known = self.filter_choices()
        for name, refusal in _NAMED_FILTERS.items():
            value = filters.get(name)
            if value is None or not str(value).strip():
                out.pop(name, None)
                continue
            text = str(value).strip()
            names = known["state" if name.endswith("state") else name]
            if text in names:
                out[name] = text
                continue
            by_label = [i for i, label in names.items() if label.casefold() == text.casefold()] or \
                [i for i in names if i.casefold() == text.casefold()]
            if len(by_label) == 1:
                out[name] = by_label[0]
                continue
            folded = text.casefold()
            close = [i for i, label in names.items() if folded in label.casefold() or folded in i]
            close += [i for i in difflib.get_close_matches(text, list(names), n=3, cutoff=0.6) if i not in close]
            hint = _(" – did you mean: {choices}?").format(
                choices=", ".join(f"{names[i]} ({i})" for i in close[:3])) if close else ""
            raise InputError(_(refusal).format(text=text, hint=hint))
        return out

    def filter_choices(self) -> dict[str, dict[str, str]]:
        """What the filters can name, from the definitions folder: ``workflow`` (id → title), ``body`` (id →
        name) and ``state`` (id → label); the choices of the pages' filter lists."""
        known: dict[str, dict[str, str]] = {k: {} for k in ("workflow", "body", "state")}
        for workflow in self.library.workflows():
            try:
                definition = self.library.current(workflow)[0]
            except WorkflowError:
                continue
            known["workflow"][definition.workflow] = definition.title
            known["body"].update({b.id: b.name for b in definition.bodies.values()})
            known["state"].update({st.id: st.label for st in definition.states.values()})
        return known

    def head(self) -> tuple[int, str]:
        """Sequence number and hash of the trail's newest entry (for auditors to keep)."""
        return self.store.head()

    def deadlines(self, reference: str | StoredPaper) -> list[DeadlineView]:
        """A paper's running deadlines with their mails, and those marked done in this visit of its state
        ("erledigt am … von …")."""
        paper = reference if isinstance(reference, StoredPaper) else self.load(reference)
        outbox = self.store.outbox
        definition = self.definition_of(paper)
        descriptions = {d.name: d.description for d in definition.deadlines}
        title = str(paper.state.fields.get("title", ""))
        records = outbox.deadlines(paper.reference, running_only=not paper.state.done)
        marked: dict[tuple[str, str], AuditRecord] = {}
        latest: dict[tuple[str, str], DeadlineRecord] = {}
        if paper.state.done:  # which entry marked each done (a `done`, an internal trigger, a meeting …)
            for step in steps(self.definition_version, self.store.history(paper.reference)):
                for key in step.after.done - (step.before.done if step.before else frozenset()):
                    marked[key] = step.record
            for d in records:
                key = (d.name, d.branch)
                if key in paper.state.done and d.status != "running" and (key not in latest or d.id > latest[key].id):
                    latest[key] = d
        out = []
        for d in records:
            key = (d.name, d.branch)
            if d.status != "running" and latest.get(key) is not d:
                continue
            found: AuditRecord | None = marked.get(key) if d.status != "running" else None
            statuses = _MAIL_STATUSES if d.status == "running" else (*_MAIL_STATUSES, "cancelled")
            mails = tuple(outbox.reminders(deadline_id=d.id, statuses=statuses))
            body = definition.bodies.get(d.body) if d.body else None
            note = found.payload.get("note") if found is not None and found.kind == "done" else None
            done = (found.at, found.actor, note) if found is not None else None
            out.append(DeadlineView(d, mails, body.name if body else None, title, descriptions.get(d.name), done))
        return out

    def waiting(self, paper: StoredPaper) -> list[WaitingDeadline]:
        """Deadlines of the paper's state that have not started, with why (their meeting or field is unset)."""
        return waiting_deadlines(self.definition_of(paper), paper.state)

    def past_branches(self, paper: StoredPaper) -> tuple[str, tuple[BranchView, ...]]:
        """The label and branches of the paper's last parallel state, as they stood when it was left (the
        council grid of a finished paper); ("", ()) if the paper never was in one or is in one now."""
        if paper.state.branches:
            return "", ()
        last: PaperState | None = None
        for step in steps(self.definition_version, self.store.history(paper.reference)):
            if step.after.branches:
                last = step.after
        if last is None:
            return "", ()
        definition = self.definition_of(paper)
        view = self._view(paper.reference, definition, last, None, None)
        return definition.states[last.state].label, view.branches

    def sign(self, reference: str, actor: str, *, act: SignoffAct = "sign", text: str = "",
             expected_version: int | None = None) -> list[Change]:
        """Sign the paper off for a role of its state's Mitzeichnung (``act`` "sign", with an optional note),
        refuse to ("refuse", with a reason) or withdraw the role's sign-off or refusal ("withdraw"): the rule of
        :func:`decide_signoff`; recorded in the trail with the hash of the paper's fields."""
        actor = check_actor(actor)

        def decide(paper: StoredPaper, definition: Definition, now: datetime) -> list[Change]:
            return decide_signoff(definition, paper.reference, paper.state, actor, act, text, now)

        return self._change(check_reference(reference), decide, expected_version)

    def may_sign(self, paper: StoredPaper, who: Person, act: SignoffAct = "sign") -> bool:
        """Whether ``who`` may sign the paper off (or refuse, or withdraw) now: the rule of :func:`decide_signoff`
        (asked with a reason, which a refusal needs)."""
        if who.auditor:
            return False
        try:
            decide_signoff(self.definition_of(paper), paper.reference, paper.state, who.email, act, "-", self.now())
        except WorkflowError:
            return False
        return True

    def may_mark_done(self, paper: StoredPaper, who: Person, deadline: str, branch: str | None, *,
                      undo: bool = False) -> bool:
        """Whether ``who`` may mark the deadline done (or undo that) now: the rule of :func:`decide_done`."""
        if who.auditor:
            return False
        try:
            decide_done(self.definition_of(paper), paper.reference, paper.state, deadline, who.email, branch, "",
                        self.now(), undo=undo)
        except WorkflowError:
            return False
        return True

    def done(self, reference: str, deadline: str, actor: str, *, branch: str | None = None, note: str = "",
             undo: bool = False, expected_version: int | None = None) -> list[Change]:
        """Mark a running deadline of the paper done (or, with ``undo``, take that back): its reminders and
        escalation are cancelled in the same transaction, and the trail records who and when."""
        actor = check_actor(actor)

        def decide(paper: StoredPaper, definition: Definition, now: datetime) -> list[Change]:
            return decide_done(definition, paper.reference, paper.state, deadline, actor, branch, note, now,
                               undo=undo)

        return self._change(check_reference(reference), decide, expected_version)

    def reminders(self, *, reference: str | None = None, statuses: Sequence[str] = ("pending", "claimed"),
                  due_before: datetime | None = None) -> list[ReminderRecord]:
        """Mails of the outbox in the order they go out."""
        ref = self.load(reference).reference if reference is not None else None
        return self.store.outbox.reminders(reference=ref, statuses=statuses, due_before=due_before)

    # --- what a person sees and may do (front ends ask these) --------------------------------

    def paper_for(self, reference: str, who: Person) -> StoredPaper:
        """The paper, if ``who`` may see it; else "no paper" (its existence is not revealed)."""
        paper = self.load(reference)
        if not may_read(self.definition_of(paper), paper.state, who):
            raise NotFoundError(_("no paper with reference '{reference}'").format(reference=reference))
        return paper

    def readable_definitions(self, who: Person) -> list[str]:
        """The stored definitions (by hash) whose papers marked ``public: false`` ``who`` may read: the rule of
        :func:`~workflow.access.may_read` asked once per definition, for the lists' query."""
        out = []
        for _workflow, _version, digest, text in self.store.iter_definitions():
            if may_read_private(self.library.pinned(digest, lambda text=text: text), who):  # type: ignore[misc]
                out.append(digest)
        return out

    def papers_page(self, who: Person, *, limit: int = 50, after: str | None = None, workflow: str | None = None,
                    state: str | None = None, body: str | None = None, overdue: bool = False
                    ) -> tuple[list[Status], str | None]:
        """One page of the papers ``who`` may see, in reference order after ``after``, filtered by workflow,
        state, body (also a branch) and overdue (a running deadline is past due); and the reference the next
        page starts after (None: this is the last page). A paged query on indexed columns."""
        papers = self.store.page_papers(limit + 1, after, workflow=workflow, state=state, body=body,
                                        due_before=self.now() if overdue else None,
                                        readable=self.readable_definitions(who))
        more = len(papers) > limit
        papers = papers[:limit]
        return [self.view(p) for p in papers], (papers[-1].reference if more and papers else None)

    def papers_for(self, who: Person, *, workflow: str | None = None, state: str | None = None,
                   body: str | None = None, overdue: bool = False) -> list[Status]:
        """Every paper ``who`` may see (page after page of :meth:`papers_page`), in reference order."""
        out: list[Status] = []
        after: str | None = None
        while True:
            page, after = self.papers_page(who, limit=500, after=after, workflow=workflow, state=state, body=body,
                                           overdue=overdue)
            out.extend(page)
            if after is None:
                return out

    def decisions_page(self, who: Person, body: str, *, status: str | None = None,
                       warn_days: int = DEFAULT_WARN_DAYS, limit: int = 50, after: str | None = None,
                       now: datetime | None = None) -> tuple[list[DecisionView], str | None]:
        """One page of the Beschlusskontrolle of ``body`` (its id or name) as ``who`` may read it: the follow-up
        papers of the body's decisions, red first, then by target date (workflow/decisions.py); and whether
        another page follows. ``status``: offen (default), verzoegert, erledigt; an unknown body or status is
        an InputError (one German line)."""
        wanted = self.decision_status(status)
        if warn_days < 0 or warn_days > 250:
            raise InputError(_("--warn-days {value}: give a number of working days from 0 to 250").format(
                value=warn_days))
        body_id = self.resolve_filters({"body": body}).get("body")
        if body_id is None:
            raise InputError(_("the Beschlusskontrolle needs a body (--body)"))
        try:
            key = parse_cursor(after) if after else None
        except ValueError:
            raise InputError(_("'{cursor}' is no page cursor of the Beschlusskontrolle; start without one").format(
                cursor=after[:80] if after else "")) from None
        items = self.store.page_decisions(body_id, limit + 1, key, status=wanted,
                                          readable=self.readable_definitions(who))
        now = now or self.now()
        names = self.filter_choices()["body"]
        yellow: dict[str, datetime] = {}
        out = []
        for item in items[:limit]:
            definition = self.definition_version(item.workflow, item.version)
            if item.definition_hash not in yellow:
                yellow[item.definition_hash] = warn_until(definition, now, warn_days)
            spec = next((d for d in definition.deadlines if d.name == item.deadline), None)
            out.append(DecisionView(
                **vars(item), body_name=names.get(item.body, item.body),
                state_label=definition.states[item.state].label if item.state in definition.states else item.state,
                target_label=spec.label if spec else None,
                responsible=recipients(definition, spec.notify, None) if spec else (),
                light=light(item.target_at, item.delayed, item.final, now, yellow[item.definition_hash]),
                timezone=definition.timezone))
        return out, (cursor_text(items[limit - 1].key) if len(items) > limit and limit > 0 else None)

    def decisions_for(self, who: Person, body: str, *, status: str | None = None,
                      warn_days: int = DEFAULT_WARN_DAYS, most: int | None = None, now: datetime | None = None
                      ) -> list[DecisionView]:
        """The whole Beschlusskontrolle of ``body`` (page after page of :meth:`decisions_page`); with ``most``,
        at most that many rows and one more (so the caller sees there are more)."""
        out: list[DecisionView] = []
        after: str | None = None
        while True:
            size = 500 if most is None else max(1, min(500, most + 1 - len(out)))
            page, after = self.decisions_page(who, body, status=status, warn_days=warn_days, limit=size, after=after,
                                              now=now)
            out.extend(page)
            if after is None or (most is not None and len(out) > most):
                return out

    @staticmethod
    def decision_status(status: str | None) -> str:
        """The Beschlusskontrolle's status filter checked: offen (also for none), verzoegert or erledigt."""
        if status is None or not status.strip():
            return "offen"
        wanted = status.strip().casefold().replace("ö", "oe")  # verzögert as the page shows it
        if wanted not in DECISION_STATUSES:
            raise InputError(_("unknown status '{status}'{hint}; allowed: {allowed}").format(
                status=status.strip()[:80], hint=did_you_mean(wanted, DECISION_STATUSES),
                allowed=", ".join(DECISION_STATUSES)))
        return wanted

    def actions(self, paper: StoredPaper, who: Person) -> list[Action]:
        """The triggers ``who`` may fire on ``paper`` now (and for which branches)."""
        return actions(self.definition_of(paper), paper.state, who)

    def creatable(self, who: Person) -> list[Definition]:
        """The current definitions of the workflows ``who`` may create papers of (in the order of
        :meth:`DefinitionLibrary.workflows`); a definition that does not load is left out."""
        out = []
        for workflow in self.library.workflows():
            try:
                definition = self.library.current(workflow)[0]
            except WorkflowError:
                continue
            if may_create(definition, who):
                out.append(definition)
        return out

    def may_set_meeting(self, paper: StoredPaper, who: Person, branch: str | None) -> bool:
        """Whether ``who`` may set the meeting of the paper's consultation (``branch`` None) or of one branch
        now: the rule of :func:`decide_meeting`, asked with a moment ahead."""
        if who.auditor:
            return False
        now = self.now()
        try:
            decide_meeting(self.definition_of(paper), paper.reference, paper.state, now + timedelta(days=1),
                           who.email, branch, now)
        except WorkflowError:
            return False
        return True

    def deadlines_for(self, who: Person) -> list[PersonalDeadline]:
        """"Meine Fristen": the running deadlines ``who`` is notified of, and those escalated to them whose
        escalation is due (auditors: all), each with its paper, overdue ones first (every page of
        :meth:`deadlines_page`)."""
        out: list[PersonalDeadline] = []
        after: tuple[datetime, int] | None = None
        while True:
            page, after = self.deadlines_page(who, limit=500, after=after)
            out.extend(page)
            if after is None:
                return out

    def deadlines_page(self, who: Person, *, limit: int = 50, after: tuple[datetime, int] | None = None
                       ) -> tuple[list[PersonalDeadline], tuple[datetime, int] | None]:
        """One page of "Meine Fristen" in due order (the overdue ones come first: they are due earliest) after
        the deadline ``after`` (due moment, id), and where the next page starts (None: the last page).

        The store is asked for the running deadlines kept with ``who``'s address (each running deadline is stored
        with everybody it concerns, :func:`~workflow.deadlines.audience`, the rule of :meth:`_involvement`), by
        the (email, due_at, deadline_id) index; auditors walk every running deadline by (status, due_at, id). Each
        row is then checked against the rule exactly (and against reading the paper)."""
        audience = None if who.auditor else who.email
        now = self.now()
        out: list[PersonalDeadline] = []
        cursor = after
        while True:
            # one more row than the page: whether there is a next page, without another query
            rows = self.store.page_running_deadlines(limit + 1, cursor, audience=audience, now=now)
            mails: dict[int, list[ReminderRecord]] = {record.id: [] for _, record in rows}
            for mail in self.store.outbox.reminders(deadline_ids=list(mails), statuses=_MAIL_STATUSES):
                if mail.deadline_id is not None:
                    mails[mail.deadline_id].append(mail)
            for paper, record in rows:
                row = self._personal(paper, record, who, now, tuple(mails[record.id]))
                if row is None or not (who.auditor or row.notified or row.escalated):
                    continue
                if len(out) == limit:
                    last = out[-1].view.deadline
                    return out, (last.due_at, last.id)
                out.append(row)
            if len(rows) <= limit:
                return out, None
            cursor = (rows[-1][1].due_at, rows[-1][1].id)

    @staticmethod
    def _involvement(definition: Definition, spec: Any, body: str | None, who: Person) -> tuple[bool, bool]:
        """Whether ``who`` is notified of a deadline (``spec``, for ``body``), and whether it escalates to them:
        :func:`~workflow.deadlines.involved`."""
        notify, escalate_to = involved(definition, spec, body)
        notified = who.email in notify
        escalation = who.email in escalate_to
        return notified, escalation

    def _personal(self, paper: StoredPaper, record: DeadlineRecord, who: Person, now: datetime,
                  mails: tuple[ReminderRecord, ...]) -> PersonalDeadline | None:
        """A running deadline on ``who``'s list, with its ``mails`` (None if it is not theirs or they may not
        read its paper)."""
        definition = self.definition_of(paper)
        if not may_read(definition, paper.state, who):
            return None
        spec = next((d for d in definition.deadlines if d.name == record.name), None)
        if spec is None:
            return None
        notified, escalation = self._involvement(definition, spec, record.body, who)
        if not (notified or escalation or who.auditor):
            return None
        body = definition.bodies.get(record.body) if record.body else None
        view = DeadlineView(record, mails, body.name if body else None, str(paper.state.fields.get("title", "")),
                            spec.description)
        escalated = escalation and any(m.kind in ESCALATING and m.send_at <= now for m in mails)
        return PersonalDeadline(paper, view, notified, escalation, escalated)

    def involved_deadlines(self, who: Person, *, done: bool = False) -> list[PersonalDeadline]:
        """The running deadlines ``who`` is notified of or would be escalated to (the one rule of who that is:
        :meth:`_involvement`), with ``done`` also those marked done in this visit of their state; auditors get
        every deadline."""
        now = self.now()
        out = []
        for paper in self.store.iter_papers():
            definition = self.definition_of(paper)
            if not may_read(definition, paper.state, who):
                continue
            specs = {d.name: d for d in definition.deadlines}
            for view in self.deadlines(paper):
                spec = specs.get(view.deadline.name)
                if spec is None or (view.done is not None and not done):
                    continue
                notified, escalation = self._involvement(definition, spec, view.deadline.body, who)
                if not (notified or escalation or who.auditor):
                    continue
                escalated = escalation and any(m.kind in ESCALATING and m.send_at <= now
                                               for m in view.mails)
                out.append(PersonalDeadline(paper, view, notified, escalation, escalated))
        return out

    def oparl(self, base_url: str, body_name: str, zone: str, *, public_only: bool = False,
              modified_since: datetime | None = None) -> dict[str, Any]:
        """The papers as OParl 1.1 objects (the export and the live endpoint)."""
        from .oparl import OParlExport, modified_at

        export = OParlExport(base_url, body_name, zone)
        for paper in self.store.iter_papers():
            if public_only and paper.state.fields.get("public", True) is False:
                continue
            history = self.store.history(paper.reference)
            if modified_since is not None and modified_at(paper, history) < modified_since:
                continue
            export.add(paper, self.definition_version, history)
        return export.objects()

    def oparl_paper(self, paper: StoredPaper, base_url: str, history: Sequence[AuditRecord] | None = None
                    ) -> dict[str, Any]:
        """The OParl Paper object of one paper, built from its trail (``history``, if read already)."""
        from .oparl import OParlExport

        export = OParlExport(base_url)
        export.add(paper, self.definition_version,
                   list(history) if history is not None else self.store.history(paper.reference))
        return export.papers[0]

    def oparl_papers(self, base_url: str, offset: int, limit: int, *, modified_since: datetime | None = None
                     ) -> tuple[int, list[dict[str, Any]]]:
        """The public papers as OParl Paper objects, ``limit`` from ``offset`` in id order, and how many there
        are. Each object is built once per change of its paper: kept in the paper's row with the paper's
        version (and the base URL), reused while both are the same, built again (and kept) otherwise."""
        # a page number past any list (typed by hand: ?page=99999999999999999999) reads no rows, and the
        # caller says which page is the last, instead of the database refusing the number
        total, rows = self.store.oparl_page(min(offset, 2**62), limit, modified_since=modified_since)
        out = []
        built = []
        kept_objects = {}
        for reference, version, text in rows:
            kept = json.loads(text) if text else None
            if isinstance(kept, dict) and kept.get("version") == version and kept.get("base") == base_url:
                kept_objects[reference] = kept["paper"]
        # the others as they are now (they may have changed since the page was read), with their trails, at once
        stale = {p.reference: (p, h) for p, h in
                 self.store.load_with_history([r for r, _version, _obj in rows if r not in kept_objects])}
        for reference, _version, _obj in rows:
            if reference in kept_objects:
                out.append(kept_objects[reference])
                continue
            if reference not in stale or not is_public(stale[reference][0].state):
                continue  # gone or made private meanwhile
            paper, history = stale[reference]
            item = self.oparl_paper(paper, base_url, history)
            built.append((paper, json.dumps({"version": paper.version, "base": base_url, "paper": item},
                                            ensure_ascii=False, separators=(",", ":"))))
            out.append(item)
        self.store.keep_oparl(built)
        return total, out

    def _view(
        self, reference: str, definition: Definition, state: PaperState, version: int | None, as_of: datetime | None
    ) -> Status:
        spec = definition.states[state.state]
        body = definition.body_of(state.state)
        branches = tuple(
            BranchView(b.body, definition.bodies[b.body].name, b.status, b.meeting, b.result, b.deferrals,
                       branch_version(state, b.body))
            for b in state.branches.values()
        )
        triggers = () if spec.final else tuple(compile_machine(definition).triggers(state.state))
        return Status(
            reference,
            definition.workflow,
            definition.version,
            spec.id,
            spec.label,
            spec.final,
            state.entered_at,
            body.id if body else None,
            body.name if body else None,
            state.meeting,
            state.result,
            state.fields,
            branches,
            triggers,
            version,
            as_of,
            definition.timezone,
            bool(spec.parallel and spec.parallel.join.none),
            tuple(self._signoff_view(role, state) for role in spec.signoff.roles) if spec.signoff else (),
            spec.signoff.order if spec.signoff else None,
        )

    @staticmethod
    def _signoff_view(role: str, state: PaperState) -> SignoffView:
        mark = state.signoffs.get(role)
        if mark is None:
            return SignoffView(role, "open")
        return SignoffView(role, mark.decision, mark.actor, mark.at, mark.text)
