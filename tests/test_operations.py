"""Operations: doctor, one `serve` per SQLite file, and several `serve` processes racing on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from notifier.render import header_message_id
from workflow import Engine
from workflow.config import Settings

from . import fault_child
from .smtp import free_port, smtp_server

EXE = str(Path(sys.executable).parent / "councilflow")


def _env(db_url: str, defs: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCILFLOW_")}
    return {**env, "COUNCILFLOW_DB": db_url, "COUNCILFLOW_DEFINITIONS": str(defs), **extra}


def _wait_line(proc: subprocess.Popen[str], text: str, timeout: float = 30) -> None:
    """Read the child's output until ``text`` appears (bounded)."""
    limit = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < limit:
        line = proc.stdout.readline()
        if text in line:
            return
        assert line or proc.poll() is None, f"the child ended: {proc.communicate()}"
    raise AssertionError(f"no line with {text!r}")


def test_doctor_reports_each_check(engine: Engine, db_url: str, defs_dir: Path) -> None:
    """doctor prints one line per check and exits 1 when one fails; all ok after a tick with SMTP up."""
    with smtp_server() as (_, port):
        env = _env(db_url, defs_dir, COUNCILFLOW_MAIL=f"smtp://127.0.0.1:{port}")
        before = subprocess.run([EXE, "doctor"], env=env, capture_output=True, text=True)
        assert before.returncode == 1
        assert "FAIL Zeitplaner: noch kein serve-Prozess hat einen Durchlauf gemacht" in before.stdout
        subprocess.run([EXE, "tick"], env=env, check=True, capture_output=True)
        after = subprocess.run([EXE, "doctor"], env=env, capture_output=True, text=True)
    assert after.returncode == 0, after.stdout
    assert [line.split(":")[0] for line in after.stdout.splitlines()] == [
        "ok   Datenbank", "ok   Ablaufdefinitionen", "ok   Mail", "ok   Zeitplaner"]
    down = subprocess.run([EXE, "doctor"], env=_env(db_url, defs_dir, COUNCILFLOW_MAIL=f"smtp://127.0.0.1:{free_port()}"),
                          capture_output=True, text=True)
    assert down.returncode == 1 and "FAIL Mail: smtp://127.0.0.1:" in down.stdout and "nicht erreichbar" in down.stdout


