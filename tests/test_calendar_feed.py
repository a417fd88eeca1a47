"""The personal calendar feed (`/kalender/{secret}.ics`, issue 11): the mails' calendar entries for every
deadline a person is notified of or would be escalated to, and their meetings; feed secrets created and
revoked like tokens (CLI and the button on "Meine Fristen"), never standing in for API tokens; and
"Meine Fristen" showing deadlines escalated to the person."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar

from notifier.dispatch import Composer
from notifier.render import calendar_uid
from workflow import Engine, FixedClock
from workflow.access import Person
from workflow.cli import run
from workflow.config import Settings
from workflow.store import Store
from workflow.tokens import CALENDAR, calendar_path, create_token, list_tokens, revoke_token
from workflow.web import create_app

from .conftest import LANDRAT, SITZ, engine_on
from .test_done import PROXIED, TEXT, _in_committee

VORLAGE = calendar_uid("frist", "SV-1", "vorlage", "")
LADUNG = calendar_uid("frist", "SV-1", "ladung", "")
SITZUNG = calendar_uid("sitzung", "SV-1", "ausschuss", "afwk")


@pytest.fixture
def engine(store: Store, tmp_path: Path, clock: FixedClock) -> Engine:
    """The Sachstandsbericht with "Vorlage fertigstellen" (notifies the author, escalates to the
    Sitzungsdienst) next to the Ladungsfrist (notifies the Sitzungsdienst)."""
    return engine_on(store, tmp_path / "defs", clock, sachstandsbericht=TEXT)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine, PROXIED), client=("127.0.0.1", 1)) as c:
        yield c


def feed_url(engine: Engine, email: str) -> str:
    return calendar_path(create_token(engine.store, email, "", engine.now(), CALENDAR)[1])


def entries(client: TestClient, url: str) -> dict[str, Any]:
    """The feed's events by UID (the response checked to be a private calendar)."""
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert response.headers["cache-control"] == "private, no-store"
    calendar = Calendar.from_ical(response.content)
    assert str(calendar["x-wr-calname"]) == "councilflow: Fristen und Sitzungen"
    return {str(e["uid"]): e for e in calendar.walk("VEVENT")}


def mail_entries(engine: Engine, kind: str, name: str) -> dict[str, Any]:
    """The events of the .ics attached to the pending mail of ``kind`` for deadline ``name`` of SV-1."""
    [view] = [v for v in engine.deadlines("SV-1") if v.deadline.name == name]
    mail = next(m for m in view.mails if m.kind == kind and m.status == "pending")
    message = Composer(engine, Settings()).compose(mail, engine.now())
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    return {str(e["uid"]): e for e in Calendar.from_ical(part.get_content()).walk("VEVENT")}


def test_the_feed_holds_the_mails_entries(engine: Engine, client: TestClient) -> None:
    """The author's feed: "Vorlage fertigstellen" and the committee's meeting, byte for byte the entries of
    the reminder mail's .ics (same UID, SEQUENCE, times, alarm); the Sitzungsdienst's feed has its own
    Ladungsfrist and the Vorlage deadline it would be escalated for, and the meeting once."""
    _in_committee(engine)
    landrat = entries(client, feed_url(engine, LANDRAT))
    assert set(landrat) == {VORLAGE, SITZUNG}
    mail = mail_entries(engine, "remind", "vorlage")
    assert set(mail) == {VORLAGE, SITZUNG}
    for uid in mail:
        assert landrat[uid].to_ical() == mail[uid].to_ical()
    assert landrat[VORLAGE].decoded("dtstart") == date(2020, 9, 10) and landrat[VORLAGE].walk("VALARM")
    assert landrat[SITZUNG].decoded("dtstart") == datetime(2020, 9, 24, 15, tzinfo=UTC)
    assert str(landrat[VORLAGE]["summary"]) == "Frist: Vorlage fertigstellen – SV-1"
    sitzungsdienst = entries(client, feed_url(engine, SITZ))
    assert set(sitzungsdienst) == {VORLAGE, LADUNG, SITZUNG}
    assert sitzungsdienst[LADUNG].to_ical() == mail_entries(engine, "remind", "ladung")[LADUNG].to_ical()
    assert entries(client, feed_url(engine, "jemand@kreis-coesfeld.example")) == {}


