"""Audit queries and the verification of the hash chain."""

from __future__ import annotations

from dataclasses import dataclass

from .chain import GENESIS
from .store import SqlStore

__all__ = ["VerifyReport", "verify"]


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify`: ``ok``, the entries checked, and the first break."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    broken_seq: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "problem": self.problem,
            "broken_seq": self.broken_seq,
        }


def verify(store: SqlStore, *, head: str | None = None) -> VerifyReport:
    """Recompute the chain; name the first entry that was edited, deleted, inserted or reordered.

    ``head`` is a hash the auditor kept outside the database: it must still be in the chain.
    """
    head_seq, head_hash = store.head()
    expected_seq, prev, count = 1, GENESIS, 0
    seen_head = head is None or head == GENESIS

    def broken(seq: int, message: str) -> VerifyReport:
        return VerifyReport(False, count, head_seq, head_hash, message, seq)

    for entry in store.iter_audit():
        label = f"entry {entry.seq} ({entry.reference}, {entry.trigger})"
        if entry.seq != expected_seq:
            what = "deleted" if entry.seq > expected_seq else "out of order"
            return broken(
                expected_seq,
                f"entry {expected_seq} is missing ({what}): found entry {entry.seq} after entry {expected_seq - 1}",
            )
        if entry.prev_hash != prev:
            return broken(
                entry.seq,
                f"{label} does not link to entry {entry.seq - 1}: entries were inserted, deleted or reordered",
            )
        if entry.expected_hash() != entry.hash:
            return broken(entry.seq, f"{label} was edited: its content does not match its hash")
        prev = entry.hash
        seen_head = seen_head or entry.hash == head
        expected_seq += 1
        count += 1
    if head_seq != count or head_hash != prev:
        return broken(
            count + 1,
            f"the trail ends at entry {count} but the chain head says {head_seq}:"
            f" entries after {count} were cut off or the head was changed",
        )
    if not seen_head:
        return broken(count, f"the kept head hash {head} is not in the chain: the trail was cut or rewritten")
    return VerifyReport(True, count, head_seq, head_hash)
