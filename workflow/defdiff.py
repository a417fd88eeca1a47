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
from .definition import Deadline, Definition, State, Transition
from .errors import DefinitionError, InputError, NotFoundError, Problem
from .german import OUTCOME
from .library import WORKFLOW_ID
from .loader import load_definition

if TYPE_CHECKING:
    from .store import Store

__all__ = ["DefinitionDiff", "Item", "diff_command", "diff_definitions", "render_text", "running_papers",
           "stored_newest", "to_json"]

Kind = Literal["added", "removed", "changed", "renamed"]
Section = Literal["state", "transition", "deadline", "role", "body", "field"]

SECTION_DE: dict[str, str] = {"state": "Zustände", "transition": "Übergänge", "deadline": "Fristen",
                              "role": "Rollen", "body": "Gremien", "field": "Felder"}
KIND_DE: dict[str, str] = {"added": "neu", "removed": "entfällt", "changed": "geändert", "renamed": "umbenannt"}
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


def _names(items: Iterable[str]) -> str:
    return ", ".join(items) or NONE


def _yes(flag: bool) -> str:
    return "ja" if flag else "nein"


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
        "Bezeichnung": s.label,
        "Anfangszustand": _yes(s.initial),
        "Endzustand": _yes(s.final),
        "Beratung": f"{s.consultation.body} ({s.consultation.role})" if s.consultation else NONE,
        "parallel in": _names(p.bodies) if p else NONE,
        "parallel als": p.role if p else NONE,
        "join": join,
        "bei Erfolg": ren(p.on_success) if p and p.on_success else NONE,
        "bei Misserfolg": ren(p.on_failure) if p and p.on_failure else NONE,
        "Mitzeichnung": _signoff_text(s),
    }


def _transition_props(t: Transition, source: str, ren: Callable[[str], str]) -> dict[str, str]:
    if t.branch is not None:
        where = f"Zweig {OUTCOME[t.branch]}"
    elif t.internal:
        where = "intern (bleibt im Zustand)"
    else:
        dest = t.dest_for(source)
        where = ren(dest) if dest else NONE
    nb = NONE
    if t.not_before is not None:
        anchor, offset = t.not_before
        nb = f"{offset_label(offset)} nach {'Eintritt' if anchor == 'entered' else f'Feld {anchor}'}"
    return {"Ziel": where, "Rollen": _names(t.roles), "benötigt": _names(t.requires), "setzt": _names(t.sets),
            "frühestens": nb}


def _deadline_props(dl: Deadline, ren: Callable[[str], str]) -> dict[str, str]:
    esc = NONE
    if dl.escalate is not None:
        esc = f"{offset_label(dl.escalate.after)} nach Fristablauf an {_names(dl.escalate.notify)}"
    return {
        "Bezeichnung": dl.label,
        "Zustände": _names(ren(s) for s in dl.states),
        "fällig": due_label(dl.due),
        "Erinnerungen": _names(f"{offset_label(o)} vorher" for o in dl.remind),
        "benachrichtigt": _names(dl.notify),
        "Eskalation": esc,
        "erledigt durch": _names(dl.done_by),
        "Beschreibung": dl.description or NONE,
    }


def _changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[str, ...]:
    out = []
    for key, before in old.items():
        after = new[key]
        if before != after:
            if key == "Beschreibung":  # a paragraph: say that it changed, not both texts
                out.append("Beschreibung neu" if before == NONE else "Beschreibung entfällt" if after == NONE
                           else "Beschreibung geändert")
            else:
                out.append(f"{key}: {before} → {after}")
    return tuple(out)


