"""The ``councilflow`` command. Thin: it parses, calls the engine, prints.

Exit codes: 0 ok; 2 usage; 3 bad definition; 4 bad input; 5 not allowed now; 6 not permitted;
7 conflict; 8 not found; 9 storage; 10 audit trail broken; 11 a system program is missing.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from .errors import DefinitionError, InputError, StorageError, WorkflowError
from .i18n import LANGUAGES, _, language_from_environment, set_language

if TYPE_CHECKING:
    from notifier.dispatch import Dispatcher

    from .definition import Definition
    from .engine import Engine, Status
    from .store import AuditRecord

F = TypeVar("F", bound=Callable[..., Any])


def _local(moment: datetime | None, zone: str) -> str:
    from .german import format_local

    return format_local(moment, zone)


def _dump(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False))


class Context:
    """What every command shares: the settings (file, environment, options) and the clock."""

    def __init__(self, db: str | None, definitions: str | None, now: str | None, config: str | None = None) -> None:
        from .config import load_settings

        self.settings = load_settings(config, db=db, definitions=definitions)
        self.db = self.settings.db
        self.definitions = self.settings.definitions
        self.now = now or os.environ.get("COUNCILFLOW_NOW") or None
        self._engine: Engine | None = None

    def clock(self) -> Any:
        from .clock import FixedClock, SystemClock
        from .values import user_instant

        if not self.now:
            return SystemClock()
        return FixedClock(user_instant(self.now, self.settings.timezone, "--now"))

    def engine(self) -> Engine:
        if self._engine is None:
            from notifier.dispatch import check_templates

            from .engine import Engine
            from .library import DefinitionLibrary
            from .store import open_store

            library = DefinitionLibrary(self.definitions, checks=[check_templates])
            self._engine = Engine(open_store(self.db), library, self.clock(), morning_hour=self.settings.morning_hour,
                                  evening_hour=self.settings.evening_hour)
        return self._engine

    def dispatcher(self) -> Dispatcher:
        from notifier.dispatch import Dispatcher
        from notifier.transports import transport_from_url

        transport = transport_from_url(self.settings.mail, default_folder=self.settings.mail_folder(),
                                       password=os.environ.get("COUNCILFLOW_MAIL_PASSWORD"))
        return Dispatcher(self.engine(), transport, self.settings)


def common(func: F) -> F:
    """--db, --definitions, --now and --config on every command; the command receives ``ctx``."""

    @functools.wraps(func)
    def wrapper(*args: Any, db: str | None, definitions: str | None, now: str | None, config: str | None,
                **kwargs: Any) -> Any:
        return func(*args, ctx=Context(db, definitions, now, config), **kwargs)

    for option in reversed((
        click.option("--db", metavar="URL", default=None,
                     help="Database URL (env COUNCILFLOW_DB; default sqlite:///councilflow.db)."),
        click.option("--definitions", metavar="DIR", default=None,
                     help="Folder of workflow definitions (env COUNCILFLOW_DEFINITIONS; default ./definitions)."),
        click.option("--now", metavar="DATETIME", default=None,
                     help="Act at this simulated instant (env COUNCILFLOW_NOW)."),
        click.option("--config", metavar="FILE", default=None, help="Settings file, TOML (env COUNCILFLOW_CONFIG)."),
    )):
        wrapper = option(wrapper)
    return cast(F, wrapper)


def _values(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(_("--set '{pair}' must have the form FIELD=VALUE").format(pair=pair))
        if key.strip() in out:
            raise InputError(_("--set gives field '{field}' twice").format(field=key.strip()))
        out[key.strip()] = value
    return out


def _choose_language(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        set_language(value)
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="councilflow")
@click.option("--lang", type=click.Choice(LANGUAGES), default=None, is_eager=True, expose_value=False,
              callback=_choose_language,
              help="Language of messages and output (default: COUNCILFLOW_LANG, LANG, else de).")
def main() -> None:
    """councilflow: Sitzungsvorlagen durch ihre Beratungsfolge führen, mit Fristen und Prüfpfad."""


@main.command()
@common
def init(ctx: Context) -> None:
    """Create the database schema (safe to run again)."""
    ctx.engine().init()
    click.echo(f"ok: {ctx.engine().store.url}")


@main.command()
@click.option("--workflow", required=True)
@click.option("--to-version", "to_version", required=True, type=int)
@click.option("--map", "maps", multiple=True, metavar="OLD=NEW", help="Where papers in state OLD go (repeatable).")
@click.option("--dry-run", is_flag=True, help="Only list what would move and what could not.")
@common
def migrate(workflow: str, to_version: int, maps: tuple[str, ...], dry_run: bool, ctx: Context) -> None:
    """Move running papers of WORKFLOW to another version of its definition (audited, deadlines recomputed)."""
    mapping: dict[str, str] = {}
    for pair in maps:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise InputError(f"--map '{pair}' must have the form OLD_STATE=NEW_STATE")
        mapping[old.strip()] = new.strip()
    moved, untouched = ctx.engine().migrate(workflow, to_version, mapping, dry_run=dry_run)
    verb = "would move" if dry_run else "moved"
    for reference, old, new in moved:
        click.echo(f"{verb} {reference}: {old} → {new}")
    for reference, why in untouched:
        click.echo(f"left {reference}: {why}")
    click.echo(f"{len(moved)} {verb}, {len(untouched)} left untouched")


@main.group(name="db")
def db_group() -> None:
    """Schema migrations (Alembic, shipped in the package)."""


@db_group.command("upgrade")
@common
def db_upgrade(ctx: Context) -> None:
    """Bring the database schema to the newest revision."""
    store = ctx.engine().store
    before = store.schema_revision()
    store.init()
    click.echo(f"{store.url}: {before or 'empty'} → {store.schema_revision()}")


@db_group.command("current")
@common
def db_current(ctx: Context) -> None:
    """Print the database's schema revision and the newest one shipped."""
    from .store import SCHEMA_HEAD

    revision = ctx.engine().store.schema_revision()
    state = "at head" if revision == SCHEMA_HEAD else "behind: run `councilflow db upgrade`"
    click.echo(f"{revision or 'empty'} (head {SCHEMA_HEAD}, {state})")


