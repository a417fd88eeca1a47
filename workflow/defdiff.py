"""What changes between two versions of a definition: `councilflow definitions diff`.

Compares states, transitions, deadlines, roles, bodies and fields; guesses renamed states (equal label,
or a very similar label and the same triggers in and out); suggests the ``--map`` options of
``councilflow migrate``; and, with a database, counts the running papers in each affected state. The
comparison is pure; only :func:`stored_newest` and :func:`running_papers` read a store. German text,
as process owners read it.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .deadlines import due_label, offset_label
from .definition import Deadline, Definition, FollowUp, State, Transition
from .errors import DefinitionError, InputError, NotFoundError, Problem
from .german import outcome
from .i18n import _, ngettext, pgettext
from .library import WORKFLOW_ID
from .loader import load_definition

if TYPE_CHECKING:
    from .store import Store

__all__ = ["DefinitionDiff", "Item", "diff_command", "diff_definitions", "render_text", "running_papers",
           "stored_newest", "to_json"]

Kind = Literal["added", "removed", "changed", "renamed"]
Section = Literal["state", "transition", "deadline", "role", "body", "field", "follow_up"]

#: The sections of the report, in its order.
SECTIONS: tuple[Section, ...] = ("state", "transition", "deadline", "role", "body", "field", "follow_up")
_MARK = {"added": "+", "removed": "-", "changed": "~", "renamed": "~"}

#: A label at least this similar (difflib's ratio) counts as "very similar" for guessing a rename.
SIMILAR = 0.75
NONE = "–"


@dataclass(frozen=True)
class Item:
    """One difference: ``name`` is the id (for a transition: "trigger aus a, b"; for a rename "alt → neu"),
    ``details`` what changed ("fällig: 10 Arbeitstage vor Sitzung → 8 Arbeitstage vor Sitzung")."""

    section: Section
    kind: Kind
    name: str
    details: tuple[str, ...] = ()


@dataclass
class DefinitionDiff:
    workflow: str
    old_version: int
    new_version: int
    items: list[Item]
    #: Guessed renames of states, old id -> new id.
    renamed: dict[str, str]
    #: Old states, not final, that the new version lacks and no rename explains: migrate needs a --map.
    unmapped: list[str]
    #: Old state id -> why papers there are affected (German).
    affected: dict[str, str]
    #: Running papers per old state id (None: no database asked).
    papers: dict[str, int] | None = field(default=None)

    def migrate_args(self) -> list[str]:
        """The options for `councilflow migrate` (its --map is OLD=NEW, once per state)."""
        args = ["--workflow", self.workflow, "--to-version", str(self.new_version)]
        for old, new in self.renamed.items():
            args += ["--map", f"{old}={new}"]
        return args

    def command(self) -> str:
        return " ".join(["councilflow", "migrate", *self.migrate_args()])


def _section_name(section: str) -> str:
    names = {"state": pgettext("diff section", "States"), "transition": pgettext("diff section", "Transitions"),
             "deadline": pgettext("diff section", "Deadlines"), "role": pgettext("diff section", "Roles"),
             "body": pgettext("diff section", "Bodies"), "field": pgettext("diff section", "Fields"),
             "follow_up": pgettext("diff section", "Follow-up papers")}
    return names[section]


def _kind_name(kind: str) -> str:
    names = {"added": pgettext("diff", "new"), "removed": pgettext("diff", "dropped"),
             "changed": pgettext("diff", "changed"), "renamed": pgettext("diff", "renamed")}
    return names[kind]


def _prop_name(key: str) -> str:
    """What a compared property is called in the report (the keys of the ``_…_props`` mappings)."""
    names = {
        "label": pgettext("diff", "label"), "initial": pgettext("diff", "initial state"),
        "final": pgettext("diff", "final state"), "consultation": pgettext("diff", "consultation"),
        "parallel": pgettext("diff", "parallel in"), "parallel_role": pgettext("diff", "parallel as"),
        "join": "join", "on_success": pgettext("diff", "on success"), "on_failure": pgettext("diff", "on failure"),
        "dest": pgettext("diff", "destination"), "roles": pgettext("diff", "roles"),
        "requires": pgettext("diff", "requires"), "sets": pgettext("diff", "sets"),
        "not_before": pgettext("diff", "not before"), "states": pgettext("diff", "states"),
        "due": pgettext("diff", "due"), "remind": pgettext("diff", "reminders"),
        "notify": pgettext("diff", "notifies"), "escalate": pgettext("diff", "escalation"),
        "done_by": pgettext("diff", "done by"), "description": pgettext("diff", "description"),
        "members": pgettext("diff", "members"), "name": pgettext("diff", "name"),
        "invitation_days": pgettext("diff", "invitation period"), "contact": "contact",
        "location": pgettext("diff", "location"), "meeting_hours": pgettext("diff", "meeting length"),
        "type": pgettext("diff", "type"), "required": pgettext("diff", "required"),
        "default": pgettext("diff", "default"), "when": pgettext("diff", "on entering"),
        "signoff": pgettext("diff", "sign-off"), "delayed": pgettext("diff", "delayed"),
        "workflow": pgettext("diff", "workflow"), "reference": pgettext("diff", "reference"),
        "schedule": pgettext("diff", "when"), "fields": pgettext("diff", "fields"),
        "actor": pgettext("diff", "on behalf of"),
    }
    return names[key]


def _names(items: Iterable[str]) -> str:
    return ", ".join(items) or NONE


def _yes(flag: bool) -> str:
    return _("yes") if flag else _("no")


def _signoff_text(s: State) -> str:
    if s.signoff is None:
        return NONE
    return f"{_names(s.signoff.roles)} ({'in Reihenfolge' if s.signoff.order == 'sequence' else 'beliebig'})"


def _state_props(d: Definition, s: State, ren: Callable[[str], str]) -> dict[str, str]:
    p = s.parallel
    join = NONE
    if p is not None:
        join = "none" if p.join.none else "all" if p.join.quorum is None else f"quorum {p.join.quorum}"
    return {
        "label": s.label,
        "initial": _yes(s.initial),
        "final": _yes(s.final),
        "consultation": f"{s.consultation.body} ({s.consultation.role})" if s.consultation else NONE,
        "parallel": _names(p.bodies) if p else NONE,
        "parallel_role": p.role if p else NONE,
        "join": join,
        "on_success": ren(p.on_success) if p and p.on_success else NONE,
        "on_failure": ren(p.on_failure) if p and p.on_failure else NONE,
        "signoff": _signoff_text(s),
        "delayed": _yes(True) if s.delayed else NONE,
    }


def _transition_props(t: Transition, source: str, ren: Callable[[str], str]) -> dict[str, str]:
    if t.branch is not None:
        where = _("branch {outcome}").format(outcome=outcome(t.branch))
    elif t.internal:
        where = _("internal (stays in the state)")
    else:
        dest = t.dest_for(source)
        where = ren(dest) if dest else NONE
    nb = NONE
    if t.not_before is not None:
        anchor, offset = t.not_before
        nb = (_("{offset} after entry") if anchor == "entered" else _("{offset} after field {field}")).format(
            offset=offset_label(offset), field=anchor)
    return {"dest": where, "roles": _names(t.roles), "requires": _names(t.requires), "sets": _names(t.sets),
            "not_before": nb}


def _deadline_props(dl: Deadline, ren: Callable[[str], str]) -> dict[str, str]:
    esc = NONE
    if dl.escalate is not None:
        esc = _("{offset} after the deadline to {roles}").format(offset=offset_label(dl.escalate.after),
                                                                  roles=_names(dl.escalate.notify))
    return {
        "label": dl.label,
        "states": _names(ren(s) for s in dl.states),
        "due": due_label(dl.due),
        "remind": _names(_("{offset} before").format(offset=offset_label(o)) for o in dl.remind),
        "notify": _names(dl.notify),
        "escalate": esc,
        "done_by": _names(dl.done_by),
        "description": dl.description or NONE,
    }


def _changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[str, ...]:
    out = []
    for key, before in old.items():
        after = new[key]
        if before != after:
            if key == "description":  # a paragraph: say that it changed, not both texts
                out.append(_("description new") if before == NONE else _("description dropped") if after == NONE
                           else _("description changed"))
            else:
                out.append(f"{_prop_name(key)}: {before} → {after}")
    return tuple(out)


def _summary(props: Mapping[str, str], keys: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"{_prop_name(k)}: {props[k]}" for k in keys if props[k] != NONE)


def _signature(d: Definition, state: str) -> tuple[frozenset[str], frozenset[str]]:
    """The triggers out of and into ``state``: a renamed state keeps them."""
    out = frozenset(t.trigger for t in d.transitions_from(state))
    into = frozenset(t.trigger for t in d.transitions if any(t.dest_for(s) == state for s in t.sources))
    return out, into


def guess_renames(old: Definition, new: Definition) -> dict[str, tuple[str, str]]:
    """Old id -> (new id, reason) for states that left and came: by equal label, else by a very similar
    label with the same triggers in and out. Each state is paired at most once, best match first."""
    gone = [s for s in old.states if s not in new.states]
    came = [s for s in new.states if s not in old.states]
    candidates: list[tuple[float, str, str, str]] = []
    for o in gone:
        lo = " ".join(old.states[o].label.casefold().split())
        for n in came:
            ln = " ".join(new.states[n].label.casefold().split())
            if lo == ln:
                candidates.append((2.0, o, n, _("same label “{label}”").format(label=new.states[n].label)))
                continue
            ratio = difflib.SequenceMatcher(None, lo, ln).ratio()
            if ratio >= SIMILAR and _signature(old, o) == _signature(new, n):
                candidates.append((ratio, o, n, _("similar label, same transitions")))
    renames: dict[str, tuple[str, str]] = {}
    taken: set[str] = set()
    for _score, o, n, why in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if o not in renames and n not in taken:
            renames[o] = (n, why)
            taken.add(n)
    return renames


def _keyed(d: Definition, ren: Callable[[str], str]) -> dict[tuple[str, str], dict[str, str]]:
    """Transitions by (trigger, source state in the new naming)."""
    return {(t.trigger, ren(s)): _transition_props(t, s, ren) for t in d.transitions for s in t.sources}


def diff_definitions(old: Definition, new: Definition) -> DefinitionDiff:
    """Every difference from ``old`` to ``new`` (same workflow expected, not required)."""
    guessed = guess_renames(old, new)
    renamed = {o: n for o, (n, _why) in guessed.items()}
    back = {n: o for o, n in renamed.items()}

    def ren(state: str) -> str:
        return renamed.get(state, state)

    def same(state: str) -> str:
        return state

    items: list[Item] = []
    affected: dict[str, list[str]] = {}

    def affect(old_state: str, why: str) -> None:
        if old_state in old.states and not old.states[old_state].final:
            reasons = affected.setdefault(old_state, [])
            if why not in reasons:
                reasons.append(why)

    # States: compared under the new names; a renamed state is compared with its old self.
    for sid in new.states:
        before = back.get(sid, sid)
        props = _state_props(new, new.states[sid], same)
        if before not in old.states:
            shown = ["label", "consultation", "parallel", "signoff", "delayed"]
            items.append(Item("state", "added", sid, _summary(props, shown)))
            continue
        changes = _changes(_state_props(old, old.states[before], ren), props)
        if before != sid:
            items.append(Item("state", "renamed", f"{before} → {sid}", (guessed[before][1], *changes)))
            affect(before, _("renamed to {state}").format(state=sid))
        elif changes:
            items.append(Item("state", "changed", sid, changes))
        if changes:
            affect(before, _("state changed"))
    removed = [s for s in old.states if s not in new.states and s not in renamed]
    for sid in removed:
        items.append(Item("state", "removed", sid, (f"{_prop_name('label')}: {old.states[sid].label}",)))
        affect(sid, _("dropped"))
    unmapped = [s for s in removed if not old.states[s].final]  # finished papers are never migrated

    # Transitions: per (trigger, source); equal outcomes for several sources are reported once.
    before_t, after_t = _keyed(old, ren), _keyed(new, same)
    grouped: dict[tuple[Kind, str, tuple[str, ...]], list[str]] = {}
    for key in [*after_t, *(k for k in before_t if k not in after_t)]:
        trigger, source = key
        if key not in before_t:
            kind: Kind = "added"
            details = _summary(after_t[key], ["dest", "roles", "requires", "sets", "not_before"])
        elif key not in after_t:
            kind, details = "removed", ()
        else:
            kind, details = "changed", _changes(before_t[key], after_t[key])
            if not details:
                continue
        grouped.setdefault((kind, trigger, details), []).append(source)
        affect(back.get(source, source), _("transitions changed"))
    for (kind, trigger, details), sources in grouped.items():
        items.append(Item("transition", kind, _("{trigger} from {states}").format(trigger=trigger,
                                                                                  states=", ".join(sources)), details))

    # Deadlines by name; their states are compared in the new naming.
    old_d = {dl.name: dl for dl in old.deadlines}
    new_d = {dl.name: dl for dl in new.deadlines}
    for name, dl in new_d.items():
        props = _deadline_props(dl, same)
        if name not in old_d:
            items.append(Item("deadline", "added", name, _summary(props, ["label", "states", "due"])))
            touched = [back.get(s, s) for s in dl.states]
        else:
            changes = _changes(_deadline_props(old_d[name], ren), props)
            if not changes:
                continue
            items.append(Item("deadline", "changed", name, changes))
            touched = [*old_d[name].states, *(back.get(s, s) for s in dl.states)]
        for s in touched:
            affect(s, _("deadlines changed"))
    for name, dl in old_d.items():
        if name not in new_d:
            items.append(Item("deadline", "removed", name, (f"{_prop_name('label')}: {dl.label}",)))
            for s in dl.states:
                affect(s, _("deadlines changed"))

    # Roles, bodies and fields: by id, compared by their properties.
    def simple(section: Section, before: Mapping[str, dict[str, str]], after: Mapping[str, dict[str, str]]) -> None:
        for key, props in after.items():
            if key not in before:
                items.append(Item(section, "added", key, _summary(props, props)))
            elif changes := _changes(before[key], props):
                items.append(Item(section, "changed", key, changes))
        items.extend(Item(section, "removed", key) for key in before if key not in after)

    def roles(d: Definition) -> dict[str, dict[str, str]]:
        return {r: {"members": _names(m)} for r, m in d.roles.items()}

    def bodies(d: Definition) -> dict[str, dict[str, str]]:
        return {b.id: {"name": b.name,
                       "invitation_days": ngettext("{count} day", "{count} days", b.invitation_days).format(
                           count=b.invitation_days),
                       "contact": b.contact or NONE, "location": b.location or NONE,
                       "meeting_hours": _("{hours} hours").format(hours=f"{b.meeting_hours:g}")}
                for b in d.bodies.values()}

    def fields(d: Definition) -> dict[str, dict[str, str]]:
        return {f.name: {"type": f.type, "required": _yes(f.required),
                         "default": NONE if f.default is None else str(f.default)} for f in d.fields.values()}

    def follow_ups(d: Definition) -> dict[str, dict[str, str]]:
        def how(f: FollowUp) -> str:
            if f.for_each:
                return _("one per entry of {field}").format(field=f.for_each)
            if f.every is None:
                return _("once")
            if f.count:
                return _("every {period}, {count} times").format(period=offset_label(f.every), count=f.count)
            return _("every {period}, until {field}").format(period=offset_label(f.every), field=f.until)
        return {f.name: {"when": ren(f.when) if d is old else f.when, "workflow": f.workflow,
                         "reference": f.reference, "schedule": how(f),
                         "fields": _names(f"{k}: {v}" for k, v in f.fields.items()), "actor": f.actor or NONE}
                for f in d.follow_ups}

    simple("role", roles(old), roles(new))
    simple("body", bodies(old), bodies(new))
    simple("field", fields(old), fields(new))
    simple("follow_up", follow_ups(old), follow_ups(new))
    order = list(SECTIONS)
    items.sort(key=lambda i: order.index(i.section))  # stable: file order within a section
    reasons = {s: ", ".join(r) for s, r in affected.items()}
    return DefinitionDiff(new.workflow, old.version, new.version, items, renamed, unmapped,
                          {s: reasons[s] for s in old.states if s in reasons})


# --- the database --------------------------------------------------------------------------------


def stored_newest(store: Store, workflow: str) -> tuple[Definition, str]:
    """The newest version of ``workflow`` stored in the database, with its text."""
    versions = [(v, text) for w, v, _, text in store.iter_definitions() if w == workflow]
    if not versions:
        known = sorted({w for w, *_ in store.iter_definitions()})
        raise NotFoundError(_("workflow '{name}' has no stored version in {url}; stored: {known} (a version is "
                              "stored when a paper starts on it)").format(name=workflow, url=store.url,
                                                                          known=", ".join(known) or _("none")))
    version, text = max(versions)
    return load_definition(text, _("<{workflow} version {version} in the database>").format(
        workflow=workflow, version=version)), text


def running_papers(store: Store, workflow: str) -> dict[str, int]:
    """Papers of ``workflow`` not in a final state (of the version each is on), counted by state."""
    finals: dict[str, frozenset[str]] = {}
    for w, _version, digest, text in store.iter_definitions():
        if w == workflow:
            d = load_definition(text, "<stored definition>")
            finals[digest] = frozenset(s.id for s in d.states.values() if s.final)
    counts: Counter[str] = Counter()
    for paper in store.iter_papers():
        if paper.workflow == workflow and paper.state.state not in finals.get(paper.definition_hash, frozenset()):
            counts[paper.state.state] += 1
    return dict(counts)


# --- output --------------------------------------------------------------------------------------


def _papers(n: int) -> str:
    return ngettext("{count} running paper", "{count} running papers", n).format(count=n)


def render_text(diff: DefinitionDiff, old_name: str, new_name: str) -> list[str]:
    """The German report, line by line."""
    lines = [_("Workflow {workflow}: version {old} ({old_name}) → version {new} ({new_name})").format(
        workflow=diff.workflow, old=diff.old_version, old_name=old_name, new=diff.new_version, new_name=new_name)]
    if not diff.items:
        lines.append(_("No differences."))
    section = ""
    for item in diff.items:
        if item.section != section:
            section = item.section
            lines += ["", f"{_section_name(section)}:"]
        lines.append(f"  {_MARK[item.kind]} {item.name}: {_kind_name(item.kind)}")
        lines.extend(f"      {d}" for d in item.details)
    if diff.new_version > diff.old_version:
        lines += ["", _("Migration:"), f"  {diff.command()}"]
        for s in diff.unmapped:
            lines.append("  " + _("state '{state}' is dropped without a successor: add --map {state}=STATE, else "
                                  "papers there stay on the old version").format(state=s))
    elif diff.items:
        lines += ["", _("Attention: the new version is {new}, not more than {old}: councilflow migrate needs a "
                        "higher version number.").format(new=diff.new_version, old=diff.old_version)]
    if diff.papers is not None:
        lines += ["", _("Running papers in affected states:")]
        shown = [(s, why) for s, why in diff.affected.items()]
        for s, why in shown:
            lines.append(f"  {s} ({why}): {diff.papers.get(s, 0)}")
        if not shown:
            lines.append("  " + _("no states affected"))
        total = sum(diff.papers.get(s, 0) for s, _why in shown)
        lines.append("  " + _("together {papers}").format(papers=_papers(total)))
    return lines


def to_json(diff: DefinitionDiff) -> dict[str, Any]:
    """The report as JSON (stable keys, German texts in ``details``)."""
    return {
        "workflow": diff.workflow,
        "old_version": diff.old_version,
        "new_version": diff.new_version,
        "changes": [{"section": i.section, "kind": i.kind, "name": i.name, "details": list(i.details)}
                    for i in diff.items],
        "renamed": diff.renamed,
        "unmapped": diff.unmapped,
        "migrate": diff.migrate_args() if diff.new_version > diff.old_version else None,
        "affected": [{"state": s, "why": why, **({"running": diff.papers.get(s, 0)} if diff.papers is not None
                                                 else {})} for s, why in diff.affected.items()],
    }


# --- the command ---------------------------------------------------------------------------------


def _load_file(path: str) -> Definition:
    """A definition file of any name (a draft need not be named after its workflow yet)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise DefinitionError([Problem(path, 1, 1, _("not UTF-8 text: {reason}").format(reason=exc.reason))]) \
            from None
    except OSError as exc:
        raise DefinitionError([Problem(path, 1, 1, _("cannot read: {reason}").format(reason=exc.strerror))]) \
            from None
    return load_definition(text, path)


