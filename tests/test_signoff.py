"""Mitzeichnung (sign-off): `signoff` on a state, `requires: [signoffs]`, sign / refuse / withdraw, a field
change voiding the sign-offs (with a mail to the signers), the trail, the CLI, the API and the paper page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from notifier.dispatch import Dispatcher
from notifier.transports import SmtpTransport
from workflow import (
    DefinitionError,
    Engine,
    FixedClock,
    InputError,
    NotAllowedNowError,
    NotPermittedError,
    load_definition,
)
from workflow.cli import run
from workflow.config import Settings
from workflow.german import entry_text
from workflow.paper import fields_hash
from workflow.store import Store
from workflow.web import create_app

from .conftest import engine_on
from .smtp import smtp_server

AUTOR = "autor@kreis.example"
KAEMMEREI = "kaemmerei@kreis.example"
KAEMMERIN = "kaemmerin@kreis.example"
RECHT = "recht@kreis.example"
OUTSIDER = "buerger@example.org"

VORLAGE = """\
workflow: vorlage
version: 1
title: Vorlage mit Mitzeichnung
timezone: Europe/Berlin
roles:
  verfasser: [autor@kreis.example]
  kaemmerei: [kaemmerei@kreis.example, kaemmerin@kreis.example]
  rechtsamt: [recht@kreis.example]
fields:
  title: {type: text, required: true}
  betrag: {type: int}
states:
  entwurf:
    label: Entwurf
    initial: true
    signoff: {roles: [kaemmerei, rechtsamt], order: sequence}
  freigegeben: {label: Freigegeben, final: true}
transitions:
  - {trigger: bearbeiten, source: entwurf, internal: true, roles: [verfasser], sets: [title, betrag]}
  - {trigger: freigeben, source: entwurf, dest: freigegeben, roles: [verfasser], requires: [signoffs]}
