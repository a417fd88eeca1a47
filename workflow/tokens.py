"""API bearer tokens: created for a person, stored as SHA-256 only, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from .errors import NotFoundError
from .paper import check_actor
from .store import SqlStore
from .store.sql import _utc, _utc_or_none

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


def create_token(store: SqlStore, email: str, label: str, now: datetime) -> tuple[int, str]:
    """A new token for ``email``; the token itself is returned once and never stored."""
    who = check_actor(email)
    token = f"cf_{secrets.token_urlsafe(32)}"
    with store._transaction() as cur:
        cur.execute(store._sql("INSERT INTO tokens (email, label, token_hash, created_at) VALUES (:email, :label, "
                               ":hash, :now) RETURNING id"),
                    {"email": who, "label": label[:200], "hash": _digest(token), "now": store._db_time(now)})
        token_id = int(cur.fetchone()[0])
    return token_id, token


def resolve_token(store: SqlStore, token: str) -> str | None:
    """The e-mail a valid, unrevoked token belongs to."""
    with store._transaction() as cur:
        cur.execute(store._sql("SELECT email FROM tokens WHERE token_hash = :hash AND revoked_at IS NULL"),
                    {"hash": _digest(token)})
        row = cur.fetchone()
    return str(row[0]) if row else None


def revoke_token(store: SqlStore, token_id: int, now: datetime) -> None:
    with store._transaction() as cur:
        cur.execute(store._sql("UPDATE tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL"),
                    {"now": store._db_time(now), "id": token_id})
        if cur.rowcount != 1:
            raise NotFoundError(f"no active token with id {token_id}")


def list_tokens(store: SqlStore) -> list[TokenInfo]:
    with store._transaction() as cur:
        cur.execute("SELECT id, email, label, created_at, revoked_at FROM tokens ORDER BY id")
        return [TokenInfo(int(r[0]), r[1], r[2], _utc(r[3]), _utc_or_none(r[4])) for r in cur.fetchall()]
