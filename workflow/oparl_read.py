"""Reading OParl 1.1 JSON as an OParl server returns it: single objects, lists, or paginated
``{"data": [...], "links": …}`` pages, in any number of files. Imported OParl is untrusted input: each
object is checked on its own, and a bad one becomes a one-line problem naming the file and object,
while the rest is read."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .i18n import _
from .values import to_utc

__all__ = ["OParlData", "ReadProblem", "parse_instant", "read_oparl"]

_KINDS = {"Paper": "papers", "Meeting": "meetings", "Organization": "organizations"}


@dataclass(frozen=True)
class ReadProblem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class OParlData:
    """The objects read, by id, and the problems of those that could not be used."""

    papers: dict[str, dict[str, Any]] = field(default_factory=dict)
    meetings: dict[str, dict[str, Any]] = field(default_factory=dict)
    organizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    agenda_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[ReadProblem] = field(default_factory=list)


def parse_instant(value: Any, where: str) -> datetime:
    """An OParl date-time; it must carry its offset (a bare local time is ambiguous)."""
    if not isinstance(value, str):
        raise ValueError(_("{what} must be a date-time string, not {kind}").format(what=where,
                                                                                   kind=type(value).__name__))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(_("{what} '{value}' is not an ISO 8601 date-time").format(what=where, value=value)) from None
    if moment.tzinfo is None:
        raise ValueError(_("{what} '{value}' has no time zone offset").format(what=where, value=value))
    try:
        return to_utc(moment, "UTC")
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _objects(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        yield from value
    elif isinstance(value, dict) and "data" in value and "type" not in value:
        data = value["data"]
        if not isinstance(data, list):
            raise ValueError(_("'data' of a list page must be a list"))
        yield from data
    else:
        yield value


def _check_str(obj: dict[str, Any], key: str, required: bool = False) -> None:
    if key not in obj:
        if required:
            raise ValueError(_("'{key}' is missing").format(key=key))
        return
    if not isinstance(obj[key], str) or not obj[key].strip():
        raise ValueError(_("'{key}' must be a non-empty string, not {value}").format(
            key=key, value=json.dumps(obj[key])[:40]))


def _check_list_of_str(obj: dict[str, Any], key: str) -> None:
    if key in obj and not (isinstance(obj[key], list) and all(isinstance(x, str) for x in obj[key])):
        raise ValueError(_("'{key}' must be a list of ids, not {value}").format(key=key,
                                                                                value=json.dumps(obj[key])[:40]))


def _check(kind: str, obj: dict[str, Any]) -> None:
    _check_str(obj, "id", required=True)
    if kind == "Paper":
        for key in ("reference", "name"):  # may be empty: the importer falls back to the id
            if key in obj and not isinstance(obj[key], str):
                raise ValueError(_("'{key}' must be a string, not {value}").format(key=key,
                                                                                   value=json.dumps(obj[key])[:40]))
        consultations = obj.get("consultation", [])
        if not isinstance(consultations, list):
            raise ValueError(_("'{key}' must be a list").format(key="consultation"))
        for n, c in enumerate(consultations):
            if not isinstance(c, dict):
                raise ValueError(_("consultation {number} must be an object").format(number=n + 1))
            _check_list_of_str(c, "organization")
            for key in ("meeting", "agendaItem", "role"):
                if key in c and c[key] is not None and not isinstance(c[key], str):
                    raise ValueError(_("consultation {number}: '{key}' must be a string").format(number=n + 1,
                                                                                                 key=key))
    elif kind == "Meeting":
        if "start" in obj:
            parse_instant(obj["start"], "'start'")
        _check_list_of_str(obj, "organization")
        items = obj.get("agendaItem", [])
        if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("id"), str)
                                                   for i in items):
            raise ValueError(_("'agendaItem' must be a list of objects with an id"))
    elif kind == "Organization":
        _check_str(obj, "name", required=True)


def read_oparl(paths: Iterable[Path]) -> OParlData:
    """Read every ``*.json`` file (or folder of them); collect usable objects and per-object problems."""
    data = OParlData()
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.glob("*.json")) if p.is_dir() else [p])
    for path in files:
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            data.problems.append(ReadProblem(str(path), _("cannot read: {reason}").format(reason=exc)))
            continue
        except json.JSONDecodeError as exc:
            data.problems.append(ReadProblem(f"{path}:{exc.lineno}:{exc.colno}",
                                             _("not JSON: {reason}").format(reason=exc.msg)))
            continue
        except RecursionError:
            data.problems.append(ReadProblem(str(path), _("not usable: nested too deeply")))
            continue
        except ValueError as exc:  # e.g. a number of more than 4,300 digits
            data.problems.append(ReadProblem(str(path), _("not usable: {reason}").format(
                reason=str(exc).splitlines()[0][:120])))
            continue
        try:
            objects = list(_objects(content))
        except ValueError as exc:
            data.problems.append(ReadProblem(str(path), str(exc)))
            continue
        for n, obj in enumerate(objects):
            where = _("{path} object {number}").format(path=path, number=n + 1)
            if not isinstance(obj, dict):
                data.problems.append(ReadProblem(where, _("expected an object, found {kind}").format(
                    kind=type(obj).__name__)))
                continue
            kind = str(obj.get("type", "")).rstrip("/").rsplit("/", 1)[-1]
            if kind not in _KINDS:
                if kind in ("System", "Body", "AgendaItem", "Consultation", "File", "Person", "Membership",
                            "LegislativeTerm", "Location"):
                    continue  # not needed for the import
                data.problems.append(ReadProblem(where, _("unknown or missing type {type}").format(
                    type=repr(obj.get("type")))))
                continue
            if isinstance(obj.get("id"), str):
                where = f"{path} {kind} {obj['id']}"
            try:
                _check(kind, obj)
            except ValueError as exc:
                data.problems.append(ReadProblem(where, str(exc)))
                continue
            getattr(data, _KINDS[kind])[obj["id"]] = obj
            if kind == "Meeting":
                for item in obj.get("agendaItem", []):
                    data.agenda_items[item["id"]] = {**item, "meeting": obj["id"]}
    return data
