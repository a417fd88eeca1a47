"""councilflow's engine: YAML workflow definitions become persisted, audited state machines.

Typical use::

    from workflow import Engine, SqlStore, DefinitionLibrary
    engine = Engine(SqlStore("sqlite:///councilflow.db"), DefinitionLibrary("definitions"))
    engine.create("sachstandsbericht", "SV-9-1809", "buero.landrat@kreis-coesfeld.example",
                  {"title": "Digitalisierungsstrategie für den Kreis Coesfeld, Sachstandsbericht"})
    engine.fire("SV-9-1809", "einbringen", "buero.landrat@kreis-coesfeld.example",
                values={"meeting": "2020-08-27T17:00"})
"""

from .audit import VerifyReport, verify
from .clock import Clock, FixedClock, SystemClock
from .definition import Definition
from .engine import BranchView, Engine, Status
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
from .library import DefinitionLibrary
from .loader import load_definition, load_definition_file
from .paper import Branch, Change, PaperState
from .store import AuditRecord, SqlStore, StoredPaper

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