def _summary(props: Mapping[str, str], keys: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"{k}: {props[k]}" for k in keys if props[k] != NONE)


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
                candidates.append((2.0, o, n, f"gleiche Bezeichnung „{new.states[n].label}“"))
                continue
            ratio = difflib.SequenceMatcher(None, lo, ln).ratio()
            if ratio >= SIMILAR and _signature(old, o) == _signature(new, n):
                candidates.append((ratio, o, n, "ähnliche Bezeichnung, gleiche Übergänge"))
    renames: dict[str, tuple[str, str]] = {}
    taken: set[str] = set()
    for _, o, n, why in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
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
    renamed = {o: n for o, (n, _) in guessed.items()}
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
            items.append(Item("state", "added", sid, _summary(props, ["Bezeichnung", "Beratung", "parallel in"])))
            continue
        changes = _changes(_state_props(old, old.states[before], ren), props)
        if before != sid:
            items.append(Item("state", "renamed", f"{before} → {sid}", (guessed[before][1], *changes)))
            affect(before, f"umbenannt in {sid}")
        elif changes:
            items.append(Item("state", "changed", sid, changes))
        if changes:
            affect(before, "Zustand geändert")
    removed = [s for s in old.states if s not in new.states and s not in renamed]
    for sid in removed:
        items.append(Item("state", "removed", sid, (f"Bezeichnung: {old.states[sid].label}",)))
        affect(sid, "entfällt")
    unmapped = [s for s in removed if not old.states[s].final]  # finished papers are never migrated

    # Transitions: per (trigger, source); equal outcomes for several sources are reported once.
    before_t, after_t = _keyed(old, ren), _keyed(new, same)
    grouped: dict[tuple[Kind, str, tuple[str, ...]], list[str]] = {}
    for key in [*after_t, *(k for k in before_t if k not in after_t)]:
        trigger, source = key
        if key not in before_t:
            kind: Kind = "added"
            details = _summary(after_t[key], ["Ziel", "Rollen", "benötigt", "setzt", "frühestens"])
        elif key not in after_t:
            kind, details = "removed", ()
        else:
            kind, details = "changed", _changes(before_t[key], after_t[key])
            if not details:
                continue
        grouped.setdefault((kind, trigger, details), []).append(source)
        affect(back.get(source, source), "Übergänge geändert")
    for (kind, trigger, details), sources in grouped.items():
        items.append(Item("transition", kind, f"{trigger} aus {', '.join(sources)}", details))

    # Deadlines by name; their states are compared in the new naming.
    old_d = {dl.name: dl for dl in old.deadlines}
    new_d = {dl.name: dl for dl in new.deadlines}
    for name, dl in new_d.items():
        props = _deadline_props(dl, same)
        if name not in old_d:
            items.append(Item("deadline", "added", name, _summary(props, ["Bezeichnung", "Zustände", "fällig"])))
            touched = [back.get(s, s) for s in dl.states]
        else:
            changes = _changes(_deadline_props(old_d[name], ren), props)
            if not changes:
                continue
            items.append(Item("deadline", "changed", name, changes))
            touched = [*old_d[name].states, *(back.get(s, s) for s in dl.states)]
        for s in touched:
            affect(s, "Fristen geändert")
    for name, dl in old_d.items():
        if name not in new_d:
            items.append(Item("deadline", "removed", name, (f"Bezeichnung: {dl.label}",)))
            for s in dl.states:
                affect(s, "Fristen geändert")

    # Roles, bodies and fields: by id, compared by their properties.
    def simple(section: Section, before: Mapping[str, dict[str, str]], after: Mapping[str, dict[str, str]]) -> None:
        for key, props in after.items():
            if key not in before:
                items.append(Item(section, "added", key, _summary(props, props)))
            elif changes := _changes(before[key], props):
                items.append(Item(section, "changed", key, changes))
        items.extend(Item(section, "removed", key) for key in before if key not in after)

    def roles(d: Definition) -> dict[str, dict[str, str]]:
        return {r: {"Mitglieder": _names(m)} for r, m in d.roles.items()}

    def bodies(d: Definition) -> dict[str, dict[str, str]]:
        return {b.id: {"Name": b.name, "Ladungsfrist": f"{b.invitation_days} Tage", "contact": b.contact or NONE,
                       "Ort": b.location or NONE, "Sitzungsdauer": f"{b.meeting_hours:g} Stunden"}
                for b in d.bodies.values()}

    def fields(d: Definition) -> dict[str, dict[str, str]]:
        return {f.name: {"Typ": f.type, "Pflicht": _yes(f.required),
                         "Voreinstellung": NONE if f.default is None else str(f.default)} for f in d.fields.values()}

    simple("role", roles(old), roles(new))
    simple("body", bodies(old), bodies(new))
    simple("field", fields(old), fields(new))
    order = list(SECTION_DE)
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
        raise NotFoundError(f"workflow '{workflow}' has no stored version in {store.url}; stored: "
                            f"{', '.join(known) or 'none'} (a version is stored when a paper starts on it)")
    version, text = max(versions)
    return load_definition(text, f"<{workflow} version {version} in the database>"), text


