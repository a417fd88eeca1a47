"""The simulated clock stepping through every moment a mail (or a recurring follow-up paper) falls due: one loop
for the demo, the dry run (`definitions simulate`) and the rehearsal on a real database (`tick --until`).

At each moment, in order, the clock is set to it, the day's digests are queued if it is the digest hour
(as `serve`'s daily job does) and :meth:`Dispatcher.tick` delivers what is due then, with that moment in
the Date header. A mail that may not go out at its moment (outside the mail window) is put back by the
dispatcher to the window's opening, which becomes a later moment of the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from workflow.clock import FixedClock
from workflow.errors import StorageError
from workflow.german import MAIL_KIND, format_local
from workflow.i18n import _
from workflow.store import ReminderRecord

from .dispatch import Dispatcher, TickReport

__all__ = ["deliver_until", "digest_moments", "mail_line"]

OnTick = Callable[[datetime, TickReport], None]


def digest_moments(start: datetime, until: datetime, hour: int, zone: str) -> list[datetime]:
    """The instants of the daily digest (``hour`` local time of ``zone``) from ``start`` to ``until``, both
    included."""
    tz = ZoneInfo(zone)
    day: date = start.astimezone(tz).date()
    out: list[datetime] = []
    while True:
        moment = datetime.combine(day, time(hour), tzinfo=tz)
        if moment > until:
            return out
        if moment >= start:
            out.append(moment)
        day += timedelta(days=1)


def deliver_until(dispatcher: Dispatcher, clock: FixedClock, until: datetime, *, digests: bool = False,
                  on_tick: OnTick | None = None) -> TickReport:
    """Step ``clock`` from its time through every moment a mail falls due up to ``until`` (included) and
    deliver what falls due at each, in order; with ``digests`` queue each working day's digests at the digest
    hour. ``on_tick`` hears every pass (its moment and report). The clock ends at ``until`` (never moved
    back); the returned report sums every pass."""
    outbox = dispatcher.outbox
    settings = dispatcher.settings
    total = TickReport()
    pending_digests = digest_moments(clock.now(), until, settings.digest_hour, settings.timezone) if digests else []
    stuck: tuple[int, datetime] | None = None
    stuck_follow_up: int | None = None
    while True:
        due = outbox.reminders(statuses=("pending", "claimed"), due_before=until, limit=1)
        mail_at = max(due[0].next_attempt_at, clock.now()) if due else None
        digest_at = pending_digests[0] if pending_digests else None
        owed = dispatcher.engine.store.due_follow_ups(until, limit=1)  # a recurring follow-up paper falls due
        follow_up_at = max(owed[0].due_at, clock.now()) if owed else None
        if mail_at is None and digest_at is None and follow_up_at is None:
            break
        moment = min(m for m in (mail_at, digest_at, follow_up_at) if m is not None)
        if due and moment == mail_at and digest_at != moment and follow_up_at != moment:
            # A row that one pass at its moment neither sent nor put back would be asked for forever.
            marker = (due[0].id, due[0].next_attempt_at)
            if marker == stuck:
                raise StorageError(_("mail {id} stays due at {moment} after a pass; stopped")
                                   .format(id=due[0].id, moment=moment.isoformat()))
            stuck = marker
        if owed and moment == follow_up_at:
            if owed[0].id == stuck_follow_up:
                raise StorageError(_("follow-up paper {reference} stays due at {moment} after a pass; stopped")
                                   .format(reference=owed[0].child, moment=moment.isoformat()))
            stuck_follow_up = owed[0].id
        clock.set(max(moment, clock.now()))
        queued = 0
        if digest_at == moment:
            pending_digests.pop(0)
            queued = dispatcher.queue_digests(moment)
        report = dispatcher.tick(moment)
        report.digests = queued
        _add(total, report)
        if on_tick is not None:
            on_tick(moment, report)
    if until > clock.now():
        clock.set(until)
    return total


def _add(total: TickReport, report: TickReport) -> None:
    total.claimed += report.claimed
    total.sent += report.sent
    total.retried += report.retried
    total.failed += report.failed
    total.fenced += report.fenced
    total.digests += report.digests
    total.deferred += report.deferred
    total.follow_ups += report.follow_ups
    total.errors.extend(report.errors)
    total.delivered.extend(report.delivered)


def mail_line(moment: datetime, mail: ReminderRecord, zone: str) -> str:
    """One delivered mail as the demo and `tick --until` print it."""
    kind = MAIL_KIND.get(mail.kind, mail.kind)
    what = f"{mail.reference} – {mail.label}" if mail.reference else mail.label
    return "   ✉ " + _("{when}  {kind} to {recipients}: {what}").format(
        when=format_local(moment, zone), kind=kind, recipients=", ".join(mail.recipients), what=what)
