"""Mail transports: SMTP, a mail folder (the embedded default) and an in-memory one for tests."""

from __future__ import annotations

import mailbox
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from workflow.errors import InputError

__all__ = ["MaildirTransport", "MemoryTransport", "SendError", "SmtpTransport", "Transport", "transport_from_url"]


class SendError(Exception):
    """A mail was not accepted. ``temporary`` errors are retried with backoff, the others fail."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


class Transport(Protocol):
    name: str

    def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` or raise :class:`SendError`."""

    def check(self) -> str:
        """Whether mail can go out now (for `councilflow doctor`): a short finding, or SendError."""
        ...


@dataclass
class MemoryTransport:
    """Keeps every message in a list: for tests and previews."""

    name: str = "memory"

    def check(self) -> str:
        return self.name
    sent: list[EmailMessage] = field(default_factory=list)

    def send(self, message: EmailMessage) -> None:
        self.sent.append(message)


class MaildirTransport:
    """Writes each message into a Maildir folder (``new/``), readable by any mail client."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"maildir:{path}"
        self._lock = threading.Lock()

    def check(self) -> str:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".councilflow-doctor"
            probe.write_text("ok", encoding="utf-8")
            probe.unlink()
        except OSError as exc:
            raise SendError(f"{self.name} not writable: {exc.strerror}", temporary=True) from None
        return f"{self.name} writable"

    def send(self, message: EmailMessage) -> None:
        try:
            with self._lock:
                mailbox.Maildir(str(self.path), create=True).add(message.as_bytes())
        except OSError as exc:
            raise SendError(f"mail folder {self.path}: {exc.strerror or exc}", temporary=True) from None


class SmtpTransport:
    """SMTP with STARTTLS when the server offers it (``smtp://``) or implicit TLS (``smtps://``)."""

    def __init__(self, host: str, port: int, *, implicit_tls: bool = False, user: str | None = None,
                 password: str | None = None, timeout: float = 30.0, insecure: bool = False) -> None:
        self.host, self.port, self.implicit_tls = host, port, implicit_tls
        self.insecure = insecure  # smtp+insecure://: a login may go over an unencrypted connection
        self.user, self.password, self.timeout = user, password, timeout
        self.name = f"{'smtps' if implicit_tls else 'smtp'}://{host}:{port}"
        # smtplib would ask socket.getfqdn() on every connection: a DNS round trip, tens of ms here.
        self.local_hostname = socket.gethostname() or "localhost"

    _context: ssl.SSLContext | None = None

    def tls(self) -> ssl.SSLContext:
        """The TLS context, made once: loading the CA store costs tens of milliseconds."""
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context

    def check(self) -> str:
        try:
            client = (smtplib.SMTP_SSL if self.implicit_tls else smtplib.SMTP)(
                self.host, self.port, local_hostname=self.local_hostname, timeout=10)
            with client:
                code, _ = client.noop()
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"{self.name} not reachable: {exc}", temporary=True) from None
        return f"{self.name} answers ({code})"

    def send(self, message: EmailMessage) -> None:
        try:
            client: smtplib.SMTP
            if self.implicit_tls:
                client = smtplib.SMTP_SSL(self.host, self.port, local_hostname=self.local_hostname,
                                          timeout=self.timeout, context=self.tls())
            else:
                client = smtplib.SMTP(self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout)
            with client:
                client.ehlo()
                encrypted = self.implicit_tls
                if not self.implicit_tls and client.has_extn("starttls"):
                    client.starttls(context=self.tls())
                    client.ehlo()
                    encrypted = True
                if self.user and not encrypted and not self.insecure:
                    raise SendError(f"{self.name} offers no STARTTLS: the login of {self.user} is not sent over an "
                                    "unencrypted connection (smtp+insecure:// allows it explicitly)", temporary=False)
                if self.user:
                    client.login(self.user, self.password or "")
                refused = client.send_message(message)
            if refused:
                codes = {code for code, _ in refused.values()}
                detail = "; ".join(f"{rcpt}: {code} {text.decode(errors='replace')}"
                                   for rcpt, (code, text) in refused.items())
                raise SendError(f"{self.name} refused recipients: {detail}",
                                temporary=all(400 <= c < 500 for c in codes))
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            raise SendError(f"{self.name} refused all recipients: {exc.recipients}",
                            temporary=all(400 <= c < 500 for c in codes)) from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise SendError(f"{self.name}: {exc.smtp_code} {text}", temporary=400 <= exc.smtp_code < 500) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"{self.name}: {type(exc).__name__}: {exc}", temporary=True) from None


def transport_from_url(url: str, *, default_folder: Path, password: str | None = None) -> Transport:
    """``smtp://[user:password@]host:port``, ``smtps://…``, ``maildir:PATH`` or ``memory:``.

    ``password`` (from ``COUNCILFLOW_MAIL_PASSWORD``) is used when the URL names a user but no password,
    so the secret need not stand in a URL.
    """
    if url in ("", "maildir:", "maildir"):
        return MaildirTransport(default_folder)
    if url.startswith("maildir:"):
        return MaildirTransport(Path(url.removeprefix("maildir:").removeprefix("//")))
    if url == "memory:":
        return MemoryTransport()
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps", "smtp+insecure") or not parts.hostname:
        raise InputError(f"mail transport '{_redact(url)}': use smtp://host:port, smtps://host:port or maildir:PATH")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise InputError(f"mail transport '{_redact(url)}': the port is not a number") from None
    return SmtpTransport(parts.hostname, port, implicit_tls=parts.scheme == "smtps",
                         user=unquote(parts.username) if parts.username else None,
                         password=unquote(parts.password) if parts.password else password,
                         insecure=parts.scheme == "smtp+insecure")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.password, "***")
    return url


