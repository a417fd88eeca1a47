"""The definitions a deployment knows: the folder's files, and every version papers pinned."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from .definition import Definition
from .errors import AuditIntegrityError, NotFoundError, did_you_mean
from .i18n import _
from .loader import definition_files, load_definition, load_definition_file, source_hash

__all__ = ["WORKFLOW_ID", "DefinitionLibrary"]

#: A workflow id: a name looked up in the definitions folder, never a path.
WORKFLOW_ID = re.compile(r"[a-z][a-z0-9_]{0,99}")


class DefinitionLibrary:
    """Loads a folder's definitions lazily, each validated once; caches pinned versions by hash."""

    def __init__(self, folder: str | Path, checks: Sequence[Callable[[Definition, Path], None]] = ()) -> None:
        """``checks`` run once on each definition loaded from the folder (e.g. test-rendering its mail
        templates); each raises DefinitionError to refuse it."""
        self.folder = Path(folder)
        self.checks = tuple(checks)
        self._by_hash: dict[str, Definition] = {}
        self._texts: dict[str, str] = {}
        self._current: dict[str, Definition] = {}
        self._lock = threading.Lock()

    def _path(self, workflow: str) -> Path:
        if not isinstance(workflow, str) or not WORKFLOW_ID.fullmatch(workflow):
            known = self.workflows()
            raise NotFoundError(_("unknown workflow {name}: a workflow is named by its id ([a-z][a-z0-9_]*); known: "
                                  "{known}").format(name=repr(str(workflow)[:100]),
                                                    known=", ".join(known) or _("none")))
        for suffix in (".yaml", ".yml"):
            candidate = self.folder / f"{workflow}{suffix}"
            if candidate.is_file():
                return candidate
        known = self.workflows()
        raise NotFoundError(
            _("no workflow '{name}' in {folder}{hint}; known: {known}").format(
                name=workflow, folder=self.folder, hint=did_you_mean(workflow, known),
                known=", ".join(known) or _("none"))
        )

    def workflows(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return [p.stem for p in definition_files([self.folder])]

    def current(self, workflow: str) -> tuple[Definition, str]:
        """The definition file's present content, validated, with its text."""
        path = self._path(workflow)
        with self._lock:
            cached = self._current.get(workflow)
        if cached is not None:
            return cached, self._texts[cached.source_hash]
        definition = load_definition_file(path)
        for check in self.checks:
            check(definition, self.folder)
        text = path.read_text(encoding="utf-8")
        self._remember(definition, text)
        with self._lock:
            self._current[workflow] = definition
        return definition, text

    def _remember(self, definition: Definition, text: str) -> None:
        with self._lock:
            self._by_hash[definition.source_hash] = definition
            self._texts[definition.source_hash] = text

    def pinned(self, definition_hash: str, text_loader: Callable[[], str]) -> Definition:
        """The exact definition a paper started on; from the cache or its stored text."""
        with self._lock:
            found = self._by_hash.get(definition_hash)
        if found is not None:
            return found
        text = text_loader()
        if source_hash(text) != definition_hash:
            raise AuditIntegrityError(_("the stored definition with hash {hash}… was edited in the database: its text "
                                        "no longer matches its hash").format(hash=definition_hash[:12]))
        definition = load_definition(text, "<stored definition>")  # stored texts were valid when stored
        self._remember(definition, text)
        return definition
