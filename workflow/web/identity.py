"""Who is asking: the signed-in person from a bearer token or the reverse proxy's trusted header.

The trusted header is off unless configured; then it is accepted only from the configured proxy
addresses (``trusted_proxies``). A request that carries it from anywhere else, or carries it twice, is
refused (401) and logged: whoever can reach the port must not be able to claim an identity.
"""

from __future__ import annotations

import logging
from ipaddress import ip_address

from fastapi import Depends, Request

from ..access import Person
from ..config import Settings
from ..engine import Engine
from ..errors import NotPermittedError, WorkflowError
from ..i18n import _
from ..tokens import resolve_token
from ..values import is_email

__all__ = ["Identity", "Unauthenticated"]

log = logging.getLogger("councilflow.web")


class Unauthenticated(WorkflowError):
    exit_code = 6


class Identity:
    """FastAPI dependencies: ``user`` (anyone signed in) and ``auditor`` (auditors only)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self.auditors = settings.auditor_set()
        self.header = settings.trusted_header.strip().lower()
        self.proxies = settings.proxy_networks()

    def modes(self) -> str:
        """The identity modes that are on, for `councilflow web` to say at start."""
        modes = [_("bearer token (Authorization: Bearer)")]
        if self.header:
            modes.append(_("header {header} from {proxies}").format(header=self.settings.trusted_header,
                                                                        proxies=self.settings.trusted_proxies))
        return ", ".join(modes)

    def _from_proxy(self, request: Request) -> bool:
        host = request.client.host if request.client else ""
        try:
            address = ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    def user(self, request: Request) -> Person:
        auth = request.headers.getlist("authorization")
        values = request.headers.getlist(self.header) if self.header else []
        if len(auth) > 1 or len(values) > 1:
            log.warning("refused: identity header sent twice by %s", request.client.host if request.client else "?")
            raise Unauthenticated(_("the identity header is sent more than once"))
        if values and not self._from_proxy(request):
            log.warning("refused: %s sent by %s, which is not a trusted proxy", self.settings.trusted_header,
                        request.client.host if request.client else "?")
            raise Unauthenticated(_("{header} is accepted only from the trusted proxies")
                                  .format(header=self.settings.trusted_header))
        email: str | None = None
        if auth and auth[0].lower().startswith("bearer "):
            email = resolve_token(self.engine.store, auth[0][7:].strip())
            if email is None:
                raise Unauthenticated(_("the bearer token is unknown or revoked"))
        elif values:
            email = values[0].strip().lower()
            if not is_email(email):
                raise Unauthenticated(_("{header} does not carry an e-mail address")
                                      .format(header=self.settings.trusted_header))
        if not email:
            raise Unauthenticated(_("sign in first (through the administration's proxy or Authorization: Bearer)"))
        return Person(email, email in self.auditors)

    def auditor_dependency(self) -> object:
        def auditor(who: Person = Depends(self.user)) -> Person:
            if not who.auditor:
                raise NotPermittedError(_("{email} is no auditor: the whole trail is for auditors")
                                        .format(email=who.email))
            return who

        return auditor
