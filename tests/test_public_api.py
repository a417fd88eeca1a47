"""The public surface of the `workflow` package is deliberate: changes to it show up here."""

from __future__ import annotations

import workflow
from workflow import errors


def test_public_all_is_pinned() -> None:
    """`workflow.__all__` lists exactly the curated names, and each of them exists."""
    assert sorted(workflow.__all__) == [
        "AuditIntegrityError", "AuditRecord", "Branch", "BranchView", "Change", "Clock", "ConflictError",
        "Definition", "DefinitionError", "DefinitionLibrary", "Engine", "FixedClock", "InputError",
        "NotAllowedNowError", "NotFoundError", "NotPermittedError", "PaperState", "Problem", "SqlStore", "Status",
        "StorageError", "StoredPaper", "SystemClock", "VerifyReport", "WorkflowError", "load_definition",
        "load_definition_file", "verify",
    ]
    assert all(hasattr(workflow, name) for name in workflow.__all__)


def test_error_tree_and_exit_codes() -> None:
    """Every error kind derives from WorkflowError and has its own documented exit code."""
    kinds = [errors.DefinitionError, errors.InputError, errors.NotAllowedNowError, errors.NotPermittedError,
             errors.ConflictError, errors.NotFoundError, errors.StorageError, errors.AuditIntegrityError]
    assert all(issubclass(k, errors.WorkflowError) for k in kinds)
    assert [k.exit_code for k in kinds] == [3, 4, 5, 6, 7, 8, 9, 10]
