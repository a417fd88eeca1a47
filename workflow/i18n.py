"""The language people read: gettext catalogs, German by default, English on request.

Every message a clerk, process owner or auditor reads is written in the code in English and marked with
:func:`_` (or :func:`N_` where it is defined before anyone reads it, e.g. a module-level table, and
translated with :func:`_` where it is shown). The German texts live in gettext catalogs (PO files, kept
with Babel) under ``workflow/locale/de/LC_MESSAGES``, one per area (domain):

- ``core``: the engine, the audit trail, the CLI;
- ``language``: what process owners read: the definition language, lint, simulate, settings, OParl;
- ``web``: the pages, the API's messages and the Prüfbericht (``workflow/web``, ``workflow/templates``);
- ``mail``: the mails and the scheduler (``notifier``).

The language of a process is chosen once: ``--lang`` on the command line, else ``COUNCILFLOW_LANG``, else
``LC_ALL``/``LC_MESSAGES``/``LANG`` when they name English (``en_GB.UTF-8``), else German. The web chooses it
per request from ``Accept-Language`` (:func:`negotiate`) and sets it with :func:`use_language` for that
request only. English is the texts as written (no catalog).

The catalogs are compiled from the PO files when they are first needed (Babel's ``mofile``) and the compiled
form is kept next to them when the folder is writable; ``make messages`` extracts new messages and updates
the catalogs (``pybabel``).
"""

from __future__ import annotations

import contextlib
import gettext as _gettext
import io
import os
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import nodes

__all__ = ["DEFAULT_LANGUAGE", "DOMAINS", "LANGUAGES", "LOCALE_DIR", "N_", "_", "bind_jinja_language",
           "current_language", "gettext", "install_jinja", "language_from_environment", "negotiate", "ngettext",
           "process_language", "set_language", "translations", "use_language"]

#: Where the catalogs live: ``<LOCALE_DIR>/<language>/LC_MESSAGES/<domain>.po``.
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: The catalogs, looked up in this order (a message is found in whichever holds it).
DOMAINS = ("core", "language", "web", "mail")
#: The languages people can choose; the first is the default.
LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = LANGUAGES[0]
#: The language the messages are written in: it needs no catalog.
SOURCE_LANGUAGE = "en"

_process_language = DEFAULT_LANGUAGE
_request_language: ContextVar[str | None] = ContextVar("councilflow_language", default=None)
_cache: dict[str, _gettext.NullTranslations] = {}
_lock = threading.Lock()


def _normalise(tag: str | None) -> str | None:
    """'en_GB.UTF-8', 'en-gb', 'EN' → 'en'; 'de_DE@euro' → 'de'; anything else → None."""
    if not tag:
        return None
    base = tag.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return base if base in LANGUAGES else None


def language_from_environment(environ: dict[str, str] | None = None) -> str:
    """The language the environment asks for: ``COUNCILFLOW_LANG``, else the first of ``LC_ALL``,
    ``LC_MESSAGES``, ``LANG`` that names a language councilflow speaks; German otherwise (``C``, ``POSIX`` and
    unset included: the people councilflow is for read German)."""
    env = os.environ if environ is None else environ
    explicit = _normalise(env.get("COUNCILFLOW_LANG"))
    if explicit:
        return explicit
    for key in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(key)
        if value:
            return _normalise(value) or DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def negotiate(accept_language: str | None) -> str:
    """The language of a web request from its ``Accept-Language`` header (RFC 9110 quality values); German
    when the header is missing, malformed or names nothing councilflow speaks. Never raises."""
    if not accept_language or len(accept_language) > 1000:
        return DEFAULT_LANGUAGE
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(accept_language.split(",")[:30]):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _eq, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not 0.0 < quality <= 1.0:
            continue
        language = DEFAULT_LANGUAGE if tag.strip() == "*" else _normalise(tag)
        if language and (best is None or (quality, -position) > (best[0], best[1])):
            best = (quality, -position, language)
    return best[2] if best else DEFAULT_LANGUAGE


def set_language(language: str | None) -> str:
    """Set the language of this process (the CLI, ``serve``'s default); returns the one in effect."""
    global _process_language
    _process_language = _normalise(language) or DEFAULT_LANGUAGE
    return _process_language


def process_language() -> str:
    """The language of this process (``--lang``, the environment), whatever a request asked for: what it stores
    for people to read later (reminder labels) is made in it."""
    return _process_language


def current_language() -> str:
    """The language in effect here: the request's (:func:`use_language`), else the process's."""
    return _request_language.get() or _process_language


@contextlib.contextmanager
def use_language(language: str | None) -> Iterator[str]:
    """Within the block (a web request, one mail to one recipient), speak ``language``."""
    chosen = _normalise(language) or DEFAULT_LANGUAGE
    token = _request_language.set(chosen)
    try:
        yield chosen
    finally:
        _request_language.reset(token)


