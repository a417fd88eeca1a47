"""The one exception tree of councilflow.

Every error a user can cause is a :class:`WorkflowError`; the CLI prints its message as one
line on stderr and exits with the code of its kind::

    WorkflowError                      exit 1  (base; never raised directly)
    ├── DefinitionError                exit 3  a workflow definition is invalid (lists problems)
    ├── InputError                     exit 4  bad command input: field, value, date, name
    ├── NotAllowedNowError             exit 5  the paper's state does not accept this now
    ├── NotPermittedError              exit 6  the actor holds no role that may do this
    ├── ConflictError                  exit 7  someone else changed it first, or it exists already
    ├── NotFoundError                  exit 8  no such paper or workflow
    ├── StorageError                   exit 9  the database cannot be reached or used
    ├── AuditIntegrityError            exit 10 the audit trail does not verify
    └── ToolMissingError               exit 11 a program of the system is missing (Graphviz dot)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "AuditIntegrityError",
    "ConflictError",
    "DefinitionError",
    "InputError",
    "NotAllowedNowError",
    "NotFoundError",
    "NotPermittedError",
    "Problem",
    "StorageError",
    "ToolMissingError",
    "WorkflowError",
    "did_you_mean",
]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' when a known name is close to ``name``, else ''."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    from .i18n import _

    return _(" (did you mean '{name}'?)").format(name=close[0]) if close else ""


class WorkflowError(Exception):
    """Base of every error a user of councilflow can cause."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Problem:
    """One problem of a definition file, located by line and column (1-based)."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class DefinitionError(WorkflowError):
    """A workflow definition is invalid; ``problems`` holds every problem found."""

    exit_code = 3

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class InputError(WorkflowError):
    """A command's input is malformed or names something unknown."""

    exit_code = 4


class NotAllowedNowError(WorkflowError):
    """The paper's current state does not accept the requested change."""

    exit_code = 5


class NotPermittedError(WorkflowError):
    """The actor holds none of the roles that may make the change."""

    exit_code = 6


class ConflictError(WorkflowError):
    """The paper was changed concurrently, or the thing to create exists already."""

    exit_code = 7


class NotFoundError(WorkflowError):
    """No paper, workflow or definition version of that name."""

    exit_code = 8


class StorageError(WorkflowError):
    """The database cannot be reached or is not usable."""

    exit_code = 9


class AuditIntegrityError(WorkflowError):
    """The audit trail does not verify; the message names the first broken entry."""

    exit_code = 10


class ToolMissingError(WorkflowError):
    """A program councilflow runs is not installed (Graphviz ``dot`` for the diagrams)."""

    exit_code = 11
