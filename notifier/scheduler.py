"""The only module that imports APScheduler: it ticks, it holds no reminders.

Reminders live in our tables. APScheduler 3.x runs an interval job that calls
:meth:`Dispatcher.tick` and a daily cron job that queues digests, both in a memory job store of this
process (never a shared job store: agronholm/apscheduler#231, #766). ``coalesce`` folds missed runs
into one and ``misfire_grace_time=None`` runs a late tick however late, so nothing is dropped; the
first tick and a missed digest run at start, which is how downtime is caught up.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from workflow.config import Settings
from workflow.i18n import _

from .dispatch import Dispatcher

__all__ = ["serve"]

log = logging.getLogger("councilflow.serve")


def serve(dispatcher: Dispatcher, settings: Settings, *, echo: Callable[[str], None] = print,
          ready: threading.Event | None = None) -> None:
    """Run until SIGTERM or SIGINT; a running tick finishes before the process exits."""
    zone = ZoneInfo(settings.timezone)
    scheduler = BlockingScheduler(timezone=zone, executors={"default": ThreadPoolExecutor(1)})
    lock = threading.Lock()  # a tick and a digest never overlap

    def tick() -> None:
        with lock:
            report = dispatcher.tick()
            if report.claimed or report.errors:
                echo(report.line())
            for error in report.errors:
                echo(f"  {error}")

    def digest() -> None:
        with lock:
            queued = dispatcher.queue_digests()
        if queued:
            echo(_("digest: {count} queued").format(count=queued))
        tick()

    now = datetime.now(zone)
    job_defaults = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}
    scheduler.add_job(tick, IntervalTrigger(seconds=settings.tick_seconds, timezone=zone), id="tick",
                      next_run_time=now, **job_defaults)
    scheduler.add_job(digest, CronTrigger(hour=settings.digest_hour, minute=0, timezone=zone), id="digest",
                      **job_defaults)
    if now.hour >= settings.digest_hour:
        # Started after today's digest hour: queue it now (idempotent per person and day).
        scheduler.add_job(digest, "date", run_date=now + timedelta(seconds=1), id="digest-catch-up")

    def stop(signum: int, _frame: FrameType | None) -> None:
        echo(_("serve: {signal} received, stopping after the running tick").format(signal=signal.Signals(signum).name))
        # wait=True: the executor finishes the running tick (its row is completed or left claimed
        # under its lease) before start() returns.
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    echo(_("serve: ticking every {seconds} s, digest daily at {hour}:00, mail via {transport}").format(
        seconds=settings.tick_seconds, hour=f"{settings.digest_hour:02d}", transport=dispatcher.transport.name))
    if ready is not None:
        ready.set()
    scheduler.start()
    with lock:  # a digest or tick that is still finishing its output
        pass
    echo(_("serve: stopped"))
