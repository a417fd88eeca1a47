"""The Bericht über offene Beschlüsse: a body's Beschlusskontrolle (workflow/decisions.py, Engine.decisions_for)
as a table for the terminal, CSV, and a printable HTML document or PDF made with the Prüfbericht's machinery
(workflow/report.py: one template folder, one WeasyPrint call). A Sitzungsdienst puts it on the agenda of the
body's next meeting."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from .access import Person
from .decisions import LIGHTS
from .definition import Attachment
from .errors import InputError, ToolMissingError
from .german import date_de
from .i18n import N_, _, process_language, use_language
from .report import render_template, to_pdf
from .store.records import NewFile

if TYPE_CHECKING:
    from .engine import DecisionView, Engine

__all__ = ["ATTACH_MAX_ROWS", "COLUMNS", "FORMATS", "MAX_ROWS", "PUBLIC_READER", "WEB_MAX_ROWS", "DecisionReport",
           "DecisionsFormat", "attachment", "build", "cells", "csv_text", "light_word", "render", "render_html",
           "table_text"]

DecisionsFormat = Literal["table", "csv", "html", "pdf"]
FORMATS: tuple[DecisionsFormat, ...] = ("table", "csv", "html", "pdf")
#: The most rows of one report (a printable PDF; the CSV of the CLI has no limit), and of one made on the web.
MAX_ROWS = 5_000
WEB_MAX_ROWS = 1_000
#: The most rows of a report a follow-up attaches: WeasyPrint lays out some 60–120 rows a second, and the child is
#: created when its report is made (bench/bench_decisions.py --attach); a longer list is cut with a note.
ATTACH_MAX_ROWS = 500
#: The columns of every form of the report (translated where shown).
COLUMNS = (N_("Light"), N_("Paper"), N_("Title"), N_("Decided on"), N_("Result"), N_("Follow-up paper"),
           N_("Task"), N_("State"), N_("Responsible"), N_("Target date"))
#: What the status filter shows, for the report's heading.
_SHOWN = {"offen": N_("open follow-ups"), "verzoegert": N_("delayed follow-ups"), "erledigt": N_("finished follow-ups")}


@dataclass(frozen=True)
class DecisionReport:
    """The Beschlusskontrolle of one body as of ``produced_at``."""

    body: str
    body_name: str
    status: str
    warn_days: int
    produced_at: datetime
    zone: str
    rows: tuple[DecisionView, ...]
    #: Whether rows were left out (an attached report keeps the first :data:`ATTACH_MAX_ROWS`).
    truncated: bool = False

    @property
    def shown(self) -> str:
        return _(_SHOWN[self.status])

    @property
    def counts(self) -> dict[str, int]:
        """How many rows have each light (rot, gelb, gruen)."""
        return {key: sum(1 for r in self.rows if r.light == key) for key in LIGHTS}


def build(engine: Engine, who: Person, body: str, *, status: str | None = None, warn_days: int | None = None,
          zone: str = "Europe/Berlin", most: int = MAX_ROWS, now: datetime | None = None, truncate: bool = False
          ) -> DecisionReport:
    """The report of ``body`` (id or name) as ``who`` may read it at ``now`` (default: the engine's clock); more
    than ``most`` rows are refused (an InputError saying how to narrow it), or with ``truncate`` cut to ``most``."""
    from .decisions import DEFAULT_WARN_DAYS

    days = DEFAULT_WARN_DAYS if warn_days is None else warn_days
    wanted = engine.decision_status(status)
    moment = now or engine.now()
    rows = tuple(engine.decisions_for(who, body, status=wanted, warn_days=days, most=most, now=moment))
    body_id = engine.resolve_filters({"body": body})["body"]
    truncated = len(rows) > most
    if truncated and not truncate:
        raise InputError(_("{body}: more than {most} follow-up papers for one report; choose a status "
                           "(--status verzoegert) or take the csv form").format(body=body_id, most=most))
    return DecisionReport(body_id, engine.filter_choices()["body"].get(body_id, body_id), wanted, days, moment,
                          zone, rows[:most], truncated)


#: Who reads an attached report: nobody in particular, so it holds public papers only (it is read with the paper
#: it is attached to, on the agenda and in OParl).
PUBLIC_READER = Person("")
_MEDIA_TYPES = {"pdf": "application/pdf", "html": "text/html"}


def attachment(engine: Engine, spec: Attachment, zone: str, now: datetime) -> NewFile:
    """The Bericht über offene Beschlüsse an ``attach`` of a follow-up asks for, as it stands at ``now``: public
    papers only, the first :data:`ATTACH_MAX_ROWS` rows, in the installation's language (kept for later readers);
    HTML where WeasyPrint cannot make a PDF (the child is created all the same, its trail names the form)."""
    with use_language(process_language()):
        report = build(engine, PUBLIC_READER, spec.body, status=spec.status, warn_days=spec.warn_days, zone=zone,
                       now=now, most=ATTACH_MAX_ROWS, truncate=True)
        fmt: DecisionsFormat = "pdf" if spec.format == "pdf" else "html"
        try:
            content = render(report, fmt)
        except ToolMissingError:
            fmt = "html"
            content = render(report, fmt)
    scope = "" if report.status == "offen" else f"-{report.status}"
    day = now.astimezone(ZoneInfo(zone)).date().isoformat()
    return NewFile(f"beschlusskontrolle-{report.body}{scope}-{day}.{fmt}", _MEDIA_TYPES[fmt], content)


def _day(moment: datetime | None, zone: str) -> str:
    return "–" if moment is None else date_de(moment, zone, "medium")


def light_word(view: DecisionView) -> str:
    """The light in words: rot, gelb, grün, or erledigt for a finished follow-up."""
    return _(LIGHTS[view.light]) if view.light else _("done")


def cells(view: DecisionView, zone: str) -> list[str]:
    """A row's cells in the order of :data:`COLUMNS`."""
    return [light_word(view), view.reference, view.title, _day(view.decided_at, zone), view.result or "–",
            view.child, view.child_title, view.state_label, ", ".join(view.responsible) or "–",
            _day(view.target_at, zone)]


def table_text(report: DecisionReport) -> str:
    """The rows as an aligned table with a header line and a summary line."""
    header = [_(c) for c in COLUMNS]
    body = [cells(r, report.zone) for r in report.rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
             for line in [header, *body]]
    counts = report.counts
    lines.append(_("{body}: {count} {shown} (red {red}, yellow {yellow}, green {green})").format(
        body=report.body_name, count=len(report.rows), shown=report.shown, red=counts["rot"],
        yellow=counts["gelb"], green=counts["gruen"]))
    return "\n".join(lines) + "\n"


def csv_text(report: DecisionReport) -> str:
    """The rows as CSV (comma, a header line, dates TT.MM.JJJJ)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([_(c) for c in COLUMNS])
    writer.writerows(cells(r, report.zone) for r in report.rows)
    return out.getvalue()


def render_html(report: DecisionReport) -> str:
    """The Bericht über offene Beschlüsse as one HTML document with a print stylesheet."""
    rows: Sequence[tuple[str | None, list[str]]] = [(r.light, cells(r, report.zone)) for r in report.rows]
    return render_template("beschluesse.html", report.zone, r=report, rows=rows, columns=[_(c) for c in COLUMNS],
                           produced=_day(report.produced_at, report.zone))


def render(report: DecisionReport, fmt: DecisionsFormat) -> bytes:
    """The report's bytes in ``fmt``."""
    if fmt == "table":
        return table_text(report).encode("utf-8")
    if fmt == "csv":
        return csv_text(report).encode("utf-8")
    html = render_html(report)
    return html.encode("utf-8") if fmt == "html" else to_pdf(html)
