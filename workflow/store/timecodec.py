"""The one codec for stored instants: every instant is an aware UTC datetime in memory; SQLite keeps
it as naive UTC text (SQLAlchemy's format), PostgreSQL as ``timestamptz``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["from_db", "from_db_or_none", "to_db"]


def to_db(moment: datetime | None, dialect: str) -> Any:
    """An aware instant as ``dialect`` stores it (None stays None)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the store; all instants are aware")
    utc = moment.astimezone(UTC)
    # SQLAlchemy's SQLite text form, naive UTC: cut the "+00:00" instead of a costly replace().
    return utc if dialect != "sqlite" else utc.isoformat(" ", "microseconds")[:26]


def from_db(raw: Any) -> datetime:
    """A stored instant (text or datetime, naive meaning UTC) as an aware UTC datetime."""
    if isinstance(raw, str):
        moment = datetime.fromisoformat(raw + "+00:00" if len(raw) <= 26 else raw)
    elif isinstance(raw, datetime):
        moment = raw
    else:
        raise ValueError(f"not a stored instant: {raw!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def from_db_or_none(raw: Any) -> datetime | None:
    return None if raw is None else from_db(raw)
