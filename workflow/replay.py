"""The one replay: a paper's entries folded into its states, each entry with the definition version it
was recorded on (a migration switches versions mid-trail). Status as of a day, the timeline, trail
verification, the OParl export and the web all read the past through this module."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .definition import Definition
from .errors import NotFoundError
from .i18n import _
from .paper import PaperState, apply
from .store.records import AuditRecord

__all__ = ["Replay", "Resolver", "Step", "replay_records", "steps"]

#: (workflow id, version) -> that stored definition version.
Resolver = Callable[[str, int], Definition]


@dataclass(frozen=True)
class Step:
    """One entry replayed: the definition it was recorded on, the state before and after it."""

    record: AuditRecord
    definition: Definition
    before: PaperState | None
    after: PaperState


class Replay:
    """Replays entries of any number of papers, interleaved as the trail has them."""

    def __init__(self, resolve: Resolver) -> None:
        self.resolve = resolve
        self.states: dict[str, PaperState] = {}

    def step(self, record: AuditRecord) -> Step:
        definition = self.resolve(record.workflow, record.workflow_version)
        before = self.states.get(record.reference)
        after = self.states[record.reference] = apply(definition, before, record.to_change())
        return Step(record, definition, before, after)


def steps(resolve: Resolver, records: Iterable[AuditRecord]) -> Iterator[Step]:
    """Each entry of one paper's trail that changed it, replayed in order (mail entries change nothing and
    are passed over: see :data:`~workflow.store.records.NOTE_KINDS`)."""
    replay = Replay(resolve)
    for record in records:
        if not record.is_note:
            yield replay.step(record)


def replay_records(resolve: Resolver, records: Iterable[AuditRecord]) -> PaperState:
    """The state a paper's entries lead to."""
    state: PaperState | None = None
    for step in steps(resolve, records):
        state = step.after
    if state is None:
        raise NotFoundError(_("no entries to replay"))
    return state
