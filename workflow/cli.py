"""The ``councilflow`` command. Thin: it parses, calls the engine, prints.

Exit codes: 0 ok; 2 usage; 3 bad definition; 4 bad input; 5 not allowed now; 6 not permitted;
7 conflict; 8 not found; 9 storage; 10 audit trail broken.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import click

from .errors import DefinitionError, InputError, StorageError, WorkflowError

if TYPE_CHECKING:
    from .engine import Engine, Status
    from .store import AuditRecord

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_ZONE = "Europe/Berlin"


def _local(moment: datetime | None, zone: str) -> str:
    if moment is None:
        return "–"
    return moment.astimezone(ZoneInfo(zone)).strftime("%d.%m.%Y %H:%M")


def _dump(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False))


class Context:
    """What every command shares: where the database and definitions are, and the clock."""

    def __init__(self, db: str | None, definitions: str | None, now: str | None) -> None:
        self.db = db or os.environ.get("COUNCILFLOW_DB") or "sqlite:///councilflow.db"
        self.definitions = definitions or os.environ.get("COUNCILFLOW_DEFINITIONS") or "definitions"
        self.now = now or os.environ.get("COUNCILFLOW_NOW") or None
        self._engine: Engine | None = None

    def clock(self) -> Any:
        from .clock import FixedClock, SystemClock
        from .values import parse_datetime

        if not self.now:
            return SystemClock()
        zone = os.environ.get("COUNCILFLOW_TIMEZONE", DEFAULT_ZONE)
        try:
            return FixedClock(parse_datetime(self.now, zone))
        except ValueError as exc:
            raise InputError(f"--now: {exc}") from None

    def engine(self) -> Engine:
        if self._engine is None:
            from .engine import Engine
            from .library import DefinitionLibrary
            from .store import SqlStore

            self._engine = Engine(SqlStore(self.db), DefinitionLibrary(self.definitions), self.clock())
        return self._engine


def common(func: F) -> F:
    """--db, --definitions and --now on every command (each with its environment variable)."""
    func = click.option(
        "--now", metavar="DATETIME", default=None, help="Act at this simulated instant (env COUNCILFLOW_NOW)."
    )(func)
    func = click.option(
        "--definitions",
        metavar="DIR",
        default=None,
        help="Folder of workflow definitions (env COUNCILFLOW_DEFINITIONS; default ./definitions).",
    )(func)
    func = click.option(
        "--db", metavar="URL", default=None, help="Database URL (env COUNCILFLOW_DB; default sqlite:///councilflow.db)."
    )(func)
    return func


def _ctx(db: str | None, definitions: str | None, now: str | None) -> Context:
    return Context(db, definitions, now)


def _values(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set '{pair}' must have the form FIELD=VALUE")
        if key.strip() in out:
            raise InputError(f"--set gives field '{key.strip()}' twice")
        out[key.strip()] = value
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="councilflow")
def main() -> None:
    """councilflow: Sitzungsvorlagen durch ihre Beratungsfolge führen, mit Fristen und Prüfpfad."""


@main.command()
@common
def init(db: str | None, definitions: str | None, now: str | None) -> None:
    """Create the database schema (safe to run again)."""
    ctx = _ctx(db, definitions, now)
    ctx.engine().store.init()
    click.echo(f"ok: {ctx.engine().store.url}")


@main.group(name="definitions")
def definitions_group() -> None:
    """Validate and show workflow definitions."""


@definitions_group.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@common
def validate(paths: tuple[str, ...], db: str | None, definitions: str | None, now: str | None) -> None:
    """Check definition files (or the *.yaml files of folders); print every problem.

    Validation reads only the files: --db, --definitions and --now are accepted and unused.
    """
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
            load_definition_file(f)
        except DefinitionError as exc:
            failed += 1
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            continue
        click.echo(f"{f}: ok")
    if failed:
        raise SystemExit(DefinitionError.exit_code)


@definitions_group.command("list")
@common
def definitions_list(db: str | None, definitions: str | None, now: str | None) -> None:
    """List the workflows of the definitions folder."""
    ctx = _ctx(db, definitions, now)
    lib = ctx.engine().library
    for wid in lib.workflows():
        d, _ = lib.current(wid)
        click.echo(f"{d.workflow}\tv{d.version}\t{d.title}")


@definitions_group.command("show")
@click.argument("workflow")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "json"]), default="mermaid", show_default=True)
@common
def definitions_show(workflow: str, fmt: str, db: str | None, definitions: str | None, now: str | None) -> None:
    """Print a workflow as a Mermaid state diagram or as normalised JSON."""
    from .diagram import to_json, to_mermaid

    d, _ = _ctx(db, definitions, now).engine().library.current(workflow)
    if fmt == "json":
        _dump(to_json(d))
    else:
        click.echo(to_mermaid(d), nl=False)


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
    db: str | None,
    definitions: str | None,
    now: str | None,
) -> None:
    """Create a paper of WORKFLOW with REFERENCE in the initial state."""
    engine = _ctx(db, definitions, now).engine()
    paper = engine.create(workflow, reference, actor, _values(sets))
    _print_status(engine.status(paper.reference), as_json)


@documents_group.command("list")
@click.option("--workflow", default=None)
@common
def documents_list(workflow: str | None, db: str | None, definitions: str | None, now: str | None) -> None:
    """List the references of all papers."""
    engine = _ctx(db, definitions, now).engine()
    for ref in engine.store.references(workflow):
        st = engine.status(ref)
        click.echo(f"{ref}\t{st.workflow}\t{st.state}\t{st.fields.get('title', '')}")


@main.command()
@click.argument("reference")
@click.argument("trigger")
@click.option("--actor", required=True, metavar="EMAIL", help="Who fires the trigger.")
@click.option("--branch", default=None, metavar="BODY", help="The branch (body) a branch trigger acts on.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="result=…, meeting=…, or a field.")
@click.option("--json", "as_json", is_flag=True, help="Print the new status as JSON.")
@common
def fire(
    reference: str,
    trigger: str,
    actor: str,
    branch: str | None,
    sets: tuple[str, ...],
    as_json: bool,
    db: str | None,
    definitions: str | None,
    now: str | None,
) -> None:
    """Fire TRIGGER on the paper REFERENCE."""
    engine = _ctx(db, definitions, now).engine()
    engine.fire(reference, trigger, actor, branch=branch, values=_values(sets))
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
    db: str | None,
    definitions: str | None,
    now: str | None,
) -> None:
    """Set or move the meeting of the paper's consultation (or of one branch)."""
    engine = _ctx(db, definitions, now).engine()
    engine.set_meeting(reference, when, actor, branch=branch)
    _print_status(engine.status(reference), as_json)