@main.group(name="definitions")
def definitions_group() -> None:
    """Validate and show workflow definitions."""


@definitions_group.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@common
def validate(paths: tuple[str, ...], ctx: Context) -> None:
    """Check definition files (or the *.yaml files of folders); print every problem.

    Validation reads only the files: --db, --definitions and --now are accepted and unused.
    """
    from notifier.dispatch import check_templates

    from .loader import definition_files, load_definition_file

    files = definition_files(paths)
    if not files:
        raise InputError(f"no definition files in {', '.join(paths)}")
    failed = 0
    for f in files:
        if not f.exists():
            click.echo(f"{f}:1:1: no such file", err=True)
            failed += 1
            continue
        try:
            definition = load_definition_file(f)
            check_templates(definition, f.parent)
        except DefinitionError as exc:
            failed += 1
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            continue
        click.echo(f"{f}: ok")
    if failed:
        raise SystemExit(DefinitionError.exit_code)


@definitions_group.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--strict", is_flag=True, help="Exit 1 if there is any warning.")
@common
def lint(paths: tuple[str, ...], strict: bool, ctx: Context) -> None:
    """Warn about what is valid but probably not meant (German, path:line:col); invalid files as validate."""
    from notifier.dispatch import check_templates

    from .lint import lint_paths

    raise SystemExit(lint_paths(paths, strict=strict, echo=click.echo, checks=[check_templates]))


@definitions_group.command("diff")
@click.argument("old")
@click.argument("new", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@common
def definitions_diff(old: str, new: str, fmt: str, ctx: Context) -> None:
    """Compare NEW.yaml with the newest version of workflow OLD stored in --db, or with the file OLD.yaml.

    Lists added, removed, changed and renamed states, transitions, deadlines, roles; the migrate --map
    options; with a database, the running papers in each affected state.
    """
    from .defdiff import diff_command

    explicit = click.get_current_context().params.get("db")
    report = diff_command(old, new, fmt=fmt, db=explicit, default_db=ctx.db, echo=click.echo)
    if report is not None:
        _dump(report)


@definitions_group.command("schema")
@common
def definitions_schema(ctx: Context) -> None:
    """Print the JSON Schema (draft 2020-12) of the definition language, for editors."""
    from .language import schema_text

    click.echo(schema_text(), nl=False)


@definitions_group.command("list")
@common
def definitions_list(ctx: Context) -> None:
    """List the workflows of the definitions folder."""
    lib = ctx.engine().library
    for wid in lib.workflows():
        d, _text = lib.current(wid)
        click.echo(f"{d.workflow}\tv{d.version}\t{d.title}")


@definitions_group.command("show")
@click.argument("workflow")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "json", "svg", "png"]), default="mermaid",
              show_default=True, help="svg and png: the Graphviz diagram (needs Debian's graphviz).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write to FILE instead of standard output.")
@common
def definitions_show(workflow: str, fmt: str, out: Path | None, ctx: Context) -> None:
    """Print a workflow as a Graphviz diagram (SVG, PNG), a Mermaid state diagram or normalised JSON."""
    from .diagram import show

    d, _text = ctx.engine().library.current(workflow)
    show(d, fmt, out)


@definitions_group.command("simulate")
@click.argument("workflow")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "ics"]), default="table", show_default=True)
@click.option("--no-digest", "no_digest", is_flag=True, help="Leave out the daily digests that serve would queue.")
@common
def definitions_simulate(workflow: str, scenario: str, fmt: str, no_digest: bool, ctx: Context) -> None:
    """Dry run: play SCENARIO (YAML, see docs/simulate.md) on a paper of WORKFLOW in memory and print every
    state, deadline, mail and refusal in time order. Nothing is stored or sent (--db and --now are unused).
    A refused step stops the run; the exit code is then that of the refusal (4, 5 or 6)."""
    from notifier.dispatch import check_templates

    from .library import DefinitionLibrary
    from .simulate import ScenarioError, load_scenario, refusal_line, render, simulate

    library = DefinitionLibrary(ctx.definitions, checks=[check_templates])
    try:
        plan = load_scenario(scenario, library.current(workflow)[0].timezone)
    except ScenarioError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise SystemExit(exc.exit_code) from None
    sim = simulate(library, workflow, plan, ctx.settings, digests=not no_digest)
    click.echo(render(sim, fmt), nl=False)
    if sim.refused is not None:
        click.echo(f"councilflow: error: {refusal_line(sim)}", err=True)
        raise SystemExit(sim.refused.error.exit_code)


