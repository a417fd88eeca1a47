"""The one German rendering of what people read: dates and times, branch statuses and outcomes.

The CLI, the pages, the mails, the diagrams and the demo all use these functions (dates through
Babel's CLDR data for the long forms)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["BRANCH_STATUS", "MAIL_KIND", "OUTCOME", "branch_status", "date_de", "date_short", "format_local",
           "note_text", "outcome"]

#: A branch's status in a parallel state.
BRANCH_STATUS = {"open": "offen", "adopted": "angenommen", "rejected": "abgelehnt", "not_needed": "nicht mehr nötig"}
#: The outcome a branch trigger records (and the automatic closing of a branch no longer needed).
OUTCOME = {"adopted": "angenommen", "rejected": "abgelehnt", "deferred": "vertagt", "not_needed": "nicht mehr nötig"}


#: The kinds of mail.
MAIL_KIND = {"remind": "Erinnerung", "escalate": "Eskalation", "late": "Hinweis (Frist bei Eintritt verstrichen)",
             "digest": "Übersicht"}


#: What a ``mail`` entry says became of the mail, and why a skipped one was not sent.
MAIL_OUTCOME = {"sent": "gesendet an", "failed": "nicht zustellbar an", "skipped": "nicht gesendet an"}
MAIL_REASON = {"deadline_ended": "die Frist endete, bevor sie versandt wurde"}
#: The scopes of tokens.
TOKEN_SCOPE = {"api": "API-Token", "calendar": "Kalender-Link"}


def note_text(kind: str, trigger: str, payload: Mapping[str, Any]) -> str:
    """A ``mail`` or ``admin`` entry of the trail as people read it: "Erinnerung gesendet an …", "Kalender-Link
    Nr. 3 für … erstellt", "Ablauf … Version 2 erstmals verwendet"."""
    if kind == "mail":
        to = ", ".join(str(r) for r in payload.get("recipients", ()))
        text = f"{MAIL_KIND.get(trigger, trigger)} {MAIL_OUTCOME.get(str(payload.get('outcome')), '?')} {to}"
        if payload.get("deadline_label"):
            text += f" (Frist „{payload['deadline_label']}“)"
        if payload.get("outcome") == "failed" and payload.get("error"):
            text += f": {payload['error']}"
        if payload.get("reason"):
            text += f": {MAIL_REASON.get(str(payload['reason']), payload['reason'])}"
        return text
    if trigger == "definition":
        return (f"Ablauf {payload.get('workflow')} Version {payload.get('version')} erstmals verwendet "
                f"(Hash {str(payload.get('definition_hash', ''))[:12]}…)")
    if trigger in ("token_create", "token_revoke"):
        scope = TOKEN_SCOPE.get(str(payload.get("scope")), str(payload.get("scope")))
        done = "erstellt" if trigger == "token_create" else "widerrufen"
        return f"{scope} Nr. {payload.get('token_id')} für {payload.get('email')} {done}"
    return f"{kind} {trigger}"


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
