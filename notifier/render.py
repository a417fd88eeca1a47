"""Sandboxed Jinja2 templates -> ``email.message.EmailMessage`` (text, HTML and an .ics part).

Templates come from process owners, so they are untrusted: they run in Jinja2's
``SandboxedEnvironment`` with ``StrictUndefined`` and are test-rendered when a definition is loaded
(:meth:`Renderer.check`), so a broken template is a load error with its file and line, not a
failure at 08:00. Every header value built from data is checked for line breaks, also inside
encoded words (CVE-2024-6923).
"""

from __future__ import annotations

import email.errors
import email.header
import email.policy
import hashlib
import re
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    Template,
    TemplateError,
    nodes,
    select_autoescape,
)
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from workflow.definition import Definition
from workflow.errors import DefinitionError, InputError, Problem
from workflow.german import date_de, date_short, format_local
from workflow.i18n import _, bind_jinja_language, current_language, install_jinja
from workflow.paper import PaperState
from workflow.store.records import DeadlineRecord
from workflow.values import hidden_break, is_email

__all__ = [
    "KINDS",
    "RenderedMail",
    "Renderer",
    "build_message",
    "calendar_uid",
    "check_header",
    "deadline_entries",
    "ics_sequence",
    "make_ics",
    "meeting_of",
    "parse_address",
]

#: Mail kind -> template base name; each has ``.subject.txt``, ``.txt`` and ``.html``.
KINDS = {"remind": "reminder", "escalate": "escalation", "late": "late", "digest": "digest",
         "signoff_void": "signoff_void"}
PARTS = ("subject.txt", "txt", "html")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def check_header(value: str, field: str) -> str:
    """Refuse a header value with a line break, literally or inside an encoded word."""
    if "\r" in value or "\n" in value:
        raise InputError(_("mail header {field}: line break in value {value}").format(field=field,
                                                                                      value=repr(value[:60])))
    try:
        return hidden_break(value, _("mail header {field}").format(field=field))
    except ValueError as exc:
        raise InputError(str(exc)) from None


def parse_address(raw: str, field: str = "To") -> Address:
    """One e-mail address (optionally ``Name <addr>``) as a checked ``Address``."""
    check_header(raw, field)
    name, _sep, rest = raw.rpartition("<")
    addr = rest.rstrip(">").strip() if rest.endswith(">") else raw.strip()
    display = name.strip().strip('"') if rest.endswith(">") else ""
    local, _at, domain = addr.rpartition("@")
    if not is_email(addr) or any(c in addr for c in ' ,;<>"()'):
        raise InputError(_("mail header {field}: {value} is not an e-mail address").format(field=field,
                                                                                           value=repr(raw)))
    try:
        return Address(display_name=display, username=local, domain=domain)
    except (ValueError, IndexError) as exc:
        raise InputError(_("mail header {field}: {value} is not an e-mail address ({reason})")
                         .format(field=field, value=repr(raw), reason=exc)) from None


#: The longest subject (RFC 5322 recommends lines of at most 78 characters).
MAX_SUBJECT = 78

#: Bounds of one rendering of a (process owner's) template: loop steps, size of what * builds, output,
#: and time. A mail needs a few hundred steps; beyond these bounds a template is refused with the reason.
MAX_STEPS = 100_000
MAX_SIZE = 1_000_000
MAX_SECONDS = 2.0


def subject_line(prefix: str, middle: str, suffix: str) -> str:
    """A subject of at most :data:`MAX_SUBJECT` characters: ``middle`` (a label or title) is shortened
    with "…" so that the reference in front and the date behind stay whole."""
    room = MAX_SUBJECT - len(prefix) - len(suffix)
    if len(middle) > room:
        middle = middle[:max(room - 1, 1)].rstrip() + "…"
    return prefix + middle + suffix


class _Budget:
    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > MAX_STEPS:
            raise SecurityError(_("the template takes more than {limit} loop steps")
                                .format(limit=f"{MAX_STEPS:,}".replace(",", ".")))
        if time.monotonic() > self.deadline:
            raise SecurityError(_("the template takes longer than {limit} s to render")
                                .format(limit=f"{MAX_SECONDS:g}"))


_budget: ContextVar[_Budget | None] = ContextVar("councilflow_template_budget", default=None)


