"""Tokens, created for a person, stored as SHA-256 only, revocable. Two scopes that never stand in for
each other: ``api`` (a bearer token for the API) and ``calendar`` (the secret in the address of the
person's calendar feed, which grants reading that feed and nothing else)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from .errors import NotFoundError
from .i18n import _
from .paper import SYSTEM_ACTOR, check_actor
from .store.port import Store

__all__ = ["CALENDAR", "TokenInfo", "calendar_path", "create_token", "list_tokens", "resolve_token",
           "revoke_calendar", "revoke_token"]

Scope = Literal["api", "calendar"]
#: The scope of calendar feed secrets.
CALENDAR: Scope = "calendar"
#: How a token of each scope begins (so a leaked one can be recognised, e.g. by secret scanners).
_PREFIX = {"api": "cf_", "calendar": "cfcal_"}


@dataclass(frozen=True)
class TokenInfo:
    id: int
    email: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    scope: str = "api"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(store: Store, email: str, label: str, now: datetime, scope: Scope = "api",
                 actor: str = SYSTEM_ACTOR) -> tuple[int, str]:
    """A new token of ``scope`` for ``email``; the token itself is returned once and never stored. The trail
    records who created it (``actor``: the signed-in person on the web, ``system`` for the CLI), for whom, its
    scope and id."""
    who = check_actor(email)
    token = f"{_PREFIX[scope]}{secrets.token_urlsafe(32)}"
    return store.tokens.add(who, label[:200], _digest(token), now, scope=scope, actor=actor), token


def resolve_token(store: Store, token: str, scope: Scope = "api") -> str | None:
    """The e-mail a valid, unrevoked token of ``scope`` belongs to (a token of the other scope: None)."""
    if not token.startswith(_PREFIX[scope]) or len(token) > 200:
        return None
    return store.tokens.email_for(_digest(token), scope=scope)


def revoke_token(store: Store, token_id: int, now: datetime, actor: str = SYSTEM_ACTOR) -> None:
    """Revoke a token (recorded in the trail with ``actor``)."""
    if not store.tokens.revoke(token_id, now, actor=actor):
        raise NotFoundError(_("no active token with id {id}").format(id=token_id))


def revoke_calendar(store: Store, email: str, now: datetime) -> int:
    """Revoke every active calendar feed secret of ``email`` (by that person); how many there were."""
    who = check_actor(email)
    found = [t for t in list_tokens(store) if t.scope == CALENDAR and t.email == who and t.revoked_at is None]
    return sum(store.tokens.revoke(t.id, now, actor=who) for t in found)


def list_tokens(store: Store) -> list[TokenInfo]:
    return [TokenInfo(*row) for row in store.tokens.all()]


def calendar_path(token: str) -> str:
    """The path of the calendar feed a secret opens (under the web's ``base_url``)."""
    return f"/kalender/{token}.ics"