def test_second_serve_on_sqlite_refuses(tmp_path: Path, defs_dir: Path) -> None:
    """A second `serve` on the same SQLite file stops at once with a clear message."""
    env = _env(f"sqlite:///{tmp_path / 'one.db'}", defs_dir, COUNCILFLOW_MAIL="memory:")
    first = subprocess.Popen([EXE, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_line(first, "serve: Durchgang alle")
        second = subprocess.run([EXE, "serve"], env=env, capture_output=True, text=True, timeout=30)
        assert second.returncode == 7
        assert second.stderr.strip() == (f"councilflow: Fehler: ein anderes councilflow serve (PID {first.pid}) läuft "
                                         f"auf sqlite:///{tmp_path / 'one.db'}; SQLite ist für einen Prozess — für "
                                         "mehrere PostgreSQL verwenden")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0


def _queue(engine: Engine, count: int) -> set[str]:
    """``count`` due digest mails straight into the outbox (what a busy morning looks like)."""
    payload = json.dumps({"today": "2020-08-04T06:00:00+00:00", "until": "2020-08-18T06:00:00+00:00", "items": []})
    ids = {f"<race-{n}@councilflow>" for n in range(count)}
    with engine.store._transaction() as cur:
        cur.executemany(engine.store._sql(
            "INSERT INTO reminders (kind, label, send_at, recipients, payload, message_id, status, attempts, "
            "next_attempt_at) VALUES ('digest', 'Fristenübersicht', :at, :to, :payload, :mid, 'pending', 0, :at)"),
            [{"at": engine.store._db_time(engine.clock.now()), "to": json.dumps([f"person{n % 50}@example.org"]),
              "payload": payload, "mid": mid} for n, mid in enumerate(sorted(ids))])
    return {header_message_id(mid, Settings().mail_from) for mid in ids}  # as the workers send them


@pytest.mark.postgres
@pytest.mark.parametrize("kill", [False, True], ids=["race", "kill-9-mid-batch"])
def test_four_serve_processes_deliver_everything_once(engine: Engine, db_url: str, defs_dir: Path,
                                                       tmp_path: Path, kill: bool) -> None:
    """10,000 due mails, 4 `serve` on one PostgreSQL: all delivered, none twice (but the killed one's)."""
    if engine.store.dialect != "postgresql":
        pytest.skip("several serve processes need PostgreSQL")
    count = 10_000
    expected = _queue(engine, count)
    marker = tmp_path / "fault"
    with smtp_server() as (sink, port):
        base = dict(COUNCILFLOW_MAIL=f"smtp://127.0.0.1:{port}", COUNCILFLOW_TICK_SECONDS="1",
                    COUNCILFLOW_BATCH="50", COUNCILFLOW_LEASE_SECONDS="10", COUNCILFLOW_DIGEST_HOUR="23")
        workers = []
        for n in range(4):
            env = _env(db_url, defs_dir, **base)
            if kill and n == 0:
                argv, env = fault_child.command("after-send", marker, "serve"), fault_child.child_env(env)
            else:
                argv = [EXE, "serve"]
            workers.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        try:
            if kill:
                limit = time.monotonic() + 60
                while not marker.exists():
                    assert time.monotonic() < limit, "the faulty worker never sent"
                    time.sleep(0.05)
                os.kill(workers[0].pid, signal.SIGKILL)  # dies holding a claimed batch of 50
            received = sink.wait_until_ids(expected, timeout=300)
        finally:
            for w in workers:
                if w.poll() is None:
                    w.send_signal(signal.SIGTERM)
            for w in workers:
                w.communicate(timeout=60)
    ids = Counter(m["Message-ID"] for m in received)
    assert set(ids) == expected  # none lost
    duplicates = {mid: n for mid, n in ids.items() if n > 1}
    assert len(duplicates) == (1 if kill else 0) and all(n == 2 for n in duplicates.values())
    with engine.store._transaction() as cur:
        cur.execute("SELECT status, count(*) FROM reminders GROUP BY status")
        assert dict(cur.fetchall()) == {"sent": count}


@pytest.mark.postgres
def test_database_restart_under_load(engine: Engine, db_url: str, defs_dir: Path) -> None:
    """PostgreSQL restarts while `serve` ticks and changes stream in: clear errors, then success on retry;
    nothing half-written; the trail verifies; serve survives and stops cleanly."""
    if engine.store.dialect != "postgresql":
        pytest.skip("restarting the database server is a PostgreSQL test")
    from workflow import StorageError

    from .conftest import LANDRAT, SITZ

    engine.create("sachstandsbericht", "SV-R", LANDRAT, {"title": "Neustart"})
    engine.fire("SV-R", "einbringen", LANDRAT, values={"meeting": "2030-08-27T17:00"})
    serve = subprocess.Popen([EXE, "serve"], env=_env(db_url, defs_dir, COUNCILFLOW_MAIL="memory:",
                                                      COUNCILFLOW_TICK_SECONDS="1", COUNCILFLOW_DIGEST_HOUR="23"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    version = Path("/etc/postgresql").iterdir().__next__().name
    successes, errors = 0, []
    try:
        _wait_line(serve, "serve: Durchgang alle")
        restarted = False
        for n in range(400):  # bounded stream of changes
            if n == 100:
                subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                               check=True, capture_output=True, timeout=120)
                restarted = True
            try:
                engine.fire("SV-R", "vertagen", SITZ, values={"result": f"vertagt {n}", "meeting": "2030-09-24T17:00"})
                successes += 1
            except StorageError as exc:
                errors.append(exc.message)
        assert restarted and successes >= 390, (successes, errors[:3])
        assert all(message.startswith("database 'postgresql") and "\n" not in message for message in errors)
    finally:
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=60)
    assert serve.returncode == 0 and out.rstrip().endswith("serve: beendet"), err[-500:]
    entries = [r for r in engine.history("SV-R") if r.trigger == "vertagen"]
    assert successes <= len(entries) <= successes + len(errors)  # an interrupted commit may or may not land
    assert len({r.payload["result"] for r in entries}) == len(entries)  # no change written twice
    assert engine.verify().ok
