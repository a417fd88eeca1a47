"""The Prüfbericht: a printable, signable report of the audit entries in a scope, with the verify result of
the whole chain and the SHA-256 of the report's own content.

What is hashed (the *content*): the canonical JSON of the report, i.e. ``json.dumps(content,
ensure_ascii=False, sort_keys=True, separators=(",", ":"))`` encoded as UTF-8, with no trailing newline,
where ``content`` is::

    {"format": "councilflow-pruefbericht/1",
     "produced_by": "<auditor>", "produced_at": "<ISO 8601 UTC>", "timezone": "<zone of the local times>",
     "scope": {"references": [...], "workflow", "actor", "trigger", "body", "from", "to",   (ids or null)
               "since", "until" (ISO 8601 UTC or null), "up_to_seq": <the chain's head when reading began>},
     "entries": [<each entry in the documented JSON form of `history --json`, hashes included>],
     "verify": <`audit verify --json` of the whole chain>}

``audit report --format json`` writes exactly these bytes; the PDF carries them as its attachment
``pruefbericht.json`` and the HTML as its download link, so ``sha256sum`` of that file is the printed hash,
and each entry's ``hash`` can be compared with the chain (``audit query --format json``).

The entries are read in batches (the store's streaming query), the head is taken first so that entries
appended while reading are not half in the report, and a report holds at most :data:`MAX_ENTRIES` entries: a
larger scope is refused with the advice to narrow it (a period, a paper), so that a PDF stays printable.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .audit import VerifyReport, record_json
from .definition import Definition
from .errors import InputError, ToolMissingError, WorkflowError
from .german import entry_text, field_label, format_local
from .i18n import _
from .store import AuditRecord
from .values import user_instant

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["FORMATS", "MAX_ENTRIES", "WEB_MAX_ENTRIES", "Report", "ReportFormat", "build_report", "canonical",
           "check_out", "format_of", "render", "render_html", "render_template", "report_filename", "to_pdf",
           "write_report"]

#: The most entries one report holds (bench/bench_report.py: the PDF of 10,000 entries has 910 pages and takes
#: WeasyPrint about ten minutes and 2 GB on a busy 2-core machine). A larger scope is refused: narrow it by
#: period or paper, or use `audit query`/`export` for bulk.
MAX_ENTRIES = 10_000
#: The most entries of a report made on the web (about a minute's work): a request should not hold a worker
#: for ten minutes; larger reports are made with `councilflow audit report`.
WEB_MAX_ENTRIES = 1_000
FORMAT_ID = "councilflow-pruefbericht/1"

ReportFormat = Literal["pdf", "html", "json"]
FORMATS: tuple[ReportFormat, ...] = ("pdf", "html", "json")
_TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Row:
    """One entry as the report shows it: labels instead of ids where the definition has them."""

    record: AuditRecord
    what: str
    from_label: str
    to_label: str
    body_label: str
    details: str


@dataclass(frozen=True)
class Report:
    """A built report: scope in words, rows, the chain's verify result and the hashed content."""

    produced_by: str
    produced_at: datetime
    zone: str
    scope_lines: tuple[tuple[str, str], ...]
    period: str
    up_to_seq: int
    rows: tuple[Row, ...]
    verify: VerifyReport
    content: bytes
    content_hash: str


class _Labels:
    """Labels of the definition version each entry names (ids where there is none: entries of other kinds,
    without a paper, or of a version that cannot be read)."""

    def __init__(self, engine: Engine, zone: str) -> None:
        self.engine, self.zone = engine, zone
        self._cache: dict[tuple[str, int], Definition | None] = {}

    def definition(self, workflow: str, version: int) -> Definition | None:
        key = (workflow, version)
        if key not in self._cache:
            try:
                self._cache[key] = self.engine.definition_version(workflow, version) if workflow else None
            except WorkflowError:
                self._cache[key] = None
        return self._cache[key]

    def row(self, r: AuditRecord) -> Row:
        """The entry through the one German rendering of trail entries (:func:`workflow.german.entry_text`),
        plus the fields a create or step set."""
        d = self.definition(r.workflow, r.workflow_version)
        text = entry_text(r, d, d.timezone if d else self.zone)
        details = list(text.details)
        p = r.payload
        if isinstance(p.get("fields"), Mapping) and r.kind in ("create", "transition", "internal"):
            fields = ", ".join(f"{field_label(k)}={_short(v)}" for k, v in p["fields"].items() if k != "title")
            if fields:
                details.append(fields)
        return Row(r, text.label, text.source or "", text.target, text.body, "; ".join(details))