@main.group(name="documents")
def documents_group() -> None:
    """Create and list papers (Sitzungsvorlagen)."""


@documents_group.command("create")
@click.argument("workflow")
@click.argument("reference")
@click.option("--actor", required=True, metavar="EMAIL", help="Who creates the paper.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="A field value (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@common
def documents_create(
    workflow: str,
    reference: str,
    actor: str,
    sets: tuple[str, ...],
    as_json: bool,
    ctx: Context,
) -> None:
    """Create a paper of WORKFLOW with REFERENCE in the initial state."""
    engine = ctx.engine()
    paper = engine.create(workflow, reference, actor, _values(sets))
    _print_status(engine.status(paper.reference), as_json)


@documents_group.command("list")
@click.option("--workflow", default=None)
@common
def documents_list(workflow: str | None, ctx: Context) -> None:
    """List the references of all papers."""
    engine = ctx.engine()
    from .access import Person

    for st in engine.papers_for(Person("", auditor=True), workflow=workflow):
        click.echo(f"{st.reference}\t{st.workflow}\t{st.state}\t{st.fields.get('title', '')}")


@main.command()
@click.argument("reference")
@click.argument("trigger")
@click.option("--actor", required=True, metavar="EMAIL", help="Who fires the trigger.")
@click.option("--branch", default=None, metavar="BODY", help="The branch (body) a branch trigger acts on.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="result=…, meeting=…, or a field.")
@click.option("--reason", default=None, metavar="TEXT",
              help="Why (recorded in the trail); required for a trigger with confirm: true.")
@click.option("--json", "as_json", is_flag=True, help="Print the new status as JSON.")
@common
def fire(
    reference: str,
    trigger: str,
    actor: str,
    branch: str | None,
    sets: tuple[str, ...],
    reason: str | None,
    as_json: bool,
    ctx: Context,
) -> None:
    """Fire TRIGGER on the paper REFERENCE."""
    engine = ctx.engine()
    engine.fire(reference, trigger, actor, branch=branch, values=_values(sets), reason=reason)
    _print_status(engine.status(reference), as_json)


@main.command()
@click.argument("reference")
@click.argument("when", metavar="DATETIME")
@click.option("--actor", required=True, metavar="EMAIL")
@click.option("--branch", default=None, metavar="BODY")
@click.option("--json", "as_json", is_flag=True)
@common
def meeting(
    reference: str,
    when: str,
    actor: str,
    branch: str | None,
    as_json: bool,
    ctx: Context,
) -> None:
    """Set or move the meeting of the paper's consultation (or of one branch)."""
    engine = ctx.engine()
    engine.set_meeting(reference, when, actor, branch=branch)
    _print_status(engine.status(reference), as_json)


@main.command()
@click.argument("reference")
@click.argument("deadline")
@click.option("--actor", required=True, metavar="EMAIL")
@click.option("--branch", default=None, metavar="BODY", help="The branch (body) whose deadline is done.")
@click.option("--note", default="", help="What was done (recorded in the trail).")
@click.option("--undo", is_flag=True, help="Take a mistaken 'erledigt' back (also recorded).")
@common
def done(reference: str, deadline: str, actor: str, branch: str | None, note: str, undo: bool,
         ctx: Context) -> None:
    """Mark a running deadline of a paper done: its reminders and escalation are cancelled."""
    engine = ctx.engine()
    [change] = engine.done(reference, deadline, actor, branch=branch, note=note, undo=undo)
    zone = engine.definition_of(engine.load(reference)).timezone
    what = "wieder offen" if undo else "erledigt"
    click.echo(f"{reference}: Frist {deadline}{f' ({branch})' if branch else ''} {what} am "
               f"{_local(change.at, zone)} von {change.actor}")


@main.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True)
@click.option("--as-of", "as_of", default=None, metavar="DATETIME", help="Where the paper stood then.")
@common
def status(
    reference: str, as_json: bool, as_of: str | None, ctx: Context
) -> None:
    """Show where a paper stands and what it accepts now."""
    engine = ctx.engine()
    _print_status(engine.status(reference, as_of=as_of), as_json)


def _print_status(st: Status, as_json: bool) -> None:
    if as_json:
        _dump(st.to_json())
        return
    zone = st.timezone
    title = st.fields.get("title", "")
    click.echo(f"{st.reference}  {title}  [{st.workflow} v{st.workflow_version}]")
    if st.as_of:
        click.echo(f"  Stand am:   {_local(st.as_of, zone)}")
    click.echo(f"  Status:     {st.state_label} ({st.state}) seit {_local(st.entered_at, zone)}")
    if st.body_name:
        click.echo(f"  Gremium:    {st.body_name}, Sitzung {_local(st.meeting, zone)}")
    if st.result:
        click.echo(f"  Ergebnis:   {st.result}")
    if st.branches:
        done = sum(1 for b in st.branches if b.status != "open")
        click.echo(f"  Gremien:    {done} von {len(st.branches)} entschieden")
        from .german import branch_status

        for b in st.branches:
            extra = f", {b.deferrals}× vertagt" if b.deferrals else ""
            click.echo(
                f"    {b.name:<34} {branch_status(b.status, st.hearings):<16} Sitzung {_local(b.meeting, zone)}"
                f"{'  – ' + b.result if b.result else ''}{extra}"
            )
    click.echo(f"  Mögliche Schritte: {', '.join(st.triggers) if st.triggers else '– (Endzustand)'}")


@main.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True)
@common
def history(reference: str, as_json: bool, ctx: Context) -> None:
    """List every recorded change of a paper, in order."""
    engine = ctx.engine()
    records = engine.history(reference)
    if as_json:
        _dump([_record_json(r) for r in records])
        return
    zone = engine.definition_of(engine.load(reference)).timezone
    for r in records:
        click.echo(_record_line(r, zone, engine.entry_definition(r.workflow, r.workflow_version)))


def _record_json(r: AuditRecord) -> dict[str, Any]:
    from .audit import record_json

    return record_json(r)


def _record_line(r: AuditRecord, zone: str, definition: Definition | None = None) -> str:
    """One entry as a line: labels (of the entry's definition version) as people read them, the trigger id in
    brackets."""
    from .german import entry_text

    text = entry_text(r, definition, zone)
    move = text.target if text.source is None else f"{text.source} → {text.target}"
    details = ([f"Gremium {text.body}"] if r.branch else []) + list(text.details)
    extra = f"  ({'; '.join(details)})" if details else ""
    return f"{r.seq:>5}  {_local(r.at, zone)}  {r.actor:<40} {text.label} [{r.trigger}]  {move}{extra}"


@main.group(name="audit")
def audit_group() -> None:
    """Check the audit trail."""



def _write_records(records: Iterable[AuditRecord], fmt: str, zone: str,
                   definitions: Callable[[str, int], Definition | None] | None = None) -> int:
    """Stream entries to stdout as a table, a JSON array or CSV (plain or for German Excel); one at a time,
    so memory stays flat."""
    out = sys.stdout
    count = 0
    if fmt in ("csv", "csv-excel"):
        from .audit import csv_chunks

        def counted() -> Iterator[AuditRecord]:
            nonlocal count
            for r in records:
                count += 1
                yield r

        for chunk in csv_chunks(counted(), fmt, zone, definitions=definitions):
            if fmt == "csv-excel" and hasattr(out, "buffer"):
                out.flush()
                out.buffer.write(chunk.encode("utf-8"))  # exactly these bytes: BOM and CRLF, whatever the locale
                out.buffer.flush()
            else:
                out.write(chunk)
    elif fmt == "json":
        out.write("[")
        for r in records:
            out.write(("\n" if count == 0 else ",\n") + json.dumps(_record_json(r), ensure_ascii=False))
            count += 1
        out.write("\n]\n" if count else "]\n")
    else:
        for r in records:
            definition = definitions(r.workflow, r.workflow_version) if definitions else None
            out.write(f"{r.reference:<14} {_record_line(r, zone, definition)}\n")
            count += 1
    return count


@audit_group.command("query")
@click.option("--reference", default=None)
@click.option("--workflow", default=None)
@click.option("--actor", default=None)
@click.option("--trigger", default=None)
@click.option("--body", default=None, help="Gremium: Kennung oder Name")
@click.option("--from", "from_state", default=None, help="Status vorher: Kennung oder Bezeichnung")
@click.option("--to", "to_state", default=None, help="Status nachher: Kennung oder Bezeichnung")
@click.option("--since", default=None, metavar="DATETIME")
@click.option("--until", default=None, metavar="DATETIME")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "csv-excel"]), default="table",
              show_default=True)
