"""Who is asking: the signed-in person from a bearer token or the proxy's trusted header."""

from __future__ import annotations

from fastapi import Depends, Request

from ..access import Person
from ..config import Settings
from ..engine import Engine
from ..errors import NotPermittedError, WorkflowError
from ..tokens import resolve_token

__all__ = ["Identity", "Unauthenticated"]


class Unauthenticated(WorkflowError):
    exit_code = 6


class Identity:
    """FastAPI dependencies: ``user`` (anyone signed in) and ``auditor`` (auditors only)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self.auditors = settings.auditor_set()

    def user(self, request: Request) -> Person:
        auth = request.headers.get("authorization", "")
        email: str | None = None
        if auth.lower().startswith("bearer "):
            email = resolve_token(self.engine.store, auth[7:].strip())
            if email is None:
                raise Unauthenticated("the bearer token is unknown or revoked")
        elif self.settings.trusted_header and request.headers.get(self.settings.trusted_header):
            email = request.headers[self.settings.trusted_header].strip().lower()
        if not email:
            raise Unauthenticated("sign in first (trusted header of the proxy or Authorization: Bearer)")
        return Person(email, email in self.auditors)

    def auditor_dependency(self) -> object:
        def auditor(who: Person = Depends(self.user)) -> Person:
            if not who.auditor:
                raise NotPermittedError(f"{who.email} is no auditor: the whole trail is for auditors")
            return who

        return auditor
