"""Parsing of user-supplied values: field values by type, ISO 8601 instants. Pure."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from .errors import InputError

__all__ = ["field_texts", "is_email", "parse_bool", "parse_datetime", "parse_field_value", "stored_instant", "to_utc",
           "user_instant"]

#: An e-mail address as councilflow accepts it everywhere (role members, body contacts, actors, tokens,
#: mail headers): a local part, "@", and a domain of dot-separated labels (letters, digits, hyphens; a
#: single label such as "intranet" or "localhost" is allowed: administrations run internal mail hosts);
#: no spaces, no control characters, no second "@".
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[\w-]+(\.[\w-]+)*\Z")

_TRUE = {"true", "ja", "yes", "1", "wahr"}
_FALSE = {"false", "nein", "no", "0", "falsch"}


def is_email(text: str) -> bool:
    """Whether ``text`` is an e-mail address (the one rule, see ``_EMAIL``)."""
    return bool(_EMAIL.match(text))


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"'{text}' is not a yes/no value (true/false, ja/nein)")


def to_utc(moment: datetime, zone: str) -> datetime:
    """Attach ``zone`` to a naive datetime, then convert to UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(UTC)


def parse_datetime(text: str, zone: str) -> datetime:
    """ISO 8601 date-time; without an offset it is local time of ``zone``. Returns UTC."""
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO 8601 date-time such as 2020-12-10T16:00") from None
    return to_utc(moment, zone)


def stored_instant(text: str) -> datetime:
    """An instant as entries and rows keep it (ISO 8601 with offset), in UTC."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def user_instant(value: str | datetime, zone: str, context: str) -> datetime:
    """A user's ISO 8601 text or datetime (local time of ``zone`` without an offset), in UTC: every
    instant is normalised where it enters; malformed text is an InputError naming ``context``."""
    if isinstance(value, datetime):
        return to_utc(value, zone)
    try:
        return parse_datetime(value, zone)
    except ValueError as exc:
        raise InputError(f"{context}: {exc}") from None


def field_texts(raw: Any, context: str) -> dict[str, str]:
    """Field values sent as JSON (web, API clients) as the text a user would type after ``--set``: lists
    joined with commas, numbers and booleans as text; anything else is an InputError naming ``context``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(f"{context} must be an object of field values")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
            out[str(key)] = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            out[str(key)] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[str(key)] = str(value)
        else:
            raise InputError(f"{context}: field '{key}' must be text, a number, true/false or a list of texts")
    return out


def parse_field_value(ftype: str, text: str, zone: str) -> Any:
    """Convert command-line text to a JSON-storable value of the field type."""
    if ftype == "text":
        return text
    if ftype == "bool":
        return parse_bool(text)
    if ftype == "int":
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"'{text}' is not a whole number") from None
    if ftype == "date":
        try:
            return date.fromisoformat(text.strip()).isoformat()
        except ValueError:
            raise ValueError(f"'{text}' is not a date such as 2020-08-04") from None
    if ftype == "datetime":
        return parse_datetime(text, zone).isoformat()
    if ftype == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    raise ValueError(f"unknown field type '{ftype}'")