def _short(value: Any, limit: int = 120) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_report(engine: Engine, *, producer: str, zone: str, references: tuple[str, ...] = (),
                 workflow: str | None = None, actor: str | None = None, trigger: str | None = None,
                 body: str | None = None, from_state: str | None = None, to_state: str | None = None,
                 since: str | datetime | None = None, until: str | datetime | None = None,
                 limit: int = MAX_ENTRIES) -> Report:
    """The report of the entries matching the filters of ``audit query`` (several references: any of them),
    produced by ``producer`` at the engine's clock. Bad input is an InputError; more than ``limit`` entries
    too (with how to narrow the scope)."""
    from .paper import check_actor

    producer = check_actor(producer)
    start = user_instant(since, zone, "--since") if since not in (None, "") else None
    end = user_instant(until, zone, "--until") if until not in (None, "") else None
    if start and end and start > end:
        raise InputError(_("period: the start {start} lies after the end {end}").format(
            start=format_local(start, zone), end=format_local(end, zone)))
    # each reference as stored (an unknown paper is NotFoundError, not an empty report)
    refs = tuple(dict.fromkeys(engine.load(r.strip()).reference for r in references if r and r.strip()))
    named = engine.resolve_filters({"workflow": workflow, "body": body, "from_state": from_state,
                                    "to_state": to_state})
    filters: dict[str, Any] = {**named, "actor": actor.strip().lower() if actor and actor.strip() else None,
                               "trigger": trigger.strip() if trigger and trigger.strip() else None,
                               "since": start, "until": end}
    up_to, _head = engine.head()
    produced_at = engine.now()
    streams = [engine.audit(reference=r, **filters) for r in refs] if refs else [engine.audit(**filters)]
    records: Iterator[AuditRecord] = heapq.merge(*streams, key=lambda r: r.seq) if len(streams) > 1 \
        else streams[0]
    labels = _Labels(engine, zone)
    rows: list[Row] = []
    for r in records:
        if r.seq > up_to:
            break
        if len(rows) == limit:
            most, cli_most = f"{limit:,}".replace(",", "."), f"{MAX_ENTRIES:,}".replace(",", ".")
            other = (_("use `audit query --format csv`") if limit >= MAX_ENTRIES else
                     _("produce it with `councilflow audit report` (up to {most} entries)").format(most=cli_most))
            raise InputError(_("the scope has more than {most} entries; a Prüfbericht holds at most {most} here: "
                               "narrow the scope (period, paper) or {other}").format(most=most, other=other))
        rows.append(labels.row(r))
    verify = engine.verify()
    scope = {"references": list(refs), "workflow": filters.get("workflow"), "actor": filters["actor"],
             "trigger": filters["trigger"], "body": filters.get("body"), "from": filters.get("from_state"),
             "to": filters.get("to_state"), "since": start.isoformat() if start else None,
             "until": end.isoformat() if end else None, "up_to_seq": up_to}
    content = canonical({"format": FORMAT_ID, "produced_by": producer, "produced_at": produced_at.isoformat(),
                         "timezone": zone, "scope": scope, "entries": [record_json(row.record) for row in rows],
                         "verify": verify.to_json()})
    return Report(producer, produced_at, zone, _scope_lines(engine, scope), _period(start, end, rows, zone),
                  up_to, tuple(rows), verify, content, hashlib.sha256(content).hexdigest())


