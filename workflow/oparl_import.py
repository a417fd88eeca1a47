"""OParl 1.1 import: papers with their consultations replayed through a workflow, in date order.

A mapping (YAML) names the workflow, maps OParl organizations to the workflow's bodies, consultation
roles to states, and result texts to triggers. Each paper is replayed in memory first, with the pure
decision functions the engine uses; only a paper whose whole recorded path fits the workflow is
written, in one transaction, with the recorded instants and the actor ``import``. A paper that does not
fit is reported with the reason and nothing of it is written. Re-running is idempotent: an unchanged
paper is left alone, a paper whose RIS history grew gets the new entries appended. Everything is written
through the engine's one commit path (deadlines and mails as for any change; mails whose moment lies
in the past when the history is recorded are not queued).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .chain import canonical_json
from .definition import Definition
from .errors import DefinitionError, NotFoundError, Problem, WorkflowError, did_you_mean
from .i18n import _
from .machine import compile_machine
from .oparl_read import OParlData, parse_instant
from .paper import IMPORT_ACTOR, Change, PaperState, apply, decide_create, decide_fire, decide_meeting
from .values import list_text
from .yamlsafe import YamlProblems, load_located

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["ImportReport", "Mapping", "OParlImporter", "load_mapping"]


@dataclass(frozen=True)
class Rule:
    """A result rule: a result text matching ``pattern`` (in a consultation of ``role``, if given) fires
    ``trigger``; with ``move_next`` the paper goes where its next consultation happens (``verwiesen``),
    and ``trigger`` is the fallback when no later consultation is recorded."""

    pattern: re.Pattern[str]
    trigger: str | None
    role: str | None = None
    move_next: bool = False


@dataclass(frozen=True)
class Mapping:
    """How OParl objects map onto one workflow."""

    workflow: str
    organizations: dict[str, str]
    roles: dict[str, str]
    results: tuple[Rule, ...]
    paper_types: tuple[str, ...] = ()
    path: str = "<mapping>"

    def rule_for(self, result: str, role: str | None) -> Rule | None:
        for rule in self.results:
            if (rule.role is None or rule.role == role) and rule.pattern.search(result):
                return rule
        return None


def load_mapping(path: Path, definition_for: Callable[[str], Definition]) -> Mapping:
    """Read and check a mapping file against its workflow; problems as ``path:line:col: message``."""
    name = str(path)
    try:
        doc = load_located(path.read_text(encoding="utf-8"), name)
    except YamlProblems as exc:
        raise DefinitionError(exc.problems) from None
    except OSError as exc:
        raise DefinitionError([Problem(name, 1, 1, _("cannot read: {reason}").format(reason=exc.strerror))]) \
            from None
    problems: list[Problem] = []

    def err(where: tuple[str | int, ...], message: str) -> None:
        line, col = doc.where(where)
        problems.append(Problem(name, line, col, message))

    raw = doc.value if isinstance(doc.value, dict) else {}
    if not isinstance(doc.value, dict):
        err((), _("the import mapping must be a mapping of keys (workflow, organizations, roles, results, "
                  "paper_types)"))
    allowed = ("workflow", "organizations", "roles", "results", "paper_types")
    for key in raw:
        if key not in allowed:
            err((key,), _("{what}: unknown key '{key}'{hint}; allowed: {allowed}").format(
                what=_("the import mapping"), key=key, hint=did_you_mean(key, allowed), allowed=", ".join(allowed)))
    workflow = raw.get("workflow")
    if not isinstance(workflow, str):
        err(("workflow",), _("workflow must name the workflow to import into"))
        raise DefinitionError(problems)
    definition = definition_for(workflow)
    organizations: dict[str, str] = {}
    for section in ("organizations", "roles"):
        if not isinstance(raw.get(section) or {}, dict):
            err((section,), _("{key} must be a mapping NAME: ID").format(key=section))
    for org, body in (raw.get("organizations") or {}).items() if isinstance(raw.get("organizations"), dict) else ():
        if not isinstance(body, str) or body not in definition.bodies:
            err(("organizations", org), _("unknown body '{name}'{hint}").format(
                name=body, hint=did_you_mean(str(body), definition.bodies)))
        organizations[str(org)] = str(body)
    roles: dict[str, str] = {}
    for role, state in (raw.get("roles") or {}).items() if isinstance(raw.get("roles"), dict) else ():
        if not isinstance(state, str) or state not in definition.states:
            err(("roles", role), _("unknown state '{name}'{hint}").format(
                name=state, hint=did_you_mean(str(state), definition.states)))
        roles[str(role)] = str(state)
    results: list[Rule] = []
    raw_results = raw.get("results") or []
    if not isinstance(raw_results, list):
        err(("results",), _("results must be a list of rules {{match: REGEX, trigger: TRIGGER}}").format())
        raw_results = []
    for n, rule in enumerate(raw_results):
        keys = set(rule) if isinstance(rule, dict) else set()
        if not isinstance(rule, dict) or "match" not in keys or not keys <= {"match", "trigger", "role", "move"} \
                or not ({"trigger", "move"} & keys):
            err(("results", n), _("each result rule is {{match: REGEX, trigger: TRIGGER}} (optional role: ROLE; move: "
                                  "next, with trigger as the fallback)").format())
            continue
        trigger = rule.get("trigger")
        if trigger is not None and trigger not in definition.trigger_names:
            err(("results", n, "trigger"),
                _("unknown trigger '{name}'{hint}").format(name=trigger,
                                                           hint=did_you_mean(str(trigger), definition.triggers())))
            continue
        if "move" in rule and rule["move"] != "next":
            err(("results", n, "move"), _("move can only be 'next' (where the next consultation happens)"))
            continue
        try:
            pattern = re.compile(str(rule["match"]), re.IGNORECASE)
        except re.error as exc:
            err(("results", n, "match"), _("not a regular expression: {reason}").format(reason=exc))
            continue
        results.append(Rule(pattern, trigger, rule.get("role"), "move" in rule))
    paper_types = raw.get("paper_types") or []
    if not isinstance(paper_types, list) or not all(isinstance(t, str) for t in paper_types):
        err(("paper_types",), _("paper_types must be a list of texts"))
        paper_types = []
    if problems:
        raise DefinitionError(problems)
    return Mapping(workflow, organizations, roles, tuple(results), tuple(paper_types), name)


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return _("{imported} imported, {updated} updated, {unchanged} unchanged, {skipped} skipped").format(
            imported=len(self.imported), updated=len(self.updated), unchanged=len(self.unchanged),
            skipped=len(self.skipped))


class Mismatch(Exception):
    """The paper's recorded path does not fit the workflow; the message says why."""


