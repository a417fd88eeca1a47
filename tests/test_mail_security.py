"""Untrusted input in mails: header injection (CVE-2024-6923) and sandbox escapes in templates."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from notifier.dispatch import check_templates
from notifier.render import RenderedMail, build_message, check_header
from workflow import DefinitionError, Engine, FixedClock, InputError, load_definition_file

from .conftest import LANDRAT, SPEC

HEADER_ATTACKS = {
    "crlf": "Erinnerung\r\nBcc: evil@example.org",
    "lf": "Erinnerung\nBcc: evil@example.org",
    "cr": "Erinnerung\rBcc: evil@example.org",
    "q-encoded-lf": "=?UTF-8?Q?=0A?=Bcc: evil@example.org",
    "q-encoded-crlf": "=?utf-8?q?Hallo=0D=0ABcc=3A_evil=40example=2Eorg?=",
    "b-encoded-crlf": "=?UTF-8?B?DQpCY2M6IGV2aWxAZXhhbXBsZS5vcmc=?=",
    "latin1-encoded-lf": "Frist =?iso-8859-1?q?=E4=0A?= Bcc: evil@example.org",
}


@pytest.mark.parametrize("value", list(HEADER_ATTACKS.values()), ids=list(HEADER_ATTACKS))
def test_header_injection_is_refused(value: str) -> None:
    """A line break in a header value, literal or hidden in an encoded word, is refused."""
    with pytest.raises(InputError, match=r"^Mail-Kopfzeile Subject: .*(Zeilenumbruch|hides a line break)"):
        check_header(value, "Subject")


@pytest.mark.parametrize("value", ["Fristen für Ämter – Übersicht", "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus Coesfeld"],
                         ids=["umlauts", "harmless-encoded-word"])
def test_harmless_headers_pass(value: str) -> None:
    """Umlauts and encoded words without line breaks are fine."""
    assert check_header(value, "Subject") == value


@pytest.mark.parametrize(
    "recipient",
    ["a@example.org\r\nBcc: evil@example.org", "a@example.org, evil@example.org", "no-address", "a@b@c"],
    ids=["crlf", "two-addresses", "no-at", "two-ats"],
)
def test_bad_recipients_are_refused(recipient: str) -> None:
    """Recipients are built with email.headerregistry.Address; anything else is refused."""
    with pytest.raises(InputError, match=r"^Mail-Kopfzeile To: "):
        build_message(RenderedMail("s", "t", "<p>h</p>"), sender="a@example.org", recipients=[recipient],
                      message_id="<x@councilflow>", date=datetime(2020, 1, 1, tzinfo=UTC), ics=None)


def test_title_with_hidden_bcc_is_refused_at_input_and_at_sending(engine: Engine, clock: FixedClock) -> None:
    """A title that smuggles a Bcc into the subject is refused when it is typed (it would make every
    reminder of its paper fail); the mail builder refuses such a header too, whatever its source."""
    from notifier.render import check_header
    from workflow import InputError

    clock.set(datetime(2020, 8, 4, 7, tzinfo=UTC))
    with pytest.raises(InputError, match="verbirgt einen Zeilenumbruch"):
        engine.create("sachstandsbericht", "SV-X", LANDRAT, {"title": "=?UTF-8?Q?=0A?=Bcc: evil@example.org"})
    assert engine.store.references() == []
    with pytest.raises(InputError, match=r"Mail-Kopfzeile Subject: .*(hides a line break|Zeilenumbruch)"):
        check_header("SV-X: =?UTF-8?Q?=0A?=Bcc: evil@example.org", "Subject")


SANDBOX_PAYLOADS = {
    "mro-subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals-via-cycler": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "globals-via-lipsum": "{{ lipsum.__globals__['os'] }}",
    "self-globals": "{{ self.__init__.__globals__ }}",
    "format-string": "{{ '{0.__class__.__mro__}'.format(paper) }}",
    "attr-filter": "{{ (paper|attr('__class__')).__mro__ }}",
    "cve-2024-56326-indirect-format": "{% set f = '{0.__class__.__mro__}'.format %}{{ f(paper) }}",
    "cve-2025-27516-attr-format": "{{ '{0.__class__.__mro__}'|attr('format')(paper) }}",
    "huge-range": "{% for i in range(10**9) %}{% endfor %}",
    "zero-division": "{{ 1 / 0 }}",
    "undefined-name": "{{ nicht_da }}",
    "syntax": "{% if %}",
}


@pytest.mark.parametrize("payload", list(SANDBOX_PAYLOADS.values()), ids=list(SANDBOX_PAYLOADS))
def test_sandbox_escapes_are_load_errors(tmp_path: Path, payload: str) -> None:
    """A template override that tries to escape the sandbox is refused at load, with its file and line."""
    folder = tmp_path / "defs"
    (folder / "templates" / "sachstandsbericht").mkdir(parents=True)
    shutil.copy(SPEC / "sachstandsbericht.yaml", folder)
    template = folder / "templates" / "sachstandsbericht" / "reminder.txt"
    template.write_text("Guten Tag,\n" + payload + "\n", encoding="utf-8")
    definition = load_definition_file(folder / "sachstandsbericht.yaml")
    with pytest.raises(DefinitionError) as caught:
        check_templates(definition, folder)
    [problem] = caught.value.problems
    assert (problem.path, problem.line) == (str(template), 2)
    assert problem.message.startswith("Mailvorlage: ")


def test_override_templates_are_used(tmp_path: Path) -> None:
    """A definition's templates folder overrides the shipped templates, part by part."""
    folder = tmp_path / "defs"
    (folder / "templates" / "sachstandsbericht").mkdir(parents=True)
    shutil.copy(SPEC / "sachstandsbericht.yaml", folder)
    (folder / "templates" / "sachstandsbericht" / "reminder.subject.txt").write_text(
        "Bitte handeln: {{ paper.reference }}", encoding="utf-8")
    definition = load_definition_file(folder / "sachstandsbericht.yaml")
    check_templates(definition, folder)
    from notifier.dispatch import sample_contexts
    from notifier.render import Renderer

    mail = Renderer(definition.timezone, folder / "templates" / "sachstandsbericht").render(
        "remind", sample_contexts(definition)["remind"])
    assert mail.subject == "Bitte handeln: SV-0-0000" and "Guten Tag" in mail.text


def test_broken_template_fails_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`definitions validate` reports a broken template as `file:line:col: message`."""
    from workflow.cli import run

    folder = tmp_path / "defs"
    (folder / "templates" / "sachstandsbericht").mkdir(parents=True)
    shutil.copy(SPEC / "sachstandsbericht.yaml", folder)
    broken = folder / "templates" / "sachstandsbericht" / "escalation.html"
    broken.write_text("<p>\n{{ paper.titel }}\n</p>\n", encoding="utf-8")
    assert run(["definitions", "validate", str(folder)]) == 3
    assert capsys.readouterr().err.startswith(f"{broken}:2:1: Mailvorlage: UndefinedError:")


