"""The definition language as data: every mapping, its keys, their value types and a German description.

The loader (:mod:`workflow.loader`) takes the required and optional keys of each mapping from here, and
:func:`definition_schema` turns the same model into the JSON Schema (draft 2020-12) that editors use
(``councilflow definitions schema``; shipped as ``definitions/councilflow.schema.json``). The schema checks
the shape of a definition – keys, types, enums, names; what needs the whole file (does a state exist, is a
state reachable, is a time zone known) only the loader checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .definition import ATTACH_FORMATS, ATTACH_REPORTS, BODY_ROLE, BUILTIN_FIELDS, SAME, SIGNOFF_ORDERS, SIGNOFFS

__all__ = ["MAPPINGS", "Key", "Mapping", "definition_schema", "schema_text"]

#: Names (ids) of workflows, roles, bodies, fields, states, triggers, deadlines.
NAME_PATTERN = "^[a-z][a-z0-9_]*$"
FIELD_TYPES = ("text", "bool", "int", "date", "datetime", "list")
OUTCOMES = ("adopted", "rejected", "deferred")
#: The units of a period; a ``due`` may also be ``invitation_period: true``.
OFFSET_UNITS = ("days", "working_days", "months")
#: Trigger names the engine uses itself, or that would shadow the machine's model attributes.
RESERVED_TRIGGERS = ("create", "meeting", "join", "close", "trigger", "state", "update")

Schema = dict[str, Any]

# Value types ---------------------------------------------------------------------------------------------
_TEXT: Schema = {"type": "string"}
_BOOL: Schema = {"type": "boolean"}
_NAME: Schema = {"type": "string", "pattern": NAME_PATTERN}
_NAMES: Schema = {"type": "array", "items": _NAME}
#: A coarse form of values.is_email (JSON Schema patterns are ECMA-262, not Python's ``re``).
_EMAIL: Schema = {"type": "string", "pattern": r"^[^@\s]+@[\w-]+(\.[\w-]+)*$"}
_COUNT: Schema = {"type": "integer", "minimum": 0}
#: The longest label of a transition (a button's text).
LABEL_MAX = 80
#: A transition's label: one line of 1 to LABEL_MAX visible characters (the loader also refuses hidden ones).
_LABEL: Schema = {"type": "string", "minLength": 1, "maxLength": LABEL_MAX, "pattern": r"^[^\n\r\t]*\S[^\n\r\t]*$"}


def _ref(mapping_id: str) -> Schema:
    return {"$ref": f"#/$defs/{mapping_id}"}


def _nullable(schema: Schema) -> Schema:
    """Optional sections may stay empty (``deadlines:`` with nothing after it)."""
    return {"anyOf": [schema, {"type": "null"}]}


def _named(value: Schema, *, reserved: tuple[str, ...] = (), at_least_one: bool = False) -> Schema:
    """A mapping from names (ids) to values, e.g. the bodies by their ids."""
    names: Schema = {"pattern": NAME_PATTERN}
    if reserved:
        names["not"] = {"enum": list(reserved)}
    schema: Schema = {"type": "object", "propertyNames": names, "additionalProperties": value}
    if at_least_one:
        schema["minProperties"] = 1
    return schema


def _exactly_one(keys: tuple[str, ...]) -> Schema:
    return {"oneOf": [{"required": [k]} for k in keys]}


@dataclass(frozen=True)
class Key:
    """One key of a mapping: its name, whether it is required, the JSON Schema of its value, what it means."""

    name: str
    required: bool
    schema: Schema
    description: str


@dataclass(frozen=True)
class Mapping:
    """One mapping of the language; ``rules`` are further JSON Schema conditions on the whole mapping."""

    id: str
    description: str
    keys: tuple[Key, ...] = ()
    rules: tuple[Schema, ...] = ()
    #: For a mapping whose keys are names (roles): the schema of its values.
    named: Schema | None = None

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys if k.required)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys if not k.required)

    def schema(self) -> Schema:
        if self.named is not None:
            return {"description": self.description, **self.named}
        result: Schema = {
            "type": "object",
            "description": self.description,
            "properties": {k.name: {"description": k.description, **k.schema} for k in self.keys},
            "additionalProperties": False,
        }
        if self.required:
            result["required"] = list(self.required)
        if self.rules:
            result["allOf"] = list(self.rules)
        return result


# The mappings ---------------------------------------------------------------------------------------------

OFFSET = Mapping(
    "offset",
    "Ein Abstand mit genau einer Einheit, z. B. {working_days: 5} (Erinnerungen, escalate.after).",
    (
        Key("days", False, _COUNT, "Kalendertage (ganze Zahl ≥ 0)."),
        Key("working_days", False, _COUNT, "Arbeitstage: ohne Samstag, Sonntag, Feiertage und Schließtage."),
        Key("months", False, _COUNT, "Kalendermonate, am Monatsende gekappt."),
    ),
    (_exactly_one(OFFSET_UNITS),),
)

DUE = Mapping(
    "due",
    "Wann die Frist fällig ist: genau ein Bezugspunkt (before/after) und genau eine Einheit.",
    (
        Key("before", False, _NAME, "Bezugspunkt davor: meeting (Sitzungstag) oder ein Feld vom Typ date/datetime."),
        Key("after", False, _NAME, "Bezugspunkt danach: entered (Tag des Betretens) oder ein Feld vom Typ "
                                   "date/datetime."),
        *OFFSET.keys,
        Key("invitation_period", False, {"const": True},
            "Die Ladungsfrist: invitation_days des Gremiums in Kalendertagen vor dem Sitzungstag "
            "(nur mit before: meeting)."),
    ),
    (
        _exactly_one(("before", "after")),
        _exactly_one((*OFFSET_UNITS, "invitation_period")),
        {"dependentSchemas": {"invitation_period": {"required": ["before"],
                                                     "properties": {"before": {"const": "meeting"}}}}},
    ),
)

NOT_BEFORE = Mapping(
    "not_before",
    "Eine Mindestfrist: der Trigger ist erst N Tage, Arbeitstage oder Monate nach dem Bezugspunkt möglich.",
    (
        Key("after", True, _NAME, "Bezugspunkt: entered (Betreten des Zustands) oder ein Feld vom Typ "
                                  "date/datetime."),
        *OFFSET.keys,
    ),
    (_exactly_one(OFFSET_UNITS),),
)

ESCALATE = Mapping(
    "escalate",
    "Eine Mail, wenn die Frist überschritten ist.",
    (
        Key("after", True, _ref("offset"), "Wie lange nach der Fälligkeit, z. B. {working_days: 1}."),
        Key("notify", True, _NAMES, "Wer die Eskalationsmail bekommt: Rollen oder body."),
    ),
)

CALENDAR = Mapping(
    "calendar",
    "Feiertage und Schließtage. Ohne calendar sind nur Samstag und Sonntag arbeitsfrei.",
    (
        Key("holidays", False, _TEXT,
            "Gesetzliche Feiertage aus der Python-Bibliothek holidays: DE (bundesweit), DE-NW, DE-BY, DE-BW …"),
        Key("closed", False,
            {"type": "array", "items": {"type": "string", "pattern": r"^(\d\d-\d\d|\d\d\d\d-\d\d-\d\d)$"}},
            "Zusätzliche Schließtage: MM-TT jedes Jahr (z. B. 12-24), JJJJ-MM-TT nur an diesem einen Tag "
            "(z. B. 2026-02-16)."),
    ),
)

ROLES = Mapping(
    "roles",
    "Rollen: jeder Schlüssel ein Rollenname, sein Wert eine Liste von E-Mail-Adressen. "
    f"'{BODY_ROLE}' ist eingebaut und darf nicht definiert werden.",
    named=_named({"type": "array", "items": _EMAIL}, reserved=(BODY_ROLE,)),
)

BODY = Mapping(
    "body",
    "Ein Gremium.",
    (
        Key("name", True, _TEXT, "Anzeigename: in Status, Web, Mails, als Organisation im OParl-Export."),
        Key("invitation_days", True, _COUNT,
            "Ladungsfrist laut Geschäftsordnung in Kalendertagen vor der Sitzung (für invitation_period: true)."),
        Key("contact", False, _nullable(_EMAIL),
            "Wer hinter der Pseudo-Rolle body steht, z. B. das Hauptamt einer Gemeinde."),
        Key("location", False, _nullable(_TEXT), "Wo das Gremium tagt; Ort im Kalendereintrag seiner Sitzungen."),
        Key("meeting_hours", False, {"type": "number", "exclusiveMinimum": 0, "maximum": 24},
            "Wie lange eine Sitzung dauert (Stunden über 0 bis 24, Voreinstellung 2)."),
    ),
)

_DEFAULT_BY_TYPE: dict[str, Schema] = {
    "text": _TEXT, "bool": _BOOL, "int": {"type": "integer"}, "date": _TEXT, "datetime": _TEXT,
    "list": {"type": "array", "items": _TEXT},
}

FIELD = Mapping(
    "field",
    "Ein Feld der Vorlage.",
    (
        Key("type", True, {"enum": list(FIELD_TYPES)}, "Art des Werts: text, bool, int, date, datetime oder list."),
        Key("required", False, _BOOL, "Muss beim Anlegen der Vorlage einen nicht leeren Wert haben."),
        Key("default", False, {},
            "Wert, den das Feld beim Anlegen bekommt, wenn es nicht angegeben wird; passend zu type."),
    ),
    tuple(
        {"if": {"properties": {"type": {"const": t}}}, "then": {"properties": {"default": _nullable(s)}}}
        for t, s in _DEFAULT_BY_TYPE.items()
    ),
)

CONSULTATION = Mapping(
    "consultation",
    "Die Vorlage wartet auf die Sitzung eines Gremiums.",
    (
        Key("body", True, _NAME, "Das beratende Gremium (Gremium-ID)."),
        Key("role", True, _TEXT, "Art der Beratung, frei wählbar, z. B. Vorberatung, Entscheidung, Kenntnisnahme."),
    ),
)

JOIN = Mapping(
    "join",
    "Zusammenführung mit Quorum: erfüllt, sobald N Zweige angenommen haben.",
    (Key("quorum", True, {"type": "integer", "minimum": 1}, "Wie viele Zweige annehmen müssen (≥ 1)."),),
)

_JOIN_NONE: Schema = {"properties": {"join": {"const": "none"}}, "required": ["join"]}

PARALLEL = Mapping(
    "parallel",
    "Mehrere Gremien beraten gleichzeitig; für jedes wird ein Zweig geöffnet.",
    (
        Key("bodies", True, {"type": "array", "items": _NAME, "minItems": 1, "uniqueItems": True},
            "Liste von Gremium-IDs, mindestens eine, keine doppelt."),
        Key("role", True, _TEXT, "Art der Beratung in den Zweigen (OParl Consultation.role)."),
        Key("join", True, {"anyOf": [{"enum": ["all", "none"]}, _ref("join")]},
            "Wann der Zustand als erledigt gilt: all, {quorum: N} oder none."),
        Key("on_success", False, _NAME,
            "Wohin die Vorlage geht, wenn der join erfüllt ist (Pflicht, außer bei join: none)."),
        Key("on_failure", False, _NAME,
            "Wohin die Vorlage geht, sobald der join nicht mehr erfüllbar ist (Pflicht, außer bei join: none)."),
    ),
    (
        {"if": _JOIN_NONE,
         "then": {"not": {"anyOf": [{"required": ["on_success"]}, {"required": ["on_failure"]}]}},
         "else": {"required": ["on_success", "on_failure"]}},
    ),
)

SIGNOFF = Mapping(
    "signoff",
    "Mitzeichnung: Rollen, die die Vorlage in diesem Zustand mitzeichnen, bevor ein Übergang mit "
    f"requires: [{SIGNOFFS}] möglich ist. Eine spätere Änderung eines Felds macht die Mitzeichnungen ungültig.",
    (
        Key("roles", True, {"type": "array", "items": _NAME, "minItems": 1, "uniqueItems": True},
            f"Die mitzeichnenden Rollen (nicht {BODY_ROLE}), mindestens eine, keine doppelt."),
        Key("order", False, {"enum": list(SIGNOFF_ORDERS)},
            "any (Voreinstellung): in beliebiger Reihenfolge; sequence: in der Reihenfolge von roles."),
    ),
)

STATE = Mapping(
    "state",
    "Ein Zustand (die Abbildung darf leer sein: {}).",
    (
        Key("label", False, _TEXT, "Anzeigename des Zustands (Status, Web, Diagramm, Mails)."),
        Key("initial", False, _BOOL, "Anfangszustand: jede neue Vorlage beginnt hier; genau einer."),
        Key("final", False, _BOOL, "Endzustand: die Vorlage ist abgeschlossen."),
        Key("consultation", False, _ref("consultation"), "Die Vorlage wartet auf die Sitzung eines Gremiums."),
        Key("parallel", False, _ref("parallel"), "Mehrere Gremien beraten gleichzeitig."),
        Key("signoff", False, _ref("signoff"),
            "Mitzeichnung: {roles: [ROLLE, …], order: any | sequence}; nicht in Endzuständen."),
        Key("delayed", False, _BOOL, "Verzögert: die Beschlusskontrolle zeigt eine Vorlage in diesem Zustand rot."),
    ),
    (
        {"if": {"properties": {"final": {"const": True}}, "required": ["final"]},
         "then": {"not": {"anyOf": [{"required": ["consultation"]}, {"required": ["parallel"]},
                                    {"required": ["signoff"]}]}}},
        {"if": {"required": ["consultation", "parallel"]},
         "then": {"properties": {"parallel": {"properties": {"join": {"const": "none"}}}}}},
    ),
)

_BRANCH_GIVEN: Schema = {"required": ["branch"], "properties": {"branch": {"type": "string"}}}
_INTERNAL: Schema = {"required": ["internal"], "properties": {"internal": {"const": True}}}

TRANSITION = Mapping(
    "transition",
    "Ein Übergang: ein Trigger von einem oder mehreren Zuständen.",
    (
        Key("trigger", True, {**_NAME, "not": {"enum": list(RESERVED_TRIGGERS)}},
            "Name des Schritts, mit dem er gefeuert wird: councilflow fire REF TRIGGER."),
        Key("source", True,
            {"anyOf": [{"const": "*"}, _NAME, {"type": "array", "items": _NAME, "minItems": 1}]},
            'Aus welchem Zustand (welchen Zuständen) der Trigger möglich ist; "*" für alle, die keine '
            "Endzustände sind."),
        Key("roles", True, {"type": "array", "items": _NAME, "minItems": 1},
            "Wer den Trigger feuern darf: nicht leere Liste von Rollen oder body."),
        Key("dest", False, {"anyOf": [{"const": SAME}, _NAME]},
            'Zielzustand; "=" heißt: im Quellzustand bleiben und ihn neu betreten. Pflicht, außer bei branch '
            "oder internal: true."),
        Key("requires", False, _NAMES, "Werte, die mit diesem Trigger angegeben werden müssen: Felder, result, "
                                       f"meeting; oder {SIGNOFFS}: erst möglich, wenn alle Mitzeichnungen des "
                                       "Quellzustands vorliegen."),
        Key("branch", False, {"enum": list(OUTCOMES)},
            "Macht den Eintrag zum Zweig-Übergang: adopted, rejected oder deferred. Dann ist dest verboten."),
        Key("sets", False, {"type": "array", "items": {**_NAME, "not": {"enum": list(BUILTIN_FIELDS)}}},
            "Felder, die dieser Trigger zusätzlich ändern darf (nicht result/meeting)."),
        Key("internal", False, _BOOL,
            "Ein interner Übergang: hält Trigger, Felder und Handelnden fest, ohne den Zustand zu verlassen."),
        Key("not_before", False, _ref("not_before"),
            "Eine Mindestfrist: {after: entered | FELD, days | working_days | months: N}."),
        Key("label", False, _LABEL,
            "Anzeigetext des Schritts (Schaltflächen, Verlauf, Prüfpfad), z. B. „Zur Kenntnis nehmen“; "
            f"eine Zeile, 1 bis {LABEL_MAX} Zeichen. Ohne label wird die Trigger-ID lesbar gemacht."),
        Key("confirm", False, _BOOL,
            "Der Schritt muss mit einer Begründung bestätigt werden (z. B. Zurückziehen); Voreinstellung false."),
    ),
    (
        {"if": _BRANCH_GIVEN, "then": {"not": {"anyOf": [{"required": ["dest"]}, _INTERNAL]}}},
        {"if": _INTERNAL, "then": {"not": {"required": ["dest"]}}},
        {"if": {"not": {"anyOf": [_BRANCH_GIVEN, _INTERNAL]}}, "then": {"required": ["dest"]}},
    ),
)

DEADLINE = Mapping(
    "deadline",
    "Eine Frist mit Erinnerungen und Eskalation.",
    (
        Key("name", True, _NAME, "Kennung der Frist, im Workflow eindeutig."),
        Key("states", True, _NAMES, "In welchen Zuständen die Frist läuft."),
        Key("due", True, _ref("due"), "Wann die Frist fällig ist, z. B. {before: meeting, working_days: 10}."),
        Key("label", False, _TEXT, "Anzeigetext (Mails, Web, Übersichtsmail); Voreinstellung: name."),
        Key("description", False, _nullable(_TEXT),
            "Die Arbeitsanweisung, gezeigt in Mails, auf der Vorlagenseite und bei councilflow deadlines."),
        Key("remind", False, {"type": "array", "items": _ref("offset")},
            "Wie lange vor der Fälligkeit je eine Erinnerung verschickt wird."),
        Key("notify", False, _NAMES, "Wer die Erinnerungen bekommt: Rollen oder body."),
        Key("escalate", False, _ref("escalate"), "Eine Mail, wenn die Frist überschritten ist: {after, notify}."),
        Key("done_by", False, _NAMES,
            "Die Frist ist erledigt, sobald einer dieser Trigger gefeuert wird (oder meeting: die Sitzung "
            "festgelegt wird)."),
    ),
)

ATTACH = Mapping(
    "attach",
    "Ein Dokument, das jeder Folgevorlage beim Anlegen beigefügt wird: der Bericht über offene Beschlüsse "
    "eines Gremiums (Beschlusskontrolle), so wie er in diesem Moment steht.",
    (
        Key("report", True, {"enum": list(ATTACH_REPORTS)},
            "Welches Dokument: decisions (der Bericht über offene Beschlüsse)."),
        Key("body", True, _NAME, "Gremium dieses Ablaufs, dessen Beschlusskontrolle beigefügt wird."),
        Key("status", False, {"enum": ["offen", "verzoegert", "erledigt"]},
            "Welche Folgevorlagen der Bericht zeigt: offen (Voreinstellung), verzoegert oder erledigt."),
        Key("warn_days", False, {"type": "integer", "minimum": 0, "maximum": 250},
            "Ab wie vielen Arbeitstagen vor dem Zieltermin die Ampel gelb ist (Voreinstellung 10)."),
        Key("format", False, {"enum": list(ATTACH_FORMATS)}, "pdf (Voreinstellung) oder html."),
    ),
)

FOLLOW_UP = Mapping(
    "follow_up",
    "Vorlagen, die diese Vorlage in einem anderen Ablauf anlegt: einmal, je Eintrag eines Listenfelds "
    "(for_each) oder wiederkehrend (every mit count oder until).",
    (
        Key("name", True, _NAME, "Kennung der Folgevorlage, im Ablauf eindeutig."),
        Key("when", True, _NAME, "Zustand dieses Ablaufs, mit dessen Betreten die Folgevorlagen beginnen."),
        Key("workflow", True, _NAME, "Ablauf der Folgevorlagen (eine Ablaufdefinition im selben Ordner)."),
        Key("reference", True, {"type": "string", "pattern": r"\{n\}"},
            "Aktenzeichen jeder Folgevorlage; muss {n} enthalten (1, 2, …), z. B. \"{reference}-SB{n}\"."),
        Key("fields", False, _nullable({"type": "object", "propertyNames": {"pattern": NAME_PATTERN},
                                        "additionalProperties": _TEXT}),
            "Felder der Folgevorlage: Feldname → Text mit Platzhaltern ({reference}, {n}, {item}, Felder "
            "dieser Vorlage wie {title})."),
        Key("actor", False, _NAME,
            "Rolle dieses Ablaufs, für die das System die Folgevorlage anlegt (im Prüfpfad vermerkt)."),
        Key("every", False, _ref("offset"),
            "Wiederkehrend: Abstand ab dem Betreten, z. B. {months: 6}; dazu count oder until."),
        Key("count", False, {"type": "integer", "minimum": 1}, "Wie viele wiederkehrende Folgevorlagen (≥ 1)."),
        Key("until", False, _NAME,
            "Wiederkehrend bis zu diesem Datumsfeld dieser Vorlage (Feld vom Typ date oder datetime)."),
        Key("for_each", False, _NAME, "Je eine Folgevorlage für jeden Eintrag dieses Listenfelds ({item})."),
        Key("attach", False, {"type": "array", "items": _ref("attach")},
            "Dokumente, die jeder Folgevorlage beim Anlegen beigefügt werden (Anlagen), z. B. der Bericht über "
            "offene Beschlüsse eines Gremiums."),
    ),
    (
        {"if": {"required": ["every"]}, "then": {"not": {"required": ["for_each"]},
                                                 "oneOf": [{"required": ["count"]}, {"required": ["until"]}]},
         "else": {"not": {"anyOf": [{"required": ["count"]}, {"required": ["until"]}]}}},
    ),
)

TOP = Mapping(
    "definition",
    "Eine Workflow-Definition von councilflow (docs/definition-language.md).",
    (
        Key("workflow", True, _NAME, "ID des Workflows; muss dem Dateinamen ohne Endung entsprechen."),
        Key("version", True, {"type": "integer", "minimum": 1}, "Version der Definition (ganze Zahl ≥ 1)."),
        Key("title", True, _TEXT, "Titel des Ablaufs, z. B. „Sachstandsbericht zur Kenntnisnahme“."),
        Key("timezone", True, _TEXT,
            "IANA-Zeitzonenname, in der Fristen berechnet und Zeiten angezeigt werden; fast immer Europe/Berlin."),
        Key("states", True, _named(_ref("state"), at_least_one=True), "Zustände, nach ihrer ID."),
        Key("transitions", True, {"type": "array", "items": _ref("transition")}, "Übergänge."),
        Key("calendar", False, _nullable(_ref("calendar")), "Feiertage und Schließtage."),
        Key("roles", False, _nullable(_ref("roles")), "Rollen: Name → Liste von E-Mail-Adressen."),
        Key("bodies", False, _nullable(_named(_ref("body"))), "Gremien, nach ihrer ID."),
        Key("fields", False, _nullable(_named(_ref("field"), reserved=BUILTIN_FIELDS)),
            "Felder der Vorlage, nach ihrem Namen (nicht result/meeting)."),
        Key("deadlines", False, _nullable({"type": "array", "items": _ref("deadline")}), "Fristen."),
        Key("follow_up", False, _nullable({"type": "array", "items": _ref("follow_up")}),
            "Folgevorlagen in anderen Abläufen, z. B. wiederkehrende Sachstandsberichte oder Umsetzungsaufträge."),
    ),
)

#: Every mapping of the language, the top level first.
MAPPINGS: tuple[Mapping, ...] = (
    TOP, CALENDAR, ROLES, BODY, FIELD, STATE, CONSULTATION, PARALLEL, JOIN, SIGNOFF, TRANSITION, NOT_BEFORE,
    DEADLINE, DUE, OFFSET, ESCALATE, FOLLOW_UP, ATTACH,
)


def definition_schema() -> Schema:
    """The JSON Schema (draft 2020-12) of a definition file, generated from :data:`MAPPINGS`."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "councilflow-Workflow-Definition",
        **TOP.schema(),
        "$defs": {m.id: m.schema() for m in MAPPINGS if m is not TOP},
    }


def schema_text() -> str:
    """The schema as ``councilflow definitions schema`` prints it and ``definitions/`` ships it."""
    return json.dumps(definition_schema(), indent=2, ensure_ascii=False) + "\n"
