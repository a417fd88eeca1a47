"""Reminder mails delivered over SMTP by the dispatcher, beside a bare smtplib loop, in one run.

Run: `make bench` (or `.venv/bin/python bench/bench_mail.py [--mails 300] [--rounds 5] [--profile]`).
Target (issue 11): the dispatcher delivers >= 0.75 of the mails/s of a bare loop that composes the same
three parts (text, HTML, .ics attachment) with the stdlib `email` package and sends them over one
smtplib session.

Both send to one aiosmtpd sink on 127.0.0.1 (a random port) in this process. A dispatcher round is one
`Dispatcher.tick` over N due reminders on a fresh SQLite file (synchronous=NORMAL): claim, read the
paper and its deadline, render three templates and the .ics, build the message, send, mark sent. The
bare round sends N messages built from the text, HTML and .ics of a mail the dispatcher sent, each
with its own Message-ID. Rounds alternate; the figures are the medians (the ratio: of each round's
pair). `--profile` prints where one dispatcher round spends its time (cProfile, not the sink's thread).
"""

from __future__ import annotations

import argparse
import cProfile
import email
import email.policy
import pstats
import smtplib
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workflow import DefinitionLibrary, Engine, FixedClock, SqlStore
from workflow.config import Settings

ROOT = Path(__file__).resolve().parent.parent
LANDRAT = "buero.landrat@kreis-coesfeld.example"
KAEMMEREI = "kaemmerei@kreis-coesfeld.example"
SENDER = "Fristen Kreis Coesfeld <fristen@kreis-coesfeld.example>"
SEND_AT = datetime(2020, 8, 20, 6, tzinfo=UTC)  # 08:00 in Coesfeld: every paper's Ladungsfrist reminder is due
TARGET = 0.75


class Sink:
    """Accepts every mail; counts mails and connections (one aiosmtpd session per connection)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mails = 0
        self.sessions: dict[int, Any] = {}  # id -> session, kept so that ids are not reused
        self.first: bytes | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.mails += 1
            self.sessions[id(session)] = session
            if self.first is None:
                self.first = envelope.content
        return "250 OK"

    def reset(self) -> None:
        with self.lock:
            self.mails = 0
            self.sessions.clear()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _papers(folder: Path, mails: int) -> tuple[Engine, SqlStore]:
    store = SqlStore(f"sqlite:///{folder}/mail.db?synchronous=NORMAL")
    store.init()
    engine = Engine(store, DefinitionLibrary(ROOT / "definitions"), FixedClock(datetime(2020, 8, 4, 7, tzinfo=UTC)))
    for i in range(mails):
        engine.create("sachstandsbericht", f"SV-{i}", LANDRAT, {"title": f"Vorlage {i}"})
        engine.sign(f"SV-{i}", KAEMMEREI)  # the Mitzeichnung (sachstandsbericht version 4)
        engine.fire(f"SV-{i}", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    return engine, store


def dispatcher_round(port: int, mails: int, sink: Sink, profile: bool = False) -> float:
    """Mails/s of one tick over ``mails`` due reminders (setting them up is not timed)."""
    from notifier.dispatch import Dispatcher
    from notifier.transports import SmtpTransport

    with tempfile.TemporaryDirectory() as tmp:
        # The shipped sachstandsbericht has two deadlines with a reminder due at SEND_AT: half as many papers.
        engine, store = _papers(Path(tmp), (mails + 1) // 2)
        worker = Dispatcher(engine, SmtpTransport("127.0.0.1", port), Settings(batch=100, mail_from=SENDER), "bench")
        sink.reset()
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        report = worker.tick(SEND_AT)
        if profiler is not None:
            profiler.disable()
        elapsed = time.perf_counter() - started
        assert report.sent == sink.mails >= mails and report.failed == 0, (report, sink.mails)
        mails = sink.mails
        connections = len(sink.sessions)
        store.dispose()
    if profiler is not None:
        stats = pstats.Stats(profiler).strip_dirs()
        print(f"profile of one dispatcher round ({mails} mails, {connections} SMTP connection(s)):")
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
    return mails / elapsed


def _parts(raw: bytes) -> tuple[str, str, str, str]:
    """Subject, text, HTML and .ics of a mail the dispatcher sent."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    [ics] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert text is not None and html is not None
    return str(message["Subject"]), text.get_content(), html.get_content(), ics.get_content()


def bare_round(port: int, mails: int, sink: Sink, parts: tuple[str, str, str, str], run: int) -> float:
    """Mails/s of composing the same three parts with `email` and sending them over one smtplib session."""
    subject, text, html, ics = parts
    sink.reset()
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="localhost") as client:
        client.ehlo()
        for i in range(mails):
            msg = EmailMessage(policy=email.policy.SMTP)
            msg["From"] = SENDER
            msg["To"] = "sitzungsdienst@kreis-coesfeld.example"
            msg["Subject"] = subject
            msg["Message-ID"] = f"<bare-{run}-{i}@councilflow>"
            msg["Date"] = format_datetime(SEND_AT)
            msg.set_content(text)
            msg.add_alternative(html, subtype="html")
            msg.add_attachment(ics, subtype="calendar", filename="frist.ics", params={"method": "PUBLISH"})
            client.send_message(msg)
    elapsed = time.perf_counter() - started
    assert sink.mails == mails and len(sink.sessions) == 1, (sink.mails, len(sink.sessions))
    return mails / elapsed


def main() -> None:
    from aiosmtpd.controller import Controller

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="profile one dispatcher round instead")
    args = parser.parse_args()
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        if args.profile:
            dispatcher_round(port, args.mails, sink, profile=True)
            return
        dispatcher_round(port, min(args.mails, 20), sink)  # warm-up: imports, template compilation
        assert sink.first is not None
        parts = _parts(sink.first)
        engine_rates, bare_rates, ratios = [], [], []
        for run in range(args.rounds):
            engine_rates.append(dispatcher_round(port, args.mails, sink))
            bare_rates.append(bare_round(port, args.mails, sink, parts, run))
            ratios.append(engine_rates[-1] / bare_rates[-1])
            print(f"round {run + 1}: dispatcher {engine_rates[-1]:.0f} mails/s, bare loop {bare_rates[-1]:.0f} "
                  f"mails/s, ratio {ratios[-1]:.2f}")
    finally:
        controller.stop()
    engine, bare, ratio = (statistics.median(v) for v in (engine_rates, bare_rates, ratios))
    print(f"{'mail delivery, ' + str(args.mails) + ' mails':<34}{'mails/s':>9}")
    print(f"{'dispatcher (tick, one session)':<34}{engine:>9.0f}")
    print(f"{'bare email + smtplib loop':<34}{bare:>9.0f}")
    print(f"ratio {ratio:.2f} (median of the {args.rounds} rounds' ratios), target >= {TARGET}: "
          f"{'met' if ratio >= TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
