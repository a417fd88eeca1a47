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
from .i18n import LANGUAGES, N_, _, language_from_environment, ngettext, set_language

if TYPE_CHECKING:
    from notifier.dispatch import Dispatcher

    from .definition import Definition
    from .engine import ChildView, Engine, Status
    from .store import AuditRecord
    from .store.records import FollowUpRecord

F = TypeVar("F", bound=Callable[..., Any])

#: Click's own texts that people read (the help's sections, usage errors), in the catalog like ours: click looks
#: them up when it shows them, through the catalogs once :func:`_click_speaks_our_language` ran.
CLICK_MESSAGES = (
    N_("Usage:"), N_("Options"), N_("Commands"), N_("Positional arguments"), N_("Show this message and exit."),
    N_("Show the version and exit."), N_("Error: {message}"), N_("Try '{command} {option}' for help."),
    N_("Missing command."), N_("No such command {name!r}."), N_("No such option {name!r}."),
    N_("Missing argument"), N_("Missing option"), N_("Missing parameter"), N_("Option {name!r} requires an argument."),
    N_("Invalid value for {param_hint}: {message}"), N_("Invalid value: {message}"),
    N_("{value!r} is not one of {choices}."), N_("{value!r} is not a valid {number_type}."),
    N_("{value} is not in the range {range}."), N_("default: {default}"), N_("required"), N_("Aborted!"),
)


def _click_speaks_our_language() -> None:
    """Click calls gettext's ``_`` (the C library's domain) when it shows a text; let it call ours."""
    import click.core
    import click.decorators
    import click.exceptions
    import click.formatting
    import click.parser
    import click.types

    for module in (click.core, click.decorators, click.exceptions, click.formatting, click.parser, click.types):
        names = vars(module)
        for name, ours in (("_", _), ("ngettext", ngettext)):
            if name in names:
                names[name] = ours


_click_speaks_our_language()


@contextmanager
def _translated(thing: Any, *attributes: str) -> Iterator[None]:
    """Within the block, the (English, marked) texts ``attributes`` of ``thing`` read in the language in effect."""
    kept = {name: getattr(thing, name) for name in attributes}
    for name, text in kept.items():
        if text:
            setattr(thing, name, _(text))
    try:
        yield
    finally:
        for name, text in kept.items():
            setattr(thing, name, text)


class _Option(click.Option):
    """An option whose help is looked up in the catalogs when the help is shown (after --lang took effect)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        with _translated(self, "help"):
            return super().get_help_record(ctx)


class _TranslatedHelp(click.Command):
    """A command whose help is looked up in the catalogs when it is shown."""

    def get_short_help_str(self, limit: int = 45) -> str:
        with _translated(self, "help", "short_help"):
            return super().get_short_help_str(limit)

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _translated(self, "help"):
            super().format_help_text(ctx, formatter)

    def get_help_option(self, ctx: click.Context) -> click.Option | None:
        """Click's -h/--help, its help looked up when shown (it is made before --lang took effect)."""
        option = super().get_help_option(ctx)
        if option is not None and not isinstance(option, _Option):
            option.__class__ = _Option
            option.help = N_("Show this message and exit.")
        return option


class _Command(_TranslatedHelp):
    pass


class _Group(_TranslatedHelp, click.Group):
    """A group of commands (and groups) with help in the language in effect."""

    command_class = _Command
    group_class = type


#: ``@option(…)``: an option of councilflow (its help translated when shown).
option = functools.partial(click.option, cls=_Option)


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

    for decorate in reversed((
        option("--db", metavar="URL", default=None,
               help=N_("Database URL (env COUNCILFLOW_DB; default sqlite:///councilflow.db).")),
        option("--definitions", metavar="DIR", default=None,
               help=N_("Folder of workflow definitions (env COUNCILFLOW_DEFINITIONS; default ./definitions).")),
        option("--now", metavar="DATETIME", default=None,
               help=N_("Act at this simulated instant (env COUNCILFLOW_NOW).")),
        option("--config", metavar="FILE", default=None, help=N_("Settings file, TOML (env COUNCILFLOW_CONFIG).")),
    )):
        wrapper = decorate(wrapper)
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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, help=N_(
    "councilflow: take council papers (Sitzungsvorlagen) through their consultations, with deadlines and an audit "
    "trail."
))
@click.version_option(package_name="councilflow", cls=_Option)
@option("--lang", type=click.Choice(LANGUAGES), default=None, is_eager=True, expose_value=False,
              callback=_choose_language,
              help=N_("Language of messages and output (default: COUNCILFLOW_LANG, LANG, else de)."))
def main() -> None:
    pass


@main.command(help=N_("Create the database schema (safe to run again)."))
@common
def init(ctx: Context) -> None:
    ctx.engine().init()
    click.echo(f"ok: {ctx.engine().store.url}")


@main.command(help=N_(
    "Move running papers of WORKFLOW to another version of its definition (audited, deadlines recomputed)."
))
@option("--workflow", required=True)
@option("--to-version", "to_version", required=True, type=int)
@option("--map", "maps", multiple=True, metavar="OLD=NEW", help=N_("Where papers in state OLD go (repeatable)."))
@option("--dry-run", is_flag=True, help=N_("Only list what would move and what could not."))
@common
def migrate(workflow: str, to_version: int, maps: tuple[str, ...], dry_run: bool, ctx: Context) -> None:
    mapping: dict[str, str] = {}
    for pair in maps:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise InputError(_("--map '{pair}' must have the form OLD_STATE=NEW_STATE").format(pair=pair))
        mapping[old.strip()] = new.strip()
    moved, untouched = ctx.engine().migrate(workflow, to_version, mapping, dry_run=dry_run)
    line = _("would move {reference}: {old} → {new}") if dry_run else _("moved {reference}: {old} → {new}")
    for reference, old, new in moved:
        click.echo(line.format(reference=reference, old=old, new=new))
    for reference, why in untouched:
        click.echo(_("left {reference}: {why}").format(reference=reference, why=why))
    total = (_("{moved} would move, {left} left untouched") if dry_run
             else _("{moved} moved, {left} left untouched"))
    click.echo(total.format(moved=len(moved), left=len(untouched)))