class _BoundedSandbox(SandboxedEnvironment):
    """Jinja's sandbox (no attribute escapes) plus bounds on time, loop steps and sizes; with a ``language``,
    its templates are compiled for that language (their texts translated once, :func:`bind_jinja_language`)."""

    intercepted_binops = frozenset(["*", "**"])
    language: str | None = None

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        if self.language is not None:
            source = bind_jinja_language(source, self.language)
        return super()._generate(source, name, filename, defer_init=defer_init)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError(_("the template raises a number to a power above 64"))
        if operator == "*":
            size = (len(left) * right if isinstance(left, str | list | tuple) and isinstance(right, int) else
                    len(right) * left if isinstance(right, str | list | tuple) and isinstance(left, int) else 0)
            if size > MAX_SIZE:
                raise SecurityError(_("the template builds a value of more than {limit} items")
                                    .format(limit=f"{MAX_SIZE:,}".replace(",", ".")))
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget.get()
        if budget is not None:
            budget.step()
        return super().call(__context, __obj, *args, **kwargs)


def _bounded_range(*args: int) -> Any:
    """``range`` for templates: every step counts against the rendering's budget."""
    budget = _budget.get()
    for value in range(*args):
        if budget is not None:
            budget.step()
        yield value


class Renderer:
    """Renders the mails of one workflow: its own templates first, then the shipped ones. The shipped ones
    speak the language in effect when a mail is rendered (German unless ``--lang``/``LANG`` ask for English):
    their texts are marked ``{{ _("…") }}`` (Jinja2's i18n extension, domain "mail"); a process owner's own
    templates may use ``_`` too, or be written in one language as before. Each template is compiled once per
    language, with its texts translated then (:func:`~workflow.i18n.bind_jinja_language`)."""

    def __init__(self, zone: str = "Europe/Berlin", override: Path | None = None) -> None:
        self.zone = ZoneInfo(zone)
        self.override = override if override is not None and override.is_dir() else None
        loaders: list[Any] = [FileSystemLoader(str(self.override))] if self.override else []
        loaders.append(PackageLoader("notifier", "templates"))
        self.env = _BoundedSandbox(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            keep_trailing_newline=True,
            # Compiled once per process, as the definitions are loaded and checked once: a changed template
            # takes effect after a restart (no file check per mail and part).
            auto_reload=False,
        )
        # Per language in which mails were rendered: an environment whose templates are compiled for it, and
        # the compiled templates (the texts of a template are translated once, not at every mail).
        self._environments: dict[str, _BoundedSandbox] = {}
        self._templates: dict[tuple[str, str], Template] = {}
        self.env.globals["range"] = _bounded_range
        self.env.filters["date_de"] = self._date_de
        self.env.filters["date_short"] = self._date_short
        self.env.globals["subject_line"] = subject_line
        self.env.filters["datetime_de"] = self._datetime_de
        self.env.filters["ljust"] = _ljust
        install_jinja(self.env)

    def _date_de(self, moment: datetime, style: str = "full") -> str:
        return date_de(moment, self.zone.key, style)

    def _date_short(self, moment: datetime) -> str:
        """ "Do 20.08.2020": for subjects."""
        return date_short(moment, self.zone.key)

    def _datetime_de(self, moment: datetime) -> str:
        return format_local(moment, self.zone.key, prose=True)

    def render(self, kind: str, context: Mapping[str, Any]) -> RenderedMail:
        """Render the three parts of a mail of ``kind``; errors name the template file and line."""
        base = KINDS[kind]
        parts = [self._render(f"{base}.{part}", context) for part in PARTS]
        subject = " ".join(parts[0].split())  # one line, whatever the template's whitespace
        if len(subject) > MAX_SUBJECT:  # RFC 5322's line length: shortened, never cut mid-word silently
            subject = subject[:MAX_SUBJECT - 1].rstrip() + "…"
        return RenderedMail(subject, parts[1], parts[2])

    def _render(self, name: str, context: Mapping[str, Any]) -> str:
        language = current_language()
        try:
            template = self._templates.get((language, name))
            if template is None:
                template = self._templates[language, name] = self._environment(language).get_template(name)
        except TemplateSyntaxError as exc:
            raise DefinitionError([Problem(self._path(name), exc.lineno or 1, 1,
                                           _("template: {reason}").format(reason=exc.message))]) from None
        except TemplateError as exc:
            raise DefinitionError([Problem(self._path(name), 1, 1, _("template: {reason}").format(reason=exc))]) \
                from None
        token = _budget.set(_Budget())
        try:
            text = template.render(**context)
            if len(text) > MAX_SIZE:
                raise SecurityError(_("the template writes more than {limit} characters")
                                    .format(limit=f"{MAX_SIZE:,}".replace(",", ".")))
            return text
        except Exception as exc:  # untrusted template code can raise anything (1/0, range overflow, …)
            raise DefinitionError([Problem(self._path(name), _template_line(exc, template.filename), 1,
                                           _("template: {reason}").format(reason=f"{type(exc).__name__}: {exc}"))]) \
                from None
        finally:
            _budget.reset(token)

    def _environment(self, language: str) -> _BoundedSandbox:
        """The environment that compiles the templates for ``language`` (sharing filters, globals and loader)."""
        env = self._environments.get(language)
        if env is None:
            env = self._environments[language] = self.env.overlay()
            env.language = language
        return env

    def _path(self, name: str) -> str:
        if self.override is not None and (self.override / name).is_file():
            return str(self.override / name)
        return f"notifier/templates/{name}"

    def check(self, sample: Mapping[str, Mapping[str, Any]]) -> None:
        """Render every kind once with ``sample[kind]``; raise DefinitionError listing every problem."""
        problems: list[Problem] = []
        for kind in KINDS:
            for part in PARTS:
                try:
                    self._render(f"{KINDS[kind]}.{part}", sample[kind])
                except DefinitionError as exc:
                    problems.extend(exc.problems)
        if problems:
            raise DefinitionError(problems)


