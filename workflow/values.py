"""Parsing of user-supplied values: field values by type, ISO 8601 instants. Pure."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from .errors import InputError
from .i18n import _

__all__ = ["MAX_TEXT", "clean_name", "clean_text", "field_texts", "hidden_break", "is_email", "list_entries",
           "list_text", "parse_bool", "parse_datetime", "parse_field_value", "stored_instant", "to_utc",
           "user_instant"]

#: An e-mail address as councilflow accepts it everywhere (role members, body contacts, actors, tokens,
#: mail headers): a local part, "@", and a domain of dot-separated labels (letters, digits, hyphens; a
#: single label such as "intranet" or "localhost" is allowed: administrations run internal mail hosts);
#: no spaces, no control characters, no second "@".
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[\w-]+(\.[\w-]+)*\Z")

#: The longest text a field may hold (a title of 20 MB would be served to every user and mailed).
MAX_TEXT = 10_000
#: Characters nobody can see or that reorder what is shown: controls (C0 but tab and newline, C1), soft
#: hyphen, zero-width and joiner characters, bidirectional overrides and isolates, the BOM, variation
#: selectors, and lone surrogates (which no database can store).
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
                     "\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
                     "\ud800-\udfff]")
#: In names (references, addresses) also tab, newline and no-break spaces: ``PUB-1`` is one paper.
_HIDDEN_IN_NAME = re.compile(f"{_HIDDEN.pattern}|[\t\n\u00a0\u2007\u202f]")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")

_TRUE = {"true", "ja", "yes", "1", "wahr"}
_FALSE = {"false", "nein", "no", "0", "falsch"}


def is_email(text: str) -> bool:
    """Whether ``text`` is an e-mail address (the one rule, see ``_EMAIL``)."""
    return bool(_EMAIL.match(text)) and not _HIDDEN_IN_NAME.search(text)


def clean_name(text: str, what: str, max_length: int = 120) -> str:
    """A name typed by a person (a reference): NFC, trimmed, 1 to ``max_length`` visible characters on one
    line; ValueError says what is wrong."""
    name = unicodedata.normalize("NFC", text.strip(" ")) if not _has_surrogate(text) else text
    if _HIDDEN_IN_NAME.search(name):
        raise ValueError(_("{what} {text} contains an invisible or control character (at position {position})")
                         .format(what=what, text=_shown(text),
                                 position=_HIDDEN_IN_NAME.search(name).start() + 1))  # type: ignore[union-attr]
    if not name or len(name) > max_length:
        raise ValueError(_("{what} {text} must be 1 to {most} characters").format(what=what, text=_shown(text),
                                                                                   most=max_length))
    return name


def clean_text(text: str, what: str, *, one_line: bool = False) -> str:
    """Text of a field: NFC, at most :data:`MAX_TEXT` characters, no hidden characters; ``one_line`` (a
    title, which also becomes a mail subject): no line break, also none hidden in an encoded word."""
    if _has_surrogate(text) or _HIDDEN.search(text):
        found = _HIDDEN.search(text)
        raise ValueError(_("{what} contains an invisible or control character (at position {position})")
                         .format(what=what, position=found.start() + 1 if found else 1))
    value = unicodedata.normalize("NFC", text)
    if len(value) > MAX_TEXT:
        raise ValueError(_("{what} has {count} characters; at most {most} are allowed").format(
            what=what, count=f"{len(value):,}".replace(",", "."), most=f"{MAX_TEXT:,}".replace(",", ".")))
    if one_line:
        if "\n" in value or "\r" in value:
            raise ValueError(_("{what} must be one line").format(what=what))
        hidden_break(value, what)
    return value


def hidden_break(value: str, what: str) -> str:
    """Refuse a value with an encoded word (``=?UTF-8?Q?=0A?=``) that a mail program would turn into a line
    break, or that cannot be decoded: such a value could never go into a mail header."""
    import email.errors
    import email.header

    for word in _ENCODED_WORD.findall(value):
        try:
            decoded = str(email.header.make_header(email.header.decode_header(word)))
        except (UnicodeDecodeError, LookupError, email.errors.HeaderParseError):
            raise ValueError(_("{what}: undecodable encoded word {word}").format(what=what, word=repr(word[:60]))) \
                from None
        if "\r" in decoded or "\n" in decoded:
            raise ValueError(_("{what}: encoded word {word} hides a line break").format(what=what,
                                                                                        word=repr(word[:60])))
    return value


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def _shown(text: str) -> str:
    """A value quoted for a message, hidden characters escaped, long ones cut."""
    return ascii(text[:60] + ("…" if len(text) > 60 else ""))


def parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(_("'{text}' is not a yes/no value (true/false, ja/nein)").format(text=text))


#: The years an instant of council business may lie in; outside them a date is a typing error (and the
#: deadline arithmetic would leave the calendar).
YEARS = (1900, 2199)


def _outside(moment: datetime) -> str:
    return _("{moment} lies outside the years {first} to {last}").format(moment=moment.isoformat(), first=YEARS[0],
                                                                       last=YEARS[1])


def to_utc(moment: datetime, zone: str) -> datetime:
    """Attach ``zone`` to a naive datetime, then convert to UTC; ValueError outside :data:`YEARS`."""
    if not YEARS[0] <= moment.year <= YEARS[1]:
        raise ValueError(_outside(moment))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(_outside(moment)) from None


def parse_datetime(text: str, zone: str) -> datetime:
    """ISO 8601 date-time; without an offset it is local time of ``zone``. Returns UTC."""
    raw = text.strip()
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(_("'{text}' is not an ISO 8601 date-time such as 2020-12-10T16:00").format(text=text)) \
            from None
    return to_utc(moment, zone)


def stored_instant(text: str) -> datetime:
    """An instant as entries and rows keep it (ISO 8601 with offset), in UTC."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def user_instant(value: str | datetime, zone: str, context: str) -> datetime:
    """A user's ISO 8601 text or datetime (local time of ``zone`` without an offset), in UTC: every
    instant is normalised where it enters; malformed text is an InputError naming ``context``."""
    try:
        return to_utc(value, zone) if isinstance(value, datetime) else parse_datetime(value, zone)
    except ValueError as exc:
        raise InputError(_("{context}: {problem}").format(context=context, problem=exc)) from None


