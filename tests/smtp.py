"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, on a free port, recording every mail."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Sink:
    """Records accepted mails; ``reply`` makes it answer DATA with an error instead (e.g. '451 …')."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.reply: str | None = None
        self.ids: set[str] = set()
        self.received = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply is not None:
            return self.reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.received:
            self.messages.append(message)  # type: ignore[arg-type]
            self.ids.add(str(message["Message-ID"]))
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.received.notify_all()
        return "250 Message accepted for delivery"

    def wait_until_ids(self, expected: set[str], timeout: float = 30.0) -> list[EmailMessage]:
        """Block until every Message-ID in ``expected`` arrived (or fail after ``timeout``)."""
        with self.received:
            arrived = self.received.wait_for(lambda: len(self.ids & expected) == len(expected), timeout=timeout) \
                if len(expected) < 100 else self.received.wait_for(
                    lambda: len(self.ids) >= len(expected) and expected <= self.ids, timeout=timeout)
        assert arrived, f"{len(expected - self.ids)} of {len(expected)} missing"
        return list(self.messages)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        """Block until ``count`` mails arrived (or fail after ``timeout``): an event wait, not a sleep."""
        with self.received:
            arrived = self.received.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
        assert arrived, f"expected {count} mails, got {len(self.messages)}"
        return list(self.messages)


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    chosen = port or free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=chosen)
    controller.start()
    try:
        yield sink, chosen
    finally:
        controller.stop()