def test_a_moved_meeting_moves_and_a_done_deadline_disappears(engine: Engine, client: TestClient,
                                                              clock: FixedClock) -> None:
    """Subscribed once: after the meeting moved, the same UIDs carry the new times with a higher SEQUENCE;
    after "erledigt" the deadline is gone from the feed, its meeting stays."""
    _in_committee(engine)
    url = feed_url(engine, LANDRAT)
    before = entries(client, url)
    clock.advance(timedelta(days=1))
    engine.set_meeting("SV-1", "2020-10-01T17:00", SITZ)
    after = entries(client, url)
    assert set(after) == set(before) == {VORLAGE, SITZUNG}
    assert after[SITZUNG].decoded("dtstart") == datetime(2020, 10, 1, 15, tzinfo=UTC)
    assert after[SITZUNG].decoded("dtend") == datetime(2020, 10, 1, 17, tzinfo=UTC)
    assert after[VORLAGE].decoded("dtstart") == date(2020, 9, 17)
    assert all(int(after[uid]["sequence"]) > int(before[uid]["sequence"]) for uid in after)
    assert after[VORLAGE].to_ical() == mail_entries(engine, "remind", "vorlage")[VORLAGE].to_ical()
    engine.done("SV-1", "vorlage", LANDRAT)
    assert set(entries(client, url)) == {SITZUNG}


