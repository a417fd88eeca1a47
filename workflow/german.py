"""The one German rendering of what people read: dates and times, branch statuses and outcomes.

The CLI, the pages, the mails, the diagrams and the demo all use these functions (dates through
Babel's CLDR data for the long forms)."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["BRANCH_STATUS", "ENTRY_KIND", "MAIL_KIND", "OUTCOME", "branch_status", "date_de", "date_short",
           "format_local", "outcome"]

#: A branch's status in a parallel state.
BRANCH_STATUS = {"open": "offen", "adopted": "angenommen", "rejected": "abgelehnt", "not_needed": "nicht mehr nötig"}
#: The outcome a branch trigger records (and the automatic closing of a branch no longer needed).
OUTCOME = {"adopted": "angenommen", "rejected": "abgelehnt", "deferred": "vertagt", "not_needed": "nicht mehr nötig"}


#: The kinds of mail.
MAIL_KIND = {"remind": "Erinnerung", "escalate": "Eskalation", "late": "Hinweis (Frist bei Eintritt verstrichen)",
             "digest": "Übersicht"}

#: The kinds of audit entry, as the Prüfbericht names them (other kinds are shown by their id).
ENTRY_KIND = {"create": "Angelegt", "transition": "Schritt", "branch": "Entscheidung im Gremium",
              "meeting": "Sitzungstermin", "close": "Gremium nicht mehr nötig", "join": "Zusammenführung",
              "migrate": "Neue Ablaufversion", "internal": "Vermerk", "done": "Frist erledigt",
              "undone": "Erledigung zurückgenommen"}


def branch_status(status: str, hearings: bool = False) -> str:
    """German text of a branch status; in a hearing state (join: none) "adopted" reads "angehört"."""
    if hearings and status == "adopted":
        return "angehört"
    return BRANCH_STATUS.get(status, status)


def outcome(value: str, heard: bool = False) -> str:
    """German text of a recorded outcome ("angehört" for a hearing)."""
    if heard and value == "adopted":
        return "angehört"
    return OUTCOME.get(value, value)


def format_local(moment: datetime | None, zone: str, *, prose: bool = False) -> str:
    """An instant as German local date and time: "27.08.2020 17:00" in tables, "27.08.2020, 17:00" in
    running text (mails); a dash for none."""
    if moment is None:
        return "–"
    return moment.astimezone(ZoneInfo(zone)).strftime("%d.%m.%Y, %H:%M" if prose else "%d.%m.%Y %H:%M")


_WEEKDAY = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")


def date_short(moment: datetime, zone: str) -> str:
    """A local date with its weekday, short ("Do 20.08.2020"), for subjects and lists."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{_WEEKDAY[local.weekday()]} {local:%d.%m.%Y}"


def date_de(moment: datetime, zone: str, style: str = "full") -> str:
    """A local date in one of CLDR's German styles ("Donnerstag, 20. August 2020" for full)."""
    return _date_de(moment.astimezone(ZoneInfo(zone)).date(), style)


@lru_cache(maxsize=4096)
def _date_de(day: date, style: str) -> str:
    """Babel's formatting, once per day and style (a mail run formats the same few days again and again)."""
    from babel.dates import format_date

    return str(format_date(day, format=style, locale="de_DE"))