@common
def audit_query(reference: str | None, workflow: str | None, actor: str | None, trigger: str | None,
                body: str | None, from_state: str | None, to_state: str | None, since: str | None,
                until: str | None, fmt: str, ctx: Context) -> None:
    """Stream the entries that match every given filter, in order (workflow, body and states by id or label)."""
    zone = ctx.settings.timezone
    engine = ctx.engine()
    records = engine.audit(reference=reference, workflow=workflow, actor=actor, trigger=trigger, body=body,
                           from_state=from_state, to_state=to_state, since=since, until=until, zone=zone)
    _write_records(records, fmt, zone, engine.entry_definition)


@audit_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "csv-excel"]), default="csv", show_default=True)
@common
def audit_export(fmt: str, ctx: Context) -> None:
    """Write the whole trail, in order (streamed)."""
    engine = ctx.engine()
    _write_records(engine.audit(), fmt, ctx.settings.timezone, engine.entry_definition)


@audit_group.command("head")
@click.option("--json", "as_json", is_flag=True)
@common
def audit_head(as_json: bool, ctx: Context) -> None:
    """Print the trail's head: keep it outside the database, check it later with `verify --head`."""
    seq, digest = ctx.engine().head()
    if as_json:
        _dump({"seq": seq, "hash": digest})
    else:
        click.echo(f"{seq} {digest}")


