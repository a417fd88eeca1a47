"""Working days: weekends, public holidays (the ``holidays`` package) and closed days. Pure."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

from .definition import Calendar

__all__ = ["WorkingCalendar", "working_calendar"]


class WorkingCalendar:
    """Answers whether a day is a working day and steps over working days."""

    def __init__(self, spec: Calendar) -> None:
        self.spec = spec
        self._holidays: Any = None
        if spec.holidays:
            import holidays

            country, _, subdiv = spec.holidays.partition("-")
            # German names where the calendar has them, for mails and listings.
            try:
                self._holidays = holidays.country_holidays(country, subdiv=subdiv or None, language="de")
            except (NotImplementedError, ValueError):  # pragma: no cover - validated at load
                self._holidays = holidays.country_holidays(country, subdiv=subdiv or None)
        self._closed = frozenset(spec.closed)

    def closed_reason(self, day: date) -> str | None:
        """Why ``day`` is no working day (weekend, holiday name, closed), or None if it is one."""
        if day.weekday() >= 5:
            return "Wochenende"
        if self._holidays is not None and day in self._holidays:
            return str(self._holidays.get(day))
        if f"{day:%m-%d}" in self._closed:
            return "Verwaltung geschlossen"
        return None

    def is_working_day(self, day: date) -> bool:
        return self.closed_reason(day) is None

    def step(self, day: date, count: int) -> date:
        """The day reached by stepping ``count`` working days from ``day`` (back if negative).

        ``day`` itself does not count, so 1 working day before a Monday meeting is the Friday before.
        """
        direction = timedelta(days=1 if count >= 0 else -1)
        remaining = abs(count)
        current = day
        while remaining:
            current += direction
            if self.is_working_day(current):
                remaining -= 1
        return current


_cache: dict[Calendar, WorkingCalendar] = {}
_lock = threading.Lock()


def working_calendar(spec: Calendar) -> WorkingCalendar:
    """One calendar per specification, shared (the holidays object caches its years)."""
    with _lock:
        found = _cache.get(spec)
        if found is None:
            found = _cache[spec] = WorkingCalendar(spec)
        return found