@main.group(name="db", help=N_("Schema migrations (Alembic, shipped in the package)."))
def db_group() -> None:
    pass


@db_group.command("upgrade", help=N_("Bring the database schema to the newest revision."))
@common
def db_upgrade(ctx: Context) -> None:
    store = ctx.engine().store
    before = store.schema_revision()
    store.init()
    click.echo(f"{store.url}: {before or _('empty')} → {store.schema_revision()}")


@db_group.command("current", help=N_("Print the database's schema revision and the newest one shipped."))
@common
def db_current(ctx: Context) -> None:
    from .store import SCHEMA_HEAD

    revision = ctx.engine().store.schema_revision()
    line = (_("{revision} (head {head}, at head)") if revision == SCHEMA_HEAD
            else _("{revision} (head {head}, behind: run `councilflow db upgrade`)"))
    click.echo(line.format(revision=revision or _("empty"), head=SCHEMA_HEAD))


@main.group(name="definitions", help=N_("Validate and show workflow definitions."))
def definitions_group() -> None:
    pass


@definitions_group.command("validate", help=N_(
    "Check definition files (or the *.yaml files of folders); print every problem.\n\n"
    "Validation reads only the files: --db, --definitions and --now are accepted and unused."
))
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@common
def validate(paths: tuple[str, ...], ctx: Context) -> None:
    from notifier.dispatch import check_templates

    from .library import check_follow_ups
    from .loader import definition_files, load_definition_file

    files = definition_files(paths)
    if not files:
        raise InputError(_("no definition files in {paths}").format(paths=", ".join(paths)))
    failed = 0
    for f in files:
        if not f.exists():
            click.echo(_("{path}:1:1: no such file").format(path=f), err=True)
            failed += 1
            continue
        try:
            definition = load_definition_file(f)
            check_follow_ups(definition, f.parent)
            check_templates(definition, f.parent)
        except DefinitionError as exc:
            failed += 1
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            continue
        click.echo(f"{f}: ok")
    if failed:
        raise SystemExit(DefinitionError.exit_code)


@definitions_group.command("lint", help=N_(
    "Warn about what is valid but probably not meant (German, path:line:col); invalid files as validate."
))
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@option("--strict", is_flag=True, help=N_("Exit 1 if there is any warning."))
@common
def lint(paths: tuple[str, ...], strict: bool, ctx: Context) -> None:
    from notifier.dispatch import check_templates

    from .lint import lint_paths

    raise SystemExit(lint_paths(paths, strict=strict, echo=click.echo, checks=[check_templates]))


@definitions_group.command("diff", help=N_(
    "Compare NEW.yaml with the newest version of workflow OLD stored in --db, or with the file OLD.yaml.\n\n"
    "Lists added, removed, changed and renamed states, transitions, deadlines, roles; the migrate --map "
    "options; with a database, the running papers in each affected state."
))
@click.argument("old")
@click.argument("new", type=click.Path())
@option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@common
def definitions_diff(old: str, new: str, fmt: str, ctx: Context) -> None:
    from .defdiff import diff_command

    explicit = click.get_current_context().params.get("db")
    report = diff_command(old, new, fmt=fmt, db=explicit, default_db=ctx.db, echo=click.echo)
    if report is not None:
        _dump(report)


@definitions_group.command("schema", help=N_(
    "Print the JSON Schema (draft 2020-12) of the definition language, for editors."
))
@common
def definitions_schema(ctx: Context) -> None:
    from .language import schema_text

    click.echo(schema_text(), nl=False)


@definitions_group.command("list", help=N_("List the workflows of the definitions folder."))
@common
def definitions_list(ctx: Context) -> None:
    lib = ctx.engine().library
    for wid in lib.workflows():
        d, _text = lib.current(wid)
        click.echo(f"{d.workflow}\tv{d.version}\t{d.title}")


@definitions_group.command("show", help=N_(
    "Print a workflow as a Graphviz diagram (SVG, PNG), a Mermaid state diagram or normalised JSON."
))
@click.argument("workflow")
@option("--format", "fmt", type=click.Choice(["mermaid", "json", "svg", "png"]), default="mermaid",
              show_default=True, help=N_("svg and png: the Graphviz diagram (needs Debian's graphviz)."))
@option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help=N_("Write to FILE instead of standard output."))
@common
def definitions_show(workflow: str, fmt: str, out: Path | None, ctx: Context) -> None:
    from .diagram import show

    d, _text = ctx.engine().library.current(workflow)
    show(d, fmt, out)


