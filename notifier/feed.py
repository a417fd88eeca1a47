"""A person's calendar feed (``GET /kalender/{secret}.ics``): the same entries as the mails' .ics
attachments (:func:`notifier.render.deadline_entries`: same UIDs, same SEQUENCE rule), so a calendar that
subscribed once follows every change: a moved meeting moves, a deadline marked done disappears."""

from __future__ import annotations

from typing import Any

from workflow.access import Person
from workflow.engine import Engine
from workflow.i18n import _

from .render import deadline_entries, make_ics, meeting_of

__all__ = ["personal_calendar"]


def personal_calendar(engine: Engine, email: str) -> bytes:
    """The calendar of ``email``: every running deadline they are notified of or would be escalated to, and
    the meetings those deadlines belong to (also when the deadline is marked done: the meeting still takes
    place)."""
    now = engine.now()
    entries: dict[str, Any] = {}
    for row in engine.involved_deadlines(Person(email), done=True):
        deadline = row.view.deadline
        event, meeting = deadline_entries(engine.definition_of(row.paper), deadline, title=row.view.title,
                                          meeting=meeting_of(row.paper.state, deadline),
                                          modified=row.paper.updated_at, stamp=now)
        if row.view.done is None:
            entries[str(event["uid"])] = event
        if meeting is not None:
            entries.setdefault(str(meeting["uid"]), meeting)
    return make_ics(entries.values(), name=_("councilflow: deadlines and meetings"))