def running_papers(store: Store, workflow: str) -> dict[str, int]:
    """Papers of ``workflow`` not in a final state (of the version each is on), counted by state."""
    finals: dict[str, frozenset[str]] = {}
    for w, _, digest, text in store.iter_definitions():
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
    return f"{n} laufende Vorlage{'n' if n != 1 else ''}"


def render_text(diff: DefinitionDiff, old_name: str, new_name: str) -> list[str]:
    """The German report, line by line."""
    lines = [f"Workflow {diff.workflow}: Version {diff.old_version} ({old_name}) → Version {diff.new_version} "
             f"({new_name})"]
    if not diff.items:
        lines.append("Keine Unterschiede.")
    section = ""
    for item in diff.items:
        if item.section != section:
            section = item.section
            lines += ["", f"{SECTION_DE[section]}:"]
        lines.append(f"  {_MARK[item.kind]} {item.name}: {KIND_DE[item.kind]}")
        lines.extend(f"      {d}" for d in item.details)
    if diff.new_version > diff.old_version:
        lines += ["", "Migration:", f"  {diff.command()}"]
        for s in diff.unmapped:
            lines.append(f"  Zustand '{s}' entfällt ohne Nachfolger: ergänzen Sie --map {s}=ZUSTAND, sonst bleiben "
                         "Vorlagen dort auf der alten Version")
    elif diff.items:
        lines += ["", f"Achtung: die neue Fassung hat Version {diff.new_version}, nicht mehr als "
                      f"{diff.old_version}: für councilflow migrate braucht sie eine höhere Versionsnummer."]
    if diff.papers is not None:
        lines += ["", "Laufende Vorlagen in betroffenen Zuständen:"]
        shown = [(s, why) for s, why in diff.affected.items()]
        for s, why in shown:
            lines.append(f"  {s} ({why}): {diff.papers.get(s, 0)}")
        if not shown:
            lines.append("  keine Zustände betroffen")
        total = sum(diff.papers.get(s, 0) for s, _ in shown)
        lines.append(f"  zusammen {_papers(total)}")
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
        raise DefinitionError([Problem(path, 1, 1, f"not UTF-8 text: {exc.reason}")]) from None
    except OSError as exc:
        raise DefinitionError([Problem(path, 1, 1, f"cannot read: {exc.strerror}")]) from None
    return load_definition(text, path)


def _open(url: str) -> Store:
    from pathlib import Path

    from .store import open_store

    store = open_store(url)
    local = store.local_file
    if local is not None and not Path(local).exists():  # opening would create an empty database
        raise NotFoundError(f"no database at {url}: give the one the papers are in with --db")
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
            raise InputError(f"{first} is workflow '{old.workflow}', {second} is '{new.workflow}': compare two "
                             "versions of one workflow")
        if db is not None:
            store = _open(db)
    else:
        if new.workflow != first:
            raise InputError(f"{second} is workflow '{new.workflow}', not '{first}'")
        store = _open(db or default_db)
        old, _ = stored_newest(store, first)
        old_name = f"gespeichert in {store.url}"
    diff = diff_definitions(old, new)
    if store is not None:
        diff.papers = running_papers(store, new.workflow)
        store.dispose()
    if fmt == "json":
        return to_json(diff)
    for line in render_text(diff, old_name, second):
        echo(line)
    return None