@definitions_group.command("simulate", help=N_(
    "Dry run: play SCENARIO (YAML, see docs/simulate.md) on a paper of WORKFLOW in memory and print every "
    "state, deadline, mail and refusal in time order. Nothing is stored or sent (--db and --now are "
    "unused). A refused step stops the run; the exit code is then that of the refusal (4, 5 or 6)."
))
@click.argument("workflow")
@click.argument("scenario", type=click.Path(dir_okay=False))
@option("--format", "fmt", type=click.Choice(["table", "json", "ics"]), default="table", show_default=True)
@option("--no-digest", "no_digest", is_flag=True, help=N_("Leave out the daily digests that serve would queue."))
@common
def definitions_simulate(workflow: str, scenario: str, fmt: str, no_digest: bool, ctx: Context) -> None:
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
        click.echo(_("councilflow: error: {message}").format(message=refusal_line(sim)), err=True)
        raise SystemExit(sim.refused.error.exit_code)


@main.group(name="documents", help=N_("Create and list papers (Sitzungsvorlagen)."))
def documents_group() -> None:
    pass


@documents_group.command("create", help=N_("Create a paper of WORKFLOW with REFERENCE in the initial state."))
@click.argument("workflow")
@click.argument("reference")
@option("--actor", required=True, metavar="EMAIL", help=N_("Who creates the paper."))
@option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help=N_("A field value (repeatable)."))
@option("--json", "as_json", is_flag=True, help=N_("Print the status as JSON."))
@common
def documents_create(
    workflow: str,
    reference: str,
    actor: str,
    sets: tuple[str, ...],
    as_json: bool,
    ctx: Context,
) -> None:
    engine = ctx.engine()
    paper = engine.create(workflow, reference, actor, _values(sets))
    _print_status(engine.status(paper.reference), as_json)


@documents_group.command("list", help=N_("List the references of all papers."))
@option("--workflow", default=None)
@common
def documents_list(workflow: str | None, ctx: Context) -> None:
    engine = ctx.engine()
    from .access import Person

    for st in engine.papers_for(Person("", auditor=True), workflow=workflow):
        click.echo(f"{st.reference}\t{st.workflow}\t{st.state}\t{st.fields.get('title', '')}")


@main.command(help=N_("Fire TRIGGER on the paper REFERENCE."))
@click.argument("reference")
@click.argument("trigger")
@option("--actor", required=True, metavar="EMAIL", help=N_("Who fires the trigger."))
@option("--branch", default=None, metavar="BODY", help=N_("The branch (body) a branch trigger acts on."))
@option("--set", "sets", multiple=True, metavar="KEY=VALUE", help=N_("result=…, meeting=…, or a field."))
@option("--reason", default=None, metavar="TEXT",
              help=N_("Why (recorded in the trail); required for a trigger with confirm: true."))
@option("--json", "as_json", is_flag=True, help=N_("Print the new status as JSON."))
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
    engine = ctx.engine()
    engine.fire(reference, trigger, actor, branch=branch, values=_values(sets), reason=reason)
    _print_status(engine.status(reference), as_json)


@main.command(help=N_("Set or move the meeting of the paper's consultation (or of one branch)."))
@click.argument("reference")
@click.argument("when", metavar="DATETIME")
@option("--actor", required=True, metavar="EMAIL")
@option("--branch", default=None, metavar="BODY")
@option("--json", "as_json", is_flag=True)
@common
def meeting(
    reference: str,
    when: str,
    actor: str,
    branch: str | None,
    as_json: bool,
    ctx: Context,
) -> None:
    engine = ctx.engine()
    engine.set_meeting(reference, when, actor, branch=branch)
    _print_status(engine.status(reference), as_json)


@main.command(help=N_("Mark a running deadline of a paper done: its reminders and escalation are cancelled."))
@click.argument("reference")
@click.argument("deadline")
@option("--actor", required=True, metavar="EMAIL")
@option("--branch", default=None, metavar="BODY", help=N_("The branch (body) whose deadline is done."))
@option("--note", default="", help=N_("What was done (recorded in the trail)."))
@option("--undo", is_flag=True, help=N_("Take a mistaken 'erledigt' back (also recorded)."))
@common
def done(reference: str, deadline: str, actor: str, branch: str | None, note: str, undo: bool,
         ctx: Context) -> None:
    engine = ctx.engine()
    [change] = engine.done(reference, deadline, actor, branch=branch, note=note, undo=undo)
    zone = engine.definition_of(engine.load(reference)).timezone
    line = (_("{reference}: deadline {deadline}{branch} open again on {at} by {actor}") if undo
            else _("{reference}: deadline {deadline}{branch} done on {at} by {actor}"))
    click.echo(line.format(reference=reference, deadline=deadline, branch=f" ({branch})" if branch else "",
                           at=_local(change.at, zone), actor=change.actor))


@main.command(help=N_("Sign a paper off for your role (Mitzeichnung), refuse to, or withdraw that."))
@click.argument("reference")
@option("--actor", required=True, metavar="EMAIL")
@option("--note", default=None, help=N_("A note with the sign-off (recorded in the trail)."))
@option("--refuse", is_flag=True, help=N_("Refuse to sign off (needs --reason); it blocks until withdrawn."))
@option("--reason", default=None, help=N_("Why the sign-off is refused (with --refuse)."))
@option("--withdraw", is_flag=True, help=N_("Withdraw your role's sign-off or refusal (also recorded)."))
@common
def sign(reference: str, actor: str, note: str | None, refuse: bool, reason: str | None, withdraw: bool,
         ctx: Context) -> None:
    from .paper import signoff_request

    act, text = signoff_request(reference, refuse=refuse, withdraw=withdraw, note=note, reason=reason)
    engine = ctx.engine()
    [change] = engine.sign(reference, actor, act=act, text=text)
    from .german import entry_label

    zone = engine.definition_of(engine.load(reference)).timezone
    click.echo(_("{reference}: {what} (role {role}) on {when} by {actor}").format(
        reference=reference, what=entry_label(None, change.kind, change.trigger, change.payload),
        role=change.payload["role"], when=_local(change.at, zone), actor=change.actor))


