"""API bearer tokens: created for a person, stored as SHA-256 only, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from .errors import NotFoundError
from .paper import check_actor
from .store.port import Store

__all__ = ["TokenInfo", "create_token", "list_tokens", "resolve_token", "revoke_token"]


@dataclass(frozen=True)
class TokenInfo:
    id: int
    email: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(store: Store, email: str, label: str, now: datetime) -> tuple[int, str]:
    """A new token for ``email``; the token itself is returned once and never stored."""
    who = check_actor(email)
    token = f"cf_{secrets.token_urlsafe(32)}"
    return store.tokens.add(who, label[:200], _digest(token), now), token


def resolve_token(store: Store, token: str) -> str | None:
    """The e-mail a valid, unrevoked token belongs to."""
    return store.tokens.email_for(_digest(token))


def revoke_token(store: Store, token_id: int, now: datetime) -> None:
    if not store.tokens.revoke(token_id, now):
        raise NotFoundError(f"no active token with id {token_id}")


def list_tokens(store: Store) -> list[TokenInfo]:
    return [TokenInfo(*row) for row in store.tokens.all()]
