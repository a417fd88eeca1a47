"""Follow-up papers (``follow_up``): which papers a paper owes in another workflow, and when. Pure: no I/O.

A follow-up starts when its paper enters the state ``when`` (the first time: a paper owes each child once).
A once or ``for_each`` follow-up owes its children at that moment; a recurring one (``every``) owes child n at
the entering moment moved n times by ``every`` (the local wall-clock time kept), ``count`` times, or while
that day is not after the date field ``until``; the series ends when the paper leaves ``when``. The engine
creates an owed child in one transaction with the parent's ``follow_up`` entry; the store creates each
exactly once.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from .access import is_public
from .calendar import add_months, shift, working_calendar
from .definition import Definition, FollowUp, Offset
from .i18n import _
from .paper import PaperState, field_instant
from .values import list_entries, list_text

__all__ = ["FIXED_PLACEHOLDERS", "Owed", "by_name", "child_values", "due_at", "entered", "next_owed", "owed_at_entry",
           "placeholders", "render", "render_list", "still_owed"]

#: Placeholders every template may use besides the parent's fields; ``item`` only with ``for_each``.
FIXED_PLACEHOLDERS = ("reference", "n", "item", "result")


@dataclass(frozen=True)
class Owed:
    """A child a paper owes: follow-up ``name``, its number ``n`` (1, 2, …), its reference, workflow and the
    moment it is due; ``anchor_at``: when the paper entered ``when`` (a series counts from it); ``item`` is the
    list entry of a ``for_each`` child."""

    name: str
    n: int
    reference: str
    workflow: str
    due_at: datetime
    anchor_at: datetime
    item: str | None = None


def placeholders(template: str) -> list[str]:
    """The names a template uses ("{reference}-SB{n}" → reference, n); ValueError for a malformed one (an
    unclosed brace, a format spec, an index or attribute)."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        raise ValueError(_("a brace is not closed: write {{NAME}}, and a literal brace twice ({{{{ or }}}})")) from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(_("'{placeholder}' is no placeholder: write {{NAME}} with a field name, reference, n "
                               "or item; a literal brace twice ({{{{ or }}}})").format(placeholder=shown))
        names.append(name)
    return names


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def render(template: str, values: Mapping[str, Any]) -> str:
    """The template with its placeholders replaced (lists joined with commas, unset fields empty)."""
    out = []
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            out.append(_text(values.get(name)))
    return "".join(out)


def render_list(template: str, values: Mapping[str, Any]) -> str:
    """The template of a list field as the text of its entries (:func:`~workflow.values.list_text`): the
    template's own entries (:func:`~workflow.values.list_entries`: commas, or one a line) each rendered
    whole, so ``{item}`` or a reference with a comma stays one entry; an entry that is just a list placeholder
    gives that list's entries."""
    rendered: list[str] = []
    for part in list_entries(template):
        parsed = list(string.Formatter().parse(part))
        whole = parsed[0][1] if len(parsed) == 1 and not parsed[0][0] else None
        if whole is not None and isinstance(values.get(whole), list):
            rendered += [_text(v) for v in values[whole]]
        else:
            rendered.append(render(part, values))
    # an entry is one line: a text field's line breaks become spaces
    return list_text(entry for text in rendered if (entry := " ".join(text.split())))


def _values(reference: str, paper: PaperState, n: int, item: str | None) -> dict[str, Any]:
    return {**paper.fields, "reference": reference, "n": n, "item": item, "result": paper.result}


def entered(follow_up: FollowUp, before: PaperState | None, after: PaperState) -> bool:
    """Whether a change moved the paper into the follow-up's state ``when`` (a creation into it included)."""
    if after.state != follow_up.when:
        return False
    return before is None or before.state != after.state or before.entered_at != after.entered_at


def _shifted(definition: Definition, anchor: datetime, offset: Offset, times: int) -> datetime:
    """``anchor`` moved ``times`` times by ``offset`` in the workflow's calendar, the local time of day kept
    (months are counted from the anchor, so the 31st stays the last day of shorter months)."""
    zone = ZoneInfo(definition.timezone)
    local = anchor.astimezone(zone)
    if offset.unit == "months":
        day = add_months(local.date(), offset.amount * times)
    else:
        day = shift(working_calendar(definition.calendar), local.date(), Offset(offset.unit, offset.amount * times),
                    1)
    return datetime.combine(day, time(local.hour, local.minute, local.second), tzinfo=zone).astimezone(UTC)


