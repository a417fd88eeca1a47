"""The HTTP status of each kind of error: the one table of the API's problem details and the pages."""

from __future__ import annotations

from ..errors import (
    AuditIntegrityError,
    ConflictError,
    DefinitionError,
    InputError,
    NotAllowedNowError,
    NotFoundError,
    NotPermittedError,
    StorageError,
    WorkflowError,
)

__all__ = ["http_status"]

_STATUS = {DefinitionError: 422, InputError: 400, NotAllowedNowError: 409, NotPermittedError: 403,
           ConflictError: 409, NotFoundError: 404, StorageError: 503, AuditIntegrityError: 500}


def http_status(exc: WorkflowError) -> int:
    """The status a response to ``exc`` carries (400 for a kind without its own)."""
    return next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
