"""The only module that imports ``transitions``: a definition becomes one compiled Machine.

A Machine is built once per definition version and reused for every paper. It is never bound to
a database row (pytransitions/transitions#635): one plain cursor object is attached for good, and a
step sets the cursor to the paper's state, fires, and reads the destination back, under a lock.
"""

from __future__ import annotations

import threading
from typing import Any

from transitions import Machine, MachineError

from .definition import Definition

__all__ = ["JOIN_FAILURE", "JOIN_SUCCESS", "CompiledMachine", "compile_machine"]

JOIN_SUCCESS = "_join_success"
JOIN_FAILURE = "_join_failure"


class _Cursor:
    """The plain object ``transitions`` drives; it holds nothing but the current state."""

    state: str


class CompiledMachine:
    """A definition's state graph, executable with :meth:`step` for any paper's state."""

    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        spec: list[dict[str, Any]] = []
        for t in definition.transitions:
            dest = "=" if t.dest == "=" else t.dest  # None: internal (a branch decision)
            spec.append({"trigger": t.trigger, "source": list(t.sources), "dest": dest})
        for s in definition.states.values():
            if s.parallel and s.parallel.on_success and s.parallel.on_failure:
                spec.append({"trigger": JOIN_SUCCESS, "source": s.id, "dest": s.parallel.on_success})
                spec.append({"trigger": JOIN_FAILURE, "source": s.id, "dest": s.parallel.on_failure})
        self._cursor = _Cursor()
        self._lock = threading.Lock()
        # No conditions or callbacks are attached, so a step depends on (state, trigger) alone:
        # each pair is fired through the machine once and remembered.
        self._steps: dict[tuple[str, str], str | None] = {}
        self._machine = Machine(
            model=self._cursor,
            states=list(definition.states),
            initial=definition.initial.id,
            transitions=spec,
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )

    def step(self, state: str, trigger: str) -> str | None:
        """Destination of ``trigger`` fired in ``state``; None when the state does not accept it."""
        key = (state, trigger)
        if key in self._steps:
            return self._steps[key]
        with self._lock:
            self._machine.set_state(state, model=self._cursor)
            try:
                self._machine.events[trigger].trigger(self._cursor)
                dest: str | None = self._cursor.state
            except (MachineError, KeyError):
                dest = None
            self._steps[key] = dest
            return dest

    def triggers(self, state: str) -> list[str]:
        """Triggers a paper in ``state`` accepts, in definition order, without the join moves."""
        names = self._machine.get_triggers(state)
        return [n for n in dict.fromkeys(names) if n not in (JOIN_SUCCESS, JOIN_FAILURE)]


_cache: dict[str, CompiledMachine] = {}
_cache_lock = threading.Lock()


def compile_machine(definition: Definition) -> CompiledMachine:
    """The compiled machine of ``definition``, built once per definition text."""
    key = definition.source_hash or f"{definition.workflow}@{definition.version}"
    with _cache_lock:
        machine = _cache.get(key)
        if machine is None:
            machine = _cache[key] = CompiledMachine(definition)
        return machine