def list_entries(text: str) -> list[str]:
    """The entries of a list field given as text (``--set``, and what every front end sends on): with a line
    break in it, one entry per line, a comma belonging to its entry; on one line, entries separated by
    commas (``SV-9-1334, SV-9-1390``). Entries are trimmed, empty ones left out."""
    parts = text.splitlines() if "\n" in text or "\r" in text else text.split(",")
    return [part.strip() for part in parts if part.strip()]


def list_text(entries: Iterable[str]) -> str:
    """The text :func:`list_entries` reads back as exactly ``entries``: one a line, with a line break at the
    end, so that a single entry with a comma stays one; ValueError for an entry with a line break."""
    out = []
    for entry in entries:
        if "\n" in entry or "\r" in entry:
            raise ValueError(_("a list entry must be one line, not {entry}").format(entry=_shown(entry)))
        out.append(entry + "\n")
    return "".join(out)


def field_texts(raw: Any, context: str) -> dict[str, str]:
    """Field values sent as JSON (web, API clients) as the text a user would type after ``--set``: lists as
    :func:`list_text` (each item one entry, as given), numbers and booleans as text, null as not given;
    anything else is an InputError naming ``context``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(_("{context} must be an object of field values").format(context=context))
    out: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
            try:
                out[str(key)] = list_text(str(v) for v in value)
            except ValueError as exc:
                raise InputError(_("{context}: field '{key}': {problem}").format(context=context, key=key,
                                                                                 problem=exc)) from None
        elif isinstance(value, bool):
            out[str(key)] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[str(key)] = str(value)
        else:
            raise InputError(_("{context}: field '{key}' must be text, a number, true/false or a list of texts")
                             .format(context=context, key=key))
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
            raise ValueError(_("'{text}' is not a whole number").format(text=text)) from None
    if ftype == "date":
        try:
            return date.fromisoformat(text.strip()).isoformat()
        except ValueError:
            raise ValueError(_("'{text}' is not a date such as 2020-08-04").format(text=text)) from None
    if ftype == "datetime":
        return parse_datetime(text, zone).isoformat()
    if ftype == "list":
        return list_entries(text)
    raise ValueError(_("unknown field type '{type}'").format(type=ftype))
