"""The definitions a deployment knows: the folder's files, and every version papers pinned."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from .definition import Definition
from .errors import AuditIntegrityError, DefinitionError, NotFoundError, Problem, did_you_mean
from .i18n import _
from .loader import definition_files, load_definition, load_definition_file, source_hash

__all__ = ["WORKFLOW_ID", "DefinitionLibrary", "check_follow_ups"]

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
        check_follow_ups(definition, self.folder)
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


def check_follow_ups(definition: Definition, folder: Path) -> None:
    """The follow-ups of ``definition`` against the definitions folder: each names a workflow of the folder that
    loads, and sets only fields it has, every required one among them (DefinitionError with every problem, at
    the place in ``definition``'s file)."""
    problems: list[Problem] = []
    for f in definition.follow_ups:
        line, column = f.where.get("workflow", (1, 1))
        path = next((p for p in (folder / f"{f.workflow}.yaml", folder / f"{f.workflow}.yml") if p.is_file()), None)
        if path is None:
            known = [p.stem for p in definition_files([folder])] if folder.is_dir() else []
            problems.append(Problem(definition.source_path, line, column, _(
                "follow-up '{name}': no workflow '{workflow}' in {folder}{hint}; known: {known}").format(
                name=f.name, workflow=f.workflow, folder=folder, hint=did_you_mean(f.workflow, known),
                known=", ".join(known) or "-")))
            continue
        if f.workflow == definition.workflow:
            child = definition
        else:
            try:
                child = load_definition_file(path)
            except DefinitionError:
                problems.append(Problem(definition.source_path, line, column, _(
                    "follow-up '{name}': the workflow '{workflow}' has problems of its own; check {path}").format(
                    name=f.name, workflow=f.workflow, path=path)))
                continue
        for key in f.fields:
            if key not in child.fields:
                at_line, at_column = f.where.get(f"fields.{key}", (line, column))
                problems.append(Problem(definition.source_path, at_line, at_column, _(
                    "follow-up '{name}': workflow '{workflow}' has no field '{key}'{hint}; its fields: {known}")
                    .format(name=f.name, workflow=f.workflow, key=key, hint=did_you_mean(key, list(child.fields)),
                            known=", ".join(child.fields) or "-")))
        for spec in child.fields.values():
            automatic = spec.name == "references" and spec.type == "list"
            if spec.required and spec.default is None and spec.name not in f.fields and not automatic:
                problems.append(Problem(definition.source_path, line, column, _(
                    "follow-up '{name}': field '{key}' of workflow '{workflow}' is required; give it in fields")
                    .format(name=f.name, key=spec.name, workflow=f.workflow)))
    if problems:
        raise DefinitionError(sorted(problems, key=lambda p: (p.line, p.column)))