def _ljust(text: Any, width: int) -> str:
    """``text`` padded to ``width`` characters: the aligned labels of the plain-text mails ("Fällig:    …")."""
    return str(text).ljust(width)


def _template_line(exc: BaseException, filename: str | None) -> int:
    """The template line where a rendering error happened (Jinja2 maps its frames to template lines)."""
    line = 1
    for frame in traceback.extract_tb(exc.__traceback__):
        if filename and frame.filename == filename and frame.lineno:
            line = frame.lineno
    return line


def calendar_uid(kind: str, *parts: str) -> str:
    """A UID that stays the same for the same deadline (paper, deadline, branch) or meeting (paper, state,
    body) in every mail and feed, so calendars update the one entry instead of adding another."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
    return f"{kind}-{digest}@councilflow"


def ics_sequence(moment: datetime) -> int:
    """Minutes since 2020: a SEQUENCE that grows with every new start or move of an entry."""
    return max(0, int((moment.timestamp() - 1577836800) // 60))


def meeting_of(paper: PaperState, deadline: DeadlineRecord) -> datetime | None:
    """The meeting a deadline belongs to: its branch's, or the state's while the paper is in that state."""
    branch = paper.branches.get(deadline.branch) if deadline.branch else None
    if branch is not None:
        return branch.meeting
    return paper.meeting if deadline.state == paper.state else None


def deadline_entries(definition: Definition, deadline: DeadlineRecord, *, title: str, meeting: datetime | None,
                     modified: datetime, stamp: datetime) -> tuple[Any, Any | None]:
    """The calendar entries of a deadline, the same in every mail and in the calendar feed: the deadline as
    an all-day event on its due day with a reminder alarm, and its meeting (if set) with its end and place.
    Times in UTC, so no VTIMEZONE is needed.

    The deadline's UID is per paper, deadline and branch, its SEQUENCE the minute it started (it starts anew
    when it moves); the meeting's UID is per paper, state and body, its SEQUENCE the minute the paper was
    last changed (``modified``)."""
    from icalendar import Alarm, Event

    reference = deadline.reference
    spec = next((d for d in definition.deadlines if d.name == deadline.name), None)
    body = definition.bodies.get(deadline.body) if deadline.body else None
    summary = _("Deadline: {deadline} – {reference}").format(deadline=deadline.label, reference=reference)
    event = Event()
    event.add("uid", calendar_uid("frist", reference, deadline.name, deadline.branch))
    # Raised whenever the deadline started anew (it moved); the same in every mail of one run.
    event.add("sequence", ics_sequence(deadline.started_at))
    event.add("dtstamp", stamp.astimezone(UTC))
    due_day = deadline.due_at.astimezone(ZoneInfo(definition.timezone)).date()
    event.add("dtstart", due_day)
    event.add("dtend", due_day + timedelta(days=1))
    event.add("transp", "TRANSPARENT")
    event.add("summary", summary)
    event.add("description", _("{reference} “{title}”: {deadline}").format(reference=reference, title=title,
                                                                              deadline=deadline.label)
                             + (f"\n{spec.description}" if spec is not None and spec.description else ""))
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", summary)
    alarm.add("trigger", timedelta(hours=-15))  # 09:00 the day before
    event.add_component(alarm)
    if meeting is None:
        return event, None
    session = Event()
    session.add("uid", calendar_uid("sitzung", reference, deadline.state, deadline.body or ""))
    session.add("sequence", ics_sequence(modified))
    session.add("dtstamp", stamp.astimezone(UTC))
    session.add("dtstart", meeting.astimezone(UTC))
    session.add("dtend", meeting.astimezone(UTC) + timedelta(hours=body.meeting_hours if body else 2.0))
    session.add("summary", _("Meeting {body} – {reference}").format(body=body.name, reference=reference) if body
                else _("Meeting"))
    if body is not None and body.location:
        session.add("location", body.location)
    return event, session


def make_ics(events: Iterable[Any | None], *, name: str | None = None) -> bytes:
    """An iCalendar file (RFC 5545) of ``events`` (from :func:`deadline_entries`; None, a meeting not set, is
    left out); ``name``: the calendar's name for a subscribed feed, which clients refresh hourly."""
    from icalendar import Calendar

    cal = Calendar()
    cal.add("prodid", "-//councilflow//Fristen//DE")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    if name is not None:
        cal.add("x-wr-calname", name)
        cal.add("x-published-ttl", "PT1H")
        cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    for event in events:
        if event is not None:
            cal.add_component(event)
    data: bytes = cal.to_ical()
    return data


