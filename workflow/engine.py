"""The orchestrator: load a paper, decide, write state and audit in ONE transaction."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .audit import VerifyReport, verify
from .clock import Clock, SystemClock
from .deadlines import changed, plan, running_deadlines
from .definition import Definition
from .errors import InputError, WorkflowError
from .library import DefinitionLibrary
from .loader import source_hash
from .machine import compile_machine
from .paper import (
    Change,
    PaperState,
    apply,
    check_actor,
    check_reference,
    decide_create,
    decide_fire,
    decide_meeting,
    migrate_state,
    replay,
)
from .store import AuditRecord, SqlStore, StoredPaper
from .values import user_instant

__all__ = ["BranchView", "Engine", "Status"]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


@dataclass(frozen=True)
class BranchView:
    body: str
    name: str
    status: str
    meeting: datetime | None
    result: str | None
    deferrals: int

    def to_json(self) -> dict[str, Any]:
        return {
            "body": self.body,
            "name": self.name,
            "status": self.status,
            "meeting": _iso(self.meeting),
            "result": self.result,
            "deferrals": self.deferrals,
        }


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
    extra: Mapping[str, Any] = field(default_factory=dict)

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
        }


class Engine:
    """Every operation of councilflow on papers; the CLI and other front ends only wrap it."""

    def __init__(
        self, store: SqlStore, library: DefinitionLibrary, clock: Clock | None = None, *, morning_hour: int = 8
    ) -> None:
        self.store = store
        self.library = library
        self.clock: Clock = clock or SystemClock()
        self._versions: dict[tuple[str, int], Definition] = {}
        # Papers as this process last wrote them (see _with_paper); the database stays the source of truth.
        self._papers: OrderedDict[str, StoredPaper] = OrderedDict()
        self._papers_lock = threading.Lock()
        self.morning_hour = morning_hour

    # --- definitions -------------------------------------------------------------------------

    def definition_of(self, paper: StoredPaper) -> Definition:
        return self.library.pinned(
            paper.definition_hash, lambda: self.store.definition_text(paper.workflow, paper.workflow_version)
        )

    def definition_version(self, workflow: str, version: int) -> Definition:
        """A stored definition version, by workflow id and version (as audit entries name them)."""
        key = (workflow, version)
        found = self._versions.get(key)
        if found is None:
            text = self.store.definition_text(workflow, version)
            found = self._versions[key] = self.library.pinned(source_hash(text), lambda: text)
        return found

    def verify(self, head: str | None = None) -> VerifyReport:
        """Check the hash chain, each paper's newest entry, and that each paper's state replays."""
        return verify(self.store, head=head, definitions=self.definition_version)

    # --- commands ----------------------------------------------------------------------------

    def create(self, workflow: str, reference: str, actor: str, values: Mapping[str, str] | None = None) -> StoredPaper:
        """Create a paper in the workflow's initial state."""
        reference = check_reference(reference)
        actor = check_actor(actor)
        definition, text = self.library.current(workflow)
        now = self.clock.now()
        changes = decide_create(definition, reference, actor, values or {}, now)
        self.store.remember_definition(definition, text, now)
        state = replay(definition, changes)
        assert state is not None
        started = changed(definition, {}, running_deadlines(definition, state), now, self.morning_hour)
        return self.store.create(reference, definition, state, changes, started)

    def fire(
        self,
        reference: str,
        trigger: str,
        actor: str,
        *,
        branch: str | None = None,
        values: Mapping[str, str] | None = None,
    ) -> list[Change]:
        """Fire ``trigger`` on a paper; returns the recorded changes (a join move included)."""
        actor = check_actor(actor)

        def attempt(paper: StoredPaper) -> list[Change]:
            definition = self.definition_of(paper)
            changes = decide_fire(definition, compile_machine(definition), paper.reference, paper.state, trigger,
                                  actor, branch, values or {}, self.clock.now())
            self._commit(paper, definition, changes)
            return changes

        return self._with_paper(check_reference(reference), attempt)

    def set_meeting(
        self, reference: str, when: str | datetime, actor: str, *, branch: str | None = None
    ) -> list[Change]:
        """Set or move the meeting of the paper's consultation (or of one branch)."""
        actor = check_actor(actor)

        def attempt(paper: StoredPaper) -> list[Change]:
            definition = self.definition_of(paper)
            moment = user_instant(when, definition.timezone, f"{reference} meeting")
            changes = decide_meeting(definition, paper.reference, paper.state, moment, actor, branch,
                                     self.clock.now())
            self._commit(paper, definition, changes)
            return changes

        return self._with_paper(check_reference(reference), attempt)

    def _with_paper(self, reference: str, attempt: Callable[[StoredPaper], list[Change]]) -> list[Change]:
        """Run ``attempt`` on the paper as this process last wrote it, or as the database has it.

        The remembered row saves a read per change; it is safe because every write is checked against the
        row's version. If anything fails on the remembered row (someone else changed the paper meanwhile),
        the change is decided again, once, on the row read fresh from the database.
        """
        remembered = self._papers.get(reference)
        if remembered is not None:
            try:
                return attempt(remembered)
            except WorkflowError:
                self._papers.pop(reference, None)
        return attempt(self.store.load(reference))

    def _commit(self, paper: StoredPaper, definition: Definition, changes: list[Change]) -> PaperState:
        state = paper.state
        for change in changes:
            state = apply(definition, state, change)
        now = changes[-1].at
        before = running_deadlines(definition, paper.state)
        after = running_deadlines(definition, state)
        try:
            version = self.store.save(paper, definition, state, changes,
                                      changed(definition, before, after, now, self.morning_hour))
        except WorkflowError:
            self._papers.pop(paper.reference, None)
            raise
        self._remember(replace(paper, state=state, version=version, updated_at=now))
        return state

    def _remember(self, paper: StoredPaper) -> None:
        with self._papers_lock:
            self._papers[paper.reference] = paper
            self._papers.move_to_end(paper.reference)
            while len(self._papers) > 4096:
                self._papers.popitem(last=False)

    # --- queries -----------------------------------------------------------------------------

    def status(self, reference: str, as_of: str | datetime | None = None) -> Status:
        """The paper's status now, or as it stood at ``as_of`` (replayed from the trail)."""
        paper = self.store.load(check_reference(reference))
        if as_of is None:
            return self.view(paper)
        definition = self.definition_of(paper)
        moment = user_instant(as_of, definition.timezone, f"{reference} --as-of")
        records = self.store.history(paper.reference, until=moment)
        if not records:
            raise InputError(f"{reference} did not exist yet at {moment.isoformat()}")
        state = self.replay_records(records)
        then = self.definition_version(records[-1].workflow, records[-1].workflow_version)
        return self._view(paper.reference, then, state, None, moment)

    def replay_records(self, records: list[AuditRecord]) -> PaperState:
        """Replay entries, each with the definition version it was recorded on (a migration switches)."""
        state: PaperState | None = None
        for record in records:
            state = apply(self.definition_version(record.workflow, record.workflow_version), state,
                          record.to_change())
        assert state is not None
        return state

    def migrate(self, workflow: str, to_version: int, mapping: Mapping[str, str], *, dry_run: bool = False,
                actor: str = "system") -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
        """Move running papers of ``workflow`` to ``to_version`` (the definitions folder's file).

        Returns (moved: reference, from state, to state) and (left untouched: reference, reason).
        """
        new, text = self.library.current(workflow)
        if new.version != to_version:
            raise InputError(f"the definitions folder has {workflow} version {new.version}, not {to_version}")
        now = self.clock.now()
        if not dry_run:
            self.store.remember_definition(new, text, now)
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
            except ValueError as exc:
                untouched.append((paper.reference, str(exc)))
                continue
            state = apply(new, paper.state, change)
            if not dry_run:
                # Another version may remind differently even where the due moment is the same:
                # every deadline ends and the new version's start afresh.
                ended = list(running_deadlines(old, paper.state))
                started = [plan(new, r, now, self.morning_hour) for r in running_deadlines(new, state).values()]
                self.store.migrate(paper, new, state, change, (ended, started))
            moved.append((paper.reference, paper.state.state, state.state))
        return moved, untouched

    def view(self, paper: StoredPaper) -> Status:
        """The status of a paper already loaded (lists need not read each one again)."""
        return self._view(paper.reference, self.definition_of(paper), paper.state, paper.version, None)

    def history(self, reference: str) -> list[AuditRecord]:
        return self.store.history(self.store.load(check_reference(reference)).reference)

    def _view(
        self, reference: str, definition: Definition, state: PaperState, version: int | None, as_of: datetime | None
    ) -> Status:
        spec = definition.states[state.state]
        body = definition.body_of(state.state)
        branches = tuple(
            BranchView(b.body, definition.bodies[b.body].name, b.status, b.meeting, b.result, b.deferrals)
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
        )