@audit_group.command("timeline")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True)
@common
def audit_timeline(reference: str, as_json: bool, ctx: Context) -> None:
    """Where the paper stood at every point of its trail."""
    engine = ctx.engine()
    definition = engine.definition_of(engine.load(reference))
    periods = engine.timeline(reference)
    if as_json:
        _dump([{"since": p.since.isoformat(), "until": p.until.isoformat() if p.until else None, "seq": p.seq,
                "trigger": p.trigger, "actor": p.actor, "state": p.state.state, "state_label": p.label,
                "meeting": p.state.meeting.isoformat() if p.state.meeting else None,
                "open_branches": [b.body for b in p.state.open_branches()]} for p in periods])
        return
    zone = definition.timezone
    for p in periods:
        until = _local(p.until, zone) if p.until else "heute"
        label = p.label
        extra = f", Sitzung {_local(p.state.meeting, zone)}" if p.state.meeting else ""
        if p.state.branches:
            extra += f", {len(p.state.open_branches())} von {len(p.state.branches)} Gremien offen"
        click.echo(f"{_local(p.since, zone)} – {until:<16}  {label}{extra}  [{p.trigger}, {p.actor}]")


@audit_group.command("verify")
@click.option("--head", "head", default=None, metavar="HASH", help="A head hash kept outside the database.")
@click.option("--json", "as_json", is_flag=True)
@common
def audit_verify(head: str | None, as_json: bool, ctx: Context) -> None:
    """Recompute the hash chain and name the first broken entry."""
    from .errors import AuditIntegrityError

    report = ctx.engine().verify(head)
    if as_json:
        _dump(report.to_json())
    if not report.ok:
        if as_json:
            raise SystemExit(AuditIntegrityError.exit_code)
        raise AuditIntegrityError(f"audit trail broken: {report.problem}")
    if not as_json:
        click.echo(f"ok: {report.entries} entries, head {report.head_hash}")


@audit_group.command("report")
@click.option("--reference", "references", multiple=True, metavar="R", help="Vorlage (mehrfach: jede davon).")
@click.option("--workflow", default=None, help="Ablauf: Kennung oder Name")
@click.option("--person", default=None, metavar="EMAIL", help="Nur Einträge dieser Person")
@click.option("--trigger", default=None)
@click.option("--body", default=None, help="Gremium: Kennung oder Name")
@click.option("--from", "from_state", default=None, help="Status vorher: Kennung oder Bezeichnung")
@click.option("--to", "to_state", default=None, help="Status nachher: Kennung oder Bezeichnung")
@click.option("--since", default=None, metavar="DATETIME")
@click.option("--until", default=None, metavar="DATETIME")
@click.option("--actor", required=True, metavar="EMAIL", help="Wer den Bericht erstellt (Prüferin, Prüfer).")
@click.option("--out", required=True, metavar="FILE", help="FILE.pdf, FILE.html oder FILE.json")
@click.option("--format", "fmt", type=click.Choice(["pdf", "html", "json"]), default=None,
              help="Sonst nach der Endung von --out; json: der gehashte Inhalt, Byte für Byte.")
@common
def audit_report(references: tuple[str, ...], workflow: str | None, person: str | None, trigger: str | None,
                 body: str | None, from_state: str | None, to_state: str | None, since: str | None,
                 until: str | None, actor: str, out: str, fmt: str | None, ctx: Context) -> None:
    """Write the Prüfbericht of the entries in scope (the filters of `audit query`), with the chain's verify
    result and the SHA-256 of its content; exit 10 (after writing it) if the chain is broken."""
    from .errors import AuditIntegrityError
    from .report import build_report, check_out, format_of, render, write_report

    check_out(out)
    kind = format_of(out, fmt)
    report = build_report(ctx.engine(), producer=actor, zone=ctx.settings.timezone, references=references,
                          workflow=workflow, actor=person, trigger=trigger, body=body, from_state=from_state,
                          to_state=to_state, since=since, until=until)
    path = write_report(render(report, kind), out)
    click.echo(f"Prüfbericht {path}: {len(report.rows)} Einträge, Inhalt SHA-256 {report.content_hash}")
    if not report.verify.ok:
        raise AuditIntegrityError(f"Prüfpfad gebrochen: {report.verify.problem} (der Bericht {path} sagt es)")


@main.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True)
@common
def deadlines(reference: str, as_json: bool, ctx: Context) -> None:
    """List a paper's running deadlines with due dates and reminder times."""
    engine = ctx.engine()
    paper = engine.load(reference)
    zone = engine.definition_of(paper).timezone
    views = engine.deadlines(paper)
    waiting = engine.waiting(paper)
    if as_json:
        _dump([*(v.to_json() for v in views),
               *({"name": w.deadline.name, "label": w.deadline.label, "branch": w.branch, "status": "waiting",
                  "reason": w.reason} for w in waiting)])
        return
    if not views and not waiting:
        click.echo(f"{paper.reference}: keine laufenden Fristen")
    for view in views:
        d, mails = view.deadline, view.mails
        where = f" ({d.branch})" if d.branch else ""
        click.echo(f"{_local(d.due_at, zone)}  {d.label}{where}")
        if view.description:
            click.echo(f"    {view.description}")
        if view.done is not None:
            at, by, note = view.done
            click.echo(f"    erledigt am {_local(at, zone)} von {by}{f': {note}' if note else ''}")
        for m in mails:
            from .german import MAIL_KIND

            kind = MAIL_KIND.get(m.kind, m.kind)
            click.echo(f"    {kind:<10} {_local(m.send_at, zone)}  {m.status:<8} an {', '.join(m.recipients)}")
    for w in waiting:
        where = f" ({w.branch})" if w.branch else ""
        click.echo(f"{'noch nicht gestartet':<16}  {w.deadline.label}{where}: {w.reason}")