@main.command(help=N_("Show where a paper stands and what it accepts now (with its follow-up papers and the paper "
                      "it follows)."))
@click.argument("reference")
@option("--json", "as_json", is_flag=True)
@option("--as-of", "as_of", default=None, metavar="DATETIME", help=N_("Where the paper stood then."))
@common
def status(
    reference: str, as_json: bool, as_of: str | None, ctx: Context
) -> None:
    engine = ctx.engine()
    st = engine.status(reference, as_of=as_of)
    if as_json:
        _dump({**st.to_json(), **engine.follow_up_json(st.reference, st.as_of)})
        return
    _print_status(st, False)
    _print_follow_ups(st.timezone, engine.parent_of(st.reference), engine.follow_ups(st.reference, st.as_of))
    attached = engine.files(st.reference)
    if attached:
        from .german import file_size

        click.echo(_("  Attachments (councilflow files {reference} NAME saves one):").format(reference=st.reference))
        for f in attached:
            click.echo(f"    {f.name}  {file_size(f.size)}")


#: The labels of the left column of `status`: the column is as wide as the longest of them in the language shown.
_STATUS_LABELS = (N_("As of"), N_("State"), N_("Body"), N_("Result"), N_("Bodies"), N_("Possible steps"),
                  N_("Follows"))


def _status_line(label: str, text: str) -> None:
    """A line of `status`: the label (one of _STATUS_LABELS) and its text, the texts in one column."""
    width = max(len(_(known)) for known in _STATUS_LABELS) + 1
    click.echo(f"  {label + ':':<{width}} {text}")


def _print_follow_ups(zone: str, parent: FollowUpRecord | None, children: list[ChildView]) -> None:
    """The paper a follow-up paper belongs to, and a paper's follow-up papers with their states."""
    if parent is not None:
        _status_line(_("Follows"), _("{parent} (follow-up '{name}', no. {n})").format(
            parent=parent.reference, name=parent.name, n=parent.n))
    if not children:
        return
    click.echo(_("  Follow-up papers:"))
    shown = {"planned": _("due {moment}"), "ended": _("not created: the series ended"),
             "failed": _("not created: {error}")}
    for c in children:
        what = c.state_label if c.status == "created" and c.state_label else \
            shown.get(c.status, c.status).format(moment=_local(c.due_at, zone), error=c.error or "")
        click.echo(f"    {c.reference:<24} {c.workflow:<20} {what}")


def _print_status(st: Status, as_json: bool) -> None:
    if as_json:
        _dump(st.to_json())
        return
    zone = st.timezone
    title = st.fields.get("title", "")
    click.echo(f"{st.reference}  {title}  [{st.workflow} v{st.workflow_version}]")
    if st.as_of:
        _status_line(_("As of"), _local(st.as_of, zone))
    _status_line(_("State"), _("{label} ({state}) since {since}").format(label=st.state_label, state=st.state,
                                                                         since=_local(st.entered_at, zone)))
    if st.body_name:
        _status_line(_("Body"), _("{body}, meeting {meeting}").format(body=st.body_name,
                                                                      meeting=_local(st.meeting, zone)))
    if st.result:
        _status_line(_("Result"), st.result)
    if st.branches:
        done = sum(1 for b in st.branches if b.status != "open")
        _status_line(_("Bodies"), _("{done} of {total} decided").format(done=done, total=len(st.branches)))
        from .german import branch_status

        for b in st.branches:
            extra = _(", deferred {n}×").format(n=b.deferrals) if b.deferrals else ""
            meeting = _("meeting {date}").format(date=_local(b.meeting, zone))
            click.echo(
                f"    {b.name:<34} {branch_status(b.status, st.hearings):<16} {meeting}"
                f"{'  – ' + b.result if b.result else ''}{extra}"
            )
    if st.signoffs:
        from .german import signoff_status

        click.echo(_("  Sign-off (in order):") if st.signoff_order == "sequence" else _("  Sign-off:"))
        for so in st.signoffs:
            by = _(" by {actor} on {when}").format(actor=so.actor, when=_local(so.at, zone)) if so.actor else ""
            click.echo(f"    {so.role:<34} {signoff_status(so.status)}{by}{'  – ' + so.text if so.text else ''}")
    _status_line(_("Possible steps"), ", ".join(st.triggers) if st.triggers else _("– (final state)"))


@main.command(help=N_("List every recorded change of a paper, in order."))
@click.argument("reference")
@option("--json", "as_json", is_flag=True)
@common
def history(reference: str, as_json: bool, ctx: Context) -> None:
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
    details = ([_("body {name}").format(name=text.body)] if r.branch else []) + list(text.details)
    extra = f"  ({'; '.join(details)})" if details else ""
    return f"{r.seq:>5}  {_local(r.at, zone)}  {r.actor:<40} {text.label} [{r.trigger}]  {move}{extra}"


@main.group(name="audit", help=N_("Check the audit trail."))
def audit_group() -> None:
    pass



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