def _compile(po: Path) -> _gettext.GNUTranslations:
    """The catalog of one PO file: the compiled MO file next to it when it is up to date, else compiled now
    with Babel (and kept, when the folder may be written)."""
    mo = po.with_suffix(".mo")
    with contextlib.suppress(OSError):
        if mo.stat().st_mtime_ns >= po.stat().st_mtime_ns:
            with mo.open("rb") as handle:
                return _gettext.GNUTranslations(handle)
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as handle:
        catalog = read_po(handle, locale=po.parent.parent.name, domain=po.stem)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    data = buffer.getvalue()
    with contextlib.suppress(OSError):
        partial = mo.with_suffix(f".mo.{os.getpid()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, mo)
    return _gettext.GNUTranslations(io.BytesIO(data))


def translations(language: str) -> _gettext.NullTranslations:
    """The catalogs of ``language``, chained in :data:`DOMAINS` order (cached per process)."""
    found = _cache.get(language)
    if found is not None:
        return found
    with _lock:
        found = _cache.get(language)
        if found is not None:
            return found
        chain: _gettext.NullTranslations = _gettext.NullTranslations()
        if language != SOURCE_LANGUAGE:
            # One lookup table for all domains (the first domain that has a message wins), not a chain of
            # fallbacks: a mail's template asks for dozens of messages of the last domain.
            first: _gettext.GNUTranslations | None = None
            merged: dict[Any, str] = {}
            for domain in reversed(DOMAINS):
                po = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
                if not po.is_file():
                    continue
                first = _compile(po)
                merged.update(first._catalog)  # type: ignore[attr-defined]
            if first is not None:
                first._catalog = merged  # type: ignore[attr-defined]
                chain = first
        _cache[language] = chain
        return chain


def gettext(message: str) -> str:
    """``message`` in the language in effect."""
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form of a message for ``n``, in the language in effect."""
    return translations(current_language()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` in ``context`` (the same English word that reads differently in German)."""
    return translations(current_language()).pgettext(context, message)


#: The usual short name, so that extraction finds the messages: ``_("unknown field '{key}'").format(key=k)``.
_ = gettext


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it now (module-level tables)."""
    return message


def install_jinja(env: Any) -> None:
    """Jinja2's i18n extension on ``env`` (pages, Prüfbericht, mails), speaking the language in effect when a
    template is rendered: ``{{ _("Deadlines") }}``, ``{{ _("Signed in as %(email)s", email=e) }}``,
    ``{% trans trimmed %}…{% endtrans %}``. New-style gettext: placeholders are ``%(name)s`` and escaped in
    HTML like any value; ``current_language()`` gives the page its ``lang``."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext, ngettext, newstyle=True, pgettext=pgettext)
    env.globals["current_language"] = current_language


#: What :func:`install_jinja` gives templates and :func:`bind_jinja_language` can fix when compiling: the name
#: and how many texts it takes first (the message; the context and the message). ``_`` calls ``gettext``.
_BINDABLE = {"_": 1, "gettext": 1, "pgettext": 2, "current_language": 0}


def bind_jinja_language(template: nodes.Template, language: str) -> nodes.Template:
    """A parsed template (``jinja2.nodes.Template``) with its messages translated now, for templates compiled
    for one language (the mails: a compiled template per language): ``{{ _("Good day,") }}`` becomes the text
    "Guten Tag,", ``_("Due on %(day)s", day=d)`` the translated text ``%`` its values, ``{% trans %}`` likewise,
    ``pgettext`` in its context and ``current_language()`` the language. The same result as the callables of
    :func:`install_jinja` rendered while ``language`` is in effect (new-style: the text read as a ``%`` format,
    marked safe and its values escaped in HTML), without a call per text.

    Left to the callables at render time: a template that binds one of these names itself (``{% set _ = … %}``,
    a loop variable or macro argument ``_``, an import as ``_``), a message that is not a plain text (a variable,
    ``*args``, ``**kwargs``), a text that is not a valid ``%`` format without values, and ``ngettext``."""
    from jinja2 import nodes
    from jinja2.visitor import NodeTransformer

    bound = {node.name for node in template.find_all(nodes.Name) if node.ctx != "load"}
    bound.update(node.name for node in template.find_all(nodes.Macro))
    bound.update(node.target for node in template.find_all(nodes.Import))
    bound.update(name if isinstance(name, str) else name[-1]
                 for node in template.find_all(nodes.FromImport) for name in node.names)
    if bound & _BINDABLE.keys():
        return template
    catalog = translations(language)

    class Bind(NodeTransformer):
        def visit_Call(self, node: nodes.Call) -> nodes.Node:
            self.generic_visit(node)  # inner calls first: _("meeting %(when)s", when=pgettext(…))
            name = node.node.name if isinstance(node.node, nodes.Name) else None
            texts = _BINDABLE.get(name or "")
            args = [arg.value for arg in node.args if isinstance(arg, nodes.Const) and isinstance(arg.value, str)]
            if texts is None or node.dyn_args is not None or node.dyn_kwargs is not None or len(node.args) != texts \
                    or len(args) != texts:
                return node
            if name == "current_language":
                return node if node.kwargs else nodes.Const(language, lineno=node.lineno)
            text = catalog.pgettext(*args) if name == "pgettext" else catalog.gettext(args[0])
            values = [(keyword.key, keyword.value) for keyword in node.kwargs]
            if name == "pgettext" and "context" not in {key for key, _value in values}:
                values.append(("context", nodes.Const(args[0])))  # what the callable's setdefault adds
            if not values:
                try:
                    text = text % {}  # "%%" -> "%", as the callable does; a broken format stays a runtime error
                except (TypeError, ValueError, KeyError):
                    return node
                bound_text: nodes.Expr = nodes.MarkSafeIfAutoescape(nodes.Const(text))
            else:
                bound_text = nodes.Mod(nodes.MarkSafeIfAutoescape(nodes.Const(text)),
                                       nodes.Dict([nodes.Pair(nodes.Const(key), value) for key, value in values]))
            bound_text.set_lineno(node.lineno)
            return bound_text

    environment = template.environment
    Bind().visit(template)  # in place: a Template is never replaced
    if environment is not None:  # the new nodes need it to compile
        template.set_environment(environment)
    return template