def header_message_id(stored: str, sender: str, recipient: str | None = None) -> str:
    """The Message-ID header of a stored mail: its stored key under the domain of ``sender`` (the
    installation's From), and, for one of several personal copies, the recipient's mark. The same stored
    mail always gives the same header, so a copy resent after a crash is recognised as the same mail."""
    local = stored.strip().strip("<>").rpartition("@")[0] or stored.strip("<> ")
    if recipient is not None:
        local += "." + hashlib.sha256(recipient.lower().encode("utf-8")).hexdigest()[:10]
    return f"<{local}@{parse_address(sender, 'From').domain.lower()}>"


class _HeaderClasses(HeaderRegistry):
    """The standard library's header registry, but each header class made once: ``HeaderRegistry`` builds a
    new class with ``type()`` on every header set or read, half the cost of building a mail. And a header
    recently parsed is not parsed again: every mail has the same ``Content-Type: text/plain; charset="utf-8"``,
    ``Content-Transfer-Encoding``, ``MIME-Version``, ``Content-Disposition``, ``Auto-Submitted`` … (header
    objects are read-only, and the email package itself shares them between messages)."""

    #: How many parsed headers are kept; when full, the store starts anew (unique values such as a Subject or a
    #: MIME boundary pass through it, the recurring ones are back after a mail).
    KEEP = 256

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}
        self._parsed: dict[tuple[str, str], BaseHeader] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        found = self._made.get(key)
        if found is None:
            found = self._made[key] = super().__getitem__(name)
        return found

    def __call__(self, name: str, value: Any) -> BaseHeader:
        if type(value) is not str:  # an Address, a list of them: parsed each time
            return super().__call__(name, value)
        key = (name, value)  # the name as written: a header object folds under its own name
        found = self._parsed.get(key)
        if found is None:
            if len(self._parsed) >= self.KEEP:
                self._parsed.clear()
            found = self._parsed[key] = super().__call__(name, value)
        return found


#: email.policy.SMTP (CRLF line ends, RFC 5322 headers) with the header classes made once.
SMTP_POLICY = email.policy.SMTP.clone(header_factory=_HeaderClasses())


def build_message(rendered: RenderedMail, *, sender: str, recipients: Sequence[str], message_id: str,
                  date: datetime, ics: bytes | None, headers: Mapping[str, str] | None = None) -> EmailMessage:
    """The mail, with every data-built header checked; refuses line breaks and bad addresses."""
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = parse_address(sender, "From")
    msg["To"] = [parse_address(r) for r in recipients]
    msg["Subject"] = check_header(rendered.subject, "Subject")
    msg["Message-ID"] = check_header(message_id, "Message-ID")
    msg["Date"] = format_datetime(date)
    msg["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        msg[name] = check_header(value, name)
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    if ics is not None:
        msg.add_attachment(ics.decode("utf-8"), subtype="calendar", filename="frist.ics",
                           params={"method": "PUBLISH"})
    return msg