@audit_group.command("query", help=N_(
    "Stream the entries that match every given filter, in order (workflow, body and states by id or label)."
))
@option("--reference", default=None)
@option("--workflow", default=None)
@option("--actor", default=None)
@option("--trigger", default=None)
@option("--body", default=None, help=N_("Body: id or name."))
@option("--from", "from_state", default=None, help=N_("State before: id or label."))
@option("--to", "to_state", default=None, help=N_("State after: id or label."))
@option("--since", default=None, metavar="DATETIME")
@option("--until", default=None, metavar="DATETIME")
@option("--format", "fmt", type=click.Choice(["table", "json", "csv", "csv-excel"]), default="table",
              show_default=True)
@common
def audit_query(reference: str | None, workflow: str | None, actor: str | None, trigger: str | None,
                body: str | None, from_state: str | None, to_state: str | None, since: str | None,
                until: str | None, fmt: str, ctx: Context) -> None:
    zone = ctx.settings.timezone
    engine = ctx.engine()
    records = engine.audit(reference=reference, workflow=workflow, actor=actor, trigger=trigger, body=body,
                           from_state=from_state, to_state=to_state, since=since, until=until, zone=zone)
    _write_records(records, fmt, zone, engine.entry_definition)


@audit_group.command("export", help=N_("Write the whole trail, in order (streamed)."))
@option("--format", "fmt", type=click.Choice(["json", "csv", "csv-excel"]), default="csv", show_default=True)
@common
def audit_export(fmt: str, ctx: Context) -> None:
    engine = ctx.engine()
    _write_records(engine.audit(), fmt, ctx.settings.timezone, engine.entry_definition)


@audit_group.command("head", help=N_(
    "Print the trail's head: keep it outside the database, check it later with `verify --head`."
))
@option("--json", "as_json", is_flag=True)
@common
def audit_head(as_json: bool, ctx: Context) -> None:
    seq, digest = ctx.engine().head()
    if as_json:
        _dump({"seq": seq, "hash": digest})
    else:
        click.echo(f"{seq} {digest}")


@audit_group.command("timeline", help=N_("Where the paper stood at every point of its trail."))
@click.argument("reference")
@option("--json", "as_json", is_flag=True)
@common
def audit_timeline(reference: str, as_json: bool, ctx: Context) -> None:
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
        until = _local(p.until, zone) if p.until else _("today")
        label = p.label
        extra = _(", meeting {date}").format(date=_local(p.state.meeting, zone)) if p.state.meeting else ""
        if p.state.branches:
            extra += _(", {open} of {total} bodies open").format(open=len(p.state.open_branches()),
                                                                 total=len(p.state.branches))
        click.echo(f"{_local(p.since, zone)} – {until:<16}  {label}{extra}  [{p.trigger}, {p.actor}]")


@audit_group.command("verify", help=N_("Recompute the hash chain and name the first broken entry."))
@option("--head", "head", default=None, metavar="HASH", help=N_("A head hash kept outside the database."))
@option("--json", "as_json", is_flag=True)
@common
def audit_verify(head: str | None, as_json: bool, ctx: Context) -> None:
    from .errors import AuditIntegrityError

    report = ctx.engine().verify(head)
    if as_json:
        _dump(report.to_json())
    if not report.ok:
        if as_json:
            raise SystemExit(AuditIntegrityError.exit_code)
        raise AuditIntegrityError(_("audit trail broken: {problem}").format(problem=report.problem))
    if not as_json:
        click.echo(_("ok: {count} entries, head {head}").format(count=report.entries, head=report.head_hash))


@audit_group.command("report", help=N_(
    "Write the Prüfbericht of the entries in scope (the filters of `audit query`), with the chain's verify "
    "result and the SHA-256 of its content; exit 10 (after writing it) if the chain is broken."
))
@option("--reference", "references", multiple=True, metavar="R", help=N_("Paper (repeatable: each of them)."))
@option("--workflow", default=None, help=N_("Workflow: id or name."))
@option("--person", default=None, metavar="EMAIL", help=N_("Only entries of this person."))
@option("--trigger", default=None)
@option("--body", default=None, help=N_("Body: id or name."))
@option("--from", "from_state", default=None, help=N_("State before: id or label."))
@option("--to", "to_state", default=None, help=N_("State after: id or label."))
@option("--since", default=None, metavar="DATETIME")
@option("--until", default=None, metavar="DATETIME")
@option("--actor", required=True, metavar="EMAIL", help=N_("Who produces the report (the auditor)."))
@option("--out", required=True, metavar="FILE", help=N_("FILE.pdf, FILE.html or FILE.json."))
@option("--format", "fmt", type=click.Choice(["pdf", "html", "json"]), default=None,
              help=N_("Else by the extension of --out; json: the hashed content, byte for byte."))
@common
def audit_report(references: tuple[str, ...], workflow: str | None, person: str | None, trigger: str | None,
                 body: str | None, from_state: str | None, to_state: str | None, since: str | None,
                 until: str | None, actor: str, out: str, fmt: str | None, ctx: Context) -> None:
    from .errors import AuditIntegrityError
    from .report import build_report, check_out, format_of, render, write_report

    check_out(out)
    kind = format_of(out, fmt)
    report = build_report(ctx.engine(), producer=actor, zone=ctx.settings.timezone, references=references,
                          workflow=workflow, actor=person, trigger=trigger, body=body, from_state=from_state,
                          to_state=to_state, since=since, until=until)
    path = write_report(render(report, kind), out)
    click.echo(_("Prüfbericht {path}: {count} entries, content SHA-256 {hash}").format(
        path=path, count=len(report.rows), hash=report.content_hash))
    if not report.verify.ok:
        raise AuditIntegrityError(_("audit trail broken: {problem} (the report {path} says so)").format(
            problem=report.verify.problem, path=path))


