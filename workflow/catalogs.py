"""Keeping the gettext catalogs in step with the code (``make messages``, and the completeness test).

For each domain of :data:`workflow.i18n.DOMAINS`, the messages are extracted from the files its
``workflow/locale/<domain>.cfg`` names (Babel's extractors: Python, and Jinja2 for templates) and merged into
``workflow/locale/de/LC_MESSAGES/<domain>.po``: new messages are added untranslated, messages the code no
longer has are dropped, translations are kept. :func:`check` lists what a translator still has to do.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from .i18n import DOMAINS, LANGUAGES, LOCALE_DIR, SOURCE_LANGUAGE

__all__ = ["CatalogProblem", "check", "extract", "update"]

ROOT = LOCALE_DIR.parent.parent
#: The catalogs' header dates stay put, so that an update changes only what changed (git keeps the history).
STABLE_DATE = datetime(2026, 11, 28, tzinfo=UTC)
#: Keywords beyond Babel's defaults (``_``, ``gettext``, ``ngettext``, ``N_``, ``pgettext`` …).
KEYWORDS: dict[str, object] = {}


@dataclass(frozen=True)
class CatalogProblem:
    domain: str
    language: str
    message: str
    what: str

    def __str__(self) -> str:
        return f"{self.language}/{self.domain}.po: {self.message!r}: {self.what}"


def _po(language: str, domain: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"


def extract(domain: str) -> Catalog:
    """The messages the code of ``domain`` has, with where they are."""
    with (LOCALE_DIR / f"{domain}.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)  # type: ignore[no-untyped-call]
    catalog = Catalog(project="councilflow", domain=domain, charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def _read(language: str, domain: str) -> Catalog:
    path = _po(language, domain)
    if not path.is_file():
        return Catalog(locale=language, domain=domain, project="councilflow", charset="utf-8")
    with path.open("rb") as handle:
        return read_po(handle, locale=language, domain=domain)


def update() -> list[Path]:
    """Merge what the code has into every catalog; returns the files written."""
    written = []
    for domain in DOMAINS:
        template = extract(domain)
        for language in LANGUAGES:
            if language == SOURCE_LANGUAGE:
                continue
            catalog = _read(language, domain)
            catalog.update(template, no_fuzzy_matching=True)
            catalog.obsolete.clear()
            catalog.fuzzy = False
            catalog.creation_date = catalog.revision_date = STABLE_DATE
            catalog.project, catalog.version = "councilflow", "0.1"
            catalog.copyright_holder = catalog.last_translator = catalog.language_team = "councilflow"
            catalog.msgid_bugs_address = ""
            path = _po(language, domain)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as handle:
                write_po(handle, catalog, sort_by_file=True, width=116, include_previous=False,
                         include_lineno=False)
            written.append(path)
    return written


_FIELD = string.Formatter()


def _placeholders(text: str) -> set[str]:
    """The names of ``{name}`` placeholders (``str.format``) and ``%(name)s`` (Jinja2's i18n) in a text."""
    names = {m.group(1) for m in re.finditer(r"%\((\w+)\)[sdif]", text)}
    try:
        names |= {field for _lit, field, _spec, _conv in _FIELD.parse(text) if field is not None}
    except ValueError:
        names.add("<unbalanced braces>")
    return names


def check() -> list[CatalogProblem]:
    """What is missing: messages of the code without a translation, translations whose placeholders differ
    from the message's, and catalog entries the code no longer has."""
    problems: list[CatalogProblem] = []
    for domain in DOMAINS:
        template = extract(domain)
        for language in LANGUAGES:
            if language == SOURCE_LANGUAGE:
                continue
            catalog = _read(language, domain)
            for message in template:
                if not message.id:
                    continue
                found = catalog.get(message.id, context=message.context)
                ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
                key = ids[0]
                if found is None:
                    problems.append(CatalogProblem(domain, language, key, "not in the catalog (make messages)"))
                    continue
                strings = found.string if isinstance(found.string, tuple | list) else (found.string,)
                if found.fuzzy or not all(strings):
                    problems.append(CatalogProblem(domain, language, key, "not translated"))
                    continue
                wanted = set().union(*(_placeholders(i) for i in ids))
                for text in strings:
                    if _placeholders(text or "") != wanted:
                        problems.append(CatalogProblem(domain, language, key,
                                                       f"placeholders {sorted(_placeholders(text or ''))} differ from "
                                                       f"{sorted(wanted)}"))
            known = {(m.id if not isinstance(m.id, list) else tuple(m.id), m.context) for m in template if m.id}
            for entry in catalog:
                ident = entry.id if not isinstance(entry.id, list) else tuple(entry.id)
                if entry.id and (ident, entry.context) not in known:
                    first = ident[0] if isinstance(ident, tuple) else ident
                    problems.append(CatalogProblem(domain, language, first,
                                                   "the code no longer has it (make messages)"))
    return problems


def main() -> int:
    """``python -m workflow.catalogs``: update the catalogs and list what is left to translate."""
    for path in update():
        print(f"updated {path.relative_to(ROOT)}")
    left = check()
    for problem in left:
        print(problem)
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
