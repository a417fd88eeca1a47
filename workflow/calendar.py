"""Working days: weekends, public holidays (the ``holidays`` package) and closed days. Pure."""

from __future__ import annotations

import threading
from calendar import monthrange
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .definition import Calendar, Offset
from .i18n import _

__all__ = ["WEEKEND", "WorkingCalendar", "add_months", "mail_window", "shift", "working_calendar"]

#: The reason :meth:`WorkingCalendar.closed_reason` gives for a Saturday or Sunday (a marker: never shown).
WEEKEND = "Wochenende"


class WorkingCalendar:
    """Answers whether a day is a working day and steps over working days."""

    def __init__(self, spec: Calendar) -> None:
        self.spec = spec
        self._holidays: Any = None
        if spec.holidays:
            import holidays

            country, _sep, subdiv = spec.holidays.partition("-")
            # German names where the calendar has them, for mails and listings.
            try:
                self._holidays = holidays.country_holidays(country, subdiv=subdiv or None, language="de")
            except (NotImplementedError, ValueError):  # pragma: no cover - validated at load
                self._holidays = holidays.country_holidays(country, subdiv=subdiv or None)
        self._closed = frozenset(spec.closed)

    def closed_reason(self, day: date) -> str | None:
        """Why ``day`` is no working day (weekend, holiday name, closed), or None if it is one."""
        if day.weekday() >= 5:
            return WEEKEND
        if self._holidays is not None and day in self._holidays:
            return str(self._holidays.get(day))
        if f"{day:%m-%d}" in self._closed or day.isoformat() in self._closed:
            return _("administration closed")
        return None

    def on_or_before(self, day: date) -> date:
        """``day`` if it is a working day, else the working day before it."""
        while not self.is_working_day(day):
            day -= timedelta(days=1)
        return day

    def on_or_after(self, day: date) -> date:
        """``day`` if it is a working day, else the working day after it."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when ``end`` is not later)."""
        count, current = 0, start
        while current < end:
            current += timedelta(days=1)
            count += self.is_working_day(current)
        return count

    def skipped(self, start: date, end: date) -> list[tuple[date, str]]:
        """The days from ``start`` (excluded) to ``end`` (included), forward or back, that are no working
        days, each with its reason (:meth:`closed_reason`), in calendar order: what :meth:`step` stepped over."""
        low, high = (start + timedelta(days=1), end) if end >= start else (end, start - timedelta(days=1))
        out: list[tuple[date, str]] = []
        day = low
        while day <= high:
            reason = self.closed_reason(day)
            if reason is not None:
                out.append((day, reason))
            day += timedelta(days=1)
        return out

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


def mail_window(moment: datetime, calendar: WorkingCalendar, zone: str, morning: int, evening: int) -> datetime:
    """The first instant at or after ``moment`` when mail may go out: a working day of ``calendar``, from
    the morning hour to the evening hour local time (the one rule of when mail goes out)."""
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    day = local.date()
    if calendar.is_working_day(day):
        if local.hour < morning:
            return datetime.combine(day, time(morning), tzinfo=tz).astimezone(UTC)
        if local.hour < evening:
            return moment
    day = calendar.on_or_after(day + timedelta(days=1))
    return datetime.combine(day, time(morning), tzinfo=tz).astimezone(UTC)


def shift(calendar: WorkingCalendar, day: date, offset: Offset, sign: int) -> date:
    """``day`` moved by ``offset`` (forward for sign 1, back for -1) in days, working days or months."""
    if offset.unit == "working_days":
        return calendar.step(day, sign * offset.amount)
    if offset.unit == "months":
        return add_months(day, sign * offset.amount)
    return day + timedelta(days=sign * offset.amount)


def add_months(day: date, months: int) -> date:
    """Calendar months, clamped to the month's end: 31.01. + 1 month = 28./29.02.; 26.01. + 1 = 26.02."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


_cache: dict[Calendar, WorkingCalendar] = {}
_lock = threading.Lock()


def working_calendar(spec: Calendar) -> WorkingCalendar:
    """One calendar per specification, shared (the holidays object caches its years)."""
    with _lock:
        found = _cache.get(spec)
        if found is None:
            found = _cache[spec] = WorkingCalendar(spec)
        return found
