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
from ..i18n import N_, _

__all__ = ["http_status", "status_title"]

_STATUS = {DefinitionError: 422, InputError: 400, NotAllowedNowError: 409, NotPermittedError: 403,
           ConflictError: 409, NotFoundError: 404, StorageError: 503, AuditIntegrityError: 500}


def http_status(exc: WorkflowError) -> int:
    """The status a response to ``exc`` carries (400 for a kind without its own)."""
    return next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)


#: What a page's heading and a problem's title say for each status.
_TITLES = {400: N_("Invalid input"), 401: N_("Not signed in"), 403: N_("Not permitted"), 404: N_("Not found"),
           409: N_("Not possible"), 413: N_("Request too large"), 422: N_("Workflow definition faulty"),
           503: N_("Database not reachable")}


def status_title(status: int) -> str:
    """The title of an error of ``status``, in the language in effect."""
    return _(_TITLES.get(status, N_("That did not work")))