"""
ANY_ORDER = VORLAGE.replace("order: sequence", "order: any")


@pytest.fixture
def vorlage(store: Store, tmp_path: Path, clock: FixedClock) -> Engine:
    engine = engine_on(store, tmp_path / "defs", clock, vorlage=VORLAGE)
    engine.create("vorlage", "V-1", AUTOR, {"title": "Haushalt 2027", "betrag": "100"})
    return engine


def kinds(changes: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(c.kind, c.trigger) for c in changes]


def test_sequence_order(vorlage: Engine) -> None:
    """With order: sequence the roles sign in the order of `roles`; the transition waits for all of them."""
    with pytest.raises(NotAllowedNowError, match=r"^V-1: 'freigeben' ist erst nach allen Mitzeichnungen möglich; "
                                                 r"es fehlt: kaemmerei \(offen\), rechtsamt \(offen\)$"):
        vorlage.fire("V-1", "freigeben", AUTOR)
    with pytest.raises(NotAllowedNowError, match=r"zuerst ist die Rolle 'kaemmerei' an der Reihe"):
        vorlage.sign("V-1", RECHT)
    [signed] = vorlage.sign("V-1", KAEMMERIN, text="Deckung ist gegeben")
    assert (signed.kind, signed.trigger, signed.actor) == ("signoff", "sign", KAEMMERIN)
    assert signed.payload == {"role": "kaemmerei", "note": "Deckung ist gegeben",
                              "fields_hash": fields_hash(vorlage.load("V-1").state.fields)}
    with pytest.raises(NotAllowedNowError, match=r"es fehlt: rechtsamt \(offen\)$"):
        vorlage.fire("V-1", "freigeben", AUTOR)
    vorlage.sign("V-1", RECHT)
    st = vorlage.status("V-1")
    assert [(s.role, s.status, s.actor) for s in st.signoffs] == [("kaemmerei", "signed", KAEMMERIN),
                                                                  ("rechtsamt", "signed", RECHT)]
    assert st.signoff_order == "sequence"
    assert kinds(vorlage.fire("V-1", "freigeben", AUTOR)) == [("transition", "freigeben")]
    assert vorlage.status("V-1").signoffs == ()  # a state without signoff shows none


def test_any_order(store: Store, tmp_path: Path, clock: FixedClock) -> None:
    """With order: any each role signs when it likes; the transition still waits for every one."""
    engine = engine_on(store, tmp_path / "defs", clock, vorlage=ANY_ORDER)
    engine.create("vorlage", "V-2", AUTOR, {"title": "Satzung"})
    engine.sign("V-2", RECHT)
    with pytest.raises(NotAllowedNowError, match=r"es fehlt: kaemmerei \(offen\)$"):
        engine.fire("V-2", "freigeben", AUTOR)
    engine.sign("V-2", KAEMMEREI)
    assert engine.status("V-2").signoff_order == "any"
    engine.fire("V-2", "freigeben", AUTOR)
    assert engine.status("V-2").state == "freigegeben"


def test_field_change_voids_the_signoffs_and_mails_the_signers(vorlage: Engine, clock: FixedClock) -> None:
    """A changed field voids every sign-off given (an entry of the system in the same change), they are asked
    for again, and the signers get one mail each; an edit that changes nothing voids nothing."""
    vorlage.sign("V-1", KAEMMEREI)
    vorlage.sign("V-1", RECHT)
    assert kinds(vorlage.fire("V-1", "bearbeiten", AUTOR, values={"betrag": "100"})) == [("internal", "bearbeiten")]
    changes = vorlage.fire("V-1", "bearbeiten", AUTOR, values={"betrag": "120"})
    assert kinds(changes) == [("internal", "bearbeiten"), ("signoff", "void")]
    assert changes[1].actor == "system" and changes[1].payload == {
        "roles": ["kaemmerei", "rechtsamt"], "signers": [KAEMMEREI, RECHT], "changed": ["betrag"],
        "fields_hash": fields_hash(vorlage.load("V-1").state.fields)}
    assert [s.status for s in vorlage.status("V-1").signoffs] == ["open", "open"]
    with pytest.raises(NotAllowedNowError, match=r"es fehlt: kaemmerei \(offen\), rechtsamt \(offen\)"):
        vorlage.fire("V-1", "freigeben", AUTOR)
    [mail] = vorlage.reminders(reference="V-1")
    assert (mail.kind, mail.label, mail.recipients) == ("signoff_void", "Mitzeichnung ungültig", (KAEMMEREI, RECHT))
    vorlage.fire("V-1", "bearbeiten", AUTOR, values={"betrag": "130"})
    assert len(vorlage.reminders(reference="V-1")) == 1  # nothing signed, nothing voided, nobody mailed
    vorlage.sign("V-1", KAEMMEREI)  # asked again: signs again
    vorlage.sign("V-1", RECHT)
    vorlage.fire("V-1", "freigeben", AUTOR)
    assert vorlage.verify().ok


def test_voided_twice_at_the_same_instant(vorlage: Engine) -> None:
    """Signed, voided, signed again and voided again in one minute: two mails of the same words to the same
    signer at the same moment, each with a Message-ID of its own."""
    for betrag in ("120", "130"):
        vorlage.sign("V-1", KAEMMEREI)
        assert kinds(vorlage.fire("V-1", "bearbeiten", AUTOR, values={"betrag": betrag}))[-1] == ("signoff", "void")
    first, second = vorlage.reminders(reference="V-1")
    assert (first.recipients, first.send_at) == (second.recipients, second.send_at) == ((KAEMMEREI,), first.send_at)
    assert first.message_id != second.message_id
    assert vorlage.verify().ok


def test_the_signers_receive_the_void_mail(store: Store, tmp_path: Path, clock: FixedClock) -> None:
    """The mail goes out through the outbox like any other: one personal copy per signer, in German."""
    engine = engine_on(store, tmp_path / "defs", clock, vorlage=VORLAGE)
    clock.set(datetime(2026, 1, 5, 9, tzinfo=UTC))
    engine.create("vorlage", "V-3", AUTOR, {"title": "Haushalt 2027", "betrag": "100"})
    engine.sign("V-3", KAEMMEREI)
    engine.fire("V-3", "bearbeiten", AUTOR, values={"title": "Haushalt 2027 (geändert)"})
    with smtp_server() as (sink, port):
        worker = Dispatcher(engine, SmtpTransport("127.0.0.1", port), Settings(mail_from="councilflow@kreis.example"),
                            "test")
        assert worker.tick(datetime(2026, 1, 5, 9, 30, tzinfo=UTC)).sent == 1
        [message] = sink.wait_for(1)
    assert message["To"] == KAEMMEREI
    assert message["Subject"] == "V-3: Mitzeichnung erneut erforderlich – Haushalt 2027 (geändert)"
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "wurde geändert, nachdem Sie sie mitgezeichnet" in text and "Geändert:    Titel" in text
    assert "councilflow sign V-3" in text
    assert engine.reminders(reference="V-3") == []  # sent
    [entry] = [r for r in engine.history("V-3") if r.kind == "mail"]  # and recorded in the trail
    assert entry.payload["message_ids"] == {KAEMMEREI: message["Message-ID"]}
    assert entry_text(entry, None, "Europe/Berlin").label == f"Mitzeichnung ungültig gesendet an {KAEMMEREI}"
    assert engine.verify().ok


def test_refusal_blocks_until_withdrawn(vorlage: Engine) -> None:
    """A refusal needs a reason and blocks (also the roles after it in sequence) until its role withdraws it;
    a field change does not void a refusal."""
    with pytest.raises(InputError, match=r"^V-1: eine Ablehnung braucht eine Begründung"):
        vorlage.sign("V-1", KAEMMEREI, act="refuse", text="  ")
    [refused] = vorlage.sign("V-1", KAEMMEREI, act="refuse", text="Deckung fehlt")
    assert refused.payload["reason"] == "Deckung fehlt"
    with pytest.raises(NotAllowedNowError, match=r"es fehlt: kaemmerei \(abgelehnt von kaemmerei@kreis.example: "
                                                 r"Deckung fehlt\), rechtsamt \(offen\)"):
        vorlage.fire("V-1", "freigeben", AUTOR)
    with pytest.raises(NotAllowedNowError, match=r"die Rolle 'kaemmerei' hat abgelehnt \(kaemmerei@kreis.example\); "
                                                 r"sie muss ihre Ablehnung zuerst zurückziehen"):
        vorlage.sign("V-1", RECHT)
    with pytest.raises(NotAllowedNowError, match=r"die Rolle 'kaemmerei' hat bereits abgelehnt"):
        vorlage.sign("V-1", KAEMMERIN)
    assert kinds(vorlage.fire("V-1", "bearbeiten", AUTOR, values={"betrag": "90"})) == [("internal", "bearbeiten")]
    assert vorlage.status("V-1").signoffs[0].status == "refused"
    [withdrawn] = vorlage.sign("V-1", KAEMMERIN, act="withdraw")  # the role withdraws, by any of its people
    assert withdrawn.payload == {"role": "kaemmerei", "decision": "refused", "of": KAEMMEREI}
    vorlage.sign("V-1", KAEMMEREI)
    vorlage.sign("V-1", RECHT)
    vorlage.fire("V-1", "freigeben", AUTOR)
    assert vorlage.status("V-1").state == "freigegeben"


def test_who_may_sign_and_when(vorlage: Engine) -> None:
    """Only holders of a signoff role sign, once per role, in a state that asks for sign-offs."""
    with pytest.raises(NotPermittedError, match=r"^autor@kreis.example darf V-1 nicht mitzeichnen: die "
                                                r"Mitzeichnung ist Sache der Rollen kaemmerei, rechtsamt$"):
        vorlage.sign("V-1", AUTOR)
    with pytest.raises(NotPermittedError):
        vorlage.sign("V-1", OUTSIDER, act="refuse", text="nein")
    with pytest.raises(NotAllowedNowError, match=r"es gibt nichts zurückzuziehen"):
        vorlage.sign("V-1", KAEMMEREI, act="withdraw")
    vorlage.sign("V-1", KAEMMEREI)
    with pytest.raises(NotAllowedNowError, match=r"^V-1: die Rolle 'kaemmerei' hat bereits mitgezeichnet "
                                                 r"\(kaemmerei@kreis.example\); eine Mitzeichnung gibt es nur einmal$"):
        vorlage.sign("V-1", KAEMMERIN)
    vorlage.sign("V-1", RECHT)
    vorlage.fire("V-1", "freigeben", AUTOR)
    with pytest.raises(NotAllowedNowError, match=r"^V-1 ist im Zustand 'freigegeben' \(Freigegeben\), der keine "
                                                 r"Mitzeichnung verlangt$"):
        vorlage.sign("V-1", KAEMMEREI)


def test_the_trail_verifies_and_replays_the_signoffs(vorlage: Engine, clock: FixedClock) -> None:
    """Sign-offs are entries of the hash chain; the status as of a moment shows the sign-offs standing then."""
    clock.set(datetime(2026, 1, 5, 9, tzinfo=UTC))
    vorlage.sign("V-1", KAEMMEREI, text="ok")
    clock.set(datetime(2026, 1, 6, 9, tzinfo=UTC))
    vorlage.fire("V-1", "bearbeiten", AUTOR, values={"betrag": "1"})
    report = vorlage.verify()
    assert report.ok, report
    then = vorlage.status("V-1", as_of="2026-01-05T12:00")
    assert [(s.role, s.status, s.text) for s in then.signoffs] == [("kaemmerei", "signed", "ok"),
                                                                   ("rechtsamt", "open", None)]
    assert [s.status for s in vorlage.status("V-1").signoffs] == ["open", "open"]
    texts = [entry_text(r, vorlage.definition_version(r.workflow, r.workflow_version), "Europe/Berlin")
             for r in vorlage.history("V-1")]
    assert [(t.label, t.details) for t in texts[1:]] == [
        ("Mitgezeichnet", ("Rolle kaemmerei", "Vermerk: ok")),
        ("Bearbeiten", ()),
        ("Mitzeichnungen ungültig: die Vorlage wurde danach geändert",
         ("Rollen kaemmerei", "geändert: Betrag", f"erneut angefragt: {KAEMMEREI}")),
    ]


def test_a_tampered_signoff_breaks_the_chain(tmp_path: Path, clock: FixedClock) -> None:
    """Editing a sign-off entry in the database is found by `audit verify`."""
    from sqlalchemy import text

    from workflow import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    engine = engine_on(store, tmp_path / "defs", clock, vorlage=VORLAGE)
    engine.create("vorlage", "V-1", AUTOR, {"title": "Haushalt"})
    engine.sign("V-1", KAEMMEREI)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit SET actor = :who WHERE kind = 'signoff'"), {"who": KAEMMERIN})
    assert not engine.verify().ok


# --- the language ----------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "where", "message"), [
    ("roles: [kaemmerei, rechtsamt], order", "roles: [kaemmerei, finanzamt], order", "16:34",
     "unbekannte Rolle 'finanzamt'"),
    ("roles: [kaemmerei, rechtsamt], order", "roles: [], order", "16:22",
     "signoff von Zustand 'entwurf' nennt keine Rolle"),
    ("order: sequence", "order: reihe", "16:53", "order des signoff von Zustand 'entwurf' muss any | sequence sein"),
    ("roles: [kaemmerei, rechtsamt], order", "roles: [kaemmerei, kaemmerei], order", "16:34",
     "nennt die Rolle 'kaemmerei' zweimal"),
    ("roles: [kaemmerei, rechtsamt], order", "roles: [body], order", "16:23", "'body' kann nicht mitzeichnen"),
    ("    signoff: {roles: [kaemmerei, rechtsamt], order: sequence}\n", "", "19:93",
     "verlangt signoffs, aber Zustand 'entwurf' hat keinen signoff"),
    (", requires: [signoffs]}", "}", "16:5", "die Mitzeichnungen von Zustand 'entwurf' halten keinen Übergang auf"),
    ("freigegeben: {label: Freigegeben, final: true}",
     "freigegeben: {label: Freigegeben, final: true, signoff: {roles: [rechtsamt]}}", "17:",
     "ist ein Endzustand und kann keine Mitzeichnung verlangen"),
])
def test_signoff_problems_at_load(old: str, new: str, where: str, message: str) -> None:
    """Each problem of a signoff is named with file, line and column."""
    assert old in VORLAGE
    with pytest.raises(DefinitionError) as caught:
        load_definition(VORLAGE.replace(old, new), "vorlage.yaml")
    found = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"vorlage.yaml:{where}") and message in p for p in found), found
    assert len(found) == 1, found  # nothing that only follows from it


def test_signoff_is_read() -> None:
    definition = load_definition(VORLAGE, "vorlage.yaml")
    signoff = definition.states["entwurf"].signoff
    assert signoff is not None and signoff.roles == ("kaemmerei", "rechtsamt") and signoff.order == "sequence"
    assert load_definition(VORLAGE.replace(", order: sequence", ""), "v.yaml").states["entwurf"].signoff == \
        type(signoff)(("kaemmerei", "rechtsamt"), "any")
    [freigeben] = [t for t in definition.transitions if t.trigger == "freigeben"]
    assert freigeben.needs_signoffs and freigeben.settable() == ()


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "vorlage.yaml").write_text(VORLAGE, encoding="utf-8")
    monkeypatch.setenv("COUNCILFLOW_DB", db_url)
    monkeypatch.setenv("COUNCILFLOW_DEFINITIONS", str(folder))
    monkeypatch.setenv("COUNCILFLOW_NOW", "2026-01-05T09:00")


def test_cli_sign(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    """`councilflow sign`: German one-line errors with the documented exit codes; status lists the sign-offs."""
    assert run(["documents", "create", "vorlage", "V-1", "--actor", AUTOR, "--set", "title=Haushalt"]) == 0
    capsys.readouterr()
    cases: list[tuple[list[str], int, str]] = [
        (["--actor", AUTOR], 6, "autor@kreis.example darf V-1 nicht mitzeichnen"),
        (["--actor", RECHT], 5, "zuerst ist die Rolle 'kaemmerei' an der Reihe"),
        (["--actor", KAEMMEREI, "--refuse"], 4, "eine Ablehnung braucht eine Begründung"),
        (["--actor", KAEMMEREI, "--reason", "x"], 4, "eine Begründung gehört zu einer Ablehnung"),
        (["--actor", KAEMMEREI, "--refuse", "--withdraw", "--reason", "x"], 4, "schließen einander aus"),
        (["--actor", "kein-mensch"], 4, "ist keine E-Mail-Adresse"),
    ]
    for args, code, message in cases:
        assert run(["sign", "V-1", *args]) == code, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert run(["sign", "V-1", "--actor", KAEMMEREI, "--note", "passt"]) == 0
    assert capsys.readouterr().out == f"V-1: Mitgezeichnet (Rolle kaemmerei) am 05.01.2026 09:00 von {KAEMMEREI}\n"
    assert run(["sign", "V-1", "--actor", KAEMMERIN]) == 5
    assert "hat bereits mitgezeichnet" in capsys.readouterr().err
    assert run(["sign", "V-1", "--actor", RECHT, "--refuse", "--reason", "Rechtsgrundlage fehlt"]) == 0
    assert "Mitzeichnung abgelehnt (Rolle rechtsamt)" in capsys.readouterr().out
    assert run(["fire", "V-1", "freigeben", "--actor", AUTOR]) == 5
    assert "es fehlt: rechtsamt (abgelehnt von recht@kreis.example: Rechtsgrundlage fehlt)" in capsys.readouterr().err
    assert run(["status", "V-1"]) == 0
    out = capsys.readouterr().out
    assert "  Mitzeichnung (in Reihenfolge):\n" in out
    assert re.search(r"kaemmerei +mitgezeichnet von kaemmerei@kreis.example am 05.01.2026 09:00  – passt", out)
    assert re.search(r"rechtsamt +abgelehnt von recht@kreis.example", out)
    assert run(["sign", "V-1", "--actor", RECHT, "--withdraw"]) == 0
    assert "Mitzeichnung bzw. Ablehnung zurückgezogen (Rolle rechtsamt)" in capsys.readouterr().out
    assert run(["audit", "verify"]) == 0


# --- the API and the page ----------------------------------------------------------------------

PROXY = ("127.0.0.1", 50000)


def as_user(email: str) -> dict[str, str]:
    return {"X-Remote-User": email}


@pytest.fixture
def client(vorlage: Engine) -> Iterator[TestClient]:
    app = create_app(vorlage, Settings(secret="test-secret", trusted_header="X-Remote-User",
                                       trusted_proxies="127.0.0.1"))
    with TestClient(app, client=PROXY) as c:
        yield c


def test_api_sign(client: TestClient) -> None:
    """POST /api/papers/{ref}/sign signs off, refuses and withdraws; errors are problem details."""
    url = "/api/papers/V-1/sign"
    refused = client.post(url, headers=as_user(AUTOR), json={})
    assert refused.status_code == 403 and "darf V-1 nicht mitzeichnen" in refused.json()["detail"]
    early = client.post(url, headers=as_user(RECHT), json={"note": "x"})
    assert early.status_code == 409 and "an der Reihe" in early.json()["detail"]
    bad = client.post(url, headers=as_user(KAEMMEREI), json={"refuse": "ja"})
    assert bad.status_code == 400 and "müssen true oder false sein" in bad.json()["detail"]
    no_reason = client.post(url, headers=as_user(KAEMMEREI), json={"refuse": True})
    assert no_reason.status_code == 400 and "braucht eine Begründung" in no_reason.json()["detail"]
    done = client.post(url, headers=as_user(KAEMMEREI), json={"refuse": True, "reason": "Deckung fehlt"})
    assert done.status_code == 200
    assert done.json()["signoffs"][0] == {"role": "kaemmerei", "status": "refused", "actor": KAEMMEREI,
                                          "at": done.json()["signoffs"][0]["at"], "text": "Deckung fehlt"}
    stale = client.post(url, headers=as_user(KAEMMEREI), json={"withdraw": True, "version": 1})
    assert stale.status_code == 409
    version = client.get("/api/papers/V-1", headers=as_user(AUTOR)).json()["version"]
    withdrawn = client.post(url, headers=as_user(KAEMMERIN), json={"withdraw": True, "version": version})
    assert withdrawn.status_code == 200 and withdrawn.json()["signoffs"][0]["status"] == "open"
    assert client.post(url, headers=as_user(KAEMMERIN), json={"note": "jetzt ja"}).json()["signoffs"][0][
        "status"] == "signed"
    assert client.post(url, headers=as_user(KAEMMEREI), json={}).status_code == 409  # twice for the role


def test_paper_page_shows_the_signoffs_and_the_button(client: TestClient) -> None:
    """The paper page lists the sign-offs; those who may sign get the button, its page signs with a note."""
    page = client.get("/vorlagen/V-1", headers=as_user(KAEMMEREI)).text
    assert '<h2 id="mitzeichnung">Mitzeichnung</h2>' in page and "In der Reihenfolge der Rollen." in page
    assert re.search(r"<td>kaemmerei</td><td>offen</td>", page)
    assert 'action="/vorlagen/V-1/mitzeichnen"' in page and "Mitzeichnen …" in page
    author = client.get("/vorlagen/V-1", headers=as_user(AUTOR)).text
    assert "Mitzeichnen …" not in author and '<h2 id="mitzeichnung">' in author
    assert "Erst möglich, wenn alle Mitzeichnungen vorliegen." in author  # at the step that waits for them
    assert re.search(r'<button type="submit" disabled aria-describedby="wartet-\w+">', author)  # cannot fire yet
    assert "Mitzeichnen …" not in client.get("/vorlagen/V-1", headers=as_user(RECHT)).text  # not their turn
    form = client.get("/vorlagen/V-1/mitzeichnen", headers=as_user(KAEMMEREI)).text
    assert "Mitzeichnung ablehnen" in form and "Vermerk (freiwillig)" in form
    csrf = re.search(r'name="csrf" value="([0-9]+\.[0-9a-f]+)"', form)
    assert csrf is not None
    missing = client.post("/vorlagen/V-1/mitzeichnen", headers=as_user(KAEMMEREI),
                          data={"csrf": csrf.group(1), "act": "refuse", "reason": ""})
    assert missing.status_code == 400 and "eine Ablehnung braucht eine Begründung" in missing.text
    sent = client.post("/vorlagen/V-1/mitzeichnen", headers=as_user(KAEMMEREI), follow_redirects=False,
                       data={"csrf": csrf.group(1), "act": "sign", "note": "Deckung gegeben"})
    assert sent.status_code == 303 and sent.headers["location"] == "/vorlagen/V-1"
    after = client.get("/vorlagen/V-1", headers=as_user(KAEMMEREI)).text
    assert "Gespeichert: Mitgezeichnet (V-1)" in after
    assert re.search(r"<td>kaemmerei</td><td>mitgezeichnet</td>\s*<td>kaemmerei@kreis.example</td>", after)
    assert "Deckung gegeben" in after and "Mitzeichnung oder Ablehnung zurückziehen" in after
    assert "Mitzeichnen …" in client.get("/vorlagen/V-1", headers=as_user(RECHT)).text  # now it is
    outsider = client.get("/vorlagen/V-1/mitzeichnen", headers=as_user(AUTOR)).text
    assert "Sie können diese Vorlage jetzt nicht mitzeichnen." in outsider
