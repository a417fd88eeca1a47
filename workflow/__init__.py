"""councilflow's engine: YAML workflow definitions become persisted, audited state machines.

Typical use::

    from workflow import Engine, SqlStore, DefinitionLibrary
    engine = Engine(SqlStore("sqlite:///councilflow.db"), DefinitionLibrary("definitions"))
    engine.create("sachstandsbericht", "SV-9-1809", "buero.landrat@kreis-coesfeld.example",
                  {"title": "Digitalisierungsstrategie für den Kreis Coesfeld, Sachstandsbericht"})
    engine.fire("SV-9-1809", "einbringen", "buero.landrat@kreis-coesfeld.example",
                values={"meeting": "2020-08-27T17:00"})
"""

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AuditIntegrityError,
    ConflictError,
    DefinitionError,
    InputError,
    NotAllowedNowError,
    NotFoundError,
    NotPermittedError,
    Problem,
    StorageError,
    WorkflowError,
)

if TYPE_CHECKING:
    from .audit import VerifyReport, verify
    from .clock import Clock, FixedClock, SystemClock
    from .definition import Definition
    from .engine import BranchView, Engine, Status
    from .library import DefinitionLibrary
    from .loader import load_definition, load_definition_file
    from .paper import Branch, Change, PaperState
    from .store import AuditRecord, SqlStore, StoredPaper

# Everything but the errors is imported on first use, so `councilflow --help` and commands that
# need no database do not pay for SQLAlchemy, SQLModel and transitions.
_LAZY = {
    "VerifyReport": ".audit",
    "verify": ".audit",
    "Clock": ".clock",
    "FixedClock": ".clock",
    "SystemClock": ".clock",
    "Definition": ".definition",
    "BranchView": ".engine",
    "Engine": ".engine",
    "Status": ".engine",
    "DefinitionLibrary": ".library",
    "load_definition": ".loader",
    "load_definition_file": ".loader",
    "Branch": ".paper",
    "Change": ".paper",
    "PaperState": ".paper",
    "AuditRecord": ".store",
    "SqlStore": ".store",
    "StoredPaper": ".store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AuditIntegrityError",
    "AuditRecord",
    "Branch",
    "BranchView",
    "Change",
    "Clock",
    "ConflictError",
    "Definition",
    "DefinitionError",
    "DefinitionLibrary",
    "Engine",
    "FixedClock",
    "InputError",
    "NotAllowedNowError",
    "NotFoundError",
    "NotPermittedError",
    "PaperState",
    "Problem",
    "SqlStore",
    "Status",
    "StorageError",
    "StoredPaper",
    "SystemClock",
    "VerifyReport",
    "WorkflowError",
    "load_definition",
    "load_definition_file",
    "verify",
]
