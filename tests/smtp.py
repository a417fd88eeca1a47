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

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Sink:
    """Records accepted mails; ``reply`` makes it answer DATA with an error instead (e.g. '451 …').

    Per command in the order they arrive (1 = the first since the server started): ``data_replies``
    answers that DATA with an error, with "drop" hangs up instead of answering, with "hangup" accepts the
    mail and then hangs up; ``rcpt_replies``
    refuses that RCPT. ``sessions`` holds one entry per connection that said EHLO."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.reply: str | None = None
        self.ids: set[str] = set()
        self.received = threading.Condition()
        self.sessions: list[Any] = []
        self.data_replies: dict[int, str] = {}
        self.rcpt_replies: dict[int, str] = {}
        self.data_count = 0
        self.rcpt_count = 0

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        with self.received:
            if not any(known is session for known in self.sessions):
                self.sessions.append(session)
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        self.rcpt_count += 1
        if self.rcpt_count in self.rcpt_replies:
            return self.rcpt_replies[self.rcpt_count]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_count += 1
        scripted = self.data_replies.get(self.data_count)
        if scripted == "drop":
            server.transport.close()  # the connection is lost before the mail was accepted
            return "250 never heard"
        if scripted == "hangup":
            server.loop.call_soon(server.transport.close)  # accepted; then the server hangs up (idle timeout)
        elif scripted is not None:
            return scripted
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


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, int]]:
    """The SMTP server of a test (a test file imports this fixture and names it in ``__all__``)."""
    with smtp_server() as server:
        yield server
