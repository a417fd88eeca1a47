"""``councilflow demo``: the seed path of SV-9-1809 and of the strategy it reports on.

Runs on a fresh embedded database with a simulated clock. The Kreis dates of SV-9-1809 are the
real ones (04.08.2020, Ausschuss on 27.08.2020); the strategy's meeting dates are illustrative.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .clock import FixedClock
from .engine import Engine
from .german import format_local
from .i18n import _
from .library import DefinitionLibrary
from .store import open_store

__all__ = ["COUNCILS", "run_demo"]

ZONE = ZoneInfo("Europe/Berlin")
LANDRAT = "buero.landrat@kreis-coesfeld.example"
SITZUNGSDIENST = "sitzungsdienst@kreis-coesfeld.example"
FEDERFUEHRUNG = "digitalisierung@kreis-coesfeld.example"
KAEMMEREI = "kaemmerei@kreis-coesfeld.example"
#: The 11 councils of the Kreis Coesfeld: body id and the town part of its contact address.
COUNCILS = [
    ("rat_ascheberg", "ascheberg"),
    ("rat_billerbeck", "billerbeck"),
    ("rat_coesfeld", "coesfeld"),
    ("rat_duelmen", "duelmen"),
    ("rat_havixbeck", "havixbeck"),
    ("rat_luedinghausen", "luedinghausen"),
    ("rat_nordkirchen", "nordkirchen"),
    ("rat_nottuln", "nottuln"),
    ("rat_olfen", "olfen"),
    ("rat_rosendahl", "rosendahl"),
    ("rat_senden", "senden"),
]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


def _default_definitions() -> Path:
    here = Path("definitions")
    if (here / "kreisstrategie.yaml").is_file():
        return here
    return Path(__file__).resolve().parent.parent / "definitions"


def run_demo(
    db: str | None,
    definitions: str | None,
    *,
    echo: Callable[[str], Any],
    status: Callable[[Any, bool], None],
    line: Callable[[Any, str, Any], str],
) -> Engine:
    """Play the seed, printing status and history as it goes; returns the engine used."""
    # The demo composes the engine with the notifier, as `serve` does; imported here, not at the top,
    # because the engine package does not depend on the notifier.
    from notifier.dispatch import Dispatcher, TickReport, check_templates
    from notifier.stepping import deliver_until, mail_line
    from notifier.transports import MaildirTransport

    from .config import Settings

    if db is None:
        path = Path("councilflow-demo.db")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        db = f"sqlite:///{path}"
    settings = Settings(db=db, mail_from="Fristen Kreis Coesfeld <fristen@kreis-coesfeld.example>")
    mail_folder = settings.mail_folder()
    if mail_folder.is_dir():
        shutil.rmtree(mail_folder)
    clock = FixedClock(_at("2020-08-04T09:00"))
    library = DefinitionLibrary(definitions or _default_definitions(), checks=[check_templates])
    engine = Engine(open_store(db), library, clock)
    engine.store.init()
    dispatcher = Dispatcher(engine, MaildirTransport(mail_folder), settings, "demo")
    echo(_("councilflow demo – database {url}, mail in {folder}/new, simulated clock").format(
        url=engine.store.url, folder=mail_folder) + "\n")

    def delivered(moment: datetime, report: TickReport) -> None:
        for mail in report.delivered:
            echo(mail_line(moment, mail, ZONE.key))

    def step(when: str, text: str) -> None:
        # Deliver every mail that falls due up to `when`, at its own moment, as `serve` would.
        deliver_until(dispatcher, clock, _at(when), on_tick=delivered)
        echo(f"── {format_local(clock.now(), ZONE.key)}  {text}")

    step("2020-08-04T09:00", _("Büro des Landrats creates SV-9-1809"))
    engine.create(
        "sachstandsbericht",
        "SV-9-1809",
        LANDRAT,
        {
            "title": "Digitalisierungsstrategie für den Kreis Coesfeld, Sachstandsbericht",
            "department": "01 - Büro des Landrats",
            "references": "SV-9-1334, SV-9-1390, SV-9-1577, SV-9-1728",
        },
    )
    if engine.definition_of(engine.load("SV-9-1809")).states["entwurf"].signoff:  # from version 4
        step("2020-08-04T10:00", _("The Kämmerei signs SV-9-1809 off"))
        engine.sign("SV-9-1809", KAEMMEREI, text="Keine finanziellen Auswirkungen")
    step("2020-08-04T10:30", _("SV-9-1809 is brought into the committee (meeting 27.08.2020)"))
    engine.fire("SV-9-1809", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    status(engine.status("SV-9-1809"), False)
    step("2020-08-12T11:00", _("Büro des Landrats releases the progress report (paper ready)"))
    engine.fire("SV-9-1809", "vorlage_freigeben", LANDRAT)
    step("2020-08-27T19:15", _("Ausschuss für Finanzen, Wirtschaftsförderung und Kreisentwicklung"))
    engine.fire("SV-9-1809", "kenntnis_nehmen", SITZUNGSDIENST, values={"result": "zur Kenntnis genommen"})
    status(engine.status("SV-9-1809"), False)

    ref = "KS-2020-001"  # illustrative reference of the strategy paper itself
    step("2020-09-01T09:00", _("the lead department creates the strategy {reference} and brings it in").format(
        reference=ref))
    engine.create("kreisstrategie", ref, FEDERFUEHRUNG, {
        "title": "Digitalisierungsstrategie für den Kreis Coesfeld",
        "department": "01 - Büro des Landrats",
        "references": "SV-9-1809",
    })
    engine.fire(ref, "einbringen", FEDERFUEHRUNG)
    engine.set_meeting(ref, "2020-09-29T10:00", SITZUNGSDIENST)
    status(engine.status(ref), False)
    step("2020-09-14T15:00", _("the lead department releases the paper for the Bürgermeisterkonferenz"))
    engine.fire(ref, "vorlage_freigeben", FEDERFUEHRUNG)
    step("2020-09-29T12:00", _("Bürgermeisterkonferenz consults; the Kreisausschuss meets as early as 08.10."))
    engine.fire(ref, "beraten", SITZUNGSDIENST, values={"result": "einstimmig empfohlen"})
    engine.set_meeting(ref, "2020-10-08T16:00", SITZUNGSDIENST)  # short notice: the Vorlage deadline has passed
    step("2020-10-01T10:00", _("the lead department releases the paper for the Kreisausschuss (too late)"))
    engine.fire(ref, "vorlage_freigeben", FEDERFUEHRUNG)
    step("2020-10-08T18:00", _("Kreisausschuss consults"))
    engine.fire(ref, "beraten", SITZUNGSDIENST, values={"result": "einstimmig empfohlen"})
    step("2020-10-20T09:00", _("the meeting service schedules the Kreistag; the lead department releases the paper"))
    engine.set_meeting(ref, "2020-11-05T17:00", SITZUNGSDIENST)
    engine.fire(ref, "vorlage_freigeben", FEDERFUEHRUNG)
    step("2020-11-05T19:30", _("Kreistag decides; the 11 councils consult in parallel"))
    engine.fire(ref, "beschliessen", SITZUNGSDIENST, values={"result": "mehrheitlich beschlossen"})
    bodies = engine.definition_of(engine.store.load(ref)).bodies
    first = _at("2020-11-23T18:00")
    for i, (body, town) in enumerate(COUNCILS):
        engine.set_meeting(ref, first + timedelta(days=2 * i), f"hauptamt@{town}.example", branch=body)
    status(engine.status(ref), False)
    for i, (body, town) in enumerate(COUNCILS):
        moment = (first + timedelta(days=2 * i, hours=2)).astimezone(ZONE).isoformat()[:16]
        actor = f"hauptamt@{town}.example"
        if body == "rat_nottuln":
            step(moment, _("Rat der Gemeinde Nottuln defers to 17.12."))
            engine.fire(ref, "vertagen", actor, branch=body,
                        values={"result": "vertagt", "meeting": "2020-12-17T18:00"})
            continue
        step(moment, _("{body} decides").format(body=bodies[body].name))
        engine.fire(ref, "beschliessen", actor, branch=body, values={"result": "beschlossen"})
    status(engine.status(ref), False)
    step("2020-12-17T20:00", _("Rat der Gemeinde Nottuln decides in the new meeting"))
    engine.fire(ref, "beschliessen", "hauptamt@nottuln.example", branch="rat_nottuln",
                values={"result": "einstimmig beschlossen"})
    status(engine.status(ref), False)
    step("2020-12-17T20:00", _("where {reference} stood on 01.10.2020 (as-of)").format(reference=ref))
    status(engine.status(ref, as_of="2020-10-01T12:00"), False)

    for reference in ("SV-9-1809", ref):
        echo("\n" + _("History of {reference}:").format(reference=reference))
        for record in engine.history(reference):
            echo(line(record, "Europe/Berlin", engine.entry_definition(record.workflow, record.workflow_version)))
    sent = len(list((mail_folder / "new").glob("*"))) if (mail_folder / "new").is_dir() else 0
    echo("\n" + _("Mail: {count} messages as files in {folder}/new").format(count=sent, folder=mail_folder))
    report = engine.verify()
    verdict = _("intact") if report.ok else _("BROKEN: {problem}").format(problem=report.problem)
    echo("\n" + _("Audit trail: {verdict}, {count} entries, head {head}").format(
        verdict=verdict, count=report.entries, head=report.head_hash))
    return engine
