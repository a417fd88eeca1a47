"""The one German rendering of what people read: dates and times, branch statuses and outcomes, and the
labels of the trail's entries (a trigger's label, the engine's own entries, states and bodies by name).

The CLI, the pages, the mails, the diagrams and the demo all use these functions (dates through
Babel's CLDR data for the long forms)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .definition import Definition, humanise
from .i18n import N_, _, current_language, ngettext

if TYPE_CHECKING:
    from .store import AuditRecord

__all__ = ["BRANCH_STATUS", "ENTRY_LABEL", "FIELD_LABEL", "MAIL_KIND", "OUTCOME", "EntryText", "body_label",
           "branch_status", "date_de", "date_short", "entry_label", "entry_text", "field_label", "file_size",
           "format_local", "note_text", "outcome", "signoff_status", "state_label"]

class Translated(Mapping[str, str]):
    """A table of messages marked with ``N_``: looking a key up gives its text in the language in effect then
    (``MAIL_KIND["remind"]`` reads "Erinnerung" in German, "reminder" in English); never translated at import."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self._table = dict(table)

    def __getitem__(self, key: str) -> str:
        return _(self._table[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


#: A branch's status in a parallel state.
BRANCH_STATUS = Translated({"open": N_("open"), "adopted": N_("adopted"), "rejected": N_("rejected"),
                            "not_needed": N_("no longer needed")})
#: The outcome a branch trigger records (and the automatic closing of a branch no longer needed).
OUTCOME = Translated({"adopted": N_("adopted"), "rejected": N_("rejected"), "deferred": N_("deferred"),
                      "not_needed": N_("no longer needed")})


#: The kinds of mail.
MAIL_KIND = Translated({"remind": N_("reminder"), "escalate": N_("escalation"),
                        "late": N_("notice (deadline passed on entering)"), "digest": N_("overview")})


#: The names of the fields the shipped definitions declare; any other field is shown humanised.
FIELD_LABEL = Translated({"title": N_("Title"), "department": N_("Department"), "public": N_("Public"),
                          "references": N_("References"), "haushaltsjahr": N_("Budget year"),
                          "beginn_haushaltsjahr": N_("Start of the budget year"),
                          "beschlossen_am": N_("Decided on"), "bekanntgemacht_am": N_("Published on"),
                          "fristverkuerzung": N_("Shortened period"), "meeting": N_("Meeting"),
                          "result": N_("Result")})


def field_label(name: str) -> str:
    """The German name of a field: known ones from :data:`FIELD_LABEL`, others humanised
    ("sitzung_am" reads "Sitzung am")."""
    return FIELD_LABEL.get(name) or humanise(name)


#: What a ``mail`` entry says became of the mail, and why a skipped one was not sent.
MAIL_OUTCOME = Translated({"sent": N_("{kind} sent to {recipients}"),
                           "failed": N_("{kind} undeliverable to {recipients}"),
                           "skipped": N_("{kind} not sent to {recipients}")})
MAIL_REASON = Translated({"deadline_ended": N_("the deadline ended before it was sent")})
#: The scopes of tokens.
TOKEN_SCOPE = Translated({"api": N_("API token"), "calendar": N_("calendar link")})


def note_text(kind: str, trigger: str, payload: Mapping[str, Any]) -> str:
    """A ``mail`` or ``admin`` entry of the trail as people read it: "Erinnerung gesendet an …", "Kalender-Link
    Nr. 3 für … erstellt", "Ablauf … Version 2 erstmals verwendet"."""
    if kind == "mail":
        to = ", ".join(str(r) for r in payload.get("recipients", ()))
        kind = MAIL_KIND.get(trigger) or str(payload.get("label") or trigger)  # a paper's mail: its label
        kind = kind[:1].upper() + kind[1:]
        sent = MAIL_OUTCOME.get(str(payload.get("outcome")), "{kind} ? {recipients}")
        text = sent.format(kind=kind, recipients=to)
        if payload.get("deadline_label"):
            text += _(" (deadline “{label}”)").format(label=payload["deadline_label"])
        if payload.get("outcome") == "failed" and payload.get("error"):
            text += f": {payload['error']}"
        if payload.get("reason"):
            text += f": {MAIL_REASON.get(str(payload['reason']), payload['reason'])}"
        return text
    if kind == "follow_up":
        text = _("Follow-up paper {child} created ({workflow}, no. {n})").format(
            child=payload.get("child"), workflow=payload.get("workflow"), n=payload.get("n"))
        if payload.get("on_behalf_of"):
            text += _(" on behalf of the role {role}").format(role=payload["on_behalf_of"])
        return text
    if trigger == "definition":
        return _("Workflow {workflow} version {version} first used (hash {hash}…)").format(
            workflow=payload.get("workflow"), version=payload.get("version"),
            hash=str(payload.get("definition_hash", ""))[:12])
    if trigger in ("token_create", "token_revoke"):
        scope = TOKEN_SCOPE.get(str(payload.get("scope")), str(payload.get("scope")))
        scope = scope[:1].upper() + scope[1:]
        done = (_("{scope} no. {id} for {email} created") if trigger == "token_create"
                else _("{scope} no. {id} for {email} revoked"))
        return done.format(scope=scope, id=payload.get("token_id"), email=payload.get("email"))
    return f"{kind} {trigger}"


def branch_status(status: str, hearings: bool = False) -> str:
    """The text of a branch status; in a hearing state (join: none) "adopted" reads "angehört"."""
    if hearings and status == "adopted":
        return _("heard")
    return BRANCH_STATUS.get(status, status)


def outcome(value: str, heard: bool = False) -> str:
    """The text of a recorded outcome ("angehört" for a hearing)."""
    if heard and value == "adopted":
        return _("heard")
    return OUTCOME.get(value, value)


def format_local(moment: datetime | None, zone: str, *, prose: bool = False) -> str:
    """An instant as German local date and time: "27.08.2020 17:00" in tables, "27.08.2020, 17:00" in
    running text (mails); a dash for none."""
    if moment is None:
        return "–"
    return moment.astimezone(ZoneInfo(zone)).strftime("%d.%m.%Y, %H:%M" if prose else "%d.%m.%Y %H:%M")


_WEEKDAY = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def date_short(moment: datetime, zone: str) -> str:
    """A local date with its weekday, short ("Do 20.08.2020"), for subjects and lists."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{_(_WEEKDAY[local.weekday()])} {local:%d.%m.%Y}"


def file_size(size: int) -> str:
    """A file's size for people: "830 Bytes", "12,3 kB", "1,2 MB" (decimal units; the language's decimal mark,
    from Babel's CLDR data)."""
    from babel.numbers import format_decimal

    if size < 1000:
        return ngettext("{count} byte", "{count} bytes", size).format(count=size)
    unit, scale = ("kB", 1e3) if size < 1e6 else ("MB", 1e6)
    locale = "de_DE" if current_language() == "de" else "en_GB"
    return f"{format_decimal(size / scale, format='#,##0.0', locale=locale)} {unit}"


def date_de(moment: datetime, zone: str, style: str = "full") -> str:
    """A local date in one of CLDR's German styles ("Donnerstag, 20. August 2020" for full)."""
    return _date_de(moment.astimezone(ZoneInfo(zone)).date(), style)


@lru_cache(maxsize=4096)
def _date_de(day: date, style: str) -> str:
    """Babel's formatting, once per day and style (a mail run formats the same few days again and again)."""
    from babel.dates import format_date

    return str(format_date(day, format=style, locale="de_DE"))


#: The labels of the entries the engine makes itself (not a trigger of the definition), by kind.
ENTRY_LABEL = Translated({
    "create": N_("Created"),
    "close": N_("Consultation no longer needed"),
    "migrate": N_("Moved to a new version of the workflow"),
    "done": N_("Deadline marked done"),
    "undone": N_("Done mark taken back"),
})
#: The labels of the Mitzeichnung's entries (kind ``signoff``), by what they did (their trigger).
SIGNOFF_LABEL = {"sign": N_("Signed off"), "refuse": N_("Sign-off refused"),
                 "withdraw": N_("Sign-off decision withdrawn"),
                 "void": N_("Sign-offs void: the paper was changed after they were given")}
#: A role's status in a state's Mitzeichnung (engine.SignoffView.status).
SIGNOFF_STATUS = {"open": N_("open"), "signed": N_("signed off"), "refused": N_("refused")}


def signoff_status(status: str) -> str:
    """A role's sign-off status as people read it ("mitgezeichnet", "abgelehnt", "offen")."""
    return _(SIGNOFF_STATUS[status]) if status in SIGNOFF_STATUS else status


#: The automatic move out of a parallel state: its join met, or no longer possible.
JOIN_LABEL = Translated({"success": N_("All bodies needed have agreed"),
                         "failure": N_("The agreement of the bodies needed can no longer be reached")})


def entry_label(definition: Definition | None, kind: str, trigger: str, payload: Mapping[str, Any]) -> str:
    """What people read for an entry of the trail: the trigger's label (or its id humanised), or the German
    text of an entry the engine made itself ("Angelegt", "Sitzungstermin festgelegt", …). The one place
    for the history, the audit page, the CLI and the CSV for Excel."""
    if kind in ("transition", "branch", "internal"):
        return definition.trigger_label(trigger) if definition is not None else humanise(trigger)
    if kind == "join":
        return JOIN_LABEL.get(str(payload.get("join", trigger.removeprefix("join_"))), humanise(trigger))
    if kind == "meeting":
        return _("Meeting date moved") if payload.get("previous") else _("Meeting date set")
    if kind in ("mail", "admin", "follow_up"):
        return note_text(kind, trigger, payload)
    if kind == "signoff":
        return _(SIGNOFF_LABEL[trigger]) if trigger in SIGNOFF_LABEL else humanise(trigger)
    return ENTRY_LABEL.get(kind) or humanise(trigger)


def state_label(definition: Definition | None, state: str | None) -> str:
    """A state's label in ``definition`` (its id if the definition does not know it); a dash for none."""
    if state is None:
        return "–"
    spec = definition.states.get(state) if definition is not None else None
    return spec.label if spec is not None else state


def body_label(definition: Definition | None, body: str | None) -> str:
    """A body's name in ``definition`` (its id if the definition does not know it); empty for none."""
    if not body:
        return ""
    spec = definition.bodies.get(body) if definition is not None else None
    return spec.name if spec is not None else body


@dataclass(frozen=True)
class EntryText:
    """An entry of the trail as people read it, ids replaced by labels."""

    label: str
    #: The label of the state left, or None when the entry stayed in its state.
    source: str | None
    target: str
    #: The name of the branch's (or the state's) body, or "".
    body: str
    #: Outcome, result, meeting date, reason, note …, each a short German phrase.
    details: tuple[str, ...]
    #: The meeting the entry set (or the branch's new meeting), as local date and time; "" for none.
    meeting: str = ""


def _signoff_details(trigger: str, p: Mapping[str, Any]) -> list[str]:
    """What a sign-off entry adds: the role (and whose decision was withdrawn), the fields whose change voided
    sign-offs and the people asked again."""
    out = []
    if p.get("role"):
        out.append(_("role {role}").format(role=p["role"]))
    if trigger == "withdraw" and p.get("of"):
        what = _("refusal") if p.get("decision") == "refused" else _("sign-off")
        out.append(_("{what} of {actor}").format(what=what, actor=p["of"]))
    if trigger == "void":
        out.append(_("roles {roles}").format(roles=", ".join(str(r) for r in p.get("roles", ()))))
        if p.get("changed"):
            out.append(_("changed: {fields}").format(fields=", ".join(field_label(str(f)) for f in p["changed"])))
        if p.get("signers"):
            out.append(_("asked again: {signers}").format(signers=", ".join(str(s) for s in p["signers"])))
    return out


def entry_text(record: AuditRecord, definition: Definition | None, zone: str) -> EntryText:
    """The labels and details of one entry; ``definition`` is the version the entry names."""
    from .values import stored_instant

    p = record.payload
    details: list[str] = []
    if "outcome" in p:
        source = definition.states.get(record.from_state or "") if definition is not None else None
        heard = source is not None and source.parallel is not None and source.parallel.join.none
        details.append(outcome(str(p["outcome"]), heard=heard))
    if p.get("result"):
        details.append(_("“{result}”").format(result=p["result"]))
    meeting = ""
    if p.get("meeting") and record.kind != "migrate":
        meeting = format_local(stored_instant(str(p["meeting"])), zone)
        details.append(_("meeting {date}").format(date=meeting))
    if record.kind == "join":
        details.append(_("{adopted} adopted, {rejected} rejected, {needed} needed").format(
            adopted=p.get("adopted", 0), rejected=p.get("rejected", 0), needed=p.get("needed", 0)))
    if record.kind == "migrate":
        details.append(_("version {old} → {new}").format(old=p.get("from_version"), new=p.get("to_version")))
    if record.kind in ("done", "undone") and p.get("deadline"):
        spec = next((d for d in definition.deadlines if d.name == p["deadline"]), None) if definition else None
        details.append(_("deadline “{label}”").format(label=spec.label if spec else p["deadline"]))
    if record.kind == "signoff":
        details.extend(_signoff_details(record.trigger, p))
    for meta in p.get("files") or ():
        if isinstance(meta, dict):
            details.append(_("attachment {name} (SHA-256 {digest})").format(name=meta.get("name"),
                                                                         digest=str(meta.get("sha256"))[:12] + "…"))
    if p.get("note"):
        details.append(_("note: {note}").format(note=p["note"]))
    if p.get("reason"):
        details.append(_("reason: {reason}").format(reason=p["reason"]))
    if record.kind in ("mail", "admin", "follow_up"):  # a note: what it says is its label; it moves no paper
        return EntryText(entry_label(definition, record.kind, record.trigger, p), None,
                         state_label(definition, record.to_state) if record.to_state else "",
                         body_label(definition, record.branch or record.body), ())
    moved = record.from_state is not None and record.from_state != record.to_state
    return EntryText(
        entry_label(definition, record.kind, record.trigger, p),
        state_label(definition, record.from_state) if moved else None,
        state_label(definition, record.to_state),
        body_label(definition, record.branch or record.body),
        tuple(details),
        meeting,
    )
