"""Test-only child program: the `councilflow` command with a crash point in sending.

    python -m tests.fault_child STEP MARKER COMMAND [ARGS...]

runs ``councilflow COMMAND ARGS`` (``tick``, ``serve``) through the CLI itself, with the dispatcher the
CLI builds (``Context.dispatcher``), wrapped so that at STEP the process writes ``STEP PID`` to the file
MARKER and blocks until the test kills it (bounded: it exits with 70 if nobody does):

- ``after-claim``: a batch was claimed, nothing of it rendered (the outbox's ``claim`` returned rows);
- ``after-render``: the first mail was rendered, not sent (the composer's ``compose_each`` returned);
- ``after-send``: the transport accepted the first mail, the row is not yet marked sent.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from notifier.dispatch import Dispatcher
from workflow import cli

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("after-claim", "after-render", "after-send")


def command(step: str, marker: Path, *args: str) -> list[str]:
    """The argv that runs ``councilflow *args`` with the crash point ``step``."""
    assert step in STEPS, step
    return [sys.executable, "-m", "tests.fault_child", step, str(marker), *args]


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this checkout first on the path (for ``tests`` and the code under test)."""
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)}


class _Halt:
    def __init__(self, step: str, marker: Path) -> None:
        self.step = step
        self.marker = marker

    def __call__(self) -> None:
        self.marker.write_text(f"{self.step} {os.getpid()}\n", encoding="utf-8")
        threading.Event().wait(120)  # the test kills us long before
        os._exit(70)


class _Wrapper:
    """Passes everything on to the wrapped object but the method a subclass replaces."""

    def __init__(self, inner: Any, halt: _Halt) -> None:
        self._inner = inner
        self._halt = halt

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _HaltAfterClaim(_Wrapper):
    def claim(self, *args: Any, **kwargs: Any) -> Any:
        batch = self._inner.claim(*args, **kwargs)
        if batch:
            self._halt()
        return batch


class _HaltAfterRender(_Wrapper):
    def compose_each(self, *args: Any, **kwargs: Any) -> list[EmailMessage]:
        messages: list[EmailMessage] = self._inner.compose_each(*args, **kwargs)
        self._halt()
        return messages


class _HaltAfterSend(_Wrapper):
    def send(self, message: EmailMessage) -> None:
        self._inner.send(message)
        self._halt()

    @contextmanager
    def session(self) -> Iterator[Callable[[EmailMessage], None]]:
        """The dispatcher sends through a session: halt after its first mail was accepted."""
        with self._inner.session() as send:
            def halting(message: EmailMessage) -> None:
                send(message)
                self._halt()

            yield halting


def with_crash_point(dispatcher: Dispatcher, step: str, marker: Path) -> Dispatcher:
    halt = _Halt(step, marker)
    if step == "after-claim":
        dispatcher.outbox = _HaltAfterClaim(dispatcher.outbox, halt)  # type: ignore[assignment]
    elif step == "after-render":
        dispatcher.composer = _HaltAfterRender(dispatcher.composer, halt)  # type: ignore[assignment]
    else:
        dispatcher.transport = _HaltAfterSend(dispatcher.transport, halt)
    return dispatcher


def main(argv: list[str]) -> int:
    step, marker, *args = argv
    if step not in STEPS:
        raise SystemExit(f"fault_child: step must be one of {', '.join(STEPS)}, not {step!r}")
    build = cli.Context.dispatcher

    def dispatcher(ctx: cli.Context) -> Dispatcher:
        return with_crash_point(build(ctx), step, Path(marker))

    cli.Context.dispatcher = dispatcher  # type: ignore[method-assign]
    return cli.run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