@main.group(name="reminders")
def reminders_group() -> None:
    """The outbox: what will go out, previews, and what failed."""


def _print_reminders(items: list[Any], as_json: bool, zone: str) -> None:
    if as_json:
        _dump([r.to_json() for r in items])
        return
    for r in items:
        extra = f"  [{r.last_error}]" if r.last_error else ""
        click.echo(f"{_local(r.next_attempt_at, zone)}  {r.status:<8} {r.kind:<8} {r.reference or '-':<14} "
                   f"{r.label}  → {', '.join(r.recipients)}{extra}")


@reminders_group.command("list")
@click.option("--due-before", "due_before", default=None, metavar="DATETIME")
@click.option("--json", "as_json", is_flag=True)
@common
def reminders_list(due_before: str | None, as_json: bool, ctx: Context) -> None:
    """List pending mails in the order they will go out."""
    from .values import user_instant

    until = user_instant(due_before, ctx.settings.timezone, "--due-before") if due_before else None
    items = ctx.engine().reminders(statuses=("pending", "claimed"), due_before=until)
    _print_reminders(items, as_json, ctx.settings.timezone)


@reminders_group.command("failed")
@click.option("--json", "as_json", is_flag=True)
@common
def reminders_failed(as_json: bool, ctx: Context) -> None:
    """List mails that could not be delivered, with the reason."""
    items = ctx.engine().reminders(statuses=("failed",))
    _print_reminders(items, as_json, ctx.settings.timezone)


@reminders_group.command("preview")
@click.argument("reference")
@common
def reminders_preview(reference: str, ctx: Context) -> None:
    """Render a paper's pending mails without sending them."""
    from notifier.dispatch import Composer

    engine = ctx.engine()
    paper = engine.load(reference)
    composer = Composer(engine, ctx.settings)
    items = engine.reminders(reference=paper.reference, statuses=("pending", "claimed", "failed"))
    if not items:
        click.echo(f"{paper.reference}: keine ausstehenden Nachrichten")
    for r in items:
        message = composer.compose(r, engine.clock.now())
        click.echo(f"=== {r.kind} {r.id}, geplant {_local(r.send_at, ctx.settings.timezone)} ===")
        for header in ("From", "To", "Subject", "Message-ID"):
            click.echo(f"{header}: {message[header]}")
        body = message.get_body(preferencelist=("plain",))
        click.echo("")
        click.echo(body.get_content() if body is not None else "")


@main.command()
@click.option("--digest", is_flag=True, help="Also queue today's digests first (for cron instead of serve).")
@click.option("--until", default=None, metavar="DATETIME",
              help="Rehearsal: step the simulated clock from --now (default: now) through every moment a mail "
                   "falls due up to DATETIME and deliver at each, dated then (with --digest: each day's digests "
                   "at the digest hour).")
@common
def tick(digest: bool, until: str | None, ctx: Context) -> None:
    """Run one pass: send every mail that is due now (or at --now); with --until, every pass up to then."""
    if until is not None:
        _tick_until(until, digest, ctx)
        return
    dispatcher = ctx.dispatcher()
    queued = dispatcher.queue_digests() if digest else 0
    report = dispatcher.tick()
    report.digests = queued
    click.echo(report.line())
    for error in report.errors:
        click.echo(f"  {error}", err=True)


def _tick_until(until: str, digest: bool, ctx: Context) -> None:
    from notifier.dispatch import TickReport
    from notifier.stepping import deliver_until, mail_line

    from .clock import FixedClock
    from .values import user_instant

    ctx.now = ctx.now or datetime.now(UTC).isoformat()
    dispatcher = ctx.dispatcher()
    clock = dispatcher.engine.clock
    assert isinstance(clock, FixedClock)
    zone = ctx.settings.timezone
    end = user_instant(until, zone, "--until")
    if end < clock.now():
        raise InputError(f"--until {until} liegt vor dem Start {_local(clock.now(), zone)} (--now)")
    def delivered(moment: datetime, report: TickReport) -> None:
        for mail in report.delivered:
            click.echo(mail_line(moment, mail, zone))

    report = deliver_until(dispatcher, clock, end, digests=digest, on_tick=delivered)
    click.echo(report.line())
    for error in report.errors:
        click.echo(f"  {error}", err=True)


@main.command()
@common
def serve(ctx: Context) -> None:
    """Run the scheduler: ticks and the daily digest, until SIGTERM."""
    from notifier.scheduler import serve as run_scheduler

    if ctx.now:
        raise InputError("serve runs on the real clock; use `councilflow tick --now …` to simulate")
    store = ctx.engine().store
    store.init()
    with _single_sqlite_server(store.local_file, store.url):
        run_scheduler(ctx.dispatcher(), ctx.settings, echo=lambda line: click.echo(line, err=False))