def due_at(definition: Definition, follow_up: FollowUp, entered_at: datetime, n: int) -> datetime:
    """When child ``n`` of a follow-up is due: at the entering for a once or ``for_each`` one, else ``n`` times
    ``every`` after it."""
    if follow_up.every is None:
        return entered_at
    return _shifted(definition, entered_at, follow_up.every, n)


def still_owed(definition: Definition, follow_up: FollowUp, paper: PaperState, n: int, due: datetime) -> bool:
    """Whether child ``n`` (due at ``due``) of a recurring follow-up is still owed by ``paper`` now: the paper
    is in ``when``, ``n`` is within ``count``, and its due day is not after the date field ``until`` (an unset
    field ends the series)."""
    if paper.state != follow_up.when:
        return False
    if follow_up.count is not None:
        return n <= follow_up.count
    if follow_up.until is not None:
        limit = field_instant(definition, paper.fields, follow_up.until)
        if limit is None:
            return False
        zone = ZoneInfo(definition.timezone)
        return due.astimezone(zone).date() <= limit.astimezone(zone).date()
    return n == 1


def _owed(definition: Definition, follow_up: FollowUp, reference: str, paper: PaperState, n: int, anchor: datetime,
          item: str | None = None) -> Owed:
    due = due_at(definition, follow_up, anchor, n)
    child = render(follow_up.reference, _values(reference, paper, n, item))
    return Owed(follow_up.name, n, child, follow_up.workflow, due, anchor, item)


def owed_at_entry(definition: Definition, reference: str, before: PaperState | None, after: PaperState
                  ) -> list[Owed]:
    """The children a change owes: for each follow-up whose state ``when`` it entered, the once child, one per
    item of ``for_each``, or the first of a recurring series (if it is owed at all)."""
    out: list[Owed] = []
    for f in definition.follow_ups:
        if not entered(f, before, after):
            continue
        if f.for_each is not None:
            items = after.fields.get(f.for_each) or []
            out += [_owed(definition, f, reference, after, n, after.entered_at, str(item))
                    for n, item in enumerate(items, 1)]
        elif f.every is None:
            out.append(_owed(definition, f, reference, after, 1, after.entered_at))
        else:
            first = _owed(definition, f, reference, after, 1, after.entered_at)
            if still_owed(definition, f, after, 1, first.due_at):
                out.append(first)
    return out


def next_owed(definition: Definition, follow_up: FollowUp, reference: str, paper: PaperState, n: int,
              anchor: datetime) -> Owed | None:
    """The child after child ``n`` of a recurring series counted from ``anchor``, if the paper still owes it."""
    if follow_up.every is None:
        return None
    following = _owed(definition, follow_up, reference, paper, n + 1, anchor)
    return following if still_owed(definition, follow_up, paper, n + 1, following.due_at) else None


def child_values(follow_up: FollowUp, child: Definition, reference: str, paper: PaperState, owed: Owed
                 ) -> dict[str, str]:
    """The child's field values as text (what a person would type after ``--set``): the rendered ``fields``,
    empty ones left out; the child's list field ``references`` names the parent unless ``fields`` sets it; the
    child of a paper that is not public is not public either (its bool field ``public``) unless ``fields`` sets
    it: the child's fields come from the parent's."""
    values = _values(reference, paper, owed.n, owed.item)
    out = {name: text for name, template in follow_up.fields.items()
           if (text := (render_list(template, values) if name in child.fields and child.fields[name].type == "list"
                        else render(template, values).strip()))}
    spec = child.fields.get("references")
    if spec is not None and spec.type == "list" and "references" not in follow_up.fields:
        out["references"] = list_text([reference])
    public = child.fields.get("public")
    if public is not None and public.type == "bool" and "public" not in follow_up.fields and not is_public(paper):
        out["public"] = "false"
    return out


def by_name(definition: Definition) -> dict[str, FollowUp]:
    """The definition's follow-ups by name."""
    return {f.name: f for f in definition.follow_ups}