@main.command(help=N_("The Beschlusskontrolle of a body: its decisions' follow-up papers with a traffic light, red "
                      "first; html and pdf give the Bericht über offene Beschlüsse."))
@option("--body", default=None, help=N_("Body: id or name"))
@option("--status", default=None, metavar="offen|verzoegert|erledigt",
        help=N_("offen (default; delayed ones too), verzoegert or erledigt"))
@option("--format", "fmt", type=click.Choice(["table", "csv", "html", "pdf"]), default="table", show_default=True)
@option("--warn-days", type=int, default=None, metavar="N",
        help=N_("Yellow from N working days before the target date (default 10)"))
@option("--out", default=None, metavar="FILE", help=N_("Write to this file (needed for pdf)"))
@common
def decisions(body: str | None, status: str | None, fmt: str, warn_days: int | None, out: str | None,
              ctx: Context) -> None:
    from .access import Person
    from .decision_report import MAX_ROWS, build, render
    from .report import check_out, write_report

    if fmt == "pdf" and not out:
        raise InputError(_("--format pdf needs --out FILE.pdf"))
    if out:
        check_out(out)
    report = build(ctx.engine(), Person("", auditor=True), body or "", status=status, warn_days=warn_days,
                   zone=ctx.settings.timezone, most=MAX_ROWS if fmt in ("html", "pdf") else sys.maxsize)
    data = render(report, cast(Any, fmt))
    if out:
        path = write_report(data, out)
        click.echo(_("{path}: {count} follow-up papers of {body}").format(path=path, count=len(report.rows),
                                                                          body=report.body_name))
    else:
        click.echo(data.decode("utf-8"), nl=False)


@main.command(help=N_("List a paper's attachments, or save one of them (NAME)."))
@click.argument("reference")
@click.argument("name", required=False)
@option("--out", default=None, metavar="FILE",
        help=N_("Save the attachment to this file; - writes it to standard output (default: its own name in the "
                "current folder, never over an existing file)"))
@option("--json", "as_json", is_flag=True)
@common
def files(reference: str, name: str | None, out: str | None, as_json: bool, ctx: Context) -> None:
    from .german import file_size
    from .report import write_report

    engine = ctx.engine()
    paper = engine.load(reference)
    if name is None and out is not None:
        raise InputError(_("--out needs NAME, the attachment to save (councilflow files {reference} lists them)")
                         .format(reference=paper.reference))
    if name is None:
        found = engine.files(paper)
        if as_json:
            _dump([f.to_json() for f in found])
        elif not found:
            click.echo(_("{reference}: no attachments").format(reference=paper.reference))
        for f in found if not as_json else ():
            click.echo(f"{f.name}  {file_size(f.size)}  {_local(f.created_at, engine.definition_of(paper).timezone)}"
                       f"  SHA-256 {f.sha256}")
        return
    record, content = engine.file_content(paper, name)
    if out == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    if out is None and Path(record.name).exists():
        raise InputError(_("{name} exists already in this folder; choose another file with --out").format(
            name=record.name))
    path = write_report(content, record.name if out is None else out)
    click.echo(_("{path}: attachment {name} of {reference} ({size})").format(
        path=path, name=record.name, reference=paper.reference, size=file_size(record.size)))


@main.command(help=N_("List a paper's running deadlines with due dates and reminder times."))
@click.argument("reference")
@option("--json", "as_json", is_flag=True)
@common
def deadlines(reference: str, as_json: bool, ctx: Context) -> None:
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
        click.echo(_("{reference}: no running deadlines").format(reference=paper.reference))
    for view in views:
        d, mails = view.deadline, view.mails
        where = f" ({d.branch})" if d.branch else ""
        click.echo(f"{_local(d.due_at, zone)}  {d.label}{where}")
        if view.description:
            click.echo(f"    {view.description}")
        if view.done is not None:
            at, by, note = view.done
            click.echo("    " + _("done on {at} by {actor}{note}").format(at=_local(at, zone), actor=by,
                                                                          note=f": {note}" if note else ""))
        for m in mails:
            from .german import MAIL_KIND

            kind = MAIL_KIND.get(m.kind, m.kind)
            to = _("to {recipients}").format(recipients=", ".join(m.recipients))
            click.echo(f"    {kind:<10} {_local(m.send_at, zone)}  {m.status:<8} {to}")
    for w in waiting:
        where = f" ({w.branch})" if w.branch else ""
        click.echo(f"{_('not started yet'):<16}  {w.deadline.label}{where}: {w.reason}")


@main.group(name="reminders", help=N_("The outbox: what will go out, previews, and what failed."))
def reminders_group() -> None:
    pass


def _print_reminders(items: list[Any], as_json: bool, zone: str) -> None:
    if as_json:
        _dump([r.to_json() for r in items])
        return
    for r in items:
        extra = f"  [{r.last_error}]" if r.last_error else ""
        click.echo(f"{_local(r.next_attempt_at, zone)}  {r.status:<8} {r.kind:<8} {r.reference or '-':<14} "
                   f"{r.label}  → {', '.join(r.recipients)}{extra}")


@reminders_group.command("list", help=N_("List pending mails in the order they will go out."))
@option("--due-before", "due_before", default=None, metavar="DATETIME")
@option("--json", "as_json", is_flag=True)
@common
def reminders_list(due_before: str | None, as_json: bool, ctx: Context) -> None:
    from .values import user_instant

    until = user_instant(due_before, ctx.settings.timezone, "--due-before") if due_before else None
    items = ctx.engine().reminders(statuses=("pending", "claimed"), due_before=until)
    _print_reminders(items, as_json, ctx.settings.timezone)