def canonical(content: Mapping[str, Any]) -> bytes:
    """The hashed bytes: sorted keys, no spaces, UTF-8, no trailing newline."""
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _scope_lines(engine: Engine, scope: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The filters in words, with the names the current definitions give them."""
    names = engine.filter_choices()

    def named(kind: str, value: str) -> str:
        label = names[kind].get(value)
        return f"{label} ({value})" if label and label != value else value

    lines: list[tuple[str, str]] = []
    if scope["references"]:
        lines.append((_("Paper") if len(scope["references"]) == 1 else _("Papers"), ", ".join(scope["references"])))
    for key, word, kind in (("workflow", _("Workflow"), "workflow"), ("body", _("Body"), "body"),
                            ("from", _("State before"), "state"), ("to", _("State after"), "state")):
        if scope[key]:
            lines.append((word, named(kind, scope[key])))
    if scope["actor"]:
        lines.append((_("Person"), scope["actor"]))
    if scope["trigger"]:
        lines.append((_("Step"), scope["trigger"]))
    if not lines:
        lines.append((_("Scope"), _("the whole audit trail")))
    return tuple(lines)


def _period(start: datetime | None, end: datetime | None, rows: list[Row], zone: str) -> str:
    asked = _("{start} to {end}").format(start=format_local(start, zone) if start else _("start of the audit trail"),
                                         end=format_local(end, zone) if end else _("production of the report"))
    if not rows:
        return _("{period}; no entries").format(period=asked)
    return _("{period}; entries from {first} to {last}").format(period=asked,
                                                               first=format_local(rows[0].record.at, zone),
                                                               last=format_local(rows[-1].record.at, zone))


def render_template(name: str, zone: str, **context: Any) -> str:
    """A printable report's template (workflow/templates) rendered to one self-contained HTML document; the
    filter ``local`` shows an instant in ``zone``. The Prüfbericht and the Bericht über offene Beschlüsse
    (workflow/decision_report.py) are made with it."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    from .i18n import install_jinja

    env = Environment(loader=FileSystemLoader(str(_TEMPLATES)), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["local"] = lambda m: format_local(m, zone)
    install_jinja(env)
    return env.get_template(name).render(**context)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document with a print stylesheet (A4, running header and
    footer, "Seite X von Y", the table header repeated on every page)."""
    return render_template("pruefbericht.html", report.zone, r=report,
                           attachment=base64.b64encode(report.content).decode("ascii"),
                           count=f"{len(report.rows):,}".replace(",", "."))


def to_pdf(html: str, attachments: tuple[tuple[str, bytes, str], ...] = ()) -> bytes:
    """An HTML document of :func:`render_template` as PDF through WeasyPrint, with ``attachments`` (file name,
    bytes, description)."""
    try:
        from weasyprint import HTML, Attachment
    except (ImportError, OSError) as exc:  # OSError: Debian's pango is missing
        raise ToolMissingError(_("PDF not possible: WeasyPrint or Debian's pango is missing ({detail}); `make "
                                 "system` installs them").format(detail=exc)) from None
    pdf: bytes = HTML(string=html, base_url=str(_TEMPLATES)).write_pdf(
        attachments=[Attachment(string=data, base_url=None, name=name, description=description)
                     for name, data, description in attachments])
    return pdf


def render(report: Report, fmt: ReportFormat) -> bytes:
    """The report's bytes in ``fmt``: the canonical content (json), HTML, or PDF through WeasyPrint."""
    if fmt == "json":
        return report.content
    html = render_html(report)
    if fmt == "html":
        return html.encode("utf-8")
    return to_pdf(html, (("pruefbericht.json", report.content, _("Content of the Prüfbericht (SHA-256 as printed)")),))


def report_filename(report: Report, reference: str, fmt: ReportFormat) -> str:
    """A download's name: ``pruefbericht-JJJJ-MM-TT-HHMM[-REFERENZ].pdf`` in local time, ASCII only."""
    import re
    from zoneinfo import ZoneInfo

    stamp = report.produced_at.astimezone(ZoneInfo(report.zone)).strftime("%Y-%m-%d-%H%M")
    ref = re.sub(r"[^A-Za-z0-9._-]+", "_", reference.strip())[:60].strip("._")
    return f"pruefbericht-{stamp}{'-' + ref if ref else ''}.{fmt}"


def format_of(out: str, fmt: str | None) -> ReportFormat:
    """The format named by ``--format`` or by the file's extension."""
    if fmt:
        if fmt not in FORMATS:
            raise InputError(_("--format {format}: allowed are pdf, html, json").format(format=repr(fmt)))
        return fmt
    suffix = Path(out).suffix.lower().lstrip(".")
    suffix = "html" if suffix == "htm" else suffix
    if suffix not in FORMATS:
        raise InputError(_("--out {out}: the extension must be .pdf, .html or .json (or give --format)").format(
            out=out))
    return suffix


def check_out(out: str) -> Path:
    """``out`` can be written: its folder exists and it is no folder itself, nor a device or pipe the written file
    would replace (checked before the work)."""
    if not out:
        raise InputError(_("--out names no file"))
    target = Path(out)
    if target.is_dir():
        raise InputError(_("--out {out}: is a folder, not a file").format(out=out))
    if not target.parent.is_dir():
        raise InputError(_("--out {out}: the folder {folder} does not exist").format(out=out, folder=target.parent))
    if target.exists() and not target.is_file():
        raise InputError(_("--out {out}: is no regular file (a device, a pipe); it would be replaced").format(out=out))
    if not os.access(target.parent, os.W_OK):
        raise InputError(_("--out {out}: the folder {folder} is not writable").format(out=out, folder=target.parent))
    return target


def write_report(data: bytes, out: str) -> Path:
    """Write ``data`` to ``out`` whole or not at all: a temporary file beside it, renamed at the end."""
    target = check_out(out)
    folder = target.parent
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(_("--out {out}: not writable ({detail})").format(out=out, detail=exc.strerror)) from None
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise InputError(_("--out {out}: not writable ({detail})").format(out=out, detail=exc.strerror)) from None
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target
