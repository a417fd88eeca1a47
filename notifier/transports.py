"""Mail transports: SMTP, a mail folder (the embedded default) and an in-memory one for tests."""

from __future__ import annotations

import mailbox
import select
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from workflow.errors import InputError
from workflow.i18n import _

__all__ = ["MaildirTransport", "MemoryTransport", "Send", "SendError", "SmtpTransport", "Transport",
           "transport_from_url"]


class SendError(Exception):
    """A mail was not accepted. ``temporary`` errors are retried with backoff, the others fail."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


#: What a transport's session hands out: delivers one message or raises :class:`SendError`.
Send = Callable[[EmailMessage], None]


class Transport(Protocol):
    name: str

    def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` or raise :class:`SendError`."""

    def session(self) -> AbstractContextManager[Send]:
        """A batch: ``with transport.session() as send: send(a); send(b)``. Each ``send`` succeeds or fails on
        its own, as :meth:`send` does; what can be shared (an SMTP connection) is shared and closed at the end."""
        ...

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

    @contextmanager
    def session(self) -> Iterator[Send]:
        yield self.send


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
            raise SendError(_("{transport} not writable: {reason}").format(transport=self.name, reason=exc.strerror),
                            temporary=True) from None
        return _("{transport} writable").format(transport=self.name)

    def send(self, message: EmailMessage) -> None:
        with self.session() as send:
            send(message)

    @contextmanager
    def session(self) -> Iterator[Send]:
        """The folder is opened (and made, if need be) for the first mail of the batch."""
        folder: mailbox.Maildir | None = None

        def send(message: EmailMessage) -> None:
            nonlocal folder
            try:
                with self._lock:
                    if folder is None:
                        folder = mailbox.Maildir(str(self.path), create=True)
                    folder.add(message.as_bytes())
            except OSError as exc:
                raise SendError(_("mail folder {path}: {reason}").format(path=self.path, reason=exc.strerror or exc),
                                temporary=True) from None

        yield send


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
                code, _reply = client.noop()
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(_("{transport} not reachable: {reason}").format(transport=self.name, reason=exc),
                            temporary=True) from None
        return _("{transport} answers ({code})").format(transport=self.name, code=code)

    def send(self, message: EmailMessage) -> None:
        """One mail over a connection of its own."""
        with self.session() as send:
            send(message)

    @contextmanager
    def session(self) -> Iterator[Send]:
        """One connection for a batch of mails: opened for the first mail (none if nothing is sent), used
        for every further one while it stays up; after a lost connection or a temporary failure the next
        mail opens a new one. QUIT at the end. Each mail succeeds or fails on its own, as with :meth:`send`."""
        session = _SmtpSession(self)
        try:
            yield session.send
        finally:
            session.close()

    def connect(self) -> smtplib.SMTP:
        """A connection ready for mail: EHLO, STARTTLS when offered (or implicit TLS), login if configured.
        Refuses to send a login over an unencrypted connection unless ``smtp+insecure://`` says so."""
        client: smtplib.SMTP
        if self.implicit_tls:
            client = smtplib.SMTP_SSL(self.host, self.port, local_hostname=self.local_hostname,
                                      timeout=self.timeout, context=self.tls())
        else:
            client = smtplib.SMTP(self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout)
        try:
            client.ehlo()
            encrypted = self.implicit_tls
            if not self.implicit_tls and client.has_extn("starttls"):
                client.starttls(context=self.tls())
                client.ehlo()
                encrypted = True
            if self.user and not encrypted and not self.insecure:
                raise SendError(_("{transport} offers no STARTTLS: the login of {user} is not sent over an "
                                  "unencrypted connection (smtp+insecure:// allows it explicitly)")
                                .format(transport=self.name, user=self.user), temporary=False)
            if self.user:
                client.login(self.user, self.password or "")
        except BaseException:
            _quit(client)
            raise
        return client

    def error(self, exc: Exception) -> SendError:
        """``exc`` of smtplib or the socket as a SendError: 4xx and connection problems are temporary."""
        if isinstance(exc, SendError):
            return exc
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = {code for code, _text in exc.recipients.values()}
            return SendError(_("{transport} refused all recipients: {refused}").format(transport=self.name,
                                                                                        refused=exc.recipients),
                             temporary=all(400 <= c < 500 for c in codes))
        if isinstance(exc, smtplib.SMTPResponseException):
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            return SendError(f"{self.name}: {exc.smtp_code} {text}", temporary=400 <= exc.smtp_code < 500)
        return SendError(f"{self.name}: {type(exc).__name__}: {exc}", temporary=True)


class _SmtpSession:
    """The connection of one batch (see :meth:`SmtpTransport.session`)."""

    def __init__(self, transport: SmtpTransport) -> None:
        self.transport = transport
        self.client: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        transport = self.transport
        try:
            if self.client is not None and _dropped(self.client):
                self.client.close()  # the server hung up (or said 421) meanwhile: a new connection
                self.client = None
            if self.client is None:
                self.client = transport.connect()
            refused = self.client.send_message(message)
        except (OSError, smtplib.SMTPException, SendError) as exc:
            error = transport.error(exc)
            # After a permanent refusal of this mail smtplib has reset the transaction (RSET): the next mail
            # goes over the same connection. After a temporary one (the server may be limiting or in trouble),
            # a lost connection (smtplib closes it after a 421) or anything else, the next mail opens a new one.
            refused_for_good = isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused) \
                and not error.temporary
            if self.client is not None and (self.client.sock is None or not refused_for_good):
                self.client.close()
                self.client = None
            raise error from None
        if refused:
            codes = {code for code, _text in refused.values()}
            detail = "; ".join(f"{rcpt}: {code} {text.decode(errors='replace')}"
                               for rcpt, (code, text) in refused.items())
            raise SendError(_("{transport} refused recipients: {refused}").format(transport=transport.name,
                                                                                   refused=detail),
                            temporary=all(400 <= c < 500 for c in codes))

    def close(self) -> None:
        if self.client is not None:
            _quit(self.client)
            self.client = None


def _dropped(client: smtplib.SMTP) -> bool:
    """Whether an idle connection was closed by the server: it is readable although nothing was asked
    (end of file, or a 421 before hanging up). One poll without waiting, no round trip."""
    sock = client.sock
    if sock is None:
        return True
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _quit(client: smtplib.SMTP) -> None:
    """QUIT and close; a connection that is gone already is just closed."""
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


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
        raise InputError(_("mail transport '{url}': use smtp://host:port, smtps://host:port or maildir:PATH")
                         .format(url=_redact(url)))
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise InputError(_("mail transport '{url}': the port is not a number").format(url=_redact(url))) from None
    return SmtpTransport(parts.hostname, port, implicit_tls=parts.scheme == "smtps",
                         user=unquote(parts.username) if parts.username else None,
                         password=unquote(parts.password) if parts.password else password,
                         insecure=parts.scheme == "smtp+insecure")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.password, "***")
    return url