def _open(url: str) -> Store:
    from pathlib import Path

    from .store import open_store

    store = open_store(url)
    local = store.local_file
    if local is not None and not Path(local).exists():  # opening would create an empty database
        raise NotFoundError(_("no database at {url}: give the one the papers are in with --db").format(url=url))
    return store


def diff_command(first: str, second: str, *, fmt: str, db: str | None, default_db: str,
                 echo: Callable[[str], None]) -> dict[str, Any] | None:
    """`definitions diff WORKFLOW NEW.yaml` (against the newest version stored in ``db`` or ``default_db``)
    or `definitions diff OLD.yaml NEW.yaml` (running papers counted only when ``db`` is given). Prints the
    German report, or returns the JSON for ``fmt == "json"``."""
    new = _load_file(second)
    is_file = first.endswith((".yaml", ".yml")) or "/" in first or not WORKFLOW_ID.fullmatch(first)
    store: Store | None = None
    if is_file:
        old, old_name = _load_file(first), first
        if old.workflow != new.workflow:
            raise InputError(_("{first} is workflow '{old}', {second} is '{new}': compare two versions of one "
                               "workflow").format(first=first, old=old.workflow, second=second, new=new.workflow))
        if db is not None:
            store = _open(db)
    else:
        if new.workflow != first:
            raise InputError(_("{second} is workflow '{new}', not '{first}'").format(second=second, new=new.workflow,
                                                                                      first=first))
        store = _open(db or default_db)
        old, _text = stored_newest(store, first)
        old_name = _("stored in {url}").format(url=store.url)
    diff = diff_definitions(old, new)
    if store is not None:
        diff.papers = running_papers(store, new.workflow)
        store.dispose()
    if fmt == "json":
        return to_json(diff)
    for line in render_text(diff, old_name, second):
        echo(line)
    return None