@main.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True)
@click.option("--as-of", "as_of", default=None, metavar="DATETIME", help="Where the paper stood then.")
@common
def status(
    reference: str, as_json: bool, as_of: str | None, db: str | None, definitions: str | None, now: str | None
) -> None:
    """Show where a paper stands and what it accepts now."""
    engine = _ctx(db, definitions, now).engine()
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
        names = {"open": "offen", "adopted": "angenommen", "rejected": "abgelehnt", "not_needed": "nicht mehr nötig"}
        for b in st.branches:
            extra = f", {b.deferrals}× vertagt" if b.deferrals else ""
            click.echo(
                f"    {b.name:<34} {names[b.status]:<16} Sitzung {_local(b.meeting, zone)}"
                f"{'  – ' + b.result if b.result else ''}{extra}"
            )
    click.echo(f"  Mögliche Schritte: {', '.join(st.triggers) if st.triggers else '– (Endzustand)'}")


@main.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True)
@common
def history(reference: str, as_json: bool, db: str | None, definitions: str | None, now: str | None) -> None:
    """List every recorded change of a paper, in order."""
    engine = _ctx(db, definitions, now).engine()
    records = engine.history(reference)
    if as_json:
        _dump([_record_json(r) for r in records])
        return
    zone = engine.definition_of(engine.store.load(reference)).timezone
    for r in records:
        click.echo(_record_line(r, zone))


def _record_json(r: AuditRecord) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "at": r.at.isoformat(),
        "reference": r.reference,
        "workflow": r.workflow,
        "workflow_version": r.workflow_version,
        "kind": r.kind,
        "trigger": r.trigger,
        "from": r.from_state,
        "to": r.to_state,
        "branch": r.branch,
        "actor": r.actor,
        "payload": r.payload,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    }


_OUTCOME_DE = {
    "adopted": "angenommen",
    "rejected": "abgelehnt",
    "deferred": "vertagt",
    "not_needed": "nicht mehr nötig",
}


def _record_line(r: AuditRecord, zone: str) -> str:
    move = r.to_state if r.from_state in (None, r.to_state) else f"{r.from_state} → {r.to_state}"
    p = r.payload
    details = []
    if r.branch:
        details.append(f"Gremium {r.branch}")
    if "outcome" in p:
        details.append(_OUTCOME_DE.get(str(p["outcome"]), str(p["outcome"])))
    if "result" in p:
        details.append(f"„{p['result']}“")
    if "meeting" in p:
        details.append(f"Sitzung {_local(datetime.fromisoformat(p['meeting']), zone)}")
    extra = f"  ({'; '.join(details)})" if details else ""
    return f"{r.seq:>5}  {_local(r.at, zone)}  {r.actor:<40} {r.trigger:<14} {move}{extra}"


@main.group(name="audit")
def audit_group() -> None:
    """Check the audit trail."""


@audit_group.command("verify")
@click.option("--head", "head", default=None, metavar="HASH", help="A head hash kept outside the database.")
@click.option("--json", "as_json", is_flag=True)
@common
def audit_verify(head: str | None, as_json: bool, db: str | None, definitions: str | None, now: str | None) -> None:
    """Recompute the hash chain and name the first broken entry."""
    from .errors import AuditIntegrityError

    report = _ctx(db, definitions, now).engine().verify(head)
    if as_json:
        _dump(report.to_json())
    if not report.ok:
        if as_json:
            raise SystemExit(AuditIntegrityError.exit_code)
        raise AuditIntegrityError(f"audit trail broken: {report.problem}")
    if not as_json:
        click.echo(f"ok: {report.entries} entries, head {report.head_hash}")


@main.command()
@click.option("--db", metavar="URL", default=None, help="Database (default: a fresh councilflow-demo.db).")
@click.option("--definitions", metavar="DIR", default=None)
def demo(db: str | None, definitions: str | None) -> None:
    """Run the seed: SV-9-1809 and the Digitalisierungsstrategie through their paths."""
    from .demo import run_demo

    run_demo(db, definitions, echo=click.echo, status=_print_status, line=_record_line)


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and a documented exit code."""
    try:
        main.main(args=list(argv) if argv is not None else None, prog_name="councilflow", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("councilflow: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except DefinitionError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        return exc.exit_code
    except WorkflowError as exc:
        click.echo(f"councilflow: error: {exc.message}", err=True)
        return exc.exit_code
    except Exception as exc:
        # SQLAlchemy is imported only by commands that use the database; match its errors by module.
        if not type(exc).__module__.startswith("sqlalchemy."):
            raise
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        click.echo(f"councilflow: error: database: {first}", err=True)
        return StorageError.exit_code
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


def entry() -> None:
    sys.exit(run())
