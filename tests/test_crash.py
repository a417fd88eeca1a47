"""kill -9 of the sender at each step of sending: after restart every mail arrives, none is lost,
and a duplicate carries the same Message-ID. Also: `serve` catches up at start and stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from notifier.render import header_message_id
from workflow import Engine, FixedClock

from . import fault_child
from .conftest import LANDRAT
from .smtp import smtp_server

EXE = str(Path(sys.executable).parent / "councilflow")


SENDER = "fristen@kreis-coesfeld.example"


def _papers(engine: Engine, clock: FixedClock, count: int) -> set[str]:
    from datetime import UTC, datetime

    clock.set(datetime(2020, 8, 4, 7, tzinfo=UTC))
    for i in range(count):
        engine.create("sachstandsbericht", f"SV-{i}", LANDRAT, {"title": f"Vorlage {i}"})
        engine.fire(f"SV-{i}", "einbringen", LANDRAT, values={"meeting": "2020-08-27T17:00"})
    return {header_message_id(r.message_id, SENDER) for r in engine.store.outbox.reminders()}


def _env(db_url: str, defs: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCILFLOW_")}
    env.update({"COUNCILFLOW_DB": db_url, "COUNCILFLOW_DEFINITIONS": str(defs),
                "COUNCILFLOW_MAIL": f"smtp://127.0.0.1:{port}", "COUNCILFLOW_LEASE_SECONDS": "60",
                "COUNCILFLOW_MAIL_FROM": SENDER, **extra})
    return env


def _wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait (bounded) until the child reached its fault point and said so in ``path``."""
    limit = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the child ended early: {proc.communicate()}"
        assert time.monotonic() < limit, "the child never reached its fault point"
        time.sleep(0.02)


@pytest.mark.parametrize("step", ["after-claim", "after-render", "after-send"])
def test_kill_9_at_each_step_loses_nothing(engine: Engine, clock: FixedClock, db_url: str, defs_dir: Path,
                                           tmp_path: Path, step: str) -> None:
    """Killed at `step`, the next tick after the lease delivers everything; duplicates keep their Message-ID."""
    expected = _papers(engine, clock, 3)
    marker = tmp_path / "fault"
    with smtp_server() as (sink, port):
        child = subprocess.Popen(fault_child.command(step, marker, "tick", "--now", "2020-08-18T09:00"),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=fault_child.child_env(_env(db_url, defs_dir, port)))
        _wait_for_file(marker, child)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        before = len(sink.messages)
        calm = subprocess.run([EXE, "tick", "--now", "2020-08-18T09:00:30"], capture_output=True, text=True,
                              env=_env(db_url, defs_dir, port), check=True)
        assert "0 beansprucht" in calm.stdout  # the dead worker's lease still holds
        after = subprocess.run([EXE, "tick", "--now", "2020-08-18T09:01:01"], capture_output=True, text=True,
                               env=_env(db_url, defs_dir, port), check=True)
        assert "3 beansprucht, 3 gesendet" in after.stdout
        received = Counter(m["Message-ID"] for m in sink.wait_for(3 + before))
    assert set(received) == expected
    assert before == (1 if step == "after-send" else 0)
    duplicates = {mid: n for mid, n in received.items() if n > 1}
    assert len(duplicates) == before  # only the mail accepted before the kill came twice, same Message-ID
    assert engine.store.outbox.reminders(statuses=("pending", "claimed", "failed")) == []
    # the trail has one entry per mail, however often it was sent: written when the row was marked
    entries = [r for r in engine.audit() if r.kind == "mail"]
    assert len(entries) == 3 and len({e.payload["mail_id"] for e in entries}) == 3
    assert {e.payload["outcome"] for e in entries} == {"sent"} and engine.verify().ok


def test_serve_catches_up_and_stops_on_sigterm(engine: Engine, clock: FixedClock, db_url: str, defs_dir: Path
                                               ) -> None:
    """`serve` sends what fell due while it was down at once if the mail window is open now (a working day,
    08:00 to 18:00 in Berlin), else keeps it for the window's opening; and exits cleanly on SIGTERM. (serve
    runs on the real clock, so which of the two this run sees depends on the day and hour.)"""
    from datetime import UTC, datetime

    from workflow.calendar import mail_window, working_calendar

    expected = _papers(engine, clock, 2)
    now = datetime.now(UTC)
    definition = engine.library.current("sachstandsbericht")[0]
    opens = mail_window(now, working_calendar(definition.calendar), definition.timezone, 8, 18)
    with smtp_server() as (sink, port):
        child = subprocess.Popen([EXE, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=_env(db_url, defs_dir, port, COUNCILFLOW_TICK_SECONDS="1"))
        try:
            if opens <= now + timedelta(minutes=1):
                received = {m["Message-ID"] for m in sink.wait_for(2)}
            else:
                limit = time.monotonic() + 60
                while True:  # bounded: until serve has looked at the due mails and put them off
                    waiting = engine.store.outbox.reminders(reference=None, statuses=("pending",))
                    if {header_message_id(r.message_id, SENDER) for r in waiting
                        if r.next_attempt_at >= opens - timedelta(minutes=1)} \
                            >= expected:
                        break
                    assert time.monotonic() < limit, "serve never deferred the mails to the window"
                    time.sleep(0.1)
                received = set()
        finally:
            child.send_signal(signal.SIGTERM)
            out, err = child.communicate(timeout=30)
    if opens <= now + timedelta(minutes=1):
        assert expected <= received | {m["Message-ID"] for m in sink.messages}
    else:
        assert sink.messages == [] and re.search(r"\b[1-9]\d* warten auf das Versandfenster", out), out
    assert child.returncode == 0, err
    assert "serve: SIGTERM erhalten" in out and out.rstrip().endswith("serve: beendet")
