"""The audit hash chain: SHA-256 over a canonical encoding of each entry and its predecessor."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

__all__ = ["GENESIS", "canonical_json", "entry_hash", "instant_text"]

#: The ``prev_hash`` of the very first entry.
GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: the same value always gives the same string."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def instant_text(at: datetime) -> str:
    """An aware UTC instant as fixed-width ISO text (microseconds always present)."""
    return at.isoformat(timespec="microseconds")


def entry_hash(
    *,
    seq: int,
    reference: str,
    workflow: str,
    workflow_version: int,
    kind: str,
    trigger: str,
    from_state: str | None,
    to_state: str,
    branch: str | None,
    body: str | None,
    actor: str,
    at: datetime,
    payload: str,
    prev_hash: str,
) -> str:
    """Hash of one entry chained to ``prev_hash``; ``payload`` is its canonical JSON text."""
    encoded = canonical_json(
        [
            seq,
            reference,
            workflow,
            workflow_version,
            kind,
            trigger,
            from_state,
            to_state,
            branch,
            body,
            actor,
            instant_text(at),
            payload,
            prev_hash,
        ]
    )
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()