@dataclass
class _Sitting:
    body: str
    role: str | None
    created: datetime | None
    meeting: datetime | None
    decided: datetime | None
    result: str | None
    order: int


class OParlImporter:
    """Replays OParl papers through ``engine`` into the workflow ``mapping`` names (the definitions
    folder's current version)."""

    def __init__(self, engine: Engine, mapping: Mapping) -> None:
        self.engine, self.mapping = engine, mapping
        self.definition = engine.current_definition(mapping.workflow)
        self.machine = compile_machine(self.definition)

    def run(self, data: OParlData, progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda x: x
            ) -> ImportReport:
        report = ImportReport()
        for paper_id in progress(sorted(data.papers)):
            paper = data.papers[paper_id]
            reference = (paper.get("reference") or "").strip() or paper_id.rstrip("/").rsplit("/", 1)[-1]
            try:
                if self.mapping.paper_types and paper.get("paperType") not in self.mapping.paper_types:
                    raise Mismatch(_("paperType {type} is not one of this mapping's").format(
                        type=repr(paper.get("paperType"))))
                changes, _state = self.replay(reference, paper, data)
                outcome = self._write(reference, changes)
            except (Mismatch, ValueError) as exc:
                report.skipped.append((reference, str(exc)))
                continue
            except WorkflowError as exc:
                report.skipped.append((reference, exc.message))
                continue
            except (KeyError, TypeError, AttributeError) as exc:  # untrusted data of an unexpected shape
                report.skipped.append((reference, _("unexpected data: {kind}: {detail}").format(
                    kind=type(exc).__name__, detail=exc)))
                continue
            getattr(report, outcome).append(reference)
        return report

    def schedule(self, data: OParlData) -> list[tuple[str, str, datetime]]:
        """Meetings alone (the RIS's body calendars): give every running paper that waits for a body
        without a meeting that body's next meeting, so its deadlines follow the real dates."""
        now = self.engine.now()
        calendar: dict[str, list[datetime]] = {}
        for meeting in data.meetings.values():
            if not meeting.get("start") or meeting.get("cancelled") is True:
                continue
            start = parse_instant(meeting["start"], _("meeting start"))
            for org in meeting.get("organization") or []:
                name = data.organizations.get(org, {}).get("name")
                body = self.mapping.organizations.get(org) or self.mapping.organizations.get(name or "")
                if body is not None and start > now:
                    calendar.setdefault(body, []).append(start)
        scheduled: list[tuple[str, str, datetime]] = []
        d = self.definition
        for paper in self.engine.store.iter_papers():
            if paper.workflow != d.workflow or paper.definition_hash != d.source_hash:
                continue
            spec = d.states[paper.state.state]
            slots: list[tuple[str | None, str]] = []
            if spec.consultation is not None and paper.state.meeting is None:
                slots.append((None, spec.consultation.body))
            slots += [(b.body, b.body) for b in paper.state.open_branches() if b.meeting is None]
            for branch, body in slots:
                upcoming = sorted(calendar.get(body, []))
                if not upcoming:
                    continue
                self.engine.set_meeting(paper.reference, upcoming[0], IMPORT_ACTOR, branch=branch, trusted=True)
                scheduled.append((paper.reference, body, upcoming[0]))
        return scheduled

    # --- replay ------------------------------------------------------------------------------

    def _sittings(self, paper: dict[str, Any], data: OParlData) -> list[_Sitting]:
        sittings = []
        for n, c in enumerate(paper.get("consultation", [])):
            orgs = c.get("organization") or []
            org = orgs[0] if orgs else None
            name = data.organizations.get(org, {}).get("name") if org else None
            body = self.mapping.organizations.get(org or "") or self.mapping.organizations.get(name or "")
            if body is None:
                raise Mismatch(_("consultation {number}: organization {name} is not mapped to a body").format(
                    number=n + 1, name=repr(name or org)))
            meeting = data.meetings.get(c.get("meeting") or "")
            item = data.agenda_items.get(c.get("agendaItem") or "", {})
            start = parse_instant(meeting["start"], _("meeting start")) if meeting and meeting.get("start") else None
            decided = parse_instant(item["end"], _("agenda item end")) if item.get("end") else start
            created = parse_instant(c["created"], _("consultation created")) if c.get("created") else None
            raw_result = item.get("result")
            if raw_result is not None and not isinstance(raw_result, str):
                raise Mismatch(_("consultation {number}: the agenda item's result must be text, not {kind}").format(
                    number=n + 1, kind=type(raw_result).__name__))
            result = raw_result if raw_result else None
            sittings.append(_Sitting(body, c.get("role"), created, start, decided, result, n))
        far = datetime.max.replace(tzinfo=UTC)
        # Date order of the decisions: when they were recorded if the source says (our export's
        # agenda item end), else the meeting's start.
        return sorted(sittings, key=lambda s: (s.decided if s.result else None) or s.meeting or s.created or far)

    def replay(self, reference: str, paper: dict[str, Any], data: OParlData) -> tuple[list[Change], PaperState]:
        d = self.definition
        created = parse_instant(paper["created"], _("paper created")) if paper.get("created") else None
        sittings = self._sittings(paper, data)
        if created is None:
            first = next((s.created or s.meeting for s in sittings if s.created or s.meeting), None)
            if first is None:
                raise Mismatch(_("no creation date and no dated consultation"))
            created = first
        values = self._fields(paper, data)
        changes = decide_create(d, reference, IMPORT_ACTOR, values, created)
        state = apply(d, None, changes[0])

        def run(new: list[Change]) -> None:
            nonlocal state
            for change in new:
                state = apply(d, state, change)
            changes.extend(new)

        def arrive(s: _Sitting, ahead: list[_Sitting]) -> str | None:
            """Bring the paper to the state that waits for ``s``'s body and set its meeting; the branch."""
            target = self._target(s, state, ahead)
            at = max(s.created or created, changes[-1].at)
            if state.state != target:
                run(self._move_to(reference, state, target, s, at))
            here = d.states[state.state]
            branch = s.body if here.parallel and s.body in here.parallel.bodies else None
            if branch and state.branches[s.body].status != "open":
                raise Mismatch(_("{body} decided already, but has another consultation").format(body=s.body))
            if s.meeting is not None:
                current = state.branches[s.body].meeting if branch else state.meeting
                if current != s.meeting:
                    run(decide_meeting(d, reference, state, s.meeting, IMPORT_ACTOR, branch, at))
            return branch

        decided = [s for s in sittings if s.result is not None]
        for n, s in enumerate(decided):
            branch = arrive(s, decided[n + 1:])
            parallel = d.states[state.state].parallel
            # A body heard in a branch speaks in the branch's role, whatever role the RIS recorded.
            role = parallel.role if branch and parallel else s.role
            rule = self.mapping.rule_for(s.result or "", role)
            if rule is None:
                raise Mismatch(_("result {result} of {body} matches no rule of the mapping").format(
                    result=repr(s.result), body=s.body))
            trigger = self._trigger(rule, state, s, sittings)
            t = d.find(state.state, trigger)
            if t is None:
                raise Mismatch(_("'{trigger}' ({result}) is not possible in state '{state}'").format(
                    trigger=trigger, result=repr(s.result), state=state.state))
            fire_values = {"result": s.result or ""}
            if t.dest == "=" or t.branch == "deferred":
                # A deferral: the body's next recorded meeting is where the paper goes next.
                later = next((x for x in sittings if x.body == s.body and x.meeting and s.meeting
                              and x.meeting > s.meeting), None)
                if later is not None:
                    fire_values["meeting"] = later.meeting.isoformat()  # type: ignore[union-attr]
                elif "meeting" in t.requires:
                    raise Mismatch(_("{result} of {body} needs a later meeting, and there is none").format(
                        result=repr(s.result), body=s.body))
            when = max(s.decided or changes[-1].at, changes[-1].at)
            run(decide_fire(d, self.machine, reference, state, trigger, IMPORT_ACTOR, branch, fire_values, when))
        # Consultations still ahead: the paper waits for them if it stands where they happen.
        for s in sittings:
            if s.result is None and s.meeting is not None and not d.states[state.state].final:
                try:
                    target = self._target(s, state, [])
                except Mismatch:
                    continue
                if state.state == target:
                    arrive(s, [])
        return changes, state

    def _waiting(self, body: str) -> list[str]:
        return [st.id for st in self.definition.states.values()
                if (st.consultation and st.consultation.body == body) or (st.parallel and body in st.parallel.bodies)]

    def _target(self, s: _Sitting, state: PaperState, ahead: list[_Sitting]) -> str:
        """The state in which ``s`` happens: mapped by role, the one state that waits for its body, the
        current state if it waits for it, or the state of the next consultation that has one and also
        waits for it (a hearing held while the paper is on its way there)."""
        d = self.definition
        if s.role and s.role in self.mapping.roles:
            return self.mapping.roles[s.role]
        waiting = self._waiting(s.body)
        if len(waiting) == 1:
            return waiting[0]
        own = [w for w in waiting if (c := d.states[w].consultation) is not None and c.body == s.body]
        heard_in = [w for w in waiting if w not in own]
        hearing_roles = {p.role for w in heard_in if (p := d.states[w].parallel) is not None}
        if len(own) == 1 and s.role not in hearing_roles:
            return own[0]  # the body decides itself here, it is not heard
        here = d.states[state.state]
        if (here.consultation and here.consultation.body == s.body) or (
                here.parallel and s.body in here.parallel.bodies and s.body in state.branches):
            return state.state
        for later in ahead:
            places = self._waiting(later.body)
            if len(places) == 1 and places[0] in waiting:
                return places[0]
        raise Mismatch(_("body {body} is consulted in {count} states and the recorded path does not say which; map "
                         "role {role} to one").format(body=s.body, count=len(waiting), role=repr(s.role)))

    def _trigger(self, rule: Rule, state: PaperState, s: _Sitting, sittings: list[_Sitting]) -> str:
        """The trigger a rule fires here; ``move: next`` picks the transition to the next consultation."""
        if not rule.move_next:
            assert rule.trigger is not None
            return rule.trigger
        d = self.definition
        later = sittings[sittings.index(s) + 1:]
        nxt = next((x for x in later if x.body != s.body and len(self._waiting(x.body)) == 1), None)
        if nxt is not None:
            target = self._waiting(nxt.body)[0]
            for t in d.transitions_from(state.state):
                if t.branch is None and t.dest_for(state.state) == target:
                    return t.trigger
            raise Mismatch(_("{result} of {body}: no transition from '{state}' to '{target}'").format(
                result=repr(s.result), body=s.body, state=state.state, target=target))
        if rule.trigger is None or d.find(state.state, rule.trigger) is None:
            raise Mismatch(_("{result} of {body} refers the paper onwards, but the consultation it was referred to "
                             "is not recorded").format(result=repr(s.result), body=s.body))
        return rule.trigger

    def _move_to(self, reference: str, state: PaperState, target: str, s: _Sitting, at: datetime
                 ) -> list[Change]:
        """The one transition without a decision that brings the paper to ``target`` (e.g. einbringen)."""
        d = self.definition
        for t in d.transitions_from(state.state):
            if t.branch is None and t.dest_for(state.state) == target and set(t.requires) <= {"meeting"}:
                consultation = d.states[target].consultation
                own = consultation is not None and consultation.body == s.body
                values = {"meeting": s.meeting.isoformat()} if s.meeting and own else {}
                if "meeting" in t.requires and not values:
                    raise Mismatch(_("'{trigger}' needs the meeting of {body}, which is not recorded").format(
                        trigger=t.trigger, body=s.body))
                return decide_fire(d, self.machine, reference, state, t.trigger, IMPORT_ACTOR, None, values, at)
        raise Mismatch(_("consultation of {body} ({role}) in state '{target}' cannot follow state '{state}': the "
                         "path does not fit the workflow").format(body=s.body, role=s.role, target=target,
                                                                  state=state.state))

    def _fields(self, paper: dict[str, Any], data: OParlData) -> dict[str, str]:
        d = self.definition
        values: dict[str, str] = {}
        name = (paper.get("name") or "").strip() or (paper.get("reference") or paper["id"])
        if "title" in d.fields:
            values["title"] = " ".join(str(name).split())
        directing = paper.get("underDirectionOf") or []
        if "department" in d.fields and directing:
            org = data.organizations.get(directing[0], {})
            values["department"] = str(org.get("name") or directing[0])
        items = [data.agenda_items[c["agendaItem"]] for c in paper.get("consultation", [])
                 if c.get("agendaItem") in data.agenda_items]
        if "public" in d.fields and items and all(item.get("public") is False for item in items):
            values["public"] = "false"  # discussed only in closed session
        related = paper.get("relatedPaper") or []
        if "references" in d.fields and related:
            refs = [str(data.papers.get(r, {}).get("reference") or unquote(r.rstrip("/").rsplit("/", 1)[-1]))
                    for r in related]  # a paper not in the files: the reference its URL ends with
            values["references"] = list_text(" ".join(r.split()) for r in refs)  # entries are one line
        return values

    # --- writing -----------------------------------------------------------------------------

    def _write(self, reference: str, changes: list[Change]) -> str:
        d, engine = self.definition, self.engine
        try:
            existing = engine.load(reference)
        except NotFoundError:
            engine.record(reference, d, changes, past_mails="drop")
            return "imported"
        if existing.workflow != d.workflow:
            raise Mismatch(_("exists already in workflow '{workflow}'").format(workflow=existing.workflow))
        recorded = [r for r in engine.history(reference) if not r.is_note]  # its mails are no part of the RIS
        old = [_signature(r.to_change()) for r in recorded]
        new = [_signature(c) for c in changes]
        if new == old:
            return "unchanged"
        if new[: len(old)] != old or any(r.actor != IMPORT_ACTOR for r in recorded):
            raise Mismatch(_("its recorded trail differs from the one stored (changed here or in the RIS)"))
        if existing.definition_hash != d.source_hash:
            raise Mismatch(_("it runs on another version of the workflow"))
        engine.record(reference, d, changes[len(old):], paper=existing, past_mails="drop")
        return "updated"


def _signature(change: Change) -> str:
    return canonical_json([change.kind, change.trigger, change.from_state, change.to_state, change.branch,
                           change.at.astimezone(UTC).isoformat(), dict(change.payload)])