@contextmanager
def _single_sqlite_server(database: Path | None, url: str) -> Iterator[None]:
    """SQLite is for one process: a second `serve` on the same file refuses to start."""
    if database is None:
        yield
        return
    import fcntl

    from .errors import ConflictError

    lock_path = Path(f"{database}.serve.lock")
    handle = lock_path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise ConflictError(f"another councilflow serve (pid {holder}) runs on {url}; SQLite is for one "
                            "process — use PostgreSQL for several") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@main.command()
@common
def doctor(ctx: Context) -> None:
    """Check a deployment: database, definitions and templates, mail transport, scheduler heartbeat."""
    from datetime import timedelta

    from notifier.dispatch import check_templates

    from .loader import definition_files, load_definition_file

    results: list[tuple[bool, str, str]] = []

    def check(name: str, fn: Callable[[], str]) -> None:
        try:
            results.append((True, name, fn()))
        except WorkflowError as exc:
            results.append((False, name, exc.message.splitlines()[0]))
        except Exception as exc:  # a check must report, never crash the doctor
            results.append((False, name, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))

    engine = ctx.engine()

    def database() -> str:
        engine.init()
        return f"{engine.store.url} reachable, schema present, {engine.store.count_audit()} audit entries"

    def definitions() -> str:
        files = definition_files([ctx.definitions])
        if not files:
            raise InputError(f"no definitions in {ctx.definitions}")
        for f in files:
            check_templates(load_definition_file(f), f.parent)
        return f"{len(files)} valid, their mail templates render"

    def mail() -> str:
        from notifier.transports import SendError

        try:
            return ctx.dispatcher().transport.check()
        except SendError as exc:
            raise StorageError(str(exc)) from None

    def heartbeat() -> str:
        last = engine.store.last_beat()
        if last is None:
            raise StorageError("no serve process has ticked yet")
        worker, at = last
        age = engine.clock.now() - at
        if age > timedelta(seconds=3 * ctx.settings.tick_seconds):
            raise StorageError(f"last tick {int(age.total_seconds())} s ago by {worker} (expected every "
                               f"{ctx.settings.tick_seconds} s)")
        return f"last tick {int(age.total_seconds())} s ago by {worker}"

    for name, fn in (("database", database), ("definitions", definitions), ("mail", mail),
                     ("scheduler", heartbeat)):
        check(name, fn)
    for ok, name, detail in results:
        click.echo(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not all(ok for ok, _name, _detail in results):
        raise SystemExit(1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@common
def web(host: str, port: int, ctx: Context) -> None:
    """Serve the JSON API, the pages and the OParl endpoint (behind the administration's proxy)."""
    import uvicorn

    from .web import create_app

    if ctx.now:
        raise InputError("web runs on the real clock; --now is for commands that act once")
    from .web.identity import Identity

    engine = ctx.engine()
    engine.init()
    identity = Identity(engine, ctx.settings)
    click.echo(f"councilflow web auf http://{host}:{port}/ – Anmeldung: {identity.modes()}")
    if not ctx.settings.trusted_header:
        click.echo("  (keine Kopfzeile eines Proxys: trusted_header und trusted_proxies setzen, siehe README)")
    uvicorn.run(create_app(engine, ctx.settings), host=host, port=port, log_level="warning")


@main.group(name="tokens")
def tokens_group() -> None:
    """Bearer tokens for API clients and calendar feed secrets (stored hashed, revocable)."""


@tokens_group.command("create")
@click.argument("email")
@click.option("--label", default="", help="What the token is for.")
@click.option("--calendar", is_flag=True,
              help="A calendar feed secret instead: the address of EMAIL's calendar (deadlines and meetings); "
                   "it opens that feed only and is no API token.")
@common
def tokens_create(email: str, label: str, calendar: bool, ctx: Context) -> None:
    """Create a token for EMAIL; it is shown once."""
    from .tokens import CALENDAR, calendar_path, create_token

    engine = ctx.engine()
    who = email.strip().lower()
    if not calendar:
        token_id, token = create_token(engine.store, email, label, engine.clock.now())
        click.echo(f"token {token_id} for {who}: {token}")
        return
    token_id, token = create_token(engine.store, email, label or "Kalender", engine.clock.now(), CALENDAR)
    base = ctx.settings.base_url.rstrip("/")
    click.echo(f"Kalender-Link {token_id} für {who} (wird nur jetzt angezeigt):")
    click.echo(f"{base}{calendar_path(token)}")
    if not base:
        click.echo("  (base_url ist nicht gesetzt: die Adresse von councilflow web davorsetzen)")


@tokens_group.command("list")
@common
def tokens_list(ctx: Context) -> None:
    """List tokens (never the tokens themselves): id, e-mail, scope (api or calendar), state, label."""
    from .tokens import list_tokens

    for t in list_tokens(ctx.engine().store):
        state = f"revoked {_local(t.revoked_at, ctx.settings.timezone)}" if t.revoked_at else "active"
        click.echo(f"{t.id}\t{t.email}\t{t.scope}\t{state}\t{t.label}")


@tokens_group.command("revoke")
@click.argument("token_id", type=click.IntRange(1, 2**62))
@common
def tokens_revoke(token_id: int, ctx: Context) -> None:
    """Revoke a token at once."""
    from .tokens import revoke_token

    engine = ctx.engine()
    revoke_token(engine.store, token_id, engine.clock.now())
    click.echo(f"token {token_id} revoked")


@main.group(name="export")
def export_group() -> None:
    """Write the papers in other formats."""


@export_group.command("oparl")
@click.option("--out", "out", default="oparl-export", show_default=True, type=click.Path(file_okay=False))
@click.option("--base-url", "base_url", default=None, help="Base of the object ids (setting oparl_base_url).")
@click.option("--include-non-public", "include_non_public", is_flag=True,
              help="Also papers marked public: false (default: public papers only, as the live endpoint).")
@common
def export_oparl(out: str, base_url: str | None, include_non_public: bool, ctx: Context) -> None:
    """Write System, Body, Organizations, Papers and Meetings as OParl 1.1 JSON files."""
    engine = ctx.engine()
    objects = engine.oparl(base_url or ctx.settings.oparl_base_url, ctx.settings.body_name, ctx.settings.timezone,
                           public_only=not include_non_public)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in objects.items():
        target = folder / f"{name}.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(value, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        tmp.replace(target)  # whole files only: a reader never sees half an export
    click.echo(f"{len(objects['papers'])} papers, {len(objects['meetings'])} meetings, "
               f"{len(objects['organizations'])} organizations → {folder}")


@main.group(name="import")
def import_group() -> None:
    """Read papers from other systems."""


@import_group.command("oparl")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--mapping", "mapping_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--meetings", "meetings_only", is_flag=True,
              help="Import meetings only: give waiting papers their body's next meeting.")
@common
def import_oparl(paths: tuple[str, ...], mapping_path: str, as_json: bool, meetings_only: bool,
                 ctx: Context) -> None:
    """Import OParl papers (files or folders), replaying their consultations through a workflow."""
    from .oparl_import import OParlImporter, load_mapping
    from .oparl_read import read_oparl

    engine = ctx.engine()
    mapping = load_mapping(Path(mapping_path), lambda w: engine.library.current(w)[0])
    data = read_oparl(Path(p) for p in paths)
    for problem in data.problems:
        click.echo(f"councilflow: warning: {problem}", err=True)
    importer = OParlImporter(engine, mapping)
    definition = importer.definition
    if meetings_only:
        scheduled = importer.schedule(data)
        if as_json:
            _dump([{"reference": r, "body": b, "meeting": m.astimezone(UTC).isoformat()} for r, b, m in scheduled])
            return
        for reference, body, moment in scheduled:
            click.echo(f"{reference}: {body} {_local(moment, definition.timezone)}")
        click.echo(f"{len(scheduled)} meetings set")
        return
    with click.progressbar(length=len(data.papers), label="Import", file=sys.stderr) as bar:
        def progress(items: Iterable[Any]) -> Iterable[Any]:
            for item in items:
                yield item
                bar.update(1)

        report = importer.run(data, progress)
    if as_json:
        _dump({"imported": report.imported, "updated": report.updated, "unchanged": report.unchanged,
               "skipped": [{"reference": r, "reason": why} for r, why in report.skipped],
               "unreadable": [str(p) for p in data.problems]})
        return
    click.echo(f"{report.summary()}, {len(data.problems)} unreadable objects")
    for reference, why in report.skipped:
        click.echo(f"  skipped {reference}: {why}")


@main.command()
@click.option("--db", metavar="URL", default=None, help="Database (default: a fresh councilflow-demo.db).")
@click.option("--definitions", metavar="DIR", default=None)
def demo(db: str | None, definitions: str | None) -> None:
    """Run the seed: SV-9-1809 and the Digitalisierungsstrategie through their paths."""
    from .demo import run_demo

    run_demo(db, definitions, echo=click.echo, status=_print_status, line=_record_line)


#: Exit code of an unexpected error (a bug): distinct from every documented one.
INTERNAL_ERROR = 70


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and a documented exit code."""
    set_language(language_from_environment())
    try:
        main.main(args=list(argv) if argv is not None else None, prog_name="councilflow", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo(_("councilflow: aborted"), err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except DefinitionError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        return exc.exit_code
    except WorkflowError as exc:
        click.echo(_("councilflow: error: {message}").format(message=exc.message), err=True)
        return exc.exit_code
    except Exception as exc:
        # SQLAlchemy is imported only by commands that use the database; match its errors by module.
        if type(exc).__module__.startswith("sqlalchemy."):
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            click.echo(_("councilflow: error: database: {detail}").format(detail=first), err=True)
            return StorageError.exit_code
        if os.environ.get("COUNCILFLOW_DEBUG"):
            raise
        # Never a traceback for a user: one line, a distinct exit code, and the way to the details.
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        click.echo(_("councilflow: internal error: {kind}: {detail} (a bug in councilflow; COUNCILFLOW_DEBUG=1 "
                     "shows the details)").format(kind=type(exc).__name__, detail=detail), err=True)
        return INTERNAL_ERROR
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


def entry() -> None:
    sys.exit(run())


if __name__ == "__main__":
    entry()