@reminders_group.command("failed", help=N_("List mails that could not be delivered, with the reason."))
@option("--json", "as_json", is_flag=True)
@common
def reminders_failed(as_json: bool, ctx: Context) -> None:
    items = ctx.engine().reminders(statuses=("failed",))
    _print_reminders(items, as_json, ctx.settings.timezone)


@reminders_group.command("preview", help=N_("Render a paper's pending mails without sending them."))
@click.argument("reference")
@common
def reminders_preview(reference: str, ctx: Context) -> None:
    from notifier.dispatch import Composer

    engine = ctx.engine()
    paper = engine.load(reference)
    composer = Composer(engine, ctx.settings)
    items = engine.reminders(reference=paper.reference, statuses=("pending", "claimed", "failed"))
    if not items:
        click.echo(_("{reference}: no pending messages").format(reference=paper.reference))
    for r in items:
        message = composer.compose(r, engine.clock.now())
        click.echo(_("=== {kind} {id}, planned {at} ===").format(kind=r.kind, id=r.id,
                                                                 at=_local(r.send_at, ctx.settings.timezone)))
        for header in ("From", "To", "Subject", "Message-ID"):
            click.echo(f"{header}: {message[header]}")
        body = message.get_body(preferencelist=("plain",))
        click.echo("")
        click.echo(body.get_content() if body is not None else "")


@main.command(help=N_(
    "Run one pass: send every mail that is due now (or at --now); with --until, every pass up to then."
))
@option("--digest", is_flag=True, help=N_("Also queue today's digests first (for cron instead of serve)."))
@option("--until", default=None, metavar="DATETIME",
              help=N_("Rehearsal: step the simulated clock from --now (default: now) through every moment a mail "
                   "falls due up to DATETIME and deliver at each, dated then (with --digest: each day's digests "
                   "at the digest hour)."))
@common
def tick(digest: bool, until: str | None, ctx: Context) -> None:
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
        raise InputError(_("--until {until} lies before the start {start} (--now)").format(
            until=until, start=_local(clock.now(), zone)))
    def delivered(moment: datetime, report: TickReport) -> None:
        for mail in report.delivered:
            click.echo(mail_line(moment, mail, zone))

    report = deliver_until(dispatcher, clock, end, digests=digest, on_tick=delivered)
    click.echo(report.line())
    for error in report.errors:
        click.echo(f"  {error}", err=True)