def test_secrets_are_revocable_and_never_api_tokens(engine: Engine, client: TestClient) -> None:
    """A revoked or unknown secret is 404 (as any wrong address); an API token opens no feed and a feed
    secret is no bearer token."""
    _in_committee(engine)
    feed_id, secret = create_token(engine.store, LANDRAT, "", engine.now(), CALENDAR)
    api_id, api_token = create_token(engine.store, LANDRAT, "RIS", engine.now())
    assert client.get(calendar_path(secret)).status_code == 200
    for wrong in (api_token, secret[:-1], "x", secret + "x"):
        response = client.get(calendar_path(wrong))
        assert response.status_code == 404 and "keinen Kalender" in response.text
    assert client.get("/api/definitions", headers={"Authorization": f"Bearer {api_token}"}).status_code == 200
    response = client.get("/api/definitions", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401 and "unbekannt oder widerrufen" in response.json()["detail"]
    revoke_token(engine.store, feed_id, engine.now())
    assert client.get(calendar_path(secret)).status_code == 404
    assert [(t.id, t.scope, t.revoked_at is not None) for t in list_tokens(engine.store)] == [
        (feed_id, "calendar", True), (api_id, "api", False)]


def test_tokens_create_calendar_on_the_command_line(engine: Engine, client: TestClient, db_url: str,
                                                    tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`tokens create EMAIL --calendar` prints the feed address once (under base_url); `tokens list` names
    the scope; `tokens revoke` ends it."""
    _in_committee(engine)
    monkeypatch.setenv("COUNCILFLOW_BASE_URL", "https://fristen.kreis.example/")
    base = ["--db", db_url, "--definitions", str(tmp_path / "defs")]
    assert run(["tokens", "create", LANDRAT, "--calendar", *base]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Kalender-Link 1 für {LANDRAT} (wird nur jetzt angezeigt):\n")
    url = re.search(r"^https://fristen\.kreis\.example(/kalender/cfcal_[A-Za-z0-9_-]+\.ics)$", out, re.M)
    assert url is not None, out
    assert set(entries(client, url.group(1))) == {VORLAGE, SITZUNG}
    assert run(["tokens", "list", *base]) == 0
    assert capsys.readouterr().out == f"1\t{LANDRAT}\tcalendar\taktiv\tKalender\n"
    assert run(["tokens", "revoke", "1", *base]) == 0
    assert client.get(url.group(1)).status_code == 404


def test_meine_fristen_shows_what_was_escalated(engine: Engine, client: TestClient, clock: FixedClock) -> None:
    """The Sitzungsdienst, to whom "Vorlage fertigstellen" escalates, sees it on its list once the escalation
    is due (Monday 14.09., 08:00, the first working morning after due + 1 working day), marked as escalated;
    before that, even overdue, only the author has it."""
    _in_committee(engine)
    clock.set(datetime(2020, 9, 14, 5, 59, tzinfo=UTC))  # overdue since 10.09., escalation at 08:00 local
    assert [r.view.deadline.name for r in engine.deadlines_for(Person(SITZ))] == ["ladung"]
    page = client.get("/", headers={"X-Remote-User": SITZ}).text
    assert "Vorlage fertigstellen" not in page
    clock.set(datetime(2020, 9, 14, 6, 0, tzinfo=UTC))
    rows = {r.view.deadline.name: r for r in engine.deadlines_for(Person(SITZ))}
    assert (rows["vorlage"].notified, rows["vorlage"].escalated) == (False, True)
    assert (rows["ladung"].notified, rows["ladung"].escalated) == (True, False)
    page = client.get("/", headers={"X-Remote-User": SITZ}).text
    assert re.search(r"Vorlage fertigstellen <strong[^>]*>\(eskaliert an Sie\)</strong>", page)
    assert page.count("eskaliert an Sie") == 1  # not at the Ladungsfrist, which is its own
    own = client.get("/", headers={"X-Remote-User": LANDRAT}).text
    assert "Vorlage fertigstellen" in own and "eskaliert an Sie" not in own


def test_a_deadline_past_when_it_started_is_on_the_lists(engine: Engine, client: TestClient,
                                                         clock: FixedClock) -> None:
    """A deadline that had passed when it started has no reminders, only the notice to those it notifies and
    escalates to: it is on both their lists (notified: as their own; escalated: marked)."""
    clock.set(datetime(2020, 9, 20, 8, tzinfo=UTC))
    _in_committee(engine)  # meeting 24.09.: "Vorlage fertigstellen" was due on 10.09.
    assert [m.kind for v in engine.deadlines("SV-1") if v.deadline.name == "vorlage" for m in v.mails] == ["late"]
    clock.set(datetime(2020, 9, 21, 7, tzinfo=UTC))  # the notice goes out in the mail window
    assert "vorlage" in {r.view.deadline.name for r in engine.deadlines_for(Person(LANDRAT))}
    page = client.get("/", headers={"X-Remote-User": SITZ}).text
    assert "Vorlage fertigstellen <strong" in page and "eskaliert an Sie" in page


def test_the_button_on_meine_fristen(engine: Engine, client: TestClient) -> None:
    """"Kalender abonnieren" (a form with the CSRF token) shows the address once; "Kalender-Link widerrufen"
    ends every link of the person."""
    _in_committee(engine)
    who = {"X-Remote-User": LANDRAT}
    page = client.get("/", headers=who).text
    assert 'action="/kalender"' in page and "Kalender abonnieren" in page
    assert "Kalender-Link widerrufen" not in page  # nothing to revoke yet
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    forged = client.post("/kalender", headers=who, data={"csrf": "0" * 40})
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert list_tokens(engine.store) == []
    made = client.post("/kalender", headers=who, data={"csrf": csrf})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    assert "nur jetzt angezeigt" in made.text
    url = re.search(r'value="http://testserver(/kalender/cfcal_[^"]+\.ics)"', made.text)
    assert url is not None, made.text
    assert set(entries(client, url.group(1))) == {VORLAGE, SITZUNG}
    page = client.get("/", headers=who).text
    assert "Sie haben einen aktiven Kalender-Link." in page and "Kalender-Link widerrufen" in page
    assert client.post("/kalender/widerrufen", headers=who, data={"csrf": "0"}).status_code == 403
    revoked = client.post("/kalender/widerrufen", headers=who, data={"csrf": csrf}, follow_redirects=False)
    assert revoked.status_code == 303 and revoked.headers["location"] == "/?kalender=widerrufen"
    assert client.get(url.group(1)).status_code == 404
    page = client.get(revoked.headers["location"], headers=who).text
    assert "Ihre Kalender-Links sind widerrufen" in page and "Kalender-Link widerrufen" not in page


def test_the_button_uses_base_url(engine: Engine) -> None:
    settings = Settings(secret="s", trusted_header="X-Remote-User", trusted_proxies="127.0.0.1",
                        base_url="https://fristen.kreis.example")
    with TestClient(create_app(engine, settings), client=("127.0.0.1", 1)) as client:
        who = {"X-Remote-User": SITZ}
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/", headers=who).text).group(1)  # type: ignore[union-attr]
        made = client.post("/kalender", headers=who, data={"csrf": csrf}).text
        assert 'value="https://fristen.kreis.example/kalender/cfcal_' in made