@main.command(help=N_("Run the scheduler: ticks and the daily digest, until SIGTERM."))
@common
def serve(ctx: Context) -> None:
    from notifier.scheduler import serve as run_scheduler

    if ctx.now:
        raise InputError(_("serve runs on the real clock; use `councilflow tick --now …` to simulate"))
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
        raise ConflictError(_("another councilflow serve (pid {pid}) runs on {url}; SQLite is for one process — use "
                              "PostgreSQL for several").format(pid=holder, url=url)) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@main.command(help=N_(
    "Check a deployment: database, definitions and templates, mail transport, scheduler heartbeat."
))
@common
def doctor(ctx: Context) -> None:
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
        return _("{url} reachable, schema present, {count} audit entries").format(url=engine.store.url,
                                                                                  count=engine.store.count_audit())

    def definitions() -> str:
        files = definition_files([ctx.definitions])
        if not files:
            raise InputError(_("no definitions in {folder}").format(folder=ctx.definitions))
        for f in files:
            check_templates(load_definition_file(f), f.parent)
        return _("{count} valid, their mail templates render").format(count=len(files))

    def mail() -> str:
        from notifier.transports import SendError

        try:
            return ctx.dispatcher().transport.check()
        except SendError as exc:
            raise StorageError(str(exc)) from None

    def heartbeat() -> str:
        last = engine.store.last_beat()
        if last is None:
            raise StorageError(_("no serve process has ticked yet"))
        worker, at = last
        age = engine.clock.now() - at
        if age > timedelta(seconds=3 * ctx.settings.tick_seconds):
            raise StorageError(_("last tick {seconds} s ago by {worker} (expected every {every} s)").format(
                seconds=int(age.total_seconds()), worker=worker, every=ctx.settings.tick_seconds))
        return _("last tick {seconds} s ago by {worker}").format(seconds=int(age.total_seconds()), worker=worker)

    for name, fn in ((_("database"), database), (_("definitions"), definitions), (_("mail"), mail),
                     (_("scheduler"), heartbeat)):
        check(name, fn)
    for ok, name, detail in results:
        click.echo(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not all(ok for ok, _name, _detail in results):
        raise SystemExit(1)


@main.command(help=N_("Serve the JSON API, the pages and the OParl endpoint (behind the administration's proxy)."))
@option("--host", default="127.0.0.1", show_default=True)
@option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@common
def web(host: str, port: int, ctx: Context) -> None:
    import uvicorn

    from .web import create_app

    if ctx.now:
        raise InputError(_("web runs on the real clock; --now is for commands that act once"))
    from .web.identity import Identity

    engine = ctx.engine()
    engine.init()
    identity = Identity(engine, ctx.settings)
    click.echo(_("councilflow web on http://{host}:{port}/ – sign-in: {modes}").format(host=host, port=port,
                                                                                       modes=identity.modes()))
    if not ctx.settings.trusted_header:
        click.echo(_("  (no header of a proxy: set trusted_header and trusted_proxies, see the README)"))
    uvicorn.run(create_app(engine, ctx.settings), host=host, port=port, log_level="warning")


@main.group(name="tokens", help=N_(
    "Bearer tokens for API clients and calendar feed secrets (stored hashed, revocable)."
))
def tokens_group() -> None:
    pass


@tokens_group.command("create", help=N_("Create a token for EMAIL; it is shown once."))
@click.argument("email")
@option("--label", default="", help=N_("What the token is for."))
@option("--calendar", is_flag=True,
              help=N_("A calendar feed secret instead: the address of EMAIL's calendar (deadlines and meetings); "
                   "it opens that feed only and is no API token."))
@common
def tokens_create(email: str, label: str, calendar: bool, ctx: Context) -> None:
    from .tokens import CALENDAR, calendar_path, create_token

    engine = ctx.engine()
    who = email.strip().lower()
    if not calendar:
        token_id, token = create_token(engine.store, email, label, engine.clock.now())
        click.echo(_("token {id} for {email}: {token}").format(id=token_id, email=who, token=token))
        return
    token_id, token = create_token(engine.store, email, label or _("Calendar"), engine.clock.now(), CALENDAR)
    base = ctx.settings.base_url.rstrip("/")
    click.echo(_("calendar link {id} for {email} (shown only now):").format(id=token_id, email=who))
    click.echo(f"{base}{calendar_path(token)}")
    if not base:
        click.echo(_("  (base_url is not set: put the address of councilflow web in front)"))


@tokens_group.command("list", help=N_(
    "List tokens (never the tokens themselves): id, e-mail, scope (api or calendar), state, label."
))
@common
def tokens_list(ctx: Context) -> None:
    from .tokens import list_tokens

    for t in list_tokens(ctx.engine().store):
        state = (_("revoked {at}").format(at=_local(t.revoked_at, ctx.settings.timezone)) if t.revoked_at
                 else _("active"))
        click.echo(f"{t.id}\t{t.email}\t{t.scope}\t{state}\t{t.label}")


@tokens_group.command("revoke", help=N_("Revoke a token at once."))
@click.argument("token_id", type=click.IntRange(1, 2**62))
@common
def tokens_revoke(token_id: int, ctx: Context) -> None:
    from .tokens import revoke_token

    engine = ctx.engine()
    revoke_token(engine.store, token_id, engine.clock.now())
    click.echo(_("token {id} revoked").format(id=token_id))


@main.group(name="export", help=N_("Write the papers in other formats."))
def export_group() -> None:
    pass


@export_group.command("oparl", help=N_(
    "Write System, Body, Organizations, Papers and Meetings as OParl 1.1 JSON files."
))
@option("--out", "out", default="oparl-export", show_default=True, type=click.Path(file_okay=False))
@option("--base-url", "base_url", default=None, help=N_("Base of the object ids (setting oparl_base_url)."))
@option("--include-non-public", "include_non_public", is_flag=True,
              help=N_("Also papers marked public: false (default: public papers only, as the live endpoint)."))
@common
def export_oparl(out: str, base_url: str | None, include_non_public: bool, ctx: Context) -> None:
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
    click.echo(_("{papers} papers, {meetings} meetings, {organizations} organizations → {folder}").format(
        papers=len(objects["papers"]), meetings=len(objects["meetings"]),
        organizations=len(objects["organizations"]), folder=folder))


@main.group(name="import", help=N_("Read papers from other systems."))
def import_group() -> None:
    pass


@import_group.command("oparl", help=N_(
    "Import OParl papers (files or folders), replaying their consultations through a workflow."
))
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@option("--mapping", "mapping_path", required=True, type=click.Path(exists=True, dir_okay=False))
@option("--json", "as_json", is_flag=True, help=N_("Print the report as JSON."))
@option("--meetings", "meetings_only", is_flag=True,
              help=N_("Import meetings only: give waiting papers their body's next meeting."))
@common
def import_oparl(paths: tuple[str, ...], mapping_path: str, as_json: bool, meetings_only: bool,
                 ctx: Context) -> None:
    from .oparl_import import OParlImporter, load_mapping
    from .oparl_read import read_oparl

    engine = ctx.engine()
    mapping = load_mapping(Path(mapping_path), lambda w: engine.library.current(w)[0])
    data = read_oparl(Path(p) for p in paths)
    for problem in data.problems:
        click.echo(_("councilflow: warning: {problem}").format(problem=problem), err=True)
    importer = OParlImporter(engine, mapping)
    definition = importer.definition
    if meetings_only:
        scheduled = importer.schedule(data)
        if as_json:
            _dump([{"reference": r, "body": b, "meeting": m.astimezone(UTC).isoformat()} for r, b, m in scheduled])
            return
        for reference, body, moment in scheduled:
            click.echo(f"{reference}: {body} {_local(moment, definition.timezone)}")
        click.echo(_("{count} meetings set").format(count=len(scheduled)))
        return
    with click.progressbar(length=len(data.papers), label=_("Import"), file=sys.stderr) as bar:
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
    click.echo(_("{summary}, {count} unreadable objects").format(summary=report.summary(), count=len(data.problems)))
    for reference, why in report.skipped:
        click.echo(_("  skipped {reference}: {why}").format(reference=reference, why=why))


@main.command(help=N_("Run the seed: SV-9-1809 and the Digitalisierungsstrategie through their paths."))
@option("--db", metavar="URL", default=None, help=N_("Database (default: a fresh councilflow-demo.db)."))
@option("--definitions", metavar="DIR", default=None)
def demo(db: str | None, definitions: str | None) -> None:
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
